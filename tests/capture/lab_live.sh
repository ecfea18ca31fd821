#!/usr/bin/env bash
# Live capture against the real-traffic lab (scripts/lab): smtpsniff -i on the
# router's client-side interface, with -Z nobody, while tcpdump records the same
# interface.  A small batch of SMTP sessions runs, one stays open; smtpsniff is
# stopped with SIGINT.  Then:
#   - the session reports from live capture equal those of smtpsniff -r on
#     tcpdump's file;
#   - the session still open at SIGINT is reported with tcp.end "capture_end";
#   - smtpsniff ran as nobody (real, effective and saved uid) after opening the
#     interface.
#
#   lab_live.sh SMTPSNIFF BUILD_DIR SOURCE_DIR
#
# Exit 77 (skipped) when not root, when network namespaces are unavailable, or
# when the lab's tools are not installed (scripts/lab/run installs them).
# shellcheck disable=SC2034  # LAB_* settings are read by scripts/lab/lib.sh
set -u
set -o pipefail

SNIFF=${1:?usage: lab_live.sh SMTPSNIFF BUILD_DIR SOURCE_DIR}
SRC=${3:?usage: lab_live.sh SMTPSNIFF BUILD_DIR SOURCE_DIR}

if [ "$(id -u)" != 0 ]; then
    echo "lab_live: skipped: needs root (network namespaces, a private Postfix)"
    exit 77
fi
SNIFF=$(readlink -f "$SNIFF")
[ -x "$SNIFF" ] || { echo "lab_live: $SNIFF is not an executable"; exit 1; }

LAB_ID=smlive$$
# shellcheck source=/dev/null
source "$SRC/scripts/lab/lib.sh"

if ! lab_netns_available; then
    echo "lab_live: skipped: network namespaces are not available here"
    exit 77
fi
missing=$(lab_missing_tools postfix tcpdump iptables ip python3 jq)
if [ -n "$missing" ]; then
    echo "lab_live: skipped: not installed: $(echo "$missing" | tr '\n' ' ')(scripts/lab/run installs the lab's packages)"
    exit 77
fi
NOBODY_UID=$(id -u nobody 2>/dev/null) || { echo "lab_live: skipped: no user nobody"; exit 77; }

PASSED=0
FAILED=0
ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
not_ok() { echo "FAILED: $*"; FAILED=$((FAILED + 1)); }

SNIFF_PID=
WORKERS_PID=
TCPDUMP_PID=
HOLD_PID=
stop_ours() {  # runs from lab_teardown, whatever happened
    local p
    for p in $SNIFF_PID $WORKERS_PID $TCPDUMP_PID $HOLD_PID; do
        kill -INT "$p" 2>/dev/null
    done
    echo "lab_live: $PASSED passed, $FAILED failed"
}
LAB_ON_EXIT=stop_ours

LAB_MINIMAL=1
lab_bring_up
W=$LAB_TMP/live
mkdir -p "$W"
chown nobody "$W"

# --- captures ------------------------------------------------------------------
ip netns exec "$NS_R" tcpdump -i rc -nn -s 0 --immediate-mode -U -w "$W/tcpdump.pcap" tcp \
    2>"$W/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 100); do
    grep -q 'listening on' "$W/tcpdump.err" 2>/dev/null && break
    sleep 0.05
done

ip netns exec "$NS_R" "$SNIFF" -i rc -Z nobody --json "$W/live.json" 2>"$W/live.err" &
SNIFF_PID=$!
# The same traffic, seen by two workers sharing the interface (packet fanout).
ip netns exec "$NS_R" "$SNIFF" -i rc -Z nobody --workers 2 --json "$W/workers.json" \
    2>"$W/workers.err" &
WORKERS_PID=$!

uid_of() { awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status" 2>/dev/null; }
NOBODY4="$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID"
# Privileges are dropped only after the interface is open: once the uid is
# nobody's, the capture is running.
wait_nobody() {  # PID ERRFILE NAME
    local uid_line= rc
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || break
        uid_line=$(uid_of "$1")
        [ "$uid_line" = "$NOBODY4" ] && break
        sleep 0.1
    done
    if ! kill -0 "$1" 2>/dev/null; then
        wait "$1"
        rc=$?
        not_ok "$3 exited early (status $rc): $(head -c 600 "$2")"
        exit 1
    fi
    if [ "$uid_line" = "$NOBODY4" ]; then
        ok "$3 runs as nobody (Uid: $uid_line)"
    else
        not_ok "$3 did not drop privileges to nobody ($NOBODY_UID); Uid: $uid_line"
    fi
}
wait_nobody "$SNIFF_PID" "$W/live.err" "smtpsniff -i rc -Z nobody"
wait_nobody "$WORKERS_PID" "$W/workers.err" "smtpsniff -i rc -Z nobody --workers 2"
sleep 0.3
worker_uids=
for c in $(pgrep -P "$WORKERS_PID"); do
    worker_uids="$worker_uids$(uid_of "$c");"
done
if [ "$worker_uids" = "$NOBODY4;$NOBODY4;" ]; then
    ok "both live workers run as nobody"
else
    not_ok "live workers' uids: '$worker_uids' (two times '$NOBODY4' expected)"
fi

# --- a small batch of sessions ---------------------------------------------------
client() {  # LOGNAME smtpclient-args...
    local name=$1
    shift
    ip netns exec "$NS_C" python3 "$LAB_LIB_DIR/smtpclient.py" "$@" >"$W/$name.log" 2>&1
}
client delivered --to user@example.net "$S_MX" 25 send
client relay-denied --to someone@example.org "$S_MX" 25 send
client pipelined --to user@example.net --to other@example.net "$S_MX" 25 pipeline
client ipv6 --to user@example.net "$S6" 25 send
lab_fw -I FORWARD -p tcp -d "$S_MX" --dport 25 -m string --string "X-Lab-Marker: reset" \
    --algo bm -j REJECT --reject-with tcp-reset
client rst-injected --to user@example.net --header "X-Lab-Marker: reset" "$S_MX" 25 send

# One session left open: EHLO answered, then idle until after SIGINT.
ip netns exec "$NS_C" python3 "$LAB_LIB_DIR/smtpclient.py" --helo open.example.org \
    "$S_MX" 25 hold 120 >"$W/open.log" 2>&1 &
HOLD_PID=$!
for _ in $(seq 100); do
    grep -q 'holding' "$W/open.log" 2>/dev/null && break
    sleep 0.05
done
sleep 1   # late retransmissions (the reset session) settle

# --- stop both captures: smtpsniff first, nothing moves on the wire meanwhile ----
kill -INT "$SNIFF_PID" "$WORKERS_PID"
wait "$SNIFF_PID"
live_rc=$?
SNIFF_PID=
wait "$WORKERS_PID"
workers_rc=$?
WORKERS_PID=
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID"
TCPDUMP_PID=
kill "$HOLD_PID" 2>/dev/null
wait "$HOLD_PID" 2>/dev/null
HOLD_PID=

if [ "$live_rc" -le 1 ]; then
    ok "smtpsniff -i stopped on SIGINT (status $live_rc)"
else
    not_ok "smtpsniff -i exited with status $live_rc on SIGINT: $(head -c 600 "$W/live.err")"
fi
if [ "$workers_rc" -le 1 ]; then
    ok "smtpsniff -i --workers 2 stopped on SIGINT to its parent (status $workers_rc)"
else
    not_ok "smtpsniff -i --workers 2 exited with status $workers_rc on SIGINT: $(head -c 600 "$W/workers.err")"
fi

"$SNIFF" -r "$W/tcpdump.pcap" --json "$W/offline.json" 2>"$W/offline.err"
off_rc=$?
if [ "$off_rc" -le 1 ]; then
    ok "smtpsniff -r on tcpdump's capture (status $off_rc)"
else
    not_ok "smtpsniff -r exited with status $off_rc: $(head -c 600 "$W/offline.err")"
fi

# --- compare ---------------------------------------------------------------------
# Fields that legitimately differ between a live and an offline run would be
# deleted here; none are known to.
# The live handle and tcpdump timestamp each packet separately (microseconds apart), and
# ids are frame numbers of each one's own capture (their filters differ: the default one
# also passes IPv6 with extension headers, neighbour discovery included); so times and ids
# are left out here, and so is which reply was the slowest: when two replies take about as
# long, microseconds of timestamping decide it (MAIL in one capture, RCPT in the other).
# Every other field must agree.
NORMALIZE='select(.type == "session") | del(.start, .end, .id, .smtp.slowest_reply) |
    walk(if type == "object" then with_entries(select(.key | test("(^ms|_ms|_us)$") | not))
         else . end)'
jq -c "$NORMALIZE" "$W/live.json" 2>/dev/null | sort >"$W/live.sessions"
jq -c "$NORMALIZE" "$W/offline.json" 2>/dev/null | sort >"$W/offline.sessions"
jq -c "$NORMALIZE" "$W/workers.json" 2>/dev/null | sort >"$W/workers.sessions"
n_live=$(wc -l <"$W/live.sessions")
n_off=$(wc -l <"$W/offline.sessions")

any_of() {  # FILE JQ-CONDITION: true when some object of the NDJSON file meets it
    [ "$(jq -s "any(.[]; $2)" "$1" 2>/dev/null)" = true ]
}

if any_of "$W/live.json" '.type == "summary"'; then
    ok "live output ends with a summary object"
else
    not_ok "no summary object in the live output"
fi

# 6 sessions: delivered, relay-denied, pipelined, ipv6, rst-injected, open.
if [ "$n_live" -ge 6 ] && [ "$n_live" = "$n_off" ]; then
    ok "$n_live sessions live, $n_off offline"
else
    not_ok "session count: $n_live live, $n_off offline (6 expected)"
fi

if cmp -s "$W/live.sessions" "$W/offline.sessions"; then
    ok "live session reports equal the offline ones"
else
    not_ok "live and offline session reports differ:"
    diff <(jq -S . "$W/live.sessions") <(jq -S . "$W/offline.sessions") | head -n 40
fi

# Two workers: each connection is seen by exactly one of them, whole (a connection split
# between the workers, or seen by both, would change the count or the reports).
if cmp -s "$W/workers.sessions" "$W/offline.sessions"; then
    ok "live session reports of 2 workers equal the offline ones ($(wc -l <"$W/workers.sessions") sessions)"
else
    not_ok "live reports of 2 workers differ from the offline ones:"
    diff <(jq -S . "$W/workers.sessions") <(jq -S . "$W/offline.sessions") | head -n 40
fi
ids=$(jq -r 'select(.type == "session") | .id' "$W/workers.json" | sort -n)
if [ -n "$ids" ] && [ "$(echo "$ids" | uniq | wc -l)" = "$(echo "$ids" | wc -l)" ]; then
    ok "session ids of the 2 live workers are distinct ($(echo $ids))"
else
    not_ok "session ids of the 2 live workers repeat: $(echo $ids)"
fi
if [ "$(jq -s '[.[] | select(.type == "summary")] | length == 1 and
        (.[-1] | .type == "summary" and (.kernel_drops | type) == "number" and
                 .sessions == ([$all[] | select(.type == "session")] | length))' \
        --slurpfile all "$W/workers.json" "$W/workers.json")" = true ]; then
    ok "2 live workers: one merged summary at the end, kernel drops counted, sessions add up"
else
    not_ok "2 live workers: summary missing, repeated or not adding up: $(jq -c 'select(.type == "summary")' "$W/workers.json")"
fi
if [ "$(jq -s '[.[] | select(.type == "anomaly" and .anomaly.id == "relay_denied")] | length' \
        "$W/workers.json")" -ge 1 ]; then
    ok "2 live workers: relay_denied told as it happened"
else
    not_ok "2 live workers: no live anomaly line for relay_denied"
fi

# The relay refusal happens in the middle of its session: live, it is told as it happens
# ({"type": "anomaly"}), before the session's own report.
if [ "$(jq -s '[.[] | select(.type == "anomaly" and .anomaly.id == "relay_denied")] | length' \
        "$W/live.json")" -ge 1 ]; then
    ok "relay_denied was told live, while its session was open"
else
    not_ok "no live anomaly line for relay_denied"
fi

open_end() {  # file: tcp.end of the session whose client said EHLO open.example.org
    jq -r 'select(.helo.name? == "open.example.org") | .tcp.end' "$1" | head -n 1
}
live_end=$(open_end "$W/live.sessions")
off_end=$(open_end "$W/offline.sessions")
if [ "$live_end" = capture_end ] && [ "$off_end" = capture_end ]; then
    ok "the session open at SIGINT ends with capture_end"
else
    not_ok "open session: tcp.end live '$live_end', offline '$off_end' (capture_end expected)"
fi

if any_of "$W/live.sessions" '(.client.ip // "" | tostring | startswith("fd25:"))'; then
    ok "the IPv6 session is reported with its real addresses"
else
    not_ok "no session with the client's IPv6 address fd25:1::2"
fi

# -c with live workers: the count is of packets across all workers; the worker that reaches
# it ends, the others are told to finish, and nobody calls that an interruption.
ip netns exec "$NS_R" timeout 30 "$SNIFF" -i rc --workers 2 -c 20 --json "$W/count.json" \
    2>"$W/count.err" &
COUNT_PID=$!
sleep 0.5
client counted --to user@example.net "$S_MX" 25 send
wait "$COUNT_PID"
count_rc=$?
count_summary=$(jq -c 'select(.type == "summary") | [.packets, .interrupted]' "$W/count.json" \
    2>/dev/null)
if [ "$count_rc" -le 1 ] && [ "$count_summary" = '[20,false]' ]; then
    ok "-c 20 with 2 live workers: ended by itself after 20 packets, not interrupted"
else
    not_ok "-c 20 with 2 live workers: status $count_rc, [packets, interrupted] $count_summary: $(head -c 300 "$W/count.err")"
fi

[ "$FAILED" = 0 ]
