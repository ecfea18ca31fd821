/* w_lines.c - the --lines writer (w_lines.h), over lines.c. */
#include "w_lines.h"

#include <errno.h>
#include <stdlib.h>

#include "mem.h"
#include "summary.h"

struct w_lines {
    FILE *f;
    int flush_each;
    struct lines *lines;
};

void *
w_lines_create(FILE *f, enum lines_style style, int flush_each)
{
    struct w_lines *w = mem_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->f = f;
    w->flush_each = flush_each;
    w->lines = lines_create(style);
    if (!w->lines) {
        mem_free(w);
        return NULL;
    }
    return w;
}

static void
wl_destroy(void *ctx)
{
    struct w_lines *w = ctx;
    if (!w)
        return;
    lines_destroy(w->lines);
    mem_free(w);
}

/* A session's lines; nothing for a live record (a log of transactions has no line for it). */
static void
wl_render(void *ctx, FILE *f, const struct writer_session *s, const struct writer_live *l)
{
    struct w_lines *w = ctx;
    (void)l;
    if (s)
        lines_session(w->lines, f, s->tree);
}

static int
wl_merged(void *ctx, int is_session, const char *json, size_t json_len, const char *text,
          size_t text_len)
{
    struct w_lines *w = ctx;
    (void)is_session;
    (void)json;
    (void)json_len;
    if (lines_write(w->lines, w->f, text, text_len) < 0)
        return -1;
    return w->flush_each && fflush(w->f) != 0 ? -1 : 0;
}

/* Rendered first, so that the header, written before the first line, can name its time. */
static int
wl_session(void *ctx, const struct writer_session *s)
{
    struct w_lines *w = ctx;
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return -1;
    lines_session(w->lines, m, s->tree);
    int rc = fclose(m) == 0 ? lines_write(w->lines, w->f, text, len) : -1;
    free(text);
    if (w->flush_each && fflush(w->f) != 0)
        rc = -1;
    return rc;
}

/* A TSV log holds its records only; aligned lines are followed by the summary. */
static int
wl_summary(void *ctx, json_t *summary)
{
    struct w_lines *w = ctx;
    int rc = lines_end(w->lines, w->f, summary) < 0 ? -1 : 0;
    if (lines_style(w->lines) != LINES_TSV)
        summary_text(w->f, summary);
    return writer_flush(w->f) != 0 ? -1 : rc;
}

const struct writer_ops w_lines_ops = {
    .name = "lines",
    .session = wl_session,
    .merged = wl_merged,
    .summary = wl_summary,
    .destroy = wl_destroy,
    .render = wl_render,
};
