/* summary.c - the closing summary's figures, their mergeable state and their text view (see
 * summary.h). The counts are kept as Jansson objects (the state a worker sends is then a copy
 * of them, and merging is adding); only the delay values are C arrays. */
#include "summary.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"
#include "jsonx.h"
#include "mem.h"

/* Servers tallied one by one; beyond this they share one entry, so memory stays bounded. */
#define SUM_MAX_SERVERS 1000
/* Delays kept as values per server and kind; past this many the values go into a fixed
 * histogram (SUM_HIST_*), whose percentiles are within 1/16 of the true ones. Which of the
 * two a server ends with depends on its count alone, never on how the sessions were split
 * between workers, so --workers gives the same figures. */
#define SUM_EXACT_VALUES 1024
/* Histogram of microseconds: 0..15 exact, then 16 buckets per power of two. */
#define SUM_HIST_SUB 16
#define SUM_HIST_BUCKETS (SUM_HIST_SUB + 59 * SUM_HIST_SUB)
/* Distinct refusal replies, AUTH users and messages tracked; the rest is counted. */
#define SUM_MAX_REASONS 1000
#define SUM_MAX_USERS 1000
#define SUM_MAX_MESSAGES 65536
/* Session ids kept per message: the smallest (so merging keeps the same ones). */
#define SUM_REFS 16
/* Messages in several sessions listed in the summary, the most seen first. */
#define SUM_LIST_DUPLICATES 1000
/* Bytes kept of a Message-ID, user name or reply text. */
#define SUM_TEXT_MAX 512
/* Message keys of one session compared with each other. */
#define SUM_SESSION_KEYS 8

struct sum_vals {
    uint64_t n;
    int64_t max;
    int64_t *v; /* exact values while n <= SUM_EXACT_VALUES */
    uint32_t nv, alloc;
    uint32_t *hist; /* else */
};

struct sum_server {
    struct sum_vals banner, reply;
};

struct summary {
    json_t *st;        /* counts, the layout of summary_state less "values" */
    json_t *srv_index; /* server key -> index in srv */
    struct sum_server *srv;
    size_t nsrv, asrv;
    const char *const *sensors;
    size_t nsensors;
};

/* ---- counts ---- */

static json_t *
sum_obj(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        v = json_object();
        if (!v || json_object_set_new(o, key, v) < 0)
            return NULL;
    }
    return v;
}

static void
sum_add_int(json_t *counts, const char *key, json_int_t by)
{
    if (!counts || !key)
        return;
    json_t *v = json_object_get(counts, key);
    if (v)
        json_integer_set(v, json_integer_value(v) + by);
    else
        json_object_set_new(counts, key, json_integer(by));
}

static void
sum_count(json_t *counts, const char *key)
{
    sum_add_int(counts, key, 1);
}

/* A string of the record as a key or text: cut to SUM_TEXT_MAX bytes at a character
 * boundary, a NUL byte written \x00 as the reports write other bytes (Jansson keys and our
 * text view want NUL-terminated strings). */
static const char *
sum_text(const struct jt_val *v, char *out, size_t outlen)
{
    const char *s = jt_str(v);
    if (!s)
        return NULL;
    size_t n = v->len, o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\0') {
            if (o + 4 >= outlen)
                break;
            memcpy(out + o, "\\x00", 4);
            o += 4;
        } else {
            if (o + 1 >= outlen) {
                while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80)
                    o--; /* out[o] would have been a continuation byte */
                break;
            }
            out[o++] = s[i];
        }
    }
    /* Never end inside a multi-byte character. */
    size_t k = o;
    while (k > 0 && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
        k--;
    if (k > 0 && ((unsigned char)out[k - 1] & 0x80)) {
        unsigned char lead = (unsigned char)out[k - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (o - (k - 1) < need)
            o = k - 1;
    }
    out[o] = '\0';
    return out;
}

/* ---- delay values ---- */

static unsigned
sum_bucket(int64_t us)
{
    if (us < SUM_HIST_SUB)
        return (unsigned)us;
    unsigned e = 63 - (unsigned)__builtin_clzll((unsigned long long)us); /* >= 4 */
    unsigned m = (unsigned)((unsigned long long)us >> (e - 4)) & (SUM_HIST_SUB - 1);
    unsigned b = SUM_HIST_SUB + (e - 4) * SUM_HIST_SUB + m;
    return b < SUM_HIST_BUCKETS ? b : SUM_HIST_BUCKETS - 1;
}

/* The largest value a bucket holds. */
static int64_t
sum_bucket_top(unsigned b)
{
    if (b < SUM_HIST_SUB)
        return (int64_t)b;
    unsigned e = (b - SUM_HIST_SUB) / SUM_HIST_SUB + 4, m = (b - SUM_HIST_SUB) % SUM_HIST_SUB;
    return (int64_t)((((unsigned long long)SUM_HIST_SUB + m + 1) << (e - 4)) - 1);
}

static int
sum_vals_to_hist(struct sum_vals *v)
{
    if (v->hist)
        return 0;
    v->hist = mem_calloc(SUM_HIST_BUCKETS, sizeof *v->hist);
    if (!v->hist)
        return -1;
    for (uint32_t i = 0; i < v->nv; i++)
        v->hist[sum_bucket(v->v[i])]++;
    mem_free(v->v);
    v->v = NULL;
    v->nv = v->alloc = 0;
    return 0;
}

static void
sum_vals_add(struct sum_vals *v, int64_t us)
{
    if (us < 0)
        us = 0;
    if (!v->hist && v->nv == SUM_EXACT_VALUES && sum_vals_to_hist(v) < 0)
        return;
    if (v->hist) {
        v->hist[sum_bucket(us)]++;
    } else {
        if (v->nv == v->alloc) {
            uint32_t na = v->alloc ? v->alloc * 2 : 16;
            int64_t *p = mem_realloc(v->v, na * sizeof *p);
            if (!p)
                return;
            v->v = p;
            v->alloc = na;
        }
        v->v[v->nv++] = us;
    }
    v->n++;
    if (us > v->max)
        v->max = us;
}

static void
sum_vals_free(struct sum_vals *v)
{
    mem_free(v->v);
    mem_free(v->hist);
}

static int
sum_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile: the value at rank ceil(n * pct / 100) in sorted order. */
static int64_t
sum_pct(const struct sum_vals *v, const int64_t *sorted, unsigned pct)
{
    uint64_t rank = (v->n * pct + 99) / 100;
    if (rank == 0)
        rank = 1;
    if (!v->hist)
        return sorted[rank - 1];
    uint64_t c = 0;
    for (unsigned b = 0; b < SUM_HIST_BUCKETS; b++) {
        c += v->hist[b];
        if (c >= rank) {
            int64_t top = sum_bucket_top(b);
            return top < v->max ? top : v->max;
        }
    }
    return v->max;
}

static json_t *
sum_vals_figures(const struct sum_vals *v)
{
    int64_t *sorted = NULL;
    if (!v->hist) {
        sorted = mem_alloc(v->nv * sizeof *sorted);
        if (!sorted)
            return NULL;
        memcpy(sorted, v->v, v->nv * sizeof *sorted);
        qsort(sorted, v->nv, sizeof *sorted, sum_cmp_i64);
    }
    json_t *o = json_object();
    jx_set(o, "count", json_integer((json_int_t)v->n));
    jx_set(o, "p50", jx_ms(sum_pct(v, sorted, 50)));
    jx_set(o, "p95", jx_ms(sum_pct(v, sorted, 95)));
    jx_set(o, "max", jx_ms(v->max));
    jx_set(o, "exact", json_boolean(!v->hist));
    mem_free(sorted);
    return o;
}

static json_t *
sum_vals_state(const struct sum_vals *v)
{
    json_t *o = json_object(), *a = json_array();
    jx_set(o, "n", json_integer((json_int_t)v->n));
    jx_set(o, "max", json_integer((json_int_t)v->max));
    if (v->hist) {
        for (unsigned b = 0; b < SUM_HIST_BUCKETS; b++)
            if (v->hist[b])
                json_array_append_new(a, json_pack("[i,i]", (int)b, (json_int_t)v->hist[b]));
        jx_set(o, "hist", a);
    } else {
        for (uint32_t i = 0; i < v->nv; i++)
            json_array_append_new(a, json_integer((json_int_t)v->v[i]));
        jx_set(o, "values", a);
    }
    return o;
}

/* Adds a state's values: exact while the sum of both counts stays within the cap. */
static int
sum_vals_merge(struct sum_vals *v, const json_t *o)
{
    if (!o)
        return 0;
    const json_t *vals = json_object_get(o, "values"), *hist = json_object_get(o, "hist");
    json_int_t n = json_integer_value(json_object_get(o, "n"));
    json_int_t max = json_integer_value(json_object_get(o, "max"));
    size_t i;
    json_t *e;
    if (n < 0 || max < 0)
        return -1;
    if (vals && !v->hist && v->n + (uint64_t)n <= SUM_EXACT_VALUES) {
        json_array_foreach (vals, i, e)
            sum_vals_add(v, json_integer_value(e));
        return 0;
    }
    if (sum_vals_to_hist(v) < 0)
        return -1;
    if (vals) {
        json_array_foreach (vals, i, e)
            v->hist[sum_bucket(json_integer_value(e))]++;
    } else {
        json_array_foreach (hist, i, e) {
            json_int_t b = json_integer_value(json_array_get(e, 0));
            if (b < 0 || b >= SUM_HIST_BUCKETS)
                return -1;
            v->hist[b] += (uint32_t)json_integer_value(json_array_get(e, 1));
        }
    }
    v->n += (uint64_t)n;
    if (max > v->max)
        v->max = max;
    return 0;
}

/* ---- building ---- */

struct summary *
summary_create(void)
{
    struct summary *s = mem_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->st = json_pack("{s:i,s:{},s:{},s:{},s:{},s:{s:i,s:i,s:i,s:i},s:{s:i,s:{},s:i},"
                      "s:{s:i,s:{},s:i},s:{},s:i}",
                      "sessions", 0, "anomalies", "outcomes", "tcp_ends", "servers", "messages",
                      "delivered", 0, "rejected", 0, "deferred", 0, "cut", 0, "recipients_refused",
                      "total", 0, "reasons", "reasons_dropped", 0, "auth", "attempts", 0, "users",
                      "users_dropped", 0, "seen", "messages_untracked", 0);
    s->srv_index = json_object();
    if (!s->st || !s->srv_index) {
        summary_destroy(s);
        return NULL;
    }
    return s;
}

void
summary_destroy(struct summary *s)
{
    if (!s)
        return;
    json_decref(s->st);
    json_decref(s->srv_index);
    for (size_t i = 0; i < s->nsrv; i++) {
        sum_vals_free(&s->srv[i].banner);
        sum_vals_free(&s->srv[i].reply);
    }
    mem_free(s->srv);
    mem_free(s);
}

void
summary_set_sensors(struct summary *s, size_t n, const char *const *names)
{
    s->sensors = names;
    s->nsensors = n;
}

static struct sum_server *
sum_server_values(struct summary *s, const char *key)
{
    json_t *ix = json_object_get(s->srv_index, key);
    if (ix)
        return &s->srv[json_integer_value(ix)];
    if (s->nsrv == s->asrv) {
        size_t na = s->asrv ? s->asrv * 2 : 8;
        struct sum_server *p = mem_realloc(s->srv, na * sizeof *p);
        if (!p)
            return NULL;
        s->srv = p;
        s->asrv = na;
    }
    if (json_object_set_new(s->srv_index, key, json_integer((json_int_t)s->nsrv)) < 0)
        return NULL;
    memset(&s->srv[s->nsrv], 0, sizeof s->srv[s->nsrv]);
    return &s->srv[s->nsrv++];
}

/* The server's entry, "ip:port" or "[ip]:port"; "other" past SUM_MAX_SERVERS. */
static json_t *
sum_server(struct summary *s, const struct jt_node *session, char *key, size_t keylen)
{
    const struct jt_node *srv = jt_obj(jt_get(session, "server"));
    char ipbuf[64];
    const char *ip = sum_text(jt_get(srv, "ip"), ipbuf, sizeof ipbuf);
    long long port = (long long)jt_int(jt_get(srv, "port"), 0);
    if (!ip)
        return NULL;
    if (strchr(ip, ':'))
        snprintf(key, keylen, "[%s]:%lld", ip, port);
    else
        snprintf(key, keylen, "%s:%lld", ip, port);
    json_t *servers = json_object_get(s->st, "servers");
    json_t *e = json_object_get(servers, key);
    if (!e) {
        if (json_object_size(servers) >= SUM_MAX_SERVERS)
            snprintf(key, keylen, "other");
        e = json_object_get(servers, key);
        if (!e) {
            e = json_pack("{s:i,s:{},s:{},s:i}", "sessions", 0, "outcomes", "anomalies",
                          "syn_unanswered", 0);
            if (!e || json_object_set_new(servers, key, e) < 0)
                return NULL;
        }
    }
    return e;
}

/* To the nearest integer, halves away from zero (libm is not linked for one call). */
static int64_t
sum_round(double x)
{
    return x < 0 ? -(int64_t)(-x + 0.5) : (int64_t)(x + 0.5);
}

/* Milliseconds of the record as microseconds: exact for the tree's own (JT_MS), rounded for
 * reals read back from a report (written with 3 decimals). */
static int
sum_us(const struct jt_val *v, int64_t *us)
{
    if (!v)
        return 0;
    if (v->type == JT_MS) {
        *us = v->u.i;
        return 1;
    }
    if (v->type != JT_INT && v->type != JT_REAL)
        return 0;
    *us = sum_round(jt_num(v, 0) * 1000.0);
    return 1;
}

static void
sum_server_add(struct summary *s, const struct jt_node *session, const struct smtp_session *smtp)
{
    char key[96];
    json_t *e = sum_server(s, session, key, sizeof key);
    if (!e)
        return;
    sum_count(e, "sessions");
    sum_count(json_object_get(e, "outcomes"), jt_str(jt_get(session, "outcome")));
    const char *end = jt_str(jt_get(jt_obj(jt_get(session, "tcp")), "end"));
    if (end && strcmp(end, "syn_unanswered") == 0)
        sum_count(e, "syn_unanswered");
    /* Each anomaly counted once per session, so "N of M sessions" reads right. */
    const struct jt_node *an = jt_arr(jt_get(session, "anomalies"));
    for (size_t i = 0; i < jt_size(an); i++) {
        const char *id = jt_str(jt_get(jt_obj(jt_at(an, i)), "id"));
        size_t k = 0;
        while (id && k < i) {
            const char *prev = jt_str(jt_get(jt_obj(jt_at(an, k)), "id"));
            if (prev && strcmp(prev, id) == 0)
                break;
            k++;
        }
        if (id && k == i)
            sum_count(json_object_get(e, "anomalies"), id);
    }
    struct sum_server *sv = sum_server_values(s, key);
    if (!sv)
        return;
    int64_t us;
    if (sum_us(jt_get(jt_obj(jt_get(session, "banner")), "delay_ms"), &us))
        sum_vals_add(&sv->banner, us);
    /* Reply latency: each reply's first line, since its command (the transcript's
     * latency_ms), as far as the transcript was kept. */
    if (smtp) {
        struct smtp_tl_view l;
        for (size_t i = 0; smtp_transcript_get(smtp, i, &l) == 0; i++)
            if (l.latency_us >= 0)
                sum_vals_add(&sv->reply, l.latency_us);
    } else {
        const struct jt_node *tr = jt_arr(jt_get(session, "transcript"));
        for (size_t i = 0; i < jt_size(tr); i++)
            if (sum_us(jt_get(jt_obj(jt_at(tr, i)), "latency_ms"), &us))
                sum_vals_add(&sv->reply, us);
    }
}

/* "550 5.1.1", "550" without an enhanced code; NULL when code is not a reply code. */
static const char *
sum_reply_key(const struct jt_node *o, const char *code_key, const char *enh_key, char *out,
              size_t outlen)
{
    int64_t code = jt_int(jt_get(o, code_key), -1);
    char enh[32];
    if (code < 100 || code > 999)
        return NULL;
    if (sum_text(jt_get(o, enh_key), enh, sizeof enh) && enh[0] && !strchr(enh, ' '))
        snprintf(out, outlen, "%lld %s", (long long)code, enh);
    else
        snprintf(out, outlen, "%lld", (long long)code);
    return out;
}

static void
sum_refusal(json_t *rr, const struct jt_node *rcpt)
{
    char key[48], text[SUM_TEXT_MAX];
    int64_t code = jt_int(jt_get(rcpt, "code"), 0);
    if (code < 400 || !sum_reply_key(rcpt, "code", "enhanced", key, sizeof key))
        return;
    sum_count(rr, "total");
    json_t *reasons = json_object_get(rr, "reasons");
    json_t *e = json_object_get(reasons, key);
    if (!e) {
        if (json_object_size(reasons) >= SUM_MAX_REASONS) {
            sum_count(rr, "reasons_dropped");
            return;
        }
        e = json_pack("{s:i}", "count", 0);
        if (!e || json_object_set_new(reasons, key, e) < 0)
            return;
    }
    sum_count(e, "count");
    /* One text per reply code, the same whatever the order: the smallest. */
    const char *t = sum_text(jt_get(rcpt, "text"), text, sizeof text);
    const char *have = json_string_value(json_object_get(e, "text"));
    if (t && (!have || strcmp(t, have) < 0))
        json_object_set_new(e, "text", json_string(t));
}

static void
sum_auth(json_t *auth, const struct jt_node *a)
{
    char user[SUM_TEXT_MAX], key[48];
    /* The user as the session report gives it (never a password or AUTH data). */
    const char *u = sum_text(jt_get(a, "user"), user, sizeof user);
    sum_count(auth, "attempts");
    json_t *e;
    if (!u) {
        e = sum_obj(auth, "no_user");
    } else {
        json_t *users = json_object_get(auth, "users");
        e = json_object_get(users, u);
        if (!e) {
            if (json_object_size(users) >= SUM_MAX_USERS) {
                sum_count(auth, "users_dropped");
                return;
            }
            e = json_object();
            if (!e || json_object_set_new(users, u, e) < 0)
                return;
        }
    }
    sum_count(e, "attempts");
    sum_count(sum_obj(e, "results"), jt_str(jt_get(a, "result")));
    if (sum_reply_key(a, "code", "enhanced", key, sizeof key))
        sum_count(sum_obj(e, "replies"), key);
}

/* Keeps the SUM_REFS smallest references, ascending. */
static void
sum_ref_insert(json_t *refs, json_int_t r)
{
    size_t n = json_array_size(refs), i = n;
    while (i > 0 && json_integer_value(json_array_get(refs, i - 1)) > r)
        i--;
    if (i > 0 && json_integer_value(json_array_get(refs, i - 1)) == r)
        return;
    if (n == SUM_REFS) {
        if (i == n)
            return;
        json_array_remove(refs, n - 1);
    }
    json_array_insert_new(refs, i, json_integer(r));
}

/* Adds `sessions` sightings of a message with their references (an array, or one integer).
 * A message seen once is kept as its reference alone: most are, and an object per message
 * made the table four times larger. */
static void
sum_seen_add(json_t *st, const char *key, json_int_t sessions, const json_t *refs)
{
    json_t *tracked = json_object_get(st, "seen");
    json_t *e = json_object_get(tracked, key);
    if (!e) {
        if (json_object_size(tracked) >= SUM_MAX_MESSAGES) {
            sum_add_int(st, "messages_untracked", sessions);
            return;
        }
        if (sessions == 1 && json_is_integer(refs)) {
            json_object_set_new(tracked, key, json_integer(json_integer_value(refs)));
            return;
        }
        e = json_pack("{s:i,s:[]}", "sessions", 0, "refs");
        if (!e || json_object_set_new(tracked, key, e) < 0)
            return;
    } else if (json_is_integer(e)) {
        e = json_pack("{s:i,s:[I]}", "sessions", 1, "refs", json_integer_value(e));
        if (!e || json_object_set_new(tracked, key, e) < 0)
            return;
    }
    sum_add_int(e, "sessions", sessions);
    json_t *kept = json_object_get(e, "refs");
    if (json_is_integer(refs)) {
        sum_ref_insert(kept, json_integer_value(refs));
    } else {
        size_t i;
        json_t *r;
        json_array_foreach (refs, i, r)
            sum_ref_insert(kept, json_integer_value(r));
    }
}

/* The messages of one session, each counted once for it. */
static void
sum_messages(struct summary *s, const struct jt_node *session, unsigned sensor)
{
    const struct jt_node *tx = jt_arr(jt_get(session, "transactions"));
    char seen[SUM_SESSION_KEYS][SUM_TEXT_MAX + 16];
    size_t nseen = 0;
    json_int_t ref = (json_int_t)(((uint64_t)jt_int(jt_get(session, "id"), 0) << 8) | sensor);
    for (size_t i = 0; i < jt_size(tx); i++) {
        const struct jt_node *data = jt_obj(jt_get(jt_obj(jt_at(tx, i)), "data"));
        char text[SUM_TEXT_MAX];
        char key[SUM_TEXT_MAX + 16];
        const char *mid =
            sum_text(jt_get(jt_obj(jt_get(data, "headers")), "message_id"), text, sizeof text);
        if (mid && mid[0]) {
            snprintf(key, sizeof key, "message_id %s", mid);
        } else if ((mid = sum_text(jt_get(data, "sha256"), text, sizeof text)) && mid[0]) {
            snprintf(key, sizeof key, "sha256 %s", mid);
        } else {
            continue;
        }
        size_t k = 0;
        while (k < nseen && strcmp(seen[k], key) != 0)
            k++;
        if (k < nseen)
            continue;
        /* The first few of this session's keys are kept for the comparison; a session with
         * more is compared against those only (a later repeat counts again). */
        if (nseen < SUM_SESSION_KEYS)
            memcpy(seen[nseen++], key, sizeof key);
        json_t *r = json_integer(ref);
        sum_seen_add(s->st, key, 1, r);
        json_decref(r);
    }
}

void
summary_add(struct summary *s, const struct jt_node *session, const struct smtp_session *smtp,
            unsigned sensor)
{
    json_t *st = s->st;
    sum_count(st, "sessions");
    const struct jt_node *an = jt_arr(jt_get(session, "anomalies"));
    for (size_t i = 0; i < jt_size(an); i++)
        sum_count(json_object_get(st, "anomalies"), jt_str(jt_get(jt_obj(jt_at(an, i)), "id")));
    sum_count(json_object_get(st, "outcomes"), jt_str(jt_get(session, "outcome")));
    sum_count(json_object_get(st, "tcp_ends"),
              jt_str(jt_get(jt_obj(jt_get(session, "tcp")), "end")));
    sum_server_add(s, session, smtp);
    /* Transactions by outcome, as the session's own "messages" counts them. */
    const struct jt_node *m = jt_obj(jt_get(session, "messages"));
    json_t *mo = json_object_get(st, "messages");
    sum_add_int(mo, "delivered", jt_int(jt_get(m, "delivered"), 0));
    sum_add_int(mo, "rejected", jt_int(jt_get(m, "rejected"), 0));
    sum_add_int(mo, "deferred", jt_int(jt_get(m, "deferred"), 0));
    sum_add_int(mo, "cut", jt_int(jt_get(m, "incomplete"), 0));
    const struct jt_node *tx = jt_arr(jt_get(session, "transactions"));
    json_t *rr = json_object_get(st, "recipients_refused");
    for (size_t i = 0; i < jt_size(tx); i++) {
        const struct jt_node *rcpt = jt_arr(jt_get(jt_obj(jt_at(tx, i)), "rcpt"));
        for (size_t k = 0; k < jt_size(rcpt); k++)
            sum_refusal(rr, jt_obj(jt_at(rcpt, k)));
    }
    const struct jt_node *auth = jt_arr(jt_get(session, "auth"));
    for (size_t i = 0; i < jt_size(auth); i++)
        sum_auth(json_object_get(st, "auth"), jt_obj(jt_at(auth, i)));
    sum_messages(s, session, sensor);
}

/* ---- state and merge ---- */

json_t *
summary_state(const struct summary *s)
{
    json_t *o = json_deep_copy(s->st), *vals = json_object();
    const char *k;
    json_t *ix;
    if (!o || !vals) {
        json_decref(o);
        json_decref(vals);
        return NULL;
    }
    json_object_foreach (s->srv_index, k, ix) {
        const struct sum_server *sv = &s->srv[json_integer_value(ix)];
        json_object_set_new(vals, k,
                            json_pack("{s:o,s:o}", "banner", sum_vals_state(&sv->banner), "reply",
                                      sum_vals_state(&sv->reply)));
    }
    jx_set(o, "values", vals);
    return o;
}

/* Adds src into dst: integers summed, objects merged key by key, a reply text kept the
 * smallest, the session references kept the smallest SUM_REFS. */
static void
sum_merge(json_t *dst, const json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)src, k, v) {
        json_t *d = json_object_get(dst, k);
        if (!d) {
            json_object_set_new(dst, k, json_deep_copy(v));
        } else if (json_is_integer(v) && json_is_integer(d)) {
            json_integer_set(d, json_integer_value(d) + json_integer_value(v));
        } else if (json_is_object(v) && json_is_object(d)) {
            sum_merge(d, v);
        } else if (json_is_string(v) && json_is_string(d)) {
            if (strcmp(json_string_value(v), json_string_value(d)) < 0)
                json_object_set(dst, k, v);
        } else if (json_is_array(v) && json_is_array(d) && strcmp(k, "refs") == 0) {
            size_t i;
            json_t *e;
            json_array_foreach (v, i, e)
                sum_ref_insert(d, json_integer_value(e));
        }
    }
}

int
summary_merge_state(struct summary *s, const json_t *state)
{
    if (!json_is_object(state))
        return -1;
    const char *k;
    json_t *v;
    json_object_foreach (json_object_get(state, "seen"), k, v) {
        if (json_is_integer(v))
            sum_seen_add(s->st, k, 1, v);
        else
            sum_seen_add(s->st, k, json_integer_value(json_object_get(v, "sessions")),
                         json_object_get(v, "refs"));
    }
    json_object_foreach ((json_t *)state, k, v) {
        if (strcmp(k, "values") == 0 || strcmp(k, "seen") == 0)
            continue;
        json_t *d = json_object_get(s->st, k);
        if (!d)
            json_object_set_new(s->st, k, json_deep_copy(v));
        else if (json_is_integer(d) && json_is_integer(v))
            json_integer_set(d, json_integer_value(d) + json_integer_value(v));
        else if (json_is_object(d) && json_is_object(v))
            sum_merge(d, v);
    }
    int rc = 0;
    json_object_foreach (json_object_get(state, "values"), k, v) {
        struct sum_server *sv = sum_server_values(s, k);
        if (!sv || sum_vals_merge(&sv->banner, json_object_get(v, "banner")) < 0 ||
            sum_vals_merge(&sv->reply, json_object_get(v, "reply")) < 0)
            rc = -1;
    }
    return rc;
}

/* ---- figures ---- */

static json_t *
sum_ref_json(const struct summary *s, json_int_t ref)
{
    long long id = (long long)((uint64_t)ref >> 8);
    size_t sensor = (size_t)(ref & 0xff);
    if (s->nsensors <= 1 || sensor >= s->nsensors)
        return json_integer((json_int_t)id);
    char buf[64];
    snprintf(buf, sizeof buf, "#%lld", id);
    size_t n = strlen(s->sensors[sensor]);
    char *t = mem_alloc(n + strlen(buf) + 1);
    if (!t)
        return NULL;
    snprintf(t, n + strlen(buf) + 1, "%s%s", s->sensors[sensor], buf);
    json_t *j = jx_str(t);
    mem_free(t);
    return j;
}

struct sum_dup {
    const char *key;
    json_int_t sessions;
    json_t *e;
};

static int
sum_cmp_dup(const void *a, const void *b)
{
    const struct sum_dup *x = a, *y = b;
    if (x->sessions != y->sessions)
        return x->sessions > y->sessions ? -1 : 1;
    return strcmp(x->key, y->key);
}

static json_t *
sum_duplicates(const struct summary *s, json_int_t *dropped)
{
    json_t *tracked = json_object_get(s->st, "seen"), *out = json_array(), *e;
    size_t n = 0;
    const char *k;
    *dropped = 0;
    json_object_foreach (tracked, k, e)
        n += json_integer_value(json_object_get(e, "sessions")) >= 2;
    struct sum_dup *d = n ? mem_calloc(n, sizeof *d) : NULL;
    if (n && !d) {
        json_decref(out);
        return NULL;
    }
    size_t i = 0;
    json_object_foreach (tracked, k, e) {
        json_int_t c = json_integer_value(json_object_get(e, "sessions"));
        if (c >= 2)
            d[i++] = (struct sum_dup){.key = k, .sessions = c, .e = e};
    }
    if (n)
        qsort(d, n, sizeof *d, sum_cmp_dup);
    for (i = 0; i < n; i++) {
        if (i == SUM_LIST_DUPLICATES) {
            *dropped = (json_int_t)(n - i);
            break;
        }
        const char *sp = strchr(d[i].key, ' ');
        json_t *o = json_object(), *ids = json_array();
        char kind[16];
        size_t kl = sp ? (size_t)(sp - d[i].key) : 0;
        if (!sp || kl >= sizeof kind)
            continue;
        memcpy(kind, d[i].key, kl);
        kind[kl] = 0;
        json_object_set_new(o, kind, json_string(sp + 1));
        jx_set(o, "sessions", json_integer(d[i].sessions));
        size_t j;
        json_t *r;
        json_array_foreach (json_object_get(d[i].e, "refs"), j, r)
            json_array_append_new(ids, sum_ref_json(s, json_integer_value(r)));
        jx_set(o, "ids", ids);
        json_array_append_new(out, o);
    }
    mem_free(d);
    return out;
}

struct sum_reason {
    const char *key;
    json_int_t count;
    json_t *e;
};

static int
sum_cmp_reason(const void *a, const void *b)
{
    const struct sum_reason *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

static json_t *
sum_refused(const json_t *rr)
{
    json_t *reasons = json_object_get(rr, "reasons"), *arr = json_array(), *e;
    size_t n = json_object_size(reasons), i = 0;
    const char *k;
    struct sum_reason *r = n ? mem_calloc(n, sizeof *r) : NULL;
    if (n && !r) {
        json_decref(arr);
        return NULL;
    }
    json_object_foreach (reasons, k, e)
        r[i++] = (struct sum_reason){
            .key = k, .count = json_integer_value(json_object_get(e, "count")), .e = e};
    if (n)
        qsort(r, n, sizeof *r, sum_cmp_reason);
    for (i = 0; i < n; i++) {
        const char *sp = strchr(r[i].key, ' ');
        json_t *o = json_object();
        jx_set(o, "code", json_integer(strtol(r[i].key, NULL, 10)));
        if (sp)
            jx_set(o, "enhanced", json_string(sp + 1));
        jx_set(o, "count", json_integer(r[i].count));
        json_t *t = json_object_get(r[i].e, "text");
        if (t)
            json_object_set(o, "text", t);
        json_array_append_new(arr, o);
    }
    mem_free(r);
    json_t *o = json_object();
    json_object_set(o, "total", json_object_get(rr, "total"));
    json_object_set(o, "reasons_dropped", json_object_get(rr, "reasons_dropped"));
    jx_set(o, "reasons", arr);
    return o;
}

int
summary_figures(const struct summary *s, json_t *summary)
{
    static const char *const copied[] = {"sessions", "anomalies", "outcomes", "tcp_ends",
                                         "messages", "auth",      NULL};
    for (size_t i = 0; copied[i]; i++)
        jx_set(summary, copied[i], json_deep_copy(json_object_get(s->st, copied[i])));
    json_t *servers = json_deep_copy(json_object_get(s->st, "servers"));
    if (!servers)
        return -1;
    const char *k;
    json_t *e;
    json_object_foreach (servers, k, e) {
        json_int_t n = json_integer_value(json_object_get(e, "sessions"));
        json_int_t syn = json_integer_value(json_object_get(e, "syn_unanswered"));
        /* Three decimals, as the reports write milliseconds. */
        jx_set(e, "syn_unanswered_share",
               json_real(n ? (double)sum_round((double)syn * 1000.0 / (double)n) / 1000.0 : 0.0));
        json_t *ix = json_object_get(s->srv_index, k);
        if (!ix)
            continue;
        const struct sum_server *sv = &s->srv[json_integer_value(ix)];
        if (sv->banner.n)
            jx_set(e, "banner_delay_ms", sum_vals_figures(&sv->banner));
        if (sv->reply.n)
            jx_set(e, "reply_ms", sum_vals_figures(&sv->reply));
    }
    jx_set(summary, "servers", servers);
    jx_set(summary, "recipients_refused",
           sum_refused(json_object_get(s->st, "recipients_refused")));
    json_int_t dropped;
    json_t *dups = sum_duplicates(s, &dropped);
    if (!dups)
        return -1;
    jx_set(summary, "duplicate_messages", dups);
    jx_set(summary, "duplicate_messages_dropped", json_integer(dropped));
    json_object_set(summary, "messages_untracked", json_object_get(s->st, "messages_untracked"));
    return 0;
}

/* ---- text view ---- */

static int
sum_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj in byte order (the text view must not depend on how an object was built:
 * workers' summaries are merged ones). Caller frees; NULL when empty or without memory. */
static const char **
sum_sorted_keys(json_t *obj, size_t *n, int (*cmp)(const void *, const void *))
{
    size_t nk = json_object_size(obj), i = 0;
    *n = 0;
    const char **keys = nk ? mem_calloc(nk, sizeof *keys) : NULL;
    if (!keys)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach (obj, k, v)
        keys[i++] = k;
    qsort(keys, nk, sizeof *keys, cmp);
    *n = nk;
    return keys;
}

/* A server key as numbers: family (IPv4 first), address bytes, port; 0 when it is none
 * ("other"). */
static int
sum_parse_server(const char *key, int *v6, unsigned char addr[16], long *port)
{
    char ip[64];
    const char *colon;
    if (key[0] == '[') {
        const char *close = strchr(key, ']');
        if (!close || close[1] != ':' || (size_t)(close - key - 1) >= sizeof ip)
            return 0;
        memcpy(ip, key + 1, (size_t)(close - key - 1));
        ip[close - key - 1] = 0;
        colon = close + 1;
        *v6 = 1;
    } else {
        colon = strrchr(key, ':');
        if (!colon || (size_t)(colon - key) >= sizeof ip)
            return 0;
        memcpy(ip, key, (size_t)(colon - key));
        ip[colon - key] = 0;
        *v6 = 0;
    }
    memset(addr, 0, 16);
    if (inet_pton(*v6 ? AF_INET6 : AF_INET, ip, addr) != 1)
        return 0;
    *port = strtol(colon + 1, NULL, 10);
    return 1;
}

static int
sum_cmp_server(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    int xv6, yv6;
    unsigned char xa[16], ya[16];
    long xp, yp;
    int xok = sum_parse_server(x, &xv6, xa, &xp), yok = sum_parse_server(y, &yv6, ya, &yp);
    if (xok != yok)
        return xok ? -1 : 1; /* "other" last */
    if (!xok)
        return strcmp(x, y);
    if (xv6 != yv6)
        return xv6 - yv6;
    int c = memcmp(xa, ya, xv6 ? 16 : 4);
    if (c)
        return c;
    return (xp > yp) - (xp < yp);
}

static long long
sum_int(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static void
sum_put(FILE *f, const char *s)
{
    esc_puts(f, s ? s : "");
}

/* Writes "<sep>key<eq>count" for each key of obj, in key order. */
static void
sum_text_counts(FILE *f, const char *sep, const char *eq, json_t *obj)
{
    size_t nk;
    const char **keys = sum_sorted_keys(obj, &nk, sum_cmp_str);
    for (size_t i = 0; i < nk; i++) {
        fputs(sep, f);
        sum_put(f, keys[i]);
        fprintf(f, "%s%lld", eq, sum_int(obj, keys[i]));
    }
    mem_free(keys);
}

static void
sum_text_delays(FILE *f, const char *what, json_t *p, const char *unit)
{
    if (!p)
        return;
    fprintf(f, "  %s: p50 %.3f ms, p95 %.3f ms, max %.3f ms (%lld %s%s)\n", what,
            json_number_value(json_object_get(p, "p50")),
            json_number_value(json_object_get(p, "p95")),
            json_number_value(json_object_get(p, "max")), sum_int(p, "count"), unit,
            json_is_true(json_object_get(p, "exact")) ? "" : ", from a histogram: within 1/16");
}

/* One block per server, sorted by address. */
static void
sum_text_servers(FILE *f, json_t *servers)
{
    size_t nk;
    const char **keys = sum_sorted_keys(servers, &nk, sum_cmp_server);
    for (size_t i = 0; i < nk; i++) {
        json_t *e = json_object_get(servers, keys[i]);
        long long n = sum_int(e, "sessions");
        fputs("server ", f);
        sum_put(f, keys[i]);
        fprintf(f, ": %lld session(s)", n);
        sum_text_counts(f, ", ", " ", json_object_get(e, "outcomes"));
        fputc('\n', f);
        sum_text_delays(f, "banner delay", json_object_get(e, "banner_delay_ms"), "banners");
        sum_text_delays(f, "reply latency", json_object_get(e, "reply_ms"), "replies");
        long long syn = sum_int(e, "syn_unanswered");
        if (syn)
            fprintf(f, "  unanswered handshakes: %lld of %lld (%.1f%%)\n", syn, n,
                    n ? 100.0 * (double)syn / (double)n : 0.0);
        json_t *an = json_object_get(e, "anomalies");
        size_t na;
        const char **ids = sum_sorted_keys(an, &na, sum_cmp_str);
        for (size_t j = 0; j < na; j++) {
            fprintf(f, "  %lld of %lld sessions to ", sum_int(an, ids[j]), n);
            sum_put(f, keys[i]);
            fputs(": ", f);
            sum_put(f, ids[j]);
            fputc('\n', f);
        }
        mem_free(ids);
    }
    mem_free(keys);
}

static void
sum_text_refused(FILE *f, json_t *rr)
{
    if (!rr || sum_int(rr, "total") == 0)
        return;
    fprintf(f, "recipients refused: %lld\n", sum_int(rr, "total"));
    size_t i;
    json_t *r;
    json_array_foreach (json_object_get(rr, "reasons"), i, r) {
        fprintf(f, "  %lld", sum_int(r, "code"));
        if (json_object_get(r, "enhanced")) {
            fputc(' ', f);
            sum_put(f, json_string_value(json_object_get(r, "enhanced")));
        }
        fprintf(f, ": %lld", sum_int(r, "count"));
        if (json_object_get(r, "text")) {
            fputs(" (", f);
            sum_put(f, json_string_value(json_object_get(r, "text")));
            fputc(')', f);
        }
        fputc('\n', f);
    }
    if (sum_int(rr, "reasons_dropped"))
        fprintf(f, "  other replies: %lld\n", sum_int(rr, "reasons_dropped"));
}

static void
sum_text_user(FILE *f, const char *name, json_t *u)
{
    fputs("  ", f);
    if (name) {
        fputs("user ", f);
        sum_put(f, name);
    } else {
        fputs("no user", f);
    }
    fprintf(f, ": %lld attempt(s)", sum_int(u, "attempts"));
    sum_text_counts(f, ", ", " ", json_object_get(u, "results"));
    json_t *rep = json_object_get(u, "replies");
    size_t n;
    const char **keys = sum_sorted_keys(rep, &n, sum_cmp_str);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "; replies ", f);
        sum_put(f, keys[i]);
        fprintf(f, " (%lld)", sum_int(rep, keys[i]));
    }
    mem_free(keys);
    fputc('\n', f);
}

static void
sum_text_auth(FILE *f, json_t *auth)
{
    if (!auth || sum_int(auth, "attempts") == 0)
        return;
    fprintf(f, "auth: %lld attempt(s)\n", sum_int(auth, "attempts"));
    json_t *users = json_object_get(auth, "users");
    size_t n;
    const char **keys = sum_sorted_keys(users, &n, sum_cmp_str);
    for (size_t i = 0; i < n; i++)
        sum_text_user(f, keys[i], json_object_get(users, keys[i]));
    mem_free(keys);
    if (json_object_get(auth, "no_user"))
        sum_text_user(f, NULL, json_object_get(auth, "no_user"));
    if (sum_int(auth, "users_dropped"))
        fprintf(f, "  attempts of other users: %lld\n", sum_int(auth, "users_dropped"));
}

static void
sum_text_id(FILE *f, json_t *id)
{
    if (json_is_integer(id))
        fprintf(f, "%lld", (long long)json_integer_value(id));
    else
        sum_put(f, json_string_value(id));
}

static void
sum_text_duplicates(FILE *f, json_t *summary)
{
    json_t *dups = json_object_get(summary, "duplicate_messages");
    if (json_array_size(dups) == 0)
        return;
    fputs("same message in several sessions:\n", f);
    size_t i, j;
    json_t *d, *id;
    json_array_foreach (dups, i, d) {
        json_t *mid = json_object_get(d, "message_id");
        fputs(mid ? "  Message-ID " : "  body sha256 ", f);
        sum_put(f, json_string_value(mid ? mid : json_object_get(d, "sha256")));
        fprintf(f, ": %lld sessions:", sum_int(d, "sessions"));
        json_array_foreach (json_object_get(d, "ids"), j, id) {
            fputs(j ? ", " : " ", f);
            sum_text_id(f, id);
        }
        if ((long long)json_array_size(json_object_get(d, "ids")) < sum_int(d, "sessions"))
            fputs(", ...", f);
        fputc('\n', f);
    }
    if (sum_int(summary, "duplicate_messages_dropped"))
        fprintf(f, "  %lld more not listed\n", sum_int(summary, "duplicate_messages_dropped"));
}

/* summarize: the inputs and the sessions several of them saw. */
static void
sum_text_inputs(FILE *f, json_t *summary)
{
    size_t i, j;
    json_t *in, *v;
    json_t *inputs = json_object_get(summary, "inputs");
    if (!inputs)
        return;
    fputs("inputs:\n", f);
    json_array_foreach (inputs, i, in) {
        fputs("  ", f);
        sum_put(f, json_string_value(json_object_get(in, "name")));
        fprintf(f, ": %lld session(s), %lld seen by an input before, %lld bad line(s)\n",
                sum_int(in, "sessions"), sum_int(in, "joined"), sum_int(in, "bad_lines"));
    }
    json_t *joined = json_object_get(summary, "joined");
    if (sum_int(summary, "joined_sessions") == 0)
        return;
    fprintf(f, "seen by several inputs, counted once: %lld session(s)\n",
            sum_int(summary, "joined_sessions"));
    json_array_foreach (joined, i, v) {
        fputs("  ", f);
        sum_put(f, json_string_value(json_object_get(v, "community_id")));
        fputs(" ", f);
        sum_put(f, json_string_value(json_object_get(v, "start")));
        fputs(":", f);
        json_t *id;
        json_array_foreach (json_object_get(v, "ids"), j, id) {
            fputs(j ? ", " : " ", f);
            sum_text_id(f, id);
        }
        fputc('\n', f);
    }
    if ((long long)json_array_size(joined) < sum_int(summary, "joined_sessions"))
        fprintf(f, "  %lld more not listed\n",
                sum_int(summary, "joined_sessions") - (long long)json_array_size(joined));
}

void
summary_text(FILE *f, json_t *summary)
{
    fprintf(f, "summary: %lld session(s)", sum_int(summary, "sessions"));
    sum_text_counts(f, ", ", " ", json_object_get(summary, "outcomes"));
    fputc('\n', f);
    sum_text_inputs(f, summary);
    json_t *m = json_object_get(summary, "messages");
    if (m)
        fprintf(f, "messages: %lld delivered, %lld rejected, %lld deferred, %lld cut\n",
                sum_int(m, "delivered"), sum_int(m, "rejected"), sum_int(m, "deferred"),
                sum_int(m, "cut"));
    json_t *anomalies = json_object_get(summary, "anomalies");
    if (json_object_size(anomalies) > 0) {
        fputs("anomalies:", f);
        sum_text_counts(f, " ", "=", anomalies);
        fputc('\n', f);
    }
    sum_text_refused(f, json_object_get(summary, "recipients_refused"));
    sum_text_auth(f, json_object_get(summary, "auth"));
    sum_text_duplicates(f, summary);
    sum_text_servers(f, json_object_get(summary, "servers"));
    /* The capture's own counters, under their own heading: they are totals, not the last
     * server's. */
    static const char *const figures[] = {"sessions", "duplicate_messages_dropped",
                                          "joined_sessions", NULL};
    size_t nk;
    int head = 0;
    const char **keys = sum_sorted_keys(summary, &nk, sum_cmp_str);
    for (size_t i = 0; i < nk; i++) {
        json_t *v = json_object_get(summary, keys[i]);
        size_t k = 0;
        while (figures[k] && strcmp(figures[k], keys[i]) != 0)
            k++;
        if (figures[k] || !((json_is_integer(v) && json_integer_value(v) != 0) || json_is_true(v)))
            continue;
        if (!head++)
            fputs("totals:\n", f);
        fputs("  ", f);
        sum_put(f, keys[i]);
        if (json_is_true(v))
            fputs(": yes\n", f);
        else
            fprintf(f, ": %lld\n", (long long)json_integer_value(v));
    }
    mem_free(keys);
}
