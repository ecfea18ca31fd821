#!/bin/bash
# Captures as they come from the field: started while the session was open (no handshake,
# even inside DATA), one direction only (asymmetric routing, a one-way tap), and data that
# libnids would drop although the file holds it (a sender past the advertised window, an
# ACK captured before the segment it covers). What the capture lacks is reported as such;
# never as a fault of the server, and no hole is reported whose bytes are in the capture.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

holes=$src/tests/tools/check-holes.sh
blame='["no_banner", "banner_delay", "died_after_data", "died_mid_session", "rst_injected",
        "service_unavailable", "syn_unanswered", "connection_refused", "auth_skipped"]'
blame_none="$blame as \$b | [\$S[0] | anomaly_ids[] | select(. as \$a | \$b | index(\$a))] == []"

# holes_in_capture NAME: the reported holes of report NAME are in no packet of NAME.pcap.
holes_in_capture() {
    command -v tshark >/dev/null || return 0
    "$holes" "$tmp/$1.pcap" "$tmp/$1.json" >"$tmp/$1.holes" 2>&1 ||
        bad "$1: a reported hole is in the capture: $(head -2 "$tmp/$1.holes")"
}

# midstream: the capture begins after the handshake, just before the banner.
if gen midstream && analyse midstream; then
    check midstream "one session, analysed" '($S | length) == 1 and $S[0].commands.total == 5'
    check midstream "marked midstream and partial" '$S[0].tcp.midstream == true and
        $S[0].partial == true'
    check midstream "the 220 before any client byte is the greeting, untimed" '
        $S[0].banner.code == 220 and ($S[0].banner | has("delay_ms") | not)'
    check midstream "message read and answered" '$S[0].transactions[0].data.code == 250'
    check midstream "nothing that needs the session start" "$blame_none"
    check midstream "still counted in the summary" '$sum.midstream == 1'
fi

# middata: the capture begins inside the message body, in the middle of a line.
if gen middata && analyse middata; then
    check middata "one session" '($S | length) == 1 and $S[0].tcp.midstream == true'
    check middata "body lines are not commands" '$S[0].smtp.unknown_commands == 0 and
        $S[0].commands.total == 1 and $S[0].commands.quit == 1'
    check middata "the 250 answers the end of the message" '
        $S[0].smtp.replies_without_command == 0 and
        ([$S[0].transcript[] | select(.body == true)] | length) == 1'
    check middata "QUIT answered" '$S[0].smtp.quit_replied == true'
    check middata "the message tail is a transaction, accepted" '($S[0].transactions | length) == 1
        and $S[0].transactions[0].data.code == 250 and
        ($S[0].transactions[0] | has("mail_from") | not) and $S[0].outcome == "delivered"'
    check middata "no holes" '$S[0].tcp.gaps == []'
    check middata "counted once as mid-stream" '$sum.midstream == 1'
    check middata "nothing that needs the session start" "$blame_none"
    "$bin" -r "$tmp/middata.pcap" >"$tmp/middata.txt" 2>&1
    grep -q "began mid-session" "$tmp/middata.txt" ||
        bad "middata: the text view does not say the capture began mid-session"
    grep -q "C: QUIT" "$tmp/middata.txt" || bad "middata: the text view has no transcript"
fi

# oneside_client: SYN and the client's packets only; the SYN-ACK is not in the capture.
if gen oneside_client && analyse oneside_client; then
    check oneside_client "not syn_unanswered" '$S[0].tcp.end != "syn_unanswered" and
        ($S[0] | has_anomaly("syn_unanswered") | not)'
    check oneside_client "the client side is analysed" '$S[0].tcp.established == true and
        $S[0].helo.name == "client.example.org" and
        $S[0].transactions[0].mail_from == "alice@example.org"'
    check oneside_client "one_sided client, partial" '$S[0].tcp.one_sided == "client" and
        $S[0].partial == true and $S[0].tcp.handshake_unseen == true'
    check oneside_client "said as a capture problem" '$S[0] | has_anomaly("capture_one_sided")'
    check oneside_client "no server blamed" "$blame_none"
    # No 354 in the capture: what the client sent after DATA is read as its message (the
    # bytes pcapgen sent), with no verdict, and the QUIT after it as a command.
    check oneside_client "the message the client sent" "\$S[0].transactions[0].data.bytes > 0 and
        \$S[0].transactions[0].data.without_354 == true and
        \$S[0].transactions[0].data.code == null and
        \$S[0].transactions[0].data.headers.subject == \"Quarterly report\" and
        ([\$S[0].transcript[] | select(.line == \"[message: $(fact oneside_client message_bytes) bytes]\")]
            | length) == 1 and \$S[0].transcript[-1].line == \"QUIT\""
fi
# The same message seen whole in a two-sided capture has the same SHA-256.
if gen eth && analyse eth; then
    a=$(view eth '.transactions[0].data.sha256') b=$(view oneside_client '.transactions[0].data.sha256')
    [ "$a" = "$b" ] || bad "oneside_client: SHA-256 $b, the whole capture's message $a"
fi

# oneside_client_mid: the client's packets only, from after the handshake.
if gen oneside_client_mid && analyse oneside_client_mid; then
    check oneside_client_mid "one session, client commands read" '($S | length) == 1 and
        $S[0].helo.name == "client.example.org"'
    check oneside_client_mid "midstream and one-sided" '$S[0].tcp.midstream == true and
        $S[0].tcp.one_sided == "client"'
    check oneside_client_mid "no server blamed" "$blame_none"
    check oneside_client_mid "counted once as mid-stream" '$sum.midstream == 1'
fi

# oneside_server: the server's packets only (SYN-ACK, banner, replies).
if gen oneside_server && analyse oneside_server; then
    check oneside_server "one session, replies read" '($S | length) == 1 and
        $S[0].banner.code == 220 and
        ([$S[0].transcript[] | select(.line == "221 2.0.0 Bye")] | length) == 1'
    check oneside_server "one_sided server, not midstream" '$S[0].tcp.one_sided == "server" and
        ($S[0].tcp.midstream // false) == false and $S[0].partial == true'
    check oneside_server "said as a capture problem" '$S[0] | has_anomaly("capture_one_sided")'
    check oneside_server "no server blamed" "$blame_none"
fi

# window_overrun and ack_first: every byte is in the capture; nothing may be a hole.
gen eth && analyse eth
whole=$(view eth '.transactions[0].data.bytes')
for s in window_overrun ack_first; do
    if gen "$s" && analyse "$s"; then
        check "$s" "no holes" '$S[0].tcp.gaps == [] and $S[0].tcp.gap_bytes_client == 0 and
            ($S[0] | has_anomaly("capture_gap") | not)'
        check "$s" "whole message read" "\$S[0].transactions[0].data.bytes == $whole and
            \$S[0].transactions[0].data.headers.subject == \"Quarterly report\""
        check "$s" "not partial" '$S[0].partial == false'
        holes_in_capture "$s"
    fi
done

# gap: a segment really missing is still a hole, and the checker agrees it is not there.
if gen gap && analyse gap; then
    check gap "the missing segment is a hole" '$S[0].tcp.gap_bytes_client > 0'
    holes_in_capture gap
    "$bin" -r "$tmp/gap.pcap" >"$tmp/gap.txt" 2>&1
    grep -q -- "-- *\[tcp: 1460 bytes from the client not in the capture" "$tmp/gap.txt" ||
        bad "gap: the text view does not show the hole among the transcript lines"
    grep -q -- "-- *\[tcp: end=fin, FIN from both sides\]" "$tmp/gap.txt" ||
        bad "gap: the text view does not say how the connection ended"
fi

# rst_injected: the text view shows the RST, its TTL and the side's own TTL, at its time.
if gen rst_injected; then
    "$bin" -r "$tmp/rst_injected.pcap" >"$tmp/rst_injected.txt" 2>&1
    grep -q -- "-- *\[tcp: RST from the server, TTL 250, its other packets TTL 57\]" \
        "$tmp/rst_injected.txt" || bad "rst_injected: the text view does not show the RST"
fi

# Real captures (samples/01: three Postfix submissions) cut with tshark as a capture from the
# field would be: without the handshakes, with the client's packets only, the server's only.
cut() {
    tshark -r "$src/samples/01-submission-auth.pcap" -Y "$2" -F pcap -w "$tmp/$1.pcap" \
        >/dev/null 2>&1 || { bad "tshark could not cut $1"; return 1; }
}
all3='($S | length) == 3 and'
if command -v tshark >/dev/null; then
    if cut real_nohs '!(tcp.flags.syn == 1)' && analyse real_nohs; then
        check real_nohs "three sessions, mid-stream" "$all3"' all($S[]; .tcp.midstream == true)'
        check real_nohs "read whole: greeting, AUTH, delivery" 'all($S[]; .banner.code == 220 and
            .auth[0].result == "success" and .outcome == "delivered")'
        check real_nohs "nothing that needs the session start" "$blame_none"
        holes_in_capture real_nohs
    fi
    if cut real_client '(tcp.dstport == 587)' && analyse real_client; then
        check real_client "three sessions, client side" "$all3"' all($S[];
            .tcp.one_sided == "client" and .helo.name == "ws1.example.net")'
        check real_client "never syn_unanswered" 'all($S[]; .tcp.end != "syn_unanswered" and
            (has_anomaly("syn_unanswered") | not) and has_anomaly("capture_one_sided"))'
        check real_client "no server blamed" "$blame_none"
    fi
    if cut real_server '(tcp.srcport == 587)' && analyse real_server; then
        check real_server "three sessions, server side" "$all3"' all($S[];
            .tcp.one_sided == "server" and .banner.code == 220 and
            has_anomaly("capture_one_sided"))'
        check real_server "no server blamed" "$blame_none"
    fi
    # IPv6 (synthetic IPv4 addresses inside the reassembly): the same pickup.
    if gen ipv6 && tshark -r "$tmp/ipv6.pcap" -Y '!(tcp.flags.syn == 1)' -F pcap \
        -w "$tmp/ipv6_nohs.pcap" >/dev/null 2>&1 && analyse ipv6_nohs; then
        check ipv6_nohs "IPv6 session picked up mid-stream" '($S | length) == 1 and
            $S[0].ip_version == 6 and $S[0].tcp.midstream == true and
            $S[0].outcome == "delivered"'
    fi
fi

# The bundled samples: no hole they report is in the capture.
if command -v tshark >/dev/null; then
    for f in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
        n=$(basename "$f")
        "$bin" --json - -r "$f" >"$tmp/sample.json" 2>/dev/null
        "$holes" "$f" "$tmp/sample.json" >"$tmp/sample.holes" 2>&1 ||
            bad "$n: a reported hole is in the capture: $(head -2 "$tmp/sample.holes")"
    done
fi

finish
