#!/bin/bash
# smtpsniff summarize: the summary of NDJSON reports read back equals the summary of the
# analysis that wrote them; a report given twice (two sensors) counts each session once and
# names both; every figure equals what jq computes from the sessions, also for crafted
# records (the same message in several sessions, servers 192.0.2.9 and 192.0.2.10); bad
# lines are counted, an unreadable file is exit 3 with the reason, bad usage exit 2.
set -uo pipefail
bin=$(realpath "$1") build=$2 src=$3
command -v jq >/dev/null || { echo "jq is needed (DEPS_TEST in scripts/deps.sh)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
check=$src/tests/capture/lib/summary_check.jq
ok() { echo "ok $*"; }
not_ok() { echo "FAIL $*" >&2; fail=1; }
# The figures the summary builder makes (the capture's packet counters are not in a report).
figures='{sessions, anomalies, outcomes, tcp_ends, servers, messages, recipients_refused,
          auth, duplicate_messages, duplicate_messages_dropped, messages_untracked}'

"$build/tests/benchgen" --size 4 --body-kb 1 "$W/gen.pcap" 2>/dev/null || not_ok benchgen
shopt -s nullglob
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng "$W/gen.pcap"; do
    name=$(basename "$cap")
    opts=()
    [ -f "${cap%.*}.opts" ] && read -ra opts <"${cap%.*}.opts"
    "$bin" -r "$cap" --json "$W/a.ndjson" -q "${opts[@]}" 2>/dev/null
    want=$(jq -S -c "select(.type == \"summary\") | $figures" "$W/a.ndjson")
    got=$("$bin" summarize --json "$W/a.ndjson" | jq -S -c "$figures")
    [ "$want" = "$got" ] || not_ok "$name: summarize differs from the analysis' summary"
    # Standard input reads the same.
    got_stdin=$("$bin" summarize --json - <"$W/a.ndjson" | jq -S -c "$figures")
    [ "$want" = "$got_stdin" ] || not_ok "$name: summarize - differs from the file"
done
ok "summarize of each report equals the analysis' summary"

# Two sensors: the same report under two names. Each session once, both sensors named.
"$bin" -r "$W/gen.pcap" --json "$W/a.ndjson" -q 2>/dev/null
cp "$W/a.ndjson" "$W/b.ndjson"
(cd "$W" && "$bin" summarize --json a.ndjson b.ndjson) >"$W/two.json"
n=$(jq -s '[.[] | select(.type == "session")] | length' "$W/a.ndjson")
want=$(jq -S -c "select(.type == \"summary\") | $figures | del(.duplicate_messages)" "$W/a.ndjson")
got=$(jq -S -c "$figures | del(.duplicate_messages)" "$W/two.json")
if [ "$want" = "$got" ] && jq -e --argjson n "$n" '.joined_sessions == $n
        and .inputs[0].name == "a.ndjson" and .inputs[1].name == "b.ndjson"
        and .inputs[1].joined == $n and .inputs[0].joined == 0
        and (.joined | length) == 100
        and all(.joined[]; (.ids | length) == 2 and (.ids[0] | startswith("a.ndjson#"))
                and (.ids[1] | startswith("b.ndjson#")) and .ids[0][9:] == .ids[1][9:])' \
        "$W/two.json" >/dev/null; then
    ok "two sensors: $n sessions counted once, joined sessions name both inputs"
else
    not_ok "two sensors: $(jq -c '{joined_sessions, inputs, sessions}' "$W/two.json")"
fi
(cd "$W" && "$bin" summarize a.ndjson b.ndjson) >"$W/two.txt"
grep -q "^seen by several inputs, counted once: $n session(s)" "$W/two.txt" &&
    grep -q '^  1:.*: a.ndjson#[0-9]*, b.ndjson#[0-9]*$' "$W/two.txt" ||
    not_ok "two sensors: the text view does not name both: $(head -c 600 "$W/two.txt")"

# A second sensor whose clock is 2 s ahead: not the same session within the default 1 s
# window, the same within --join-window 2500.
jq -c 'if .type == "session" then .start |= (capture("^(?<s>[^.]+)[.](?<f>[0-9]+)Z$") as $m
        | $m.s + "Z" | fromdateiso8601 + 2 | todate | sub("Z$"; "." + $m.f + "Z"))
        else . end' "$W/a.ndjson" >"$W/late.ndjson"
j1=$("$bin" summarize --json "$W/a.ndjson" "$W/late.ndjson" | jq -c '[.joined_sessions, .sessions]')
j2=$("$bin" summarize --json --join-window 2500 "$W/a.ndjson" "$W/late.ndjson" |
    jq -c '[.joined_sessions, .sessions]')
if [ "$j1" = "[0,$((2 * n))]" ] && [ "$j2" = "[$n,$n]" ]; then
    ok "join window: 2 s apart not joined within 1 s, joined within 2.5 s"
else
    not_ok "join window: [joined, sessions] $j1 with 1 s, $j2 with 2.5 s ($n sessions)"
fi

# Crafted records: servers 192.0.2.9, 192.0.2.10, 198.51.100.1 and 2001:db8::1, every
# message with one Message-ID (the same message in several sessions). The figures of
# summarize equal jq's, the text view sorts the servers by address.
smp=$src/samples/01-submission-auth.pcap
"$bin" -r "$smp" --json - -q 2>/dev/null | jq -c 'select(.type == "session")' >"$W/s.ndjson"
for ip in 192.0.2.10 2001:db8::1 192.0.2.9 198.51.100.1; do
    jq -c --arg ip "$ip" '.server.ip = $ip | .dest_ip = $ip | .id += 1000 * ($ip | length)
        | .community_id = "x\(.id)" | .transactions[]?.data.headers.message_id = "<loop@x>"' \
        "$W/s.ndjson"
done >"$W/crafted.ndjson"
"$bin" summarize --json "$W/crafted.ndjson" >"$W/crafted.sum"
bad=$(cat "$W/crafted.ndjson" "$W/crafted.sum" | jq -n -c -f "$check")
[ "$bad" = "[]" ] || not_ok "crafted: summarize figures differ from the sessions: $bad"
jq -e '.duplicate_messages[0] | .message_id == "<loop@x>" and .sessions == 12
        and (.ids | length) == 12' "$W/crafted.sum" >/dev/null ||
    not_ok "crafted: the repeated message: $(jq -c .duplicate_messages "$W/crafted.sum")"
order=$("$bin" summarize "$W/crafted.ndjson" | sed -n 's/^server \([^ ]*\): .*/\1/p' | tr '\n' ' ')
if [ "$order" = "192.0.2.9:587 192.0.2.10:587 198.51.100.1:587 [2001:db8::1]:587 " ]; then
    ok "servers by address: $order"
else
    not_ok "servers not in address order: $order"
fi

# Bad lines: counted and told, the rest read; a line past 64 MiB is one of them.
{
    head -3 "$W/s.ndjson"
    echo '{"type": "session", broken'
    echo '[1, 2]'
    head -c $((64 * 1024 * 1024 + 10)) /dev/zero | tr '\0' 'x'
    echo
    echo '{"type": "anomaly"}'
} >"$W/bad.ndjson"
"$bin" summarize --json "$W/bad.ndjson" >"$W/bad.sum" 2>"$W/bad.err"
rc=$?
if [ $rc -eq 0 ] && jq -e '.inputs[0] | .bad_lines == 3 and .sessions == 3
        and .other_records == 1' "$W/bad.sum" >/dev/null &&
    grep -q 'bad.ndjson: 3 bad line(s), the first at line 4' "$W/bad.err"; then
    ok "bad lines counted (3, the first told), the others read"
else
    not_ok "bad lines: status $rc, $(jq -c .inputs "$W/bad.sum" 2>&1) $(cat "$W/bad.err")"
fi

# An unreadable input is exit 3 with the reason; bad usage exit 2.
"$bin" summarize "$W/missing.ndjson" >/dev/null 2>"$W/err"
rc=$?
[ $rc -eq 3 ] && grep -q "cannot read .*missing.ndjson: No such file" "$W/err" ||
    not_ok "missing file: status $rc, $(cat "$W/err")"
"$bin" summarize "$W" >/dev/null 2>"$W/err"
rc=$?
[ $rc -eq 3 ] && grep -q "Is a directory" "$W/err" || not_ok "directory: status $rc"
"$bin" summarize >/dev/null 2>&1
[ $? -eq 2 ] || not_ok "no input is not a usage error"
"$bin" summarize --bogus "$W/a.ndjson" >/dev/null 2>&1
[ $? -eq 2 ] || not_ok "an unknown option is not a usage error"
"$bin" summarize - - </dev/null >/dev/null 2>&1
[ $? -eq 2 ] || not_ok "stdin twice is not a usage error"
exit $fail
