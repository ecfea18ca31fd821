#!/bin/bash
# smtpsniff summarize --lines / --html / --svg and the print filters, from NDJSON reports
# read back. For the samples and a generated capture (benchgen, concurrent sessions):
#  - `summarize --lines` (TSV) of the report is the analysis' --lines with the sessions in
#    start order: byte for byte the same file when the analysis already wrote them in that
#    order (it writes them as they end), else the same lines regrouped, #open then being the
#    first line's time (Zeek's #open is the time of the log's first line) and #close equal;
#  - the filters (--min-severity, --anomaly, --domain, --address) print the same sessions
#    as in the analysis;
#  - the same report given twice (two sensors) gives each session once: in the lines, the
#    page (one ladder per session in the DOM, read by chromium --dump-dom and python3's
#    HTML parser) and the --svg files; two sensors whose session ids coincide get every
#    session its own ladder, anchor and SVG file, named by input ("K-ID");
#  - the page's summary holds summarize's figures;
#  - bad usage exits 2 with one line.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_tool python3
need_smtpsniff
bin=$(realpath "$bin")
chrome=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chrome" ] || { echo "SKIP: chromium not installed (scripts/deps.sh DEPS_TEST)" >&2; exit 77; }
[ -x "$build/tests/benchgen" ] || { echo "FAIL: benchgen is not built" >&2; exit 1; }
ok() { echo "ok $*"; }

# in_start_order ANALYSIS.tsv REPORT.ndjson: the analysis' lines with each session's lines
# (contiguous, keyed by uid) moved to the place of its start, stably (sessions starting at
# the same time keep the analysis' order), and #open the time of the new first line.
in_start_order() {
    python3 - "$1" "$2" <<'EOF'
import json, sys, time
from datetime import datetime, timezone
def us(t):
    d = datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    frac = t[20:-1] if len(t) > 20 else ""
    return int(d.timestamp()) * 1000000 + int((frac + "000000")[:6] or 0)
start = {}
for l in open(sys.argv[2], encoding="utf-8"):
    r = json.loads(l)
    if r.get("type") == "session":
        start[str(r["id"])] = us(r["start"])
head, groups, tail = [], [], []
for l in open(sys.argv[1], encoding="utf-8", newline=""):
    if l.startswith("#close"):
        tail.append(l)
    elif l.startswith("#"):
        head.append(l)
    else:
        uid = l.split("\t")[1]
        if groups and groups[-1][0] == uid:
            groups[-1][1].append(l)
        else:
            groups.append((uid, [l]))
groups = sorted(groups, key=lambda g: start[g[0]])
if groups:
    ts = int(groups[0][1][0].split("\t")[0].split(".")[0])
    head = ["#open\t" + time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(ts)) + "\n"
            if h.startswith("#open\t") else h for h in head]
sys.stdout.write("".join(head) + "".join("".join(g[1]) for g in groups) + "".join(tail))
EOF
}

"$build/tests/benchgen" --size 2 --sessions-concurrent 20 --body-kb 1 "$tmp/gen.pcap" \
    2>/dev/null || bad "benchgen failed"
shopt -s nullglob
caps=("$src"/samples/*.pcap "$src"/samples/*.pcapng "$tmp/gen.pcap")
same=0 reordered=0
for cap in "${caps[@]}"; do
    name=$(basename "$cap")
    opts=()
    [ -f "${cap%.*}.opts" ] && read -ra opts <"${cap%.*}.opts"
    [ -f "${cap%.*}.keys" ] && opts+=(--tls-keylog "${cap%.*}.keys")
    "$bin" -r "$cap" -q --json "$tmp/a.ndjson" "${opts[@]}" 2>/dev/null
    # The analysis in start order (the default reading files) is summarize's, byte for
    # byte; written as the sessions end (--order end), it is the same lines once re-sorted.
    "$bin" -r "$cap" --lines-style tsv "${opts[@]}" >"$tmp/ana-start.tsv" 2>/dev/null
    "$bin" -r "$cap" --order end --lines-style tsv "${opts[@]}" >"$tmp/ana.tsv" 2>/dev/null
    "$bin" summarize --lines-style tsv "$tmp/a.ndjson" >"$tmp/sum.tsv" 2>"$tmp/sum.err" ||
        bad "$name: summarize --lines exit $?: $(head -2 "$tmp/sum.err")"
    in_start_order "$tmp/ana.tsv" "$tmp/a.ndjson" >"$tmp/want.tsv" || bad "$name: reordering failed"
    cmp -s "$tmp/ana-start.tsv" "$tmp/sum.tsv" ||
        bad "$name: the analysis' start order is not summarize's: $(diff "$tmp/ana-start.tsv" "$tmp/sum.tsv" | head -4)"
    if cmp -s "$tmp/ana.tsv" "$tmp/want.tsv"; then
        # The analysis wrote the sessions in start order: the very same bytes.
        cmp -s "$tmp/ana.tsv" "$tmp/sum.tsv" && same=$((same + 1)) ||
            bad "$name: summarize --lines differs from the analysis': $(diff "$tmp/ana.tsv" "$tmp/sum.tsv" | head -4)"
    else
        cmp -s "$tmp/want.tsv" "$tmp/sum.tsv" && reordered=$((reordered + 1)) ||
            bad "$name: summarize --lines is not the analysis' in start order: $(diff "$tmp/want.tsv" "$tmp/sum.tsv" | head -4)"
        grep -v '^#open' "$tmp/ana.tsv" | sort >"$tmp/a.sorted"
        grep -v '^#open' "$tmp/sum.tsv" | sort >"$tmp/s.sorted"
        cmp -s "$tmp/a.sorted" "$tmp/s.sorted" || bad "$name: not the same lines as the analysis'"
    fi
done
[ "$same" -ge 20 ] || bad "only $same captures give the analysis' bytes"
# 07d's sessions and benchgen's concurrent ones do not end in the order they start.
[ "$reordered" -ge 2 ] || bad "only $reordered captures need their sessions reordered"
ok "summarize --lines: $same captures byte for byte, $reordered the same lines in start order"

# Aligned columns: the same columns as the analysis' (what follows the blank line is each
# one's text summary).
cap=$src/samples/01-submission-auth.pcap
"$bin" -r "$cap" -q --json "$tmp/a.ndjson" 2>/dev/null
"$bin" -r "$cap" --lines-style aligned 2>/dev/null | sed '/^$/q' >"$tmp/ana.al"
"$bin" summarize --lines-style aligned "$tmp/a.ndjson" >"$tmp/sum.al"
sed '/^$/q' "$tmp/sum.al" | cmp -s - "$tmp/ana.al" || bad "aligned: the columns differ"
grep -q '^summary: 3 session(s)' "$tmp/sum.al" && grep -q '^inputs:' "$tmp/sum.al" ||
    bad "aligned: no summarize summary after the columns"
ok "summarize --lines-style aligned: the analysis' columns, then summarize's summary"

# Without the summary record (sessions only) #close comes from the sessions' last end: for
# 01 that is the capture's last packet, so the same bytes still.
"$bin" -r "$cap" --lines-style tsv 2>/dev/null >"$tmp/ana.tsv"
jq -c 'select(.type == "session")' "$tmp/a.ndjson" >"$tmp/only.ndjson"
"$bin" summarize --lines-style tsv "$tmp/only.ndjson" | cmp -s - "$tmp/ana.tsv" ||
    bad "sessions only: summarize --lines differs from the analysis'"
ok "sessions only: #open and #close from the sessions"

# ---- filters: the same sessions as the analysis prints ----
s=$src/samples
set_args=(-r "$s/06a-body-blackholed.pcap" -r "$s/06b-rst-injected.pcap"
          -r "$s/06c-final-reply-dropped.pcapng" -r "$s/02-auth-failed.pcapng"
          -r "$s/01-submission-auth.pcap" -r "$s/03-auth-skipped-relay-denied.pcap"
          -r "$s/07d-service-unavailable.pcap" -r "$s/08-deferrals-limits.pcapng")
"$bin" "${set_args[@]}" -q --json "$tmp/set.ndjson" 2>/dev/null || bad "samples: analysis failed"
nset=$(jq -s 'map(select(.type == "session")) | length' "$tmp/set.ndjson")
addr=$(jq -r 'select(.type == "session") | .transactions[]?.rcpt[]?.to' "$tmp/set.ndjson" |
    head -1)
dom=$(jq -r 'select(.type == "session") | .transactions[]?.mail_from | select(. != "")' \
    "$tmp/set.ndjson" | tail -1 | sed 's/.*@//')
[ -n "$addr" ] && [ -n "$dom" ] || bad "samples: no envelope address to filter on"
uids() { grep -v '^#' "$1" | cut -f2 | sort -nu | tr '\n' ' '; }
filters=("--min-severity warning" "--min-severity error" "--anomaly auth_failed"
         "--anomaly died_after_data --anomaly rst_injected" "--domain $dom" "--address $addr"
         "--min-severity notice --domain $dom")
for fl in "${filters[@]}"; do
    read -ra f <<<"$fl"
    "$bin" "${set_args[@]}" --lines-style tsv "${f[@]}" >"$tmp/fa.tsv" 2>/dev/null
    "$bin" summarize --lines-style tsv "${f[@]}" "$tmp/set.ndjson" >"$tmp/fs.tsv" ||
        bad "filter $fl: summarize exit $?"
    want=$(uids "$tmp/fa.tsv") got=$(uids "$tmp/fs.tsv")
    [ -n "$want" ] && [ "$(echo "$want" | wc -w)" -lt "$nset" ] ||
        bad "filter $fl: the analysis prints ${want:-no session} of $nset: a useless case"
    [ "$want" = "$got" ] || bad "filter $fl: analysis prints sessions $want, summarize $got"
    in_start_order "$tmp/fa.tsv" "$tmp/set.ndjson" | cmp -s - "$tmp/fs.tsv" ||
        bad "filter $fl: summarize's lines are not the analysis' in start order"
done
ok "filters: ${#filters[@]} filter sets print the sessions the analysis prints"

# ---- two sensors: the same report twice; HTML and SVG ----
cp "$tmp/set.ndjson" "$tmp/b.ndjson"
mkdir -p "$tmp/svg" && chmod 700 "$tmp/svg"
(cd "$tmp" && "$bin" summarize --html page.html --svg svg --json set.ndjson b.ndjson) \
    >"$tmp/two.json" 2>"$tmp/two.err" || bad "two sensors: exit $?: $(head -2 "$tmp/two.err")"
jq -e --argjson n "$nset" '.sessions == $n and .joined_sessions == $n' "$tmp/two.json" \
    >/dev/null || bad "two sensors: the summary does not count each session once"
# With several inputs a session is named by input and id ("K-ID"): all are the first's.
ids=$(jq -r 'select(.type == "session") | "1-\(.id)"' "$tmp/set.ndjson" | sort | tr '\n' ' ')
"$chrome" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" --no-first-run \
    --dump-dom "file://$tmp/page.html" >"$tmp/page.dom" 2>"$tmp/chrome.err"
[ -s "$tmp/page.dom" ] || bad "two sensors: chromium dumped no DOM: $(tail -2 "$tmp/chrome.err")"
python3 - "$tmp/page.dom" >"$tmp/page.facts" <<'EOF' || bad "two sensors: the DOM could not be read"
import json, re, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.f = {"ladders": [], "details": 0, "index_rows": 0, "header": "", "summary": ""}
        self.where = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "ladder" in (a.get("class") or "").split():
            self.f["ladders"].append(a.get("data-session"))
        if tag == "details":
            self.f["details"] += 1
        if tag == "a" and (a.get("href") or "").startswith("#s-"):
            self.f["index_rows"] += 1
        if tag == "header":
            self.where = "header"
        if tag == "section" and a.get("id") == "summary":
            self.where = "summary"
    def handle_endtag(self, tag):
        if tag in ("header", "section"):
            self.where = None
    def handle_data(self, d):
        if self.where:
            self.f[self.where] += d
p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
print(json.dumps(p.f))
EOF
f=$tmp/page.facts
[ "$(jq -r '.ladders | sort | join(" ")' "$f") " = "$ids" ] ||
    bad "two sensors: the ladders are $(jq -c .ladders "$f"), not once each of $ids"
jq -e --argjson n "$nset" '.details == $n and .index_rows == $n' "$f" >/dev/null ||
    bad "two sensors: not one <details> and one index row per session: $(jq -c '{details, index_rows}' "$f")"
# The ladders in start order: the order of the sessions' starts in the report.
want_order=$(jq -s -r 'map(select(.type == "session")) | sort_by(.start)
    | map(select(.anomalies | length > 0)) | map("1-\(.id)") | join(" ")' "$tmp/set.ndjson")
got_order=$(jq -r --argjson a "$(jq -s '[.[] | select(.type == "session" and (.anomalies | length > 0)) | "1-\(.id)"]' "$tmp/set.ndjson")" \
    '.ladders | map(select(. as $i | $a | index($i))) | join(" ")' "$f")
[ "$want_order" = "$got_order" ] ||
    bad "two sensors: the page's sessions with anomalies are $got_order, not in start order $want_order"
# The page's summary: summarize's figures (sessions counted once) and the capture's times.
first=$(jq -r 'select(.type == "summary") | .first_packet' "$tmp/set.ndjson")
jq -e --arg first "$first" --argjson n "$nset" \
    '(.header | contains("capture from " + $first)) and (.header | contains("\($n) sessions"))
     and (.summary | contains("joined_sessions \($n)"))' "$f" >/dev/null ||
    bad "two sensors: the page's header or summary is not summarize's: $(jq -c '{header, summary}' "$f" | head -c 400)"
for id in $ids; do
    [ -f "$tmp/svg/session-$id.svg" ] || bad "two sensors: session-$id.svg missing"
done
[ "$(find "$tmp/svg" -type f | wc -l)" -eq "$nset" ] || bad "two sensors: not one SVG file per session"
"$bin" summarize --lines-style tsv "$tmp/set.ndjson" "$tmp/b.ndjson" >"$tmp/two.tsv"
"$bin" summarize --lines-style tsv "$tmp/set.ndjson" | cmp -s - "$tmp/two.tsv" ||
    bad "two sensors: the lines are not those of one sensor"
ok "two sensors: each of $nset sessions once in the lines, the DOM (in start order) and --svg"

# A filtered page: the ladders of the sessions the analysis' filtered page draws.
"$bin" "${set_args[@]}" -q --anomaly auth_failed --html "$tmp/fa.html" 2>/dev/null
"$bin" summarize --anomaly auth_failed --html "$tmp/fs.html" "$tmp/set.ndjson" "$tmp/b.ndjson" \
    >/dev/null || bad "filtered page: exit $?"
la=$(grep -o 'class="ladder"[^>]*data-session="[0-9]*"' "$tmp/fa.html" | grep -o '[0-9]*"$' | sed 's/^/1-/' | sort | tr '\n' ' ')
ls_=$(grep -o 'class="ladder"[^>]*data-session="[0-9-]*"' "$tmp/fs.html" | grep -o '[0-9-]*"$' | sort | tr '\n' ' ')
[ -n "$la" ] && [ "$la" = "$ls_" ] || bad "filtered page: analysis draws ${la:-none}, summarize ${ls_:-none}"
ok "filtered page: the analysis' sessions"

# Two sensors with different captures whose session ids coincide: every session its own
# ladder, anchor and SVG file, named by input.
"$bin" -r "$s/01-submission-auth.pcap" -q --json "$tmp/x.ndjson" 2>/dev/null
"$bin" -r "$s/02-auth-failed.pcapng" -q --json "$tmp/y.ndjson" 2>/dev/null
common=$(jq -r 'select(.type == "session") | .id' "$tmp/x.ndjson" "$tmp/y.ndjson" | sort -n | uniq -d)
[ -n "$common" ] || bad "distinct sensors: no session id in common, nothing checked"
mkdir -p "$tmp/svg2" && chmod 700 "$tmp/svg2"
"$bin" summarize --svg "$tmp/svg2" --html "$tmp/xy.html" "$tmp/x.ndjson" "$tmp/y.ndjson" \
    >/dev/null 2>"$tmp/xy.err" || bad "distinct sensors: exit $?: $(head -2 "$tmp/xy.err")"
want=$( (jq -r 'select(.type == "session") | "1-\(.id)"' "$tmp/x.ndjson"
         jq -r 'select(.type == "session") | "2-\(.id)"' "$tmp/y.ndjson") | sort | tr '\n' ' ')
got=$(grep -o 'class="ladder"[^>]*data-session="[0-9-]*"' "$tmp/xy.html" | grep -o '[0-9-]*"$' |
    tr -d '"' | sort | tr '\n' ' ')
files=$(cd "$tmp/svg2" && ls | sed 's/^session-//; s/[.]svg$//' | sort | tr '\n' ' ')
anchors=$(grep -o 'id="s-[0-9-]*"' "$tmp/xy.html" | sort -u | wc -l)
[ "$got" = "$want" ] && [ "$files" = "$want" ] && [ "$anchors" -eq "$(echo "$want" | wc -w)" ] ||
    bad "distinct sensors: ladders $got, files $files, $anchors anchors; want $want"
ok "distinct sensors with ids in common ($common): sessions named by input in the page and files"

# ---- bad usage: exit 2, one line ----
usage_case() {
    local why=$1
    shift
    "$bin" summarize "$@" >/dev/null 2>"$tmp/u.err"
    local rc=$?
    [ "$rc" -eq 2 ] && [ "$(wc -l <"$tmp/u.err")" -eq 1 ] ||
        bad "usage ($why): exit $rc, stderr: $(head -c 200 "$tmp/u.err")"
}
usage_case "--json with --lines" --json --lines "$tmp/set.ndjson"
usage_case "--json with --lines-style" --lines-style tsv --json "$tmp/set.ndjson"
usage_case "bad --lines-style" --lines-style wide "$tmp/set.ndjson"
usage_case "--lines-style without value" "$tmp/set.ndjson" --lines-style
usage_case "--html without file" "$tmp/set.ndjson" --html
usage_case "--svg without dir" "$tmp/set.ndjson" --svg
usage_case "bad --min-severity" --min-severity loud "$tmp/set.ndjson"
usage_case "unknown --anomaly" --anomaly no_such_thing "$tmp/set.ndjson"
usage_case "bad --domain" --domain @x "$tmp/set.ndjson"
usage_case "bad --address" --address '<a@b>' "$tmp/set.ndjson"
usage_case "no input" --lines
usage_case "unknown option" --html-out x "$tmp/set.ndjson"
# An output that cannot be opened is exit 3 with the reason.
"$bin" summarize --svg "$tmp/nonexistent" "$tmp/set.ndjson" >/dev/null 2>"$tmp/o.err"
[ $? -eq 3 ] && [ -s "$tmp/o.err" ] || bad "--svg to a missing directory: not exit 3"
ok "bad usage exits 2 with one line; a missing --svg directory exits 3"

exit $fail
