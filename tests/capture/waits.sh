#!/bin/bash
# The waits for the server as facts of the session report (offline, capture time): the
# EHLO reply that came 7 s late, and the end-of-data reply still awaited when the capture
# stopped, measured to the capture's last packet (another client's SYN 4 s later), not to
# the session's own last packet. The session open at the end is still_waiting, not
# died_after_data, and the text view says how long it had waited, for what.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

if gen waits && analyse waits; then
    ehlo_ms=$(awk -v u="$(fact waits ehlo_wait_us)" 'BEGIN { print u / 1000 }')
    eod_ms=$(awk -v u="$(fact waits eod_wait_us)" 'BEGIN { print u / 1000 }')
    check waits "the late EHLO reply is a wait, answered" \
        "[\$S[0].smtp.waits[] | select(.awaiting == \"EHLO\" and .until == \"reply\") |
          (.waited_ms - $ehlo_ms | fabs) < 1] == [true]"
    check waits "the end-of-data wait lasts until the end of the capture" \
        "\$S[0].smtp.waits[-1] | .awaiting == \"end-of-data\" and .until == \"capture_end\" and
         (.waited_ms - $eod_ms | fabs) < 1"
    check waits "capture_end_ms: the end of the capture, past the session's last packet" \
        '$S[0].tcp.end == "capture_end" and $S[0].tcp.capture_end_ms > $S[0].duration_ms'
    check waits "no wait kept for the prompt replies" '($S[0].smtp.waits | length) == 2'
    check waits "still open: still_waiting, not died_after_data" \
        '($S[0] | has_anomaly("still_waiting") and (has_anomaly("died_after_data") | not)) and
         ([$S[0].anomalies[] | select(.id == "still_waiting") | .severity] == ["notice"])'
    check waits "a session without a wait has no waits" '$S[1].smtp == null or
        ($S[1].smtp.waits == null)'
    "$bin" -r "$tmp/waits.pcap" >"$tmp/waits.txt" 2>/dev/null
    grep -q -- "-- *\[tcp: still open when the capture stopped: waiting 4.0 s for the reply to end-of-data\]" \
        "$tmp/waits.txt" || bad "text view: no 'still open when the capture stopped' line"
    grep -q -- "\[tcp: end=capture_end" "$tmp/waits.txt" && bad "text view: still says [tcp: end=capture_end]"
fi
finish
