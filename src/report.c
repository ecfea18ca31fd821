/* report.c - NDJSON and text writers. The text view is rendered from the JSON object, so
 * the two can never disagree about a session. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "esc.h"
#include "html.h"
#include "filter.h"
#include "jsonx.h"
#include "lines.h"
#include "mem.h"
#include "summary.h"
#include "textview.h"

/* One report is rendered in memory and written with one fwrite. Larger ones (a transcript of
 * long lines at its cap can make megabytes) are streamed by Jansson instead: the same bytes. */
#define REPORT_MAX_RENDERED (64u << 20)
/* The render buffer is kept from one session to the next; one that grew past this for a huge
 * report is given back, so memory stays flat however long the capture. */
#define REPORT_KEEP_RENDERED (1u << 20)

struct report {
    FILE *json;
    FILE *text;
    FILE *framed;
    int want_json, want_text;
    int flush_each;
    int max_severity;
    struct summary *sum; /* the closing summary's figures */
    unsigned long long sessions;
    uint64_t flushed_frame; /* framed: the progress last flushed */
    struct buf out;         /* the report being rendered; reused */
    struct html *html;      /* --html, --svg; NULL: none */

    struct lines *lines;         /* --lines: the text stream carries lines instead of the view */
    const struct filter *filter; /* which sessions are written; all are counted */
};

#define REPORT_JSON_FLAGS JX_DUMP_FLAGS

struct report *
report_create(FILE *json, FILE *text, int flush_each)
{
    struct report *r = mem_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->json = json;
    r->text = text;
    r->flush_each = flush_each;
    r->max_severity = -1;
    buf_init(&r->out, REPORT_MAX_RENDERED);
    r->sum = summary_create();
    if (!r->sum) {
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

void
report_destroy(struct report *r)
{
    if (!r)
        return;
    summary_destroy(r->sum);
    lines_destroy(r->lines);
    buf_free(&r->out);
    mem_free(r);
}

static const char *
report_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static const char *
report_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* json_dumps' text comes from Jansson's allocator, which need not be malloc (nodecache.h). */
static void
report_free_dumped(char *p)
{
    json_free_t release = NULL;
    json_get_alloc_funcs(NULL, &release);
    if (p && release)
        release(p);
}

/* What is being written: a session (tree and SMTP model, whose transcript is written at its
 * place in the report) or a Jansson object (live anomaly, summary). */
struct report_item {
    const struct jt_node *session;
    const struct smtp_session *smtp;
    json_t *obj;
};

/* The item as one line of JSON, without the newline: rendered into r->out (*dumped NULL), or,
 * when the writers here cannot (a report past REPORT_MAX_RENDERED, nesting they leave to
 * Jansson), dumped by Jansson from the whole tree into *dumped, which the caller gives to
 * report_free_dumped. The same bytes either way. */
static int
report_render(struct report *r, const struct report_item *it, const char **json, size_t *len,
              char **dumped)
{
    int rc;
    buf_reset(&r->out);
    *dumped = NULL;
    if (it->session)
        rc = it->smtp ? smtp_dump_report(it->smtp, it->session, &r->out)
                      : jt_dump(it->session, NULL, 0, &r->out);
    else
        rc = jx_dump(it->obj, &r->out);
    if (rc == JX_DUMP_OK) {
        *json = (const char *)r->out.data;
        *len = r->out.len;
        return 0;
    }
    /* Both in the reports' key order, which json_dumps keeps. */
    json_t *o = it->session ? jt_to_json(it->session) : jx_ordered(it->obj);
    if (o && (!it->smtp || smtp_transcript_add(it->smtp, o) == 0))
        *dumped = json_dumps(o, REPORT_JSON_FLAGS);
    json_decref(o);
    if (!*dumped)
        return -1;
    *json = *dumped;
    *len = strlen(*dumped);
    return 0;
}

static void
report_render_done(struct report *r)
{
    if (r->out.alloc > REPORT_KEEP_RENDERED)
        buf_free(&r->out);
}

/* Rendered in memory, a report is one fwrite (Jansson's json_dumpf made one per token). */
static int
report_write_json(struct report *r, FILE *f, const struct report_item *it)
{
    const char *json;
    size_t len;
    char *dumped;
    int rc = report_render(r, it, &json, &len, &dumped);
    if (rc == 0 && (fwrite(json, 1, len, f) != len || fputc('\n', f) == EOF))
        rc = -1;
    report_free_dumped(dumped);
    report_render_done(r);
    return rc;
}

static const char *
report_sev_mark(const char *sev)
{
    if (!sev)
        return "?";
    if (strcmp(sev, "error") == 0)
        return "!!";
    if (strcmp(sev, "warning") == 0)
        return "! ";
    return "- ";
}

/* Every string of the text view may come from the wire (or be a rule's message quoting
 * it): written escaped (esc.h), so a peer's bytes never act on the reader's terminal. */
static void
report_put(FILE *f, const char *s, const char *dflt)
{
    esc_puts(f, s ? s : dflt);
}

/* fmt's text, then s escaped. */
static void
report_put_after(FILE *f, const char *fmt, const char *s, const char *dflt)
{
    fputs(fmt, f);
    report_put(f, s, dflt);
}

static void
report_text_endpoint(FILE *f, json_t *ep)
{
    const char *ip = report_or(report_str(ep, "ip"), "?");
    long long port = (long long)json_integer_value(json_object_get(ep, "port"));
    int v6 = strchr(ip, ':') != NULL;
    report_put_after(f, v6 ? "[" : "", ip, "?");
    fprintf(f, "%s:%lld", v6 ? "]" : "", port);
}

/* TCP events among the transcript lines: holes in the capture, the first RST (with its
 * TTL against the side's own), and at the end how the connection ended. */
#define REPORT_TCP_GAPS 16     /* as many as a report lists */
#define REPORT_TCP_BURSTS 8    /* REASM_MAX_BURSTS */
#define REPORT_TCP_CONFLICTS 4 /* REASM_MAX_CONFLICTS */
#define REPORT_TCP_EVENTS (REPORT_TCP_GAPS + 1 + 2 + REPORT_TCP_BURSTS + REPORT_TCP_CONFLICTS)

struct report_tcp_event {
    double t_ms;
    char text[160];
};

static size_t
report_tcp_events(json_t *tcp, struct report_tcp_event *ev)
{
    size_t n = 0, i;
    json_t *g;
    json_array_foreach (json_object_get(tcp, "gaps"), i, g) {
        if (n == REPORT_TCP_GAPS)
            break;
        ev[n].t_ms = json_number_value(json_object_get(g, "t_ms"));
        snprintf(ev[n].text, sizeof ev[n].text,
                 "[tcp: %lld bytes from the %s not in the capture, at offset %lld]",
                 (long long)json_integer_value(json_object_get(g, "len")),
                 report_or(report_str(g, "dir"), "?"),
                 (long long)json_integer_value(json_object_get(g, "offset")));
        n++;
    }
    json_t *rst = json_object_get(tcp, "rst");
    if (rst) {
        json_t *exp = json_object_get(rst, "expected_ttl");
        char other[48] = "";
        if (exp)
            snprintf(other, sizeof other, ", its other packets TTL %lld",
                     (long long)json_integer_value(exp));
        ev[n].t_ms = json_number_value(json_object_get(rst, "t_ms"));
        snprintf(ev[n].text, sizeof ev[n].text, "[tcp: RST from the %s, TTL %lld%s]",
                 report_or(report_str(rst, "from"), "?"),
                 (long long)json_integer_value(json_object_get(rst, "ttl")), other);
        n++;
    }
    json_array_foreach (json_object_get(tcp, "fins"), i, g) {
        if (i == 2)
            break;
        ev[n].t_ms = json_number_value(json_object_get(g, "t_ms"));
        snprintf(ev[n].text, sizeof ev[n].text, "[tcp: FIN from the %s, TTL %lld]",
                 report_or(report_str(g, "from"), "?"),
                 (long long)json_integer_value(json_object_get(g, "ttl")));
        n++;
    }
    json_array_foreach (json_object_get(tcp, "retransmission_bursts"), i, g) {
        if (i == REPORT_TCP_BURSTS)
            break;
        double t0 = json_number_value(json_object_get(g, "t_ms"));
        ev[n].t_ms = t0;
        snprintf(ev[n].text, sizeof ev[n].text,
                 "[tcp: the %s sent %lld bytes again in %lld segment(s) over %.3f ms]",
                 report_or(report_str(g, "from"), "?"),
                 (long long)json_integer_value(json_object_get(g, "bytes")),
                 (long long)json_integer_value(json_object_get(g, "segments")),
                 json_number_value(json_object_get(g, "last_ms")) - t0);
        n++;
    }
    json_array_foreach (json_object_get(tcp, "conflicts"), i, g) {
        if (i == REPORT_TCP_CONFLICTS)
            break;
        ev[n].t_ms = json_number_value(json_object_get(g, "t_ms"));
        snprintf(ev[n].text, sizeof ev[n].text,
                 "[tcp: the %s sent %lld bytes at offset %lld again with other content; the "
                 "first copy is the one shown]",
                 report_or(report_str(g, "from"), "?"),
                 (long long)json_integer_value(json_object_get(g, "len")),
                 (long long)json_integer_value(json_object_get(g, "offset")));
        n++;
    }
    /* By time, holes before an RST at the same time (stable insertion sort). */
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && ev[b - 1].t_ms > ev[b].t_ms; b--) {
            struct report_tcp_event t = ev[b];
            ev[b] = ev[b - 1];
            ev[b - 1] = t;
        }
    return n;
}

static void
report_tcp_events_until(FILE *f, const struct report_tcp_event *ev, size_t n, size_t *next,
                        double t_ms)
{
    for (; *next < n && ev[*next].t_ms <= t_ms; (*next)++) {
        tv_time(f, ev[*next].t_ms);
        fprintf(f, "--  %s\n", ev[*next].text);
    }
}

static void report_put_awaited(FILE *f, const char *awaiting);

static void
report_tcp_end(FILE *f, json_t *s, json_t *tcp)
{
    json_t *fin = json_object_get(tcp, "fin");
    int fc = json_is_true(json_object_get(fin, "client"));
    int fs = json_is_true(json_object_get(fin, "server"));
    const char *end = report_str(tcp, "end");
    if (end && strcmp(end, "capture_end") == 0) {
        /* Not an end of the session: the capture stopped while it was open. */
        json_t *ws = json_object_get(json_object_get(s, "smtp"), "waits");
        json_t *w = json_array_get(ws, json_array_size(ws) ? json_array_size(ws) - 1 : 0);
        json_t *cms = json_object_get(tcp, "capture_end_ms");
        tv_time(f, json_number_value(cms ? cms : json_object_get(s, "duration_ms")));
        fputs("--  [tcp: still open when the capture stopped", f);
        const char *until = report_str(w, "until"), *what = report_str(w, "awaiting");
        if (until && what && strcmp(until, "capture_end") == 0) {
            fprintf(f, ": waiting %.1f s for ",
                    json_number_value(json_object_get(w, "waited_ms")) / 1000.0);
            report_put_awaited(f, what);
        }
        fprintf(f, "%s%s%s]\n", fc || fs ? ", FIN from " : "",
                fc ? (fs ? "both sides" : "the client") : (fs ? "the server" : ""),
                json_is_true(json_object_get(tcp, "midstream")) ? ", mid-stream capture" : "");
        return;
    }
    tv_time(f, json_number_value(json_object_get(s, "duration_ms")));
    fprintf(f, "--  [tcp: end=%s%s%s%s]\n", report_or(end, "?"), fc || fs ? ", FIN from " : "",
            fc ? (fs ? "both sides" : "the client") : (fs ? "the server" : ""),
            json_is_true(json_object_get(tcp, "midstream")) ? ", mid-stream capture" : "");
}

/* The transcript lines of the text view: from the model, or from the tree (a session without
 * SMTP model has none), with the TCP events at their times. */
static void
report_text_transcript(FILE *f, json_t *s, const struct smtp_session *smtp)
{
    size_t i, next = 0;
    json_t *v, *tcp = json_object_get(s, "tcp");
    struct report_tcp_event ev[REPORT_TCP_EVENTS];
    size_t nev = report_tcp_events(tcp, ev);
    if (smtp) {
        struct smtp_tl_view l;
        for (i = 0; smtp_transcript_get(smtp, i, &l) == 0; i++) {
            report_tcp_events_until(f, ev, nev, &next, (double)l.t_us / 1000.0);
            tv_time(f, (double)l.t_us / 1000.0);
            fprintf(f, "%s%s: ", l.client ? "C" : "S", l.decrypted ? " (decrypted)" : "");
            if (!l.body || !tv_body_line(f, (const char *)l.p, l.n))
                esc_write(f, (const char *)l.p, l.n);
            fputc('\n', f);
        }
    } else {
        json_array_foreach (json_object_get(s, "transcript"), i, v) {
            double t = json_number_value(json_object_get(v, "t_ms"));
            const char *line = report_or(report_str(v, "line"), "");
            report_tcp_events_until(f, ev, nev, &next, t);
            tv_time(f, t);
            report_put(f, report_str(v, "dir"), "?");
            if (json_is_true(json_object_get(v, "decrypted")))
                fputs(" (decrypted)", f);
            fputs(": ", f);
            if (!json_is_true(json_object_get(v, "body")) || !tv_body_line(f, line, strlen(line)))
                report_put(f, line, "");
            fputc('\n', f);
        }
    }
    report_tcp_events_until(f, ev, nev, &next, 1e300);
    if (tcp)
        report_tcp_end(f, s, tcp);
}

static void
report_text_anomaly(FILE *f, json_t *v)
{
    fprintf(f, "  %s ", report_sev_mark(report_str(v, "severity")));
    const char *sev = report_or(report_str(v, "severity"), "?");
    report_put(f, sev, "?");
    fprintf(f, "%*s ", strlen(sev) < 7 ? (int)(7 - strlen(sev)) : 0, "");
    report_put(f, report_str(v, "id"), "?");
    report_put_after(f, ": ", report_str(v, "message"), "");
    fputc('\n', f);
}

static void
report_text_server(FILE *f, json_t *s)
{
    json_t *banner = json_object_get(s, "banner");
    json_t *sw = json_object_get(s, "server_software");
    if (!banner && !sw)
        return;
    fputs("  server: ", f);
    if (banner)
        tv_server_name(f, banner);
    else
        fputs("(no greeting)", f);
    if (sw) {
        report_put_after(f, " (", report_str(sw, "name"), "?");
        if (report_str(sw, "version"))
            report_put_after(f, " ", report_str(sw, "version"), "");
        fputc(')', f);
    } else {
        fputs(" (software not named)", f);
    }
    /* Mid-stream the handshake is not in the capture: no delay to measure the greeting by. */
    if (banner && json_object_get(banner, "delay_ms"))
        fprintf(f, "  greeting %lld after %.1f ms",
                (long long)json_integer_value(json_object_get(banner, "code")),
                json_number_value(json_object_get(banner, "delay_ms")));
    else if (banner)
        fprintf(f, "  greeting %lld",
                (long long)json_integer_value(json_object_get(banner, "code")));
    fputc('\n', f);
}

static void
report_text_auth(FILE *f, json_t *v)
{
    report_put_after(f, "  auth ", report_str(v, "mechanism"), "?");
    if (report_str(v, "user"))
        report_put_after(f, " user=", report_str(v, "user"), "");
    report_put_after(f, " ", report_str(v, "result"), "?");
    json_t *code = json_object_get(v, "code");
    if (json_is_integer(code))
        fprintf(f, " %lld", (long long)json_integer_value(code));
    fputc('\n', f);
}

static void
report_text_transaction(FILE *f, json_t *v)
{
    report_put_after(f, "  mail from=<", report_str(v, "mail_from"), "");
    fputc('>', f);
    size_t j;
    json_t *rc;
    json_array_foreach (json_object_get(v, "rcpt"), j, rc) {
        json_t *code = json_object_get(rc, "code");
        report_put_after(f, " to=<", report_str(rc, "to"), "");
        fputc('>', f);
        if (json_is_integer(code))
            fprintf(f, ":%lld", (long long)json_integer_value(code));
    }
    json_t *d = json_object_get(v, "data");
    if (d) {
        json_t *code = json_object_get(d, "code");
        const char *verb = report_or(report_str(d, "verb"), "DATA");
        report_put_after(f, " ", verb, "DATA");
        /* The size the server stores: the wire count is in the transcript's [message] line. */
        if (strcmp(verb, "BDAT") == 0)
            fprintf(f, " message %lld bytes (chunk bytes as sent) -> ",
                    (long long)json_integer_value(json_object_get(d, "bytes")));
        else
            fprintf(f,
                    " message %lld bytes (dot-unstuffed, without the end-of-data \".\" line) "
                    "-> ",
                    (long long)json_integer_value(json_object_get(d, "bytes")));
        if (json_is_integer(code)) {
            fprintf(f, "%lld ", (long long)json_integer_value(code));
            report_put(f, report_str(d, "text"), "");
        } else {
            fputs("no reply", f);
        }
    }
    fputc('\n', f);
    if (d)
        tv_message(f, d);
}

static void
report_text_session(FILE *f, json_t *s, const struct smtp_session *smtp)
{
    json_t *tcp = json_object_get(s, "tcp");
    fprintf(f, "session %lld  ", (long long)json_integer_value(json_object_get(s, "id")));
    report_put(f, report_str(s, "start"), "?");
    fputs("  ", f);
    report_text_endpoint(f, json_object_get(s, "client"));
    fputs(" -> ", f);
    report_text_endpoint(f, json_object_get(s, "server"));
    fprintf(f, "  %.1f ms  end=", json_number_value(json_object_get(s, "duration_ms")));
    report_put(f, report_str(tcp, "end"), "?");
    report_put_after(f, "  outcome=", report_str(s, "outcome"), "?");
    fprintf(f, "%s\n", json_is_true(json_object_get(s, "partial")) ? "  (partial)" : "");
    /* What the capture lacks, before anything read from it. */
    const char *one_sided = report_str(tcp, "one_sided");
    if (json_is_true(json_object_get(tcp, "midstream")))
        fputs("  capture: began mid-session (no handshake): read from the first line boundary\n",
              f);
    if (one_sided)
        fprintf(f, "  capture: one-sided: only the %s's packets\n",
                strcmp(one_sided, "client") == 0 ? "client" : "server");
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(s, "anomalies"), i, v)
        report_text_anomaly(f, v);
    report_text_server(f, s);
    json_t *helo = json_object_get(s, "helo");
    if (helo) {
        report_put_after(f, "  ", report_str(helo, "verb"), "HELO");
        report_put_after(f, " ", report_str(helo, "name"), "");
        fputc('\n', f);
    }
    tv_tls(f, s);
    json_array_foreach (json_object_get(s, "auth"), i, v)
        report_text_auth(f, v);
    json_array_foreach (json_object_get(s, "transactions"), i, v)
        report_text_transaction(f, v);
    tv_outcome(f, s);
    json_t *cmds = json_object_get(s, "commands");
    if (report_str(cmds, "postfix")) {
        /* As the server logs them, accepted/sent: the line to lay beside Postfix's log. */
        report_put_after(f, "  commands: ", report_str(cmds, "postfix"), "");
        fputs(" (accepted/sent, as Postfix logs them)\n", f);
    } else if (cmds && json_object_size(cmds) > 0) {
        const char *k;
        fputs("  commands sent:", f);
        json_object_foreach (cmds, k, v) {
            if (strcmp(k, "total") != 0 && json_is_integer(v)) {
                report_put_after(f, " ", k, "");
                fprintf(f, "=%lld", (long long)json_integer_value(v));
            }
        }
        fprintf(f, " commands=%lld\n",
                (long long)json_integer_value(json_object_get(cmds, "total")));
    }
    report_text_transcript(f, s, smtp);
    json_t *dropped = json_object_get(s, "transcript_dropped");
    if (json_integer_value(dropped) > 0)
        fprintf(f, "  ... %lld more lines not kept\n", (long long)json_integer_value(dropped));
    fputc('\n', f);
}

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

/* One record for a worker's parent: the JSON view of o and the text view that `text` writes,
 * both rendered into memory first. Flushed at once in live capture. */
static int
report_frame_object(struct report *r, struct report_frame *h, const struct report_item *it,
                    void (*text_fn)(FILE *f, void *ctx), void *ctx)
{
    const char *json = NULL;
    char *text = NULL, *dumped = NULL;
    size_t text_len = 0, json_len = 0;
    int rc = 0;
    if (r->want_json && (it->session || it->obj)) {
        if (report_render(r, it, &json, &json_len, &dumped) < 0)
            return -1;
        h->json_len = (uint32_t)json_len;
    }
    if (r->want_text) {
        FILE *m = open_memstream(&text, &text_len);
        if (!m) {
            report_free_dumped(dumped);
            return -1;
        }
        text_fn(m, ctx);
        /* A memory stream that could not grow says so only here: no half-written view. */
        if (fclose(m) != 0) {
            free(text);
            report_free_dumped(dumped);
            report_render_done(r);
            return -1;
        }
        h->text_len = (uint32_t)text_len;
    }
    rc = report_frame_write(r, h, json, text);
    report_free_dumped(dumped);
    free(text);
    report_render_done(r);
    if (rc == 0 && r->flush_each && fflush(r->framed) != 0)
        rc = -1;
    return rc;
}

/* The text view reads the report as Jansson values: it is not on the path measured for
 * speed, and reading one tree type keeps it short. */
static void
report_text_session_jt(FILE *f, const struct report_item *it)
{
    json_t *s = jt_to_json(it->session);
    if (s)
        report_text_session(f, s, it->smtp);
    json_decref(s);
}

static void
report_text_session_cb(FILE *f, void *ctx)
{
    report_text_session_jt(f, ctx);
}

/* --lines: a session's lines, and nothing for a live anomaly (a log of transactions has no
 * line for it; the NDJSON stream has it). */
struct report_lines_ctx {
    const struct lines *lines;
    const struct jt_node *session;
};

static void
report_lines_session_cb(FILE *f, void *ctx)
{
    const struct report_lines_ctx *c = ctx;
    lines_session(c->lines, f, c->session);
}

static void
report_text_none(FILE *f, void *ctx)
{
    (void)f;
    (void)ctx;
}

/* Rendered first, so that the header, written before the first line, can name its time. */
static int
report_lines_session(struct report *r, const struct jt_node *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m)
        return -1;
    lines_session(r->lines, m, s);
    int rc = fclose(m) == 0 ? lines_write(r->lines, r->text, text, len) : -1;
    free(text);
    return rc;
}

int
report_set_lines(struct report *r, enum lines_style style)
{
    lines_destroy(r->lines);
    r->lines = lines_create(style);
    return r->lines ? 0 : -1;
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
    if (is_session)
        r->sessions++;
    if (is_session && r->html && html_session_json(r->html, json, json_len) < 0)
        return -1;
    if (r->json && (fwrite(json, 1, json_len, r->json) != json_len || fputc('\n', r->json) == EOF))
        return -1;
    if (r->text && r->lines ? lines_write(r->lines, r->text, text, text_len) < 0
                            : r->text && fwrite(text, 1, text_len, r->text) != text_len)
        return -1;
    if (r->flush_each && ((r->json && fflush(r->json) != 0) || (r->text && fflush(r->text) != 0)))
        return -1;
    return 0;
}

void
report_note_severity(struct report *r, int severity)
{
    if (severity > r->max_severity)
        r->max_severity = severity;
}

void
report_set_html(struct report *r, struct html *h)
{
    r->html = h;
}

/* The picture is drawn from the whole report as Jansson values, transcript included. */
static int
report_html_session(struct report *r, const struct jt_node *s, const struct smtp_session *smtp)
{
    json_t *o = jt_to_json(s);
    int rc = o && (!smtp || smtp_transcript_add(smtp, o) == 0) ? html_session(r->html, o) : -1;
    json_decref(o);
    return rc;
}

int
report_session(struct report *r, const struct jt_node *s, const struct smtp_session *smtp,
               const uint64_t order[2], int max_severity)
{
    struct report_item it = {.session = s, .smtp = smtp};
    r->sessions++;
    if (max_severity > r->max_severity)
        r->max_severity = max_severity;
    summary_add(r->sum, s, smtp, 0);
    int rc = 0;
    if (r->filter && !filter_session(r->filter, s))
        return 0;
    if (r->html && report_html_session(r, s, smtp) < 0)
        return -1;
    if (r->framed) {
        struct report_frame h = {.kind = REPORT_FRAME_SESSION, .key = {order[0], order[1]}};
        struct report_lines_ctx lc = {.lines = r->lines, .session = s};
        return report_frame_object(r, &h, &it,
                                   r->lines ? report_lines_session_cb : report_text_session_cb,
                                   r->lines ? (void *)&lc : (void *)&it);
    }
    if (r->json && report_write_json(r, r->json, &it) < 0)
        rc = -1;
    if (r->text && r->lines) {
        if (report_lines_session(r, s) < 0)
            rc = -1;
    } else if (r->text) {
        report_text_session_jt(r->text, &it);
        if (ferror(r->text))
            rc = -1;
    }
    if (r->flush_each) {
        if (r->json && fflush(r->json) != 0)
            rc = -1;
        if (r->text && fflush(r->text) != 0)
            rc = -1;
    }
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
        char *json = json_dumps(summary, REPORT_JSON_FLAGS);
        if (!json)
            return -1;
        struct report_frame h = {.kind = REPORT_FRAME_SUMMARY,
                                 .json_len = (uint32_t)strlen(json),
                                 .max_severity = r->max_severity};
        int rc = report_frame_write(r, &h, json, NULL);
        report_free_dumped(json);
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
    struct report_item it = {.obj = summary};
    if (r->json && report_write_json(r, r->json, &it) < 0)
        rc = -1;
    if (r->text && r->lines && lines_end(r->lines, r->text, summary) < 0)
        rc = -1;
    /* A TSV log holds its records only; aligned lines are followed by the summary. */
    if (r->text && (!r->lines || lines_style(r->lines) != LINES_TSV))
        summary_text(r->text, summary);
    if (r->html && html_end(r->html, summary) < 0)
        rc = -1;
    if (r->json && fflush(r->json) != 0)
        rc = -1;
    if (r->text && fflush(r->text) != 0)
        rc = -1;
    if ((r->json && ferror(r->json)) || (r->text && ferror(r->text))) {
        if (!errno)
            errno = EIO;
        rc = -1;
    }
    return rc;
}

struct report_live {
    json_t *session, *anomaly;
};

static void
report_text_live(FILE *f, void *ctx)
{
    const struct report_live *l = ctx;
    const char *sev = report_str(l->anomaly, "severity");
    fprintf(f, "%s live: session %lld ", report_sev_mark(sev),
            (long long)json_integer_value(json_object_get(l->session, "id")));
    report_text_endpoint(f, json_object_get(l->session, "client"));
    fputs(" -> ", f);
    report_text_endpoint(f, json_object_get(l->session, "server"));
    report_put_after(f, ": ", sev, "?");
    report_put_after(f, " ", report_str(l->anomaly, "id"), "?");
    report_put_after(f, ": ", report_str(l->anomaly, "message"), "");
    fputc('\n', f);
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

int
report_live_anomaly(struct report *r, const struct jt_node *session, const struct jt_node *anomaly)
{
    /* Rare (once per anomaly per live session): read as Jansson values. */
    json_t *s = jt_to_json(session), *a = jt_to_json(anomaly);
    struct report_live l = {.session = s, .anomaly = a};
    struct report_item it = {0};
    int rc = 0;
    json_t *o = NULL;
    if (r->filter && !filter_live(r->filter, session, anomaly))
        goto out;
    if (!s || !a) {
        rc = -1;
        goto out;
    }
    if (r->json || (r->framed && r->want_json)) {
        o = report_live_object(s, a);
        if (!o) {
            rc = -1;
            goto out;
        }
        it.obj = o;
    }
    if (r->framed) {
        struct report_frame h = {.kind = REPORT_FRAME_LIVE};
        rc = report_frame_object(r, &h, &it, r->lines ? report_text_none : report_text_live, &l);
    } else {
        if (o && (report_write_json(r, r->json, &it) < 0 || fflush(r->json) != 0))
            rc = -1;
        if (r->text && !r->lines) {
            report_text_live(r->text, &l);
            if (fflush(r->text) != 0)
                rc = -1;
        }
    }
out:
    json_decref(o);
    json_decref(s);
    json_decref(a);
    return rc;
}

struct report_waiting {
    json_t *session;
    const char *awaiting;
    double waited_s;
};

/* "the reply to EHLO", "the greeting", "the reply to end-of-data" */
static void
report_put_awaited(FILE *f, const char *awaiting)
{
    if (strcmp(awaiting, "greeting") == 0)
        fputs("the greeting", f);
    else
        fprintf(f, "the reply to %s", awaiting);
}

static void
report_text_waiting(FILE *f, void *ctx)
{
    const struct report_waiting *w = ctx;
    fprintf(f, "~  live: session %lld ",
            (long long)json_integer_value(json_object_get(w->session, "id")));
    report_text_endpoint(f, json_object_get(w->session, "client"));
    fputs(" -> ", f);
    report_text_endpoint(f, json_object_get(w->session, "server"));
    fprintf(f, ": waiting %.0f s for ", w->waited_s);
    report_put_awaited(f, w->awaiting);
    fputs(" from ", f);
    report_text_endpoint(f, json_object_get(w->session, "server"));
    fputc('\n', f);
}

int
report_live_waiting(struct report *r, const struct jt_node *session, const char *awaiting,
                    int64_t waited_us, int64_t now_us)
{
    static const char *const flow_keys[] = {"src_ip", "src_port",     "dest_ip", "dest_port",
                                            "proto",  "community_id", NULL};
    json_t *s = jt_to_json(session);
    struct report_waiting w = {
        .session = s, .awaiting = awaiting, .waited_s = (double)waited_us / 1e6};
    struct report_item it = {0};
    int rc = 0;
    json_t *o = NULL;
    if (!s)
        return -1;
    if (r->json || (r->framed && r->want_json)) {
        o = json_object();
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
        it.obj = o;
    }
    if (r->framed) {
        struct report_frame h = {.kind = REPORT_FRAME_LIVE};
        /* A lines log holds transaction records only: the wait is in the NDJSON. */
        rc = report_frame_object(r, &h, &it, r->lines ? report_text_none : report_text_waiting, &w);
    } else {
        if (o && (report_write_json(r, r->json, &it) < 0 || fflush(r->json) != 0))
            rc = -1;
        if (r->text && !r->lines) {
            report_text_waiting(r->text, &w);
            if (fflush(r->text) != 0)
                rc = -1;
        }
    }
    json_decref(o);
    json_decref(s);
    return rc;
}

int
report_max_severity(const struct report *r)
{
    return r->max_severity;
}
