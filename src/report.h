/* report.h - hands finished session reports, live records and the closing summary to the
 * outputs (writer.h): NDJSON, the text view, --lines, the pictures; counts every session for
 * the summary and the highest severity, and applies the filters. */
#ifndef SMTPSNIFF_REPORT_H
#define SMTPSNIFF_REPORT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "jtree.h"
#include "smtp.h"

struct report;

/* json: an NDJSON writer to it (w_json.h), text: a text view writer to it (w_text.h); either
 * may be NULL, and more writers are added with report_add_writer. flush_each: flush after
 * every session (live capture). NULL on allocation failure. */
struct report *report_create(FILE *json, FILE *text, int flush_each);
/* Appends a writer (w: what its create returned; NULL is an allocation failure) to those
 * every session, live record and the summary go to, in the order added; r destroys it.
 * In a worker's report (report_create_framed) the first writer with a render operation
 * makes the text of its records. 0, or -1 (w destroyed). */
struct writer_ops;
int report_add_writer(struct report *r, const struct writer_ops *ops, void *w);

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
/* Live capture: the client of a session still open has waited waited_us for the server
 * (awaiting: "greeting", "end-of-data" or a command's verb): a text line, and a
 * {"type": "waiting"} object (schema smtpsniff.waiting/1) in the NDJSON stream. */
int report_live_waiting(struct report *r, const struct jt_node *session, const char *awaiting,
                        int64_t waited_us, int64_t now_us);
/* Highest severity of any session written so far (-1 none). */
int report_max_severity(const struct report *r);

#endif
