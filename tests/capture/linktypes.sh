#!/bin/bash
# Link layers and file formats: the same crafted SMTP session over Ethernet, 802.1Q,
# QinQ, Linux cooked v1/v2, BSD and OpenBSD loopback, raw IP, IPv6 with a hop-by-hop
# header, and in pcapng must each give exactly one session with the same endpoints,
# transcript, transactions and TCP facts as the Ethernet capture.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

# The reference: every fact of the Ethernet capture that pcapgen knows for certain.
gen eth || exit 1
analyse eth || exit 1
check eth "exactly one session" '($S | length) == 1'
check eth "client and server" '$S[0].client == {"ip": "192.0.2.10", "port": 51514} and
    $S[0].server == {"ip": "198.51.100.25", "port": 25}'
check eth "EVE flow keys" '$S[0].src_ip == "192.0.2.10" and $S[0].src_port == 51514 and
    $S[0].dest_ip == "198.51.100.25" and $S[0].dest_port == 25 and $S[0].proto == "TCP"'
check eth "schema" '$S[0].schema == "smtpsniff.session/1"'
check eth "start time from the capture" '$S[0].start == "2021-11-20T01:02:03.000000Z"'
check eth "closed by FIN" '$S[0].tcp.end == "fin"'
check eth "TTL per side" '$S[0].tcp.ttl == {"client": 64, "server": 57}'
check eth "one SYN" '$S[0].tcp.syn_count == 1'
check eth "handshake RTT 20 ms" '$S[0].tcp.handshake_rtt_ms >= 19.9 and
    $S[0].tcp.handshake_rtt_ms <= 20.1'
check eth "payload bytes" "\$S[0].tcp.bytes_client == $(fact eth bytes_client) and
    \$S[0].tcp.bytes_server == $(fact eth bytes_server)"
check eth "packets per side" "\$S[0].tcp.packets_client == $(fact eth packets_client) and
    \$S[0].tcp.packets_server == $(fact eth packets_server)"
check eth "no gaps, not midstream, nothing truncated" '($S[0].tcp.gaps // []) == [] and
    ($S[0].tcp.midstream // false) == false and ($S[0].tcp.truncated_packets // 0) == 0 and
    ($S[0].partial // false) == false'
check eth "untagged" '$S[0].vlan == null'
check eth "banner" '$S[0].banner.code == 220 and
    ($S[0].banner.text | test("mail.example.net ESMTP Postfix"))'
check eth "EHLO" '$S[0].helo.verb == "EHLO" and $S[0].helo.name == "client.example.org"'
check eth "extensions" '(["PIPELINING", "SIZE 10240000", "STARTTLS", "AUTH PLAIN LOGIN",
    "CHUNKING"] - $S[0].extensions) == []'
check eth "one delivered transaction" '($S[0].transactions | length) == 1 and
    ($S[0].transactions[0].mail_from | test("alice@example.org")) and
    ($S[0].transactions[0].rcpt | length) == 1 and
    ($S[0].transactions[0].rcpt[0].to | test("bob@example.net")) and
    $S[0].transactions[0].rcpt[0].code == 250 and
    $S[0].transactions[0].data.verb == "DATA" and $S[0].transactions[0].data.code == 250 and
    ($S[0].transactions[0].data.sha256 | test("^[0-9a-f]{64}$"))'
check eth "Postfix-style command counts" '$S[0].commands ==
    {"ehlo": 1, "mail": 1, "rcpt": 1, "data": 1, "quit": 1, "total": 5,
     "postfix": "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"}'
check eth "outcome" '$S[0].outcome == "delivered"'
check eth "nothing blamed on TCP" '($S[0] | has_anomaly("capture_gap") or
    has_anomaly("died_after_data") or has_anomaly("died_mid_session") or
    has_anomaly("rst_injected")) | not'
check eth "transcript: banner first, 221 last (before FIN)" '
    $S[0].transcript[0].dir == "S" and ($S[0].transcript[0].line | startswith("220 ")) and
    ([$S[0].transcript[] | select(.dir == "S")] | last | .line | startswith("221 "))'
check eth "summary" "\$sum.sessions == 1 and \$sum.packets == $(fact eth packets) and
    \$sum.truncated_packets == 0 and \$sum.non_ip == 0 and \$sum.midstream == 0 and
    \$sum.capture_truncated == false"
ref_dialogue=$(view eth dialogue)
tcp_view='.tcp | {"end": .end, ttl, syn_count, bytes_client, bytes_server, gaps}'
ref_tcp=$(view eth "$tcp_view")
ref_start=$(view eth .start)
if [ -z "$ref_dialogue" ] || [ "$ref_dialogue" = null ]; then
    bad "eth: no session to compare with"
    finish
fi

for s in vlan qinq sll sll2 null loop raw ipv6 pcapng; do
    gen "$s" || continue
    analyse "$s" || continue
    check "$s" "exactly one session" '($S | length) == 1'
    check "$s" "summary" "\$sum.sessions == 1 and \$sum.packets == $(fact "$s" packets) and
        \$sum.non_ip == 0 and \$sum.truncated_packets == 0"
    want=$ref_dialogue
    if [ "$s" = ipv6 ]; then
        # Same dialogue, IPv6 endpoints (RFC 5952 text form).
        want=$(jq -c '.client.ip = "2001:db8::10" | .server.ip = "2001:db8:25::25"' \
            <<<"$ref_dialogue")
    fi
    got=$(view "$s" dialogue)
    if [ "$got" != "$want" ]; then
        bad "$s: dialogue differs from eth"
        diff <(jq . <<<"$want") <(jq . <<<"$got") | head -20 >&2
    fi
    got=$(view "$s" "$tcp_view")
    [ "$got" = "$ref_tcp" ] || bad "$s: TCP facts differ from eth: $got vs $ref_tcp"
    got=$(view "$s" .start)
    [ "$got" = "$ref_start" ] || bad "$s: start $got, eth starts $ref_start"
    case $s in
    vlan) check "$s" "VLAN id" '$S[0].vlan == [100]' ;;
    qinq) check "$s" "outer and inner VLAN ids" '$S[0].vlan == [200, 100]' ;;
    *) check "$s" "untagged" '$S[0].vlan == null' ;;
    esac
done
finish
