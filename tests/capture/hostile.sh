#!/bin/bash
# Hostile captures: every one must be analysed without a crash, with exit status 0,
# valid NDJSON and a bounded peak memory. Time is deliberately not asserted.
#
# Memory bound: 512 MiB peak RSS (GNU time's %M), generous next to the few MiB a
# normal run needs; tripled when smtpsniff is built with AddressSanitizer, whose
# shadow memory and quarantine alone take hundreds of MiB. Override with
# SMTPSNIFF_RSS_LIMIT_KIB. Without /usr/bin/time (package "time") memory is not checked.
# The default sizes keep the suite fast (a 20 MiB line, not 100 MiB);
# SMTPSNIFF_HOSTILE_FULL=1 uses the full sizes.
#
# Two captures are damaged at the file level: after a valid header, garbage; and a record
# longer than libpcap accepts. Reading stops at the bad record and everything before it is
# analysed: exit 0, the summary's capture_damaged names the file, the byte offset of the
# record and the reason, and stderr says so once.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

limit=${SMTPSNIFF_RSS_LIMIT_KIB:-524288}
if [ -z "${SMTPSNIFF_RSS_LIMIT_KIB:-}" ] && grep -qa __asan_init "$bin"; then
    limit=$((limit * 3))
fi
timer=
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o "$tmp/probe" true 2>/dev/null; then
    timer=/usr/bin/time
else
    echo "note: /usr/bin/time not usable, peak memory not checked" >&2
fi

# scenario [size] : the default sizes, or the full ones.
if [ -n "${SMTPSNIFF_HOSTILE_FULL:-}" ]; then
    longline=100M
else
    longline=20M
fi
cases="hostile_longline:$longline hostile_pipeline:100000 hostile_rcpts:10000
       hostile_multiline:100000 hostile_authblob:4M hostile_badbase64:210
       hostile_synflood:100000 hostile_idle_sessions:10000 hostile_headers:5000
       hostile_garbage_after_header:1M hostile_bigcaplen:1000000"

# run NAME PCAP [smtpsniff args...]: one run, checked.
run() {
    local name=$1 pcap=$2 kib
    shift 2
    if [ -n "$timer" ]; then
        $timer -f %M -o "$tmp/$name.rss" "$bin" -r "$pcap" --json - "$@" \
            >"$tmp/$name.json" 2>"$tmp/$name.err"
        rc=$?
        kib=$(tail -1 "$tmp/$name.rss")
    else
        "$bin" -r "$pcap" --json - "$@" >"$tmp/$name.json" 2>"$tmp/$name.err"
        rc=$?
        kib=
    fi
    if [ "$rc" -ge 128 ] || grep -qE 'Sanitizer|runtime error:' "$tmp/$name.err"; then
        bad "$name: crashed (exit $rc): $(grep -m3 -E 'ERROR|runtime error|SUMMARY' \
            "$tmp/$name.err")"
        return
    fi
    [ "$rc" -eq 0 ] || bad "$name: exit $rc: $(head -3 "$tmp/$name.err")"
    case $name in
    hostile_garbage_after_header* | hostile_bigcaplen*)
        check "$name" "capture_damaged names the file, the offset and the reason" \
            '($sum.capture_damaged | length) == 1 and
             ($sum.capture_damaged[0].file | endswith(".pcap")) and
             ($sum.capture_damaged[0].offset | type) == "number" and
             $sum.capture_damaged[0].offset >= 24 and
             ($sum.capture_damaged[0].reason | length) > 0'
        [ "$(grep -c 'analysed up to there' "$tmp/$name.err")" -eq 1 ] ||
            bad "$name: not exactly one warning on stderr: $(head -3 "$tmp/$name.err")"
        ;;
    esac
    if [ "$rc" -eq 0 ]; then
        ndjson_ok "$name"
    elif [ -s "$tmp/$name.json" ] &&
        [ "$(jq -c type "$tmp/$name.json" 2>/dev/null | grep -c '^"object"$')" != \
        "$(wc -l <"$tmp/$name.json")" ]; then
        bad "$name: output is not one JSON object per line"
    fi
    if [ -n "$kib" ]; then
        if [ "$kib" -gt "$limit" ] 2>/dev/null; then
            bad "$name: peak RSS ${kib} KiB above the bound of ${limit} KiB"
        fi
        echo "$name: exit $rc, peak RSS ${kib} KiB" >&2
    fi
}

for c in $cases; do
    s=${c%%:*} size=${c#*:}
    gen "$s" "$size" || continue
    run "$s" "$tmp/$s.pcap"
    rm -f "$tmp/$s.pcap"
    case $s in
    hostile_headers)
        # Again with a filter that lets every frame through to the decoder, not only
        # those the default mail-port filter selects.
        gen "$s" "$size" && run "${s}_all" "$tmp/$s.pcap" "len >= 0"
        check "${s}_all" "the valid session among the garbage is reported" \
            'any($S[]; .client.ip == "192.0.2.10" and .client.port == 51514)'
        rm -f "$tmp/$s.pcap"
        ;;
    hostile_synflood)
        # The flood must not crowd out the real session that follows it.
        check "$s" "the real session after the flood is reported" \
            'any($S[]; .client.ip == "192.0.2.10" and .outcome == "delivered")'
        ;;
    esac
done
finish
