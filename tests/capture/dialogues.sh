#!/bin/bash
# SMTP dialogues from crafted captures that real MTAs rarely produce on demand:
# PIPELINING (RFC 2920) with replies split inside a line and two messages around RSET,
# CHUNKING (RFC 3030) with chunk data that looks like commands and end-of-data, and
# interleaved sessions on three mail ports plus HTTP, which the default filter ignores.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

if gen pipelining && analyse pipelining; then
    check pipelining "one session" '($S | length) == 1'
    check pipelining "two transactions" '($S[0].transactions | length) == 2 and
        [$S[0].transactions[].rcpt | length] == [2, 1] and
        [$S[0].transactions[].rcpt[].code] == [250, 250, 250] and
        [$S[0].transactions[].data.code] == [250, 250]'
    check pipelining "command counts" '$S[0].commands == {"ehlo": 1, "mail": 2, "rcpt": 3,
        "data": 2, "rset": 1, "quit": 1, "total": 10,
        "postfix": "ehlo=1 mail=2 rcpt=3 data=2 rset=1 quit=1 commands=10"}'
    check pipelining "reply split inside a line is one line" \
        '[$S[0].transcript[] | select(.dir == "S" and .line == "250 2.1.5 Ok")] | length == 3'
    check pipelining "advertised, so no violation" \
        '($S[0] | has_anomaly("pipelining_unadvertised")) | not'
    check pipelining "delivered" '$S[0].outcome == "delivered"'
fi

if gen bdat && analyse bdat; then
    size=$(fact bdat bdat_bytes)
    check bdat "one BDAT transaction" '($S | length) == 1 and
        ($S[0].transactions | length) == 1 and $S[0].transactions[0].data.verb == "BDAT"'
    check bdat "message size and chunks" "\$S[0].transactions[0].data.bytes == $size and
        \$S[0].transactions[0].data.chunks == 2 and \$S[0].transactions[0].data.code == 250"
    check bdat "chunk data is not parsed as commands" "[\$S[0].transcript[] |
        select(.dir == \"C\" and (.line | startswith(\"BDAT\"))) | .line] ==
        [\"BDAT 1000\", \"BDAT $((size - 1000)) LAST\"]"
    check bdat "command counts" '$S[0].commands == {"ehlo": 1, "mail": 1, "rcpt": 1,
        "bdat": 2, "quit": 1, "total": 6,
        "postfix": "ehlo=1 mail=1 rcpt=1 bdat=2 quit=1 commands=6"}'
    check bdat "delivered" '$S[0].outcome == "delivered"'
fi

if gen multi && analyse multi; then
    check multi "three mail sessions, HTTP ignored" '($S | length) == 3 and
        ([$S[].server.port] | sort) == [25, 587, 2525] and $sum.sessions == 3'
    check multi "Community IDs" 'all($S[]; .community_id | test("^1:"))'
    check multi "ids distinct" '([$S[].id] | unique | length) == 3'
    check multi "port 25 delivered" \
        'any($S[]; .server.port == 25 and .outcome == "delivered" and .tcp.end == "fin")'
    check multi "port 587: AUTH PLAIN as alice, delivered" 'any($S[]; .server.port == 587 and
        .auth[0].mechanism == "PLAIN" and .auth[0].user == "alice" and
        .auth[0].result == "success" and .outcome == "delivered")'
    check multi "the AUTH secret is not written" \
        '[$S[].transcript[].line | select(test("AGFsaWNlAHMzY3JldA|s3cret"))] == []'
    check multi "port 2525: relay denied" 'any($S[]; .server.port == 2525 and
        .helo.verb == "HELO" and .transactions[0].rcpt[0].code == 554 and
        .outcome == "rejected" and has_anomaly("relay_denied"))'
fi
finish
