#!/bin/bash
# -r reads gzip-compressed captures, told by the magic bytes 1f 8b and not by the name:
# .pcap.gz and .pcapng.gz give byte-identical NDJSON to the uncompressed file, from a file
# or from standard input (-r -), whatever they are called, concatenated gzip members too.
# A cut-off or damaged gzip file is analysed up to the damage and reported in
# capture_damaged (cut off: capture_truncated too) like a truncated capture, exit 0; a
# gzip file with no capture inside is exit 3 with the reason.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_smtpsniff
need_tool jq
need_tool gzip

for s in 01-submission-auth.pcap 02-auth-failed.pcapng 08-deferrals-limits.pcapng 09-starttls.pcapng; do
    f=$src/samples/$s
    opts=()
    [ -f "${f%.*}.opts" ] && read -r -a opts <"${f%.*}.opts"
    gzip -9c "$f" >"$tmp/$s.gz"
    sniff "plain-$s" -r "$f" "${opts[@]}"
    sniff "gz-$s" -r "$tmp/$s.gz" "${opts[@]}"
    [ "$rc" -eq 0 ] || bad "$s.gz: exited $rc: $(head -2 "$tmp/gz-$s.err")"
    cmp -s "$tmp/plain-$s.json" "$tmp/gz-$s.json" || bad "$s.gz: NDJSON differs from the plain file's"
    # Standard input, and a name that says nothing of gzip.
    "$bin" -r - "${opts[@]}" --json - <"$tmp/$s.gz" >"$tmp/stdin-$s.json" 2>/dev/null ||
        bad "$s.gz on stdin: failed"
    cmp -s "$tmp/plain-$s.json" "$tmp/stdin-$s.json" || bad "$s.gz on stdin: NDJSON differs"
    cat "$tmp/$s.gz" | "$bin" -r - "${opts[@]}" --json - >"$tmp/pipe-$s.json" 2>/dev/null ||
        bad "$s.gz through a pipe: failed"
    cmp -s "$tmp/plain-$s.json" "$tmp/pipe-$s.json" || bad "$s.gz through a pipe: NDJSON differs"
    cp "$tmp/$s.gz" "$tmp/renamed-$s"
    sniff "renamed-$s" -r "$tmp/renamed-$s" "${opts[@]}"
    cmp -s "$tmp/plain-$s.json" "$tmp/renamed-$s.json" || bad "$s gzip under a plain name: differs"
done
# A plain capture named .gz is read as it is.
cp "$src/samples/01-submission-auth.pcap" "$tmp/notgz.pcap.gz"
sniff notgz -r "$tmp/notgz.pcap.gz"
cmp -s "$tmp/plain-01-submission-auth.pcap.json" "$tmp/notgz.json" || bad "a plain file named .gz: differs"
# Two members (gzip a; gzip b; cat) are one stream: here a pcapng of two sections, read like
# the two files concatenated; padding after the last member is ignored, as by gzip -d.
a=$src/samples/02-auth-failed.pcapng b=$src/samples/08-deferrals-limits.pcapng
cat "$a" "$b" >"$tmp/two.pcapng"
{ gzip -c "$a"; gzip -c "$b"; printf '\0\0\0\0'; } >"$tmp/members.gz"
sniff two -r "$tmp/two.pcapng"
sniff members -r "$tmp/members.gz"
cmp -s "$tmp/two.json" "$tmp/members.json" || bad "two gzip members: differ from the files concatenated"
check members "two gzip members: both sections read" "\$sum.packets > $(tail -1 "$tmp/plain-08-deferrals-limits.pcapng.json" | jq .packets)"
# Several files, some compressed, merged in timestamp order like plain ones.
sniff merged_plain -r "$src/samples/01-submission-auth.pcap" -r "$src/samples/08-deferrals-limits.pcapng"
sniff merged_gz -r "$tmp/01-submission-auth.pcap.gz" -r "$src/samples/08-deferrals-limits.pcapng"
cmp -s "$tmp/merged_plain.json" "$tmp/merged_gz.json" || bad "merged with a gzip file: differs"

# ---- damage ------------------------------------------------------------------------------
f=$src/samples/08-deferrals-limits.pcapng
gz=$tmp/08-deferrals-limits.pcapng.gz
all=$(tail -1 "$tmp/plain-08-deferrals-limits.pcapng.json" | jq .packets)
head -c $(($(stat -c %s "$gz") / 2)) "$gz" >"$tmp/cut.gz"
sniff cut -r "$tmp/cut.gz"
[ "$rc" -eq 0 ] || bad "cut gzip: exited $rc"
ndjson_ok cut
check cut "cut off: analysed up to the cut, truncated and damaged named like a cut capture" \
    "\$sum.packets > 0 and \$sum.packets < $all and \$sum.capture_truncated == true and
     (\$sum.capture_damaged | length) == 1 and
     (\$sum.capture_damaged[0] | .file == \"$tmp/cut.gz\" and (.offset | type) == \"number\" and
      (.reason | test(\"gzip\")))"
grep -q "cut.gz: gzip data ends in the middle of the stream" "$tmp/cut.err" ||
    bad "cut gzip: no warning naming the file: $(head -2 "$tmp/cut.err")"
# The sessions read before the cut are those of the plain file cut at the same place.
off=$(tail -1 "$tmp/cut.json" | jq '.capture_damaged[0].offset')
head -c "$off" "$f" >"$tmp/cut-plain.pcapng"
sniff cutplain -r "$tmp/cut-plain.pcapng"
cmp -s <(grep -v '"type":"summary"' "$tmp/cut.json") <(grep -v '"type":"summary"' "$tmp/cutplain.json") ||
    bad "cut gzip: sessions differ from the plain file cut at the same offset"
# A damaged byte in the compressed data: analysed up to it, named in capture_damaged.
python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[len(d) // 2] ^= 0x55
open(sys.argv[2], 'wb').write(d)" "$gz" "$tmp/bad.gz"
sniff bad -r "$tmp/bad.gz"
[ "$rc" -eq 0 ] || bad "damaged gzip: exited $rc"
check bad "damaged: analysed up to the damage, named in capture_damaged" \
    "\$sum.packets > 0 and \$sum.packets < $all and (\$sum.capture_damaged | length) == 1 and
     \$sum.capture_damaged[0].file == \"$tmp/bad.gz\""
# A damaged CRC at the end: every packet is read, and the damage still told.
python3 -c "
import sys
d = bytearray(open(sys.argv[1], 'rb').read()); d[-6] ^= 0xff
open(sys.argv[2], 'wb').write(d)" "$gz" "$tmp/crc.gz"
sniff crc -r "$tmp/crc.gz"
check crc "bad CRC-32: all packets, damage told by zlib" \
    "\$sum.packets == $all and (\$sum.capture_damaged | length) == 1 and
     (\$sum.capture_damaged[0].reason | test(\"damaged gzip data\"))"
# No capture inside, or a gzip header alone: exit 3, one line.
printf 'not a capture\n' | gzip -c >"$tmp/text.gz"
"$bin" -r "$tmp/text.gz" >/dev/null 2>"$tmp/text.err"
rc=$?
[ "$rc" -eq 3 ] || bad "gzip of text: exit $rc, expected 3"
head -c 12 "$gz" | "$bin" -r - >/dev/null 2>"$tmp/hdr.err"
rc=$?
[ "$rc" -eq 3 ] || bad "a gzip header alone: exit $rc, expected 3"
grep -q "stdin: gzip data ends in the middle" "$tmp/hdr.err" || bad "a gzip header alone: $(head -1 "$tmp/hdr.err")"
finish
