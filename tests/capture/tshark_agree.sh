#!/bin/bash
# Second opinion on the SMTP dialogue: for the crafted session over every link layer
# (plus IPv4 fragments and a pipelined dialogue), the commands and reply codes Wireshark's
# SMTP dissector decodes, in order, are the commands and reply codes in smtpsniff's
# transcript. tshark gives one code per reply, so a multi-line reply (RFC 5321 4.2.1)
# counts once: by its last line, the one with a space after the code.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
command -v tshark >/dev/null || { echo "SKIP: tshark not installed" >&2; exit 77; }
need_tool jq
need_pcapgen
need_smtpsniff

n=0
for s in eth vlan qinq sll sll2 null loop raw ipv6 pcapng fragments pipelining; do
    gen "$s" || continue
    # Two columns per frame, each a comma-separated list when a frame holds several.
    if ! tshark -r "$tmp/$s.pcap" -Y smtp -T fields -e smtp.req.command \
        -e smtp.response.code >"$tmp/$s.tshark" 2>"$tmp/$s.tshark.err"; then
        bad "$s: tshark failed: $(grep -v '^Running as' "$tmp/$s.tshark.err" | head -2)"
        continue
    fi
    cut -f1 "$tmp/$s.tshark" | tr ',' '\n' | sed '/^$/d' | tr '[:lower:]' '[:upper:]' \
        >"$tmp/$s.tshark.cmds"
    cut -f2 "$tmp/$s.tshark" | tr ',' '\n' | sed '/^$/d' >"$tmp/$s.tshark.codes"
    if [ ! -s "$tmp/$s.tshark.cmds" ] || [ ! -s "$tmp/$s.tshark.codes" ]; then
        bad "$s: tshark decoded no SMTP (its dissector or this test is broken)"
        continue
    fi
    analyse "$s" || continue
    # The verb of each client line (the message body is one entry marked body: true),
    # the code of each reply (its last line).
    jq -r 'select(.type == "session") | .transcript[]? |
        select(.dir == "C" and ((.body // false) | not)) |
        .line | split(" ")[0] | ascii_upcase' "$tmp/$s.json" >"$tmp/$s.ours.cmds"
    jq -r 'select(.type == "session") | .transcript[]? | select(.dir == "S" and .line[3:4] != "-") |
        .line[0:3]' \
        "$tmp/$s.json" >"$tmp/$s.ours.codes"
    if ! diff "$tmp/$s.tshark.cmds" "$tmp/$s.ours.cmds" >"$tmp/$s.diff"; then
        bad "$s: commands differ (< tshark, > smtpsniff)"
        head -10 "$tmp/$s.diff" >&2
    fi
    if ! diff "$tmp/$s.tshark.codes" "$tmp/$s.ours.codes" >"$tmp/$s.diff"; then
        bad "$s: reply codes differ (< tshark, > smtpsniff)"
        head -10 "$tmp/$s.diff" >&2
    fi
    n=$((n + 1))
done
echo "compared $n captures with tshark" >&2
finish
