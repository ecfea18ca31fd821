/* w_html.h - the --html / --svg writer: every session goes to the page and pictures (html.h),
 * and the summary ends the page. */
#ifndef SMTPSNIFF_W_HTML_H
#define SMTPSNIFF_W_HTML_H

#include "html.h"
#include "writer.h"

extern const struct writer_ops w_html_ops;
/* h stays its creator's (html_failures, html_destroy); the writer only uses it. */
void *w_html_create(struct html *h);

#endif
