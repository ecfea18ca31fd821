#!/bin/bash
# Reading files, sessions come in the order they began (their ids, the frame number of the
# first packet, ascending) in the NDJSON, the text view and --lines; --order end writes
# them as they end. 07d's refused session ends before the first one does.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_smtpsniff
cap=$src/samples/07d-service-unavailable.pcap
ids() { jq -r 'select(.type == "session") | .id' "$1" | tr '\n' ' '; }

"$bin" -r "$cap" -q --json "$tmp/start.json" || bad "start: exit $?"
"$bin" -r "$cap" -q --order end --json "$tmp/end.json" || bad "end: exit $?"
[ "$(ids "$tmp/start.json")" = "1 10 " ] || bad "NDJSON not in start order: $(ids "$tmp/start.json")"
[ "$(ids "$tmp/end.json")" = "10 1 " ] || bad "--order end: not as the sessions ended: $(ids "$tmp/end.json")"
tail -1 "$tmp/start.json" | jq -e '.type == "summary"' >/dev/null || bad "summary not last"
cmp -s <(jq -S -c . "$tmp/start.json" | sort) <(jq -S -c . "$tmp/end.json" | sort) ||
    bad "the two orders do not hold the same records"

"$bin" -r "$cap" >"$tmp/start.txt" || bad "text: exit $?"
[ "$(grep -o '^session [0-9]*' "$tmp/start.txt" | tr '\n' ' ')" = "session 1 session 10 " ] ||
    bad "text view not in start order"
grep -q '^summary:' <(tail -n +"$(grep -n '^session 10' "$tmp/start.txt" | cut -d: -f1)" "$tmp/start.txt") ||
    bad "text view: the summary does not follow the last session"

"$bin" -r "$cap" --lines-style tsv >"$tmp/l.tsv" || bad "lines: exit $?"
[ "$(grep -v '^#' "$tmp/l.tsv" | cut -f2 | tr '\n' ' ')" = "1 10 " ] || bad "lines not in start order"
first=$(grep -v '^#' "$tmp/l.tsv" | head -1 | cut -f1 | cut -d. -f1)
[ "$(grep '^#open' "$tmp/l.tsv" | cut -f2)" = "$(date -u -d "@$first" +%Y-%m-%d-%H-%M-%S)" ] ||
    bad "#open is not the first line's time"
tail -1 "$tmp/l.tsv" | grep -q '^#close' || bad "#close not last"

# Several files and workers: the same order, the same bytes.
"$bin" -r "$src/samples/06b-rst-injected.pcap" -r "$cap" -q --json "$tmp/m1.json"
"$bin" -r "$src/samples/06b-rst-injected.pcap" -r "$cap" -q --workers 2 --json "$tmp/m2.json"
cmp -s "$tmp/m1.json" "$tmp/m2.json" || bad "--workers 2 differs from one process"
[ "$(ids "$tmp/m1.json")" = "$(ids "$tmp/m1.json" | tr ' ' '\n' | sort -n | tr '\n' ' ')" ] ||
    bad "merged files not in start order: $(ids "$tmp/m1.json")"

"$bin" -r "$cap" --order sideways >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] || bad "--order sideways: not a one-line usage error"
finish
