#!/usr/bin/env bash
# Live faults told while they happen (scripts/lab: network namespaces, real Postfix).
# smtpsniff -i on the router's client-side interface, alone and as two workers sharing
# it (packet fanout), text view on stdout to a file and NDJSON to another, while:
#   (a) a firewall drops the SYNs to one server: the syn_unanswered line appears while
#       the client is still retrying;
#   (b) a firewall drops the client's message body (after DATA): a line "waiting 5 s for
#       the reply to end-of-data" appears while the session hangs;
#   (c) a Postfix that greets only after 20 s: a line "waiting 5 s for the greeting"
#       appears before the greeting;
#   (d) an ordinary session: its report appears while smtpsniff goes on capturing,
#       without any later packet to push it out.
# Then smtpsniff is stopped with SIGINT: the sessions still open are reported as still
# open (capture_end, still_waiting, the wait measured to the interruption), none as
# died_after_data.
#
#   live_fault.sh SMTPSNIFF BUILD_DIR SOURCE_DIR
#
# Exit 77 (skipped) when not root, when network namespaces are unavailable, or when the
# lab's tools are not installed (scripts/lab/run installs them).
# shellcheck disable=SC2034  # LAB_* settings are read by scripts/lab/lib.sh
set -u
set -o pipefail

SNIFF=${1:?usage: live_fault.sh SMTPSNIFF BUILD_DIR SOURCE_DIR}
SRC=${3:?usage: live_fault.sh SMTPSNIFF BUILD_DIR SOURCE_DIR}

if [ "$(id -u)" != 0 ]; then
    echo "live_fault: skipped: needs root (network namespaces, a private Postfix)"
    exit 77
fi
SNIFF=$(readlink -f "$SNIFF")
[ -x "$SNIFF" ] || { echo "live_fault: $SNIFF is not an executable"; exit 1; }

LAB_ID=smfault$$
LAB_BANNER_DELAY=20
# shellcheck source=/dev/null
source "$SRC/scripts/lab/lib.sh"

if ! lab_netns_available; then
    echo "live_fault: skipped: network namespaces are not available here"
    exit 77
fi
missing=$(lab_missing_tools postfix iptables ip python3 jq)
if [ -n "$missing" ]; then
    echo "live_fault: skipped: not installed: $(echo "$missing" | tr '\n' ' ')(scripts/lab/run installs the lab's packages)"
    exit 77
fi

PASSED=0
FAILED=0
ok() { echo "ok: $*"; PASSED=$((PASSED + 1)); }
not_ok() { echo "FAILED: $*"; FAILED=$((FAILED + 1)); }

SNIFF_PID=
WORKERS_PID=
CLIENT_PIDS=()
stop_ours() {  # runs from lab_teardown, whatever happened
    local p
    for p in $SNIFF_PID $WORKERS_PID; do
        kill -INT "$p" 2>/dev/null
    done
    for p in "${CLIENT_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    echo "live_fault: $PASSED passed, $FAILED failed"
}
LAB_ON_EXIT=stop_ours

LAB_MINIMAL=1
lab_bring_up
W=$LAB_TMP/fault
mkdir -p "$W"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

ip netns exec "$NS_R" "$SNIFF" -i rc --json "$W/live.json" >"$W/live.txt" 2>"$W/live.err" &
SNIFF_PID=$!
ip netns exec "$NS_R" "$SNIFF" -i rc --workers 2 --json "$W/workers.json" \
    >"$W/workers.txt" 2>"$W/workers.err" &
WORKERS_PID=$!
# Capturing once the router's namespace holds their three packet sockets (one, and one
# per worker).
for _ in $(seq 100); do
    [ "$(ip netns exec "$NS_R" tail -n +2 /proc/net/packet | grep -c .)" -ge 3 ] && break
    sleep 0.1
done

# wait_for FILE... -- PATTERN PID DEADLINE: 0 once every FILE holds the extended regexp,
# 1 when PID (the client the line is about) ended first or DEADLINE seconds passed.
wait_for() {
    local files=() f all
    while [ "$1" != -- ]; do files+=("$1"); shift; done
    shift
    local pat=$1 pid=$2 deadline=$3 t0
    t0=$(now)
    while :; do
        all=1
        for f in "${files[@]}"; do
            grep -Eq -- "$pat" "$f" 2>/dev/null || all=0
        done
        [ "$all" = 1 ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        [ "$(awk -v a="$t0" -v b="$(now)" -v d="$deadline" 'BEGIN { print (b - a > d) }')" = 1 ] &&
            return 1
        sleep 0.05
    done
}

client_bg() {  # LOGNAME smtpclient-args...: runs in the background, pid in CLIENT_PID
    local name=$1
    shift
    ip netns exec "$NS_C" python3 "$LAB_LIB_DIR/smtpclient.py" "$@" >"$W/$name.log" 2>&1 &
    CLIENT_PID=$!
    CLIENT_PIDS+=("$CLIENT_PID")
}

# --- (d) an ordinary session: written without a later packet -------------------------
client_bg delivered --to user@example.net "$S_MX" 25 send
wait "$CLIENT_PID"
t_done=$(now)
# The deadline is only there so a failure does not hang: smtpsniff is still running, and
# nothing else moves on the wire.
if wait_for "$W/live.json" "$W/workers.json" -- '"helo":\{[^}]*"name":"client.example.org"' \
    "$SNIFF_PID" 30; then
    ok "a finished session is written while the capture goes on, no later packet needed ($(since "$t_done") s after the client ended)"
else
    not_ok "the finished session was not written while the capture went on"
fi

# --- (a) SYNs dropped -----------------------------------------------------------------
lab_fw -I FORWARD -p tcp -d "$S_NOPIPE" --dport 25 --syn -j DROP
t_syn=$(now)
client_bg syn "$S_NOPIPE" 25 connect 60
SYN_PID=$CLIENT_PID
if wait_for "$W/live.txt" "$W/workers.txt" -- "live: session [0-9]+ .* -> $S_NOPIPE:25: error syn_unanswered" \
    "$SYN_PID" 60; then
    ok "syn_unanswered told while the client still retries its SYN ($(since "$t_syn") s after the connect)"
else
    not_ok "no live syn_unanswered line while the client was retrying: $(grep -c . "$W/live.txt") text lines"
fi
if jq -e 'select(.type == "anomaly" and .anomaly.id == "syn_unanswered" and .dest_ip == "'"$S_NOPIPE"'")' \
    "$W/live.json" >/dev/null 2>&1; then
    ok "syn_unanswered in the NDJSON stream as an anomaly record"
else
    not_ok "no anomaly record for syn_unanswered in the NDJSON stream"
fi

# --- (b) the body dropped after DATA --------------------------------------------------
lab_fw -I FORWARD -p tcp -d "$S_MX" --dport 25 -m string --string "X-Lab-Marker: blackhole" \
    --algo bm -j DROP
t_body=$(now)
client_bg body --timeout 120 --to user@example.net --header "X-Lab-Marker: blackhole" \
    "$S_MX" 25 send
BODY_PID=$CLIENT_PID
if wait_for "$W/live.txt" "$W/workers.txt" -- \
    "waiting 5 s for the reply to end-of-data from $S_MX:25" "$BODY_PID" 60; then
    ok "waiting for the reply to end-of-data told while the session hangs ($(since "$t_body") s after the client started)"
else
    not_ok "no waiting line for end-of-data while the session hung: $(tail -n 3 "$W/live.txt")"
fi
if jq -e 'select(.type == "waiting" and .schema == "smtpsniff.waiting/1" and
        .awaiting == "end-of-data" and .dest_ip == "'"$S_MX"'" and .waited_ms >= 5000)' \
    "$W/live.json" >/dev/null 2>&1; then
    ok "a {\"type\": \"waiting\"} record for end-of-data in the NDJSON stream"
else
    not_ok "no waiting record for end-of-data in the NDJSON stream"
fi

# --- (c) a greeting 20 s late -----------------------------------------------------------
t_greet=$(now)
client_bg greeting --timeout 120 --to user@example.net "$S_SLOW" 25 send
GREET_PID=$CLIENT_PID
if wait_for "$W/live.txt" "$W/workers.txt" -- "waiting 5 s for the greeting from $S_SLOW:25" \
    "$GREET_PID" 60; then
    if grep -q '^S: 220' "$W/greeting.log"; then
        not_ok "the waiting line came only after the greeting"
    else
        ok "waiting for the greeting told before the greeting came ($(since "$t_greet") s after the connect)"
    fi
else
    not_ok "no waiting line for the greeting: $(tail -n 3 "$W/live.txt")"
fi

# --- SIGINT while (a), (b) and (c) are still going on -------------------------------------
for p in "$SYN_PID" "$BODY_PID" "$GREET_PID"; do
    kill -0 "$p" 2>/dev/null || not_ok "a client ended before SIGINT (pid $p)"
done
kill -INT "$SNIFF_PID" "$WORKERS_PID"
wait "$SNIFF_PID"
live_rc=$?
SNIFF_PID=
wait "$WORKERS_PID"
workers_rc=$?
WORKERS_PID=
if [ "$live_rc" -le 1 ] && [ "$workers_rc" -le 1 ]; then
    ok "both captures stopped on SIGINT (status $live_rc, $workers_rc)"
else
    not_ok "status on SIGINT: $live_rc, $workers_rc: $(head -c 300 "$W/live.err" "$W/workers.err")"
fi

for out in live workers; do
    J=$W/$out.json
    sess() {  # server address: the session report of that server's open session
        jq -c --arg s "$1" 'select(.type == "session" and .server.ip == $s and
            .tcp.end != "fin")' "$J" | tail -n 1
    }
    body=$(sess "$S_MX")
    greet=$(sess "$S_SLOW")
    syn=$(sess "$S_NOPIPE")
    if [ "$(echo "$body" | jq '.tcp.end == "capture_end" and
            ([.anomalies[].id] | index("died_after_data") == null) and
            ([.anomalies[] | select(.id == "still_waiting")] | length == 1) and
            (.smtp.waits[-1] | .awaiting == "end-of-data" and .until == "capture_end" and
             .waited_ms >= 5000) and
            (.tcp.capture_end_ms > .duration_ms)' 2>/dev/null)" = true ]; then
        ok "$out: the hanging message is still open at SIGINT (still_waiting, not died_after_data), waited until the interruption"
    else
        not_ok "$out: the hanging message's report: $(echo "$body" | jq -c '[.tcp.end, [.anomalies[].id], .smtp.waits, .tcp.capture_end_ms, .duration_ms]' 2>&1)"
    fi
    if [ "$(echo "$greet" | jq '.tcp.end == "capture_end" and
            ([.anomalies[].id] | index("died_after_data") == null) and
            (.smtp.waits[-1] | .awaiting == "greeting" and .until == "capture_end")' \
            2>/dev/null)" = true ]; then
        ok "$out: the session waiting for its greeting is still open at SIGINT"
    else
        not_ok "$out: the greeting session's report: $(echo "$greet" | jq -c '[.tcp.end, [.anomalies[].id], .smtp.waits]' 2>&1)"
    fi
    if [ "$(echo "$syn" | jq '.tcp.end == "syn_unanswered" and .tcp.syn_count >= 2' 2>/dev/null)" = true ]; then
        ok "$out: the unanswered SYNs end as syn_unanswered"
    else
        not_ok "$out: the SYN session's report: $(echo "$syn" | jq -c '.tcp' 2>&1)"
    fi
done
if grep -q "still open when the capture stopped: waiting [0-9.]* s for the reply to end-of-data" \
    "$W/live.txt"; then
    ok "text view: the session open at SIGINT says how long it had waited, and for what"
else
    not_ok "text view: no 'still open when the capture stopped' line for end-of-data"
fi

[ "$FAILED" = 0 ]
