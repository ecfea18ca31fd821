/* w_html.c - the --html / --svg writer (w_html.h), over html.c. */
#include "w_html.h"

#include "jtree.h"
#include "mem.h"
#include "smtp.h"

struct w_html {
    struct html *h;
};

void *
w_html_create(struct html *h)
{
    struct w_html *w = mem_calloc(1, sizeof *w);
    if (w)
        w->h = h;
    return w;
}

static void
wh_destroy(void *ctx)
{
    mem_free(ctx);
}

/* The picture is drawn from the whole report as Jansson values, transcript included. */
static int
wh_session(void *ctx, const struct writer_session *s)
{
    struct w_html *w = ctx;
    json_t *o = jt_to_json(s->tree);
    int rc = o && (!s->smtp || smtp_transcript_add(s->smtp, o) == 0) ? html_session(w->h, o) : -1;
    json_decref(o);
    return rc;
}

/* A worker's session, read back from the JSON it rendered; live records are not drawn. */
static int
wh_merged(void *ctx, int is_session, const char *json, size_t json_len, const char *text,
          size_t text_len)
{
    struct w_html *w = ctx;
    (void)text;
    (void)text_len;
    return is_session ? html_session_json(w->h, json, json_len) : 0;
}

static int
wh_summary(void *ctx, json_t *summary)
{
    struct w_html *w = ctx;
    return html_end(w->h, summary);
}

const struct writer_ops w_html_ops = {
    .name = "html",
    .session = wh_session,
    .merged = wh_merged,
    .summary = wh_summary,
    .destroy = wh_destroy,
};
