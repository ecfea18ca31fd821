#!/bin/bash
# What the TCP numbers prove about a message with no final reply (the "connected but
# connection died" incident), on the lab's real captures: the server acknowledged the whole
# message and its sequence numbers went past the capture (it replied: a retry duplicates);
# it never acknowledged the body while the client retransmitted (not arrived: retry safe);
# an RST whose TTL is not the server's cut the client off (injected).
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_smtpsniff
run() { # run NAME: the report of samples/NAME.* as $tmp/NAME.json
    local cap
    cap=$(ls "$src"/samples/"$1".pcap* | head -1)
    "$bin" -r "$cap" --json - >"$tmp/$1.json" 2>"$tmp/$1.err" || bad "$1: smtpsniff failed"
}
dcheck() { # dcheck NAME WHAT JQ
    jq -e -s "[.[] | select(.type == \"session\")] as \$S | $3" "$tmp/$1.json" >/dev/null ||
        bad "$1: $2 [$3]"
}
for n in 06a-body-blackholed 06b-rst-injected 06c-final-reply-dropped 11b-ipv6-rst-injected 01-submission-auth; do
    run "$n"
done
# shellcheck disable=SC2016 # jq programs
{
    dcheck 06c-final-reply-dropped "the whole message acknowledged, the server's reply unseen" '
        $S[0].tcp.acked.client >= $S[0].transactions[0].data.end_offset and
        ($S[0].anomalies[] | select(.id == "died_after_data") |
         .severity == "error" and .evidence.server_bytes_unseen > 0 and
         (.message | test("acknowledged the whole message.*twice")))'
    dcheck 06a-body-blackholed "the body never acknowledged, retransmitted, still open: not getting through" '
        $S[0].tcp.acked.client < $S[0].transactions[0].data.end_offset and
        $S[0].tcp.retransmissions.client > 0 and
        ([$S[0].anomalies[] | select(.id == "died_after_data")] == []) and
        ($S[0].anomalies[] | select(.id == "still_waiting") |
         .severity == "warning" and .evidence.wait.awaiting == "end-of-data" and
         (.message | test("not getting through")))'
    for n in 06b-rst-injected 11b-ipv6-rst-injected; do
        dcheck "$n" "an RST with the wrong TTL named as injected" '
            $S[0].tcp.rst.ttl != $S[0].tcp.rst.expected_ttl and
            ($S[0].anomalies[] | select(.id == "died_after_data") |
             .severity == "error" and (.message | test("injected")))'
    done
    dcheck 01-submission-auth "a clean session: everything acknowledged, nothing retransmitted" '
        all($S[]; .tcp.acked.client == .tcp.seq_reached.client + 1 and
                  .tcp.retransmissions.client == 0 and .tcp.retransmissions.server == 0)'
}
finish
