/* w_json.h - the NDJSON writer: one object per line, sorted keys; and the rendering that a
 * worker's framed records carry too (report.c). */
#ifndef SMTPSNIFF_W_JSON_H
#define SMTPSNIFF_W_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "buf.h"
#include "writer.h"

extern const struct writer_ops w_json_ops;
/* flush_each: flushed after every session (live capture). */
void *w_json_create(FILE *f, int flush_each);

/* out: the render buffer, kept from one record to the next (w_json_render_init). */
void w_json_render_init(struct buf *out);
/* A session (tree, SMTP model or NULL) or, tree NULL, a Jansson object as one line of JSON,
 * without the newline, in *json and *len: rendered into out (*dumped NULL) or, past what the
 * writers here render, dumped by Jansson into *dumped. The same bytes either way. 0 or -1;
 * w_json_render_done afterwards in both cases. */
int w_json_render(struct buf *out, const struct jt_node *tree, const struct smtp_session *smtp,
                  json_t *obj, const char **json, size_t *len, char **dumped);
void w_json_render_done(struct buf *out, char *dumped);
/* Frees text that json_dumps made. */
void w_json_free_dumped(char *p);

#endif
