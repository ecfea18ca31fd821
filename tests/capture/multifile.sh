#!/bin/bash
# Several -r files are one capture read in time order: a session split across two files
# by time is one session, the same whichever order the files are named in, and the same
# as when it was captured in one file. Each half alone is what a capture of it would be.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

gen eth && gen split_a && gen split_b && gen ipv6 || exit 1
na=$(fact split_a packets) nb=$(fact split_b packets)
[ $((na + nb)) -eq "$(fact eth packets)" ] || bad "pcapgen: split_a + split_b != eth packets"
analyse eth || exit 1
timing='{start, "end": .end, duration_ms, tcp}'

# Both halves, in time order and reversed.
for order in ab ba; do
    name=split_$order
    if [ $order = ab ]; then
        sniff "$name" -r "$tmp/split_a.pcap" -r "$tmp/split_b.pcap"
    else
        sniff "$name" -r "$tmp/split_b.pcap" -r "$tmp/split_a.pcap"
    fi
    if [ "$rc" -ne 0 ]; then
        bad "$name: exit $rc: $(head -3 "$tmp/$name.err")"
        continue
    fi
    ndjson_ok "$name" || continue
    check "$name" "one session" '($S | length) == 1'
    check "$name" "every packet of both files" "\$sum.packets == $((na + nb))"
    check "$name" "whole session: handshake to FIN" '$S[0].tcp.end == "fin" and
        $S[0].tcp.syn_count == 1 and ($S[0].tcp.midstream // false) == false and
        ($S[0].tcp.gaps // []) == []'
    check "$name" "nothing midstream" '$sum.midstream == 0'
    got=$(view "$name" dialogue) want=$(view eth dialogue)
    [ "$got" = "$want" ] || bad "$name: dialogue differs from the single-file capture: $got"
    got=$(view "$name" "$timing") want=$(view eth "$timing")
    [ "$got" = "$want" ] || bad "$name: timing or TCP facts differ from the single file: $got"
done
if [ -s "$tmp/split_ab.json" ] && [ -s "$tmp/split_ba.json" ]; then
    cmp -s <(jq -c 'select(.type == "session")' "$tmp/split_ab.json") \
        <(jq -c 'select(.type == "session")' "$tmp/split_ba.json") ||
        bad "session reports depend on the order of -r files"
fi

# The first half alone: handshake, banner and EHLO, open at the end of the capture.
if analyse split_a; then
    check split_a "one session open at capture end" '($S | length) == 1 and
        $S[0].tcp.end == "capture_end"'
    check split_a "EHLO seen, MAIL not" '$S[0].helo.name == "client.example.org" and
        (($S[0].transactions // []) | length) == 0'
fi
# The second half alone: no handshake, so a mid-stream connection.
if analyse split_b; then
    check split_b "mid-stream" '$sum.midstream == 1'
    check split_b "no complete session" '($S | length) == 0 or $S[0].tcp.midstream == true'
fi

# Two unrelated captures together: both sessions, each as alone.
sniff two -r "$tmp/eth.pcap" -r "$tmp/ipv6.pcap"
if [ "$rc" -ne 0 ]; then
    bad "eth + ipv6: exit $rc: $(head -3 "$tmp/two.err")"
elif ndjson_ok two; then
    check two "two sessions" '($S | length) == 2 and $sum.sessions == 2'
    check two "one per family" '([$S[].client.ip] | sort) == ["192.0.2.10", "2001:db8::10"]'
    check two "both delivered" '[$S[].outcome] == ["delivered", "delivered"]'
fi

# One readable file and one missing: an input error, named.
sniff missing -r "$tmp/eth.pcap" -r "$tmp/does-not-exist.pcap"
[ "$rc" -eq 3 ] || bad "a missing second file: exit $rc, expected 3"
grep -q does-not-exist "$tmp/missing.err" || bad "a missing second file is not named on stderr"
finish
