/* test_rules.c - the anomaly rules over hand-written session reports: each incident's
 * evidence triggers its rule, and near misses do not. */
#include <jansson.h>
#include <string.h>

#include "check.h"
#include "rules.h"

static const struct rule_config cfg = {.banner_delay_ms = 3000, .slow_reply_ms = 10000};

/* Applies the rules and returns 1 when `id` is among the anomalies. */
static int
has(const char *json, const char *id)
{
    json_error_t e;
    json_t *s = json_loads(json, 0, &e);
    if (!s) {
        fprintf(stderr, "bad test JSON: %s\n", e.text);
        return -1;
    }
    rule_apply_json(&cfg, s);
    size_t i;
    json_t *a;
    int found = 0;
    json_array_foreach (json_object_get(s, "anomalies"), i, a) {
        if (strcmp(json_string_value(json_object_get(a, "id")), id) == 0)
            found = 1;
    }
    json_decref(s);
    return found;
}

static int
count(const char *json)
{
    json_t *s = json_loads(json, 0, NULL);
    rule_apply_json(&cfg, s);
    int n = (int)json_array_size(json_object_get(s, "anomalies"));
    json_decref(s);
    return n;
}

int
main(void)
{
    /* A1: unanswered SYNs, refusal, no greeting, slow greeting, 421. */
    CHECK_EQ_INT(has("{\"server\":{\"ip\":\"192.0.2.1\",\"port\":25},"
                     "\"tcp\":{\"end\":\"syn_unanswered\",\"syn_count\":3}}",
                     "syn_unanswered"),
                 1);
    CHECK_EQ_INT(
        has("{\"tcp\":{\"end\":\"refused\"},\"server\":{\"port\":25}}", "connection_refused"), 1);
    CHECK_EQ_INT(
        has("{\"tcp\":{\"end\":\"fin\",\"established\":true},\"duration_ms\":30000}", "no_banner"),
        1);
    /* A hole in the server's direction may hold the greeting: no blame. */
    CHECK_EQ_INT(has("{\"tcp\":{\"end\":\"fin\",\"established\":true,\"gap_bytes_server\":40},"
                     "\"duration_ms\":30000}",
                     "no_banner"),
                 0);
    CHECK_EQ_INT(has("{\"banner\":{\"code\":220,\"delay_ms\":5000.0}}", "banner_delay"), 1);
    CHECK_EQ_INT(has("{\"banner\":{\"code\":220,\"delay_ms\":50.0}}", "banner_delay"), 0);
    CHECK_EQ_INT(
        has("{\"banner\":{\"code\":421,\"text\":\"too many connections\"}}", "service_unavailable"),
        1);

    /* A2: AUTH offered but skipped; the severity depends on the port. */
    const char *skipped = "{\"server\":{\"port\":587},\"ehlo\":{\"auth\":[\"PLAIN\",\"LOGIN\"]},"
                          "\"transactions\":[{\"mail_from\":\"a@example.org\","
                          "\"authenticated\":false}]}";
    CHECK_EQ_INT(has(skipped, "auth_skipped"), 1);
    CHECK_EQ_INT(has("{\"ehlo\":{\"auth\":[\"PLAIN\"]},\"auth\":[{\"result\":\"success\"}],"
                     "\"transactions\":[{\"authenticated\":true}]}",
                     "auth_skipped"),
                 0);
    CHECK_EQ_INT(has("{\"auth\":[{\"mechanism\":\"PLAIN\",\"user\":\"bob\",\"result\":\"failure\","
                     "\"code\":535,\"in_clear\":true}]}",
                     "auth_failed"),
                 1);
    CHECK_EQ_INT(has("{\"auth\":[{\"mechanism\":\"PLAIN\",\"result\":\"success\","
                     "\"in_clear\":true,\"responses_sent\":1}]}",
                     "auth_in_clear"),
                 1);
    /* Refused before the client sent anything: no credential crossed the wire. */
    CHECK_EQ_INT(has("{\"auth\":[{\"mechanism\":\"PLAIN\",\"result\":\"failure\","
                     "\"code\":538,\"in_clear\":true,\"responses_sent\":0}]}",
                     "auth_in_clear"),
                 0);

    /* A3: relay refused, open relay, block list, ancient MTA. */
    CHECK_EQ_INT(has("{\"transactions\":[{\"rcpt\":[{\"to\":\"x@foreign.example\",\"code\":554,"
                     "\"enhanced\":\"5.7.1\",\"text\":\"5.7.1 <x@foreign.example>: Relay access "
                     "denied\"}]}]}",
                     "relay_denied"),
                 1);
    /* One foreign domain from a public address: an MX for it would do the same. */
    const char *relay = "{\"client\":{\"ip\":\"192.0.2.7\"},"
                        "\"banner\":{\"code\":220,\"text\":\"mail.example.org ESMTP\"},"
                        "\"transactions\":[{\"mail_from\":\"spam@bulk.example\","
                        "\"authenticated\":false,\"rcpt\":[{\"to\":\"victim@foreign.example\","
                        "\"code\":250}]}]}";
    CHECK_EQ_INT(has(relay, "open_relay"), 0);
    CHECK_EQ_INT(has(relay, "relay_accepted"), 1);
    const char *relay3 = "{\"client\":{\"ip\":\"192.0.2.7\"},"
                         "\"banner\":{\"code\":220,\"text\":\"mail.example.org ESMTP\"},"
                         "\"transactions\":[{\"authenticated\":false,\"rcpt\":["
                         "{\"to\":\"a@one.example\",\"code\":250},"
                         "{\"to\":\"b@two.example\",\"code\":250},"
                         "{\"to\":\"c@three.example\",\"code\":250}]}]}";
    CHECK_EQ_INT(has(relay3, "open_relay"), 1);
    /* The same from a private address (a trusted LAN, as far as the packets tell). */
    const char *relay3lan = "{\"client\":{\"ip\":\"10.1.2.3\"},"
                            "\"transactions\":[{\"authenticated\":false,\"rcpt\":["
                            "{\"to\":\"a@one.example\",\"code\":250},"
                            "{\"to\":\"b@two.example\",\"code\":250},"
                            "{\"to\":\"c@three.example\",\"code\":250}]}]}";
    CHECK_EQ_INT(has(relay3lan, "open_relay"), 0);
    const char *inbound = "{\"banner\":{\"code\":220,\"text\":\"mail.example.org ESMTP\"},"
                          "\"transactions\":[{\"mail_from\":\"a@elsewhere.example\","
                          "\"authenticated\":false,\"rcpt\":[{\"to\":\"bob@example.org\","
                          "\"code\":250}]}]}";
    CHECK_EQ_INT(has(inbound, "open_relay"), 0);
    CHECK_EQ_INT(has("{\"smtp\":{\"error_replies\":[{\"command\":\"RCPT\",\"code\":554,"
                     "\"text\":\"5.7.1 Service unavailable; Client host [192.0.2.9] blocked "
                     "using zen.spamhaus.org\"}]}}",
                     "blocklisted"),
                 1);
    /* A policy refusal with 5.7.1 is not about relaying; an unknown address not a block list. */
    CHECK_EQ_INT(has("{\"transactions\":[{\"rcpt\":[{\"to\":\"x@example.org\",\"code\":550,"
                     "\"enhanced\":\"5.7.1\",\"text\":\"5.7.1 <spam@bad.example>: Sender "
                     "address rejected: Access denied\"}]}]}",
                     "relay_denied"),
                 0);
    CHECK_EQ_INT(has("{\"transactions\":[{\"rcpt\":[{\"to\":\"x@example.org\",\"code\":553,"
                     "\"text\":\"sorry, that domain isn't in my list of allowed rcpthosts "
                     "(#5.7.1)\"}]}]}",
                     "relay_denied"),
                 1);
    CHECK_EQ_INT(has("{\"smtp\":{\"error_replies\":[{\"command\":\"RCPT\",\"code\":550,"
                     "\"text\":\"5.1.1 <bob@example.org>: Recipient not listed in public "
                     "directory\"}]}}",
                     "blocklisted"),
                 0);
    CHECK_EQ_INT(has("{\"server_software\":{\"name\":\"Sendmail\",\"version\":\"8.9.3\"}}",
                     "outdated_server"),
                 1);
    CHECK_EQ_INT(has("{\"server_software\":{\"name\":\"Postfix\",\"version\":\"3.7.11\"}}",
                     "outdated_server"),
                 0);

    /* A4: deferrals and limits. */
    CHECK_EQ_INT(has("{\"smtp\":{\"error_replies\":[{\"command\":\"RCPT\",\"code\":450,"
                     "\"enhanced\":\"4.2.0\",\"text\":\"4.2.0 Greylisted\"}]}}",
                     "deferred"),
                 1);
    CHECK_EQ_INT(has("{\"smtp\":{\"error_replies\":[{\"command\":\"RCPT\",\"code\":552,"
                     "\"enhanced\":\"5.2.2\",\"text\":\"5.2.2 Mailbox full\"}]}}",
                     "mailbox_full"),
                 1);
    /* Sent with no command in flight: an idle timeout, not a deferral. */
    CHECK_EQ_INT(has("{\"smtp\":{\"error_replies\":[{\"code\":451,\"enhanced\":\"4.4.2\","
                     "\"text\":\"4.4.2 Timeout\"}],\"unsolicited_replies\":[{\"code\":451,"
                     "\"enhanced\":\"4.4.2\",\"text\":\"4.4.2 Timeout\"}]}}",
                     "deferred"),
                 0);
    CHECK_EQ_INT(has("{\"smtp\":{\"unsolicited_replies\":[{\"code\":451,"
                     "\"enhanced\":\"4.4.2\",\"text\":\"4.4.2 Timeout\"}]}}",
                     "server_closed_idle"),
                 1);
    CHECK_EQ_INT(has("{\"smtp\":{\"error_replies\":[{\"command\":\"DATA\",\"code\":552,"
                     "\"enhanced\":\"5.3.4\",\"text\":\"5.3.4 Message size exceeds fixed "
                     "limit\"}]}}",
                     "size_exceeded"),
                 1);

    /* A5: the message went out, no final reply; an RST with a foreign TTL. */
    const char *died =
        "{\"duration_ms\":900.0,\"tcp\":{\"end\":\"rst_server\",\"established\":true,"
        "\"rst\":{\"from\":\"server\",\"ttl\":250,\"expected_ttl\":57},"
        "\"ttl\":{\"client\":64,\"server\":57}},\"smtp\":{\"phase\":\"data_sent\"},"
        "\"transactions\":[{\"data\":{\"code\":null,\"sent_t_ms\":400.0,"
        "\"bytes\":1234}}]}";
    CHECK_EQ_INT(has(died, "died_after_data"), 1);
    CHECK_EQ_INT(has(died, "rst_injected"), 1);
    CHECK_EQ_INT(has(died, "died_mid_session"), 0); /* the more precise one says it */
    const char *ok = "{\"tcp\":{\"end\":\"rst_server\",\"rst\":{\"from\":\"server\",\"ttl\":57,"
                     "\"expected_ttl\":57}},\"transactions\":[{\"data\":{\"code\":250,"
                     "\"sent_t_ms\":400.0}}]}";
    CHECK_EQ_INT(has(ok, "died_after_data"), 0);
    CHECK_EQ_INT(has(ok, "rst_injected"), 0);
    /* A server-side hole may have swallowed the final reply: silence, capture_gap instead. */
    const char *holed = "{\"tcp\":{\"end\":\"fin\",\"established\":true,\"gap_bytes_server\":9},"
                        "\"transactions\":[{\"data\":{\"code\":null,\"sent_t_ms\":1.0}}]}";
    CHECK_EQ_INT(has(holed, "died_after_data"), 0);
    CHECK_EQ_INT(has(holed, "capture_gap"), 1);

    /* Protocol violations. */
    CHECK_EQ_INT(has("{\"smtp\":{\"bare_lf\":{\"client\":2,\"server\":0}}}", "bare_lf"), 1);
    CHECK_EQ_INT(has("{\"smtp\":{\"long_lines\":{\"client\":1,\"server\":0}}}", "line_too_long"),
                 1);
    CHECK_EQ_INT(has("{\"transactions\":[{\"data\":{\"code\":250,\"smuggling\":[{\"form\":"
                     "\"lf.lf\",\"offset\":10}]}}]}",
                     "smuggling"),
                 1);
    CHECK_EQ_INT(has("{\"ehlo\":{\"masked\":[\"XXXXXXXA\"]}}", "extensions_masked"), 1);
    CHECK_EQ_INT(has("{\"smtp\":{\"pipelining_violations\":3}}", "pipelining_unadvertised"), 1);
    CHECK_EQ_INT(has("{\"tls\":{\"starttls\":\"refused\",\"code\":454}}", "starttls_failed"), 1);
    CHECK_EQ_INT(
        has("{\"tls\":{\"starttls\":\"offered\"},\"transactions\":[{}]}", "starttls_not_used"), 1);

    /* A clean delivery has no anomaly at all. */
    CHECK_EQ_INT(count("{\"server\":{\"port\":25},\"banner\":{\"code\":220,\"delay_ms\":1.0,"
                       "\"text\":\"mx.example.org ESMTP Postfix\"},\"tcp\":{\"end\":\"fin\","
                       "\"established\":true},\"smtp\":{\"phase\":\"quit\",\"quit_sent\":true},"
                       "\"transactions\":[{\"mail_from\":\"a@b.example\",\"authenticated\":false,"
                       "\"rcpt\":[{\"to\":\"u@example.org\",\"code\":250}],\"data\":{\"code\":"
                       "250,\"sent_t_ms\":3.0}}]}"),
                 0);

    /* Every rule id is unique and the severity names round-trip. */
    for (size_t i = 0; i < rule_count(); i++)
        for (size_t j = i + 1; j < rule_count(); j++)
            CHECK(strcmp(rule_id(i), rule_id(j)) != 0);
    for (int s = 0; s < RULE_SEVERITY_COUNT; s++)
        CHECK_EQ_INT(rule_severity_parse(rule_severity_name((enum rule_severity)s)), s);
    CHECK_DONE();
}
