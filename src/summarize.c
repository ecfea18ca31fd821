/* summarize.c - `smtpsniff summarize`: NDJSON reports read back with Jansson, their session
 * records given to the summary builder (summary.h) as the live analysis gives them. Each file
 * is one sensor; a session whose Community ID another sensor already reported with a start
 * within the join window is the same connection seen twice: counted once, both named.
 * The session outputs of the analysis (--lines, --html, --svg, the print filters) are made
 * from the records kept, by the analysis' own writers, in start order (sumout.h). */
#include "summarize.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filter.h"
#include "html.h"
#include "jsonx.h"
#include "jtree.h"
#include "lines.h"
#include "mem.h"
#include "summary.h"
#include "sumout.h"
#include "svg.h"

/* A longer line is counted bad and skipped, so memory per line stays bounded. */
#define SZ_MAX_LINE ((size_t)64 << 20)
#define SZ_CHUNK ((size_t)1 << 16)
/* Joined sessions listed (all are counted). */
#define SZ_LIST_JOINED 100

struct sz_input {
    const char *name;
    unsigned long long sessions, joined, bad, other, first_bad;
    char first_reason[160];
};

/* A session already counted, by Community ID, for the join. */
struct sz_seen {
    char *cid;
    int64_t start_us;
    uint64_t id;
    uint64_t matched; /* the sensors that saw it too */
    uint32_t sensor;
    int32_t group; /* its entry in "joined", -1 none */
    uint32_t next; /* chain in the hash table: index + 1, 0 end */
};

struct sz {
    struct summary *sum;
    struct jt *tree;
    struct sz_input in[SUMMARY_MAX_SENSORS];
    const char *names[SUMMARY_MAX_SENSORS];
    size_t nin;
    int64_t window_us;
    struct sz_seen *seen;
    size_t nseen, aseen;
    uint32_t *heads;
    size_t nheads;
    unsigned long long joined;
    json_t *joined_list;
    int nomem;
    /* The session outputs: the records kept and printed, in start order. */
    struct filter filter;
    struct sumout *out; /* NULL: only the summary */
    int out_failed;     /* errno of the first failure to keep a record, 0 none */
    /* The capture's times for the lines' #open/#close and the page's header: from the
     * inputs' summary records (the earliest first_packet, the latest last_packet), else
     * from the sessions (the earliest start, the latest end). */
    int64_t first_us, last_us, sess_first_us, sess_last_us;
    char first[48], last[48], sess_first[48], sess_last[48];
    long long packets;
    int have_packets;
};

static void
sz_usage(FILE *f)
{
    fputs("usage: smtpsniff summarize [--json | --lines [--lines-style tsv|aligned]]\n"
          "                           [--html FILE] [--svg DIR] [--join-window MS]\n"
          "                           [--min-severity SEV] [--anomaly ID] [--address ADDR]\n"
          "                           [--domain DOMAIN] FILE...\n"
          "  reads NDJSON reports of smtpsniff ('-' = stdin; each file one sensor) and\n"
          "  prints their closing summary; a session that two sensors saw (same Community\n"
          "  ID, starts within --join-window MS, default 1000) is counted once, the record\n"
          "  of the first input (in command-line order) that has it is the one written\n"
          "  --json              the summary as one NDJSON line instead of text\n"
          "  --lines             one line per transaction of every session, then the end\n"
          "                      the analysis writes (TSV: #close; aligned: the summary);\n"
          "                      Zeek smtp.log TSV, aligned columns on a terminal\n"
          "  --lines-style S     tsv or aligned whatever stdout is (implies --lines)\n"
          "  --html FILE         the HTML report of all inputs (summary from these figures)\n"
          "  --svg DIR           each session's ladder as DIR/session-<id>.svg (with\n"
          "                      several inputs, page and files name it <input>-<id>)\n"
          "  --min-severity, --anomaly, --address, --domain: print filters as in the\n"
          "                      analysis: which sessions the lines, page and SVG files\n"
          "                      show; the summary counts every session\n"
          "  sessions are written by start time, then input order, then order in the input\n",
          f);
}

static void sz_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
sz_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("smtpsniff: summarize: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (try 'smtpsniff summarize --help')\n", stderr);
    exit(2);
}

static uint32_t
sz_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int
sz_grow(struct sz *z)
{
    if (z->nseen < z->nheads && z->nseen < z->aseen)
        return 0;
    if (z->nseen == z->aseen) {
        size_t na = z->aseen ? z->aseen * 2 : 1024;
        struct sz_seen *p = mem_realloc(z->seen, na * sizeof *p);
        if (!p)
            return -1;
        z->seen = p;
        z->aseen = na;
    }
    if (z->nseen >= z->nheads) {
        size_t nh = z->nheads ? z->nheads * 2 : 1024;
        uint32_t *h = mem_calloc(nh, sizeof *h);
        if (!h)
            return -1;
        for (size_t i = 0; i < z->nseen; i++) {
            uint32_t b = sz_hash(z->seen[i].cid) & (uint32_t)(nh - 1);
            z->seen[i].next = h[b];
            h[b] = (uint32_t)i + 1;
        }
        mem_free(z->heads);
        z->heads = h;
        z->nheads = nh;
    }
    return 0;
}

/* RFC 3339 UTC as the reports write it, to microseconds; 0 when it is not. */
static int
sz_time(const char *s, int64_t *us)
{
    struct tm tm;
    int frac = 0, digits = 0;
    memset(&tm, 0, sizeof tm);
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    const char *p = strchr(s, '.');
    if (p)
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (digits < 6) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
    for (; digits < 6; digits++)
        frac *= 10;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *us = (int64_t)timegm(&tm) * 1000000 + frac;
    return 1;
}

static json_t *
sz_ref(const struct sz *z, uint32_t sensor, uint64_t id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "#%llu", (unsigned long long)id);
    size_t n = strlen(z->names[sensor]);
    char *t = mem_alloc(n + strlen(buf) + 1);
    if (!t)
        return NULL;
    snprintf(t, n + strlen(buf) + 1, "%s%s", z->names[sensor], buf);
    json_t *j = jx_str(t);
    mem_free(t);
    return j;
}

/* 1 when another sensor already reported this session (it is then named with it), 0 when it
 * is new (and remembered), -1 without memory. */
static int
sz_join(struct sz *z, uint32_t sensor, json_t *rec)
{
    const char *cid = json_string_value(json_object_get(rec, "community_id"));
    int64_t start;
    if (!cid || !sz_time(json_string_value(json_object_get(rec, "start")), &start))
        return 0;
    uint64_t id = (uint64_t)json_integer_value(json_object_get(rec, "id"));
    if (z->nheads) {
        uint32_t b = sz_hash(cid) & (uint32_t)(z->nheads - 1);
        for (uint32_t i = z->heads[b]; i; i = z->seen[i - 1].next) {
            struct sz_seen *e = &z->seen[i - 1];
            int64_t d = e->start_us - start;
            if (e->sensor == sensor || (e->matched >> sensor & 1) || d > z->window_us ||
                d < -z->window_us || strcmp(e->cid, cid) != 0)
                continue;
            e->matched |= (uint64_t)1 << sensor;
            z->joined++;
            if (e->group < 0 && json_array_size(z->joined_list) < SZ_LIST_JOINED) {
                json_t *g =
                    json_pack("{s:s,s:O,s:[o]}", "community_id", cid, "start",
                              json_object_get(rec, "start"), "ids", sz_ref(z, e->sensor, e->id));
                if (g && json_array_append_new(z->joined_list, g) == 0)
                    e->group = (int32_t)json_array_size(z->joined_list) - 1;
            }
            if (e->group >= 0)
                json_array_append_new(
                    json_object_get(json_array_get(z->joined_list, (size_t)e->group), "ids"),
                    sz_ref(z, sensor, id));
            return 1;
        }
    }
    if (sz_grow(z) < 0)
        return -1;
    struct sz_seen *e = &z->seen[z->nseen];
    e->cid = mem_strndup(cid, strlen(cid));
    if (!e->cid)
        return -1;
    e->start_us = start;
    e->id = id;
    e->matched = 0;
    e->sensor = sensor;
    e->group = -1;
    uint32_t b = sz_hash(cid) & (uint32_t)(z->nheads - 1);
    e->next = z->heads[b];
    z->heads[b] = (uint32_t)++z->nseen;
    return 0;
}

/* Keeps the earliest and the latest of RFC 3339 times (the text too, as the report wrote it). */
static void
sz_time_min(const char *s, int64_t *us, char *text, size_t textlen)
{
    int64_t t;
    if (s && sz_time(s, &t) && (!text[0] || t < *us)) {
        *us = t;
        snprintf(text, textlen, "%s", s);
    }
}

static void
sz_time_max(const char *s, int64_t *us, char *text, size_t textlen)
{
    int64_t t;
    if (s && sz_time(s, &t) && (!text[0] || t > *us)) {
        *us = t;
        snprintf(text, textlen, "%s", s);
    }
}

/* An input's summary record: the capture it closed, for the lines' #open/#close and the
 * page's header. */
static void
sz_capture_times(struct sz *z, json_t *rec)
{
    sz_time_min(json_string_value(json_object_get(rec, "first_packet")), &z->first_us, z->first,
                sizeof z->first);
    sz_time_max(json_string_value(json_object_get(rec, "last_packet")), &z->last_us, z->last,
                sizeof z->last);
    json_t *p = json_object_get(rec, "packets");
    if (json_is_integer(p)) {
        z->packets += (long long)json_integer_value(p);
        z->have_packets = 1;
    }
}

/* A session counted: handed to the session outputs when the filters print it. */
static void
sz_keep(struct sz *z, uint32_t sensor, json_t *rec, const char *text, size_t n)
{
    const char *start = json_string_value(json_object_get(rec, "start"));
    sz_time_min(start, &z->sess_first_us, z->sess_first, sizeof z->sess_first);
    sz_time_max(json_string_value(json_object_get(rec, "end")), &z->sess_last_us, z->sess_last,
                sizeof z->sess_last);
    if (!z->out || z->out_failed || !filter_session(&z->filter, jt_root(z->tree)))
        return;
    /* A record without a readable start sorts first, in input order. */
    int64_t start_us = INT64_MIN;
    if (start)
        sz_time(start, &start_us);
    /* Sessions of two sensors may have the same id: with several inputs the page and the
     * SVG files name them by input too (svg.h). A record carrying the member itself is not
     * believed. */
    char *named = NULL;
    if (z->nin > 1 || json_object_get(rec, SVG_INPUT_KEY)) {
        if (z->nin > 1)
            jx_set(rec, SVG_INPUT_KEY, json_integer((json_int_t)sensor + 1));
        else
            json_object_del(rec, SVG_INPUT_KEY);
        named = json_dumps(rec, JSON_COMPACT);
        if (!named) {
            z->out_failed = ENOMEM;
            return;
        }
        text = named;
        n = strlen(named);
    }
    errno = 0;
    if (sumout_add(z->out, start_us, jt_root(z->tree), text, n) < 0)
        z->out_failed = errno ? errno : EIO;
    if (named) {
        json_free_t release = NULL;
        json_get_alloc_funcs(NULL, &release);
        if (release)
            release(named);
    }
}

static void
sz_bad(struct sz_input *in, unsigned long long lineno, const char *reason)
{
    if (!in->bad++) {
        in->first_bad = lineno;
        snprintf(in->first_reason, sizeof in->first_reason, "%s", reason);
    }
}

static void
sz_line(struct sz *z, uint32_t sensor, unsigned long long lineno, const char *p, size_t n,
        int toolong)
{
    struct sz_input *in = &z->in[sensor];
    if (toolong) {
        sz_bad(in, lineno, "line longer than 64 MiB");
        return;
    }
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;
    json_error_t err;
    json_t *rec = json_loadb(p, n, JSON_ALLOW_NUL, &err);
    if (!json_is_object(rec)) {
        sz_bad(in, lineno, rec ? "not a JSON object" : err.text);
        json_decref(rec);
        return;
    }
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (!type || strcmp(type, "session") != 0) {
        if (type && strcmp(type, "summary") == 0)
            sz_capture_times(z, rec);
        in->other++;
        json_decref(rec);
        return;
    }
    in->sessions++;
    int j = sz_join(z, sensor, rec);
    if (j < 0)
        z->nomem = 1;
    if (j == 1) {
        in->joined++;
    } else {
        jt_reset(z->tree);
        if (jt_from_json(jt_root(z->tree), rec) < 0 || jt_failed(z->tree)) {
            z->nomem = 1;
        } else {
            summary_add(z->sum, jt_root(z->tree), NULL, sensor);
            sz_keep(z, sensor, rec, p, n);
        }
    }
    json_decref(rec);
}

/* Reads f line by line, each at most SZ_MAX_LINE bytes kept. -1 on a read error (errno). */
static int
sz_read(struct sz *z, uint32_t sensor, FILE *f)
{
    char *chunk = mem_alloc(SZ_CHUNK), *line = NULL;
    size_t len = 0, alloc = 0;
    int toolong = 0;
    unsigned long long lineno = 0;
    size_t n;
    if (!chunk) {
        z->nomem = 1;
        return 0;
    }
    while ((n = fread(chunk, 1, SZ_CHUNK, f)) > 0) {
        const char *p = chunk;
        while (n) {
            const char *nl = memchr(p, '\n', n);
            size_t seg = nl ? (size_t)(nl - p) : n;
            if (!toolong && len + seg > SZ_MAX_LINE) {
                toolong = 1;
                len = 0;
            }
            if (!toolong && seg) {
                if (len + seg > alloc) {
                    size_t na = alloc ? alloc : 4096;
                    while (na < len + seg)
                        na *= 2;
                    char *q = mem_realloc(line, na);
                    if (!q) {
                        z->nomem = 1;
                        toolong = 1;
                        len = 0;
                    } else {
                        line = q;
                        alloc = na;
                    }
                }
                if (!toolong) {
                    memcpy(line + len, p, seg);
                    len += seg;
                }
            }
            if (!nl)
                break;
            sz_line(z, sensor, ++lineno, line, len, toolong);
            len = 0;
            toolong = 0;
            /* A huge line's buffer is given back, so memory stays flat. */
            if (alloc > ((size_t)1 << 20)) {
                mem_free(line);
                line = NULL;
                alloc = 0;
            }
            n -= seg + 1;
            p = nl + 1;
        }
    }
    int rc = ferror(f) ? -1 : 0;
    if (rc == 0 && (len || toolong))
        sz_line(z, sensor, ++lineno, line, len, toolong);
    mem_free(line);
    mem_free(chunk);
    return rc;
}

static json_t *
sz_result(struct sz *z)
{
    json_t *o = json_object(), *inputs = json_array();
    jx_set(o, "type", json_string("summary"));
    jx_set(o, "schema", json_string("smtpsniff.summary/1"));
    jx_set(o, "source", json_string("summarize"));
    for (size_t i = 0; i < z->nin; i++) {
        const struct sz_input *in = &z->in[i];
        json_array_append_new(inputs,
                              json_pack("{s:o,s:I,s:I,s:I,s:I}", "name", jx_str(in->name),
                                        "sessions", (json_int_t)in->sessions, "joined",
                                        (json_int_t)in->joined, "bad_lines", (json_int_t)in->bad,
                                        "other_records", (json_int_t)in->other));
    }
    jx_set(o, "inputs", inputs);
    jx_set(o, "joined_sessions", json_integer((json_int_t)z->joined));
    json_object_set(o, "joined", z->joined_list);
    if (summary_figures(z->sum, o) < 0)
        z->nomem = 1;
    return o;
}

/* An option's argument (the next word). */
static const char *
sz_arg(int argc, char **argv, int *i)
{
    if (*i + 1 == argc)
        sz_usage_error("option '%s' is missing its argument", argv[*i]);
    return argv[++*i];
}

/* The session outputs asked for, opened before any input is read (as the analysis opens
 * its outputs before the capture). */
struct sz_outputs {
    int lines; /* 1 + enum lines_style once decided; 0 none */
    int lines_style;
    const char *html_path, *svg_dir;
    int svg_fd;
    FILE *page;
    struct lines *l;
    struct html *h;
};

/* The page's title: the inputs read. */
static void
sz_title(const struct sz *z, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < z->nin && len + 1 < outlen; i++) {
        int n = snprintf(out + len, outlen - len, "%s%s", i ? ", " : "",
                         strcmp(z->names[i], "-") == 0 ? "standard input" : z->names[i]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* 0, or the exit status (3) with the reason told. */
static int
sz_open_outputs(struct sz *z, struct sz_outputs *o)
{
    char err[512], title[1024];
    if (o->lines) {
        o->l = lines_create((enum lines_style)(o->lines - 1));
        if (!o->l)
            goto nomem;
    }
    if (o->svg_dir) {
        o->svg_fd = svg_dir_open(o->svg_dir, err, sizeof err);
        if (o->svg_fd < 0) {
            fprintf(stderr, "smtpsniff: %s\n", err);
            return 3;
        }
    }
    if (o->html_path) {
        /* Never written through a symlink planted at the name. */
        int fd = open(o->html_path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        o->page = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!o->page) {
            fprintf(stderr, "smtpsniff: cannot write %s: %s\n", o->html_path, strerror(errno));
            if (fd >= 0)
                close(fd);
            return 3;
        }
    }
    if (o->html_path || o->svg_dir) {
        sz_title(z, title, sizeof title);
        errno = 0;
        o->h = html_begin(o->page, o->svg_fd, o->svg_dir, title);
        if (!o->h) {
            fprintf(stderr, "smtpsniff: cannot write %s: %s\n",
                    o->html_path ? o->html_path : o->svg_dir, strerror(errno ? errno : ENOMEM));
            return 3;
        }
    }
    if (o->l || o->h) {
        errno = 0;
        z->out = sumout_create(o->l, o->h);
        if (!z->out) {
            fprintf(stderr, "smtpsniff: cannot make a temporary file: %s\n",
                    strerror(errno ? errno : ENOMEM));
            return 3;
        }
    }
    return 0;
nomem:
    fputs("smtpsniff: out of memory\n", stderr);
    return 3;
}

/* The summary with the capture's times and packets, for the lines' #close and the page's
 * header (a shallow copy: o keeps its members). NULL without memory. */
static json_t *
sz_capture_summary(const struct sz *z, json_t *o)
{
    json_t *c = json_copy(o);
    const char *first = z->first[0] ? z->first : z->sess_first;
    const char *last = z->last[0] ? z->last : z->sess_last;
    if (!c)
        return NULL;
    if (first[0])
        jx_set(c, "first_packet", json_string(first));
    if (last[0])
        jx_set(c, "last_packet", json_string(last));
    if (z->have_packets)
        jx_set(c, "packets", json_integer((json_int_t)z->packets));
    return c;
}

/* Writes the session outputs, then what ends them, then the summary on stdout. */
static int
sz_write(struct sz *z, struct sz_outputs *so, int as_json, json_t *o)
{
    int status = 0;
    json_t *cap = z->out ? sz_capture_summary(z, o) : NULL;
    if (z->out && !cap) {
        fputs("smtpsniff: out of memory\n", stderr);
        return 3;
    }
    errno = 0;
    if (z->out && (z->out_failed || sumout_finish(z->out, stdout) < 0)) {
        int e = z->out_failed ? z->out_failed : errno;
        if (e != EPIPE)
            fprintf(stderr, "smtpsniff: cannot write the sessions: %s\n", strerror(e ? e : EIO));
        json_decref(cap);
        return 3;
    }
    if (so->l && lines_end(so->l, stdout, cap) < 0)
        status = 3;
    if (so->l && lines_style(so->l) == LINES_TSV) {
        /* TSV ends with its #close line, as the analysis' does: no text after it. */
    } else if (as_json) {
        /* In the reports' key order, as the analysis writes its summary. */
        json_t *ord = jx_ordered(o);
        char *s = ord ? json_dumps(ord, JX_DUMP_FLAGS) : NULL;
        json_decref(ord);
        if (!s || fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF)
            status = 3;
        json_free_t release = NULL;
        json_get_alloc_funcs(NULL, &release);
        if (s && release)
            release(s);
    } else {
        summary_text(stdout, o);
    }
    errno = 0;
    if (so->h && html_end(so->h, cap) < 0) {
        fprintf(stderr, "smtpsniff: cannot write %s: %s\n", so->html_path,
                strerror(errno ? errno : EIO));
        status = 3;
    }
    if (so->page) {
        int rc = fclose(so->page);
        so->page = NULL;
        if (rc != 0 && status != 3) {
            fprintf(stderr, "smtpsniff: cannot write %s: %s\n", so->html_path, strerror(errno));
            status = 3;
        }
    }
    /* An SVG file not written is an output error, as in the analysis. */
    if (so->h && html_failures(so->h))
        status = 3;
    json_decref(cap);
    return status;
}

int
summarize_main(int argc, char **argv)
{
    int as_json = 0, stdin_used = 0, opts_done = 0;
    struct sz z;
    struct sz_outputs so = {.lines_style = -1, .svg_fd = -1};
    memset(&z, 0, sizeof z);
    filter_init(&z.filter);
    z.window_us = 1000000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = 1;
        } else if (!opts_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            sz_usage(stdout);
            return 0;
        } else if (!opts_done && strcmp(a, "--json") == 0) {
            as_json = 1;
        } else if (!opts_done && strcmp(a, "--join-window") == 0) {
            char *end;
            const char *v = sz_arg(argc, argv, &i);
            errno = 0;
            double ms = strtod(v, &end);
            if (errno || end == v || *end || !(ms >= 0 && ms <= 3600000))
                sz_usage_error("invalid --join-window '%s' (0..3600000 ms)", v);
            z.window_us = (int64_t)(ms * 1000.0 + 0.5);
        } else if (!opts_done && strcmp(a, "--lines") == 0) {
            so.lines = 1;
        } else if (!opts_done && strcmp(a, "--lines-style") == 0) {
            const char *v = sz_arg(argc, argv, &i);
            so.lines = 1;
            if (strcmp(v, "tsv") == 0)
                so.lines_style = LINES_TSV;
            else if (strcmp(v, "aligned") == 0)
                so.lines_style = LINES_ALIGNED;
            else
                sz_usage_error("invalid --lines-style '%s' (tsv, aligned)", v);
        } else if (!opts_done && strcmp(a, "--html") == 0) {
            so.html_path = sz_arg(argc, argv, &i);
        } else if (!opts_done && strcmp(a, "--svg") == 0) {
            so.svg_dir = sz_arg(argc, argv, &i);
        } else if (!opts_done && (strcmp(a, "--min-severity") == 0 || strcmp(a, "--anomaly") == 0 ||
                                  strcmp(a, "--address") == 0 || strcmp(a, "--domain") == 0)) {
            char ferr[256];
            enum filter_kind k = strcmp(a, "--min-severity") == 0 ? FILTER_MIN_SEVERITY
                                 : strcmp(a, "--anomaly") == 0    ? FILTER_ANOMALY
                                 : strcmp(a, "--address") == 0    ? FILTER_ADDRESS
                                                                  : FILTER_DOMAIN;
            if (filter_add(&z.filter, k, sz_arg(argc, argv, &i), ferr, sizeof ferr) < 0)
                sz_usage_error("%s", ferr);
        } else if (!opts_done && a[0] == '-' && a[1]) {
            sz_usage_error("unknown option '%s'", a);
        } else {
            if (z.nin == SUMMARY_MAX_SENSORS)
                sz_usage_error("too many inputs (at most %s)", "64");
            if (strcmp(a, "-") == 0 && stdin_used++)
                sz_usage_error("%s", "standard input ('-') can be read only once");
            z.in[z.nin].name = a;
            z.names[z.nin] = a;
            z.nin++;
        }
    }
    if (z.nin == 0)
        sz_usage_error("%s", "nothing to read: give one or more NDJSON reports");
    if (so.lines && as_json)
        sz_usage_error("%s", "--lines and --json cannot both write to standard output");
    if (so.lines)
        so.lines = 1 + (so.lines_style >= 0     ? so.lines_style
                        : isatty(STDOUT_FILENO) ? LINES_ALIGNED
                                                : LINES_TSV);
    z.sum = summary_create();
    z.tree = jt_new();
    z.joined_list = json_array();
    int status = 0;
    if (!z.sum || !z.tree || !z.joined_list) {
        fputs("smtpsniff: out of memory\n", stderr);
        status = 3;
        goto out;
    }
    status = sz_open_outputs(&z, &so);
    if (status)
        goto out;
    summary_set_sensors(z.sum, z.nin, z.names);
    for (size_t i = 0; i < z.nin && status == 0; i++) {
        int is_stdin = strcmp(z.in[i].name, "-") == 0;
        errno = 0;
        FILE *f = is_stdin ? stdin : fopen(z.in[i].name, "r");
        if (!f || sz_read(&z, (uint32_t)i, f) < 0) {
            fprintf(stderr, "smtpsniff: cannot read %s: %s\n", z.in[i].name,
                    strerror(errno ? errno : EIO));
            status = 3;
        }
        if (f && !is_stdin)
            fclose(f);
        if (z.in[i].bad)
            fprintf(stderr, "smtpsniff: %s: %llu bad line(s), the first at line %llu: %s\n",
                    z.in[i].name, z.in[i].bad, z.in[i].first_bad, z.in[i].first_reason);
    }
    if (status == 0) {
        json_t *o = sz_result(&z);
        if (z.nomem) {
            fputs("smtpsniff: out of memory\n", stderr);
            status = 3;
        } else {
            status = sz_write(&z, &so, as_json, o);
        }
        json_decref(o);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            if (errno != EPIPE && status != 3)
                fprintf(stderr, "smtpsniff: cannot write the summary: %s\n",
                        strerror(errno ? errno : EIO));
            status = 3;
        }
    }
out:
    for (size_t i = 0; i < z.nseen; i++)
        mem_free(z.seen[i].cid);
    mem_free(z.seen);
    mem_free(z.heads);
    json_decref(z.joined_list);
    jt_free(z.tree);
    summary_destroy(z.sum);
    sumout_destroy(z.out);
    if (so.page)
        fclose(so.page);
    html_destroy(so.h);
    lines_destroy(so.l);
    if (so.svg_fd >= 0)
        close(so.svg_fd);
    return status;
}
