#!/bin/bash
# What the anomaly rules conclude from crafted dialogues, where an accusation needs the
# evidence the packets give: relaying (who the client is, which domains), AUTH refused
# before any credential, a server's idle timeout, temporary and permanent limits, and
# whether a server split a smuggled message; and a capture that stops while a side waits.
set -uo pipefail
. "$(dirname "$0")/lib/pcapgen.bash"
need_tool jq
need_pcapgen
need_smtpsniff

# id SEV: the severity of anomaly ID in the first session, or null.
jq_defs+='
def sev($id): [.anomalies[]? | select(.id == $id) | .severity][0];
def anomaly($id): [.anomalies[]? | select(.id == $id)][0];
'

if gen relay_mx && analyse relay_mx; then
    check relay_mx "an MX with another name is no open relay" \
        '($S[0] | has_anomaly("open_relay")) | not'
    check relay_mx "relay_accepted notice with the domain and the hint" \
        '$S[0] | sev("relay_accepted") == "notice" and
         (anomaly("relay_accepted") | .evidence.domains == ["gmail.com"] and
          .evidence.client_ip == "192.0.2.10" and (.message | test("--local-domain")))'
    analyse relay_mx --local-domain gmail.com && check relay_mx "--local-domain gmail.com: silent" \
        '($S[0] | has_anomaly("open_relay") or has_anomaly("relay_accepted")) | not'
    analyse relay_mx --local-domain example.net &&
        check relay_mx "--local-domain, foreign recipient accepted: open_relay" \
            '$S[0] | sev("open_relay") == "error" and
             (anomaly("open_relay").evidence | .domains == ["gmail.com"] and
              .local_domains_given == true and .client_trusted == false)'
fi

if gen relay_open && analyse relay_open; then
    check relay_open "3 unrelated domains from a stranger: open_relay error" \
        '$S[0] | sev("open_relay") == "error" and (has_anomaly("relay_accepted") | not)'
    check relay_open "registrable domains in the evidence" \
        '$S[0] | anomaly("open_relay").evidence |
         .domains == ["example.org", "example.com", "example.co.uk"] and
         (.rcpt | map(.to)) == ["victim@example.org", "other@sub.example.org",
                                "third@example.com", "fourth@example.co.uk"]'
    check relay_open "the message names the domains and the client" \
        '$S[0] | anomaly("open_relay").message |
         test("3 unrelated domains \\(example.org, example.com, example.co.uk\\)") and
         test("192.0.2.10")'
    analyse relay_open --trusted-net 192.0.2.0/24 &&
        check relay_open "--trusted-net: relaying for a trusted network is a notice" \
            '$S[0] | (has_anomaly("open_relay") | not) and sev("relay_accepted") == "notice"'
fi

if gen relay_loopback && analyse relay_loopback; then
    check relay_loopback "a loopback client is no open relay" \
        '$S[0] | (has_anomaly("open_relay") | not) and sev("relay_accepted") == "notice" and
         anomaly("relay_accepted").evidence.client_trusted == true'
    analyse relay_loopback --trusted-net 203.0.113.0/24 --local-domain example.net &&
        check relay_loopback "loopback stays trusted whatever --trusted-net says" \
            '($S[0] | has_anomaly("open_relay")) | not'
fi
sniff badnet -r /dev/null --trusted-net 10.0.0.0/33
[ "$rc" -eq 2 ] || bad "--trusted-net 10.0.0.0/33: exit $rc, expected 2"

if gen auth_refused && analyse auth_refused; then
    check auth_refused "no credential sent: no auth_in_clear" \
        '($S[0] | has_anomaly("auth_in_clear")) | not'
    check auth_refused "responses_sent counts none" \
        '[$S[0].auth[] | .responses_sent] == [0, 0, 0] and
         [$S[0].auth[] | .code] == [538, 504, 501]'
fi
if gen auth_refused_sent && analyse auth_refused_sent; then
    check auth_refused_sent "an initial response in clear is auth_in_clear" \
        '$S[0] | sev("auth_in_clear") == "warning" and
         anomaly("auth_in_clear").evidence.responses_sent == 1 and
         [.auth[] | .responses_sent] == [0, 1]'
fi

for s in idle_451 idle_421; do
    gen $s && analyse $s || continue
    check $s "delivered, Sendmail queue id read" \
        '$S[0].outcome == "delivered" and $S[0].transactions[0].data.queue_id == "4B1AbC12345"'
    check $s "the unsolicited reply is kept" \
        '($S[0].smtp.unsolicited_replies | length) == 1 and
         $S[0].smtp.unsolicited_replies[0].code >= 421'
    check $s "an idle close is no deferral, no service failure, no death" \
        '$S[0] | ([anomaly_ids[] | select(. == "deferred" or . == "service_unavailable" or . == "died_mid_session")] == [])'
    check $s "server_closed_idle notice with the reply text" \
        '$S[0] | sev("server_closed_idle") == "notice" and
         (anomaly("server_closed_idle") | (.message | test("4.4.2")) and
          .evidence.reply.code == .evidence.reply.code)'
done

if gen limits_temp && analyse limits_temp; then
    check limits_temp "452 4.2.2: mailbox_full warning, the sender retries" \
        '$S[0] | sev("mailbox_full") == "warning" and
         (anomaly("mailbox_full").message | test("the sender will retry"))'
    check limits_temp "452 4.3.4: size_exceeded warning, the sender retries" \
        '$S[0] | sev("size_exceeded") == "warning" and
         (anomaly("size_exceeded").message | test("the sender will retry"))'
    check limits_temp "no deferred on top" '($S[0] | has_anomaly("deferred")) | not'
fi

if gen smuggling_split && analyse smuggling_split; then
    check smuggling_split "queue ids of both messages" \
        '$S[0].transactions[0].data.queue_id == "7E3D3A73FE3" and
         [$S[0].smtp.unsolicited_replies[] | .code] == [250, 250, 354, 250] and
         $S[0].smtp.unsolicited_replies[3].queue_id == "7F1DEA73FE3"'
    check smuggling_split "split: error, vulnerable, the other queue id as evidence" \
        '$S[0] | sev("smuggling") == "error" and
         (anomaly("smuggling") | (.message | test("split") and test("vulnerable")) and
          .evidence.other_queue_ids == ["7F1DEA73FE3"] and
          (.evidence.unsolicited_replies | length) == 4)'
fi
if gen smuggling_nosplit && analyse smuggling_nosplit; then
    check smuggling_nosplit "Exim queue id read" \
        '$S[0].transactions[0].data.queue_id == "1tBd2x-0003kQ-2v"'
    check smuggling_nosplit "not split: warning, not fooled" \
        '$S[0] | sev("smuggling") == "warning" and
         (anomaly("smuggling") | (.message | test("not fooled")) and
          .evidence.other_queue_ids == [])'
fi
# A capture that stops while a side is still waiting did not see the other fail to answer.
if gen died_after_data && analyse died_after_data; then
    check died_after_data "capture stopped right after the body: still waiting, not an accusation" \
        '$S[0] | (has_anomaly("died_after_data") | not) and sev("still_waiting") == "notice" and
         (anomaly("still_waiting").message | test("for the reply to end-of-data when the capture stopped"))'
fi
if gen rst_injected && analyse rst_injected; then
    check rst_injected "reset after the body: died_after_data stays an error" \
        '$S[0] | sev("died_after_data") == "error"'
fi
if gen no_banner_cut && analyse no_banner_cut; then
    check no_banner_cut "no greeting 2 s before the capture ended: notice" \
        '$S[0] | sev("no_banner") == "notice"'
fi
if gen no_banner_closed && analyse no_banner_closed; then
    check no_banner_closed "no greeting in 8 s, the client closed: error" \
        '$S[0] | sev("no_banner") == "error"'
fi
finish
