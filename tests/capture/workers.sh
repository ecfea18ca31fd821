#!/bin/bash
# --workers N splits the connections across N processes; the merged output (JSON and text)
# must be byte-identical to one process's, for every sample.
set -uo pipefail
bin=$1 src=$3
shopt -s nullglob
fail=0 n=0
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    one=$("$bin" -r "$cap" --json - 2>/dev/null | md5sum)
    onet=$("$bin" -r "$cap" 2>/dev/null | md5sum)
    for w in 2 3; do
        many=$("$bin" -r "$cap" --json - --workers $w 2>/dev/null | md5sum)
        manyt=$("$bin" -r "$cap" --workers $w 2>/dev/null | md5sum)
        if [ "$one" != "$many" ] || [ "$onet" != "$manyt" ]; then
            echo "FAIL $(basename "$cap"): --workers $w output differs from one process" >&2
            fail=1
        fi
    done
    n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL: no samples" >&2; exit 1; }
"$bin" -r - --workers 2 </dev/null 2>/dev/null
[ $? -eq 2 ] || { echo "FAIL: --workers with stdin is not a usage error" >&2; fail=1; }
exit $fail
