/* report.c - the dispatcher of the outputs: counts every session (summary figures, highest
 * severity), applies the filters, and hands what is written to each writer of its list
 * (writer.h); in a worker, renders the framed records for its parent instead. */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "filter.h"
#include "jsonx.h"
#include "mem.h"
#include "summary.h"
#include "w_json.h"
#include "w_text.h"
#include "writer.h"

/* As many as the options can ask for: NDJSON, the text stream, the pictures, and room. */
#define REPORT_MAX_WRITERS 8

struct report_writer {
    const struct writer_ops *ops;
    void *w;
};

struct report {
    struct report_writer writers[REPORT_MAX_WRITERS];
    size_t nwriters;
    FILE *framed;
    int want_json, want_text;
    int flush_each;
    int max_severity;
    struct summary *sum; /* the closing summary's figures */
    unsigned long long sessions;
    uint64_t flushed_frame;      /* framed: the progress last flushed */
    struct buf out;              /* framed: the JSON being rendered; reused */
    const struct filter *filter; /* which sessions are written; all are counted */
};

struct report *
report_create(FILE *json, FILE *text, int flush_each)
{
    struct report *r = mem_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->flush_each = flush_each;
    r->max_severity = -1;
    w_json_render_init(&r->out);
    r->sum = summary_create();
    if (!r->sum || (json && report_add_writer(r, &w_json_ops, w_json_create(json, flush_each))) ||
        (text && report_add_writer(r, &w_text_ops, w_text_create(text, flush_each)))) {
        report_destroy(r);
        return NULL;
    }
    return r;
}

struct report *
report_create_framed(FILE *out, int want_json, int want_text, int flush_each)
{
    struct report *r = report_create(NULL, NULL, flush_each);
    if (!r)
        return NULL;
    r->framed = out;
    r->want_json = want_json;
    r->want_text = want_text;
    return r;
}

int
report_add_writer(struct report *r, const struct writer_ops *ops, void *w)
{
    if (!w)
        return -1;
    if (r->nwriters == REPORT_MAX_WRITERS) {
        if (ops->destroy)
            ops->destroy(w);
        return -1;
    }
    r->writers[r->nwriters].ops = ops;
    r->writers[r->nwriters].w = w;
    r->nwriters++;
    return 0;
}

void
report_destroy(struct report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nwriters; i++)
        if (r->writers[i].ops->destroy)
            r->writers[i].ops->destroy(r->writers[i].w);
    summary_destroy(r->sum);
    buf_free(&r->out);
    mem_free(r);
}

/* The writers' ops in their order; every one is called, whichever fails. */
#define REPORT_EACH(r, op, ...)                                                                    \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (r)->nwriters; i_++) {                                            \
            const struct report_writer *w_ = &(r)->writers[i_];                                    \
            if (w_->ops->op && w_->ops->op(w_->w, __VA_ARGS__) < 0)                                \
                rc = -1;                                                                           \
        }                                                                                          \
    } while (0)

static int
report_frame_write(struct report *r, const struct report_frame *h, const char *json,
                   const char *text)
{
    if (fwrite(h, sizeof *h, 1, r->framed) != 1 ||
        (h->json_len && fwrite(json, 1, h->json_len, r->framed) != h->json_len) ||
        (h->text_len && fwrite(text, 1, h->text_len, r->framed) != h->text_len))
        return -1;
    return 0;
}

/* One record for a worker's parent: the JSON of the session (tree) or object, and what the
 * text stream's writer renders of s or l, both rendered into memory first. Flushed at once
 * in live capture. */
static int
report_frame_object(struct report *r, struct report_frame *h, const struct jt_node *tree,
                    const struct smtp_session *smtp, json_t *obj, const struct writer_session *s,
                    const struct writer_live *l)
{
    const char *json = NULL;
    char *text = NULL, *dumped = NULL;
    size_t text_len = 0, json_len = 0;
    int rc = 0;
    if (r->want_json) {
        if (w_json_render(&r->out, tree, smtp, obj, &json, &json_len, &dumped) < 0)
            return -1;
        h->json_len = (uint32_t)json_len;
    }
    if (r->want_text) {
        FILE *m = open_memstream(&text, &text_len);
        if (!m) {
            w_json_render_done(&r->out, dumped);
            return -1;
        }
        for (size_t i = 0; i < r->nwriters; i++)
            if (r->writers[i].ops->render) {
                r->writers[i].ops->render(r->writers[i].w, m, s, l);
                break;
            }
        /* A memory stream that could not grow says so only here: no half-written view. */
        if (fclose(m) != 0) {
            free(text);
            w_json_render_done(&r->out, dumped);
            return -1;
        }
        h->text_len = (uint32_t)text_len;
    }
    rc = report_frame_write(r, h, json, text);
    free(text);
    w_json_render_done(&r->out, dumped);
    if (rc == 0 && r->flush_each && fflush(r->framed) != 0)
        rc = -1;
    return rc;
}

void
report_set_filter(struct report *r, const struct filter *f)
{
    r->filter = f && filter_active(f) ? f : NULL;
}

/* A worker's progress reaches its parent at least this often (in frames), even when its
 * records are too few to fill its output buffer: the parent holds the other workers'
 * records back until it knows this one has none to put before them. */
#define REPORT_PROGRESS_FLUSH_FRAMES 16384

int
report_progress(struct report *r, uint64_t frame)
{
    if (!r->framed)
        return 0;
    struct report_frame h = {.kind = REPORT_FRAME_PROGRESS, .key = {frame, 0}};
    if (report_frame_write(r, &h, NULL, NULL) < 0)
        return -1;
    if (frame - r->flushed_frame >= REPORT_PROGRESS_FLUSH_FRAMES) {
        r->flushed_frame = frame;
        if (fflush(r->framed) != 0)
            return -1;
    }
    return 0;
}

int
report_raw(struct report *r, int is_session, const char *json, size_t json_len, const char *text,
           size_t text_len)
{
    int rc = 0;
    if (is_session)
        r->sessions++;
    REPORT_EACH(r, merged, is_session, json, json_len, text, text_len);
    return rc;
}

void
report_note_severity(struct report *r, int severity)
{
    if (severity > r->max_severity)
        r->max_severity = severity;
}

int
report_session(struct report *r, const struct jt_node *tree, const struct smtp_session *smtp,
               const uint64_t order[2], int max_severity)
{
    struct writer_session s = {.tree = tree, .smtp = smtp};
    int rc = 0;
    r->sessions++;
    if (max_severity > r->max_severity)
        r->max_severity = max_severity;
    summary_add(r->sum, tree, smtp, 0);
    if (r->filter && !filter_session(r->filter, tree))
        return 0;
    if (r->framed) {
        struct report_frame h = {.kind = REPORT_FRAME_SESSION, .key = {order[0], order[1]}};
        return report_frame_object(r, &h, tree, smtp, NULL, &s, NULL);
    }
    REPORT_EACH(r, session, &s);
    return rc;
}

int
report_summary(struct report *r, json_t *summary)
{
    if (r->framed) {
        /* The parent adds the workers' states up and sets the figures (workers.c). */
        json_t *state = summary_state(r->sum);
        if (!state || json_object_set_new(summary, SUMMARY_STATE_KEY, state) < 0)
            return -1;
        char *json = json_dumps(summary, JX_DUMP_FLAGS);
        if (!json)
            return -1;
        struct report_frame h = {.kind = REPORT_FRAME_SUMMARY,
                                 .json_len = (uint32_t)strlen(json),
                                 .max_severity = r->max_severity};
        int rc = report_frame_write(r, &h, json, NULL);
        w_json_free_dumped(json);
        if (fflush(r->framed) != 0)
            rc = -1;
        return rc;
    }
    if (summary_figures(r->sum, summary) < 0)
        return -1;
    return report_write_summary(r, summary);
}

int
report_write_summary(struct report *r, json_t *summary)
{
    int rc = 0;
    REPORT_EACH(r, summary, summary);
    return rc;
}

static json_t *
report_live_object(json_t *s, json_t *a)
{
    static const char *const flow_keys[] = {"src_ip", "src_port",     "dest_ip", "dest_port",
                                            "proto",  "community_id", NULL};
    json_t *o = json_object();
    if (!o)
        return NULL;
    jx_set(o, "type", json_string("anomaly"));
    jx_set(o, "schema", json_string("smtpsniff.anomaly/1"));
    json_object_set(o, "session", json_object_get(s, "id"));
    json_object_set(o, "time", json_object_get(s, "end"));
    for (size_t i = 0; flow_keys[i]; i++) {
        json_t *v = json_object_get(s, flow_keys[i]);
        if (v)
            json_object_set(o, flow_keys[i], v);
    }
    json_object_set(o, "anomaly", a);
    return o;
}

/* A live record to every writer, or into one framed record. */
static int
report_live(struct report *r, const struct writer_live *l)
{
    int rc = 0;
    if (r->framed) {
        struct report_frame h = {.kind = REPORT_FRAME_LIVE};
        return report_frame_object(r, &h, NULL, NULL, l->obj, NULL, l);
    }
    REPORT_EACH(r, live, l);
    return rc;
}

int
report_live_anomaly(struct report *r, const struct jt_node *session, const struct jt_node *anomaly)
{
    if (r->filter && !filter_live(r->filter, session, anomaly))
        return 0;
    /* Rare (once per anomaly per live session): read as Jansson values. */
    json_t *s = jt_to_json(session), *a = jt_to_json(anomaly);
    json_t *o = s && a ? report_live_object(s, a) : NULL;
    struct writer_live l = {.session = s, .obj = o, .anomaly = a};
    int rc = o ? report_live(r, &l) : -1;
    json_decref(o);
    json_decref(s);
    json_decref(a);
    return rc;
}

int
report_live_waiting(struct report *r, const struct jt_node *session, const char *awaiting,
                    int64_t waited_us, int64_t now_us)
{
    static const char *const flow_keys[] = {"src_ip", "src_port",     "dest_ip", "dest_port",
                                            "proto",  "community_id", NULL};
    json_t *s = jt_to_json(session);
    json_t *o = s ? json_object() : NULL;
    if (!o) {
        json_decref(s);
        return -1;
    }
    jx_set(o, "type", json_string("waiting"));
    jx_set(o, "schema", json_string("smtpsniff.waiting/1"));
    json_object_set(o, "session", json_object_get(s, "id"));
    jx_set(o, "time", jx_time(now_us));
    jx_set(o, "since", jx_time(now_us - waited_us));
    jx_set(o, "awaiting", json_string(awaiting));
    jx_set(o, "waited_ms", jx_ms(waited_us));
    for (size_t i = 0; flow_keys[i]; i++) {
        json_t *v = json_object_get(s, flow_keys[i]);
        if (v)
            json_object_set(o, flow_keys[i], v);
    }
    struct writer_live l = {
        .session = s, .obj = o, .awaiting = awaiting, .waited_s = (double)waited_us / 1e6};
    int rc = report_live(r, &l);
    json_decref(o);
    json_decref(s);
    return rc;
}

int
report_max_severity(const struct report *r)
{
    return r->max_severity;
}
