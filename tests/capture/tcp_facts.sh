#!/bin/bash
# TCP facts from crafted captures: a segment missing from the capture, a small snap
# length, a file cut mid-record, unanswered and refused SYNs, an injected RST (foreign
# TTL) against a genuine one, a peer that dies after DATA, a capture that starts
# mid-stream, an overlapping retransmission with other bytes, IPv4 fragments, and an
# idle session ended by --idle-timeout. A capture problem must never be reported as a
# server problem (docs/design.md), so the capture-side cases also assert what is NOT said.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

# Anomalies that blame the server or the network path; never for capture-side damage.
blame='["no_banner", "banner_delay", "died_after_data", "died_mid_session", "rst_injected",
        "service_unavailable", "syn_unanswered", "connection_refused"]'
blame_none="$blame as \$b | [\$S[0] | anomaly_ids[] | select(. as \$a | \$b | index(\$a))] == []"

# gap: the second body segment is missing; the server's ACK covers it.
if gen gap && analyse gap; then
    check gap "one session" '($S | length) == 1'
    check gap "gap in direction client at the missing segment" "[\$S[0].tcp.gaps[] |
        {dir, offset, len}] == [{\"dir\": \"client\", \"offset\": $(fact gap gap_offset),
        \"len\": $(fact gap gap_len)}]"
    check gap "capture_gap anomaly" '$S[0] | has_anomaly("capture_gap")'
    check gap "partial" '$S[0].partial == true'
    check gap "the server's 250 still counts" '$S[0].transactions[0].data.code == 250 and
        $S[0].outcome == "delivered"'
    check gap "no server blamed for the capture's loss" "$blame_none"
    check gap "ended by FIN" '$S[0].tcp.end == "fin"'
fi

# truncated: snap length 96; every packet longer than that is cut.
if gen truncated && analyse truncated; then
    n=$(fact truncated truncated_packets)
    check truncated "summary counts cut packets" "\$sum.truncated_packets == $n and $n > 0"
    check truncated "one session with the cut packets" "(\$S | length) == 1 and
        \$S[0].tcp.truncated_packets == $n"
    check truncated "partial" '$S[0].partial == true'
    check truncated "handshake and FIN are intact" '$S[0].tcp.end == "fin" and
        $S[0].tcp.syn_count == 1'
    check truncated "no server blamed for the snap length" "$blame_none"
fi

# cut: the file ends in the middle of a record (exit 0, summary says so).
if gen cut && analyse cut; then
    check cut "capture_truncated" '$sum.capture_truncated == true'
    check cut "complete records counted" "\$sum.packets == $(fact cut packets)"
    check cut "one session, open at the end" '($S | length) == 1 and
        $S[0].tcp.end == "capture_end"'
    grep -qiE 'middle of a (packet|record)|cut|truncat' "$tmp/cut.err" ||
        bad "cut: stderr does not mention the cut file: $(head -2 "$tmp/cut.err")"
fi

# syn_unanswered: SYN and two retransmissions, nothing back.
if gen syn_unanswered && analyse syn_unanswered; then
    check syn_unanswered "one session" '($S | length) == 1'
    check syn_unanswered "end and SYN count" '$S[0].tcp.end == "syn_unanswered" and
        $S[0].tcp.syn_count == 3'
    check syn_unanswered "anomaly" '$S[0] | has_anomaly("syn_unanswered")'
    check syn_unanswered "no SMTP" '$S[0].outcome == "none" and
        ($S[0].transcript // []) == []'
    check syn_unanswered "endpoints" '$S[0].client.port == 51514 and $S[0].server.port == 25'
fi

# refused: SYN answered by RST-ACK.
if gen refused && analyse refused; then
    check refused "one session" '($S | length) == 1'
    check refused "end" '$S[0].tcp.end == "refused"'
    check refused "anomaly" '$S[0] | has_anomaly("connection_refused")'
    check refused "not called unanswered" '($S[0] | has_anomaly("syn_unanswered")) | not'
    check refused "no SMTP" '$S[0].outcome == "none"'
fi

# rst_injected: body ACKed, then an RST "from the server" with TTL 250 (server: 57).
if gen rst_injected && analyse rst_injected; then
    check rst_injected "one session" '($S | length) == 1'
    check rst_injected "reset seen from the server side" '$S[0].tcp.end == "rst_server" and
        $S[0].tcp.rst.from == "server"'
    check rst_injected "TTLs" "\$S[0].tcp.rst.ttl == $(fact rst_injected rst_ttl) and
        \$S[0].tcp.rst.expected_ttl == 57 and \$S[0].tcp.ttl.server == 57"
    check rst_injected "rst_injected anomaly" '$S[0] | has_anomaly("rst_injected")'
    check rst_injected "died_after_data anomaly" '$S[0] | has_anomaly("died_after_data")'
    check rst_injected "no final reply" '$S[0].outcome == "incomplete" and
        $S[0].transactions[0].data.code == null'
fi

# rst_server: the server resets with its own TTL after the final 250.
if gen rst_server && analyse rst_server; then
    check rst_server "end" '$S[0].tcp.end == "rst_server" and $S[0].tcp.rst.from == "server"'
    check rst_server "TTL matches the server" '$S[0].tcp.rst.ttl == 57'
    check rst_server "not injected" '($S[0] | has_anomaly("rst_injected")) | not'
    check rst_server "message delivered" '$S[0].outcome == "delivered" and
        (($S[0] | has_anomaly("died_after_data")) | not)'
fi

# died_after_data: body sent and ACKed, then silence until the end of the capture.
if gen died_after_data && analyse died_after_data; then
    check died_after_data "open at capture end" '$S[0].tcp.end == "capture_end"'
    check died_after_data "still waiting, not died_after_data" \
        '($S[0] | has_anomaly("still_waiting")) and (($S[0] | has_anomaly("died_after_data")) | not)'
    check died_after_data "the wait, measured to the end of the capture" \
        '$S[0].smtp.waits[-1] as $w | $w.awaiting == "end-of-data" and $w.until == "capture_end" and
         ($w.t_ms + $w.waited_ms - $S[0].tcp.capture_end_ms | fabs) < 0.01'
    check died_after_data "incomplete" '$S[0].outcome == "incomplete"'
    check died_after_data "not a capture gap" '(($S[0] | has_anomaly("capture_gap")) | not) and
        ($S[0].tcp.gaps // []) == []'
    check died_after_data "all message bytes seen" \
        "\$S[0].tcp.bytes_client == $(fact died_after_data bytes_client)"
fi

# midstream: the capture starts after the handshake. Counted; a session is optional.
if gen midstream && analyse midstream; then
    check midstream "counted in the summary" '$sum.midstream == 1'
    check midstream "no session, or one marked midstream" '($S | length) == 0 or
        (($S | length) == 1 and $S[0].tcp.midstream == true)'
fi

# overlap: the RCPT segment is sent again with other bytes over the same range. The
# receiver kept the first copy (that is what it answered), so must the report.
if gen overlap && analyse overlap; then
    check overlap "one session" '($S | length) == 1'
    check overlap "first copy kept" '($S[0].transactions[0].rcpt | length) == 1 and
        ($S[0].transactions[0].rcpt[0].to | test("bob@example.net"))'
    check overlap "the other bytes never appear" \
        '[$S[0].transcript[].line | select(test("eve@"))] == []'
    check overlap "delivered" '$S[0].outcome == "delivered"'
fi

check overlap "the differing copy counted, with where it is" '
    $S[0].tcp.conflicting_copies == {"client": 1, "server": 0} and
    ($S[0].tcp.conflicts | length) == 1 and $S[0].tcp.conflicts[0].from == "client" and
    $S[0].tcp.conflicts[0].len == 27 and ($S[0] | has_anomaly("conflicting_copies"))'
check overlap "in the summary" '$sum.conflicting_copies == 1'
grep -q "sent 27 bytes at offset .* again with other content" <("$bin" -r "$tmp/overlap.pcap") ||
    bad "overlap: the text view does not show the differing copy"

# badck_rcpt: the RCPT segment first comes with other bytes and a wrong checksum; the
# client's checksums work otherwise, so that copy is one the server's stack dropped.
if gen badck_rcpt && analyse badck_rcpt; then
    check badck_rcpt "the damaged copy not believed" '
        ($S[0].transactions[0].rcpt | map(.to)) == ["bob@example.net"] and
        [$S[0].transcript[].line | select(test("eve@"))] == []'
    check badck_rcpt "counted per side and in the summary" '
        $S[0].tcp.bad_checksums == {"client": 1, "server": 0} and
        $S[0].tcp.bad_checksums_ignored == {"client": 1, "server": 0} and
        $sum.bad_checksums == 1 and $sum.bad_checksums_ignored == 1'
    check badck_rcpt "not a conflicting copy" '($S[0].tcp.conflicting_copies // null) == null'
fi

# offload: every client segment has a wrong checksum, as on the host that captured its
# own traffic before the network card filled the checksums in: believed, counted.
if gen offload && analyse offload; then
    check offload "believed: the session is whole" '$S[0].outcome == "delivered" and
        ($S[0].transactions | length) == 1 and ($S[0].partial // false) == false'
    check offload "counted, none ignored" "\$S[0].tcp.bad_checksums.client == $(fact offload packets_client) and
        (\$S[0].tcp.bad_checksums_ignored // null) == null"
    sniff offload-verify -r "$tmp/offload.pcap" --verify-checksums
    check offload-verify "--verify-checksums ignores them all" \
        "\$sum.bad_checksums_ignored == $(fact offload packets_client)"
fi

# resend_body: the body's last segment is sent three more times as the client's timer
# backs off: one burst, at its time, in the report and the text view.
if gen resend_body && analyse resend_body; then
    check resend_body "one burst of three segments" '
        ($S[0].tcp.retransmission_bursts | length) == 1 and
        $S[0].tcp.retransmission_bursts[0].from == "client" and
        $S[0].tcp.retransmission_bursts[0].segments == 3 and
        $S[0].tcp.retransmission_bursts[0].bytes == '"$(fact resend_body resent_bytes)"' and
        ($S[0].tcp.retransmission_bursts[0].last_ms - $S[0].tcp.retransmission_bursts[0].t_ms)
            > 1000'
    check resend_body "identical copies are no conflict" \
        '($S[0].tcp.conflicting_copies // null) == null'
    grep -q "tcp: the client sent $(fact resend_body resent_bytes) bytes again in 3 segment" \
        <("$bin" -r "$tmp/resend_body.pcap") || bad "resend_body: no burst line in the text view"
fi

# frag_dup / frag_conflict: the EHLO's second IPv4 fragment comes twice, the same bytes or
# others: only the changed copy is a conflict (counted in the summary).
if gen frag_dup && analyse frag_dup && gen frag_conflict && analyse frag_conflict; then
    check frag_dup "a duplicate fragment is no conflict" '$sum.fragment_conflicts == 0 and
        $S[0].helo.name == "client.example.org"'
    check frag_conflict "the changed copy counted" '$sum.fragment_conflicts == 1 and
        ($S | length) == 1'
fi

# FINs: each side's, with its time and TTL, in time order, and in the text view.
if gen eth && analyse eth; then
    check eth "FINs with time and TTL" '($S[0].tcp.fins | map(.from)) == ["server", "client"]
        and ($S[0].tcp.fins | map(.ttl)) == [57, 64] and
        $S[0].tcp.fins[0].t_ms <= $S[0].tcp.fins[1].t_ms'
    grep -q "tcp: FIN from the server, TTL 57" <("$bin" -r "$tmp/eth.pcap") ||
        bad "eth: no FIN line in the text view"
fi

# fragments: the EHLO segment travels in three IPv4 fragments.
if gen eth && analyse eth && gen fragments && analyse fragments; then
    check fragments "one session" '($S | length) == 1'
    check fragments "EHLO reassembled" '$S[0].helo.name == "client.example.org"'
    got=$(view fragments dialogue) want=$(view eth dialogue)
    [ "$got" = "$want" ] || bad "fragments: dialogue differs from eth: $got"
fi

# idle: silent for 10 minutes after EHLO, then another session. With a 300 s timeout the
# first ends as timeout, and is reported when it ends, before the second.
if gen idle; then
    if analyse idle --idle-timeout 300; then
        check idle "two sessions" '($S | length) == 2'
        check idle "first ends by idle timeout, reported first" '$S[0].client.port == 51514 and
            $S[0].tcp.end == "timeout"'
        check idle "second ends normally" '$S[1].client.port == 51515 and
            $S[1].tcp.end == "fin" and $S[1].outcome == "delivered"'
    fi
    # A timeout longer than the silence: the first session stays open to the end.
    sniff idle_long -r "$tmp/idle.pcap" --idle-timeout 900
    if [ "$rc" -ne 0 ]; then
        bad "idle --idle-timeout 900: exit $rc"
    elif ndjson_ok idle_long; then
        check idle_long "no timeout when the silence is shorter" '($S | length) == 2 and
            ([$S[] | select(.client.port == 51514) | .tcp.end] == ["capture_end"])'
    fi
fi
finish
