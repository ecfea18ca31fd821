#!/bin/bash
# Faults an attacker or a hostile environment can provoke, each with its outcome checked:
#   - terminal escapes in wire text (text view and stderr stay free of control bytes);
#   - endless or oversized TLS key logs (bounded reading, what was not loaded is said);
#   - a closed output pipe (quiet end, documented status, no process left behind);
#   - SIGINT while reading a FIFO (an interrupted analysis, like on a regular file);
#   - --workers memory on a skewed load (one long session among many short ones).
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

# bytes_outside FILE: the bytes of FILE that are neither printable ASCII nor LF, in hex.
bytes_outside() {
    LC_ALL=C tr -d '\n\040-\176' <"$1" | od -An -tx1 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//'
}

# ---- terminal escapes ----------------------------------------------------------------
gen term_escapes || finish
"$bin" -r "$tmp/term_escapes.pcap" >"$tmp/te.txt" 2>"$tmp/te.err"
rc=$?
[ "$rc" -eq 0 ] || bad "term_escapes: text view exited $rc: $(head -3 "$tmp/te.err")"
left=$(bytes_outside "$tmp/te.txt")
[ -z "$left" ] || bad "term_escapes: the text view wrote control or non-text bytes: $left"
# ESC appears as \x1b, the literal text \x1b as \\x1b: both there, told apart.
grep -qF 'EHLO client\x1b]0;pwned\x07\x0d\x08\x1b[2K' "$tmp/te.txt" ||
    bad "term_escapes: the EHLO name's ESC, BEL, CR, BS are not escaped as \\xNN"
grep -qF '\u009b1m\u202e\\x1b.example.org' "$tmp/te.txt" ||
    bad "term_escapes: C1 in UTF-8, RLO or the literal \\x1b not escaped apart"
for what in 'S: 220 mx.example.net\x1b]0;' 'mail from=<alice\x1b]0;' 'to=<bob\x1b]0;' \
    'S: 250 2.1.0 Ok\x1b]0;' 'C: X\x1b]0;' '-> 250 2.0.0 queued\x1b]0;' 'user=us\x1b[2Ker' \
    'C: EHLO client\x1b]0;pwned\x07\x0d\x08\x1b[2K\x9b31m'; do
    grep -qF -- "$what" "$tmp/te.txt" || bad "term_escapes: no escaped '$what' in the text view"
done
# The JSON keeps the wire text as JSON escapes; the literal stays a backslash.
sniff te_json -r "$tmp/term_escapes.pcap"
check te_json "JSON keeps ESC and the literal \\x1b apart" \
    '$S[0].helo.name | test("\u001b]0;pwned") and test("\\\\x1b\\.example")'
# stderr: a name with control bytes, quoted in an error message.
evil=$tmp/$'cap\e]0;t\a\r.pcap'
"$bin" -r "$evil" >/dev/null 2>"$tmp/te_name.err"
rc=$?
[ "$rc" -eq 3 ] || bad "term_escapes: unreadable file with a hostile name exited $rc, expected 3"
left=$(bytes_outside "$tmp/te_name.err")
[ -z "$left" ] || bad "term_escapes: stderr carries control bytes: $left"
grep -qF 'cap\x1b]0;t\x07\x0d.pcap' "$tmp/te_name.err" ||
    bad "term_escapes: the file name is not quoted escaped: $(head -c 200 "$tmp/te_name.err")"

# ---- a closed output pipe --------------------------------------------------------------
# smtpsniff ... | head: the run ends at once, status 3, no message, no process left behind.
gen hostile_idle_sessions 20000 || finish
big=$tmp/hostile_idle_sessions.pcap
left_behind() {
    # every smtpsniff still running on this test's capture (zombies have no arguments)
    pgrep -f -- "$big" | tr '\n' ' '
}
for w in 1 2 3; do
    for out in "--json -" ""; do
        # shellcheck disable=SC2086 # $out is one or two words
        "$bin" -r "$big" --workers "$w" $out 2>"$tmp/pipe.err" | head -c 100 >/dev/null
        st=${PIPESTATUS[0]}
        what="--workers $w ${out:-(text)} | head -c 100"
        [ "$st" -eq 3 ] || bad "$what: status $st, expected 3 (closed output pipe)"
        [ ! -s "$tmp/pipe.err" ] || bad "$what: said something: $(head -c 200 "$tmp/pipe.err")"
        sleep 0.2
        pids=$(left_behind)
        [ -z "$pids" ] || { bad "$what: processes left behind: $pids"; kill -9 $pids; }
    done
done

# Live: the workers die with their parent, whatever kills it (here SIGKILL, which the
# parent cannot catch), also after -Z has dropped their privileges.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    "$bin" -i lo -Z nobody --workers 2 -q "tcp port 1 and host 192.0.2.77" \
        >/dev/null 2>"$tmp/live.err" &
    lp=$!
    sleep 1
    kids=$(pgrep -P "$lp" | tr '\n' ' ')
    if [ -z "$kids" ]; then
        echo "note: no live workers on lo ($(head -c 200 "$tmp/live.err")); not checked" >&2
    else
        kill -9 "$lp"
        wait "$lp" 2>/dev/null
        sleep 0.5
        for k in $kids; do
            if kill -0 "$k" 2>/dev/null && ! grep -q zombie "/proc/$k/status" 2>/dev/null; then
                bad "live worker $k outlived its killed parent"
                kill -9 "$k"
            fi
        done
    fi
else
    echo "note: not root (or no user nobody): live workers' death with the parent not checked" >&2
fi

# ---- SIGINT and SIGTERM while reading a FIFO or standard input ---------------------------
# The writer keeps the FIFO open after a session that is still open (the body ACKed, no
# reply yet), so smtpsniff is blocked in read() when the signal comes. It must end as an
# interrupted analysis: the open session reported (capture_end), the summary with
# interrupted: true, and the status of an interrupted regular file.
gen died_after_data || finish
dad=$tmp/died_after_data.pcap
dad_size=$(stat -c %s "$dad")
# blocked_in_read PID: waits (at most 30 s) until PID has read the whole capture, catches
# SIGINT and SIGTERM (its analysis has begun) and sleeps: blocked on the FIFO. Seen twice in
# a row, a tenth of a second apart.
blocked_in_read() {
    local i r seen=0 cgt st
    for i in $(seq 300); do
        r=$(sed -n 's/^rchar: //p' "/proc/$1/io" 2>/dev/null)
        cgt=$(sed -n 's/^SigCgt:\t//p' "/proc/$1/status" 2>/dev/null)
        st=$(sed -n 's/^State:\t\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
        if [ -n "$r" ] && [ "$r" -ge "$dad_size" ] && [ "$st" = S ] &&
            (((0x${cgt:-0} & 0x4002) == 0x4002)); then
            seen=$((seen + 1))
            [ "$seen" -ge 2 ] && return 0
        else
            seen=0
        fi
        sleep 0.1
    done
    return 1
}
fifo_case() {
    local name=$1 sig=$2 how=$3 pid wpid
    rm -f "$tmp/fifo"
    mkfifo "$tmp/fifo"
    { cat "$dad"; sleep 60; } >"$tmp/fifo" &
    wpid=$!
    if [ "$how" = stdin ]; then
        "$bin" -r - --json - <"$tmp/fifo" >"$tmp/$name.json" 2>"$tmp/$name.err" &
    else
        "$bin" -r "$tmp/fifo" --json - >"$tmp/$name.json" 2>"$tmp/$name.err" &
    fi
    pid=$!
    if ! blocked_in_read "$pid"; then
        bad "$name: smtpsniff did not read the capture from the FIFO"
    fi
    kill "-$sig" "$pid"
    wait "$pid"
    rc=$?
    kill "$wpid" 2>/dev/null
    pkill -P "$wpid" sleep 2>/dev/null
    wait "$wpid" 2>/dev/null
    [ "$rc" -eq 0 ] || bad "$name: SIG$sig while reading a FIFO ($how): status $rc, expected 0: $(head -c 200 "$tmp/$name.err")"
    [ ! -s "$tmp/$name.err" ] || bad "$name: stderr: $(head -c 200 "$tmp/$name.err")"
    ndjson_ok "$name" &&
        check "$name" "the open session reported, the summary says interrupted" \
            '($S | length) == 1 and $S[0].tcp.end == "capture_end" and $sum.interrupted == true'
}
fifo_case fifo_int INT file
fifo_case fifo_term TERM file
fifo_case stdin_int INT stdin

# The same signal on a regular file (long enough to be caught in the middle).
gen hostile_idle_sessions 100000 || finish
"$bin" -r "$tmp/hostile_idle_sessions.pcap" --json - >"$tmp/reg_int.json" 2>"$tmp/reg_int.err" &
pid=$!
sleep 0.1
kill -INT "$pid"
wait "$pid"
rc=$?
if jq -e -s 'map(select(.type == "summary"))[0].interrupted == true' "$tmp/reg_int.json" \
    >/dev/null 2>&1; then
    [ "$rc" -eq 0 ] || bad "reg_int: SIGINT on a regular file: status $rc, the FIFO's is 0"
else
    echo "note: the regular file was read before SIGINT came; its status not compared" >&2
fi
rm -f "$tmp/hostile_idle_sessions.pcap"

# ---- TLS key logs: endless, oversized, too many connections ----------------------------
# An endless stream is refused with a one-line reason and status 3, like an unreadable
# file; the bounds are KEYLOG_MAX_FILE_BYTES and KEYLOG_MAX_FILE_LINES (keylog.h). The
# timeout only stops a run that would never end.
gen eth || finish
for kl in /dev/zero lines; do
    if [ "$kl" = lines ]; then
        timeout 120 "$bin" -r "$tmp/eth.pcap" -q --tls-keylog <(yes '') 2>"$tmp/kl.err"
    else
        timeout 120 "$bin" -r "$tmp/eth.pcap" -q --tls-keylog "$kl" 2>"$tmp/kl.err"
    fi
    rc=$?
    [ "$rc" -eq 3 ] || bad "--tls-keylog $kl (endless): status $rc, expected 3"
    [ "$(wc -l <"$tmp/kl.err")" -eq 1 ] && grep -q 'cannot read the TLS key log .*more than' \
        "$tmp/kl.err" || bad "--tls-keylog $kl: not one line saying why: $(head -c 300 "$tmp/kl.err")"
done
# More connections than KEYLOG_MAX_CONNECTIONS (1048576): the rest is said, not dropped
# without a word. Each line names a new client random.
extra=10
sniff kl_full -r "$tmp/eth.pcap" --tls-keylog <(awk -v n=$((1048576 + extra)) \
    'BEGIN { for (i = 0; i < n; i++) printf "CLIENT_RANDOM %064x %096x\n", i, i + 1 }')
[ "$rc" -eq 0 ] || bad "kl_full: status $rc: $(head -c 300 "$tmp/kl_full.err")"
grep -q "warning: $extra TLS secret(s) not loaded" "$tmp/kl_full.err" ||
    bad "kl_full: no warning about the secrets not loaded: $(head -c 300 "$tmp/kl_full.err")"
ndjson_ok kl_full && check kl_full "the summary counts what was not loaded" \
    "\$sum.tls_keylog_dropped == $extra"
# The same with workers: counted once, not once per worker.
"$bin" -r "$tmp/eth.pcap" --workers 2 --json - --tls-keylog <(awk -v n=$((1048576 + extra)) \
    'BEGIN { for (i = 0; i < n; i++) printf "CLIENT_RANDOM %064x %096x\n", i, i + 1 }') \
    >"$tmp/kl_w.json" 2>"$tmp/kl_w.err"
check kl_w "--workers 2: the summary counts what was not loaded once" \
    "\$sum.tls_keylog_dropped == $extra"

# ---- --workers on a skewed load: the parent's memory --------------------------------------
# One long session in small segments keeps its worker far behind the others, which find
# many short sessions meanwhile. The parent may hold only a window of their records
# (WRK_WINDOW_BYTES, 8 MiB, in workers.c), not all of them: its peak RSS is sampled from
# /proc (VmHWM only grows, so a late sample sees every earlier peak). Bound: 28 MiB, against
# about 16 with the window and 39 without it. Not checked under AddressSanitizer, whose
# quarantine keeps freed memory. The output stays byte-identical to one process's.
if grep -qa __asan_init "$bin"; then
    echo "note: AddressSanitizer build: the parent's memory is not checked" >&2
elif gen workers_skew 32M; then
    skew=$tmp/workers_skew.pcap
    "$bin" -r "$skew" --json - 2>/dev/null | md5sum >"$tmp/skew.one"
    "$bin" -r "$skew" --workers 8 --json - >"$tmp/skew.json" 2>"$tmp/skew.err" &
    ppid_=$!
    peak=0
    while kill -0 "$ppid_" 2>/dev/null; do
        v=$(awk '/^VmHWM:/ {print $2}' "/proc/$ppid_/status" 2>/dev/null)
        [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
        sleep 0.02
    done
    wait "$ppid_"
    rc=$?
    [ "$rc" -eq 0 ] || bad "workers_skew: --workers 8 exited $rc: $(head -c 200 "$tmp/skew.err")"
    echo "workers_skew: --workers 8 parent peak RSS ${peak} KiB" >&2
    [ "$peak" -le $((28 * 1024)) ] ||
        bad "workers_skew: the --workers 8 parent peaked at ${peak} KiB, above 28 MiB"
    md5sum <"$tmp/skew.json" >"$tmp/skew.many"
    rm -f "$tmp/skew.json"
    cmp -s "$tmp/skew.one" "$tmp/skew.many" ||
        bad "workers_skew: --workers 8 output differs from one process's"
    rm -f "$skew"
fi

finish
