#!/bin/bash
# The crafted-capture generator checked by independent readers: tshark verifies every
# IPv4 header checksum and every TCP checksum (IPv4 and IPv6 pseudo-headers) and finds
# nothing malformed; tcpdump reads every file and agrees on the checksums; tshark's TCP
# analysis sees in each scenario what it is meant to hold (the lost segment, the cut
# packets, the foreign TTL...). Also: the scenario list, and byte-identical output.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
command -v tshark >/dev/null || { echo "SKIP: tshark not installed" >&2; exit 77; }
need_pcapgen
have_tcpdump=1
command -v tcpdump >/dev/null || { have_tcpdump=0; echo "note: tcpdump not installed" >&2; }

ts() { # ts FILE ARGS...: tshark with checksum verification on, stderr kept apart
    local f=$1
    shift
    tshark -r "$f" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE "$@" 2>"$tmp/ts.err"
}
count() { # count SCENARIO FILTER: frames matching a display filter
    ts "$tmp/$1.pcap" -Y "$2" -T fields -e frame.number | grep -c .
}
expect_count() { # expect_count SCENARIO WHAT FILTER N
    local got
    got=$(count "$1" "$3")
    [ "$got" = "$4" ] || bad "$1: $2: $got frames match '$3', expected $4"
}

wanted="eth vlan qinq sll sll2 null loop raw ipv6 pcapng gap truncated cut syn_unanswered
        refused rst_injected rst_server died_after_data midstream overlap fragments idle
        pipelining bdat multi split_a split_b hostile_longline hostile_pipeline hostile_rcpts
        hostile_multiline hostile_authblob hostile_badbase64 hostile_synflood
        hostile_idle_sessions hostile_headers hostile_garbage_after_header hostile_bigcaplen"
listed=$("$pcapgen" --list | awk '{print $1}')
for s in $wanted; do
    grep -qx "$s" <<<"$listed" || bad "pcapgen --list lacks $s"
done
[ "$(sort <<<"$listed" | uniq -d)" = "" ] || bad "pcapgen --list has duplicate names"
"$pcapgen" nosuch "$tmp/x" 2>/dev/null
[ $? -eq 2 ] || bad "pcapgen: an unknown scenario is not a usage error"
"$pcapgen" eth "$tmp/x" 5 2>/dev/null
[ $? -eq 2 ] || bad "pcapgen: a size for a scenario without one is not a usage error"

# Small sizes: the point here is the packets, not the volume.
small="hostile_longline:300000 hostile_pipeline:2000 hostile_rcpts:250 hostile_multiline:2000
       hostile_authblob:100000 hostile_badbase64:42 hostile_synflood:500
       hostile_idle_sessions:100 hostile_headers:300 hostile_garbage_after_header:5000
       hostile_bigcaplen:1000000"
size_of() {
    local c
    for c in $small; do
        [ "${c%%:*}" = "$1" ] && echo "${c#*:}"
    done
}

for s in $wanted; do
    # shellcheck disable=SC2046
    gen "$s" $(size_of "$s") || continue
    f=$tmp/$s.pcap
    # Determinism: a second run gives the same bytes.
    # shellcheck disable=SC2046
    "$pcapgen" "$s" "$tmp/again.pcap" $(size_of "$s") >/dev/null
    cmp -s "$f" "$tmp/again.pcap" || bad "$s: two runs give different files"

    ts "$f" -T fields -e tcp.checksum.status -e ip.checksum.status -e _ws.malformed \
        -e frame.cap_len -e frame.len >"$tmp/$s.fields"
    tsrc=$?
    frames=$(grep -c . "$tmp/$s.fields")
    case $s in
    cut | hostile_garbage_after_header | hostile_bigcaplen)
        # Damaged on purpose: tshark must say so, after reading the intact records.
        [ $tsrc -ne 0 ] && grep -qE 'cut short|damaged|corrupt' "$tmp/ts.err" ||
            bad "$s: tshark does not find the file damaged: $(head -2 "$tmp/ts.err")"
        ;;
    *)
        [ $tsrc -eq 0 ] || bad "$s: tshark failed: $(grep -v '^Running as' "$tmp/ts.err" | head -2)"
        ;;
    esac
    [ "$frames" = "$(fact "$s" packets)" ] ||
        bad "$s: tshark reads $frames frames, pcapgen wrote $(fact "$s" packets)"
    [ "$s" = hostile_headers ] && continue # bad headers and garbage are its purpose

    bad_tcp=$(awk -F'\t' '$1 == "0"' "$tmp/$s.fields" | wc -l)
    bad_ip=$(awk -F'\t' '$2 ~ /(^|,)0(,|$)/' "$tmp/$s.fields" | wc -l)
    malformed=$(awk -F'\t' '$3 != ""' "$tmp/$s.fields" | wc -l)
    good_tcp=$(awk -F'\t' '$1 == "1"' "$tmp/$s.fields" | wc -l)
    cut_frames=$(awk -F'\t' '$4 < $5' "$tmp/$s.fields" | wc -l)
    [ "$bad_tcp" -eq 0 ] || bad "$s: $bad_tcp frames with a bad TCP checksum"
    [ "$bad_ip" -eq 0 ] || bad "$s: $bad_ip frames with a bad IPv4 header checksum"
    [ "$malformed" -eq 0 ] || bad "$s: $malformed malformed frames"
    [ "$cut_frames" = "$(fact "$s" truncated_packets)" ] ||
        bad "$s: $cut_frames frames with caplen < len, pcapgen says $(fact "$s" truncated_packets)"
    # Every TCP checksum actually verified, except where the capture cannot hold it:
    # segments cut by the snap length and non-first IPv4 fragments (no TCP header).
    unverifiable=$cut_frames
    [ "$s" = fragments ] && unverifiable=$(count fragments 'ip.frag_offset > 0')
    [ "$good_tcp" -eq $((frames - unverifiable)) ] ||
        bad "$s: only $good_tcp of $frames TCP checksums verified as good"

    if [ $have_tcpdump -eq 1 ]; then
        tcpdump -nn -vv -r "$f" >"$tmp/$s.tcpdump" 2>"$tmp/$s.tcpdump.err"
        tdrc=$?
        case $s in
        cut | hostile_garbage_after_header | hostile_bigcaplen) ;;
        *) [ $tdrc -eq 0 ] || bad "$s: tcpdump failed: $(tail -1 "$tmp/$s.tcpdump.err")" ;;
        esac
        n=$(grep -cE 'cksum 0x[0-9a-f]+ \(incorrect|bad cksum' "$tmp/$s.tcpdump")
        [ "$n" -eq 0 ] || bad "$s: tcpdump finds $n wrong checksums"
    fi
done

# What each scenario is meant to hold, as tshark's analysis sees it.
start=1637370123.000000000
for s in eth vlan qinq sll sll2 null loop raw ipv6 pcapng; do
    first=$(ts "$tmp/$s.pcap" -c 1 -T fields -e frame.time_epoch)
    [ "$first" = "$start" ] || bad "$s: first packet at $first, expected $start"
    expect_count "$s" "SMTP commands" 'smtp.req.command' 5
    expect_count "$s" "client TTL" '(ip.src == 192.0.2.10 && ip.ttl != 64) ||
        (ipv6.src == 2001:db8::10 && ipv6.hlim != 64)' 0
    expect_count "$s" "server TTL" '(ip.src == 198.51.100.25 && ip.ttl != 57) ||
        (ipv6.src == 2001:db8:25::25 && ipv6.hlim != 57)' 0
    expect_count "$s" "TCP analysis problems" 'tcp.analysis.flags && !tcp.analysis.window_update' 0
done
expect_count vlan "802.1Q tag 100 on every frame" 'vlan.id == 100' 23
expect_count qinq "802.1ad tag 200 outside 802.1Q tag 100" \
    'ieee8021ad.id == 200 && vlan.id == 100 && eth.type == 0x88a8' 23
expect_count sll "cooked v1" 'sll.pkttype == 4' 12
expect_count sll2 "cooked v2" 'sll.pkttype == 0' 11
expect_count null "BSD loopback" 'null.family == 2' 23
expect_count loop "OpenBSD loopback" 'null.family == 2' 23
expect_count ipv6 "hop-by-hop header on some packets" 'ipv6.hopopts' 8
expect_count ipv6 "TCP over IPv6" 'tcp && ipv6' 23
expect_count pcapng "Enhanced packet blocks" 'frame.interface_name == "eth0"' 23

expect_count gap "the missing segment" 'tcp.analysis.lost_segment' 1
[ "$(count gap tcp.analysis.ack_lost_segment)" -ge 1 ] || bad "gap: the hole is not ACKed"
expect_count gap "payload around the hole" "tcp.seq == $(($(fact gap gap_offset) + 1 +
    $(fact gap gap_len))) && ip.src == 192.0.2.10" 1
expect_count truncated "cut to the snap length" 'frame.cap_len == 96 && frame.len > 96' \
    "$(fact truncated truncated_packets)"
expect_count syn_unanswered "SYN and its retransmissions" 'tcp.flags == 0x002' 3
expect_count syn_unanswered "nothing from the server" 'ip.src == 198.51.100.25' 0
expect_count refused "RST-ACK to the SYN" 'tcp.flags == 0x014 && tcp.ack == 1' 1
expect_count rst_injected "RST with the foreign TTL" 'tcp.flags.reset == 1 && ip.ttl == 250' 1
expect_count rst_injected "one RST only" 'tcp.flags.reset == 1' 1
expect_count rst_server "RST with the server's TTL after 250" \
    'tcp.flags.reset == 1 && ip.ttl == 57' 1
expect_count died_after_data "no final reply" 'frame contains "queued"' 0
acked=$(($(fact died_after_data bytes_client) + 1))
expect_count died_after_data "the body ACKed" "tcp.ack == $acked && ip.src == 198.51.100.25" 1
expect_count died_after_data "no FIN or RST" 'tcp.flags.fin == 1 || tcp.flags.reset == 1' 0
expect_count midstream "no handshake" 'tcp.flags.syn == 1' 0
expect_count overlap "the retransmission" 'tcp.analysis.retransmission' 1
expect_count fragments "IPv4 fragments" 'ip.flags.mf == 1 || ip.frag_offset > 0' 3
expect_count fragments "EHLO decoded after reassembly" 'smtp.req.command == "EHLO"' 1
expect_count idle "two connections" 'tcp.flags == 0x002' 2
expect_count idle "ten minutes of silence" 'frame.time_delta >= 600' 1
expect_count multi "four connections" 'tcp.flags == 0x002' 4
expect_count multi "HTTP on port 80" 'http.request' 1
expect_count pipelining "pipelined commands" 'smtp.req.command == "RCPT"' 2
expect_count bdat "one client segment with BDAT" 'tcp.payload contains "BDAT 1000"' 1
expect_count hostile_synflood "SYNs from distinct sources" 'tcp.flags == 0x002' 501
expect_count hostile_bigcaplen "records longer than the snap length" 'frame.cap_len > 128' \
    "$(count hostile_bigcaplen 'frame.len > 128')"
[ "$(count hostile_bigcaplen 'frame.len > 128')" -gt 0 ] || bad "hostile_bigcaplen: no long record"
[ $(($(fact split_a packets) + $(fact split_b packets))) -eq "$(fact eth packets)" ] ||
    bad "split_a + split_b do not add up to the session"
last_a=$(ts "$tmp/split_a.pcap" -T fields -e frame.time_epoch | tail -1)
first_b=$(ts "$tmp/split_b.pcap" -c 1 -T fields -e frame.time_epoch)
awk -v a="$last_a" -v b="$first_b" 'BEGIN { exit !(a < b) }' ||
    bad "split_a ($last_a) does not end before split_b ($first_b) starts"
finish
