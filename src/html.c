/* html.c - the --html page and the --svg files (html.h). Off the hot path: each session's
 * report is read as Jansson values once, only when one of the two was asked for. */
#include "html.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem.h"
#include "svg.h"

/* Sessions with anomalies, and the others: each group has its index and its details. */
enum { HTML_ANOMALOUS, HTML_OTHER, HTML_GROUPS };

/* Reply latencies of one server; the median is that of the first HTML_SRV_KEEP replies. */
#define HTML_SRV_KEEP 1024
struct html_srv {
    char key[80];
    unsigned long long n;
    double sum, max;
    double *lat;
    size_t nlat, alat;
};

struct html {
    FILE *out;
    int svg_fd;
    const char *svg_dir;
    char *title;
    FILE *details[HTML_GROUPS], *index[HTML_GROUPS]; /* temporary files, composed at the end */
    unsigned long long sessions[HTML_GROUPS], ndetails[HTML_GROUPS], nindex[HTML_GROUPS];
    struct html_srv *srv;
    size_t nsrv;
    unsigned long long svg_failed;
};

static const char html_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 1.5em 2em;"
    "color:#222;background:#fafafa}"
    "header{border-bottom:2px solid #1f5fa8;margin-bottom:1em}h1{font-size:1.4em;margin:.6em 0 "
    ".2em}"
    "h2{font-size:1.15em;margin:1.2em 0 .4em;border-bottom:1px solid #ddd}"
    ".muted{color:#666}.figs{display:flex;flex-wrap:wrap;gap:2em}"
    "table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;text-align:left;"
    "vertical-align:top;border-bottom:1px solid #eee}th{background:#f0f0f0}"
    "td.n{text-align:right}"
    ".badge{display:inline-block;padding:0 6px;margin:0 2px;border-radius:8px;font-size:.85em;"
    "font-family:ui-monospace,monospace}"
    ".sev-error{background:#ffcdd2}.sev-warning{background:#ffe0b2}"
    ".sev-notice{background:#fff9c4}.sev-info{background:#e3f2fd}"
    "details.sess{background:#fff;border:1px solid #ddd;border-radius:4px;margin:.4em 0;"
    "padding:.2em .6em}"
    "details.sess>summary{cursor:pointer;font-family:ui-monospace,monospace;font-size:.9em}"
    ".sbody{display:flex;flex-wrap:wrap;gap:1em;margin-top:.5em}"
    ".side{flex:1;min-width:28em}"
    "ul.anoms{padding-left:1.2em;margin:.2em 0}ul.anoms li{margin:.2em 0;padding:2px 4px}"
    "table.tx{font-family:ui-monospace,monospace;font-size:.8em}"
    "table.tx td{border:none;padding:0 6px;white-space:pre-wrap;word-break:break-all}"
    "tr.C td.d{color:#1f5fa8}tr.S td.d{color:#2e7d32}tr.body td.l{color:#555;font-style:italic}"
    ".note{background:#fff3cd;padding:.3em .6em;border-left:3px solid #e0a800}"
    "dl.facts{display:grid;grid-template-columns:max-content auto;gap:0 1em;margin:.3em 0;"
    "font-size:.9em}dl.facts dt{color:#555}dl.facts dd{margin:0}"
    "svg.chart{font-family:system-ui,sans-serif;font-size:11px}";

struct html *
html_begin(FILE *out, int svg_dirfd, const char *svg_dir, const char *title)
{
    struct html *h = mem_calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->out = out;
    h->svg_fd = svg_dirfd;
    h->svg_dir = svg_dir;
    h->title = title ? strdup(title) : NULL;
    if (title && !h->title) {
        mem_free(h);
        return NULL;
    }
    if (out) {
        /* tmpfile: created without a name anyone else could open or plant beforehand. */
        for (int g = 0; g < HTML_GROUPS; g++) {
            h->details[g] = tmpfile();
            h->index[g] = tmpfile();
            if (!h->details[g] || !h->index[g]) {
                html_destroy(h);
                return NULL;
            }
        }
    }
    return h;
}

void
html_destroy(struct html *h)
{
    if (!h)
        return;
    for (int g = 0; g < HTML_GROUPS; g++) {
        if (h->details[g])
            fclose(h->details[g]);
        if (h->index[g])
            fclose(h->index[g]);
    }
    for (size_t i = 0; i < h->nsrv; i++)
        free(h->srv[i].lat);
    free(h->srv);
    free(h->title);
    mem_free(h);
}

unsigned long long
html_failures(const struct html *h)
{
    return h ? h->svg_failed : 0;
}

static const char *
html_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
html_endpoint(FILE *f, json_t *ep)
{
    const char *ip = html_str(ep, "ip");
    int v6 = ip && strchr(ip, ':');
    fputs(v6 ? "[" : "", f);
    svg_puts(f, ip ? ip : "?", 64);
    fprintf(f, "%s:%lld", v6 ? "]" : "",
            (long long)json_integer_value(json_object_get(ep, "port")));
}

static void
html_badges(FILE *f, json_t *an)
{
    size_t i;
    json_t *a;
    json_array_foreach (an, i, a) {
        fprintf(f, "<span class=\"badge sev-%s\">", svg_sev_class(html_str(a, "severity")));
        svg_puts(f, html_str(a, "id"), 64);
        fputs("</span>", f);
    }
}

/* ---- reply latency per server ---- */

static struct html_srv *
html_server(struct html *h, json_t *s)
{
    json_t *srv = json_object_get(s, "server");
    const char *ip = html_str(srv, "ip");
    char key[80];
    if (!ip)
        return NULL;
    snprintf(key, sizeof key, strchr(ip, ':') ? "[%.60s]:%lld" : "%.60s:%lld", ip,
             (long long)json_integer_value(json_object_get(srv, "port")));
    if (h->nsrv >= HTML_MAX_SERVERS)
        snprintf(key, sizeof key, "other");
    for (size_t i = 0; i < h->nsrv; i++)
        if (strcmp(h->srv[i].key, key) == 0)
            return &h->srv[i];
    struct html_srv *n = realloc(h->srv, (h->nsrv + 1) * sizeof *n);
    if (!n)
        return NULL;
    h->srv = n;
    n = &h->srv[h->nsrv++];
    memset(n, 0, sizeof *n);
    snprintf(n->key, sizeof n->key, "%s", key);
    return n;
}

static void
html_tally_latency(struct html *h, json_t *s)
{
    json_t *tr = json_object_get(s, "transcript"), *l;
    size_t i;
    struct html_srv *srv = NULL;
    json_array_foreach (tr, i, l) {
        json_t *lat = json_object_get(l, "latency_ms");
        if (!json_is_number(lat))
            continue;
        if (!srv && !(srv = html_server(h, s)))
            return;
        double v = json_number_value(lat);
        srv->n++;
        srv->sum += v;
        if (v > srv->max)
            srv->max = v;
        if (srv->nlat == srv->alat && srv->alat < HTML_SRV_KEEP) {
            size_t na = srv->alat ? srv->alat * 2 : 64;
            double *p = realloc(srv->lat, na * sizeof *p);
            if (!p)
                continue;
            srv->lat = p;
            srv->alat = na;
        }
        if (srv->nlat < srv->alat)
            srv->lat[srv->nlat++] = v;
    }
}

/* ---- one session ---- */

static void
html_index_row(struct html *h, FILE *f, json_t *s, int linked)
{
    char id[48], tb[32];
    (void)h;
    svg_session_name(s, id, sizeof id);
    if (linked)
        fprintf(f, "<tr><td><a href=\"#s-%s\">%s</a></td><td>", id, id);
    else
        fprintf(f, "<tr><td>%s</td><td>", id);
    svg_puts(f, html_str(s, "start"), 40);
    fputs("</td><td>", f);
    html_endpoint(f, json_object_get(s, "client"));
    fputs("</td><td>", f);
    html_endpoint(f, json_object_get(s, "server"));
    fputs("</td><td>", f);
    svg_puts(f, html_str(s, "outcome"), 20);
    fputs("</td><td>", f);
    svg_puts(f, html_str(json_object_get(s, "tcp"), "end"), 20);
    fprintf(f, "</td><td class=\"n\">%s</td><td>",
            svg_fmt_ms(json_number_value(json_object_get(s, "duration_ms")), tb, sizeof tb));
    html_badges(f, json_object_get(s, "anomalies"));
    fputs("</td></tr>\n", f);
}

static void
html_fact(FILE *f, const char *name)
{
    fprintf(f, "<dt>%s</dt><dd>", name);
}

static void
html_facts(FILE *f, json_t *s)
{
    size_t i;
    json_t *v;
    fputs("<dl class=\"facts\">", f);
    json_t *sw = json_object_get(s, "server_software"), *banner = json_object_get(s, "banner");
    if (sw || banner) {
        html_fact(f, "server");
        if (sw) {
            svg_puts(f, html_str(sw, "name"), 64);
            fputc(' ', f);
            svg_puts(f, html_str(sw, "version"), 64);
        }
        if (banner && json_is_number(json_object_get(banner, "delay_ms"))) {
            char tb[32];
            fprintf(
                f, " (greeting %lld after %s)",
                (long long)json_integer_value(json_object_get(banner, "code")),
                svg_fmt_ms(json_number_value(json_object_get(banner, "delay_ms")), tb, sizeof tb));
        }
        fputs("</dd>", f);
    }
    json_t *helo = json_object_get(s, "helo");
    if (helo) {
        html_fact(f, "helo");
        svg_puts(f, html_str(helo, "verb"), 8);
        fputc(' ', f);
        svg_puts(f, html_str(helo, "name"), 200);
        fputs("</dd>", f);
    }
    json_t *tls = json_object_get(s, "tls");
    if (html_str(tls, "starttls")) {
        html_fact(f, "tls");
        svg_puts(f, html_str(tls, "starttls"), 32);
        if (html_str(tls, "version")) {
            fputc(' ', f);
            svg_puts(f, html_str(tls, "version"), 32);
        }
        if (json_is_true(json_object_get(tls, "decrypted")))
            fputs(", decrypted", f);
        fputs("</dd>", f);
    }
    /* Only what the text view shows of an AUTH: never its data. */
    json_array_foreach (json_object_get(s, "auth"), i, v) {
        html_fact(f, "auth");
        svg_puts(f, html_str(v, "mechanism"), 32);
        if (html_str(v, "user")) {
            fputs(" user=", f);
            svg_puts(f, html_str(v, "user"), 200);
        }
        fputc(' ', f);
        svg_puts(f, html_str(v, "result"), 32);
        if (json_is_integer(json_object_get(v, "code")))
            fprintf(f, " %lld", (long long)json_integer_value(json_object_get(v, "code")));
        fputs("</dd>", f);
    }
    json_array_foreach (json_object_get(s, "transactions"), i, v) {
        if (i == 20)
            break;
        html_fact(f, "mail");
        fputs("from=&lt;", f);
        svg_puts(f, html_str(v, "mail_from"), 200);
        fputs("&gt;", f);
        size_t j;
        json_t *rc;
        json_array_foreach (json_object_get(v, "rcpt"), j, rc) {
            if (j == 10) {
                fputs(" ...", f);
                break;
            }
            fputs(" to=&lt;", f);
            svg_puts(f, html_str(rc, "to"), 200);
            fputs("&gt;", f);
            if (json_is_integer(json_object_get(rc, "code")))
                fprintf(f, ":%lld", (long long)json_integer_value(json_object_get(rc, "code")));
        }
        json_t *d = json_object_get(v, "data");
        if (d) {
            fputc(' ', f);
            svg_puts(f, html_str(d, "verb") ? html_str(d, "verb") : "DATA", 8);
            fprintf(f, " %lld bytes", (long long)json_integer_value(json_object_get(d, "bytes")));
            if (json_is_integer(json_object_get(d, "code")))
                fprintf(f, " &#8594; %lld",
                        (long long)json_integer_value(json_object_get(d, "code")));
            else
                fputs(" &#8594; no final reply", f);
        }
        fputs("</dd>", f);
    }
    const char *pf = html_str(json_object_get(s, "commands"), "postfix");
    if (pf) {
        html_fact(f, "commands");
        svg_puts(f, pf, 200);
        fputs("</dd>", f);
    }
    fputs("</dl>", f);
}

static void
html_transcript(FILE *f, json_t *s)
{
    size_t i;
    json_t *l;
    json_t *tr = json_object_get(s, "transcript");
    if (json_array_size(tr) == 0)
        return;
    fputs("<table class=\"tx\"><tr><th>t</th><th></th><th>line</th></tr>", f);
    json_array_foreach (tr, i, l) {
        if (i == HTML_MAX_LINES)
            break;
        const char *dir = html_str(l, "dir");
        int c = dir && strcmp(dir, "C") == 0;
        int body = json_is_true(json_object_get(l, "body"));
        char tb[32];
        fprintf(f,
                "<tr class=\"%s%s\"><td class=\"n\">%s</td><td class=\"d\">%s</td><td class=\"l\">",
                c ? "C" : "S", body ? " body" : "",
                svg_fmt_ms(json_number_value(json_object_get(l, "t_ms")), tb, sizeof tb),
                c ? "C" : "S");
        json_t *line = json_object_get(l, "line");
        if (json_is_string(line))
            svg_esc(f, json_string_value(line), json_string_length(line), 4096);
        if (json_is_true(json_object_get(l, "decrypted")))
            fputs(" <span class=\"muted\">(in TLS)</span>", f);
        fputs("</td></tr>", f);
    }
    fputs("</table>", f);
    size_t shown = json_array_size(tr) < HTML_MAX_LINES ? json_array_size(tr) : HTML_MAX_LINES;
    long long more = (long long)(json_array_size(tr) - shown) +
                     (long long)json_integer_value(json_object_get(s, "transcript_dropped"));
    if (more > 0)
        fprintf(f, "<p class=\"note\">... %lld more lines not shown</p>", more);
}

static void
html_details(struct html *h, FILE *f, json_t *s, int open)
{
    char id[48], tb[32];
    (void)h;
    svg_session_name(s, id, sizeof id);
    fprintf(f, "<details class=\"sess\" id=\"s-%s\"%s><summary>#%s ", id, open ? " open" : "", id);
    svg_puts(f, html_str(s, "start"), 40);
    fputc(' ', f);
    html_endpoint(f, json_object_get(s, "client"));
    fputs(" &#8594; ", f);
    html_endpoint(f, json_object_get(s, "server"));
    fputs(" &#183; ", f);
    svg_puts(f, html_str(s, "outcome"), 20);
    fputs(" &#183; ", f);
    svg_puts(f, html_str(json_object_get(s, "tcp"), "end"), 20);
    fprintf(f, " &#183; %s%s ",
            svg_fmt_ms(json_number_value(json_object_get(s, "duration_ms")), tb, sizeof tb),
            json_is_true(json_object_get(s, "partial")) ? " &#183; partial" : "");
    html_badges(f, json_object_get(s, "anomalies"));
    fputs("</summary><div class=\"sbody\"><div class=\"lad\">", f);
    svg_ladder(f, s, 0);
    fputs("</div><div class=\"side\">", f);
    json_t *an = json_object_get(s, "anomalies"), *a;
    size_t i;
    if (json_array_size(an)) {
        fputs("<ul class=\"anoms\">", f);
        json_array_foreach (an, i, a) {
            fprintf(f, "<li class=\"sev-%s\">[%zu] <b>", svg_sev_class(html_str(a, "severity")),
                    i + 1);
            svg_puts(f, html_str(a, "id"), 64);
            fputs("</b> (", f);
            svg_puts(f, html_str(a, "severity"), 16);
            fputs("): ", f);
            svg_puts(f, html_str(a, "message"), 0);
            fputs("</li>", f);
        }
        fputs("</ul>", f);
    }
    html_facts(f, s);
    html_transcript(f, s);
    fputs("</div></div></details>\n", f);
}

int
html_session(struct html *h, json_t *s)
{
    char err[512];
    if (h->svg_fd >= 0 && svg_write_file(h->svg_fd, s, err, sizeof err) < 0) {
        /* Told once; the count comes at the end. */
        if (h->svg_failed++ == 0)
            fprintf(stderr, "smtpsniff: --svg %s: %s\n", h->svg_dir, err);
    }
    if (!h->out)
        return 0;
    html_tally_latency(h, s);
    int g = json_array_size(json_object_get(s, "anomalies")) ? HTML_ANOMALOUS : HTML_OTHER;
    h->sessions[g]++;
    int detailed = h->ndetails[g] < HTML_MAX_DETAILS;
    if (h->nindex[g] < HTML_MAX_INDEX) {
        html_index_row(h, h->index[g], s, detailed);
        h->nindex[g]++;
    }
    if (detailed) {
        html_details(h, h->details[g], s,
                     g == HTML_ANOMALOUS && h->ndetails[g] < HTML_OPEN_DETAILS);
        h->ndetails[g]++;
    }
    if (ferror(h->index[g]) || ferror(h->details[g])) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    return 0;
}

int
html_session_json(struct html *h, const char *json, size_t len)
{
    json_t *s = json_loadb(json, len, 0, NULL);
    if (!s) {
        errno = ENOMEM;
        return -1;
    }
    int rc = html_session(h, s);
    json_decref(s);
    return rc;
}

/* ---- the page ---- */

/* An RFC 3339 time of the report as seconds (0 when it is not one). */
static double
html_time(const char *s)
{
    struct tm tm = {0};
    double frac = 0;
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return 0;
    if (s[n] == '.')
        frac = strtod(s + n, NULL);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + frac;
}

static const char *
html_outcome_colour(const char *k)
{
    static const char *const map[][2] = {
        {"delivered", "#2e7d32"}, {"incomplete", "#e65100"}, {"rejected", "#c62828"},
        {"deferred", "#f9a825"},  {"encrypted", "#5e35b1"},  {"aborted", "#757575"},
        {"none", "#9e9e9e"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(k, map[i][0]) == 0)
            return map[i][1];
    return "#1f5fa8";
}

static int
html_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of obj in byte order: a summary merged from workers is built in another order,
 * and the page must not depend on it. Caller frees; NULL when empty or without memory. */
static const char **
html_sorted_keys(json_t *obj, size_t *n)
{
    size_t nk = json_object_size(obj), i = 0;
    const char *k;
    json_t *v;
    *n = 0;
    const char **keys = nk ? mem_calloc(nk, sizeof *keys) : NULL;
    if (!keys)
        return NULL;
    json_object_foreach (obj, k, v)
        keys[i++] = k;
    qsort(keys, nk, sizeof *keys, html_cmp_str);
    *n = nk;
    return keys;
}

/* Outcomes as a bar chart. */
static void
html_outcome_chart(FILE *f, json_t *outcomes)
{
    size_t n, r;
    const char **keys = html_sorted_keys(outcomes, &n);
    long long max = 1;
    for (r = 0; r < n; r++)
        if (json_integer_value(json_object_get(outcomes, keys[r])) > max)
            max = (long long)json_integer_value(json_object_get(outcomes, keys[r]));
    fprintf(f,
            "<figure><figcaption>Outcomes</figcaption><svg class=\"chart\" "
            "xmlns=\"http://www.w3.org/2000/svg\" width=\"380\" height=\"%zu\" role=\"img\">"
            "<title>sessions per outcome</title>",
            n * 22 + 8);
    for (r = 0; r < n; r++) {
        const char *k = keys[r];
        json_t *v = json_object_get(outcomes, k);
        double w = 220.0 * (double)json_integer_value(v) / (double)max;
        double y = 4 + (double)r * 22;
        fprintf(f, "<text x=\"90\" y=\"%.0f\" text-anchor=\"end\">", y + 14);
        svg_puts(f, k, 24);
        fprintf(f,
                "</text><rect class=\"bar\" x=\"96\" y=\"%.0f\" width=\"%.1f\" height=\"16\" "
                "fill=\"%s\"/><text x=\"%.1f\" y=\"%.0f\">%lld</text>",
                y + 2, w < 1 ? 1 : w, html_outcome_colour(k), 100 + (w < 1 ? 1 : w), y + 14,
                (long long)json_integer_value(v));
    }
    fputs("</svg></figure>", f);
    mem_free(keys);
}

static int
html_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int
html_cmp_srv(const void *a, const void *b)
{
    const struct html_srv *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* Reply latency per server: median bar and a whisker to the slowest, on a log scale. */
static void
html_latency_chart(struct html *h, FILE *f)
{
    if (h->nsrv == 0)
        return;
    qsort(h->srv, h->nsrv, sizeof *h->srv, html_cmp_srv);
    size_t n = h->nsrv < HTML_CHART_SERVERS ? h->nsrv : HTML_CHART_SERVERS;
    double max = 1;
    for (size_t i = 0; i < n; i++)
        if (h->srv[i].max > max)
            max = h->srv[i].max;
    /* Decades from 0.01 ms to the slowest reply. */
    double lo = -2, hi = 0;
    while (hi < 7 && max > 1.0 * pow(10, hi))
        hi++;
    const double x0 = 170, w = 300;
#define HTML_LX(ms) (x0 + w * ((ms) <= 0.01 ? 0 : (log10(ms) - lo) / (hi - lo)))
    fprintf(f,
            "<figure><figcaption>Reply latency per server (median bar, whisker to the slowest; "
            "log scale)</figcaption><svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
            "width=\"860\" height=\"%zu\" role=\"img\"><title>reply latency per server</title>",
            n * 22 + 34);
    for (double d = lo; d <= hi; d++) {
        double x = x0 + w * (d - lo) / (hi - lo);
        char tb[32];
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"4\" x2=\"%.1f\" y2=\"%zu\" stroke=\"#ddd\"/>"
                "<text x=\"%.1f\" y=\"%zu\" text-anchor=\"middle\" fill=\"#666\">%s</text>",
                x, x, n * 22 + 8, x, n * 22 + 24, svg_fmt_ms(pow(10, d), tb, sizeof tb));
    }
    for (size_t i = 0; i < n; i++) {
        struct html_srv *s = &h->srv[i];
        double med = 0;
        if (s->nlat) {
            qsort(s->lat, s->nlat, sizeof *s->lat, html_cmp_double);
            med = s->nlat % 2 ? s->lat[s->nlat / 2]
                              : (s->lat[s->nlat / 2 - 1] + s->lat[s->nlat / 2]) / 2;
        }
        double y = 4 + (double)i * 22;
        char m1[32], m2[32];
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">", x0 - 6, y + 14);
        svg_puts(f, s->key, 60);
        fprintf(f,
                "</text><rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"14\" fill=\"#1f5fa8\"/>"
                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#1f5fa8\"/>"
                "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#1f5fa8\"/>"
                "<text x=\"%.0f\" y=\"%.0f\">median %s, slowest %s, %llu replies</text>",
                x0, y + 3, HTML_LX(med) - x0 < 1 ? 1 : HTML_LX(med) - x0, HTML_LX(med), y + 10,
                HTML_LX(s->max), y + 10, HTML_LX(s->max), y + 5, HTML_LX(s->max), y + 15,
                x0 + w + 8, y + 14, svg_fmt_ms(med, m1, sizeof m1),
                svg_fmt_ms(s->max, m2, sizeof m2), s->n);
    }
#undef HTML_LX
    fputs("</svg>", f);
    if (h->nsrv > n)
        fprintf(
            f,
            "<figcaption class=\"muted\">the %zu servers with the most replies of %zu</figcaption>",
            n, h->nsrv);
    fputs("</figure>", f);
}

/* "key count" rows of a counts object. */
static void
html_counts_table(FILE *f, const char *caption, const char *col, json_t *counts)
{
    size_t n;
    const char **keys = html_sorted_keys(counts, &n);
    if (n == 0)
        return;
    fprintf(f, "<figure><figcaption>%s</figcaption><table><tr><th>%s</th><th>sessions</th></tr>",
            caption, col);
    for (size_t i = 0; i < n; i++) {
        fputs("<tr><td>", f);
        svg_puts(f, keys[i], 80);
        fprintf(f, "</td><td class=\"n\">%lld</td></tr>",
                (long long)json_integer_value(json_object_get(counts, keys[i])));
    }
    fputs("</table></figure>", f);
    mem_free(keys);
}

static int
html_copy(FILE *from, FILE *to)
{
    char b[65536];
    size_t n;
    if (fflush(from) != 0 || fseek(from, 0, SEEK_SET) != 0)
        return -1;
    while ((n = fread(b, 1, sizeof b, from)) > 0)
        if (fwrite(b, 1, n, to) != n)
            return -1;
    return ferror(from) ? -1 : 0;
}

static void
html_group(struct html *h, FILE *f, int g, const char *name, const char *anchor)
{
    fprintf(f, "<section id=\"%s\"><h2>%s (%llu)</h2>", anchor, name, h->sessions[g]);
    if (h->sessions[g] > h->ndetails[g])
        fprintf(f,
                "<p class=\"note\">Only the first %llu of these %llu sessions are drawn here; "
                "the NDJSON report (--json) has them all.</p>",
                h->ndetails[g], h->sessions[g]);
    if (h->sessions[g] == 0)
        fputs("<p class=\"muted\">none</p>", f);
    html_copy(h->details[g], f);
    fputs("</section>\n", f);
}

int
html_end(struct html *h, json_t *summary)
{
    FILE *f = h->out;
    if (h->svg_failed > 1)
        fprintf(stderr, "smtpsniff: %llu SVG files could not be written to %s\n", h->svg_failed,
                h->svg_dir);
    if (!f)
        return 0;
    const char *first = html_str(summary, "first_packet"), *last = html_str(summary, "last_packet");
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<meta name=\"viewport\" content=\"width=device-width\">"
          /* Nothing may be fetched nor run, whatever a peer managed to put in the page. */
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "style-src 'unsafe-inline'; img-src data:\">"
          "<title>smtpsniff report: ",
          f);
    svg_puts(f, h->title, 200);
    fprintf(f, "</title><style>%s%s</style></head><body>\n<header><h1>smtpsniff report: ", html_css,
            svg_css);
    svg_puts(f, h->title, 0);
    fputs("</h1><p>", f);
    if (first && last) {
        char tb[32];
        fputs("capture from ", f);
        svg_puts(f, first, 40);
        fputs(" to ", f);
        svg_puts(f, last, 40);
        fprintf(f, " (%s)",
                svg_fmt_ms((html_time(last) - html_time(first)) * 1000.0, tb, sizeof tb));
    } else {
        fputs("no packet in the capture", f);
    }
    unsigned long long total = h->sessions[0] + h->sessions[1];
    fprintf(f,
            " &#183; %llu sessions, %llu with anomalies &#183; %lld packets</p>"
            "<p class=\"muted\">written by smtpsniff %s</p></header>\n",
            total, h->sessions[HTML_ANOMALOUS],
            (long long)json_integer_value(json_object_get(summary, "packets")), SMTPSNIFF_VERSION);

    fputs("<section id=\"summary\"><h2>Summary</h2><div class=\"figs\">", f);
    html_outcome_chart(f, json_object_get(summary, "outcomes"));
    html_counts_table(f, "Anomalies", "anomaly", json_object_get(summary, "anomalies"));
    html_counts_table(f, "TCP ends", "end", json_object_get(summary, "tcp_ends"));
    fputs("</div><div class=\"figs\">", f);
    html_latency_chart(h, f);
    fputs("</div>", f);
    /* The capture's other counters that are not zero, as the text view lists them. */
    int any = 0;
    size_t nk;
    const char **keys = html_sorted_keys(summary, &nk);
    for (size_t i = 0; i < nk; i++) {
        const char *k = keys[i];
        json_t *v = json_object_get(summary, k);
        if (!(json_is_integer(v) && json_integer_value(v) != 0) && !json_is_true(v))
            continue;
        if (strcmp(k, "sessions") == 0 || strcmp(k, "packets") == 0)
            continue;
        fputs(any ? ", " : "<p class=\"muted\">", f);
        any = 1;
        svg_puts(f, k, 64);
        if (json_is_integer(v))
            fprintf(f, " %lld", (long long)json_integer_value(v));
    }
    mem_free(keys);
    if (any)
        fputs("</p>", f);
    fputs("</section>\n", f);

    fputs("<section id=\"index\"><h2>Sessions</h2><table><tr><th>id</th><th>start</th>"
          "<th>client</th><th>server</th><th>outcome</th><th>tcp end</th><th>duration</th>"
          "<th>anomalies</th></tr>\n",
          f);
    for (int g = 0; g < HTML_GROUPS; g++)
        html_copy(h->index[g], f);
    fputs("</table>", f);
    if (h->nindex[0] + h->nindex[1] < total)
        fprintf(f, "<p class=\"note\">%llu sessions not listed (at most %d per group)</p>",
                total - h->nindex[0] - h->nindex[1], HTML_MAX_INDEX);
    fputs("</section>\n", f);
    html_group(h, f, HTML_ANOMALOUS, "Sessions with anomalies", "anomalous");
    html_group(h, f, HTML_OTHER, "Other sessions", "others");
    fputs("</body></html>\n", f);
    if (fflush(f) != 0 || ferror(f)) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    return 0;
}
