/* html.h - the pictures of a capture: --html FILE, one self-contained page (inline CSS and
 * SVG, no script, nothing fetched), and --svg DIR, each session's ladder as a file of its
 * own. The report writer hands over each finished session's report object and, last, the
 * summary; the page is composed at the end (summary first), from temporary files holding
 * the sessions, so memory stays bounded however long the capture.
 *
 * Bounds, so that a page of a long capture still opens: the sessions with anomalies come
 * first; at most HTML_MAX_DETAILS sessions of each group (with / without anomalies) get
 * their ladder and transcript, at most HTML_MAX_INDEX of each group a row in the index;
 * the page says how many were left out (the NDJSON report has them all). */
#ifndef SMTPSNIFF_HTML_H
#define SMTPSNIFF_HTML_H

#include <jansson.h>
#include <stdio.h>

#define HTML_MAX_DETAILS 500
#define HTML_MAX_INDEX 10000
#define HTML_OPEN_DETAILS 5   /* sessions with anomalies shown unfolded */
#define HTML_MAX_LINES 1000   /* transcript lines shown per session */
#define HTML_MAX_SERVERS 1000 /* servers whose reply latency is tallied one by one */
#define HTML_CHART_SERVERS 30 /* servers drawn in the latency chart */

struct html;

/* out: the page (NULL: --svg only); svg_dirfd: the --svg directory (-1: none), svg_dir its
 * name for messages; title: what was analysed (file names, interface). NULL on failure. */
struct html *html_begin(FILE *out, int svg_dirfd, const char *svg_dir, const char *title);
/* One finished session (its full report object, transcript included). -1 when the page's
 * temporary storage could not be written (errno); a failed SVG file is told on stderr and
 * counted (html_failures), the analysis goes on. */
int html_session(struct html *h, json_t *session);
/* The same from the report's JSON text (merged from workers). */
int html_session_json(struct html *h, const char *json, size_t len);
/* Writes the page from the summary object. -1 when it could not be written (errno). */
int html_end(struct html *h, json_t *summary);
/* SVG files that could not be written (told once on stderr, with the count at the end). */
unsigned long long html_failures(const struct html *h);
void html_destroy(struct html *h);

#endif
