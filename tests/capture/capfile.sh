#!/bin/bash
# Odd capture files and what is selected from them: timestamps that go backwards, frames
# in three VLAN tags, IPv4 segments forged from the synthetic addresses IPv6 sessions are
# carried under, and a flood of IPv4 fragments that never complete (bounded memory: GNU
# time's %M, 96 MiB where about 25 are needed and libnids alone took over 200, tripled under
# AddressSanitizer; SMTPSNIFF_RSS_LIMIT_KIB overrides).
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

# Timestamps that go backwards: counted, and no negative time anywhere in a report.
if gen cf_backwards && analyse cf_backwards; then
    check cf_backwards "one session" '($S | length) == 1'
    check cf_backwards "steps back counted" "\$sum.timestamps_backwards == $(fact cf_backwards backwards)"
    check cf_backwards "no negative duration, delay or RTT" '[$S[] | paths(numbers) as $p |
        select(($p[-1] | tostring) | test("_ms$|rtt|delay|duration")) |
        getpath($p)] | all(. >= 0)'
fi

# Three VLAN tags: the default filter lets them through and the decoder reads them.
if gen cf_vlan3 && analyse cf_vlan3; then
    check cf_vlan3 "the session is reported" '($S | length) == 1 and
        $S[0].outcome == "delivered" and $S[0].server.port == 25'
fi

# Forged IPv4 from 240.0.0.1/240.0.0.2: the IPv6 session's report is that of the same
# session without them.
if gen cf_v6_plain && analyse cf_v6_plain && gen cf_v6_forged && analyse cf_v6_forged; then
    want=$(jq -c 'select(.type == "session")' "$tmp/cf_v6_plain.json")
    got=$(jq -c 'select(.type == "session")' "$tmp/cf_v6_forged.json")
    [ -n "$want" ] && [ "$want" = "$got" ] ||
        bad "cf_v6_forged: the IPv6 session changed: $(diff <(jq . <<<"$want") \
            <(jq . <<<"$got") | head -20)"
    check cf_v6_forged "forged segments counted" '$sum.ipv4_reserved == 2'
    check cf_v6_forged "no evil sender" '[$S[] | .. | strings | select(test("evil@x"))] == []'
fi

# A BPF filter of the user's: the mail ports stay selected, another port is analysed only
# when its content is SMTP (HTTP on 8080 is not a session with no_banner).
if gen cf_other_ports && analyse cf_other_ports 'host 198.51.100.25'; then
    check cf_other_ports "only the SMTP session, on 10025" '($S | length) == 1 and
        $S[0].server.port == 10025 and $S[0].outcome == "delivered"'
    check cf_other_ports "the HTTP connection counted" '$sum.not_smtp == 1'
fi
if analyse cf_other_ports 'host 198.51.100.25' --ports 25,8080,10025; then
    check cf_other_ports "--ports widens the mail ports" '($S | length) == 2 and
        any($S[]; .server.port == 8080)'
fi

# A million incomplete fragments to distinct hosts: bounded memory, counted, and the
# session after them still reported.
limit=${SMTPSNIFF_RSS_LIMIT_KIB:-98304}
if [ -z "${SMTPSNIFF_RSS_LIMIT_KIB:-}" ] && grep -qa __asan_init "$bin"; then
    limit=$((limit * 3))
fi
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o "$tmp/probe" true 2>/dev/null; then
    if gen cf_fragflood; then
        /usr/bin/time -f %M -o "$tmp/frag.rss" "$bin" -r "$tmp/cf_fragflood.pcap" --json - \
            >"$tmp/cf_fragflood.json" 2>"$tmp/cf_fragflood.err"
        rc=$?
        kib=$(tail -1 "$tmp/frag.rss")
        rm -f "$tmp/cf_fragflood.pcap"
        [ "$rc" -eq 0 ] || bad "cf_fragflood: exit $rc: $(head -3 "$tmp/cf_fragflood.err")"
        ndjson_ok cf_fragflood
        echo "cf_fragflood: peak RSS $kib KiB (bound $limit)" >&2
        [ "$kib" -le "$limit" ] 2>/dev/null ||
            bad "cf_fragflood: peak RSS ${kib} KiB above the bound of ${limit} KiB"
        check cf_fragflood "dropped fragments counted" '$sum.fragments_dropped > 0'
        check cf_fragflood "the session after the flood" 'any($S[];
            .client.ip == "192.0.2.10" and .outcome == "delivered")'
    fi
else
    echo "note: /usr/bin/time not usable, the fragment flood is not run" >&2
fi
finish
