/* writer.h - one output format behind one small interface. report.c counts every session
 * (summary, severity, filters) and hands what it writes to each writer of its list; a writer
 * only turns what it is given into its format. Every operation may be NULL: the writer has
 * nothing to write for it. Each returns 0, or -1 when its output could not be written (the
 * reason in errno). See "Adding an output" in docs/design.md. */
#ifndef SMTPSNIFF_WRITER_H
#define SMTPSNIFF_WRITER_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

struct jt_node;
struct smtp_session;

/* A finished session: its report tree and its SMTP model, whose transcript belongs at its
 * place in the report (NULL: none). */
struct writer_session {
    const struct jt_node *tree;
    const struct smtp_session *smtp;
};

/* Live capture: a record about a session still open, written at once. */
struct writer_live {
    json_t *session;      /* the session so far, as Jansson values */
    json_t *obj;          /* its NDJSON record: smtpsniff.anomaly/1 or smtpsniff.waiting/1 */
    json_t *anomaly;      /* an anomaly seen; NULL: the client is waiting for the server */
    const char *awaiting; /* waiting: "greeting", "end-of-data" or a command's verb */
    double waited_s;
};

struct writer_ops {
    const char *name;
    int (*session)(void *w, const struct writer_session *s);
    int (*live)(void *w, const struct writer_live *l);
    /* Bytes already rendered by a worker (report.h, report_raw): the JSON and the text that
     * this format's render (or the NDJSON writer) made of a session or live record. */
    int (*merged)(void *w, int is_session, const char *json, size_t json_len, const char *text,
                  size_t text_len);
    /* The closing summary, its figures set; the writer flushes its output. */
    int (*summary)(void *w, json_t *summary);
    void (*destroy)(void *w);
    /* The text stream's writer: what session or live (exactly one not NULL) would write,
     * into f, for a worker's framed record; its parent writes it with merged. */
    void (*render)(void *w, FILE *f, const struct writer_session *s, const struct writer_live *l);
};

/* The end of a writer's summary: f flushed, and any write error it met (errno EIO when the
 * stream kept none) as -1. */
int writer_flush(FILE *f);

/* Each writer is a module src/w_*.c with its header, whose create returns the state its ops
 * are given (NULL on allocation failure); report_add_writer hands it to a report, which
 * destroys it. */

#endif
