#!/bin/bash
# Every capture in samples/ is analysed and compared with its expected report beside it
# (samples/<name>.expected.ndjson; scripts/regen-expected rewrites them after a reviewed
# change). Then each is analysed again with the dissector fed one byte at a time: both
# reports must be identical (a parser must not depend on how TCP cut the stream).
set -uo pipefail
bin=$1 src=$3
shopt -s nullglob
samples=("$src"/samples/*.pcap "$src"/samples/*.pcapng)
if [ ${#samples[@]} -eq 0 ]; then
    echo "no captures in samples/" >&2
    exit 1
fi
fail=0 n=0
for cap in "${samples[@]}"; do
    exp="${cap%.*}.expected.ndjson"
    name=$(basename "$cap")
    # Options the capture is analysed with (samples/<name>.opts, words on one line): what
    # the lab's servers are configured with and no packet says (--local-domain...).
    opts=()
    [ -f "${cap%.*}.opts" ] && read -ra opts <"${cap%.*}.opts"
    if [ ! -f "$exp" ]; then
        echo "FAIL $name: no expected report ($(basename "$exp")); run scripts/regen-expected" >&2
        fail=1
        continue
    fi
    got=$("$bin" -r "$cap" --json - "${opts[@]}" 2>/dev/null)
    if ! diff -u "$exp" <(printf '%s\n' "$got") >/tmp/samples_diff.$$ 2>&1; then
        echo "FAIL $name: report differs from $(basename "$exp"):" >&2
        head -40 /tmp/samples_diff.$$ >&2
        fail=1
    fi
    chunked=$("$bin" -r "$cap" --json - --feed-chunk 1 "${opts[@]}" 2>/dev/null)
    if [ "$got" != "$chunked" ]; then
        echo "FAIL $name: report differs when the stream is fed byte by byte" >&2
        diff <(printf '%s\n' "$got") <(printf '%s\n' "$chunked") | head -10 >&2
        fail=1
    fi
    n=$((n + 1))
done
rm -f /tmp/samples_diff.$$
echo "checked $n sample captures" >&2
exit $fail
