/* filter.h - which sessions are printed (--min-severity, --anomaly, --address, --domain).
 * Only the printed records are chosen: the summary counts every session, so a filtered run
 * still tells how many sessions there were and what was wrong with them. */
#ifndef SMTPSNIFF_FILTER_H
#define SMTPSNIFF_FILTER_H

#include <stddef.h>

struct jt_node;

#define FILTER_MAX_VALUES 64

/* Every kind given must hold; within a kind, any value. --address and --domain are one
 * kind (the envelope names any of them). Values are the command line's strings, kept by
 * pointer. */
struct filter {
    int min_severity; /* -1: not given */
    const char *anomalies[FILTER_MAX_VALUES];
    size_t nanomalies;
    const char *addresses[FILTER_MAX_VALUES];
    size_t naddresses;
    const char *domains[FILTER_MAX_VALUES];
    size_t ndomains;
};

enum filter_kind { FILTER_MIN_SEVERITY, FILTER_ANOMALY, FILTER_ADDRESS, FILTER_DOMAIN };

void filter_init(struct filter *f);
/* Adds one command-line value. 0, or -1 with a one-line reason in err (a severity that is
 * not one, an anomaly id not in the catalogue, an empty or malformed address or domain, too
 * many values). */
int filter_add(struct filter *f, enum filter_kind kind, const char *value, char *err,
               size_t errlen);
/* Whether any filter was given. */
int filter_active(const struct filter *f);
/* Whether a finished session's report is printed. */
int filter_session(const struct filter *f, const struct jt_node *session);
/* Live capture: whether a live anomaly's line is printed. The anomaly criteria are judged
 * on this anomaly, the envelope on the session so far. */
int filter_live(const struct filter *f, const struct jt_node *session,
                const struct jt_node *anomaly);

#endif
