#!/bin/bash
# pcapng files whose interfaces have different link types (dumpcap on several interfaces,
# mergecap of unlike captures), which libpcap's reader stops at: every packet is read
# with its own interface's link type and timestamp resolution. The sessions of such a
# file must be those of its parts analysed one by one; an interface of a link type that
# is not decoded is skipped and counted; a damaged block mid-file ends the read there.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_tool python3
need_pcapgen
need_smtpsniff

# Classic pcap files -> one pcapng, one interface per input file, each with its own
# link type and if_tsresol; optionally an extra interface of an undecoded link type
# (USB, 189) with one packet, a Simple Packet Block, or a damaged block at the end.
mkng() {
    python3 - "$@" <<'PY'
import struct, sys
out, mode, files = sys.argv[1], sys.argv[2], sys.argv[3:]
def block(t, body):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", t, n) + body + struct.pack("<I", n)
def opt(code, val):
    return struct.pack("<HH", code, len(val)) + val + b"\0" * (-len(val) % 4)
recs = []
ifs = []
# interface 0: nanoseconds (10^-9); 1: 2^-20 s; 2: microseconds; more: microseconds
resols = [(b"\x09", lambda s, u: s * 10**9 + u * 1000),
          (b"\x94", lambda s, u: (s << 20) + (u << 20) // 10**6),
          (b"\x06", lambda s, u: s * 10**6 + u)]
for i, f in enumerate(files):
    d = open(f, "rb").read()
    magic, _, _, _, _, snap, lt = struct.unpack("<IHHiIII", d[:24])
    assert magic == 0xa1b2c3d4, f
    res = resols[i % 3]
    ifs.append(block(1, struct.pack("<HHI", lt, 0, 262144) + opt(9, res[0]) + opt(0, b"")))
    off = 24
    while off + 16 <= len(d):
        s, u, cl, ol = struct.unpack("<IIII", d[off:off + 16])
        data = d[off + 16:off + 16 + cl]
        off += 16 + cl
        recs.append((s * 10**6 + u, i, res[1](s, u), cl, ol, data))
recs.sort(key=lambda r: (r[0], r[1]))
shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
o = bytearray(shb)
if mode == "usb":
    ifs.append(block(1, struct.pack("<HHI", 189, 0, 262144)))
for b in ifs:
    o += b
if mode == "usb":
    o += block(6, struct.pack("<IIIII", len(ifs) - 1, 0, 1, 8, 8) + b"\x01" * 8)
if mode == "shift":  # file i comes i * 100 s later: the same crafted connection again
    recs = [(a + i * 10**8, i, t, cl, ol, data) for (a, i, t, cl, ol, data) in recs]
    recs = [(a, i, resols[i % 3][1](a // 10**6, a % 10**6), cl, ol, data)
            for (a, i, t, cl, ol, data) in recs]
    recs.sort(key=lambda r: (r[0], r[1]))
for n, (_, i, t, cl, ol, data) in enumerate(recs):
    if mode == "spb" and i == 0 and n == 0:
        o += block(3, struct.pack("<I", ol) + data)  # interface 0, no timestamp
        continue
    o += block(6, struct.pack("<IIIII", i, t >> 32, t & 0xffffffff, cl, ol) + data)
    if mode == "damaged" and n == len(recs) // 2:
        o += struct.pack("<II", 6, 0x7fff0001)  # a length no block can have
        break
open(out, "wb").write(bytes(o))
PY
}

gen eth || exit 1
gen sll || exit 1
gen raw || exit 1
sample=$src/samples/01-submission-auth.pcap
cp "$sample" "$tmp/s01.pcap"

# The same sessions alone, each file on its own, keyed by the client's endpoint.
per_file() {
    jq -c -s "$jq_defs"' map(select(.type == "session")) | map(dialogue + {start}) |
        sort_by(.client.ip, .client.port)' "$@"
}
for p in s01 sll raw; do
    sniff "$p.alone" -r "$tmp/$p.pcap" || true
done
want=$(cat "$tmp/s01.alone.json" "$tmp/sll.alone.json" "$tmp/raw.alone.json" |
    jq -c -s "$jq_defs"' map(select(.type == "session")) | map(dialogue + {start}) |
        sort_by(.client.ip, .client.port)')

# sll and raw are the same crafted connection: merge each with the Postfix sample.
for mode in plain spb; do
    name=mix-$mode
    mkng "$tmp/$name.pcapng" "$mode" "$tmp/s01.pcap" "$tmp/sll.pcap" ||
        { bad "$name: could not build the pcapng"; continue; }
    sniff "$name" -r "$tmp/$name.pcapng"
    [ "$rc" -eq 0 ] || bad "$name: exit $rc: $(head -2 "$tmp/$name.err")"
    ndjson_ok "$name" || continue
    part=$(cat "$tmp/s01.alone.json" "$tmp/sll.alone.json" |
        jq -c -s "$jq_defs"' map(select(.type == "session")) | map(dialogue + {start}) |
            sort_by(.client.ip, .client.port)')
    got=$(per_file "$tmp/$name.json")
    if [ "$mode" = spb ]; then
        # The first packet (the Postfix client's SYN) has no timestamp of its own.
        part=$(jq -c 'map(del(.start))' <<<"$part")
        got=$(jq -c 'map(del(.start))' <<<"$got")
    fi
    [ "$got" = "$part" ] || {
        bad "$name: sessions differ from the files analysed alone"
        diff <(jq . <<<"$part") <(jq . <<<"$got") | head -20 >&2
    }
    check "$name" "nothing damaged" '$sum.capture_damaged == [] and $sum.unsupported_link == 0'
    check "$name" "every packet read" "\$sum.packets == $(($(fact sll packets) + $(
        tshark -r "$sample" 2>/dev/null | wc -l)))"
done

# Three link types (Ethernet, Linux cooked, raw IP) and three timestamp resolutions.
mkng "$tmp/three.pcapng" shift "$tmp/s01.pcap" "$tmp/sll.pcap" "$tmp/eth.pcap" ||
    bad "three: could not build the pcapng"
sniff three -r "$tmp/three.pcapng"
check three "sessions of all three files" '($S | length) == 5'
check three "sll and eth give the same dialogue" '
    [$S[] | select(.client.ip == "192.0.2.10") | dialogue] | (length == 2 and .[0] == .[1])'
check three "starts to the microsecond in every resolution (2^-20 s and 10^-6 s)" '
    [$S[] | select(.client.ip == "192.0.2.10") | .start] ==
    ["2021-11-20T01:03:43.000000Z", "2021-11-20T01:05:23.000000Z"]'

# An interface of a link type smtpsniff does not decode: its packets are counted.
mkng "$tmp/usb.pcapng" usb "$tmp/s01.pcap" "$tmp/raw.pcap" || bad "usb: could not build"
sniff usb -r "$tmp/usb.pcapng"
[ "$rc" -eq 0 ] || bad "usb: exit $rc: $(head -2 "$tmp/usb.err")"
check usb "USB packet skipped and counted" '$sum.unsupported_link == 1 and ($S | length) == 4'

# A block with an impossible length in the middle: analysed up to it, and said so.
mkng "$tmp/dmg.pcapng" damaged "$tmp/s01.pcap" "$tmp/sll.pcap" || bad "damaged: could not build"
sniff dmg -r "$tmp/dmg.pcapng"
[ "$rc" -eq 0 ] || bad "damaged: exit $rc (a damaged file is analysed up to the damage)"
check dmg "damage named with its offset" '($sum.capture_damaged | length) == 1 and
    $sum.capture_damaged[0].offset > 0 and
    ($sum.capture_damaged[0].reason | test("length"))'
check dmg "sessions before the damage reported" '($S | length) >= 1'
grep -q "analysed up to there" "$tmp/dmg.err" || bad "damaged: no warning on stderr"

# tshark reads the same file: same packet count.
n=$(tshark -r "$tmp/three.pcapng" 2>/dev/null | wc -l)
check three "tshark agrees on the packet count" "\$sum.packets == $n"
finish
