#!/bin/bash
# No password, token or AUTH blob of the samples' test accounts (samples/secrets.txt: "user
# password" per line) appears in any output - JSON, text view, stderr, .eml names - unless
# --show-secrets is given; and with it they do appear (so this test can fail).
set -uo pipefail
bin=$1 src=$3
list="$src/samples/secrets.txt"
[ -s "$list" ] || { echo "FAIL: $list missing" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Each secret in the forms it takes on the wire: the password itself, base64 of it (LOGIN),
# and the PLAIN blobs (RFC 4616: authzid NUL authcid NUL passwd).
: >"$tmp/needles"
while read -r user pw; do
    [ -n "$user" ] && [ "${user#\#}" = "$user" ] || continue
    printf '%s\n' "$pw" >>"$tmp/needles"
    printf '%s' "$pw" | base64 -w0 >>"$tmp/needles"; echo >>"$tmp/needles"
    printf '\0%s\0%s' "$user" "$pw" | base64 -w0 >>"$tmp/needles"; echo >>"$tmp/needles"
    printf '%s\0%s\0%s' "$user" "$user" "$pw" | base64 -w0 >>"$tmp/needles"; echo >>"$tmp/needles"
done <"$list"
shopt -s nullglob
fail=0 shown=0
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    mkdir -p "$tmp/eml"
    "$bin" -r "$cap" --json "$tmp/out.json" --eml "$tmp/eml" >"$tmp/out.txt" 2>"$tmp/err.txt"
    ls "$tmp/eml" >"$tmp/names.txt"
    if grep -F -f "$tmp/needles" "$tmp/out.json" "$tmp/out.txt" "$tmp/err.txt" "$tmp/names.txt" \
        >"$tmp/hits"; then
        echo "FAIL $(basename "$cap"): a secret is in the output without --show-secrets:" >&2
        cut -c1-200 "$tmp/hits" | head -3 >&2
        fail=1
    fi
    rm -rf "$tmp/eml"
    "$bin" -r "$cap" --json "$tmp/shown.json" -q --show-secrets 2>/dev/null
    grep -q -F -f "$tmp/needles" "$tmp/shown.json" && shown=$((shown + 1))
done
if [ "$shown" -eq 0 ]; then
    echo "FAIL: --show-secrets never showed a known secret: the needles or the samples are wrong" >&2
    fail=1
fi
exit $fail
