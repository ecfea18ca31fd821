#!/bin/bash
# A long offline run shows its progress when stderr is a terminal: one line refreshed in
# place ("\r... \e[K"), with the bytes read of the input's total and the percentage, the
# packets and sessions so far, the rate and the time left; the line is wiped at the end.
# A gzip input counts its compressed bytes. No line when stderr is not a terminal, or with
# -q. To be sure the run lasts past the line's one-second period whatever the machine,
# smtpsniff is stopped for a moment (SIGSTOP) once it is well into the file
# (tests/tools/on_tty.py).
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_smtpsniff
need_tool python3
need_tool gzip
benchgen=$build/tests/benchgen
ontty=$src/tests/tools/on_tty.py
[ -x "$benchgen" ] || { echo "FAIL: $benchgen is not built" >&2; exit 1; }
"$benchgen" --size 60 "$tmp/big.pcap" 2>/dev/null || { bad "benchgen failed"; finish; }
gzip -1c "$tmp/big.pcap" >"$tmp/big.pcap.gz"

# on_tty NAME FILE ARGS...: smtpsniff -r FILE ARGS with stderr on a terminal, stdout
# discarded, paused for a moment once well into FILE; what the terminal showed is in
# $tmp/NAME.tty.
on_tty() {
    local name=$1 file=$2
    shift 2
    python3 "$ontty" "$tmp/$name.tty" "$file" -- "$bin" -r "$file" "$@"
    local rc=$?
    [ "$rc" -eq 0 ] || bad "$name: exited $rc (100: never paused)"
}

on_tty plain "$tmp/big.pcap" --json /dev/null
tr '\r' '\n' <"$tmp/plain.tty" | grep -a ' of ' >"$tmp/plain.lines"
[ -s "$tmp/plain.lines" ] || bad "plain: no progress line: $(head -c 200 "$tmp/plain.tty" | od -c | head -3)"
line=$(head -1 "$tmp/plain.lines")
echo "$line" | grep -aqE '^[0-9.]+ [kMG]?B of 60\.0 MB \([0-9]+%\), [0-9]+ packets, [0-9]+ sessions, [0-9.]+ [kMG]?B/s, [0-9]+:[0-9]{2}:[0-9]{2} left' ||
    bad "plain: the line is not 'N MB of TOTAL (P%), N packets, N sessions, R/s, H:MM:SS left': $line"
sessions=$(echo "$line" | sed -n 's/.*, \([0-9]*\) sessions,.*/\1/p')
[ "${sessions:-0}" -gt 0 ] || bad "plain: no sessions counted so far: $line"
# One line refreshed in place: carriage return first, erase to the end, no newline.
grep -aqE $'\r[0-9.]+ [kMG]?B of ' "$tmp/plain.tty" || bad "plain: the line does not start with a carriage return"
grep -aqF $'left\e[K' "$tmp/plain.tty" || bad "plain: the line does not erase what a longer one left"
[ "$(tr -cd '\n' <"$tmp/plain.tty" | wc -c)" -eq 0 ] || bad "plain: a newline on the terminal"
tail -c 4 "$tmp/plain.tty" | grep -aqF $'\r\e[K' || bad "plain: the line is not wiped at the end"

on_tty gz "$tmp/big.pcap.gz" --json /dev/null
gzmb=$(awk -v b="$(stat -c %s "$tmp/big.pcap.gz")" 'BEGIN { printf "%.1f MB", b / 1e6 }')
tr '\r' '\n' <"$tmp/gz.tty" | grep -aqF " of $gzmb (" ||
    bad "gzip: no progress over the $gzmb compressed: $(tr '\r' '\n' <"$tmp/gz.tty" | grep -a ' of ' | head -1)"

on_tty quiet "$tmp/big.pcap" -q --json /dev/null
[ ! -s "$tmp/quiet.tty" ] || bad "-q: the terminal showed: $(head -c 200 "$tmp/quiet.tty")"

# Not a terminal: nothing on stderr.
python3 "$ontty" --no-tty "$tmp/notty.err" "$tmp/big.pcap" -- "$bin" -r "$tmp/big.pcap" --json /dev/null
rc=$?
[ "$rc" -eq 0 ] || bad "not a terminal: exited $rc (100: never paused)"
[ ! -s "$tmp/notty.err" ] || bad "not a terminal: stderr holds: $(head -c 200 "$tmp/notty.err")"
finish
