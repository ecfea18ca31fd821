/* svg.c - the ladder diagram of a session (svg.h). Off the hot path: it reads the finished
 * report as Jansson values, once per session, only with --html or --svg. */
#include "svg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

/* Geometry, in SVG user units (pixels at 100 %). */
#define SVG_W 760
#define SVG_X_TIME 8      /* time labels, left aligned */
#define SVG_X_CLIENT 130  /* client lifeline */
#define SVG_X_SERVER 530  /* server lifeline */
#define SVG_TOP 58        /* first step */
#define SVG_ROW 22        /* one step */
#define SVG_BREAK 20      /* extra room for a pause mark */
#define SVG_SLANT 6       /* an arrow falls this much between the lifelines */
#define SVG_LABEL_MAX 64  /* bytes of a line shown on its arrow */
#define SVG_PAUSE_MS 1000 /* a longer pause between two steps gets a mark */
#define SVG_NOTE_WRAP 96  /* anomaly sentences wrapped at this many bytes per line */

const char svg_css[] =
    ".ladder{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}"
    ".ladder .life{stroke:#555;stroke-width:1.5}"
    ".ladder .hdr{font-weight:bold;font-size:12px}"
    ".ladder .t{fill:#444}"
    ".ladder .c{stroke:#1f5fa8;fill:none;stroke-width:1.4}"
    ".ladder .s{stroke:#2e7d32;fill:none;stroke-width:1.4}"
    ".ladder .s4{stroke:#e65100;fill:none;stroke-width:1.6}"
    ".ladder .s5{stroke:#c62828;fill:none;stroke-width:1.8}"
    ".ladder .tcp{stroke:#777;fill:none;stroke-width:1;stroke-dasharray:4 2}"
    ".ladder .rst{stroke:#b71c1c;fill:none;stroke-width:2.2}"
    ".ladder .body{stroke:#1f5fa8;fill:none;stroke-width:4}"
    ".ladder .dec{stroke-dasharray:6 3}"
    ".ladder .hole{fill:#7b1fa2;fill-opacity:.25;stroke:#7b1fa2}"
    ".ladder .lc{fill:#0d3c73}.ladder .ls{fill:#1b5e20}.ladder .ls4{fill:#bf360c}"
    ".ladder .ls5{fill:#b71c1c}.ladder .lt{fill:#555}.ladder .lr{fill:#b71c1c;font-weight:bold}"
    ".ladder .lh{fill:#6a1b9a}"
    ".ladder .mark{fill:#ef6c00;fill-opacity:.3;stroke:#ef6c00}"
    ".ladder .lm{fill:#e65100}"
    ".ladder .pause{stroke:#999;stroke-dasharray:2 3}.ladder .lp{fill:#777;font-style:italic}"
    ".ladder .more{fill:#f2f2f2;stroke:#bbb}"
    ".ladder .a-error{fill:#ef9a9a;fill-opacity:.45;stroke:#c62828}"
    ".ladder .a-warning{fill:#ffcc80;fill-opacity:.45;stroke:#e65100}"
    ".ladder .a-notice{fill:#fff59d;fill-opacity:.5;stroke:#f9a825}"
    ".ladder .a-info{fill:#bbdefb;fill-opacity:.5;stroke:#1565c0}"
    ".ladder .an{font-weight:bold;fill:#000}"
    ".ladder .note{fill:#222}"
    ".ladder path.c,.ladder path.body{fill:#1f5fa8;stroke:none}"
    ".ladder path.s{fill:#2e7d32;stroke:none}.ladder path.s4{fill:#e65100;stroke:none}"
    ".ladder path.s5{fill:#c62828;stroke:none}.ladder path.tcp{fill:#777;stroke:none}"
    ".ladder path.rst{fill:#b71c1c;stroke:none}";

/* ---- escaping ---- */

/* Code points a reader could be fooled by although valid UTF-8 (as esc.h lists them), and
 * those XML forbids: shown as \uNNNN. */
static int
svg_hidden_cp(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x61c || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2069) || cp == 0xfeff ||
           cp == 0xfffe || cp == 0xffff;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), its code point in *cp; 0 when
 * not valid (Jansson's strings always are, but a cut may not be). */
static size_t
svg_utf8(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c = p[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        len = 2, c &= 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, c &= 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

void
svg_esc(FILE *f, const char *s, size_t n, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    int cut = 0;
    if (!s)
        return;
    if (max && n > max) {
        n = max;
        while (n > 0 && (p[n] & 0xc0) == 0x80) /* not inside a character */
            n--;
        cut = 1;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = svg_utf8(p + i, n - i, &cp);
        if (len == 0) {
            fprintf(f, "\\x%02X", p[i]);
            i++;
            continue;
        }
        switch (cp) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&#39;", f);
            break;
        default:
            if (cp < 0x20 || cp == 0x7f)
                fprintf(f, "\\x%02X", (unsigned)cp);
            else if (svg_hidden_cp(cp))
                fprintf(f, "\\u%04X", (unsigned)cp);
            else
                fwrite(p + i, 1, len, f);
        }
        i += len;
    }
    if (cut)
        fputs("...", f);
}

void
svg_puts(FILE *f, const char *s, size_t max)
{
    if (s)
        svg_esc(f, s, strlen(s), max);
}

/* A Jansson string value escaped (its length, not its first NUL). */
static void
svg_jstr(FILE *f, json_t *v, size_t max)
{
    if (json_is_string(v))
        svg_esc(f, json_string_value(v), json_string_length(v), max);
}

const char *
svg_fmt_ms(double ms, char *out, size_t outlen)
{
    if (ms < 1000.0)
        snprintf(out, outlen, "%.3f ms", ms);
    else
        snprintf(out, outlen, "%.3f s", ms / 1000.0);
    return out;
}

/* ---- the steps of a session ---- */

enum svg_kind {
    SK_LINE,  /* a transcript line */
    SK_TCP,   /* handshake segment */
    SK_HOLE,  /* bytes missing from the capture */
    SK_MARK,  /* something a side did, drawn at its line: a retransmission burst, a copy with
                 other bytes */
    SK_RST,   /* the first RST */
    SK_END,   /* how the connection ended */
    SK_MORE,  /* the steps left out */
    SK_PAUSE, /* not a step: a pause mark before the next row */
};

struct svg_step {
    double t;
    enum svg_kind kind;
    int client;   /* sent by the client */
    json_t *line; /* SK_LINE: the transcript entry */
    char text[160];
};

static double
svg_num(json_t *o, const char *k, double dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static const char *
svg_str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A TCP event of the report at its time (t_ms), drawn on the side its side_key names. */
static struct svg_step
svg_event(json_t *g, const char *side_key, enum svg_kind kind)
{
    const char *side = svg_str(g, side_key);
    return (struct svg_step){
        .t = svg_num(g, "t_ms", 0), .kind = kind, .client = side && strcmp(side, "client") == 0};
}

/* The TCP events of the report: handshake, holes, the first RST, each side's FIN,
 * retransmission bursts and copies with other bytes; by time. */
static size_t
svg_tcp_steps(json_t *s, struct svg_step *ev, size_t cap)
{
    json_t *tcp = json_object_get(s, "tcp"), *g;
    size_t n = 0, i;
    long long syns = (long long)json_integer_value(json_object_get(tcp, "syn_count"));
    long long synacks = (long long)json_integer_value(json_object_get(tcp, "synack_count"));
    if (!json_is_true(json_object_get(tcp, "midstream")) && syns > 0 && n < cap) {
        ev[n] = (struct svg_step){.t = 0, .kind = SK_TCP, .client = 1};
        if (syns > 1)
            snprintf(ev[n].text, sizeof ev[n].text, "SYN x%lld", syns);
        else
            snprintf(ev[n].text, sizeof ev[n].text, "SYN");
        n++;
    }
    if (synacks > 0 && n < cap) {
        ev[n] = (struct svg_step){.t = svg_num(tcp, "synack_ms", 0), .kind = SK_TCP};
        snprintf(ev[n].text, sizeof ev[n].text, synacks > 1 ? "SYN-ACK x%lld" : "SYN-ACK", synacks);
        n++;
    }
    if (json_object_get(tcp, "handshake_rtt_ms") && n < cap) {
        ev[n] = (struct svg_step){
            .t = svg_num(tcp, "handshake_rtt_ms", 0), .kind = SK_TCP, .client = 1};
        snprintf(ev[n].text, sizeof ev[n].text, "ACK");
        n++;
    }
    json_array_foreach (json_object_get(tcp, "gaps"), i, g) {
        if (n == cap)
            break;
        ev[n] = svg_event(g, "dir", SK_HOLE);
        snprintf(ev[n].text, sizeof ev[n].text, "hole: %lld bytes not captured at offset %lld",
                 (long long)json_integer_value(json_object_get(g, "len")),
                 (long long)json_integer_value(json_object_get(g, "offset")));
        n++;
    }
    json_t *rst = json_object_get(tcp, "rst");
    if (rst && n < cap) {
        char exp[48] = "";
        json_t *e = json_object_get(rst, "expected_ttl");
        if (json_is_integer(e))
            snprintf(exp, sizeof exp, " (its other packets: %lld)",
                     (long long)json_integer_value(e));
        ev[n] = svg_event(rst, "from", SK_RST);
        snprintf(ev[n].text, sizeof ev[n].text, "RST TTL %lld%s%s",
                 (long long)json_integer_value(json_object_get(rst, "ttl")), exp,
                 json_integer_value(json_object_get(rst, "count")) > 1 ? " x" : "");
        if (json_integer_value(json_object_get(rst, "count")) > 1) {
            size_t l = strlen(ev[n].text);
            snprintf(ev[n].text + l, sizeof ev[n].text - l, "%lld",
                     (long long)json_integer_value(json_object_get(rst, "count")));
        }
        n++;
    }
    json_array_foreach (json_object_get(tcp, "fins"), i, g) {
        if (n == cap)
            break;
        ev[n] = svg_event(g, "from", SK_TCP);
        snprintf(ev[n].text, sizeof ev[n].text, "FIN TTL %lld",
                 (long long)json_integer_value(json_object_get(g, "ttl")));
        n++;
    }
    json_array_foreach (json_object_get(tcp, "retransmission_bursts"), i, g) {
        if (n == cap)
            break;
        ev[n] = svg_event(g, "from", SK_MARK);
        char tb[32];
        snprintf(ev[n].text, sizeof ev[n].text, "sent %lld bytes again in %lld segment(s) over %s",
                 (long long)json_integer_value(json_object_get(g, "bytes")),
                 (long long)json_integer_value(json_object_get(g, "segments")),
                 svg_fmt_ms(svg_num(g, "last_ms", 0) - svg_num(g, "t_ms", 0), tb, sizeof tb));
        n++;
    }
    json_array_foreach (json_object_get(tcp, "conflicts"), i, g) {
        if (n == cap)
            break;
        ev[n] = svg_event(g, "from", SK_MARK);
        snprintf(ev[n].text, sizeof ev[n].text,
                 "%lld bytes at offset %lld sent again with other content",
                 (long long)json_integer_value(json_object_get(g, "len")),
                 (long long)json_integer_value(json_object_get(g, "offset")));
        n++;
    }
    for (size_t a = 1; a < n; a++) /* stable: holes before an RST at the same time */
        for (size_t b = a; b > 0 && ev[b - 1].t > ev[b].t; b--) {
            struct svg_step t = ev[b];
            ev[b] = ev[b - 1];
            ev[b - 1] = t;
        }
    return n;
}

#define SVG_TCP_MAX 40 /* handshake 3, holes 16, RST 1, FINs 2, bursts 8, copies 4 */

/* Every step of the session in time order (TCP events before lines of the same time), the
 * end last. Caller frees; NULL without memory. */
static struct svg_step *
svg_steps(json_t *s, size_t *nout)
{
    struct svg_step tcp[SVG_TCP_MAX];
    size_t ntcp = svg_tcp_steps(s, tcp, SVG_TCP_MAX), j = 0, n = 0, i;
    json_t *tr = json_object_get(s, "transcript"), *l;
    size_t total = json_array_size(tr) + ntcp + 1;
    struct svg_step *st = mem_calloc(total, sizeof *st);
    if (!st)
        return NULL;
    json_array_foreach (tr, i, l) {
        double t = svg_num(l, "t_ms", 0);
        while (j < ntcp && tcp[j].t <= t)
            st[n++] = tcp[j++];
        const char *dir = svg_str(l, "dir");
        st[n++] = (struct svg_step){
            .t = t, .kind = SK_LINE, .client = dir && strcmp(dir, "C") == 0, .line = l};
    }
    while (j < ntcp)
        st[n++] = tcp[j++];
    json_t *tcpo = json_object_get(s, "tcp");
    json_t *fin = json_object_get(tcpo, "fin");
    int fc = json_is_true(json_object_get(fin, "client"));
    int fs = json_is_true(json_object_get(fin, "server"));
    const char *end = svg_str(tcpo, "end");
    st[n] = (struct svg_step){.t = svg_num(s, "duration_ms", 0), .kind = SK_END};
    if (n > 0 && st[n].t < st[n - 1].t)
        st[n].t = st[n - 1].t;
    snprintf(st[n].text, sizeof st[n].text, "end: %.40s%s%s", end ? end : "?",
             fc || fs ? ", FIN from " : "",
             fc ? (fs ? "both sides" : "the client") : (fs ? "the server" : ""));
    n++;
    *nout = n;
    return st;
}

/* The time an anomaly relates to: its evidence's own t_ms, else the step its id names;
 * -1 when it concerns the whole session. */
static double
svg_anomaly_time(json_t *s, json_t *a, const struct svg_step *st, size_t n)
{
    const char *id = svg_str(a, "id");
    json_t *ev = json_object_get(a, "evidence");
    if (json_is_number(json_object_get(ev, "t_ms")))
        return svg_num(ev, "t_ms", 0);
    if (json_is_number(json_object_get(json_object_get(ev, "rst"), "t_ms")) && id &&
        strcmp(id, "died_after_data") != 0 && strcmp(id, "still_waiting") != 0)
        return svg_num(json_object_get(ev, "rst"), "t_ms", 0);
    if (!id)
        return -1;
    if (strcmp(id, "died_after_data") == 0 || strcmp(id, "still_waiting") == 0) {
        /* The message's end: the last body line the client sent. */
        for (size_t i = n; i-- > 0;)
            if (st[i].kind == SK_LINE && json_is_true(json_object_get(st[i].line, "body")))
                return st[i].t;
        return st[n - 1].t;
    }
    static const char *const at_end[] = {"died_mid_session",   "no_banner",
                                         "syn_unanswered",     "connection_refused",
                                         "server_closed_idle", NULL};
    for (size_t k = 0; at_end[k]; k++)
        if (strcmp(id, at_end[k]) == 0)
            return st[n - 1].t;
    static const char *const at_banner[] = {"banner_delay", "service_unavailable",
                                            "outdated_server", NULL};
    for (size_t k = 0; at_banner[k]; k++)
        if (strcmp(id, at_banner[k]) == 0 && json_object_get(s, "banner"))
            return svg_num(json_object_get(s, "banner"), "t_ms", -1);
    if (strncmp(id, "auth_", 5) == 0 && strcmp(id, "auth_skipped") != 0) {
        json_t *a0 = json_array_get(json_object_get(s, "auth"), 0);
        if (a0)
            return svg_num(a0, "t_ms", -1);
    }
    if (strncmp(id, "starttls_", 9) == 0 && json_object_get(s, "tls"))
        return svg_num(json_object_get(s, "tls"), "t_ms", -1);
    if (strcmp(id, "capture_gap") == 0) {
        for (size_t i = 0; i < n; i++)
            if (st[i].kind == SK_HOLE)
                return st[i].t;
        return -1;
    }
    if (strncmp(id, "relay_", 6) == 0 || strcmp(id, "open_relay") == 0 ||
        strcmp(id, "auth_skipped") == 0) {
        json_t *t0 = json_array_get(json_object_get(s, "transactions"), 0);
        if (t0)
            return svg_num(t0, "t_ms", -1);
    }
    return -1;
}

/* ---- drawing ---- */

struct svg_row {
    size_t step; /* index into the steps; SIZE_MAX for the "more" mark */
    double y;
    double pause_ms; /* > 0: a pause mark above this row */
};

const char *
svg_sev_class(const char *sev)
{
    if (sev &&
        (strcmp(sev, "error") == 0 || strcmp(sev, "warning") == 0 || strcmp(sev, "notice") == 0))
        return sev;
    return "info";
}

/* Line classes by what the line is: a command, a reply (by its code's class), a body. */
static void
svg_line_class(const struct svg_step *st, const char **stroke, const char **label)
{
    const char *line = svg_str(st->line, "line");
    if (st->client) {
        *stroke = json_is_true(json_object_get(st->line, "body")) ? "body" : "c";
        *label = "lc";
    } else if (line && line[0] == '5') {
        *stroke = "s5", *label = "ls5";
    } else if (line && line[0] == '4') {
        *stroke = "s4", *label = "ls4";
    } else {
        *stroke = "s", *label = "ls";
    }
}

static void
svg_endpoint(FILE *f, json_t *ep)
{
    const char *ip = svg_str(ep, "ip");
    int v6 = ip && strchr(ip, ':');
    fputs(v6 ? "[" : "", f);
    svg_puts(f, ip ? ip : "?", 64);
    fprintf(f, "%s:%lld", v6 ? "]" : "",
            (long long)json_integer_value(json_object_get(ep, "port")));
}

/* An arrow from one lifeline to the other at y, its label above it. */
static void
svg_arrow(FILE *f, double y, int from_client, const char *cls, const char *extra)
{
    double x1 = from_client ? SVG_X_CLIENT : SVG_X_SERVER;
    double x2 = from_client ? SVG_X_SERVER - 4 : SVG_X_CLIENT + 4;
    fprintf(f, "<line class=\"%s%s\" x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\"/>", cls, extra,
            x1, y - SVG_SLANT, x2, y);
    /* The head, drawn as a path rather than a marker: markers need ids, unique per page. */
    double d = from_client ? -7 : 7;
    fprintf(f, "<path class=\"%s\" d=\"M%.0f %.1f l%.0f -4 l0 8 z\"/>", cls,
            x2 + (from_client ? 4 : -4), y, d);
}

/* Wraps text at about SVG_NOTE_WRAP bytes per line (at spaces), writing <tspan>s. */
static int
svg_wrapped(FILE *f, double x, double y, const char *s, size_t len)
{
    int lines = 0;
    size_t i = 0;
    while (i < len && lines < 8) {
        size_t end = len - i <= SVG_NOTE_WRAP ? len : i + SVG_NOTE_WRAP;
        if (end < len) {
            size_t sp = end;
            while (sp > i && s[sp] != ' ')
                sp--;
            if (sp > i)
                end = sp;
            else
                while (end > i && ((unsigned char)s[end] & 0xc0) == 0x80)
                    end--;
        }
        fprintf(f, "<tspan x=\"%.0f\" y=\"%.1f\">", x, y + lines * 14);
        svg_esc(f, s + i, end - i, 0);
        fputs("</tspan>", f);
        lines++;
        i = end;
        while (i < len && s[i] == ' ')
            i++;
    }
    return lines;
}

const char *
svg_session_name(json_t *s, char *out, size_t outlen)
{
    long long id = (long long)json_integer_value(json_object_get(s, "id"));
    json_t *in = json_object_get(s, SVG_INPUT_KEY);
    /* Only a number: the name goes into file names and markup as it is. */
    if (json_is_integer(in) && json_integer_value(in) > 0 && json_integer_value(in) <= 64)
        snprintf(out, outlen, "%lld-%lld", (long long)json_integer_value(in), id);
    else
        snprintf(out, outlen, "%lld", id);
    return out;
}

int
svg_ladder(FILE *f, json_t *s, int standalone)
{
    size_t n, i;
    struct svg_step *st = svg_steps(s, &n);
    if (!st)
        return -1;
    /* Rows: the first and last steps, a mark for those between. */
    size_t nrows = n > SVG_HEAD_STEPS + SVG_TAIL_STEPS ? SVG_HEAD_STEPS + SVG_TAIL_STEPS + 1 : n;
    struct svg_row *rows = mem_calloc(nrows, sizeof *rows);
    if (!rows) {
        mem_free(st);
        return -1;
    }
    double y = SVG_TOP;
    for (size_t r = 0; r < nrows; r++) {
        if (nrows < n && r == SVG_HEAD_STEPS)
            rows[r].step = SIZE_MAX;
        else
            rows[r].step = nrows < n && r > SVG_HEAD_STEPS ? n - (nrows - r) : r;
        if (r > 0 && rows[r].step != SIZE_MAX && rows[r - 1].step != SIZE_MAX) {
            double dt = st[rows[r].step].t - st[rows[r - 1].step].t;
            if (dt > SVG_PAUSE_MS) {
                rows[r].pause_ms = dt;
                y += SVG_BREAK;
            }
        }
        rows[r].y = y;
        y += SVG_ROW;
    }
    double lifeline_end = y - SVG_ROW + 8;

    /* Anomalies: the row of the step each relates to (-1: the whole session). */
    json_t *an = json_object_get(s, "anomalies");
    size_t nan = json_array_size(an);
    double notes_y = y + 18;
    double height = notes_y + 10;
    char sname[48];
    for (i = 0; i < nan; i++) {
        const char *msg = svg_str(json_array_get(an, i), "message");
        height += 16 + 14.0 * (double)((msg ? strlen(msg) : 0) / (SVG_NOTE_WRAP - 16) + 1);
    }

    if (standalone)
        fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"ladder\" role=\"img\" "
            "width=\"%d\" height=\"%.0f\" viewBox=\"0 0 %d %.0f\" data-session=\"%s\">",
            SVG_W, height, SVG_W, height, svg_session_name(s, sname, sizeof sname));
    fprintf(f, "<title>session %s: ladder</title>", sname);
    if (standalone)
        fprintf(f, "<style>%s</style><rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>",
                svg_css);
    /* Header: the two ends, and the facts that have no time of their own. */
    fprintf(f, "<text class=\"hdr\" x=\"%d\" y=\"16\" text-anchor=\"middle\">client ",
            SVG_X_CLIENT);
    svg_endpoint(f, json_object_get(s, "client"));
    fprintf(f, "</text><text class=\"hdr\" x=\"%d\" y=\"16\" text-anchor=\"middle\">server ",
            SVG_X_SERVER);
    svg_endpoint(f, json_object_get(s, "server"));
    fputs("</text>", f);
    json_t *tcp = json_object_get(s, "tcp");
    json_t *ttl = json_object_get(tcp, "ttl"), *re = json_object_get(tcp, "retransmissions");
    fprintf(f, "<text class=\"t\" x=\"%d\" y=\"32\">time</text>", SVG_X_TIME);
    fprintf(f, "<text class=\"lt\" x=\"%d\" y=\"32\" text-anchor=\"middle\">", SVG_X_CLIENT);
    if (ttl)
        fprintf(f, "TTL %lld", (long long)json_integer_value(json_object_get(ttl, "client")));
    if (json_integer_value(json_object_get(re, "client")) > 0)
        fprintf(f, ", %lld retransmission(s)",
                (long long)json_integer_value(json_object_get(re, "client")));
    fprintf(f, "</text><text class=\"lt\" x=\"%d\" y=\"32\" text-anchor=\"middle\">", SVG_X_SERVER);
    if (ttl)
        fprintf(f, "TTL %lld", (long long)json_integer_value(json_object_get(ttl, "server")));
    if (json_integer_value(json_object_get(re, "server")) > 0)
        fprintf(f, ", %lld retransmission(s)",
                (long long)json_integer_value(json_object_get(re, "server")));
    fputs("</text>", f);
    if (json_is_true(json_object_get(tcp, "midstream")))
        fprintf(f,
                "<text class=\"lp\" x=\"%d\" y=\"46\" text-anchor=\"middle\">capture began "
                "mid-session: no handshake</text>",
                (SVG_X_CLIENT + SVG_X_SERVER) / 2);
    fprintf(f, "<line class=\"life\" x1=\"%d\" y1=\"38\" x2=\"%d\" y2=\"%.0f\"/>", SVG_X_CLIENT,
            SVG_X_CLIENT, lifeline_end);
    fprintf(f, "<line class=\"life\" x1=\"%d\" y1=\"38\" x2=\"%d\" y2=\"%.0f\"/>", SVG_X_SERVER,
            SVG_X_SERVER, lifeline_end);

    /* Anomaly bands behind the steps they relate to: one per row, naming every anomaly
     * of that row (the most severe first gives the colour: the list is sorted so). */
    size_t *arow = mem_calloc(nan ? nan : 1, sizeof *arow);
    if (!arow) {
        mem_free(rows);
        mem_free(st);
        return -1;
    }
    for (i = 0; i < nan; i++) {
        double t = svg_anomaly_time(s, json_array_get(an, i), st, n);
        arow[i] = SIZE_MAX;
        if (t < 0)
            continue;
        size_t k = 0;
        while (k < n - 1 && st[k].t < t)
            k++;
        /* At a line of that exact time prefer the last one of it (the reply, the body). */
        while (k + 1 < n && st[k + 1].t == t && st[k].t == t && st[k + 1].kind != SK_END)
            k++;
        if (nrows < n && k >= SVG_HEAD_STEPS && k < n - SVG_TAIL_STEPS)
            arow[i] = SVG_HEAD_STEPS;
        else
            arow[i] = nrows < n && k >= n - SVG_TAIL_STEPS ? nrows - (n - k) : k;
    }
    for (i = 0; i < nan; i++) {
        size_t r = arow[i], j, prev = 0;
        while (prev < i && arow[prev] != r)
            prev++;
        if (r == SIZE_MAX || prev < i)
            continue; /* the whole session's, or drawn with an earlier one */
        const char *sev = svg_sev_class(svg_str(json_array_get(an, i), "severity"));
        fprintf(f,
                "<g class=\"anomaly\" data-anomaly=\"%zu\"><rect class=\"a-%s\" x=\"2\" "
                "y=\"%.1f\" width=\"%d\" height=\"%d\" rx=\"3\"><title>",
                i + 1, sev, rows[r].y - SVG_ROW + 4, SVG_W - 4, SVG_ROW);
        for (j = i; j < nan; j++) {
            if (arow[j] != r)
                continue;
            json_t *a = json_array_get(an, j);
            fprintf(f, "%s[%zu] ", j > i ? "\n" : "", j + 1);
            svg_puts(f, svg_str(a, "id"), 64);
            fputs(": ", f);
            svg_puts(f, svg_str(a, "message"), 0);
        }
        fprintf(f, "</title></rect><text class=\"an\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
                SVG_W - 6, rows[r].y - 3);
        for (j = i; j < nan; j++) {
            if (arow[j] != r)
                continue;
            fprintf(f, "%s[%zu] ", j > i ? " " : "", j + 1);
            svg_puts(f, svg_str(json_array_get(an, j), "id"), 40);
        }
        fputs("</text></g>", f);
    }
    mem_free(arow);

    for (size_t r = 0; r < nrows; r++) {
        double ry = rows[r].y;
        char tb[32];
        if (rows[r].pause_ms > 0) {
            double py = ry - SVG_ROW - SVG_BREAK / 2.0;
            fprintf(f,
                    "<line class=\"pause\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/><text "
                    "class=\"lp\" x=\"%d\" y=\"%.1f\" text-anchor=\"middle\">... %s later</text>",
                    SVG_X_CLIENT, py, SVG_X_SERVER, py, (SVG_X_CLIENT + SVG_X_SERVER) / 2, py + 4,
                    svg_fmt_ms(rows[r].pause_ms, tb, sizeof tb));
        }
        if (rows[r].step == SIZE_MAX) {
            size_t k = n - SVG_HEAD_STEPS - SVG_TAIL_STEPS;
            char t1[32], t2[32];
            fprintf(f,
                    "<rect class=\"more\" x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\"/><text "
                    "class=\"lp\" x=\"%d\" y=\"%.1f\" text-anchor=\"middle\">... %zu more steps "
                    "(%s to %s) not drawn: see the transcript</text>",
                    SVG_X_CLIENT, ry - 14, SVG_X_SERVER - SVG_X_CLIENT, 16,
                    (SVG_X_CLIENT + SVG_X_SERVER) / 2, ry - 2, k,
                    svg_fmt_ms(st[SVG_HEAD_STEPS].t, t1, sizeof t1),
                    svg_fmt_ms(st[n - SVG_TAIL_STEPS - 1].t, t2, sizeof t2));
            continue;
        }
        const struct svg_step *p = &st[rows[r].step];
        fprintf(f, "<text class=\"t\" x=\"%d\" y=\"%.1f\">%s</text>", SVG_X_TIME, ry,
                svg_fmt_ms(p->t, tb, sizeof tb));
        double mid = (SVG_X_CLIENT + SVG_X_SERVER) / 2.0;
        double ly = ry - SVG_SLANT - 2;
        switch (p->kind) {
        case SK_LINE: {
            const char *stroke, *label;
            svg_line_class(p, &stroke, &label);
            int dec = json_is_true(json_object_get(p->line, "decrypted"));
            svg_arrow(f, ry, p->client, stroke, dec ? " dec" : "");
            fprintf(f, "<text class=\"%s\" x=\"%.0f\" y=\"%.1f\" text-anchor=\"middle\">", label,
                    mid, ly);
            svg_jstr(f, json_object_get(p->line, "line"), SVG_LABEL_MAX);
            if (dec)
                fputs(" (in TLS)", f);
            fputs("</text>", f);
            break;
        }
        case SK_TCP:
        case SK_RST:
            svg_arrow(f, ry, p->client, p->kind == SK_RST ? "rst" : "tcp", "");
            fprintf(f, "<text class=\"%s\" x=\"%.0f\" y=\"%.1f\" text-anchor=\"middle\">",
                    p->kind == SK_RST ? "lr" : "lt", mid, ly);
            svg_puts(f, p->text, 0);
            fputs("</text>", f);
            break;
        case SK_HOLE:
        case SK_MARK: {
            double x = p->client ? SVG_X_CLIENT : SVG_X_SERVER;
            int hole = p->kind == SK_HOLE;
            fprintf(f,
                    "<rect class=\"%s\" x=\"%.0f\" y=\"%.1f\" width=\"12\" height=\"14\"/>"
                    "<text class=\"%s\" x=\"%.0f\" y=\"%.1f\" text-anchor=\"%s\">",
                    hole ? "hole" : "mark", x - 6, ry - 12, hole ? "lh" : "lm",
                    p->client ? x + 12 : x - 12, ry - 2, p->client ? "start" : "end");
            svg_puts(f, p->text, 0);
            fprintf(f, " (%s)</text>", p->client ? "client" : "server");
            break;
        }
        case SK_END:
            fprintf(f, "<text class=\"lt\" x=\"%.0f\" y=\"%.1f\" text-anchor=\"middle\">", mid,
                    ry - 2);
            svg_puts(f, p->text, 0);
            fputs("</text>", f);
            break;
        default:
            break;
        }
    }

    /* The anomalies' sentences, numbered as their bands. */
    double ny = notes_y;
    for (i = 0; i < nan; i++) {
        json_t *a = json_array_get(an, i);
        const char *msg = svg_str(a, "message");
        double t = svg_anomaly_time(s, a, st, n);
        char tb[32];
        fprintf(f, "<text class=\"an\" x=\"%d\" y=\"%.1f\">[%zu] ", SVG_X_TIME, ny, i + 1);
        svg_puts(f, svg_str(a, "severity"), 16);
        fputc(' ', f);
        svg_puts(f, svg_str(a, "id"), 64);
        if (t >= 0)
            fprintf(f, " at %s", svg_fmt_ms(t, tb, sizeof tb));
        else
            fputs(" (the whole session)", f);
        fputs("</text><text class=\"note\">", f);
        int lines = svg_wrapped(f, SVG_X_TIME + 16, ny + 14, msg ? msg : "", msg ? strlen(msg) : 0);
        fputs("</text>", f);
        ny += 16 + 14.0 * lines;
    }
    fputs("</svg>", f);
    if (standalone)
        fputc('\n', f);
    mem_free(rows);
    mem_free(st);
    return ferror(f) ? -1 : 0;
}

/* ---- --svg DIR ---- */

int
svg_dir_open(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "--svg %s: %s", path,
                 errno == ENOTDIR ? "not a directory" : strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "--svg %s: not a directory", path);
        close(fd);
        return -1;
    }
    /* Anyone could rename the files there and put others in their place. */
    if ((sb.st_mode & S_IWOTH) && !(sb.st_mode & S_ISVTX)) {
        snprintf(err, errlen,
                 "--svg %s: anyone may write to this directory and it has no sticky bit: "
                 "refused",
                 path);
        close(fd);
        return -1;
    }
    return fd;
}

int
svg_write_file(int dirfd, json_t *s, char *err, size_t errlen)
{
    char name[64];
    json_t *id = json_object_get(s, "id");
    if (!json_is_integer(id)) {
        snprintf(err, errlen, "a session without id: no SVG file");
        return -1;
    }
    char sname[48];
    snprintf(name, sizeof name, "session-%s.svg", svg_session_name(s, sname, sizeof sname));
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", name,
                 errno == EEXIST ? "already exists: not overwritten" : strerror(errno));
        return -1;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    int rc = svg_ladder(f, s, 1);
    if (fclose(f) != 0)
        rc = -1;
    if (rc < 0)
        snprintf(err, errlen, "%s: %s", name, strerror(errno ? errno : EIO));
    return rc;
}
