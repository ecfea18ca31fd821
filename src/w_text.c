/* w_text.c - the text view writer (w_text.h). It reads the report as Jansson values: it is
 * not on the path measured for speed, and reading one tree type keeps it short. */
#include "w_text.h"

#include <errno.h>
#include <string.h>

#include "esc.h"
#include "jtree.h"
#include "mem.h"
#include "smtp.h"
#include "summary.h"
#include "textview.h"

struct w_text {
    FILE *f;
    int flush_each;
};

static const char *
wt_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static const char *
wt_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *
wt_sev_mark(const char *sev)
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
wt_put(FILE *f, const char *s, const char *dflt)
{
    esc_puts(f, s ? s : dflt);
}

/* fmt's text, then s escaped. */
static void
wt_put_after(FILE *f, const char *fmt, const char *s, const char *dflt)
{
    fputs(fmt, f);
    wt_put(f, s, dflt);
}

static void
wt_text_endpoint(FILE *f, json_t *ep)
{
    const char *ip = wt_or(wt_str(ep, "ip"), "?");
    long long port = (long long)json_integer_value(json_object_get(ep, "port"));
    int v6 = strchr(ip, ':') != NULL;
    wt_put_after(f, v6 ? "[" : "", ip, "?");
    fprintf(f, "%s:%lld", v6 ? "]" : "", port);
}

/* TCP events among the transcript lines: holes in the capture, the first RST (with its
 * TTL against the side's own), and at the end how the connection ended. */
#define REPORT_TCP_GAPS 16     /* as many as a report lists */
#define REPORT_TCP_BURSTS 8    /* REASM_MAX_BURSTS */
#define REPORT_TCP_CONFLICTS 4 /* REASM_MAX_CONFLICTS */
#define REPORT_TCP_EVENTS (REPORT_TCP_GAPS + 1 + 2 + REPORT_TCP_BURSTS + REPORT_TCP_CONFLICTS)

struct wt_tcp_event {
    double t_ms;
    char text[160];
};

static size_t
wt_tcp_events(json_t *tcp, struct wt_tcp_event *ev)
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
                 wt_or(wt_str(g, "dir"), "?"),
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
                 wt_or(wt_str(rst, "from"), "?"),
                 (long long)json_integer_value(json_object_get(rst, "ttl")), other);
        n++;
    }
    json_array_foreach (json_object_get(tcp, "fins"), i, g) {
        if (i == 2)
            break;
        ev[n].t_ms = json_number_value(json_object_get(g, "t_ms"));
        snprintf(ev[n].text, sizeof ev[n].text, "[tcp: FIN from the %s, TTL %lld]",
                 wt_or(wt_str(g, "from"), "?"),
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
                 wt_or(wt_str(g, "from"), "?"),
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
                 wt_or(wt_str(g, "from"), "?"),
                 (long long)json_integer_value(json_object_get(g, "len")),
                 (long long)json_integer_value(json_object_get(g, "offset")));
        n++;
    }
    /* By time, holes before an RST at the same time (stable insertion sort). */
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && ev[b - 1].t_ms > ev[b].t_ms; b--) {
            struct wt_tcp_event t = ev[b];
            ev[b] = ev[b - 1];
            ev[b - 1] = t;
        }
    return n;
}

static void
wt_tcp_events_until(FILE *f, const struct wt_tcp_event *ev, size_t n, size_t *next, double t_ms)
{
    for (; *next < n && ev[*next].t_ms <= t_ms; (*next)++) {
        tv_time(f, ev[*next].t_ms);
        fprintf(f, "--  %s\n", ev[*next].text);
    }
}

static void wt_put_awaited(FILE *f, const char *awaiting);

static void
wt_tcp_end(FILE *f, json_t *s, json_t *tcp)
{
    json_t *fin = json_object_get(tcp, "fin");
    int fc = json_is_true(json_object_get(fin, "client"));
    int fs = json_is_true(json_object_get(fin, "server"));
    const char *end = wt_str(tcp, "end");
    if (end && strcmp(end, "capture_end") == 0) {
        /* Not an end of the session: the capture stopped while it was open. */
        json_t *ws = json_object_get(json_object_get(s, "smtp"), "waits");
        json_t *w = json_array_get(ws, json_array_size(ws) ? json_array_size(ws) - 1 : 0);
        json_t *cms = json_object_get(tcp, "capture_end_ms");
        tv_time(f, json_number_value(cms ? cms : json_object_get(s, "duration_ms")));
        fputs("--  [tcp: still open when the capture stopped", f);
        const char *until = wt_str(w, "until"), *what = wt_str(w, "awaiting");
        if (until && what && strcmp(until, "capture_end") == 0) {
            fprintf(f, ": waiting %.1f s for ",
                    json_number_value(json_object_get(w, "waited_ms")) / 1000.0);
            wt_put_awaited(f, what);
        }
        fprintf(f, "%s%s%s]\n", fc || fs ? ", FIN from " : "",
                fc ? (fs ? "both sides" : "the client") : (fs ? "the server" : ""),
                json_is_true(json_object_get(tcp, "midstream")) ? ", mid-stream capture" : "");
        return;
    }
    tv_time(f, json_number_value(json_object_get(s, "duration_ms")));
    fprintf(f, "--  [tcp: end=%s%s%s%s]\n", wt_or(end, "?"), fc || fs ? ", FIN from " : "",
            fc ? (fs ? "both sides" : "the client") : (fs ? "the server" : ""),
            json_is_true(json_object_get(tcp, "midstream")) ? ", mid-stream capture" : "");
}

/* The transcript lines of the text view: from the model, or from the tree (a session without
 * SMTP model has none), with the TCP events at their times. */
static void
wt_text_transcript(FILE *f, json_t *s, const struct smtp_session *smtp)
{
    size_t i, next = 0;
    json_t *v, *tcp = json_object_get(s, "tcp");
    struct wt_tcp_event ev[REPORT_TCP_EVENTS];
    size_t nev = wt_tcp_events(tcp, ev);
    if (smtp) {
        struct smtp_tl_view l;
        for (i = 0; smtp_transcript_get(smtp, i, &l) == 0; i++) {
            wt_tcp_events_until(f, ev, nev, &next, (double)l.t_us / 1000.0);
            tv_time(f, (double)l.t_us / 1000.0);
            fprintf(f, "%s%s: ", l.client ? "C" : "S", l.decrypted ? " (decrypted)" : "");
            if (!l.body || !tv_body_line(f, (const char *)l.p, l.n))
                esc_write(f, (const char *)l.p, l.n);
            fputc('\n', f);
        }
    } else {
        json_array_foreach (json_object_get(s, "transcript"), i, v) {
            double t = json_number_value(json_object_get(v, "t_ms"));
            const char *line = wt_or(wt_str(v, "line"), "");
            wt_tcp_events_until(f, ev, nev, &next, t);
            tv_time(f, t);
            wt_put(f, wt_str(v, "dir"), "?");
            if (json_is_true(json_object_get(v, "decrypted")))
                fputs(" (decrypted)", f);
            fputs(": ", f);
            if (!json_is_true(json_object_get(v, "body")) || !tv_body_line(f, line, strlen(line)))
                wt_put(f, line, "");
            fputc('\n', f);
        }
    }
    wt_tcp_events_until(f, ev, nev, &next, 1e300);
    if (tcp)
        wt_tcp_end(f, s, tcp);
}

static void
wt_text_anomaly(FILE *f, json_t *v)
{
    fprintf(f, "  %s ", wt_sev_mark(wt_str(v, "severity")));
    const char *sev = wt_or(wt_str(v, "severity"), "?");
    wt_put(f, sev, "?");
    fprintf(f, "%*s ", strlen(sev) < 7 ? (int)(7 - strlen(sev)) : 0, "");
    wt_put(f, wt_str(v, "id"), "?");
    wt_put_after(f, ": ", wt_str(v, "message"), "");
    fputc('\n', f);
}

static void
wt_text_server(FILE *f, json_t *s)
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
        wt_put_after(f, " (", wt_str(sw, "name"), "?");
        if (wt_str(sw, "version"))
            wt_put_after(f, " ", wt_str(sw, "version"), "");
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
wt_text_auth(FILE *f, json_t *v)
{
    wt_put_after(f, "  auth ", wt_str(v, "mechanism"), "?");
    if (wt_str(v, "user"))
        wt_put_after(f, " user=", wt_str(v, "user"), "");
    wt_put_after(f, " ", wt_str(v, "result"), "?");
    json_t *code = json_object_get(v, "code");
    if (json_is_integer(code))
        fprintf(f, " %lld", (long long)json_integer_value(code));
    fputc('\n', f);
}

static void
wt_text_transaction(FILE *f, json_t *v)
{
    wt_put_after(f, "  mail from=<", wt_str(v, "mail_from"), "");
    fputc('>', f);
    size_t j;
    json_t *rc;
    json_array_foreach (json_object_get(v, "rcpt"), j, rc) {
        json_t *code = json_object_get(rc, "code");
        wt_put_after(f, " to=<", wt_str(rc, "to"), "");
        fputc('>', f);
        if (json_is_integer(code))
            fprintf(f, ":%lld", (long long)json_integer_value(code));
    }
    json_t *d = json_object_get(v, "data");
    if (d) {
        json_t *code = json_object_get(d, "code");
        const char *verb = wt_or(wt_str(d, "verb"), "DATA");
        wt_put_after(f, " ", verb, "DATA");
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
            wt_put(f, wt_str(d, "text"), "");
        } else {
            fputs("no reply", f);
        }
    }
    fputc('\n', f);
    if (d)
        tv_message(f, d);
}

static void
wt_text_session(FILE *f, json_t *s, const struct smtp_session *smtp)
{
    json_t *tcp = json_object_get(s, "tcp");
    fprintf(f, "session %lld  ", (long long)json_integer_value(json_object_get(s, "id")));
    wt_put(f, wt_str(s, "start"), "?");
    fputs("  ", f);
    wt_text_endpoint(f, json_object_get(s, "client"));
    fputs(" -> ", f);
    wt_text_endpoint(f, json_object_get(s, "server"));
    fprintf(f, "  %.1f ms  end=", json_number_value(json_object_get(s, "duration_ms")));
    wt_put(f, wt_str(tcp, "end"), "?");
    wt_put_after(f, "  outcome=", wt_str(s, "outcome"), "?");
    fprintf(f, "%s\n", json_is_true(json_object_get(s, "partial")) ? "  (partial)" : "");
    /* What the capture lacks, before anything read from it. */
    const char *one_sided = wt_str(tcp, "one_sided");
    if (json_is_true(json_object_get(tcp, "midstream")))
        fputs("  capture: began mid-session (no handshake): read from the first line boundary\n",
              f);
    if (one_sided)
        fprintf(f, "  capture: one-sided: only the %s's packets\n",
                strcmp(one_sided, "client") == 0 ? "client" : "server");
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(s, "anomalies"), i, v)
        wt_text_anomaly(f, v);
    wt_text_server(f, s);
    json_t *helo = json_object_get(s, "helo");
    if (helo) {
        wt_put_after(f, "  ", wt_str(helo, "verb"), "HELO");
        wt_put_after(f, " ", wt_str(helo, "name"), "");
        fputc('\n', f);
    }
    tv_tls(f, s);
    json_array_foreach (json_object_get(s, "auth"), i, v)
        wt_text_auth(f, v);
    json_array_foreach (json_object_get(s, "transactions"), i, v)
        wt_text_transaction(f, v);
    tv_outcome(f, s);
    json_t *cmds = json_object_get(s, "commands");
    if (wt_str(cmds, "postfix")) {
        /* As the server logs them, accepted/sent: the line to lay beside Postfix's log. */
        wt_put_after(f, "  commands: ", wt_str(cmds, "postfix"), "");
        fputs(" (accepted/sent, as Postfix logs them)\n", f);
    } else if (cmds && json_object_size(cmds) > 0) {
        const char *k;
        fputs("  commands sent:", f);
        json_object_foreach (cmds, k, v) {
            if (strcmp(k, "total") != 0 && json_is_integer(v)) {
                wt_put_after(f, " ", k, "");
                fprintf(f, "=%lld", (long long)json_integer_value(v));
            }
        }
        fprintf(f, " commands=%lld\n",
                (long long)json_integer_value(json_object_get(cmds, "total")));
    }
    wt_text_transcript(f, s, smtp);
    json_t *dropped = json_object_get(s, "transcript_dropped");
    if (json_integer_value(dropped) > 0)
        fprintf(f, "  ... %lld more lines not kept\n", (long long)json_integer_value(dropped));
    fputc('\n', f);
}

static void
wt_text_live(FILE *f, const struct writer_live *l)
{
    const char *sev = wt_str(l->anomaly, "severity");
    fprintf(f, "%s live: session %lld ", wt_sev_mark(sev),
            (long long)json_integer_value(json_object_get(l->session, "id")));
    wt_text_endpoint(f, json_object_get(l->session, "client"));
    fputs(" -> ", f);
    wt_text_endpoint(f, json_object_get(l->session, "server"));
    wt_put_after(f, ": ", sev, "?");
    wt_put_after(f, " ", wt_str(l->anomaly, "id"), "?");
    wt_put_after(f, ": ", wt_str(l->anomaly, "message"), "");
    fputc('\n', f);
}

/* "the reply to EHLO", "the greeting", "the reply to end-of-data" */
static void
wt_put_awaited(FILE *f, const char *awaiting)
{
    if (strcmp(awaiting, "greeting") == 0)
        fputs("the greeting", f);
    else
        fprintf(f, "the reply to %s", awaiting);
}

static void
wt_text_waiting(FILE *f, const struct writer_live *w)
{
    fprintf(f, "~  live: session %lld ",
            (long long)json_integer_value(json_object_get(w->session, "id")));
    wt_text_endpoint(f, json_object_get(w->session, "client"));
    fputs(" -> ", f);
    wt_text_endpoint(f, json_object_get(w->session, "server"));
    fprintf(f, ": waiting %.0f s for ", w->waited_s);
    wt_put_awaited(f, w->awaiting);
    fputs(" from ", f);
    wt_text_endpoint(f, json_object_get(w->session, "server"));
    fputc('\n', f);
}

static void
wt_render(void *ctx, FILE *f, const struct writer_session *s, const struct writer_live *l)
{
    (void)ctx;
    if (s) {
        json_t *o = jt_to_json(s->tree);
        if (o)
            wt_text_session(f, o, s->smtp);
        json_decref(o);
    } else if (l->anomaly) {
        wt_text_live(f, l);
    } else {
        wt_text_waiting(f, l);
    }
}

void *
w_text_create(FILE *f, int flush_each)
{
    struct w_text *w = mem_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->f = f;
    w->flush_each = flush_each;
    return w;
}

static void
wt_destroy(void *ctx)
{
    mem_free(ctx);
}

static int
wt_session(void *ctx, const struct writer_session *s)
{
    struct w_text *w = ctx;
    wt_render(w, w->f, s, NULL);
    int rc = ferror(w->f) ? -1 : 0;
    if (w->flush_each && fflush(w->f) != 0)
        rc = -1;
    return rc;
}

static int
wt_live(void *ctx, const struct writer_live *l)
{
    struct w_text *w = ctx;
    wt_render(w, w->f, NULL, l);
    return fflush(w->f) != 0 ? -1 : 0;
}

static int
wt_merged(void *ctx, int is_session, const char *json, size_t json_len, const char *text,
          size_t text_len)
{
    struct w_text *w = ctx;
    (void)is_session;
    (void)json;
    (void)json_len;
    if (fwrite(text, 1, text_len, w->f) != text_len)
        return -1;
    return w->flush_each && fflush(w->f) != 0 ? -1 : 0;
}

static int
wt_summary(void *ctx, json_t *summary)
{
    struct w_text *w = ctx;
    summary_text(w->f, summary);
    return writer_flush(w->f);
}

const struct writer_ops w_text_ops = {
    .name = "text",
    .session = wt_session,
    .live = wt_live,
    .merged = wt_merged,
    .summary = wt_summary,
    .destroy = wt_destroy,
    .render = wt_render,
};
