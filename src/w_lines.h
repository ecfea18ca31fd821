/* w_lines.h - the --lines writer: the text stream carries one line per transaction (lines.h)
 * instead of the text view; a TSV log ends with its #close line, aligned lines with the text
 * summary. Live records have no line (the NDJSON stream has them). */
#ifndef SMTPSNIFF_W_LINES_H
#define SMTPSNIFF_W_LINES_H

#include <stdio.h>

#include "lines.h"
#include "writer.h"

extern const struct writer_ops w_lines_ops;
/* f NULL: a worker's, which only renders for its framed records. */
void *w_lines_create(FILE *f, enum lines_style style, int flush_each);

#endif
