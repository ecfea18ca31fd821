#!/bin/bash
# --lines: one line per transaction (one per session without a transaction), as Zeek's
# smtp.log TSV. On every sample and on a generated capture of thousands of sessions:
#   - the TSV is Zeek's: its header lines in order, as many #types as #fields, the same
#     number of fields on every record, #close last;
#   - as many records as transactions (plus sessions without one) in the NDJSON;
#   - read by field name (as zeek-cut reads them), every record's fields equal the NDJSON
#     values of its session and transaction;
#   - --workers 2 writes the same bytes as one process, TSV and aligned;
#   - aligned columns hold the same records, without a TAB;
# and on crafted captures: Zeek's escapes (TAB, ',', "-", "(empty)"), no terminal control
# byte, no password; the usage errors.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_pcapgen
need_smtpsniff
need_tool jq
benchgen=$build/tests/benchgen
[ -x "$benchgen" ] || { echo "FAIL: $benchgen is not built" >&2; exit 1; }

# zcut FILE FIELD...: the named fields of each record, TAB-separated, as zeek-cut prints
# them (zeek is not in Debian: this reads the #fields line the same way).
zcut() {
    local f=$1
    shift
    awk -F'\t' -v want="$*" '
        BEGIN { n = split(want, w, " ") }
        /^#fields\t/ { for (i = 2; i <= NF; i++) col[$i] = i - 1; next }
        /^#/ { next }
        { line = ""
          for (j = 1; j <= n; j++) {
              if (!(w[j] in col)) { print "no field " w[j] > "/dev/stderr"; exit 1 }
              line = line (j > 1 ? "\t" : "") $(col[w[j]])
          }
          print line }' "$f"
}

fields='ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth helo mailfrom rcptto msg_id last_reply tls rcptto_refused reply_code reply_enhanced outcome size queue_id auth anomalies tcp_end community_id'

# The same fields computed from the NDJSON with jq, in the conventions of the log: "-" for
# no value, "(empty)" for an empty string or set, TAB and backslash escaped.
jq_lines='
def z: if . == null then "-" elif . == "" then "(empty)" elif . == "-" then "\\x2d"
       elif . == "(empty)" then "\\x28empty)" else tostring | gsub("\\\\"; "\\\\") | gsub("\t"; "\\x09") | gsub("\n"; "\\x0a")
                     | gsub("\r"; "\\x0d") end;
def zset: if length == 0 then "(empty)" else map(z | gsub(","; "\\x2c")) | join(",") end;
def b: if . == true then "T" else "F" end;
def ts($s; $tms): ($s[0:19] + "Z" | fromdate) as $sec | ($s[20:26] | tonumber) as $f
    | ($sec * 1000000 + $f + (($tms // 0) * 1000 | round)) as $u
    | "\($u / 1000000 | floor).\("000000" + ($u % 1000000 | tostring) | .[-6:])";
def fails: . != null and . >= 400 and . < 600;
def reply($t): ([{code: $t.mail_code, enhanced: $t.mail_enhanced, text: $t.mail_text}]
        + [$t.rcpt[]? | {code, enhanced, text}] | map(select(.code != null))) as $r
    | if $t.data.code != null then $t.data
      elif ($r | map(select(.code | fails)) | length) > 0 then $r | map(select(.code | fails)) | last
      elif $t.data != null then null
      else $r | last end;
def last_reply: if . == null then "-" else "\(.code)\(if (.text // "") != "" then " " + .text else "" end)" | z end;
def outcome($t; $r): if ($t.data.code // 0) >= 200 and ($t.data.code // 0) < 300 then "delivered"
    elif $t.ended_by == null or $t.ended_by == "connection_end" then "incomplete"
    elif $t.ended_by == "mail_rejected" and $t.mail_code == 503 and $t.data == null then "aborted"
    elif ($r.code // 0) >= 500 and ($r.code // 0) < 600 then "rejected"
    elif ($r.code // 0) >= 400 and ($r.code // 0) < 500 then "deferred"
    else "aborted" end;
select(.type == "session") | . as $s
| ([.anomalies[]?.id] | zset) as $an
| if (.transactions // []) | length == 0 then
    (.smtp.error_replies // [] | last) as $r
    | [ts(.start; 0), .id, .client.ip, .client.port, .server.ip, .server.port, "-",
       (.helo.name | z), "-", "-", "-", ($r | last_reply), (.tls.encrypted | b), "-",
       ($r.code | z), (if $r then $r.enhanced else null end | z), .outcome, "-", "-",
       ([.auth[]? | select(.result == "success")] | length > 0 | b), $an, .tcp.end,
       .community_id]
  else
    .transactions | to_entries[] | .key as $i | .value as $t | reply($t) as $r
    | [ts($s.start; $t.t_ms), $s.id, $s.client.ip, $s.client.port, $s.server.ip,
       $s.server.port, $i + 1, ($s.helo.name | z), ($t.mail_from | z),
       ([$t.rcpt[]? | select(.code != null and .code >= 200 and .code < 300) | .to] | zset),
       ($t.data.headers.message_id | z), ($r | last_reply), ($t.tls | b),
       ([$t.rcpt[]? | select(.code == null or .code < 200 or .code >= 300) | .to] | zset),
       ($r.code | z), (if $r then $r.enhanced else null end | z), outcome($t; $r),
       ($t.data.bytes | z), ($t.data.queue_id | z), ($t.authenticated | b), $an,
       $s.tcp.end, $s.community_id]
  end
| map(tostring) | join("\t")'

# tsv_ok NAME: the Zeek header, one field count throughout, #close last.
tsv_ok() {
    local f=$tmp/$1.tsv
    local want_head
    want_head=$(printf '#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tsmtp')
    [ "$(head -5 "$f")" = "$want_head" ] || bad "$1: the first five header lines are not Zeek's"
    sed -n 6p "$f" | grep -Eq '^#open	[0-9]{4}(-[0-9]{2}){5}$' || bad "$1: line 6 is not #open TIME"
    [ "$(sed -n 7p "$f")" = "#fields	${fields// /	}" ] || bad "$1: #fields is not line 7 or differs"
    sed -n 8p "$f" | grep -q '^#types	time	string	addr	port	addr	port	count	' ||
        bad "$1: #types is not line 8"
    [ "$(sed -n 8p "$f" | awk -F'\t' '{print NF}')" = "$(sed -n 7p "$f" | awk -F'\t' '{print NF}')" ] ||
        bad "$1: #types and #fields differ in number"
    tail -1 "$f" | grep -Eq '^#close	[0-9]{4}(-[0-9]{2}){5}$' || bad "$1: the last line is not #close TIME"
    [ "$(grep -c '^#' "$f")" -eq 9 ] || bad "$1: '#' lines besides the header and #close"
    local nf
    nf=$(grep -v '^#' "$f" | awk -F'\t' '{print NF}' | sort -u | tr '\n' ' ')
    [ -z "$nf" ] || [ "$nf" = "23 " ] || bad "$1: records with other than 23 fields: $nf"
}

# lines_check NAME ARGS...: analyses with ARGS once for TSV and NDJSON, then checks.
lines_check() {
    local name=$1
    shift
    "$bin" "$@" --json "$tmp/$name.json" --lines >"$tmp/$name.tsv" 2>"$tmp/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || { bad "$name: exit $rc: $(head -2 "$tmp/$name.err")"; return; }
    tsv_ok "$name"
    local want got
    want=$(jq -s '[.[] | select(.type == "session") | [(.transactions // []) | length, 1] | max] | add // 0' "$tmp/$name.json")
    got=$(grep -cv '^#' "$tmp/$name.tsv")
    [ "$want" = "$got" ] || bad "$name: $got records, the NDJSON has $want transactions and sessions without one"
    jq -r "$jq_lines" "$tmp/$name.json" >"$tmp/$name.want"
    # shellcheck disable=SC2086 # the field names are words
    zcut "$tmp/$name.tsv" $fields >"$tmp/$name.got"
    if ! cmp -s "$tmp/$name.want" "$tmp/$name.got"; then
        bad "$name: fields differ from the NDJSON: $(diff "$tmp/$name.want" "$tmp/$name.got" | head -3 | cut -c1-300)"
    fi
    # Independently of how jq derives it above: the outcome of a session's only transaction
    # is the session's outcome, as the SMTP model judged it.
    local odd
    odd=$(join <(jq -r 'select(.type == "session" and ((.transactions // []) | length) == 1) | "\(.id) \(.outcome)"' \
        "$tmp/$name.json" | sort) <(zcut "$tmp/$name.tsv" uid outcome | tr '\t' ' ' | sort) | awk '$2 != $3')
    [ -z "$odd" ] || bad "$name: a transaction's outcome is not its session's: $(head -2 <<<"$odd")"
    # The same bytes from two workers, TSV and aligned.
    local one many
    one=$(md5sum <"$tmp/$name.tsv")
    many=$("$bin" "$@" --json /dev/null --lines --workers 2 2>/dev/null | md5sum)
    [ "$one" = "$many" ] || bad "$name: --workers 2 TSV differs from one process"
    "$bin" "$@" --lines-style aligned >"$tmp/$name.aligned" 2>/dev/null
    one=$(md5sum <"$tmp/$name.aligned")
    many=$("$bin" "$@" --lines-style aligned --workers 2 2>/dev/null | md5sum)
    [ "$one" = "$many" ] || bad "$name: --workers 2 aligned differs from one process"
    aligned_ok "$name" "$got"
}

# aligned_ok NAME N: a header row of the field names, N rows, a blank line, the summary;
# no TAB; the uid column starts where its header does.
aligned_ok() {
    local f=$tmp/$1.aligned n=$2
    grep -q "$(printf '\t')" "$f" && bad "$1: a TAB in the aligned columns"
    [ "$(head -1 "$f" | tr -s ' ' | tr ' ' '\n' | tr '\n' ' ')" = "$fields " ] ||
        bad "$1: the aligned header is not the field names"
    local rows
    rows=$(awk 'NR > 1 && /^$/ { exit } NR > 1 { n++ } END { print n + 0 }' "$f")
    [ "$rows" = "$n" ] || bad "$1: $rows aligned rows for $n records"
    awk -v n="$n" 'NR == n + 2 && $0 != "" { exit 1 } NR == n + 3 && !/^summary: / { exit 1 }' "$f" ||
        bad "$1: the aligned rows are not followed by a blank line and the summary"
    local col
    col=$(head -1 "$f" | awk '{ print index($0, " uid ") + 1 }')
    awk -v c="$col" 'NR > 1 && /^$/ { exit } NR > 1 && substr($0, c - 2, 3) !~ /^  [0-9]$/ { bad = 1 }
        END { exit bad }' "$f" || bad "$1: the uid column is not aligned under its header"
}

shopt -s nullglob
n=0
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    base=$(basename "${cap%.*}")
    opts=()
    [ -f "${cap%.*}.opts" ] && read -ra opts <"${cap%.*}.opts"
    [ -f "${cap%.*}.keys" ] && opts+=(--tls-keylog "${cap%.*}.keys")
    lines_check "$base" -r "$cap" "${opts[@]}"
    n=$((n + 1))
done
[ $n -gt 0 ] || bad "no samples"

# Thousands of sessions, IPv4 and IPv6, one or two messages each, refused recipients.
if "$benchgen" --seed 5 --size 8 --body-kb 1 "$tmp/bench.pcap" 2>"$tmp/bench.log"; then
    lines_check bench -r "$tmp/bench.pcap"
    [ "$(grep -cv '^#' "$tmp/bench.tsv")" -ge 2000 ] || bad "bench: fewer than 2000 records"
    [ "$(zcut "$tmp/bench.tsv" rcptto_refused | grep -cv '^(empty)$')" -gt 0 ] ||
        bad "bench: no refused recipient in any record"
    [ "$(zcut "$tmp/bench.tsv" trans_depth | grep -c '^2$')" -gt 0 ] ||
        bad "bench: no session with a second transaction"
else
    bad "benchgen: $(cat "$tmp/bench.log")"
fi

# Zeek's escapes: a HELO of "-", the null sender, a ',' and a TAB in recipients, a
# recipient "(empty)", TABs in a reply and a Message-ID.
gen lines_escapes && lines_check lines_escapes -r "$tmp/lines_escapes.pcap" &&
    {
        got=$(zcut "$tmp/lines_escapes.tsv" helo mailfrom rcptto rcptto_refused msg_id)
        want=$(printf '%s\t%s\t%s\t%s\t%s' '\x2d' '(empty)' '"a\x2cb"@example.net,tab\x09here@example.net' \
            '\x28empty)' '<x\x09y@example.org>')
        [ "$got" = "$want" ] || bad "lines_escapes: escaped fields are '$got', not '$want'"
    }

# Terminal control sequences from the wire never reach the output unescaped.
gen term_escapes && {
    "$bin" -r "$tmp/term_escapes.pcap" --lines >"$tmp/te.tsv" 2>/dev/null
    "$bin" -r "$tmp/term_escapes.pcap" --lines-style aligned >"$tmp/te.aligned" 2>/dev/null
    LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f\x80-\x9f]' "$tmp/te.tsv" "$tmp/te.aligned" &&
        bad "term_escapes: a control byte in the lines output"
    LC_ALL=C grep -q $'\xe2\x80\xae' "$tmp/te.tsv" "$tmp/te.aligned" &&
        bad "term_escapes: a bidirectional override in the lines output"
    [ "$(grep -v '^#' "$tmp/te.tsv" | awk -F'\t' '{print NF}')" = 23 ] ||
        bad "term_escapes: the record has not 23 fields"
}

# No password of the samples' accounts in any lines output.
while read -r user pw; do
    [ -n "$user" ] && [ "${user#\#}" = "$user" ] || continue
    for f in "$tmp"/*.tsv "$tmp"/*.aligned; do
        grep -qF -- "$pw" "$f" && bad "$(basename "$f"): the password of $user is in it"
    done
done <"$src/samples/secrets.txt"

# Not a terminal: TSV; a terminal: aligned (script(1) gives the run one).
first=$("$bin" -r "$src/samples/01-submission-auth.pcap" --lines 2>/dev/null | head -1)
[ "$first" = '#separator \x09' ] || bad "--lines into a pipe does not write TSV"
if command -v script >/dev/null; then
    script -qec "$bin -r $src/samples/01-submission-auth.pcap --lines" /dev/null >"$tmp/tty.out" 2>&1
    head -1 "$tmp/tty.out" | grep -q '^ts  *uid  *id\.orig_h' || bad "--lines on a terminal is not aligned"
    script -qec "$bin -r $src/samples/01-submission-auth.pcap --lines-style tsv" /dev/null >"$tmp/tty.out" 2>&1
    head -1 "$tmp/tty.out" | grep -q '^#separator' || bad "--lines-style tsv on a terminal is not TSV"
fi

# Usage errors: one line, exit 2.
usage() {
    local out
    out=$("$bin" -r "$src/samples/01-submission-auth.pcap" "$@" 2>&1 >/dev/null)
    local st=$?
    [ "$st" -eq 2 ] || bad "'$*' exits $st, not 2"
    [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || bad "'$*' does not say one line: $out"
}
usage --lines-style columns
usage --lines -q
usage --lines --json -
usage --lines-style

finish
