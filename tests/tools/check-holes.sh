#!/bin/bash
# check-holes.sh CAPTURE REPORT: fails when a hole that REPORT (smtpsniff --json) names is in
# CAPTURE after all: some captured segment of that direction holds bytes of the hole's
# sequence range. A hole is only what no packet of the capture holds.
#
# Stream offsets are mapped to sequence numbers the way the reassembly does: offset 0 of a
# direction is its SYN's sequence number plus one; without a SYN, the sequence number of
# its first data segment or the acknowledgement number of the other side's first ACK,
# whichever the capture shows first. Segments cut by the snap length hold only what was
# captured of them.
set -uo pipefail
cap=${1:?usage: $0 CAPTURE REPORT}
rep=${2:?usage: $0 CAPTURE REPORT}
command -v tshark >/dev/null || { echo "SKIP: tshark not installed" >&2; exit 77; }
command -v jq >/dev/null || { echo "SKIP: jq not installed" >&2; exit 77; }

holes=$(jq -r 'select(.type == "session") | .client as $c | .server as $s |
    (.tcp.gaps // [])[] | [$c.ip, $c.port, $s.ip, $s.port, .dir, .offset, .len] | @tsv' "$rep")
[ -n "$holes" ] || exit 0

tshark -r "$cap" -Y tcp -T fields -E separator=/t -e ip.src -e ipv6.src -e tcp.srcport \
    -e ip.dst -e ipv6.dst -e tcp.dstport -e tcp.seq_raw -e tcp.ack_raw -e tcp.flags.syn \
    -e tcp.flags.ack -e tcp.flags.reset -e tcp.len -e frame.len -e frame.cap_len 2>/dev/null |
    awk -F'\t' -v holes="$holes" '
    function mod32(x) { x = x % 4294967296; return x < 0 ? x + 4294967296 : x }
    function set(v) { return v == "1" || v == "True" || v == "true" }
    BEGIN {
        n = split(holes, hl, "\n")
        for (i = 1; i <= n; i++) {
            split(hl[i], h, "\t")
            want[h[1] "|" h[2] "|" h[3] "|" h[4]] = 1
        }
    }
    {
        src = $1 != "" ? $1 : $2; dst = $4 != "" ? $4 : $5
        if (src ~ /,/ || dst ~ /,/) next # tunnelled: not what the reassembly reads
        if ((src "|" $3 "|" dst "|" $6) in want) { k = src "|" $3 "|" dst "|" $6; d = "client" }
        else if ((dst "|" $6 "|" src "|" $3) in want) { k = dst "|" $6 "|" src "|" $3; d = "server" }
        else next
        o = (d == "client") ? "server" : "client"
        seq = $7 + 0; ack = $8 + 0; len = $12 + 0
        held = len - ($13 - $14); if (held < 0) held = 0
        if (set($9) && !((k, d) in base)) base[k, d] = mod32(seq + 1)
        if (!((k, d) in base) && len > 0) base[k, d] = seq
        if (set($10) && !set($11) && !((k, o) in base)) base[k, o] = ack
        if (held > 0) { ns++; sk[ns] = k; sd[ns] = d; ss[ns] = seq; sl[ns] = held }
    }
    END {
        bad = 0
        for (i = 1; i <= n; i++) {
            split(hl[i], h, "\t")
            k = h[1] "|" h[2] "|" h[3] "|" h[4]; d = h[5]; off = h[6] + 0; glen = h[7] + 0
            if (!((k, d) in base)) continue
            for (j = 1; j <= ns; j++) {
                if (sk[j] != k || sd[j] != d) continue
                so = mod32(ss[j] - base[k, d])
                if (so < off + glen && off < so + sl[j]) {
                    printf "hole %s %s offset %d len %d is in the capture (segment at offset %d, %d bytes)\n", k, d, off, glen, so, sl[j]
                    bad = 1
                    break
                }
            }
        }
        exit bad
    }'
