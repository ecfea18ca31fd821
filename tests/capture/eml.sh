#!/bin/bash
# --eml: the message files. smtpsniff runs as root and the bytes come from whoever is on the
# wire, so: a file is only ever created new under the directory named at start-up (a
# symlink or a file planted at its name is left alone, the message goes to the next free
# name), mode 0600; each message is written as it is read (memory stays flat however many
# large messages are open at once, and none is cut at a size); each transaction's report
# names its file and says whether it holds the whole message; write failures are told on
# stderr once, counted, and end in exit status 3 after the analysis went on.
#
# Memory bound: for 20 concurrent messages of 8 MiB each (SMTPSNIFF_EML_FULL=1: 20 MiB
# each), peak RSS (GNU time's %M) below 100 MiB (tripled under AddressSanitizer, as in
# hostile.sh) and within 64 MiB of the same run without --eml; keeping the messages in
# memory takes 160 MiB (400 MiB) more.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_tool sha256sum
need_pcapgen
need_smtpsniff

# eml_sha DIR NAME REPORT: each message's file holds the envelope lines (eml_envelope_bytes of
# them) and then the bytes the report hashed.
eml_sha() {
    local dir=$1 name=$2 want got file env
    want=$(jq -r 'select(.type == "session") | .transactions[].data |
                  select(.eml_file) | "\(.sha256)  \(.eml_file)"' "$tmp/$name.json" | sort)
    got=$(jq -r 'select(.type == "session") | .transactions[].data | select(.eml_file) |
                 "\(.eml_envelope_bytes) \(.eml_file)"' "$tmp/$name.json" |
        while read -r env file; do
            echo "$(tail -c +$((env + 1)) "$dir/$file" | sha256sum | cut -d' ' -f1)  $file"
        done | sort)
    if [ -z "$want" ] || [ "$want" != "$got" ]; then
        bad "$name: the .eml files do not hold the messages of the report"
    fi
}

# eml_size FILE REPORT_NAME: the file's size without its envelope lines.
eml_size() {
    local env
    env=$(view "$2" '.transactions[0].data.eml_envelope_bytes')
    echo $(($(stat -c %s "$1") - env))
}

# --- the report names each file, and says what it holds ---------------------------------
for s in eth bdat gap eml_cut died_after_data; do
    gen "$s" || continue
    mkdir -p "$tmp/$s.d"
    analyse "$s" --eml "$tmp/$s.d" || continue
    [ -s "$tmp/$s.err" ] && bad "$s: unexpected stderr: $(head -2 "$tmp/$s.err")"
    check "$s" "data.eml_file names the file" \
        '[$S[].transactions[].data.eml_file] == ["session-\($S[0].id)-1.eml"]'
    case $s in
    gap | eml_cut)
        check "$s" "a message the capture lacks part of is written, marked partial" \
            '$S[0].transactions[0].data.eml_status == "partial" and
             $sum.eml_written == 0 and $sum.eml_partial == 1 and $sum.eml_errors == 0'
        bytes=$(view "$s" '.transactions[0].data.bytes')
        size=$(eml_size "$tmp/$s.d/session-1-1.eml" "$s")
        [ "$bytes" = "$size" ] || bad "$s: the partial file has $size bytes, the report $bytes"
        ;;
    *)
        check "$s" "a whole message is written whole" \
            '$S[0].transactions[0].data.eml_status == "whole" and
             $sum.eml_written == 1 and $sum.eml_partial == 0 and $sum.eml_errors == 0'
        eml_sha "$tmp/$s.d" "$s"
        # The envelope first, as a delivering MTA writes it, from the report's own envelope.
        want=$(view "$s" '.transactions[0] | "Return-Path: <\(.mail_from)>\r",
                 (.rcpt[] | select(.code < 300) | "X-Smtpsniff-Rcpt-To: <\(.to)>\r")' | jq -r .)
        got=$(head -c "$(view "$s" '.transactions[0].data.eml_envelope_bytes')" \
            "$tmp/$s.d/session-1-1.eml")
        [ "$want" = "$got" ] || bad "$s: envelope lines $(printf %q "$got"), want $(printf %q "$want")"
        ;;
    esac
done

# A message the server refused (552 after the end of data) is evidence too: written whole.
mkdir -p "$tmp/refused.d"
sniff refused -r "$src/samples/08-deferrals-limits.pcapng" --eml "$tmp/refused.d"
[ "$rc" -eq 0 ] || bad "refused: exit $rc: $(head -2 "$tmp/refused.err")"
check refused "the refused message is written whole" \
    '[$S[].transactions[].data | select(.code == 552) | .eml_status] == ["whole"]'
eml_sha "$tmp/refused.d" refused

# --- never through a symlink, never over a file; mode 0600 --------------------------------
d=$tmp/planted
mkdir -p "$d"
echo precious >"$tmp/outside"
ln -s "$tmp/outside" "$d/session-1-1.eml"
ln -s "$tmp/created-by-smtpsniff" "$d/session-1-1.1.eml"
echo "not a message" >"$d/session-1-1.2.eml"
umask 000
analyse eth --eml "$d"
umask 022
[ "$(cat "$tmp/outside")" = precious ] || bad "planted symlink: the file outside was written"
[ -e "$tmp/created-by-smtpsniff" ] && bad "dangling symlink: a file was created through it"
[ -L "$d/session-1-1.eml" ] && [ -L "$d/session-1-1.1.eml" ] || bad "planted symlinks replaced"
[ "$(cat "$d/session-1-1.2.eml")" = "not a message" ] || bad "an existing file was overwritten"
check eth "the message went to the next free name" \
    '$S[0].transactions[0].data.eml_file == "session-1-1.3.eml" and
     $S[0].transactions[0].data.eml_status == "whole" and $sum.eml_written == 1'
eml_sha "$d" eth
grep -q 'session-1-1.eml exists: written as session-1-1.3.eml' "$tmp/eth.err" ||
    bad "the taken name is not told on stderr: $(head -2 "$tmp/eth.err")"
mode=$(stat -c %a "$d/session-1-1.3.eml")
[ "$mode" = 600 ] || bad "the .eml file has mode $mode, not 600 (umask 000)"

# --- the directory: missing, not one, or writable by anyone without the sticky bit --------
gen eth
for what in missing file open; do
    case $what in
    missing) dir=$tmp/no-such-dir ;;
    file) dir=$tmp/outside ;;
    open)
        dir=$tmp/open
        mkdir -p "$dir"
        chmod 0777 "$dir"
        ;;
    esac
    sniff "dir_$what" -r "$tmp/eth.pcap" --eml "$dir"
    if [ "$rc" -ne 3 ] || [ "$(wc -l <"$tmp/dir_$what.err")" -ne 1 ] ||
        ! grep -q -- "--eml $dir" "$tmp/dir_$what.err"; then
        bad "--eml $what directory: exit $rc (want 3, one line on stderr): $(head -2 \
            "$tmp/dir_$what.err")"
    fi
    [ -s "$tmp/dir_$what.json" ] && bad "--eml $what directory: a report was written anyway"
done
chmod 1777 "$tmp/open"
sniff dir_sticky -r "$tmp/eth.pcap" --eml "$tmp/open"
[ "$rc" -eq 0 ] && [ -f "$tmp/open/session-1-1.eml" ] ||
    bad "--eml on a sticky world-writable directory: exit $rc: $(head -2 "$tmp/dir_sticky.err")"
# The directory is the one opened at start-up: what its path names later does not matter.
# smtpsniff opens --eml DIR, then blocks opening the capture (a FIFO); once DIR is among
# its descriptors, DIR is moved away and a symlink to another directory put in its place.
mkdir -p "$tmp/swap" "$tmp/elsewhere"
mkfifo "$tmp/swap.fifo"
"$bin" -r "$tmp/swap.fifo" --eml "$tmp/swap" --json - >"$tmp/swap.json" 2>"$tmp/swap.err" &
pid=$!
want=$(realpath "$tmp/swap")
seen=
for _ in $(seq 1 200); do
    for fd in /proc/$pid/fd/*; do
        [ "$(readlink "$fd" 2>/dev/null)" = "$want" ] && seen=1
    done
    [ -n "$seen" ] && break
    sleep 0.05
done
if [ -n "$seen" ]; then
    mv "$tmp/swap" "$tmp/swap.moved"
    ln -s "$tmp/elsewhere" "$tmp/swap"
fi
cat "$tmp/eth.pcap" >"$tmp/swap.fifo"
wait "$pid"
rc=$?
if [ -z "$seen" ]; then
    bad "--eml DIR was never among smtpsniff's descriptors (exit $rc)"
else
    [ "$rc" -eq 0 ] || bad "swapped directory: exit $rc: $(head -2 "$tmp/swap.err")"
    [ -f "$tmp/swap.moved/session-1-1.eml" ] ||
        bad "swapped directory: the message is not in the directory opened at start-up"
    [ -z "$(ls -A "$tmp/elsewhere")" ] ||
        bad "swapped directory: a file went where the path pointed later"
fi

# --- memory stays flat with many large messages open at once -----------------------------
# Two bounds: the peak with --eml is within 64 MiB of the peak of the same run without it,
# and below 100 MiB (tripled under AddressSanitizer, as in hostile.sh, whose quarantine of
# freed memory is held to 32 MiB here: by default it alone keeps 256 MiB of freed segments).
if [ -n "${SMTPSNIFF_EML_FULL:-}" ]; then size=20M; else size=8M; fi
limit=${SMTPSNIFF_RSS_LIMIT_KIB:-102400}
if [ -z "${SMTPSNIFF_RSS_LIMIT_KIB:-}" ] && grep -qa __asan_init "$bin"; then
    limit=$((limit * 3))
fi
timer=
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o "$tmp/probe" true 2>/dev/null; then
    timer=/usr/bin/time
else
    echo "note: /usr/bin/time not usable, peak memory not checked" >&2
fi
# peak NAME ARGS...: runs smtpsniff ARGS --json -, its peak RSS in KiB in $kib.
peak() {
    local name=$1
    shift
    kib=
    if [ -n "$timer" ]; then
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=32" \
            $timer -f %M -o "$tmp/$name.rss" "$bin" "$@" --json - -q >"$tmp/$name.json" \
            2>"$tmp/$name.err"
        rc=$?
        kib=$(tail -1 "$tmp/$name.rss")
    else
        "$bin" "$@" --json - -q >"$tmp/$name.json" 2>"$tmp/$name.err"
        rc=$?
    fi
}
if gen eml_concurrent "$size"; then
    mkdir -p "$tmp/conc.d"
    peak conc_plain -r "$tmp/eml_concurrent.pcap"
    plain=$kib
    peak eml_concurrent -r "$tmp/eml_concurrent.pcap" --eml "$tmp/conc.d"
    [ "$rc" -eq 0 ] || bad "eml_concurrent: exit $rc: $(head -2 "$tmp/eml_concurrent.err")"
    if [ -n "$timer" ]; then
        echo "20 concurrent messages of $size: peak RSS $kib KiB with --eml, $plain KiB" \
            "without (limit $limit KiB, and 65536 KiB more than without)"
        [ "$kib" -lt "$limit" ] || bad "eml_concurrent $size: peak RSS $kib KiB >= $limit KiB"
        [ "$kib" -lt $((plain + 65536)) ] ||
            bad "eml_concurrent $size: peak RSS $kib KiB with --eml, $plain KiB without"
    fi
    ndjson_ok eml_concurrent &&
        check eml_concurrent "all 20 messages written whole" \
            '($S | length) == 20 and $sum.eml_written == 20 and
             ([$S[].transactions[0].data.eml_status] | unique) == ["whole"]'
    eml_sha "$tmp/conc.d" eml_concurrent
    rm -rf "$tmp/conc.d"
fi

# --- no size cap: a message just over the former 64 MiB one is written whole -------------
if gen eml_big 65540k; then
    mkdir -p "$tmp/big.d"
    analyse eml_big --eml "$tmp/big.d" --no-hash &&
        check eml_big "the message is written whole" \
            '$sum.eml_written == 1 and $S[0].transactions[0].data.eml_status == "whole"'
    bytes=$(view eml_big '.transactions[0].data.bytes')
    size=$(eml_size "$tmp/big.d/session-1-1.eml" eml_big 2>/dev/null)
    if [ "$bytes" != "$(fact eml_big message_bytes)" ] || [ "$size" != "$bytes" ]; then
        bad "eml_big: message of $(fact eml_big message_bytes) bytes, report $bytes, file $size"
    fi
    rm -rf "$tmp/big.d"
fi

# --- write failures: told once, counted, the analysis goes on, exit 3 ---------------------
gen eml_concurrent 200k
full=$tmp/full
mkdir -p "$full"
how=
if unshare -m true 2>/dev/null &&
    unshare -m bash -c 'mount -t tmpfs -o size=64k smtpsniff-eml "$1" || exit 99
                        exec "$2" -r "$3" --eml "$1" --json - -q' _ "$full" "$bin" \
        "$tmp/eml_concurrent.pcap" >"$tmp/full.json" 2>"$tmp/full.err"; then
    rc=0
else
    rc=$?
fi
if [ "$rc" -ne 99 ] && [ -s "$tmp/full.json" ]; then
    how="a 64 KiB tmpfs"
else
    # No mount namespace: a file size limit (SIGXFSZ is ignored by smtpsniff).
    (
        ulimit -f 64 || exit 98
        exec "$bin" -r "$tmp/eml_concurrent.pcap" --eml "$full" --json - -q
    ) 2>"$tmp/full.err" | cat >"$tmp/full.json"
    rc=${PIPESTATUS[0]}
    [ "$rc" -ne 98 ] && how="ulimit -f 64"
fi
if [ -z "$how" ]; then
    echo "SKIP (full disk): neither a tmpfs in a private mount namespace nor ulimit -f" >&2
else
    echo "full disk: $how"
    cp "$tmp/full.json" "$tmp/full_disk.json"
    [ "$rc" -eq 3 ] || bad "full disk ($how): exit $rc, want 3"
    n=$(grep -c 'cannot write' "$tmp/full.err")
    [ "$n" -eq 1 ] || bad "full disk ($how): $n 'cannot write' lines on stderr, want 1"
    grep -q 'messages could not be written to' "$tmp/full.err" ||
        bad "full disk ($how): no total of the failures on stderr"
    ndjson_ok full_disk &&
        check full_disk "the analysis went on and counted every failure" \
            '($S | length) == 20 and $sum.eml_errors > 0 and
             $sum.eml_written + $sum.eml_errors == 20 and
             ([$S[].transactions[0].data | select(.eml_status == "failed")] | length) ==
             $sum.eml_errors'
fi

# --- no descriptor left: the files that cannot be created are counted, the others written --
mkdir -p "$tmp/fds.d"
(
    ulimit -n 16 || exit 98
    exec "$bin" -r "$tmp/eml_concurrent.pcap" --eml "$tmp/fds.d" --json - -q
) >"$tmp/fds.json" 2>"$tmp/fds.err"
rc=$?
if [ "$rc" -eq 98 ]; then
    echo "note: ulimit -n 16 refused, descriptor exhaustion not checked" >&2
else
    [ "$rc" -eq 3 ] || bad "no descriptor left: exit $rc, want 3"
    n=$(grep -c 'cannot create' "$tmp/fds.err")
    [ "$n" -eq 1 ] || bad "no descriptor left: $n 'cannot create' lines on stderr, want 1"
    ndjson_ok fds &&
        check fds "each message written whole or counted as failed, without a name" \
            '($S | length) == 20 and $sum.eml_errors > 0 and $sum.eml_written > 0 and
             $sum.eml_written + $sum.eml_errors == 20 and
             ([$S[].transactions[0].data | select(.eml_status == "failed") |
               select(.eml_file == null)] | length) == $sum.eml_errors'
    eml_sha "$tmp/fds.d" fds
fi

# --- workers: each writes the files of its own sessions ----------------------------------
mkdir -p "$tmp/wrk.d"
sniff workers -r "$tmp/eml_concurrent.pcap" --eml "$tmp/wrk.d" --workers 2 -q
[ "$rc" -eq 0 ] || bad "--workers 2 --eml: exit $rc: $(head -2 "$tmp/workers.err")"
ndjson_ok workers && check workers "--workers 2: all 20 written" '$sum.eml_written == 20'
eml_sha "$tmp/wrk.d" workers

finish
