#!/bin/bash
# --tls-keylog FILE on a live capture follows the key log as it grows: smtpsniff starts on
# lo before FILE exists, then a STARTTLS dialogue on loopback (tests/tools/starttls_pair.py)
# writes its client's secrets to FILE as its handshakes go (SSLKEYLOGFILE). The session is
# decrypted all the same, TLS 1.3 and TLS 1.2: the dialogue inside TLS (EHLO again, MAIL,
# RCPT, DATA, QUIT) is in the report, marked decrypted. Needs root (capture on lo).
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_smtpsniff
need_tool jq
need_tool python3
need_tool openssl
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: capturing on lo needs root" >&2
    exit 77
fi
pair=$src/tests/tools/starttls_pair.py
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=mx.example.net -days 2 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || { bad "openssl req failed"; finish; }

# run NAME TLSFLAG: one live capture with one dialogue whose key log appears after the start.
run() {
    local name=$1 flag=$2 port=$((40000 + RANDOM % 20000))
    local keys=$tmp/$name.keys
    "$bin" -i lo --ports "$port" --tls-keylog "$keys" --json "$tmp/$name.json" -q \
        2>"$tmp/$name.err" &
    local pid=$!
    # Listening once the capture is open: the kernel starts giving it packets from there.
    for _ in $(seq 100); do
        [ -e "/proc/$pid/fd" ] && ls -l "/proc/$pid/fd" 2>/dev/null | grep -q socket && break
        sleep 0.05
    done
    sleep 0.3
    [ -e "$keys" ] && bad "$name: the key log existed before the dialogue"
    python3 "$pair" "$port" "$tmp/cert.pem" "$tmp/key.pem" "$keys" $flag 2>"$tmp/$name.pair.err" ||
        bad "$name: the dialogue failed: $(head -2 "$tmp/$name.pair.err")"
    [ -s "$keys" ] || bad "$name: the dialogue wrote no key log"
    sleep 0.5
    kill -INT "$pid"
    wait "$pid"
    local rc=$?
    [ "$rc" -eq 0 ] || bad "$name: smtpsniff exited $rc: $(head -3 "$tmp/$name.err")"
    ndjson_ok "$name"
}

for v in 13 12; do
    flag=
    [ $v = 12 ] && flag=--tls12
    run "tls$v" "$flag"
    check "tls$v" "one STARTTLS session, TLS 1.${v#1}, decrypted with the followed key log" \
        "(\$S | length) == 1 and \$S[0].tls.starttls == \"established\" and
         \$S[0].tls.version == \"TLS 1.${v#1}\" and \$S[0].tls.decrypted == true and
         \$S[0].tls.decryption.status == \"ok\" and \$S[0].tls.decrypted_bytes.client > 0 and
         \$S[0].tls.decrypted_bytes.server > 0"
    check "tls$v" "the dialogue inside TLS is read: EHLO again, MAIL, RCPT, DATA 250, QUIT" \
        "\$S[0] | .helo.count == 2 and .ehlo.decrypted == true and
         (.transactions | length) == 1 and .transactions[0].decrypted == true and
         .transactions[0].mail_from == \"alice@example.org\" and
         .transactions[0].rcpt[0].code == 250 and .transactions[0].data.code == 250 and
         .smtp.phase == \"quit\" and .smtp.quit_replied == true and .outcome == \"delivered\""
    check "tls$v" "the commands after STARTTLS are in the transcript, marked decrypted" \
        "[\$S[0].transcript[] | select(.decrypted == true and .dir == \"C\") | .line |
          ascii_downcase] | index(\"mail from:<alice@example.org>\") != null and
         index(\"rcpt to:<bob@example.net>\") != null and index(\"quit\") != null"
done
finish
