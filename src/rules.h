/* rules.h - the anomaly catalogue: a table of rules over a finished session report. */
#ifndef SMTPSNIFF_RULES_H
#define SMTPSNIFF_RULES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct jt_node;

enum rule_severity { RULE_INFO, RULE_NOTICE, RULE_WARNING, RULE_ERROR, RULE_SEVERITY_COUNT };

/* A client network the server trusts to relay (open_relay), as --trusted-net gives it. */
struct rule_net {
    int family; /* 4 or 6 */
    uint8_t addr[16];
    unsigned prefix;
};

struct rule_config {
    double banner_delay_ms;           /* a greeting later than this is banner_delay */
    double slow_reply_ms;             /* a reply later than this after its command is slow_reply */
    const char *const *local_domains; /* domains the server is final for (open_relay) */
    size_t nlocal_domains;
    /* Networks the server relays for; none given: the private ranges (docs/anomalies.md). */
    const struct rule_net *trusted_nets;
    size_t ntrusted_nets;
};

/* Parses "192.0.2.0/24", "2001:db8::/32" or one address (a host). 0, or -1 when malformed. */
int rule_net_parse(const char *s, struct rule_net *out);

/* Reads the session object (tcp facts and SMTP sections), adds "anomalies" (sorted by
 * severity, then id) and returns the highest severity found, or -1 for none. The anomalies'
 * evidence shares values of the session instead of copying them: the session must not change
 * afterwards. */
int rule_apply(const struct rule_config *cfg, struct jt_node *session);

/* The same for a session still open (live capture): only the rules that do not depend on
 * how the session ends (no reply yet is not "no reply"). */
int rule_apply_open(const struct rule_config *cfg, struct jt_node *session);

/* rule_apply on a Jansson session (tests): its "anomalies" member is set as rule_apply sets
 * it in a tree. */
int rule_apply_json(const struct rule_config *cfg, json_t *session);

const char *rule_severity_name(enum rule_severity s);
/* -1 when the name is not a severity. */
int rule_severity_parse(const char *name);

/* The catalogue, for documentation and tests. */
size_t rule_count(void);
const char *rule_id(size_t i);

#endif
