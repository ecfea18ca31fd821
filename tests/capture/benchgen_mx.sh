#!/bin/bash
# benchgen --profile mx: one seed gives the same bytes; smtpsniff's report of the capture
# agrees with what benchgen says it wrote (sessions, delivered messages, refused
# recipients, sessions refused at the greeting, failed AUTH, STARTTLS, client resets);
# the mail is MIME (a multipart/mixed message with a Received chain reaches the report's
# headers); --sessions N writes N sessions; the bulk profile's bytes do not depend on
# --profile bulk being given; bad arguments are exit 2.
set -uo pipefail
bin=$(realpath "$1") build=$2
command -v jq >/dev/null || { echo "jq is needed (DEPS_TEST in scripts/deps.sh)" >&2; exit 1; }
gen=$build/tests/benchgen
[ -x "$gen" ] || { echo "FAIL: $gen is not built" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
ok() { echo "ok $*"; }
bad() { echo "FAIL $*" >&2; fail=1; }

"$gen" --profile mx --sessions 600 --seed 4 "$W/a.pcap" 2>"$W/a.log" || bad "benchgen: $(cat "$W/a.log")"
"$gen" --profile mx --sessions 600 --seed 4 "$W/b.pcap" 2>/dev/null
cmp -s "$W/a.pcap" "$W/b.pcap" && ok "one seed, one capture" || bad "same seed, different bytes"
"$gen" --profile mx --sessions 600 --seed 5 "$W/c.pcap" 2>/dev/null
cmp -s "$W/a.pcap" "$W/c.pcap" && bad "two seeds, same bytes" || ok "another seed, other bytes"

# benchgen's own counts: "N sessions (...), M messages, R refused recipients, ..." and
# "mx profile: G refused at the greeting, X with every recipient refused, A failed AUTH,
# T STARTTLS, S ended by the client's RST".
num() { sed -n "s/.*[ (]\([0-9]*\) $1.*/\1/p" "$W/a.log" | head -1; }
sessions=$(num sessions) messages=$(num messages) refused=$(num 'refused recipients')
greet=$(num 'refused at the greeting') authf=$(num 'failed AUTH') tls=$(num STARTTLS)
rst=$(num 'ended by')
[ "$sessions" = 600 ] && ok "--sessions 600 wrote 600 sessions" || bad "sessions: $sessions"
for v in messages refused greet authf tls rst; do
    [ -n "${!v}" ] && [ "${!v}" -gt 0 ] || bad "benchgen did not report $v: $(cat "$W/a.log")"
done

"$bin" -r "$W/a.pcap" --json "$W/a.ndjson" -q 2>"$W/err"
rc=$?
[ $rc -le 1 ] || bad "smtpsniff exit $rc: $(head -3 "$W/err")"
S() { jq -r "select(.type == \"summary\") | $1" "$W/a.ndjson"; }
check() { # what got want
    [ "$2" = "$3" ] && ok "$1: $2" || bad "$1: smtpsniff says $2, benchgen wrote $3"
}
check "sessions" "$(jq -c 'select(.type == "session")' "$W/a.ndjson" | wc -l)" "$sessions"
check "messages delivered" "$(S '.messages.delivered')" "$messages"
check "refused recipients" "$(S '.recipients_refused.total')" "$refused"
check "refused at the greeting" "$(S '.anomalies.service_unavailable')" "$greet"
check "failed AUTH" "$(S '.anomalies.auth_failed')" "$authf"
check "STARTTLS established" "$(S '.outcomes.encrypted')" "$tls"
check "client resets" "$(jq -c 'select(.type == "session" and .tcp.end == "rst_client")' \
    "$W/a.ndjson" | wc -l)" "$rst"
# Both kinds of RCPT refusal, and nothing a well-formed capture should not give.
check "550 5.1.1 and 554 5.7.1 refusals" \
    "$(S '[.recipients_refused.reasons[] | "\(.code) \(.enhanced)"] | sort | join(",")')" \
    "550 5.1.1,554 5.7.1"
check "malformed, gaps, bad checksums" "$(S '"\(.malformed) \(.bad_checksums)"')" "0 0"
check "TLS parsed (SNI of every STARTTLS session)" \
    "$(jq -c 'select(.type == "session" and .tls.sni != null)' "$W/a.ndjson" | wc -l)" "$tls"
# Mail-like bodies: a Received chain starting with our MX and ordinary line lengths.
got=$(jq -r 'select(.type == "session") | .transactions[]? | .data? | select(. != null) |
    select((.headers.received[0] // "") | test("by mx[12]\\.example\\.net \\(Postfix\\)")) |
    .longest_line' "$W/a.ndjson" | sort -n | tail -1)
[ -n "$got" ] && [ "$got" -le 100 ] && ok "Received chains, longest line $got" ||
    bad "no Received chain from our MX or lines too long: '$got'"

# The default profile's bytes are those of --profile bulk.
"$gen" --size 2 --seed 3 "$W/d.pcap" 2>/dev/null
"$gen" --profile bulk --size 2 --seed 3 "$W/e.pcap" 2>/dev/null
cmp -s "$W/d.pcap" "$W/e.pcap" && ok "--profile bulk is the default" || bad "bulk differs"
# --mime on the bulk profile: multipart messages, every message still delivered.
"$gen" --mime --size 2 --seed 3 "$W/m.pcap" 2>"$W/m.log"
"$bin" -r "$W/m.pcap" --json "$W/m.ndjson" -q 2>/dev/null
want=$(sed -n 's/.* \([0-9]*\) messages.*/\1/p' "$W/m.log")
check "--mime: messages delivered" \
    "$(jq -r 'select(.type == "summary") | .messages.delivered' "$W/m.ndjson")" "$want"

for args in "--profile nope --size 1" "--sessions x" "--profile mx"; do
    # shellcheck disable=SC2086
    "$gen" $args "$W/x.pcap" 2>/dev/null
    rc=$?
    [ $rc -eq 2 ] && ok "benchgen $args: exit 2" || bad "benchgen $args: exit $rc"
done
exit $fail
