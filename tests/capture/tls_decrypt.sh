#!/bin/bash
# STARTTLS sessions decrypted with their key log (samples/09-starttls.pcapng + .keys: TLS 1.2
# and 1.3 on ports 25 and 587, AUTH PLAIN alice and AUTH LOGIN bob inside TLS): the dialogue
# inside TLS is read like one in clear (transactions, AUTH, outcome, rules), marked
# "decrypted", and agrees with what Wireshark decrypts with the same key log. The same
# secrets embedded in the pcapng (samples/09c-..., editcap --inject-secrets) give the same
# report without any option. Wrong or missing secrets leave the sessions "encrypted", say
# why in tls.decryption, and put nothing decrypted in the transcript.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_smtpsniff
cap=$src/samples/09-starttls.pcapng
keys=$src/samples/09-starttls.keys
embedded=$src/samples/09c-starttls-embedded-secrets.pcapng
for f in "$cap" "$keys" "$embedded"; do
    [ -s "$f" ] || { echo "FAIL: $f missing" >&2; exit 1; }
done

# tls: the four sessions that went on in TLS; clear: the fifth, which ignored STARTTLS.
tls='[$S[] | select(.tls.starttls == "established")]'

# ---- decrypted with --tls-keylog --------------------------------------------------------
sniff keys -r "$cap" --tls-keylog "$keys"
[ "$rc" -eq 0 ] || bad "keys: smtpsniff exited $rc: $(head -3 "$tmp/keys.err")"
ndjson_ok keys
check keys "five sessions, four of them in TLS" \
    "(\$S | length) == 5 and ($tls | length) == 4"
check keys "TLS 1.2 and 1.3 on ports 25 and 587" \
    "[$tls[] | \"\(.dest_port) \(.tls.version)\"] | sort ==
     [\"25 TLS 1.2\", \"25 TLS 1.3\", \"587 TLS 1.2\", \"587 TLS 1.3\"]"
check keys "every TLS session decrypted, both directions, no record failed" \
    "all($tls[]; .tls.decrypted == true and .tls.decryption.status == \"ok\" and
         .tls.decryption.client.failed == 0 and .tls.decryption.server.failed == 0 and
         .tls.decrypted_bytes.client > 0 and .tls.decrypted_bytes.server > 0 and
         .tls.encrypted == true and .partial == false)"
check keys "a decrypted session is delivered like a clear one, not 'encrypted'" \
    "all($tls[]; .outcome == \"delivered\" and .messages.delivered == 1)"
check keys "the transaction inside TLS: MAIL, RCPT, DATA 250, SHA-256, marked decrypted" \
    "all($tls[]; (.transactions | length) == 1 and
         (.transactions[0] | .decrypted == true and .tls == true and .mail_code == 250 and
          (.mail_from | test(\"@example\\\\.(org|net)$\")) and .rcpt[0].code == 250 and
          .rcpt_accepted == 1 and .data.code == 250 and .data.verb == \"DATA\" and
          (.data.sha256 | test(\"^[0-9a-f]{64}$\")) and .ended_by == \"data\"))"
check keys "the client said EHLO again inside TLS (RFC 3207 4.2), its reply is the one kept" \
    "all($tls[]; .helo.count == 2 and .commands.ehlo == 2 and .ehlo.decrypted == true and
         .ehlo.starttls == false and (.extensions | index(\"STARTTLS\")) == null)"
check keys "the dialogue ends with QUIT inside TLS" \
    "all($tls[]; .smtp.phase == \"quit\" and .smtp.quit_sent and .smtp.quit_replied)"
check keys "the clear part is not marked, everything after the 220 to STARTTLS is" \
    "all($tls[]; (.transcript | map(.line) | index(\"220 2.0.0 Ready to start TLS\")) as \$i |
         all(.transcript[:(\$i + 1)][]; .decrypted == null) and
         (.transcript[(\$i + 1):] | length) > 10 and
         all(.transcript[(\$i + 1):][]; .decrypted == true))"
check keys "AUTH PLAIN alice and AUTH LOGIN bob inside TLS on 587: user, success, not in clear" \
    "[$tls[] | select(.dest_port == 587) | .auth[] |
      \"\(.mechanism) \(.user) \(.result) \(.in_clear) \(.decrypted) \(.advertised)\"] | sort ==
     [\"LOGIN bob success false true true\", \"PLAIN alice success false true true\"]"
check keys "transactions after AUTH inside TLS are authenticated" \
    "all($tls[] | select(.dest_port == 587); .transactions[0].authenticated == true)"
check keys "no password, token or blob without --show-secrets" \
    "all($tls[] | .auth[]?; .password == null and .responses == null)"
if grep -q -e 'S3cret-' -e 'UzNjcmV0' -e 'AGFsaWNlAFMzY3' "$tmp/keys.json"; then
    bad "keys: a password of samples/secrets.txt is in the report without --show-secrets"
fi
check keys "no auth_in_clear or starttls_not_used for sessions inside TLS" \
    "all($tls[]; (has_anomaly(\"auth_in_clear\") or has_anomaly(\"starttls_not_used\")) | not)"
check keys "the fifth session, in clear, still gets starttls_not_used" \
    "[\$S[] | select(.tls.starttls == \"offered\") | has_anomaly(\"starttls_not_used\")] == [true]"

sniff shown -r "$cap" --tls-keylog "$keys" --show-secrets
check shown "with --show-secrets the passwords decrypted from TLS are shown" \
    "[\$S[] | .auth[]? | .password] | sort == [\"S3cret-alice-pw\", \"S3cret-bob-pw\"]"

# Byte by byte, and in two worker processes: the same report.
sniff chunked -r "$cap" --tls-keylog "$keys" --feed-chunk 1
cmp -s "$tmp/keys.json" "$tmp/chunked.json" ||
    bad "the decrypted report differs when the stream is fed byte by byte"
sniff workers -r "$cap" --tls-keylog "$keys" --workers 2
cmp -s "$tmp/keys.json" "$tmp/workers.json" || bad "the decrypted report differs with --workers 2"

# ---- Wireshark decrypts the same dialogue --------------------------------------------------
if command -v tshark >/dev/null; then
    # "<client port> C|S <verb or code>" per command and reply, in order.
    tshark -r "$cap" -o "tls.keylog_file:$keys" -Y smtp -T fields -E separator='|' \
        -e tcp.srcport -e tcp.dstport -e smtp.req.command -e smtp.response.code 2>/dev/null |
        awk -F'|' '
        { n = split($3, c, ",")
          for (i = 1; i <= n; i++) if (c[i] != "") print $1, "C", toupper(substr(c[i], 1, 4))
          n = split($4, r, ",")
          for (i = 1; i <= n; i++) if (r[i] != "") print $2, "S", r[i] }' >"$tmp/tshark"
    jq -r 'select(.type == "session") | .client.port as $k | .transcript[]? |
        select(((.body // false) | not) and ((.line | startswith("[")) | not) and
               .line != "<redacted>") |
        if .dir == "C" then "\($k) C \(.line | split(" ")[0] | ascii_upcase | .[0:4])"
        elif (.line[3:4] != "-") then "\($k) S \(.line[0:3])" else empty end' \
        "$tmp/keys.json" >"$tmp/ours"
    conns=0
    for k in $(cut -d' ' -f1 "$tmp/ours" "$tmp/tshark" | sort -u); do
        grep "^$k " "$tmp/tshark" | cut -d' ' -f2- >"$tmp/a"
        grep "^$k " "$tmp/ours" | cut -d' ' -f2- >"$tmp/b"
        if ! diff "$tmp/a" "$tmp/b" >"$tmp/diff"; then
            bad "client port $k: tshark (<) and smtpsniff (>) disagree on the decrypted dialogue"
            head -8 "$tmp/diff" >&2
        fi
        conns=$((conns + 1))
    done
    [ "$conns" -eq 5 ] || bad "compared $conns connections with tshark, expected 5"
    # Inside TLS, not only the clear part: MAIL is only ever sent after STARTTLS there.
    [ "$(grep -c ' C MAIL$' "$tmp/tshark")" -eq 5 ] ||
        bad "tshark did not decrypt the four TLS sessions (its key log option is broken?)"
else
    echo "tshark not installed: the comparison with Wireshark is skipped" >&2
fi

# ---- secrets embedded in the pcapng ---------------------------------------------------------
sniff embedded -r "$embedded"
[ "$rc" -eq 0 ] || bad "embedded: smtpsniff exited $rc: $(head -3 "$tmp/embedded.err")"
cmp -s "$tmp/keys.json" "$tmp/embedded.json" ||
    bad "the pcapng's own secrets give another report than --tls-keylog with the same secrets"
sniff both -r "$embedded" --tls-keylog "$keys"
cmp -s "$tmp/keys.json" "$tmp/both.json" ||
    bad "embedded secrets plus the same --tls-keylog give another report"
# Standard input is not read ahead for secrets: the sessions stay encrypted.
"$bin" -r - --json - <"$embedded" >"$tmp/stdin.json" 2>/dev/null
sniff plain -r "$cap"
cmp -s "$tmp/plain.json" "$tmp/stdin.json" ||
    bad "-r - read secrets out of standard input (or lost packets to them)"

# ---- without a key log: as before --------------------------------------------------------
check plain "no key log: encrypted, no decryption section, nothing marked decrypted" \
    "all($tls[]; .outcome == \"encrypted\" and .tls.decryption == null and
         .tls.decrypted == null and all(.transcript[]; .decrypted == null) and
         .transactions == null and .smtp.phase == \"tls\")"

# ---- wrong secrets: same connections, altered secrets --------------------------------------
awk 'NF == 3 { s = $3; $3 = (substr(s, 1, 1) == "0" ? "1" : "0") substr(s, 2) } { print }' \
    "$keys" >"$tmp/wrong.keys"
cmp -s "$keys" "$tmp/wrong.keys" && bad "the altered key log is the original"
sniff wrong -r "$cap" --tls-keylog "$tmp/wrong.keys"
[ "$rc" -eq 0 ] || bad "wrong: smtpsniff exited $rc"
check wrong "wrong secrets: auth_failed, encrypted, no plaintext" \
    "all($tls[]; .tls.decryption.status == \"auth_failed\" and .tls.decrypted == null and
         .outcome == \"encrypted\" and .transactions == null and .auth == null and
         .smtp.phase == \"tls\" and .partial == false)"
check wrong "wrong secrets: nothing decrypted in the transcript, no garbage" \
    "all(\$S[] | .transcript[]; .decrypted == null)"
jq -c 'select(.type == "session") | .transcript' "$tmp/plain.json" >"$tmp/plain.tl"
jq -c 'select(.type == "session") | .transcript' "$tmp/wrong.json" >"$tmp/wrong.tl"
cmp -s "$tmp/plain.tl" "$tmp/wrong.tl" ||
    bad "wrong secrets changed the transcript of the clear part"

# A key log that knows none of these connections.
printf 'CLIENT_RANDOM %064d %096d\n' 1 2 >"$tmp/other.keys"
sniff other -r "$cap" --tls-keylog "$tmp/other.keys"
check other "secrets of other connections: no_keys, encrypted" \
    "all($tls[]; .tls.decryption.status == \"no_keys\" and .outcome == \"encrypted\" and
         .tls.decrypted == null)"

# ---- the option itself ------------------------------------------------------------------
sniff missing -r "$cap" --tls-keylog "$tmp/no-such.keys"
[ "$rc" -eq 3 ] || bad "an unreadable --tls-keylog exits $rc, not 3"
grep -q "no-such.keys" "$tmp/missing.err" || bad "the error does not name the key log file"
[ -s "$tmp/missing.json" ] && bad "an unreadable --tls-keylog still wrote a report"
"$bin" --help | grep -q -- '--tls-keylog FILE' || bad "--help does not list --tls-keylog"
grep -qF 'tls\-keylog' "$src/docs/smtpsniff.1" || bad "the manual page does not list --tls-keylog"
finish
