/* sumout.h - the outputs of `smtpsniff summarize` that list sessions (--lines, --html,
 * --svg): the session records of all inputs, written in one stable order (by start time,
 * then input order, then their order in the input) whatever order the inputs came in.
 *
 * Each record given is rendered at once (its lines) and kept with its JSON text in a
 * temporary file, the index in memory (a few dozen bytes a session), so that memory stays
 * bounded however large the reports; sumout_finish sorts the index and writes them. */
#ifndef SMTPSNIFF_SUMOUT_H
#define SMTPSNIFF_SUMOUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct jt_node;
struct lines;
struct html;

struct sumout;

/* lines: the lines writer (NULL: no --lines), html: the page and/or SVG files (NULL: none).
 * NULL when the temporary file could not be made (errno). */
struct sumout *sumout_create(struct lines *lines, struct html *html);
void sumout_destroy(struct sumout *o);
/* One session record to write: its start in microseconds since the epoch, its tree (for the
 * lines) and its JSON text (for the HTML). Records given earlier sort first among equal
 * starts. -1 when the temporary file could not be written or memory ran out (errno). */
int sumout_add(struct sumout *o, int64_t start_us, const struct jt_node *session, const char *json,
               size_t len);
/* Writes every record in order: the lines to out, the sessions to the HTML writer. The
 * lines' end and the page's summary are the caller's (lines_end, html_end). -1 when out,
 * the temporary file or the page's storage failed (errno). */
int sumout_finish(struct sumout *o, FILE *out);

#endif
