/* w_text.h - the readable text view of each session (with textview.h), the live anomaly and
 * waiting lines, and the text summary. Rendered from the JSON object, so the text and the
 * NDJSON can never disagree about a session. */
#ifndef SMTPSNIFF_W_TEXT_H
#define SMTPSNIFF_W_TEXT_H

#include <stdio.h>

#include "writer.h"

extern const struct writer_ops w_text_ops;
/* flush_each: flushed after every session (live capture). f NULL: a worker's, which only
 * renders for its framed records. */
void *w_text_create(FILE *f, int flush_each);

#endif
