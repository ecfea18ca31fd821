#!/bin/bash
# What tcpdump users expect on the command line: -D lists the interfaces as tcpdump -D does
# (number, name, description, flags; the same names in the same order), a live capture
# starts with "listening on IFACE, link-type ..., snapshot length ..., filter "..."" naming
# the filter actually compiled and ends with the three packet counts (captured, received
# by filter, dropped by kernel), none of which -q prints; -w, -C and -W misuse is a usage
# error (exit 2). The live part needs root (capture on lo).
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_smtpsniff
need_tool tcpdump
sample=$src/samples/01-submission-auth.pcap

# ---- -D ----------------------------------------------------------------------------------
"$bin" -D >"$tmp/D.out" 2>"$tmp/D.err"
rc=$?
[ "$rc" -eq 0 ] || bad "-D exited $rc: $(head -3 "$tmp/D.err")"
[ -s "$tmp/D.out" ] || bad "-D listed nothing"
# Lines numbered 1, 2, 3... each "N.NAME", then an optional (description), optional [flags].
awk -v bad=0 '{ if ($0 !~ /^[0-9]+\.[^ ]+( \(.*\))?( \[[A-Za-z ,]+\])?$/ || $0 !~ "^" NR "\\.") bad = 1 }
     END { exit bad }' "$tmp/D.out" || bad "-D lines are not 'N.NAME (description) [flags]': $(head -3 "$tmp/D.out")"
grep -qE '^[0-9]+\.lo( \(.*\))? \[Up, Running(, [A-Za-z ]+)*\]$' "$tmp/D.out" ||
    grep -qE '^[0-9]+\.lo .*Loopback' "$tmp/D.out" || bad "-D: lo is not listed as Up, Running, Loopback"
grep -qE '^[0-9]+\.lo .*Loopback' "$tmp/D.out" || bad "-D: lo lacks its Loopback flag"
# The same interfaces, in the same order, as tcpdump -D (both ask libpcap).
if tcpdump -D >"$tmp/tD.out" 2>/dev/null; then
    diff <(sed 's/^[0-9]*\.\([^ ]*\).*/\1/' "$tmp/D.out") \
        <(sed 's/^[0-9]*\.\([^ ]*\).*/\1/' "$tmp/tD.out") >"$tmp/D.diff" ||
        bad "-D names differ from tcpdump -D: $(head -4 "$tmp/D.diff" | tr '\n' ' ')"
fi

# ---- usage errors --------------------------------------------------------------------------
expect2() { # expect2 PATTERN ARGS...: exit 2, one line saying PATTERN
    local pat=$1
    shift
    "$bin" "$@" >/dev/null 2>"$tmp/u.err"
    local got=$?
    [ "$got" -eq 2 ] || bad "'$*' exited $got, expected 2"
    grep -qE -e "$pat" "$tmp/u.err" || bad "'$*': stderr lacks /$pat/: $(head -2 "$tmp/u.err")"
    [ "$(wc -l <"$tmp/u.err")" -eq 1 ] || bad "'$*': more than one line on stderr"
}
expect2 "-C and -W need -w" -r "$sample" -C 1
expect2 "-W needs -C" -r "$sample" -w "$tmp/x.pcap" -W 3
expect2 "invalid -C file size" -r "$sample" -w "$tmp/x.pcap" -C 0
expect2 "invalid -C file size" -r "$sample" -w "$tmp/x.pcap" -C 12q
expect2 "invalid -W" -r "$sample" -w "$tmp/x.pcap" -C 1 -W 0
expect2 "-w needs a file name" -r "$sample" -w -
expect2 "live --workers" -i lo --workers 2 -w "$tmp/x.pcap"

# ---- live: the first line and the counts ----------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the live part needs root (capture on lo)" >&2
    exit 77
fi
port=$((40000 + RANDOM % 20000))
"$bin" -i lo --ports "$port" --json "$tmp/live.json" >"$tmp/live.out" 2>"$tmp/live.err" &
pid=$!
for _ in $(seq 100); do grep -q "^smtpsniff: listening on" "$tmp/live.err" && break; sleep 0.1; done
# Three packets the filter lets through: SYNs to a closed port (each answered by RST).
for _ in 1 2 3; do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; done
sleep 0.5
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || bad "live: exited $rc: $(head -3 "$tmp/live.err")"
filter=$(head -1 "$tmp/live.err" | sed -n 's/.*, filter "\(.*\)"$/\1/p')
head -1 "$tmp/live.err" | grep -qE '^smtpsniff: listening on lo, link-type EN10MB \(Ethernet\), snapshot length 262144 bytes, filter "' ||
    bad "live: first line is not tcpdump's: $(head -1 "$tmp/live.err")"
case $filter in
*"port $port"*) ;;
*) bad "live: the filter named is not the default one for port $port: $filter" ;;
esac
# The filter named is one tcpdump compiles too.
tcpdump -d -i lo "$filter" >/dev/null 2>&1 || bad "live: the filter named does not compile: $filter"
packets=$(tail -1 "$tmp/live.json" | jq .packets)
[ "$packets" -ge 6 ] 2>/dev/null || bad "live: $packets packets seen, expected the 3 SYNs and 3 RSTs"
tail -3 "$tmp/live.err" >"$tmp/counts"
grep -qx "$packets packets captured" "$tmp/counts" || bad "live: no '$packets packets captured' line: $(cat "$tmp/counts")"
grep -qE '^[0-9]+ packets? received by filter$' "$tmp/counts" || bad "live: no 'received by filter' line"
grep -qE '^[0-9]+ packets? dropped by kernel$' "$tmp/counts" || bad "live: no 'dropped by kernel' line"
received=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter$/\1/p' "$tmp/counts")
[ "${received:-0}" -ge "$packets" ] || bad "live: received by filter ($received) < captured ($packets)"

# -q: none of it.
"$bin" -i lo -q --ports "$port" --json "$tmp/q.json" >/dev/null 2>"$tmp/q.err" &
pid=$!
sleep 1
kill -INT "$pid"
wait "$pid"
[ ! -s "$tmp/q.err" ] || bad "-q live: stderr not empty: $(head -2 "$tmp/q.err")"
finish
