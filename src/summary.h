/* summary.h - the closing summary: what an incident asks of a capture (messages by outcome,
 * refused recipients and why, AUTH attempts per user, per server delays and unanswered
 * handshakes, the same message in several sessions), built from session records, whatever
 * their source: the live analysis (tree and SMTP model) or NDJSON reports read back
 * (smtpsniff summarize). Its state is mergeable: --workers sends each worker's to the parent,
 * which adds them up into the figures one process would have written. */
#ifndef SMTPSNIFF_SUMMARY_H
#define SMTPSNIFF_SUMMARY_H

#include <jansson.h>
#include <stdio.h>

#include "jtree.h"
#include "smtp.h"

/* The member of a worker's summary object that carries its state to the parent. */
#define SUMMARY_STATE_KEY "summary_state"
/* Inputs summarize can name (a session reference keeps the input's index in 8 bits). */
#define SUMMARY_MAX_SENSORS 64

struct summary;

struct summary *summary_create(void); /* NULL without memory */
void summary_destroy(struct summary *s);
/* Names the inputs the records come from: with more than one, session ids are written
 * "NAME#ID". The names must outlive s. */
void summary_set_sensors(struct summary *s, size_t n, const char *const *names);
/* Counts one session record. smtp: its model, whose transcript gives the reply latencies
 * (NULL: read them from the record's "transcript"). sensor: the input's index (0 live). */
void summary_add(struct summary *s, const struct jt_node *session, const struct smtp_session *smtp,
                 unsigned sensor);
/* A worker's state, for summary_merge_state in the parent (new reference, NULL without
 * memory). */
json_t *summary_state(const struct summary *s);
/* Adds a state summary_state made. -1 when it is malformed or memory ran out. */
int summary_merge_state(struct summary *s, const json_t *state);
/* Sets the figures in the summary object (sessions, anomalies, outcomes, tcp_ends, servers,
 * messages, recipients_refused, auth, duplicate_messages). -1 without memory. */
int summary_figures(const struct summary *s, json_t *summary);
/* The text view of a summary object (the figures above, summarize's inputs and joins, and
 * the capture's totals in their own section). */
void summary_text(FILE *f, json_t *summary);

#endif
