#!/bin/bash
# --min-severity, --anomaly, --address, --domain choose the sessions printed. On all the
# samples read together and on a generated capture of thousands of sessions, for each
# filter:
#   - the NDJSON sessions written are exactly those jq selects from the unfiltered NDJSON,
#     in the same order and byte for byte;
#   - the text view and the --lines records are of those sessions only;
#   - the summary is the same as without the filter (it counts every session);
#   - --workers 2 writes the same bytes as one process.
# Bad values: one line on stderr, exit 2.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_smtpsniff
need_tool jq
benchgen=$build/tests/benchgen
[ -x "$benchgen" ] || { echo "FAIL: $benchgen is not built" >&2; exit 1; }

# What each filter selects, in jq over one session ($f: the filter's values).
jq_sel='
def rank: {"info": 0, "notice": 1, "warning": 2, "error": 3}[.];
def lc: ascii_downcase;
def envelope: [.transactions[]? | .mail_from, .rcpt[]?.to] | map(select(. != null));
def in_domain($d): (lc | split("@")) as $p
    | ($p | length) > 1 and (($p | last) as $dom | $dom == ($d | lc) or ($dom | endswith("." + ($d | lc))));
def sel_sev($l): any(.anomalies[]?; (.severity | rank) >= ($l | rank));
def sel_ids($ids): any(.anomalies[]?; .id as $i | $ids | index([$i]) != null);
def sel_env($addrs; $doms): envelope as $e
    | any($e[]; lc as $a | (any($addrs[]; lc == $a)) or (. as $x | any($doms[]; . as $d | $x | in_domain($d))));
'

# run NAME ARGS...: NDJSON, text view and lines with ARGS (the capture options included).
run() {
    local name=$1
    shift
    "$bin" "$@" --json "$tmp/$name.json" >"$tmp/$name.txt" 2>"$tmp/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || bad "$name: exit $rc: $(head -2 "$tmp/$name.err")"
    "$bin" "$@" --lines >"$tmp/$name.tsv" 2>/dev/null
}

# case NAME JQ_SELECT FILTER_ARGS...: the filtered run against the base run's selection.
case_() {
    local name=$1 expr=$2
    shift 2
    run "$name" "${base_args[@]}" "$@"
    jq -c "$jq_defs $jq_sel select(.type == \"session\") | select($expr)" "$tmp/$base.json" >"$tmp/$name.want"
    jq -c 'select(.type == "session")' "$tmp/$name.json" >"$tmp/$name.got"
    local nw
    nw=$(wc -l <"$tmp/$name.want")
    cmp -s "$tmp/$name.want" "$tmp/$name.got" ||
        bad "$name: the sessions written ($(wc -l <"$tmp/$name.got")) are not the $nw jq selects"
    cmp -s <(jq -c 'select(.type == "summary")' "$tmp/$base.json") \
        <(jq -c 'select(.type == "summary")' "$tmp/$name.json") ||
        bad "$name: the summary differs from the unfiltered one"
    [ "$(grep -c '^session [0-9]' "$tmp/$name.txt")" = "$nw" ] ||
        bad "$name: the text view shows $(grep -c '^session [0-9]' "$tmp/$name.txt") sessions, not $nw"
    [ "$(diff <(sed -n '/^summary: /,$p' "$tmp/$base.txt") <(sed -n '/^summary: /,$p' "$tmp/$name.txt"))" = "" ] ||
        bad "$name: the text summary differs from the unfiltered one"
    local ids_lines ids_want
    ids_lines=$(grep -v '^#' "$tmp/$name.tsv" | cut -f2 | uniq | tr '\n' ' ')
    ids_want=$(jq -r '.id' "$tmp/$name.want" | tr '\n' ' ')
    [ "$ids_lines" = "$ids_want" ] || bad "$name: --lines shows sessions '$ids_lines', not '$ids_want'"
    local one many
    one=$(cat "$tmp/$name.json" "$tmp/$name.txt" | md5sum)
    many=$( ("$bin" "${base_args[@]}" "$@" --json - --workers 2 2>/dev/null
        "$bin" "${base_args[@]}" "$@" --workers 2 2>/dev/null) | md5sum)
    [ "$one" = "$many" ] || bad "$name: --workers 2 output differs from one process"
    echo "$name: $nw session(s)" >>"$tmp/counts"
}

# Every sample at once (merged in time order), with the TLS secrets of the decrypted ones.
base_args=()
shopt -s nullglob
for cap in "$src"/samples/*.pcap "$src"/samples/*.pcapng; do
    base_args+=(-r "$cap")
    [ -f "${cap%.*}.keys" ] && base_args+=(--tls-keylog "${cap%.*}.keys")
done
base=samples
run "$base" "${base_args[@]}"
n=$(jq -c 'select(.type == "session")' "$tmp/$base.json" | wc -l)
[ "$n" -gt 50 ] || bad "samples: only $n sessions"
for sev in info notice warning error; do
    case_ "samples-sev-$sev" "sel_sev(\"$sev\")" --min-severity "$sev"
done
case_ samples-anomaly "sel_ids([\"rst_injected\"])" --anomaly rst_injected
case_ samples-anomalies "sel_ids([\"rst_injected\", \"open_relay\", \"mailbox_full\"])" \
    --anomaly rst_injected --anomaly open_relay --anomaly mailbox_full
case_ samples-address "sel_env([\"user@example.net\"]; [])" --address USER@Example.NET
case_ samples-domain "sel_env([]; [\"example.org\"])" --domain example.org
case_ samples-domain-case "sel_env([]; [\"example.org\"])" --domain EXAMPLE.Org
case_ samples-domain-none "sel_env([]; [\"xample.org\"])" --domain xample.org
case_ samples-addr-or-domain "sel_env([\"alice@example.net\"]; [\"oldcorp.example\"])" \
    --address alice@example.net --domain oldcorp.example
case_ samples-and "sel_sev(\"warning\") and sel_env([]; [\"example.net\"])" \
    --min-severity warning --domain example.net
case_ samples-sev-and-id "sel_sev(\"error\") and sel_ids([\"starttls_not_used\"])" \
    --min-severity error --anomaly starttls_not_used
grep -q "^samples-domain-none: 0 " "$tmp/counts" || bad "--domain xample.org matched a session"

# Thousands of sessions: example.net and its subdomains lists. and staff.
"$benchgen" --seed 5 --size 8 --body-kb 1 "$tmp/bench.pcap" 2>"$tmp/bench.log" || bad "benchgen: $(cat "$tmp/bench.log")"
base_args=(-r "$tmp/bench.pcap")
base=bench
run "$base" "${base_args[@]}"
case_ bench-sev "sel_sev(\"warning\")" --min-severity warning
case_ bench-anomaly "sel_ids([\"auth_in_clear\"])" --anomaly auth_in_clear
case_ bench-domain "sel_env([]; [\"example.net\"])" --domain example.net
case_ bench-subdomain "sel_env([]; [\"lists.example.net\"])" --domain lists.example.net
case_ bench-address "sel_env([\"judy@mail.example\"]; [])" --address Judy@Mail.Example
for c in bench-anomaly bench-domain bench-subdomain bench-address; do
    grep -Eq "^$c: [1-9][0-9]* " "$tmp/counts" || bad "$c selected no session: nothing tested"
done
bd=$(sed -n 's/^bench-domain: \([0-9]*\) .*/\1/p' "$tmp/counts")
bs=$(sed -n 's/^bench-subdomain: \([0-9]*\) .*/\1/p' "$tmp/counts")
[ "${bd:-0}" -gt "${bs:-0}" ] || bad "--domain example.net ($bd) does not take more than its subdomain ($bs)"
# A domain takes its subdomains: every session --domain lists.example.net prints is one
# that --domain example.net prints, and some have no address in example.net itself.
[ -z "$(comm -23 <(jq -r .id "$tmp/bench-subdomain.got" | sort) <(jq -r .id "$tmp/bench-domain.got" | sort))" ] ||
    bad "--domain example.net leaves out sessions of lists.example.net"
jq -e -s 'any(.[]; [.transactions[]? | .mail_from, .rcpt[]?.to] | all(endswith("@example.net") | not))' \
    "$tmp/bench-subdomain.got" >/dev/null ||
    bad "bench: no session with addresses only in subdomains: the subdomain rule is not tested"

# Bad values: one line, exit 2.
usage() {
    local out st
    out=$("$bin" -r "$src/samples/01-submission-auth.pcap" "$@" 2>&1 >/dev/null)
    st=$?
    [ "$st" -eq 2 ] || bad "'$*' exits $st, not 2"
    [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || bad "'$*' does not say one line: $out"
}
usage --min-severity loud
usage --min-severity
usage --anomaly no_such_anomaly
usage --address ''
usage --address '<a@example.org>'
usage --address 'a b@example.org'
usage --domain ''
usage --domain user@example.org
usage --domain .example.org

[ -n "${SMTPSNIFF_KEEP_TMP:-}" ] && cat "$tmp/counts" >&2
finish
