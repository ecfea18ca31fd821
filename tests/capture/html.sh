#!/bin/bash
# --html FILE and --svg DIR, checked in a real headless browser (Debian's chromium, in
# DEPS_TEST): the page of the samples 06a/06b/06c (died after data, RST), 09 (STARTTLS) and
# 02 (AUTH failed) loads, its DOM holds one ladder per session and the died-after-data
# anomaly's band, it references nothing outside itself, and its screenshot is not blank.
# A crafted capture with markup in the banner, EHLO, MAIL FROM and RCPT TO comes out as
# text: no element, attribute or script of a peer's making in the DOM, the title unchanged.
# Every --svg file is well-formed XML, one per session, named by its id; an existing one is
# never overwritten. With --workers the page is the same bytes. No secret of the samples
# appears in the page or the SVG files unless --show-secrets.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_tool python3
need_pcapgen
need_smtpsniff
chrome=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chrome" ] || { echo "SKIP: chromium not installed (scripts/deps.sh DEPS_TEST)" >&2; exit 77; }

s=$src/samples
set_args=(-r "$s/06a-body-blackholed.pcap" -r "$s/06b-rst-injected.pcap"
          -r "$s/06c-final-reply-dropped.pcapng" -r "$s/09-starttls.pcapng"
          --tls-keylog "$s/09-starttls.keys" -r "$s/02-auth-failed.pcapng")

# browse NAME FILE: the DOM after load in $tmp/NAME.dom, a screenshot in $tmp/NAME.png.
# Chromium's own profile in $tmp, so that nothing of a user's is read or written.
browse() {
    local name=$1 file=$2
    "$chrome" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
        --no-first-run --dump-dom "file://$file" >"$tmp/$name.dom" 2>"$tmp/$name.chrome.err"
    [ -s "$tmp/$name.dom" ] || bad "$name: chromium dumped no DOM: $(tail -2 "$tmp/$name.chrome.err")"
    "$chrome" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
        --no-first-run --hide-scrollbars --window-size=1280,1600 \
        --screenshot="$tmp/$name.png" "file://$file" >/dev/null 2>>"$tmp/$name.chrome.err"
    [ -s "$tmp/$name.png" ] || bad "$name: no screenshot: $(tail -2 "$tmp/$name.chrome.err")"
}

# The DOM's facts as JSON (python3's HTML parser): ladders and their sessions, anomaly
# bands' texts, elements and attributes that could run or fetch something, the title.
dom_facts() {
    python3 - "$1" <<'EOF'
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.f = {"ladders": [], "bands": [], "scripts": 0, "bad_tags": [], "bad_attrs": [],
                  "title": "", "details": 0}
        self.stack = []
        self.in_title = self.in_band = 0
        self.band = ""
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg" and "ladder" in (a.get("class") or "").split():
            self.f["ladders"].append(a.get("data-session"))
        if tag == "details":
            self.f["details"] += 1
        if tag == "script":
            self.f["scripts"] += 1
        if tag in ("img", "iframe", "object", "embed", "link", "image", "use", "foreignobject",
                   "a") and not (tag == "a" and (a.get("href") or "").startswith("#")):
            self.f["bad_tags"].append(tag)
        for k, v in attrs:
            if k.startswith("on") or (k in ("src", "href", "xlink:href") and
                                      not (v or "").startswith("#")):
                self.f["bad_attrs"].append(k)
        if tag == "title" and self.stack[-1:] == ["head"]:
            self.in_title = 1
        if tag == "g" and a.get("class") == "anomaly":
            self.in_band, self.band = 1, ""
        if tag not in ("meta", "br", "line", "rect", "path", "input"):
            self.stack.append(tag)
    def handle_endtag(self, tag):
        if tag == "title":
            self.in_title = 0
        if tag == "g" and self.in_band:
            self.f["bands"].append(self.band)
            self.in_band = 0
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
    def handle_data(self, d):
        if self.in_title and not self.f["title"]:
            self.f["title"] = d
        if self.in_band:
            self.band += d
p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
print(json.dumps(p.f))
EOF
}

# not_blank PNG: decodes the PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes it)
# and prints how many distinct colours it has.
png_colours() {
    python3 - "$1" <<'EOF'
import struct, sys, zlib
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w = 8, b"", 0
while pos < len(d):
    n, t = struct.unpack(">I4s", d[pos:pos + 8])
    body = d[pos + 8:pos + 8 + n]
    if t == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        bpp = {2: 3, 6: 4}[ctype]
    elif t == b"IDAT":
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat)
stride = w * bpp
rows, prev, colours = [], bytearray(stride), set()
i = 0
for y in range(h):
    ft, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if ft == 1: line[x] = (line[x] + a) & 255
        elif ft == 2: line[x] = (line[x] + b) & 255
        elif ft == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif ft == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 4 == 0:
        for x in range(0, stride, bpp * 2):
            colours.add(bytes(line[x:x + 3]))
    prev = line
print(len(colours))
EOF
}

# ---- the samples' page ----
mkdir -p "$tmp/svg" && chmod 700 "$tmp/svg"
"$bin" "${set_args[@]}" -q --json "$tmp/set.json" --html "$tmp/set.html" --svg "$tmp/svg" \
    2>"$tmp/set.err"
rc=$?
[ "$rc" -eq 0 ] || bad "samples: exit $rc: $(head -3 "$tmp/set.err")"
ids=$(jq -r 'select(.type == "session") | .id' "$tmp/set.json" | sort -n | tr '\n' ' ')
nsess=$(jq -s 'map(select(.type == "session")) | length' "$tmp/set.json")
[ "$nsess" -ge 5 ] || bad "samples: only $nsess sessions"
browse set "$tmp/set.html"
dom_facts "$tmp/set.dom" >"$tmp/set.facts" || bad "samples: the DOM could not be read"
f=$tmp/set.facts
[ "$(jq '.ladders | length' "$f")" -eq "$nsess" ] ||
    bad "samples: $(jq '.ladders | length' "$f") ladders in the DOM for $nsess sessions"
[ "$(jq -r '.ladders | map(tonumber) | sort | map(tostring) | join(" ")' "$f") " = "$ids" ] ||
    bad "samples: the ladders are not those of sessions $ids"
[ "$(jq '.details' "$f")" -eq "$nsess" ] || bad "samples: not one <details> per session"
# 06a: still_waiting (the body not getting through when the capture stopped), its band in
# the ladder of that session, at the message's step; 06b and 06c: died_after_data.
d06a=$(jq -r 'select(.type == "session" and (.anomalies | map(.id) | index("still_waiting")))
              | select(.tcp.end == "capture_end") | .id' "$tmp/set.json" | head -1)
[ -n "$d06a" ] || bad "samples: 06a's still_waiting session not in the report"
jq -e '[.bands[] | select(test("died_after_data"))] | length >= 2' "$f" >/dev/null ||
    bad "samples: no died_after_data band in the DOM (06b, 06c)"
jq -e '[.bands[] | select(test("still_waiting"))] | length >= 1' "$f" >/dev/null ||
    bad "samples: no still_waiting band in the DOM (06a)"
jq -e '[.bands[] | select(test("rst_injected"))] | length >= 1' "$f" >/dev/null ||
    bad "samples: no rst_injected band in the DOM (06b)"
jq -e '[.bands[] | select(test("auth_failed"))] | length >= 1' "$f" >/dev/null ||
    bad "samples: no auth_failed band in the DOM (02)"
grep -q "<g class=\"anomaly\" data-anomaly=\"1\"><rect class=\"a-warning\"" "$tmp/svg/session-$d06a.svg" ||
    bad "samples: session-$d06a.svg has no warning band for still_waiting"
grep -q 'RST TTL 64 (its other packets: 57)' "$tmp/set.dom" ||
    bad "samples: 06b's RST and its TTL are not marked in a ladder"
grep -q 'SYN-ACK' "$tmp/set.dom" || bad "samples: no handshake in the ladders"
# TCP events at their times: 06a's client sending the body again, each side's FIN.
grep -q "sent 1626 bytes again in 6 segment(s)" "$tmp/svg/session-$d06a.svg" ||
    bad "samples: 06a's retransmission burst is not marked in its ladder"
grep -q 'FIN TTL 64' "$tmp/set.dom" || bad "samples: no FIN marked in the ladders"
grep -q 'STARTTLS' "$tmp/set.dom" && grep -q '(in TLS)' "$tmp/set.dom" ||
    bad "samples: 09's STARTTLS and its decrypted lines are not in the page"
grep -q 'Reply latency per server' "$tmp/set.dom" || bad "samples: no latency chart"
grep -q 'Outcomes' "$tmp/set.dom" || bad "samples: no outcome chart"
# Nothing from outside: no script, stylesheet, font or image to fetch.
jq -e '.scripts == 0 and (.bad_tags | length) == 0 and (.bad_attrs | length) == 0' "$f" \
    >/dev/null || bad "samples: the page refers to something outside itself: $(cat "$f" | head -c 300)"
if grep -qiE '(src|href)=["'"'"']?(https?:|//)|@import|url\(' "$tmp/set.html"; then
    bad "samples: an external reference in the page"
fi
colours=$(png_colours "$tmp/set.png") || bad "samples: the screenshot is not a PNG"
[ "${colours:-0}" -ge 8 ] || bad "samples: the screenshot looks blank ($colours colours)"
# --svg: one well-formed file per session, named by its id.
for id in $ids; do
    sf=$tmp/svg/session-$id.svg
    if [ ! -f "$sf" ]; then
        bad "svg: session-$id.svg missing"
        continue
    fi
    python3 -c 'import sys, xml.etree.ElementTree as E
r = E.parse(sys.argv[1]).getroot()
assert r.tag == "{http://www.w3.org/2000/svg}svg", r.tag' "$sf" 2>"$tmp/xml.err" ||
        bad "svg: session-$id.svg is not well-formed SVG: $(tail -1 "$tmp/xml.err")"
    [ "$(stat -c %a "$sf")" = 600 ] || bad "svg: session-$id.svg mode $(stat -c %a "$sf")"
done
[ "$(find "$tmp/svg" -type f | wc -l)" -eq "$nsess" ] || bad "svg: not one file per session"
# An existing file is never overwritten: exit 3, said once, the file as it was.
first=${ids%% *}
echo planted >"$tmp/svg/session-$first.svg"
"$bin" "${set_args[@]}" -q --svg "$tmp/svg" 2>"$tmp/again.err"
rc=$?
[ "$rc" -eq 3 ] || bad "svg: writing over existing files exited $rc, not 3"
grep -q "session-$first.svg: already exists: not overwritten" "$tmp/again.err" ||
    bad "svg: the refusal is not told: $(head -2 "$tmp/again.err")"
[ "$(cat "$tmp/svg/session-$first.svg")" = planted ] || bad "svg: an existing file was overwritten"
# A directory that is not there, or that anyone may write to: refused before any analysis.
"$bin" "${set_args[@]}" -q --svg "$tmp/nodir" 2>"$tmp/nodir.err"
[ $? -eq 3 ] && grep -q -- "--svg $tmp/nodir" "$tmp/nodir.err" || bad "svg: a missing DIR not refused"
mkdir -p "$tmp/open" && chmod 777 "$tmp/open"
"$bin" "${set_args[@]}" -q --svg "$tmp/open" 2>"$tmp/open.err"
[ $? -eq 3 ] && [ -z "$(ls "$tmp/open")" ] || bad "svg: a world-writable DIR not refused"
# Workers: the parent draws the page from the merged records, the same bytes.
"$bin" "${set_args[@]}" -q --html "$tmp/w2.html" --workers 2 2>"$tmp/w2.err" ||
    bad "workers: exit $?: $(head -2 "$tmp/w2.err")"
cmp -s "$tmp/set.html" "$tmp/w2.html" || bad "workers: the page differs from one process's"

# ---- markup from the wire ----
gen html_hostile || finish
mkdir -m 700 "$tmp/hsvg"
"$bin" -r "$tmp/html_hostile.pcap" -q --html "$tmp/h.html" --svg "$tmp/hsvg" 2>"$tmp/h.err" ||
    bad "hostile: exit $?: $(head -2 "$tmp/h.err")"
browse hostile "$tmp/h.html"
dom_facts "$tmp/hostile.dom" >"$tmp/h.facts" || bad "hostile: the DOM could not be read"
jq -e --arg t "smtpsniff report: $tmp/html_hostile.pcap" '.title == $t' "$tmp/h.facts" \
    >/dev/null || bad "hostile: the page title changed: $(jq -r .title "$tmp/h.facts")"
jq -e '.scripts == 0 and (.bad_tags | length) == 0 and (.bad_attrs | length) == 0
       and (.ladders | length) == 1' "$tmp/h.facts" >/dev/null ||
    bad "hostile: markup from the wire became elements: $(head -c 300 "$tmp/h.facts")"
grep -qF "EHLO &lt;script&gt;document.title=&#39;pwned&#39;;alert(1)&lt;/script&gt;" "$tmp/h.html" ||
    bad "hostile: the EHLO line is not shown escaped"
grep -qF "MAIL FROM:&lt;&quot;&gt;&lt;img src=x onerror=alert(2)&gt;@example.org&gt;" "$tmp/h.html" ||
    bad "hostile: the MAIL FROM line is not shown escaped"
grep -qF '&lt;script&gt;document.title' "$tmp/hostile.dom" ||
    bad "hostile: the EHLO text is not in the DOM as text"
for sf in "$tmp"/hsvg/*.svg; do
    # Well-formed, and only the elements the ladder draws, none with an event attribute.
    python3 -c 'import sys, xml.etree.ElementTree as E
ok = {"svg", "title", "style", "rect", "text", "tspan", "line", "path", "g"}
for e in E.parse(sys.argv[1]).iter():
    tag = e.tag.split("}")[-1]
    assert tag in ok, "element " + tag
    assert not [a for a in e.attrib if a.lower().startswith("on")], "event attribute"' "$sf" \
        2>"$tmp/xml.err" || bad "hostile: $(basename "$sf"): $(tail -1 "$tmp/xml.err")"
    xmllint --version >/dev/null 2>&1 && ! xmllint --noout "$sf" 2>"$tmp/xml.err" &&
        bad "hostile: xmllint: $(basename "$sf"): $(head -1 "$tmp/xml.err")"
done

# ---- bounds: a long session's ladder, a capture of many sessions ----
gen hostile_pipeline 2000 || finish
mkdir -m 700 "$tmp/lsvg"
"$bin" -r "$tmp/hostile_pipeline.pcap" -q --json "$tmp/long.json" --svg "$tmp/lsvg" \
    2>"$tmp/long.err" || bad "long: exit $?: $(head -2 "$tmp/long.err")"
lid=$(jq -r 'select(.type == "session") | .id' "$tmp/long.json" | head -1)
lf=$tmp/lsvg/session-$lid.svg
lines=$(jq -r 'select(.type == "session") | .transcript | length' "$tmp/long.json" | head -1)
[ "${lines:-0}" -ge 1000 ] || bad "long: only ${lines:-0} transcript lines"
# The first 60 and the last 20 steps, one mark for the rest: not one arrow per line.
arrows=$(grep -o '<path class=' "$lf" | wc -l)
[ "$arrows" -le 80 ] || bad "long: $arrows arrows drawn for a bounded ladder"
grep -qE '\.\.\. [0-9]+ more steps \(' "$lf" || bad "long: no '... K more steps' mark"
gen hostile_idle_sessions 1200 || finish
"$bin" -r "$tmp/hostile_idle_sessions.pcap" -q --html "$tmp/many.html" 2>"$tmp/many.err" ||
    bad "many: exit $?: $(head -2 "$tmp/many.err")"
n_lad=$(grep -o '<svg xmlns="http://www.w3.org/2000/svg" class="ladder"' "$tmp/many.html" | wc -l)
[ "$n_lad" -le 1000 ] || bad "many: $n_lad ladders drawn, more than 500 per group"
grep -qE 'Only the first 500 of these 1[0-9]{3} sessions are drawn' "$tmp/many.html" ||
    bad "many: the page does not say how many sessions were left out"
[ "$(grep -c '<tr><td>' "$tmp/many.html")" -ge 1200 ] || bad "many: not every session listed"

# ---- secrets: the samples' passwords and AUTH blobs never appear without --show-secrets ----
: >"$tmp/needles"
while read -r user pw; do
    [ -n "$user" ] && [ "${user#\#}" = "$user" ] || continue
    printf '%s\n' "$pw" >>"$tmp/needles"
    printf '%s' "$pw" | base64 -w0 >>"$tmp/needles"; echo >>"$tmp/needles"
    printf '\0%s\0%s' "$user" "$pw" | base64 -w0 >>"$tmp/needles"; echo >>"$tmp/needles"
done <"$s/secrets.txt"
shown=0
for cap in "$s"/01-*.pcap "$s"/02-*.pcapng "$s"/16d-*.pcap; do
    rm -rf "$tmp/ssvg" && mkdir -m 700 "$tmp/ssvg"
    "$bin" -r "$cap" -q --html "$tmp/sec.html" --svg "$tmp/ssvg" 2>/dev/null
    if grep -qF -f "$tmp/needles" "$tmp/sec.html" "$tmp"/ssvg/*.svg; then
        bad "secrets: $(basename "$cap"): a secret is in the page or an SVG file"
    fi
    "$bin" -r "$cap" -q --html "$tmp/shown.html" --show-secrets 2>/dev/null
    grep -qF -f "$tmp/needles" "$tmp/shown.html" && shown=$((shown + 1))
done
[ "$shown" -gt 0 ] || bad "secrets: --show-secrets never showed one: the needles are wrong"
finish
