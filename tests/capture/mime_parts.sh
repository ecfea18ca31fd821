#!/bin/bash
# The MIME parts of a message, against a second opinion: for a crafted message with nested
# multiparts, a quoted-printable part, a base64 PDF (its name in RFC 2231 continuations) and
# a message/rfc822 attachment, the parts Wireshark's MIME multipart dissector lists (content
# type and transfer encoding, in order) are smtpsniff's parts inside a multipart; the PDF's
# SHA-256 is that of its base64 body decoded by coreutils from the --eml file; the text view
# lists every part with its name and sizes.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
command -v tshark >/dev/null || { echo "SKIP: tshark not installed" >&2; exit 77; }
need_tool jq
need_tool base64
need_tool sha256sum
need_pcapgen
need_smtpsniff

s=mime_attach
gen "$s" || exit 1
mkdir -p "$tmp/eml"
analyse "$s" --eml "$tmp/eml" || exit 1

# tshark: one line for the message, '|' between the values of the parts of all multiparts.
if ! tshark -r "$tmp/$s.pcap" -Y imf -T fields -E aggregator='|' \
    -e mime_multipart.header.content-type -e mime_multipart.header.content-transfer-encoding \
    >"$tmp/tshark.txt" 2>"$tmp/tshark.err"; then
    bad "tshark failed: $(grep -v '^Running as' "$tmp/tshark.err" | head -2)"
fi
[ "$(wc -l <"$tmp/tshark.txt")" = 1 ] || bad "tshark decoded $(wc -l <"$tmp/tshark.txt") messages, not 1"
# "type/subtype;params" -> type/subtype in lowercase, one a line.
cut -f1 "$tmp/tshark.txt" | tr '|' '\n' | sed 's/;.*//' | tr '[:upper:]' '[:lower:]' >"$tmp/tshark.types"
cut -f2 "$tmp/tshark.txt" | tr '|' '\n' | tr '[:upper:]' '[:lower:]' >"$tmp/tshark.cte"
# smtpsniff: the parts whose parent is a multipart (the ones a multipart dissector sees).
view "$s" '.transactions[0].data.mime.parts as $p |
    [$p[] | select(.parent != null and ($p[.parent].type | startswith("multipart/")))]' \
    >"$tmp/ours.json"
jq -r '.[].type' "$tmp/ours.json" >"$tmp/ours.types"
jq -r '.[] | .transfer_encoding // empty' "$tmp/ours.json" >"$tmp/ours.cte"
[ "$(wc -l <"$tmp/ours.types")" -ge 5 ] || bad "only $(wc -l <"$tmp/ours.types") parts found"
diff "$tmp/tshark.types" "$tmp/ours.types" >&2 ||
    bad "content types differ from tshark's (< tshark, > smtpsniff)"
diff "$tmp/tshark.cte" "$tmp/ours.cte" >&2 ||
    bad "transfer encodings differ from tshark's (< tshark, > smtpsniff)"

check "$s" "the structure: nesting, names, sizes" '
    $S[0].transactions[0].data.mime.parts as $p |
    ($p | length) == 7 and $p[0].type == "multipart/mixed" and $p[0].depth == 0 and
    $p[1].type == "multipart/alternative" and $p[1].parent == 0 and
    $p[2].parent == 1 and $p[2].depth == 2 and $p[3].parent == 1 and
    $p[3].transfer_encoding == "quoted-printable" and $p[3].decoded_bytes < $p[3].bytes and
    $p[4].filename == "q3 report.pdf" and $p[4].name == "q3 report.pdf" and
    $p[4].disposition == "attachment" and $p[4].decoded_bytes == 3000 and
    $p[5].type == "message/rfc822" and $p[5].filename == "fwd.eml" and ($p[5].sha256 == null) and
    $p[6].parent == 5 and $p[6].depth == 2 and $p[6].type_given == false and
    ([$p[] | select(.unclosed or .no_boundary or .depth_limit)] | length) == 0'
check "$s" "the client software" \
    '$S[0].transactions[0].data.headers.user_agent == "Mozilla Thunderbird 115"'

# The PDF's content, decoded independently from the message file.
file=$(view "$s" '.transactions[0].data.eml_file' | jq -r .)
want=$(view "$s" '.transactions[0].data.mime.parts[4].sha256' | jq -r .)
got=$(awk '/^Content-Type: application\/pdf/ {pdf = 1} pdf && /^\r?$/ {body = 1; next}
           body && /^--/ {exit} body {print}' "$tmp/eml/$file" | tr -d '\r' | base64 -d |
    sha256sum | cut -d' ' -f1)
[ -n "$want" ] && [ "$want" = "$got" ] || bad "PDF part SHA-256 $want, base64 -d of the file: $got"

# The text view: every part, its name, decoded and encoded sizes.
"$bin" -r "$tmp/$s.pcap" >"$tmp/$s.txt" 2>&1
for line in 'part 0: multipart/mixed' '  part 2: text/plain 7bit 25 bytes' \
    'part 4: application/pdf "q3 report.pdf" attachment base64 3000 bytes decoded (' \
    'client software: Mozilla Thunderbird 115 (User-Agent)'; do
    grep -qF -- "$line" "$tmp/$s.txt" || bad "the text view lacks '$line'"
done
finish
