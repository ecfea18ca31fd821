#!/bin/bash
# The closing summary answers an incident's questions: every figure of it (messages by
# outcome, refused recipients by reply, AUTH per user, per-server delays and unanswered
# handshakes, the same message in several sessions) must equal what jq computes from the
# session records of the same report, on every sample and on a generated capture of
# thousands of sessions; --workers 2 must give the same summary as one process; the text
# view lists servers by address and the capture's totals under their own heading.
set -uo pipefail
bin=$1 build=$2 src=$3
command -v jq >/dev/null || { echo "jq is needed (DEPS_TEST in scripts/deps.sh)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
check=$src/tests/capture/lib/summary_check.jq

check_report() { # NAME REPORT
    local bad
    bad=$(jq -n -c -f "$check" <"$2" 2>&1)
    if [ "$bad" != "[]" ]; then
        echo "FAIL $1: summary figures differ from the sessions: $bad" >&2
        fail=1
    fi
}

shopt -s nullglob
n=0
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    opts=()
    [ -f "${cap%.*}.opts" ] && read -ra opts <"${cap%.*}.opts"
    "$bin" -r "$cap" --json "$W/r.ndjson" -q "${opts[@]}" 2>/dev/null
    check_report "$(basename "$cap")" "$W/r.ndjson"
    n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL: no samples" >&2; exit 1; }

# Thousands of sessions: refused recipients, AUTH, IPv6, reply latencies past the cap of
# values kept per server (their percentiles then come from the histogram).
"$build/tests/benchgen" --size 8 --body-kb 1 "$W/gen.pcap" 2>/dev/null ||
    { echo "FAIL: benchgen" >&2; exit 1; }
"$bin" -r "$W/gen.pcap" --json "$W/gen.ndjson" -q 2>/dev/null
check_report generated "$W/gen.ndjson"
if jq -e 'select(.type == "summary") | .sessions >= 2000 and .recipients_refused.total > 0
        and .auth.attempts > 0 and ([.servers[].reply_ms.exact] | any(. == false))
        and ([.servers[].banner_delay_ms.exact] | all)' "$W/gen.ndjson" >/dev/null; then
    echo "ok generated: $(jq -c 'select(.type == "summary") | [.sessions,
        .recipients_refused.total, .auth.attempts]' "$W/gen.ndjson") sessions, refusals, AUTH"
else
    echo "FAIL generated: the capture lacks what the test needs" >&2
    fail=1
fi

# The same messages in several sessions: a capture given again an hour and two hours later
# (editcap, from tshark's package) holds each message three times, in sessions 1, 76, 151...
smp=$src/samples/01-submission-auth.pcap
editcap -t 3600 "$smp" "$W/later.pcap" && editcap -t 7200 "$smp" "$W/later2.pcap" ||
    { echo "FAIL: editcap" >&2; exit 1; }
thrice=(-r "$smp" -r "$W/later.pcap" -r "$W/later2.pcap")
"$bin" "${thrice[@]}" --json "$W/dup.ndjson" -q 2>/dev/null
check_report "three times" "$W/dup.ndjson"
if jq -e 'select(.type == "summary") | (.duplicate_messages | length) == 3
        and all(.duplicate_messages[]; .sessions == 3 and (.ids | length) == 3)' \
        "$W/dup.ndjson" >/dev/null; then
    echo "ok three times: 3 messages each in 3 sessions"
else
    echo "FAIL three times: $(jq -c 'select(.type == "summary") | .duplicate_messages' \
        "$W/dup.ndjson")" >&2
    fail=1
fi

# --workers 2: the same summary (JSON and text) as one process.
for cap in "$W/gen.pcap" "$src"/samples/07a-syn-unanswered.pcap three; do
    for view in json text; do
        a=(-r "$cap")
        [ "$cap" = three ] && a=("${thrice[@]}")
        [ $view = json ] && a+=(--json -)
        one=$("$bin" "${a[@]}" 2>/dev/null | md5sum)
        two=$("$bin" "${a[@]}" --workers 2 2>/dev/null | md5sum)
        if [ "$one" != "$two" ]; then
            echo "FAIL $(basename "$cap"): --workers 2 $view output differs" >&2
            fail=1
        fi
    done
done

# Text view: the capture's counters under "totals:", after every server block.
"$bin" -r "$W/gen.pcap" >"$W/gen.txt" 2>/dev/null
sed -n '/^summary:/,$p' "$W/gen.txt" >"$W/sum.txt"
last_server=$(grep -n '^server ' "$W/sum.txt" | tail -1 | cut -d: -f1)
totals=$(grep -n '^totals:$' "$W/sum.txt" | cut -d: -f1)
if [ -n "$totals" ] && [ -n "$last_server" ] && [ "$totals" -gt "$last_server" ] &&
    sed -n "$((totals + 1)),\$p" "$W/sum.txt" | grep -q '^  packets: '; then
    echo "ok text: totals in their own section"
else
    echo "FAIL text: no totals section after the servers" >&2
    fail=1
fi
# Servers by address: IPv4 before IPv6, numerically (not as strings).
grep '^server ' "$W/sum.txt" | sed 's/^server \(.*\): [0-9]* session.*/\1/' >"$W/order"
python3 - "$W/order" <<'PY' || fail=1
import ipaddress, sys
keys = [l.strip() for l in open(sys.argv[1]) if l.strip()]
def k(s):
    ip, port = (s[1:].split("]:") if s.startswith("[") else s.rsplit(":", 1))
    a = ipaddress.ip_address(ip)
    return (a.version, a.packed, int(port))
if len(keys) < 3 or keys != sorted(keys, key=k) or not any(":" in x.split("]")[0] for x in keys):
    print("FAIL text: servers not in address order:", keys, file=sys.stderr)
    sys.exit(1)
print("ok text: %d servers in address order, IPv6 last" % len(keys))
PY
exit $fail
