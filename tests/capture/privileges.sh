#!/bin/bash
# -Z USER: every output file named on the command line (--json, -w, the --eml directory) is
# opened before the privileges are dropped, so root can have them written where USER could
# not reach (/root); the .eml files are created in the directory opened before, so USER
# writes them in a directory of its own whose path it could not follow;
# after the drop the running process has USER's ids, no capability at all, an empty
# capability bounding set (CapBnd 0) and no_new_privs set (NoNewPrivs 1). Checked offline on
# a FIFO, which keeps the process running while /proc/PID/status is read, and live on lo.
# Needs root.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_smtpsniff
need_tool jq
need_tool tshark
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: -Z needs root" >&2
    exit 77
fi
id nobody >/dev/null 2>&1 || { echo "FAIL: no user nobody" >&2; exit 1; }
nobody_uid=$(id -u nobody)
# Output in a directory only root may write: the files must be opened before the drop.
out=$(mktemp -d /root/smtpsniff-priv.XXXXXX)
chmod 700 "$out"
mkdir "$out/eml" && chown nobody "$out/eml" && chmod 700 "$out/eml"
trap 'rm -rf "$tmp" "$out"' EXIT
sample=$src/samples/01-submission-auth.pcap

# status_of PID NAME: the fields of /proc/PID/status that tell the privileges, kept in NAME.
status_of() {
    grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' "/proc/$1/status" >"$tmp/$2.status"
}
assert_dropped() { # NAME
    local f=$tmp/$1.status
    grep -qE "^Uid:\s+$nobody_uid\s+$nobody_uid\s+$nobody_uid\s+$nobody_uid$" "$f" || bad "$1: not running as nobody: $(grep Uid "$f")"
    for c in CapInh CapPrm CapEff CapBnd CapAmb; do
        grep -qE "^$c:\s+0+$" "$f" || bad "$1: $c is not 0: $(grep "^$c" "$f")"
    done
    grep -qE '^NoNewPrivs:\s+1$' "$f" || bad "$1: NoNewPrivs is not 1: $(grep NoNewPrivs "$f")"
}

# ---- offline, reading a FIFO ----------------------------------------------------------------
mkfifo "$tmp/fifo"
{ cat "$sample"; sleep 3; } >"$tmp/fifo" &
writer=$!
"$bin" -r "$tmp/fifo" -Z nobody -q --json "$out/r.json" -w "$out/r.pcap" --eml "$out/eml" \
    2>"$tmp/fifo.err" &
pid=$!
# The drop happens once the capture's header is read: wait for it, then look.
for _ in $(seq 50); do
    grep -qE "^Uid:\s+$nobody_uid" "/proc/$pid/status" 2>/dev/null && break
    sleep 0.1
done
status_of "$pid" fifo
wait "$writer"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || bad "fifo: exited $rc: $(head -3 "$tmp/fifo.err")"
assert_dropped fifo
for f in r.json r.pcap; do
    [ -s "$out/$f" ] || bad "fifo: $out/$f not written"
    [ "$(stat -c %U "$out/$f")" = root ] || bad "fifo: $f not created by root before the drop"
done
tshark -r "$out/r.pcap" >/dev/null 2>&1 || bad "fifo: tshark cannot read the -w file"
mkdir "$tmp/eml" && chmod 700 "$tmp/eml"
sniff direct -r "$sample" -q --eml "$tmp/eml"
cmp -s "$tmp/direct.json" "$out/r.json" || bad "fifo: the report written after the drop differs"
[ "$(find "$out/eml" -name '*.eml' | wc -l)" -ge 1 ] || bad "fifo: no .eml written below root's directory"

# ---- live, on lo --------------------------------------------------------------------------
port=$((40000 + RANDOM % 20000))
"$bin" -i lo -Z nobody -q --ports "$port" --json "$out/live.json" -w "$out/live.pcap" \
    2>"$tmp/live.err" &
pid=$!
for _ in $(seq 50); do
    grep -qE "^Uid:\s+$nobody_uid" "/proc/$pid/status" 2>/dev/null && break
    sleep 0.1
done
status_of "$pid" live
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
sleep 0.5
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || bad "live: exited $rc: $(head -3 "$tmp/live.err")"
assert_dropped live
n=$(tail -1 "$out/live.json" | jq .packets)
[ "$n" -ge 2 ] 2>/dev/null || bad "live: $n packets seen, expected the SYN and its RST"
[ "$(tshark -r "$out/live.pcap" 2>/dev/null | wc -l)" = "$n" ] || bad "live: the -w file does not hold the $n packets"
finish
