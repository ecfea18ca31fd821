/* rules.h - the anomaly catalogue: a table of rules over a finished session report. */
#ifndef SMTPSNIFF_RULES_H
#define SMTPSNIFF_RULES_H

#include <jansson.h>
#include <stddef.h>

struct jt_node;

enum rule_severity { RULE_INFO, RULE_NOTICE, RULE_WARNING, RULE_ERROR, RULE_SEVERITY_COUNT };

struct rule_config {
    double banner_delay_ms;           /* a greeting later than this is banner_delay */
    double slow_reply_ms;             /* a reply later than this after its command is slow_reply */
    const char *const *local_domains; /* domains the server is final for (open_relay) */
    size_t nlocal_domains;
};

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
