#!/bin/bash
# -w FILE: the packets the analysis read (those the filter let through) are written to a
# pcap file while analysing. tshark reads the file, it holds as many packets as the summary
# counts, and smtpsniff analyses it to the same NDJSON as the original capture (several
# samples, pcap and pcapng, with and without a BPF filter, with --workers). -C rotates to
# FILE1, FILE2... whose concatenated analysis covers every packet; -W N keeps a ring of N
# files; files of different link types are refused (exit 2); an unwritable -w is exit 3.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_smtpsniff
need_tool jq
need_tool tshark
need_tool capinfos

npackets() { capinfos -Mc "$1" 2>/dev/null | sed -n 's/^Number of packets: *//p'; }

for s in 01-submission-auth.pcap 02-auth-failed.pcapng 09-starttls.pcapng 06b-rst-injected.pcap; do
    f=$src/samples/$s
    opts=()
    [ -f "${f%.*}.opts" ] && read -r -a opts <"${f%.*}.opts"
    sniff "orig-$s" -r "$f" -q "${opts[@]}" -w "$tmp/$s.w.pcap"
    [ "$rc" -eq 0 ] || { bad "$s: -w exited $rc: $(head -2 "$tmp/orig-$s.err")"; continue; }
    tshark -r "$tmp/$s.w.pcap" >/dev/null 2>"$tmp/tshark.err" ||
        bad "$s: tshark cannot read the -w file: $(head -2 "$tmp/tshark.err")"
    want=$(tail -1 "$tmp/orig-$s.json" | jq .packets)
    got=$(npackets "$tmp/$s.w.pcap")
    [ "$got" = "$want" ] || bad "$s: -w file holds $got packets, the summary read $want"
    sniff "again-$s" -r "$tmp/$s.w.pcap" -q "${opts[@]}"
    cmp -s "$tmp/orig-$s.json" "$tmp/again-$s.json" ||
        bad "$s: the -w file is not analysed to the same NDJSON as the original"
    # The same with the analysis spread over workers (the first one writes).
    "$bin" -r "$f" -q "${opts[@]}" --workers 2 -w "$tmp/$s.wk.pcap" --json /dev/null 2>/dev/null ||
        bad "$s: --workers 2 -w failed"
    cmp -s "$tmp/$s.w.pcap" "$tmp/$s.wk.pcap" || bad "$s: --workers 2 wrote another -w file"
done

# A BPF filter: only what it lets through is written.
f=$src/samples/09-starttls.pcapng
sniff filt -r "$f" -q -w "$tmp/filt.pcap" tcp port 587
want=$(tail -1 "$tmp/filt.json" | jq .packets)
[ "$(npackets "$tmp/filt.pcap")" = "$want" ] || bad "filter: -w file does not hold the $want packets read"
[ "$(tshark -r "$tmp/filt.pcap" -Y 'not tcp.port == 587' 2>/dev/null | wc -l)" -eq 0 ] ||
    bad "filter: the -w file holds packets the filter refused"
[ "$want" -gt 0 ] && [ "$want" -lt "$(npackets "$f")" ] || bad "filter: the filter selected $want packets"

# ---- -C: rotation ---------------------------------------------------------------------
sniff whole -r "$f" -q
sniff rot -r "$f" -q -w "$tmp/rot.pcap" -C 4k
[ "$rc" -eq 0 ] || bad "-C: exited $rc: $(head -2 "$tmp/rot.err")"
files=("$tmp/rot.pcap")
for i in $(seq 1 100); do [ -e "$tmp/rot.pcap$i" ] && files+=("$tmp/rot.pcap$i"); done
[ "${#files[@]}" -ge 3 ] || bad "-C 4k: ${#files[@]} file(s), expected several"
[ -e "$tmp/rot.pcap${#files[@]}" ] && bad "-C: file names are not FILE, FILE1, FILE2... in order"
total=0
for x in "${files[@]}"; do
    n=$(npackets "$x")
    total=$((total + n))
    tshark -r "$x" >/dev/null 2>&1 || bad "-C: tshark cannot read $x"
done
[ "$total" = "$(tail -1 "$tmp/whole.json" | jq .packets)" ] ||
    bad "-C: the files hold $total packets, the capture has $(tail -1 "$tmp/whole.json" | jq .packets)"
# Every file but the last stopped growing once it passed 4 KiB, with one packet more at most.
for x in "${files[@]:0:${#files[@]}-1}"; do
    sz=$(stat -c %s "$x")
    [ "$sz" -gt 4096 ] || bad "-C 4k: $x is $sz bytes, rotated before 4096"
done
rargs=()
for x in "${files[@]}"; do rargs+=(-r "$x"); done
sniff rotall "${rargs[@]}" -q
cmp -s <(grep -v '"type":"summary"' "$tmp/whole.json") <(grep -v '"type":"summary"' "$tmp/rotall.json") ||
    bad "-C: the files read together do not give the original's session reports"
check rotall "the files read together: every packet, nothing damaged" \
    "\$sum.packets == $total and \$sum.capture_damaged == []"

# ---- -W: a ring of files ---------------------------------------------------------------
sniff ring -r "$f" -q -w "$tmp/ring.pcap" -C 4k -W 3
[ "$rc" -eq 0 ] || bad "-W: exited $rc"
ls "$tmp" | grep '^ring\.pcap' | sort >"$tmp/ring.ls"
[ "$(tr '\n' ' ' <"$tmp/ring.ls")" = "ring.pcap0 ring.pcap1 ring.pcap2 " ] ||
    bad "-W 3: files are $(tr '\n' ' ' <"$tmp/ring.ls"), expected ring.pcap0..2"
ringn=0
for x in "$tmp"/ring.pcap?; do ringn=$((ringn + $(npackets "$x"))); done
[ "$ringn" -lt "$total" ] || bad "-W 3: the ring kept every packet ($ringn): nothing was reused"

# ---- refusals ----------------------------------------------------------------------------
# Two link types: Ethernet and Linux cooked capture (editcap -T).
if command -v editcap >/dev/null; then
    editcap -T linux-sll "$src/samples/01-submission-auth.pcap" "$tmp/sll.pcap" 2>/dev/null
    "$bin" -r "$src/samples/01-submission-auth.pcap" -r "$tmp/sll.pcap" -q -w "$tmp/mixed.pcap" \
        >/dev/null 2>"$tmp/mixed.err"
    rc=$?
    [ "$rc" -eq 2 ] || bad "mixed link types: exit $rc, expected 2"
    grep -q "different link types" "$tmp/mixed.err" || bad "mixed link types: $(head -1 "$tmp/mixed.err")"
fi
"$bin" -r "$f" -q -w "$tmp/no/such/dir/x.pcap" >/dev/null 2>"$tmp/nodir.err"
rc=$?
[ "$rc" -eq 3 ] || bad "unwritable -w: exit $rc, expected 3"
grep -q "no/such/dir/x.pcap" "$tmp/nodir.err" || bad "unwritable -w: does not name the file"
finish
