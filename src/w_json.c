/* w_json.c - the NDJSON writer (w_json.h). */
#include "w_json.h"

#include <errno.h>
#include <string.h>

#include "jsonx.h"
#include "jtree.h"
#include "mem.h"
#include "smtp.h"

/* One report is rendered in memory and written with one fwrite. Larger ones (a transcript of
 * long lines at its cap can make megabytes) are streamed by Jansson instead: the same bytes. */
#define W_JSON_MAX_RENDERED (64u << 20)
/* The render buffer is kept from one session to the next; one that grew past this for a huge
 * report is given back, so memory stays flat however long the capture. */
#define W_JSON_KEEP_RENDERED (1u << 20)

struct w_json {
    FILE *f;
    int flush_each;
    struct buf out; /* the report being rendered; reused */
};

void
w_json_render_init(struct buf *out)
{
    buf_init(out, W_JSON_MAX_RENDERED);
}

/* json_dumps' text comes from Jansson's allocator, which need not be malloc (nodecache.h). */
void
w_json_free_dumped(char *p)
{
    json_free_t release = NULL;
    json_get_alloc_funcs(NULL, &release);
    if (p && release)
        release(p);
}

/* Jansson dumps what the writers here cannot render: a report past W_JSON_MAX_RENDERED, or
 * nesting they leave to it. */
int
w_json_render(struct buf *out, const struct jt_node *tree, const struct smtp_session *smtp,
              json_t *obj, const char **json, size_t *len, char **dumped)
{
    int rc;
    buf_reset(out);
    *dumped = NULL;
    if (tree)
        rc = smtp ? smtp_dump_report(smtp, tree, out) : jt_dump(tree, NULL, 0, out);
    else
        rc = jx_dump(obj, out);
    if (rc == JX_DUMP_OK) {
        *json = (const char *)out->data;
        *len = out->len;
        return 0;
    }
    /* Both in the reports' key order, which json_dumps keeps. */
    json_t *o = tree ? jt_to_json(tree) : jx_ordered(obj);
    if (o && (!smtp || smtp_transcript_add(smtp, o) == 0))
        *dumped = json_dumps(o, JX_DUMP_FLAGS);
    json_decref(o);
    if (!*dumped)
        return -1;
    *json = *dumped;
    *len = strlen(*dumped);
    return 0;
}

void
w_json_render_done(struct buf *out, char *dumped)
{
    w_json_free_dumped(dumped);
    if (out->alloc > W_JSON_KEEP_RENDERED)
        buf_free(out);
}

void *
w_json_create(FILE *f, int flush_each)
{
    struct w_json *w = mem_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->f = f;
    w->flush_each = flush_each;
    w_json_render_init(&w->out);
    return w;
}

static void
w_json_destroy(void *ctx)
{
    struct w_json *w = ctx;
    if (!w)
        return;
    buf_free(&w->out);
    mem_free(w);
}

/* Rendered in memory, a report is one fwrite (Jansson's json_dumpf made one per token). */
static int
w_json_write(struct w_json *w, const struct jt_node *tree, const struct smtp_session *smtp,
             json_t *obj)
{
    const char *json;
    size_t len;
    char *dumped;
    int rc = w_json_render(&w->out, tree, smtp, obj, &json, &len, &dumped);
    if (rc == 0 && (fwrite(json, 1, len, w->f) != len || fputc('\n', w->f) == EOF))
        rc = -1;
    w_json_render_done(&w->out, dumped);
    return rc;
}

static int
w_json_session(void *ctx, const struct writer_session *s)
{
    struct w_json *w = ctx;
    int rc = w_json_write(w, s->tree, s->smtp, NULL);
    if (w->flush_each && fflush(w->f) != 0)
        rc = -1;
    return rc;
}

static int
w_json_live(void *ctx, const struct writer_live *l)
{
    struct w_json *w = ctx;
    return w_json_write(w, NULL, NULL, l->obj) < 0 || fflush(w->f) != 0 ? -1 : 0;
}

static int
w_json_merged(void *ctx, int is_session, const char *json, size_t json_len, const char *text,
              size_t text_len)
{
    struct w_json *w = ctx;
    (void)is_session;
    (void)text;
    (void)text_len;
    if (fwrite(json, 1, json_len, w->f) != json_len || fputc('\n', w->f) == EOF)
        return -1;
    return w->flush_each && fflush(w->f) != 0 ? -1 : 0;
}

static int
w_json_summary(void *ctx, json_t *summary)
{
    struct w_json *w = ctx;
    int rc = w_json_write(w, NULL, NULL, summary);
    return writer_flush(w->f) != 0 ? -1 : rc;
}

const struct writer_ops w_json_ops = {
    .name = "json",
    .session = w_json_session,
    .live = w_json_live,
    .merged = w_json_merged,
    .summary = w_json_summary,
    .destroy = w_json_destroy,
};
