#!/bin/bash
# Command-line contract: usage errors exit 2 with one line on stderr, unreadable captures
# and output errors exit 3 naming the cause, a capture cut mid-record is analysed up to
# its end and says so, --fail-on sets exit 1, the output is byte-identical across runs.
set -uo pipefail
bin=$1 build=$2 src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
expect() { # expect STATUS PATTERN -- command...
    local want=$1 pat=$2
    shift 3
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: '$*' exited $got, expected $want; stderr: $(head -3 "$tmp/err")" >&2
        fail=1
    elif [ -n "$pat" ] && ! grep -qE "$pat" "$tmp/err"; then
        echo "FAIL: '$*' stderr lacks /$pat/: $(head -3 "$tmp/err")" >&2
        fail=1
    fi
}
sample=$(ls "$src"/samples/*.pcap | head -1)

expect 2 "nothing to read" -- "$bin"
expect 2 "unknown option" -- "$bin" --bogus -r "$sample"
expect 2 "invalid packet count" -- "$bin" -r "$sample" -c abc
expect 2 "invalid port" -- "$bin" -r "$sample" --ports 25,99999
expect 2 "invalid severity" -- "$bin" -r "$sample" --fail-on panic
expect 2 "cannot be combined" -- "$bin" -r "$sample" -i lo
expect 2 "filter" -- "$bin" -r "$sample" "tcp port and and"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || { echo "FAIL: usage error is not one line" >&2; fail=1; }
expect 2 "'-r' is missing its argument" -- "$bin" -r
expect 2 "'--json' is missing its argument" -- "$bin" -r "$sample" --json
expect 2 "unknown user 'nosuchuser'" -- "$bin" -i lo -Z nosuchuser
expect 0 "warning: .s only applies to live capture" -- "$bin" -r "$sample" -s 96 -q
expect 0 "warning: --syn-timeout only applies to live capture" -- "$bin" -r "$sample" --syn-timeout 2 -q
"$bin" --help | grep -qE '^  -v ' || { echo "FAIL: --help does not document -v" >&2; fail=1; }
expect 0 "" -- "$bin" --help
expect 0 "" -- "$bin" --version

expect 3 "/nonexistent.pcap" -- "$bin" -r /nonexistent.pcap
expect 3 "nosuchif0: (no such capture interface|permission denied)" -- "$bin" -i nosuchif0
expect 3 "nosuchif0: (no such capture interface|permission denied)" -- "$bin" -i nosuchif0 --workers 2
expect 2 "standard input" -- "$bin" -r - --workers 2
printf 'this is not a capture file at all\n' >"$tmp/text.pcap"
expect 3 "text.pcap" -- "$bin" -r "$tmp/text.pcap"
: >"$tmp/empty.pcap"
expect 3 "empty.pcap" -- "$bin" -r "$tmp/empty.pcap"
expect 3 "write|space" -- "$bin" -r "$sample" --json /dev/full
expect 3 "write|space" -- sh -c '"$0" -r "$1" --json - >/dev/full' "$bin" "$sample"
expect 3 "write|space" -- sh -c '"$0" -r "$1" >/dev/full' "$bin" "$sample"

# Cut the sample in the middle of its last record: analysed up to there, and said so.
size=$(stat -c %s "$sample")
head -c $((size - 7)) "$sample" >"$tmp/cut.pcap"
expect 0 "middle of a packet" -- "$bin" -r "$tmp/cut.pcap" --json "$tmp/cut.json"
if ! tail -1 "$tmp/cut.json" | jq -e '.type == "summary" and .capture_truncated == true' >/dev/null; then
    echo "FAIL: summary of a cut capture does not say capture_truncated" >&2
    fail=1
fi
# ... in one warning, and capture_damaged gives the offset of the record that was cut.
[ "$(grep -c 'middle of a packet' "$tmp/err")" -eq 1 ] ||
    { echo "FAIL: the cut capture is not warned about exactly once: $(cat "$tmp/err")" >&2; fail=1; }
if ! tail -1 "$tmp/cut.json" | jq -e --arg f "$tmp/cut.pcap" '.capture_damaged ==
    [{"file": $f, "offset": .capture_damaged[0].offset,
      "reason": "file ends in the middle of a packet record"}] and
    .capture_damaged[0].offset > 24' >/dev/null; then
    echo "FAIL: capture_damaged of the cut capture: $(tail -1 "$tmp/cut.json" | jq -c .capture_damaged)" >&2
    fail=1
fi
# A file with no valid header stays unreadable (exit 3 with the reason).
printf '\xd4\xc3\xb2\xa1\x02\x00' >"$tmp/short.pcap"
expect 3 "short.pcap" -- "$bin" -r "$tmp/short.pcap"

# Options after the filter expression are options, not filter words.
expect 0 "" -- "$bin" -r "$sample" tcp -q --json "$tmp/after.json"
[ ! -s "$tmp/out" ] && tail -1 "$tmp/after.json" | jq -e '.type == "summary"' >/dev/null ||
    { echo "FAIL: options after the filter were not taken as options" >&2; fail=1; }

# A flipped bit in the last packet: counted always; ignored with --verify-checksums, and
# without it too, as that side's earlier segments verified (its checksums work).
cp "$sample" "$tmp/flip.pcap"
last=$(($(stat -c %s "$tmp/flip.pcap") - 1))
byte=$(od -An -tu1 -j "$last" -N1 "$tmp/flip.pcap" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 1)))" | dd of="$tmp/flip.pcap" bs=1 seek="$last" conv=notrunc 2>/dev/null
bad=$("$bin" -r "$tmp/flip.pcap" -q --verify-checksums --json - |
    jq -s -c '.[-1] | [.bad_checksums, .bad_checksums_ignored]')
good=$("$bin" -r "$tmp/flip.pcap" -q --json - | jq -s -c '.[-1] | [.bad_checksums, .bad_checksums_ignored]')
[ "$bad" = "[1,1]" ] && [ "$good" = "[1,1]" ] ||
    { echo "FAIL: wrong checksum counted $bad with --verify-checksums, $good without; expected [1,1]" >&2; fail=1; }

# --eml: one file per message, named after session and transaction, holding the envelope
# lines and then exactly the bytes whose SHA-256 the report gives (pipelined messages and
# BDAT chunks included).
mkdir -p "$tmp/eml"
"$bin" -r "$src/samples/10-pipelining-chunking.pcap" --eml "$tmp/eml" --json - -q >"$tmp/eml.json"
jq -r 'select(.type == "session") | .id as $i | .transactions | to_entries[] |
    select(.value.data.sha256) | "\(.value.data.sha256)  session-\($i)-\(.key + 1).eml"' \
    "$tmp/eml.json" | sort >"$tmp/eml.want"
jq -r 'select(.type == "session") | .transactions[].data | select(.eml_file) |
    "\(.eml_envelope_bytes) \(.eml_file)"' "$tmp/eml.json" |
    while read -r env file; do
        echo "$(tail -c +$((env + 1)) "$tmp/eml/$file" | sha256sum | cut -d' ' -f1)  $file"
    done | sort >"$tmp/eml.got"
if [ "$(wc -l <"$tmp/eml.want")" -lt 6 ] || ! diff "$tmp/eml.want" "$tmp/eml.got" >&2; then
    echo "FAIL: --eml files do not match the messages of the report" >&2
    fail=1
fi

# Same input, same bytes out.
"$bin" -r "$sample" --json "$tmp/a.json" -q && "$bin" -r "$sample" --json "$tmp/b.json" -q
cmp -s "$tmp/a.json" "$tmp/b.json" || { echo "FAIL: two runs differ" >&2; fail=1; }

# --fail-on: exit 1 when an anomaly at or above the severity was found.
if [ "$(jq -s '[.[] | select(.type=="session") | .anomalies[]?] | length' "$tmp/a.json")" -gt 0 ]; then
    expect 1 "" -- "$bin" -r "$sample" -q --fail-on info
fi
exit $fail
