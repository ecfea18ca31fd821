#!/bin/bash
# The report's command counts against Postfix's own: for every session of the lab's
# Postfix in a sample capture, samples/*.postfix-commands.txt holds the counts of its
# "disconnect from" log line ("CAPTURE CLIENT-PORT ehlo=1 mail=1/2 ... commands=5/6":
# accepted/sent, or one number when all were accepted), written by scripts/lab/run.
#   commands-sent:     the report's `commands` object equals the sent counts (the second
#                      number), "commands" being `total`.
#   postfix-commands:  `commands.postfix` holds Postfix's string itself, accepted and sent
#                      counts included.
# A session whose STARTTLS was accepted but never became TLS (starttls=0/1) is left out of
# commands-sent: Postfix stopped reading commands there; what the client sent after it is
# in the report's dialogue but not in Postfix's counts.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_smtpsniff
# The report field that holds the Postfix-style line (a jq path into a session).
field=${SMTPSNIFF_POSTFIX_COMMANDS_FIELD:-.commands.postfix}

shopt -s nullglob
lists=("$src"/samples/*.postfix-commands.txt)
[ ${#lists[@]} -gt 0 ] || { echo "FAIL: no samples/*.postfix-commands.txt" >&2; exit 1; }
n=0
for list in "${lists[@]}"; do
    while read -r capf port counts; do
        [ -n "$capf" ] && [ "${capf#\#}" = "$capf" ] || continue
        name=${capf%.*}
        if [ ! -f "$tmp/$name.json" ]; then
            cap=$src/samples/$capf
            if [ ! -f "$cap" ]; then
                bad "$(basename "$list"): $capf missing"
                continue
            fi
            sniff "$name" -r "$cap"
            [ "$rc" -eq 0 ] || { bad "$capf: smtpsniff exited $rc"; continue; }
        fi
        # shellcheck disable=SC2016 # jq program
        sess='[inputs | select(.type == "session" and .client.port == $port)] |
              if length == 1 then .[0] else error("\(length) sessions from port \($port)") end'
        if [[ $counts != *starttls=0/* ]]; then
            # shellcheck disable=SC2016 # jq program
            jq -n -e --argjson port "$port" --arg pf "$counts" "$sess"' |
                ($pf | split(" ") | map(split("=") |
                    {key: (if .[0] == "commands" then "total" else .[0] end),
                     value: (.[1] | split("/") | .[-1] | tonumber)}) | from_entries) as $want |
                (.commands | del(.postfix)) == $want' "$tmp/$name.json" >/dev/null 2>"$tmp/jq.err" ||
                bad "commands-sent $capf port $port: Postfix sent counts \"$counts\", report $(jq -n -c \
                    --argjson port "$port" "$sess | .commands" "$tmp/$name.json" 2>&1)"
        fi
        # shellcheck disable=SC2016 # jq program
        jq -n -e --argjson port "$port" --arg pf "$counts" "$sess | $field == \$pf" \
            "$tmp/$name.json" >/dev/null 2>"$tmp/jq.err" ||
            bad "postfix-commands $capf port $port: $field should be \"$counts\", is $(jq -n -c \
                --argjson port "$port" "$sess | $field" "$tmp/$name.json" 2>&1)"
        n=$((n + 1))
    done <"$list"
done
echo "checked $n sessions against Postfix's counts" >&2
finish
