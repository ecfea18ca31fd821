#!/bin/bash
# Every sample: smtpsniff reports exactly the TCP connections on the mail ports that
# Wireshark's dissector finds (tcp.stream), with the same frame and byte counts per
# direction (frame lengths, as `tshark -z conv,tcp` counts them).
set -uo pipefail
bin=$1 src=$3
command -v tshark >/dev/null || { echo "FAIL: tshark is not installed (scripts/test installs it)" >&2; exit 1; }
shopt -s nullglob
ports='25|465|587|2525'
fail=0 n=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    name=$(basename "$cap")
    # tshark: one line per connection and direction: "srcip srcport dstip dstport frames bytes"
    tshark -r "$cap" -Y tcp -T fields -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport \
        -e ip.dst -e ipv6.dst -e tcp.dstport -e frame.len 2>/dev/null |
        awk -F'\t' -v p="^($ports)\$" '
            ($4 ~ p || $7 ~ p) { s = ($2 != "" ? $2 : $3); d = ($5 != "" ? $5 : $6);
              k = $1 "\t" s "\t" $4 "\t" d "\t" $7; f[k]++; b[k] += $8 }
            END { for (k in f) { split(k, a, "\t"); print a[2], a[3], a[4], a[5], f[k], b[k] } }' |
        sort >"$tmp/tshark"
    "$bin" -r "$cap" --json - 2>/dev/null | jq -r 'select(.type == "session") |
        "\(.client.ip) \(.client.port) \(.server.ip) \(.server.port) \(.tcp.packets_client) \(.tcp.frame_bytes_client)",
        (select(.tcp.packets_server > 0) |
        "\(.server.ip) \(.server.port) \(.client.ip) \(.client.port) \(.tcp.packets_server) \(.tcp.frame_bytes_server)")' |
        sort >"$tmp/ours"
    if ! diff "$tmp/tshark" "$tmp/ours" >"$tmp/diff"; then
        echo "FAIL $name: connections or counts differ from tshark (< tshark, > smtpsniff):" >&2
        head -10 "$tmp/diff" >&2
        fail=1
    fi
    n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL: no samples" >&2; exit 1; }
echo "compared $n captures with tshark" >&2
exit $fail
