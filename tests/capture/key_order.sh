#!/bin/bash
# Key order (docs/schema.md): every sample's report, from one process and from --workers 2,
# (a) starts each session line with type, schema, id, start, end and the flow keys in that
# order, (b) starts the summary with type, schema, (c) holds every object's keys in the order
# of the list in src/util/jsonx.c (listed keys in its order, then the others by bytes, then
# the transcript), and (d) is, keys sorted, the expected report keys sorted: the order is
# the only thing it changes.
set -uo pipefail
bin=$1 src=$3
command -v jq >/dev/null || { echo "jq is needed (DEPS_TEST in scripts/deps.sh)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
not_ok() { echo "FAIL $*" >&2; fail=1; }

# The list as the writers use it, read from its one place: ["type", ..., null, "transcript"].
list=$(sed -n '/^const struct jx_key jx_key_order\[\] = {/,/^};/p' "$src/src/util/jsonx.c" |
    grep -o 'JX_K("[^"]*")\|{NULL, 0}' | sed 's/JX_K(\("[^"]*"\))/\1/; s/{NULL, 0}/null/' |
    jq -s -c .)
[ "$(jq 'map(select(. == null)) | length' <<<"$list")" = 1 ] ||
    { echo "FAIL: cannot read the key order list from src/util/jsonx.c: $list" >&2; exit 1; }
# Paths of the objects whose keys are not in that order (none expected).
misordered='
  ($list | index(null)) as $rest
  | def rank: . as $k | ($list | index($k)) // $rest;
  [paths(objects) as $p | getpath($p) | keys_unsorted as $k
   | select($k != ($k | sort_by([rank, explode]))) | $p]'

shopt -s nullglob
n=0
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    name=$(basename "$cap")
    exp="${cap%.*}.expected.ndjson"
    opts=()
    [ -f "${cap%.*}.opts" ] && read -ra opts <"${cap%.*}.opts"
    for w in 1 2; do
        "$bin" -r "$cap" --json "$W/out.ndjson" -q --workers $w "${opts[@]}" 2>/dev/null
        [ -s "$W/out.ndjson" ] || { not_ok "$name (workers $w): no report"; continue; }
        # (a) the session lines lead with what, when and the flow.
        lead=$(jq -r 'select(.type == "session") | keys_unsorted[:11] | join(",")' \
            "$W/out.ndjson" | sort -u)
        want="type,schema,id,start,end,duration_ms,src_ip,src_port,dest_ip,dest_port,proto"
        [ -z "$lead" ] || [ "$lead" = "$want" ] ||
            not_ok "$name (workers $w): session keys start $lead"
        # (b) the summary (written last) leads with type, schema.
        sum=$(tail -n 1 "$W/out.ndjson" | jq -r 'keys_unsorted[:2] | join(",")')
        [ "$sum" = "type,schema" ] || not_ok "$name (workers $w): summary keys start $sum"
        # (c) every object of every line keeps the order.
        bad=$(jq -c --argjson list "$list" "$misordered | select(length > 0)" "$W/out.ndjson" |
            head -n 1)
        [ -z "$bad" ] || not_ok "$name (workers $w): keys out of order at $bad"
        # (d) the same content as the expected report, line by line.
        if ! diff <(jq -S -c . "$exp") <(jq -S -c . "$W/out.ndjson") >/dev/null; then
            not_ok "$name (workers $w): differs from $(basename "$exp") beyond key order"
        fi
        # Not merely sorted: the order written is not the alphabetical one.
        [ "$(head -n 1 "$W/out.ndjson")" != "$(head -n 1 "$W/out.ndjson" | jq -S -c .)" ] ||
            not_ok "$name (workers $w): keys are sorted alphabetically"
    done
    n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL: no samples" >&2; exit 1; }
[ $fail -eq 0 ] && echo "ok key order of $n samples, one process and --workers 2"
exit $fail
