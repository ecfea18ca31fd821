#!/bin/bash
# Second opinion on every sample of real traffic: per connection, the SMTP commands and
# reply codes Wireshark's dissector decodes are those of smtpsniff's transcript, in order.
# Where tshark 4.0 is known to see less, the comparison says so rather than hiding it:
#  - BDAT (RFC 3030) is not decoded by tshark: connections that use it are compared up to
#    their first BDAT only;
#  - a session encrypted after STARTTLS is compared on its clear part, as both see it;
#  - tshark names the STARTTLS command "STAR" (it keeps four characters of a verb);
#  - the differences listed in KNOWN below were each checked by hand against the packets:
#    smtpsniff is right in all of them.
# A multi-line reply counts once (its last line), as tshark reports one code per reply.
set -uo pipefail
bin=$1 src=$3
command -v tshark >/dev/null || { echo "FAIL: tshark is not installed (scripts/test installs it)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# sample|diff line|why tshark differs
KNOWN='10-pipelining-chunking.pcap|> C QUIT|tshark does not decode a command that follows the end of message data in the same segment (RFC 2920 allows QUIT there)
12a-smuggling.pcap|> C QUIT|tshark does not end the message at <LF>.<LF>; Postfix did (its 250 follows), so QUIT is a command
16d-auth-pipelined.pcap|< C YWXP|tshark reads the AUTH LOGIN answers sent in the same segment as AUTH as commands; they are the exchange'"'"'s base64 lines (Postfix answers them 334, 334, 235)
16d-auth-pipelined.pcap|< C UZNJ|the same: the second base64 answer of that AUTH LOGIN exchange'
# tshark decides TLS on port 465 from the port: told that a capture's 465 is SMTP (it is, in
# clear), it decodes the dialogue, and the two must agree.
DECODE_AS='16e-plain-on-465.pcap|tcp.port==465,smtp'
shopt -s nullglob
fail=0 n=0 conns=0
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    name=$(basename "$cap")
    # One line per command or reply: "<client ip>:<client port> C|S <verb or code>".
    as=$(printf '%s\n' "$DECODE_AS" | awk -F'|' -v f="$name" '$1 == f { print "-d"; print $2 }')
    # shellcheck disable=SC2086 # as is empty or "-d RULE", two words
    tshark -r "$cap" $as -Y smtp -T fields -E separator='|' -e ip.src -e ipv6.src -e tcp.srcport \
        -e ip.dst -e ipv6.dst -e tcp.dstport -e smtp.req.command -e smtp.response.code \
        2>/dev/null | awk -F'|' '
        { s = ($1 != "" ? $1 : $2); d = ($4 != "" ? $4 : $5)
          n = split($7, c, ",")
          for (i = 1; i <= n; i++) if (c[i] != "") print s ":" $3, "C", (toupper(c[i]) == "STAR" ? "STARTTLS" : toupper(c[i]))
          n = split($8, r, ","); for (i = 1; i <= n; i++) if (r[i] != "") print d ":" $6, "S", r[i] }' \
        >"$tmp/tshark"
    "$bin" -r "$cap" --json - 2>/dev/null | jq -r 'select(.type == "session") |
        (if (.client.ip | contains(":")) then .client.ip else .client.ip end) as $ip |
        "\($ip):\(.client.port)" as $k | .transcript[]? |
        select(((.body // false) | not) and ((.line | startswith("[")) | not) and
               .line != "<redacted>") |
        if .dir == "C" then "\($k) C \(.line | split(" ")[0] | ascii_upcase)"
        elif (.line[3:4] != "-") then "\($k) S \(.line[0:3])" else empty end' >"$tmp/ours"
    for k in $(cut -d' ' -f1 "$tmp/ours" "$tmp/tshark" | sort -u); do
        grep "^$k " "$tmp/tshark" | cut -d' ' -f2- >"$tmp/a"
        grep "^$k " "$tmp/ours" | cut -d' ' -f2- >"$tmp/b"
        # Up to the first BDAT, which tshark does not decode.
        if grep -q '^C BDAT' "$tmp/b"; then
            first=$(grep -n '^C BDAT' "$tmp/b" | head -1 | cut -d: -f1)
            head -n $((first - 1)) "$tmp/b" >"$tmp/b2" && mv "$tmp/b2" "$tmp/b"
            head -n $((first - 1)) "$tmp/a" >"$tmp/a2" && mv "$tmp/a2" "$tmp/a"
        fi
        diff "$tmp/a" "$tmp/b" | grep '^[<>]' >"$tmp/diff"
        unexplained=0
        while IFS= read -r line; do
            why=$(printf '%s\n' "$KNOWN" | awk -F'|' -v f="$name" -v l="$line" '$1 == f && $2 == l { print $3 }')
            if [ -n "$why" ]; then
                echo "known difference, $name $k '$line': $why" >&2
            else
                unexplained=1
            fi
        done <"$tmp/diff"
        if [ "$unexplained" -ne 0 ]; then
            echo "FAIL $name $k: tshark (<) and smtpsniff (>) disagree:" >&2
            head -8 "$tmp/diff" >&2
            fail=1
        fi
        conns=$((conns + 1))
    done
    n=$((n + 1))
done
echo "compared $conns connections in $n samples with tshark" >&2
exit $fail
