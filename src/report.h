/* report.h - writes finished session reports and the closing summary: NDJSON (one object
 * per line, sorted keys) and/or the readable text view rendered from the same objects. */
#ifndef SMTPSNIFF_REPORT_H
#define SMTPSNIFF_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "jtree.h"
#include "lines.h"
#include "smtp.h"

struct report;

/* Either stream may be NULL. flush_each: flush after every session (live capture).
 * NULL on allocation failure. */
struct report *report_create(FILE *json, FILE *text, int flush_each);

/* A worker's report: every session and the summary go to `out` as framed records (see
 * struct report_frame) carrying the JSON and/or the text view, for the parent to merge.
 * flush_each: every record is flushed at once (live capture). */
struct report *report_create_framed(FILE *out, int want_json, int want_text, int flush_each);

/* Record header of the framed form; followed by json_len bytes of JSON (no newline) and
 * text_len bytes of text view. */
enum {
    REPORT_FRAME_SESSION = 1,
    REPORT_FRAME_SUMMARY = 2,
    REPORT_FRAME_PROGRESS = 3,
    REPORT_FRAME_LIVE = 4, /* a live anomaly's line: written as it comes, not a session */
};
struct report_frame {
    uint32_t kind;
    uint32_t json_len, text_len;
    int32_t max_severity; /* summary: the worker's highest severity */
    uint64_t key[2];      /* session: order key (end frame, last frame); progress: frame */
};
/* Tells the parent this worker has read up to `frame`: nothing it writes later sorts
 * before it. */
int report_progress(struct report *r, uint64_t frame);
/* Writes already rendered bytes (merged from workers): a session's report, or a live
 * anomaly's line (is_session 0: not counted). */
int report_raw(struct report *r, int is_session, const char *json, size_t json_len,
               const char *text, size_t text_len);
/* Writes a summary object as it is (merged from workers); flushes. */
int report_write_summary(struct report *r, json_t *summary);
/* Records a severity seen elsewhere (a worker's), for report_max_severity. */
void report_note_severity(struct report *r, int severity);
void report_destroy(struct report *r);
/* --lines: the text stream (or a worker's text records) carries one line per transaction
 * (lines.h) instead of the text view; a TSV log ends with its #close line, not the text
 * summary. 0, or -1 on allocation failure. */
int report_set_lines(struct report *r, enum lines_style style);
/* Only the sessions (and live anomalies) f selects are written; every session is still
 * counted in the summary and for report_max_severity. f must outlive r; NULL: all. */
struct filter;
void report_set_filter(struct report *r, const struct filter *f);

/* Writes one session; max_severity is what the rules found (-1 none). smtp: the session's
 * model, whose transcript is written at its place in the report (NULL: none). order: the
 * key workers' reports are merged by (end frame, last frame). 0, or -1 when the output could
 * not be written (the reason is in errno). */
int report_session(struct report *r, const struct jt_node *session, const struct smtp_session *smtp,
                   const uint64_t order[2], int max_severity);
/* Adds the per-anomaly and per-outcome counts to summary and writes it; flushes. */
int report_summary(struct report *r, json_t *summary);
/* Live capture: an anomaly seen in a session still open, written at once: a text line, and
 * a {"type": "anomaly"} object (schema smtpsniff.anomaly/1) in the NDJSON stream. */
int report_live_anomaly(struct report *r, const struct jt_node *session,
                        const struct jt_node *anomaly);
/* --html / --svg: every session written (merged from workers too) also goes to h, and the
 * summary ends its page (html.h). NULL: none. */
struct html;
void report_set_html(struct report *r, struct html *h);

/* Live capture: the client of a session still open has waited waited_us for the server
 * (awaiting: "greeting", "end-of-data" or a command's verb): a text line, and a
 * {"type": "waiting"} object (schema smtpsniff.waiting/1) in the NDJSON stream. */
int report_live_waiting(struct report *r, const struct jt_node *session, const char *awaiting,
                        int64_t waited_us, int64_t now_us);
/* Highest severity of any session written so far (-1 none). */
int report_max_severity(const struct report *r);

#endif
