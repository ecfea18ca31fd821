#!/bin/bash
# What the report must say about clients and servers that do not follow the RFCs, from
# real captures of the lab's Postfix (samples/16*.pcap, made by scripts/lab/run 16;
# samples/README.md says what each reproduces). Each assertion states the correct reading
# of the packets, whatever the analyser says today.
#   16a nested MAIL refused 503: the message belongs to the first MAIL, not the refused one
#   16b EHLO refused 501 inside a transaction: the transaction goes on (RFC 5321 4.1.4)
#   16c malformed BDAT lines are commands, never chunk headers
#   16d AUTH blobs (pipelined, after a refused mechanism, cut by the close) never written
#       without --show-secrets, written with it
#   16e plain SMTP on port 465 is read as SMTP
#   16f STARTTLS answered 220, the client goes on in clear: not an encrypted session
#   16g DATA accepted without an envelope: the message is still reported
#   16h the server's idle timeout (421) after a delivered message is not a deferral
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_smtpsniff
samples=$src/samples

# capture NAME: the path of samples/NAME.pcap.
capture() {
    local d
    for d in "$samples"; do
        [ -f "$d/$1.pcap" ] && { echo "$d/$1.pcap"; return 0; }
    done
    return 1
}

# load NAME [ARGS...]: analyses the capture NAME into $tmp/NAME.json (and the text view
# into $tmp/NAME.txt); returns 1 when the analysis failed.
load() {
    local name=$1 cap
    shift
    if ! cap=$(capture "$name"); then
        bad "$name: samples/$name.pcap missing"
        return 1
    fi
    sniff "$name" -r "$cap" "$@"
    if [ "$rc" -ne 0 ]; then
        bad "$name: smtpsniff exited $rc: $(head -3 "$tmp/$name.err")"
        return 1
    fi
    "$bin" -r "$cap" "$@" >"$tmp/$name.txt" 2>&1
    ndjson_ok "$name"
}

# tcheck NAME WHAT EXPR: check, with $T the sessions in the order they began (by the
# frame number of their SYN), $P those with the lab's Postfix (mx.example.net).
tcheck() {
    check "$1" "$2" "(\$S | sort_by(.id)) as \$T |
        (\$T | map(select(.server.ip == \"10.25.2.2\" or .server.ip == \"10.25.2.16\"))) as \$P | $3"
}

# jq: the accepted message of a transaction, and the client's transcript lines.
jq_defs="$jq_defs"'
def delivered: ((.data // {}).code // 0) >= 200 and ((.data // {}).code // 0) < 300;
def client_lines: [.transcript[]? | select(.dir == "C") | .line];
def server_lines: [.transcript[]? | select(.dir == "S") | .line];
'

# --- 16a: MAIL inside a transaction --------------------------------------------------
if load 16a-nested-mail; then
    tcheck 16a-nested-mail "one session" '($T | length) == 1'
    tcheck 16a-nested-mail "the first MAIL holds the recipient and the delivered message" '
        [$T[0].transactions[] | select(.mail_from == "a@example.org")] as $a |
        ($a | length) == 1 and $a[0].mail_code == 250 and
        [$a[0].rcpt[] | {to, code}] == [{"to": "postmaster@example.net", "code": 250}] and
        $a[0].data.code == 250 and ($a[0] | delivered)'
    tcheck 16a-nested-mail "the refused MAIL is a transaction of its own that delivered nothing" '
        [$T[0].transactions[] | select(.mail_from == "b@example.org")] as $b |
        ($b | length) == 1 and $b[0].mail_code == 503 and $b[0].mail_enhanced == "5.5.1" and
        (($b[0].rcpt // []) | length) == 0 and ($b[0] | delivered | not)'
    tcheck 16a-nested-mail "the message is never attributed to the refused sender" '
        [$T[0].transactions[] | select(delivered) | .mail_from] == ["a@example.org"]'
    tcheck 16a-nested-mail "one message delivered" \
        '$T[0].outcome == "delivered" and $T[0].messages.delivered == 1 and
         $T[0].messages.rejected == 0 and $T[0].messages.incomplete == 0'
    tcheck 16a-nested-mail "QUIT answered" '$T[0].smtp.quit_sent and $T[0].smtp.quit_replied'
fi

# --- 16b: a failed EHLO inside a transaction ------------------------------------------
if load 16b-ehlo-failed; then
    tcheck 16b-ehlo-failed "one session, one transaction" \
        '($T | length) == 1 and ($T[0].transactions | length) == 1'
    tcheck 16b-ehlo-failed "the EHLO refused 501 is seen" \
        'any($T[0].smtp.error_replies[]; .code == 501 and .command == "EHLO")'
    tcheck 16b-ehlo-failed "the transaction is not ended by the refused EHLO" '
        $T[0].transactions[0] | .mail_from == "sender@example.org" and .mail_code == 250 and
        [.rcpt[] | .code] == [250] and .ended_by != "helo"'
    tcheck 16b-ehlo-failed "the message is delivered" '
        $T[0].transactions[0].data.code == 250 and ($T[0].transactions[0] | delivered) and
        $T[0].outcome == "delivered" and $T[0].messages.delivered == 1'
fi

# --- 16c: malformed BDAT ----------------------------------------------------------------
if load 16c-bdat-malformed; then
    tcheck 16c-bdat-malformed "four Postfix sessions and one with the lax server" \
        '($P | length) == 4 and ($T | map(select(.server.ip == "10.25.2.17")) | length) == 1'
    tcheck 16c-bdat-malformed "Postfix: each malformed BDAT is a command answered 521" '
        [$P[] | [client_lines[] | select(startswith("BDAT"))]] ==
            [["BDAT 5 X"], ["BDAT 1234 SCRAMBLE"], ["BDAT -5"], ["BDAT 99999999999999999999999"]] and
        all($P[]; any(.smtp.error_replies[]; .code == 521 and .command == "BDAT"))'
    tcheck 16c-bdat-malformed "Postfix: no malformed BDAT is framed as a chunk" '
        all($P[]; ([.transcript[] | select(.line | startswith("[chunk"))] | length) == 0 and
                  .smtp.phase != "bdat" and .smtp.pending_count == 0 and
                  ([.transactions[] | select(delivered)] | length) == 0 and
                  (has_anomaly("died_after_data") | not))'
    tcheck 16c-bdat-malformed "lax server: the malformed lines are commands, the good BDAT one chunk" '
        ($T | map(select(.server.ip == "10.25.2.17")) | .[0]) as $l |
        [$l | client_lines[] | select(startswith("BDAT"))][0:4] ==
            ["BDAT 5 X", "BDAT 1234 SCRAMBLE", "BDAT -5", "BDAT 99999999999999999999999"] and
        ([$l | client_lines[] | select(test("^BDAT [0-9]+ LAST$"))] | length) == 1 and
        ([$l.transcript[] | select(.line | test("^\\[chunk: [0-9]+ bytes\\]$"))] | length) == 1 and
        ($l | client_lines | .[-1]) == "QUIT"'
    tcheck 16c-bdat-malformed "lax server: each malformed BDAT answered 501" '
        ($T | map(select(.server.ip == "10.25.2.17")) | .[0]) as $l |
        ([$l.smtp.error_replies[] | select(.code == 501 and .command == "BDAT")] | length) == 4'
    tcheck 16c-bdat-malformed "lax server: the message is delivered by BDAT LAST" '
        ($T | map(select(.server.ip == "10.25.2.17")) | .[0]) as $l |
        ($l.transactions | length) == 1 and $l.transactions[0].data.verb == "BDAT" and
        $l.transactions[0].data.chunks == 1 and $l.transactions[0].data.code == 250 and
        $l.outcome == "delivered" and $l.messages.delivered == 1'
    tcheck 16c-bdat-malformed "lax server: QUIT sent and answered, nothing pending, not died" '
        ($T | map(select(.server.ip == "10.25.2.17")) | .[0]) as $l |
        $l.smtp.quit_sent == true and $l.smtp.quit_replied == true and
        $l.smtp.pending_count == 0 and (($l.commands.unknown // 0) == 0) and
        ($l | has_anomaly("died_mid_session") | not) and ($l | has_anomaly("died_after_data") | not)'
fi

# --- 16d: AUTH secrets -------------------------------------------------------------------
# The secrets of samples/secrets.txt in the forms they take on the wire: the password,
# its base64 (LOGIN), the PLAIN blob, and the base64 of the user name (a LOGIN blob too).
secret_needles() {
    local user pw
    while read -r user pw; do
        [ -n "$user" ] && [ "${user#\#}" = "$user" ] || continue
        printf '%s\n' "$pw"
        printf '%s' "$pw" | base64 -w0; echo
        printf '\0%s\0%s' "$user" "$pw" | base64 -w0; echo
        # base64 of a short user name ("Ym9i") could occur by chance in other text:
        # only the ones of 8 characters or more are grepped.
        local u64
        u64=$(printf '%s' "$user" | base64 -w0)
        [ ${#u64} -ge 8 ] && printf '%s\n' "$u64"
    done <"$samples/secrets.txt"
}
b64() { printf '%s' "$1" | base64 -w0; }
pw() { sed -n "s/^$1 //p" "$samples/secrets.txt"; }
alice64=$(b64 "$(pw alice)") bob64=$(b64 "$(pw bob)")
if load 16d-auth-pipelined; then
    secret_needles >"$tmp/needles"
    # Only the secret and where it was found are printed (file:secret), never whole lines.
    if grep -o -F -f "$tmp/needles" "$tmp/16d-auth-pipelined.json" "$tmp/16d-auth-pipelined.txt" >"$tmp/hits"; then
        bad "16d-auth-pipelined: secrets in the output without --show-secrets: $(sed "s|^$tmp/||" "$tmp/hits" | sort -u | tr '\n' ' ')"
    fi
    if grep -o -E '(^|[^A-Za-z0-9+/])Ym9i($|[^A-Za-z0-9+/=])' "$tmp/16d-auth-pipelined.json" \
        "$tmp/16d-auth-pipelined.txt" >"$tmp/hits"; then
        bad "16d-auth-pipelined: bob's LOGIN blob (Ym9i) is in the output: $(sed "s|^$tmp/||" "$tmp/hits" | sort -u | tr '\n' ' ')"
    fi
    tcheck 16d-auth-pipelined "three sessions on 587" '($T | length) == 3 and all($T[]; .server.port == 587)'
    tcheck 16d-auth-pipelined "pipelined AUTH LOGIN: one exchange, success as alice" '
        ($T[0].auth | length) == 1 and $T[0].auth[0].mechanism == "LOGIN" and
        $T[0].auth[0].result == "success" and $T[0].auth[0].code == 235 and
        $T[0].auth[0].user == "alice"'
    tcheck 16d-auth-pipelined "pipelined AUTH LOGIN: the blobs are not commands" '
        (($T[0].commands.unknown // 0) == 0) and $T[0].commands.total == 3 and
        ([$T[0] | client_lines[] | select(. != "<redacted>")] == ["EHLO ws1.example.net", "AUTH LOGIN", "QUIT"])'
    tcheck 16d-auth-pipelined "pipelined AUTH LOGIN: every command answered, QUIT too" \
        '$T[0].smtp.pending_count == 0 and $T[0].smtp.quit_replied == true'
    tcheck 16d-auth-pipelined "AUTH XYZ: refused 535, the lines after it answered 500, QUIT answered" '
        $T[1].auth[0].mechanism == "XYZ" and $T[1].auth[0].result == "failure" and
        $T[1].auth[0].code == 535 and
        ([$T[1].smtp.error_replies[] | select(.code == 500)] | length) == 2 and
        $T[1].smtp.pending_count == 0 and $T[1].smtp.quit_replied == true'
    tcheck 16d-auth-pipelined "cut password line: an AUTH LOGIN for alice that never finished" '
        $T[2].auth[0].mechanism == "LOGIN" and $T[2].auth[0].user == "alice" and
        $T[2].auth[0].result != "success" and $T[2].smtp.quit_sent == false'
fi
# With --show-secrets the blobs are written: so the checks above can fail.
if cap=$(capture 16d-auth-pipelined); then
    sniff 16d-shown -r "$cap" --show-secrets
    if [ "$rc" -eq 0 ]; then
        tcheck 16d-shown "--show-secrets: each session shows its password's base64" "
            (\$T | length) == 3 and
            any(\$T[0].transcript[]; .line | contains(\"$alice64\")) and
            any(\$T[1].transcript[]; .line | contains(\"$bob64\")) and
            any(\$T[2].transcript[]; .line | contains(\"$alice64\"))"
    else
        bad "16d --show-secrets: smtpsniff exited $rc"
    fi
fi

# --- 16e: plain SMTP on port 465 -----------------------------------------------------------
if load 16e-plain-on-465; then
    tcheck 16e-plain-on-465 "one session on 465" '($T | length) == 1 and $T[0].server.port == 465'
    tcheck 16e-plain-on-465 "the banner is read as SMTP" \
        '$T[0].banner.code == 220 and $T[0].banner.text == "mx.example.net ESMTP Postfix"'
    tcheck 16e-plain-on-465 "the transaction is delivered" '
        ($T[0].transactions | length) == 1 and $T[0].transactions[0].mail_from == "sender@example.org" and
        $T[0].transactions[0].data.code == 250 and $T[0].outcome == "delivered"'
    tcheck 16e-plain-on-465 "not reported as encrypted" \
        '$T[0].tls.encrypted != true and $T[0].outcome != "encrypted"'
    tcheck 16e-plain-on-465 "QUIT answered" '$T[0].smtp.quit_sent and $T[0].smtp.quit_replied'
fi

# --- 16f: STARTTLS answered 220, the client goes on in clear -----------------------------
if load 16f-starttls-plain; then
    tcheck 16f-starttls-plain "one session, STARTTLS answered 220" \
        '($T | length) == 1 and $T[0].tls.code == 220'
    tcheck 16f-starttls-plain "the session is not reported as encrypted" \
        '$T[0].tls.encrypted != true and $T[0].outcome != "encrypted" and
         $T[0].tls.handshake_complete != true'
    tcheck 16f-starttls-plain "the plain EHLO after the 220 is in the dialogue" \
        '($T[0] | client_lines) == ["EHLO ws1.example.net", "STARTTLS", "EHLO ws1.example.net"]'
    tcheck 16f-starttls-plain "the TLS handshake never happened" '$T[0] | has_anomaly("starttls_failed")'
fi

# --- 16g: DATA accepted with no envelope ----------------------------------------------------
if load 16g-data-no-envelope; then
    tcheck 16g-data-no-envelope "one session" '($T | length) == 1'
    tcheck 16g-data-no-envelope "the message is reported in a transaction without an envelope" '
        ($T[0].transactions | length) == 1 and
        ($T[0].transactions[0] | .mail_code == null and .mail_from == null and
            ((.rcpt // []) | length) == 0 and .data.verb == "DATA" and .data.code_354 == 354 and
            .data.code == 250)'
    tcheck 16g-data-no-envelope "delivered" '$T[0].outcome == "delivered" and $T[0].messages.delivered == 1'
fi

# --- 16h: idle until the server's timeout -------------------------------------------------
if load 16h-idle-after-message; then
    tcheck 16h-idle-after-message "one session, the message delivered" '
        ($T | length) == 1 and ($T[0].transactions | length) == 1 and
        $T[0].transactions[0].data.code == 250 and $T[0].outcome == "delivered" and
        $T[0].messages.delivered == 1 and $T[0].messages.deferred == 0'
    tcheck 16h-idle-after-message "the 421 timeout answers no command" \
        'any($T[0].smtp.error_replies[]; .code == 421 and .command == null)'
    tcheck 16h-idle-after-message "an idle close is not a deferral" \
        '($T[0] | has_anomaly("deferred") | not) and ($T[0] | has_anomaly("died_after_data") | not)'
fi

finish
