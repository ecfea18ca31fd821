#!/bin/bash
# The text view says in words what the JSON says in fields: the TLS details and why the
# dialogue was not decrypted (with the --tls-keylog hint), transcript times with their unit,
# decrypted lines marked, what each DATA size counts, the server's name from its greeting
# (or "(no name)"), and what a deferred outcome means. Read from the samples.
set -uo pipefail
bin=$1 src=$3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# has FILE TEXT: the text view in FILE holds the line part TEXT.
has() {
    grep -qF -- "$2" "$1" || { echo "FAIL: $(basename "$1"): no '$2'" >&2; fail=1; }
}
hasnt() {
    ! grep -qE -- "$2" "$1" || { echo "FAIL: $(basename "$1"): '$2' is there" >&2; fail=1; }
}

s=$src/samples
"$bin" -r "$s/09-starttls.pcapng" >"$tmp/tls" 2>/dev/null
has "$tmp/tls" "tls: established TLS 1.2 TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 sni=mx.example.net"
has "$tmp/tls" "tls certificate: subject CN=mx.example.net,O=smtpsniff lab, issuer CN=mx.example.net,O=smtpsniff lab, expires 2026-12-25T13:20:35Z"
has "$tmp/tls" "tls: the dialogue after the handshake is encrypted and not read: pass --tls-keylog FILE"
"$bin" -r "$s/09-starttls.pcapng" --tls-keylog "$s/09-starttls.keys" >"$tmp/tlskeys" 2>/dev/null
has "$tmp/tlskeys" "tls alerts: server warning close_notify, client warning close_notify"
has "$tmp/tlskeys" "tls decryption: ok (records decrypted/failed: client 13/0, server 8/0)"
has "$tmp/tlskeys" "+1419.389 ms C (decrypted): MAIL FROM:<sender@example.org>"
hasnt "$tmp/tlskeys" "pass --tls-keylog"
: >"$tmp/empty.keys"
"$bin" -r "$s/09-starttls.pcapng" --tls-keylog "$tmp/empty.keys" >"$tmp/nokeys" 2>/dev/null
has "$tmp/nokeys" "tls decryption: no_keys: the key log has no secret for this connection"
has "$tmp/nokeys" "tls: pass --tls-keylog FILE with this connection's secrets"

"$bin" -r "$s/01-submission-auth.pcap" >"$tmp/sub" 2>/dev/null
has "$tmp/sub" "  server: mx.example.net (Postfix)  greeting 220 after 61.4 ms"
has "$tmp/sub" 'DATA message 247 bytes (dot-unstuffed, without the end-of-data "." line) -> 250'
has "$tmp/sub" '+80.019 ms C: [message: 250 bytes on the wire, the end-of-data "." line and stuffing dots included]'
has "$tmp/sub" "+81.055 ms --  [tcp: end=fin, FIN from both sides]"
has "$tmp/sub" "    client software: swaks v20201014.0 jetmore.org/john/code/swaks/ (X-Mailer)"
has "$tmp/sub" "    part 0: text/plain 27 bytes"
# No bare number that reads as seconds.
hasnt "$tmp/sub" '^ +[0-9]+\.[0-9]{3} [CS]:'

"$bin" -r "$s/07d-service-unavailable.pcap" >"$tmp/421" 2>/dev/null
has "$tmp/421" "  server: mx.example.net (software not named)  greeting 421 after 23.3 ms"
"$bin" -r "$s/07e-no-banner.pcapng" >"$tmp/nobanner" 2>/dev/null
hasnt "$tmp/nobanner" "server: "

"$bin" -r "$s/08-deferrals-limits.pcapng" >"$tmp/def" 2>/dev/null
has "$tmp/def" "deferred: the server answered with a temporary failure (4xx); the sending MTA keeps the message queued and retries, and bounces it only once its queue lifetime runs out"
exit $fail
