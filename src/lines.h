/* lines.h - one line per transaction (--lines): Zeek's smtp.log TSV, so zeek-cut and the
 * tools that read Zeek logs read it, or the same fields in aligned columns for a terminal.
 * A session with no transaction gets one line, saying how it ended.
 *
 * A session's lines are rendered on their own (lines_session), so that a worker can render
 * them and its parent write them (lines_write) in the order one process would: the header
 * is written by whoever writes, before the first line, and the closing line at the end. */
#ifndef SMTPSNIFF_LINES_H
#define SMTPSNIFF_LINES_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

struct jt_node;

enum lines_style { LINES_TSV, LINES_ALIGNED };

struct lines;

/* NULL on allocation failure. */
struct lines *lines_create(enum lines_style style);
void lines_destroy(struct lines *l);
enum lines_style lines_style(const struct lines *l);

/* Writes the lines of one finished session to f: no header. */
void lines_session(const struct lines *l, FILE *f, const struct jt_node *session);
/* Writes rendered lines (one or more sessions' lines_session output) to out, the header
 * first when nothing was written yet. len 0 writes nothing. 0, or -1 on a write error. */
int lines_write(struct lines *l, FILE *out, const char *text, size_t len);
/* The end of the output: TSV's header when no line came, and its #close line (the time of
 * the summary's last packet); aligned, a blank line before the text summary. 0, or -1 on a
 * write error. */
int lines_end(struct lines *l, FILE *out, json_t *summary);

#endif
