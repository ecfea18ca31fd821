#!/bin/bash
# The MIME parts of a message a real client wrote: swaks sends a multipart/mixed message
# with a text part and a base64 attachment (5000 random bytes) to the lab's stub server on
# loopback while tcpdump records it. smtpsniff's parts inside the multipart are those
# Wireshark's MIME multipart dissector lists (type, transfer encoding, in order), and the
# attachment's SHA-256 is that of the file swaks attached.
#
# Needs root (tcpdump on lo), swaks, tcpdump, tshark, python3, jq: all in DEPS_TEST.
set -uo pipefail
bin=$1 src=$3
fail=0
bad() {
    echo "FAIL: $*" >&2
    fail=1
}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (tcpdump on lo)" >&2; exit 77; }
for t in swaks tcpdump tshark python3 jq sha256sum; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed" >&2; exit 77; }
done
tmp=$(mktemp -d)
chmod 755 "$tmp" # tcpdump may write as its own user
pids=()
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# A free port on loopback, then the stub server on it (it stops by itself after 60 s).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$src/scripts/lab/stubserver.py" lax 127.0.0.1 "$port" --lifetime 60 &
pids+=($!)
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done
tcpdump -i lo -U --immediate-mode -w "$tmp/cap.pcap" "tcp port $port" 2>"$tmp/tcpdump.err" &
pids+=($!)
for _ in $(seq 100); do
    grep -q "listening on" "$tmp/tcpdump.err" 2>/dev/null && break
    sleep 0.1
done
head -c 5000 /dev/urandom >"$tmp/report.pdf"
if ! swaks --server "127.0.0.1:$port" --from alice@example.org --to bob@example.net \
    --attach-type application/pdf --attach "$tmp/report.pdf" --attach-type text/plain \
    --attach-body 'see attached' >"$tmp/swaks.out" 2>&1; then
    bad "swaks failed: $(tail -3 "$tmp/swaks.out")"
fi
# The session is over (swaks sent QUIT and got 221): stop the recording once its last
# packets are written (-U writes each packet as it comes).
for _ in $(seq 50); do
    [ "$(tcpdump -r "$tmp/cap.pcap" 'tcp[tcpflags] & tcp-fin != 0' 2>/dev/null | wc -l)" -ge 2 ] && break
    sleep 0.1
done
kill "${pids[1]}" 2>/dev/null
wait "${pids[1]}" 2>/dev/null

"$bin" -r "$tmp/cap.pcap" --ports "$port" --json "$tmp/r.json" -q 2>"$tmp/err" ||
    bad "smtpsniff failed: $(head -2 "$tmp/err")"
jq -c -s 'map(select(.type == "session")) | .[0].transactions[0].data.mime.parts' \
    "$tmp/r.json" >"$tmp/parts.json"
jq -r '. as $p | .[] | select(.parent != null and ($p[.parent].type | startswith("multipart/"))) |
       .type' "$tmp/parts.json" >"$tmp/ours.types"
jq -r '. as $p | .[] | select(.parent != null and ($p[.parent].type | startswith("multipart/"))) |
       .transfer_encoding // empty' "$tmp/parts.json" >"$tmp/ours.cte"
tshark -r "$tmp/cap.pcap" -d "tcp.port==$port,smtp" -Y imf -T fields -E aggregator='|' \
    -e mime_multipart.header.content-type -e mime_multipart.header.content-transfer-encoding \
    >"$tmp/tshark.txt" 2>/dev/null
cut -f1 "$tmp/tshark.txt" | tr '|' '\n' | sed 's/;.*//' | tr '[:upper:]' '[:lower:]' >"$tmp/tshark.types"
cut -f2 "$tmp/tshark.txt" | tr '|' '\n' | tr '[:upper:]' '[:lower:]' >"$tmp/tshark.cte"
[ "$(wc -l <"$tmp/ours.types")" = 2 ] || bad "$(wc -l <"$tmp/ours.types") parts in the multipart, not 2"
diff "$tmp/tshark.types" "$tmp/ours.types" >&2 || bad "content types differ from tshark's"
diff "$tmp/tshark.cte" "$tmp/ours.cte" >&2 || bad "transfer encodings differ from tshark's"
want=$(sha256sum "$tmp/report.pdf" | cut -d' ' -f1)
got=$(jq -r '.[] | select(.type == "application/pdf") | .sha256' "$tmp/parts.json")
[ "$want" = "$got" ] || bad "the attachment's SHA-256 is $got, the file's $want"
[ "$(jq -r '.[] | select(.type == "application/pdf") | .decoded_bytes' "$tmp/parts.json")" = 5000 ] ||
    bad "the attachment's decoded size is not 5000: $(cat "$tmp/parts.json")"
exit $fail
