# pcapgen.bash - shared by the capture tests built on tests/tools/pcapgen: arguments,
# generating captures, running smtpsniff, and jq assertions over its NDJSON.
# Sourced (not run) by tests/capture/*.sh, which CTest calls as: SCRIPT BIN BUILD SRC.
# Set SMTPSNIFF_KEEP_TMP=1 to keep the captures and reports of a failing run.

bin=${1:?usage: $0 SMTPSNIFF BUILD_DIR SOURCE_DIR}
build=${2:?usage: $0 SMTPSNIFF BUILD_DIR SOURCE_DIR}
# shellcheck disable=SC2034 # the source tree, for tests that need it
src=${3:?usage: $0 SMTPSNIFF BUILD_DIR SOURCE_DIR}
pcapgen=$build/tests/pcapgen
fail=0
tmp=$(mktemp -d)
if [ -n "${SMTPSNIFF_KEEP_TMP:-}" ]; then
    echo "keeping $tmp" >&2
else
    trap 'rm -rf "$tmp"' EXIT
fi

# Exit 77 (CTest: skipped) when a tool the test needs is missing.
need_tool() {
    command -v "$1" >/dev/null || { echo "SKIP: $1 not installed" >&2; exit 77; }
}

need_pcapgen() {
    [ -x "$pcapgen" ] || { echo "FAIL: $pcapgen is not built" >&2; exit 1; }
}

need_smtpsniff() {
    [ -x "$bin" ] || { echo "FAIL: $bin is not built" >&2; exit 1; }
}

bad() {
    echo "FAIL: $*" >&2
    fail=1
}

# gen SCENARIO [SIZE]: writes $tmp/SCENARIO.pcap and its facts to $tmp/SCENARIO.facts.
gen() {
    local s=$1
    shift
    if ! "$pcapgen" "$s" "$tmp/$s.pcap" "$@" >"$tmp/$s.facts" 2>"$tmp/$s.generr"; then
        bad "pcapgen $s: $(head -3 "$tmp/$s.generr")"
        return 1
    fi
}

# fact SCENARIO KEY: a value pcapgen printed as "fact KEY VALUE".
fact() {
    sed -n "s/^fact $2 //p" "$tmp/$1.facts"
}

# sniff NAME ARGS...: runs smtpsniff ARGS --json -, keeping stdout in $tmp/NAME.json,
# stderr in $tmp/NAME.err and the exit status in $rc.
sniff() {
    local name=$1
    shift
    "$bin" "$@" --json - >"$tmp/$name.json" 2>"$tmp/$name.err"
    rc=$?
}

# ndjson_ok NAME: every output line is one JSON object, and the last one is the only
# summary. Returns 1 (after reporting) when not.
ndjson_ok() {
    local name=$1 f=$tmp/$1.json n
    n=$(wc -l <"$f")
    if [ "$(jq -c 'type' "$f" 2>/dev/null | grep -c '^"object"$')" != "$n" ]; then
        bad "$name: output is not one JSON object per line"
        return 1
    fi
    if [ "$n" -eq 0 ] || ! tail -1 "$f" | jq -e '.type == "summary"' >/dev/null; then
        bad "$name: output does not end with a summary object"
        return 1
    fi
    if [ "$(jq -c 'select(.type == "summary")' "$f" | wc -l)" -ne 1 ]; then
        bad "$name: more than one summary object"
        return 1
    fi
}

# analyse SCENARIO [ARGS...]: smtpsniff -r SCENARIO.pcap ARGS; expects exit 0 and NDJSON.
analyse() {
    local s=$1
    shift
    sniff "$s" -r "$tmp/$s.pcap" "$@"
    if [ "$rc" -ne 0 ]; then
        bad "$s: smtpsniff exited $rc: $(head -3 "$tmp/$s.err")"
        return 1
    fi
    ndjson_ok "$s"
}

# jq definitions for the assertions: anomaly ids of a session, and a view of a session
# without anything timing-dependent, for comparing the same dialogue across captures.
jq_defs='
def anomaly_ids: [.anomalies[]?.id];
def has_anomaly($id): anomaly_ids | index($id) != null;
def untimed: walk(if type == "object"
                  then with_entries(select(.key | test("_ms$") | not))
                  else . end);
def dialogue: {client, server,
               lines: [.transcript[]? | .line],
               transactions: (.transactions | untimed),
               commands, helo, extensions, outcome};
'

# check NAME WHAT EXPR: EXPR (jq) must be true over report NAME, with $S the array of
# session objects in output order and $sum the summary object.
check() {
    local name=$1 what=$2 expr=$3
    if ! jq -e -s "$jq_defs map(select(.type == \"session\")) as \$S |
                   (map(select(.type == \"summary\")) | .[0]) as \$sum | $expr" \
        "$tmp/$name.json" >/dev/null 2>"$tmp/jq.err"; then
        bad "$name: $what${expr:+ [$expr]} $(head -1 "$tmp/jq.err")"
    fi
}


# view NAME FILTER: prints FILTER applied to the first session of report NAME (compact).
# Runs in a command substitution, so a failure is recorded in a file for finish().
view() {
    jq -c -s "$jq_defs map(select(.type == \"session\")) | .[0] | $2" "$tmp/$1.json" ||
        echo "$1: $2" >>"$tmp/view.failed"
}

# finish: exit status of the test, counting failed views.
finish() {
    if [ -s "$tmp/view.failed" ]; then
        bad "jq views failed: $(tr '\n' ';' <"$tmp/view.failed")"
    fi
    exit $fail
}
