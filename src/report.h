/* report.h - writes finished session reports and the closing summary: NDJSON (one object
 * per line, sorted keys) and/or the readable text view rendered from the same objects. */
#ifndef SMTPSNIFF_REPORT_H
#define SMTPSNIFF_REPORT_H

#include <jansson.h>
#include <stdio.h>

struct report;

/* Either stream may be NULL. flush_each: flush after every session (live capture).
 * NULL on allocation failure. */
struct report *report_create(FILE *json, FILE *text, int flush_each);
void report_destroy(struct report *r);

/* Writes one session; max_severity is what the rules found (-1 none). 0, or -1 when the
 * output could not be written (the reason is in errno). */
int report_session(struct report *r, json_t *session, int max_severity);
/* Adds the per-anomaly and per-outcome counts to summary and writes it; flushes. */
int report_summary(struct report *r, json_t *summary);
/* Highest severity of any session written so far (-1 none). */
int report_max_severity(const struct report *r);

#endif
