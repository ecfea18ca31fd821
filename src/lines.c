/* lines.c - one line per transaction, Zeek smtp.log style (see lines.h).
 *
 * Zeek's ASCII log conventions are followed so that zeek-cut works: a header of '#' lines
 * (separator, set separator, the strings for empty and unset fields, path, open time,
 * field names and types), one record per line with fields separated by TAB, sets joined by
 * ',', "-" for a field with no value and "(empty)" for an empty string or set, and a #close
 * line at the end. Field names are Zeek's where the meaning is the same; ours follow. */
#include "lines.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "esc.h"
#include "jtree.h"
#include "mem.h"

/* Zeek's fields first, in smtp.log's order, then ours. */
enum lines_field {
    LF_TS,
    LF_UID,
    LF_ORIG_H,
    LF_ORIG_P,
    LF_RESP_H,
    LF_RESP_P,
    LF_TRANS_DEPTH,
    LF_HELO,
    LF_MAILFROM,
    LF_RCPTTO,
    LF_MSG_ID,
    LF_LAST_REPLY,
    LF_TLS,
    LF_RCPTTO_REFUSED,
    LF_REPLY_CODE,
    LF_REPLY_ENHANCED,
    LF_OUTCOME,
    LF_SIZE,
    LF_QUEUE_ID,
    LF_AUTH,
    LF_ANOMALIES,
    LF_TCP_END,
    LF_COMMUNITY_ID,
    LF_COUNT
};

static const struct {
    const char *name, *type;
    int width; /* aligned columns: the least width (longer values push the line on) */
} lines_fields[LF_COUNT] = {
    [LF_TS] = {"ts", "time", 27},
    [LF_UID] = {"uid", "string", 6},
    [LF_ORIG_H] = {"id.orig_h", "addr", 15},
    [LF_ORIG_P] = {"id.orig_p", "port", 9},
    [LF_RESP_H] = {"id.resp_h", "addr", 15},
    [LF_RESP_P] = {"id.resp_p", "port", 9},
    [LF_TRANS_DEPTH] = {"trans_depth", "count", 11},
    [LF_HELO] = {"helo", "string", 20},
    [LF_MAILFROM] = {"mailfrom", "string", 24},
    [LF_RCPTTO] = {"rcptto", "set[string]", 24},
    [LF_MSG_ID] = {"msg_id", "string", 20},
    [LF_LAST_REPLY] = {"last_reply", "string", 32},
    [LF_TLS] = {"tls", "bool", 3},
    [LF_RCPTTO_REFUSED] = {"rcptto_refused", "set[string]", 14},
    [LF_REPLY_CODE] = {"reply_code", "count", 10},
    [LF_REPLY_ENHANCED] = {"reply_enhanced", "string", 14},
    [LF_OUTCOME] = {"outcome", "string", 10},
    [LF_SIZE] = {"size", "count", 8},
    [LF_QUEUE_ID] = {"queue_id", "string", 12},
    [LF_AUTH] = {"auth", "bool", 4},
    [LF_ANOMALIES] = {"anomalies", "set[string]", 20},
    [LF_TCP_END] = {"tcp_end", "string", 14},
    [LF_COMMUNITY_ID] = {"community_id", "string", 0},
};

#define LINES_UNSET "-"
#define LINES_EMPTY "(empty)"
/* One string value is cut at this many bytes once escaped (a HELO name or a reply text can
 * be as long as a line the server took): a line stays a line. */
#define LINES_VALUE_MAX 4096
#define LINES_LINE_MAX (1u << 20)

struct lines {
    enum lines_style style;
    int header_done;
};

struct lines *
lines_create(enum lines_style style)
{
    struct lines *l = mem_calloc(1, sizeof *l);
    if (l)
        l->style = style;
    return l;
}

void
lines_destroy(struct lines *l)
{
    mem_free(l);
}

enum lines_style
lines_style(const struct lines *l)
{
    return l->style;
}

/* ---- values ---- */

static void
lines_add(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* A string from the report, escaped: terminal-safe as the text view writes it (esc.h: TAB,
 * newlines and other controls as \xNN), a set element's ',' as \x2c, and a value that reads
 * as the unset or empty marker with its first byte escaped, as Zeek writes them. */
static void
lines_add_str(struct buf *b, const char *s, int set_elem)
{
    char tmp[LINES_VALUE_MAX];
    if (strcmp(s, LINES_UNSET) == 0 || strcmp(s, LINES_EMPTY) == 0) {
        lines_add(b, s[0] == '-' ? "\\x2d" : "\\x28");
        s++;
    }
    size_t n = esc_str(s, strlen(s), tmp, sizeof tmp);
    for (size_t i = 0; i < n; i++) {
        if (set_elem && tmp[i] == ',')
            lines_add(b, "\\x2c");
        else
            buf_append_byte(b, (uint8_t)tmp[i]);
    }
}

/* A string field: unset when absent, (empty) when empty. */
static void
lines_add_field_str(struct buf *b, const char *s)
{
    if (!s)
        lines_add(b, LINES_UNSET);
    else if (!*s)
        lines_add(b, LINES_EMPTY);
    else
        lines_add_str(b, s, 0);
}

static void
lines_add_int(struct buf *b, const struct jt_val *v)
{
    char tmp[32];
    if (!v || v->type != JT_INT) {
        lines_add(b, LINES_UNSET);
        return;
    }
    snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
    lines_add(b, tmp);
}

static void
lines_add_bool(struct buf *b, int v)
{
    lines_add(b, v ? "T" : "F");
}

/* A set being written: elements joined by ',', (empty) when none came. */
struct lines_set {
    struct buf *b;
    size_t n;
};

static void
lines_set_add(struct lines_set *st, const char *s)
{
    if (!s)
        return;
    if (st->n++)
        buf_append_byte(st->b, ',');
    if (!*s)
        lines_add(st->b, LINES_EMPTY);
    else
        lines_add_str(st->b, s, 1);
}

static void
lines_set_end(struct lines_set *st)
{
    if (!st->n)
        lines_add(st->b, LINES_EMPTY);
}

/* ---- times ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t
lines_days(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The report's RFC 3339 UTC time ("2026-11-25T13:20:38.843136Z") in microseconds since the
 * epoch; 0 when it is not one. */
static int64_t
lines_parse_time(const char *s)
{
    int y, mo, d, h, mi, sec, us = 0, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return 0;
    if (s[n] == '.') {
        int k = 0;
        for (n++; s[n] >= '0' && s[n] <= '9'; n++)
            if (k++ < 6)
                us = us * 10 + (s[n] - '0');
        for (; k < 6; k++)
            us *= 10;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return 0;
    int64_t days = lines_days(y, (unsigned)mo, (unsigned)d);
    return ((days * 86400) + h * 3600 + mi * 60 + sec) * INT64_C(1000000) + us;
}

static void
lines_add_time(struct buf *b, enum lines_style style, int64_t us)
{
    char tmp[64];
    int64_t s = us / 1000000, frac = us % 1000000;
    if (style == LINES_TSV) {
        snprintf(tmp, sizeof tmp, "%lld.%06lld", (long long)s, (long long)frac);
    } else {
        time_t t = (time_t)s;
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(tmp + n, sizeof tmp - n, ".%06lldZ", (long long)frac);
    }
    lines_add(b, tmp);
}

/* ---- one line ---- */

static int
lines_code_fails(int64_t code)
{
    return code >= 400 && code < 600;
}

/* The reply a transaction's line reports: the final reply to its message when there is
 * one, else the last 4xx/5xx of the transaction (MAIL, RCPT, DATA, in the order the server
 * sent them), else none when the message went without a final reply, else the last reply
 * it got. Its code, enhanced code and text. */
struct lines_reply {
    const struct jt_val *code;
    const char *enhanced, *text;
};

static void
lines_reply_take(struct lines_reply *r, int *failed, const struct jt_val *code,
                 const char *enhanced, const char *text)
{
    if (!code || code->type != JT_INT)
        return;
    int f = lines_code_fails(code->u.i);
    if (*failed && !f)
        return;
    *failed = f;
    r->code = code;
    r->enhanced = enhanced;
    r->text = text;
}

static struct lines_reply
lines_txn_reply(const struct jt_node *t)
{
    struct lines_reply r = {0};
    int failed = 0;
    lines_reply_take(&r, &failed, jt_get(t, "mail_code"), jt_str(jt_get(t, "mail_enhanced")),
                     jt_str(jt_get(t, "mail_text")));
    const struct jt_node *rcpt = jt_arr(jt_get(t, "rcpt"));
    for (size_t i = 0; i < jt_size(rcpt); i++) {
        const struct jt_node *e = jt_obj(jt_at(rcpt, i));
        lines_reply_take(&r, &failed, jt_get(e, "code"), jt_str(jt_get(e, "enhanced")),
                         jt_str(jt_get(e, "text")));
    }
    const struct jt_node *data = jt_obj(jt_get(t, "data"));
    const struct jt_val *code = jt_get(data, "code");
    if (code && code->type == JT_INT) {
        r.code = code;
        r.enhanced = jt_str(jt_get(data, "enhanced"));
        r.text = jt_str(jt_get(data, "text"));
    } else if (data && !failed) {
        /* The message was sent and its final reply is not in the capture: that is the
         * reply this line is about, and it has none. */
        memset(&r, 0, sizeof r);
    }
    return r;
}

/* The session's last error reply, for a line without a transaction: what it ended on. */
static struct lines_reply
lines_session_reply(const struct jt_node *s)
{
    struct lines_reply r = {0};
    const struct jt_node *errs = jt_arr(jt_get(jt_obj(jt_get(s, "smtp")), "error_replies"));
    size_t n = jt_size(errs);
    if (n) {
        const struct jt_node *e = jt_obj(jt_at(errs, n - 1));
        r.code = jt_get(e, "code");
        r.enhanced = jt_str(jt_get(e, "enhanced"));
        r.text = jt_str(jt_get(e, "text"));
    }
    return r;
}

/* A transaction's outcome in the session's own terms (docs/schema.md `outcome`), judged as
 * the session's is from each transaction: delivered on a 2xx final reply, incomplete when
 * still open at the end, rejected or deferred from its last 5xx or 4xx, aborted otherwise
 * (ended by RSET, HELO or QUIT before a verdict; or a nested MAIL's 503). */
static const char *
lines_txn_outcome(const struct jt_node *t, const struct lines_reply *r)
{
    const struct jt_node *data = jt_obj(jt_get(t, "data"));
    int64_t code = jt_int(jt_get(data, "code"), 0);
    const char *ended = jt_str(jt_get(t, "ended_by"));
    if (code / 100 == 2)
        return "delivered";
    if (!ended || strcmp(ended, "connection_end") == 0)
        return "incomplete";
    if (strcmp(ended, "mail_rejected") == 0 && jt_int(jt_get(t, "mail_code"), 0) == 503 && !data)
        return "aborted";
    int64_t last = r->code ? jt_int(r->code, 0) : 0;
    if (last / 100 == 5)
        return "rejected";
    if (last / 100 == 4)
        return "deferred";
    return "aborted";
}

static int
lines_session_tls(const struct jt_node *s)
{
    return jt_is_true(jt_get(jt_obj(jt_get(s, "tls")), "encrypted"));
}

static int
lines_session_auth(const struct jt_node *s)
{
    const struct jt_node *auth = jt_arr(jt_get(s, "auth"));
    for (size_t i = 0; i < jt_size(auth); i++) {
        const char *res = jt_str(jt_get(jt_obj(jt_at(auth, i)), "result"));
        if (res && strcmp(res, "success") == 0)
            return 1;
    }
    return 0;
}

static void
lines_field(const struct lines *l, struct buf *b, enum lines_field k, const struct jt_node *s,
            const struct jt_node *t, size_t depth, int64_t ts_us, const struct lines_reply *r)
{
    const struct jt_node *cl = jt_obj(jt_get(s, "client")), *sv = jt_obj(jt_get(s, "server"));
    const struct jt_node *data = jt_obj(jt_get(t, "data"));
    const struct jt_node *rcpt = jt_arr(jt_get(t, "rcpt"));
    struct lines_set st = {.b = b};
    switch (k) {
    case LF_TS:
        lines_add_time(b, l->style, ts_us);
        break;
    case LF_UID:
        lines_add_int(b, jt_get(s, "id"));
        break;
    case LF_ORIG_H:
        lines_add_field_str(b, jt_str(jt_get(cl, "ip")));
        break;
    case LF_ORIG_P:
        lines_add_int(b, jt_get(cl, "port"));
        break;
    case LF_RESP_H:
        lines_add_field_str(b, jt_str(jt_get(sv, "ip")));
        break;
    case LF_RESP_P:
        lines_add_int(b, jt_get(sv, "port"));
        break;
    case LF_TRANS_DEPTH:
        if (t) {
            char tmp[24];
            snprintf(tmp, sizeof tmp, "%zu", depth);
            lines_add(b, tmp);
        } else {
            lines_add(b, LINES_UNSET);
        }
        break;
    case LF_HELO:
        lines_add_field_str(b, jt_str(jt_get(jt_obj(jt_get(s, "helo")), "name")));
        break;
    case LF_MAILFROM:
        lines_add_field_str(b, jt_str(jt_get(t, "mail_from")));
        break;
    case LF_RCPTTO:
    case LF_RCPTTO_REFUSED:
        if (!t) {
            lines_add(b, LINES_UNSET);
            break;
        }
        for (size_t i = 0; i < jt_size(rcpt); i++) {
            const struct jt_node *e = jt_obj(jt_at(rcpt, i));
            int ok = jt_int(jt_get(e, "code"), 0) / 100 == 2;
            if (ok == (k == LF_RCPTTO))
                lines_set_add(&st, jt_str(jt_get(e, "to")));
        }
        lines_set_end(&st);
        break;
    case LF_MSG_ID:
        lines_add_field_str(b, jt_str(jt_get(jt_obj(jt_get(data, "headers")), "message_id")));
        break;
    case LF_LAST_REPLY:
        if (!r->code) {
            lines_add(b, LINES_UNSET);
        } else {
            char tmp[LINES_VALUE_MAX + 32];
            snprintf(tmp, sizeof tmp, "%lld%s%s", (long long)jt_int(r->code, 0),
                     r->text && *r->text ? " " : "", r->text ? r->text : "");
            lines_add_str(b, tmp, 0);
        }
        break;
    case LF_TLS:
        lines_add_bool(b, t ? jt_is_true(jt_get(t, "tls")) : lines_session_tls(s));
        break;
    case LF_REPLY_CODE:
        lines_add_int(b, r->code);
        break;
    case LF_REPLY_ENHANCED:
        lines_add_field_str(b, r->code ? r->enhanced : NULL);
        break;
    case LF_OUTCOME:
        lines_add_field_str(b, t ? lines_txn_outcome(t, r) : jt_str(jt_get(s, "outcome")));
        break;
    case LF_SIZE:
        lines_add_int(b, jt_get(data, "bytes"));
        break;
    case LF_QUEUE_ID:
        lines_add_field_str(b, jt_str(jt_get(data, "queue_id")));
        break;
    case LF_AUTH:
        lines_add_bool(b, t ? jt_is_true(jt_get(t, "authenticated")) : lines_session_auth(s));
        break;
    case LF_ANOMALIES: {
        const struct jt_node *an = jt_arr(jt_get(s, "anomalies"));
        for (size_t i = 0; i < jt_size(an); i++)
            lines_set_add(&st, jt_str(jt_get(jt_obj(jt_at(an, i)), "id")));
        lines_set_end(&st);
        break;
    }
    case LF_TCP_END:
        lines_add_field_str(b, jt_str(jt_get(jt_obj(jt_get(s, "tcp")), "end")));
        break;
    case LF_COMMUNITY_ID:
        lines_add_field_str(b, jt_str(jt_get(s, "community_id")));
        break;
    case LF_COUNT:
        break;
    }
}

/* Display width of escaped text: its code points (the escapes are ASCII). */
static size_t
lines_width(const uint8_t *p, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += (p[i] & 0xC0) != 0x80;
    return w;
}

/* Appends one column to the line: TSV separates by TAB; aligned pads to the column's width
 * and separates by two spaces. */
static void
lines_column(const struct lines *l, struct buf *line, enum lines_field k, const uint8_t *v,
             size_t n)
{
    if (k > 0)
        lines_add(line, l->style == LINES_TSV ? "\t" : "  ");
    buf_append(line, v, n);
    if (l->style == LINES_ALIGNED && k + 1 < LF_COUNT)
        for (size_t w = lines_width(v, n); w < (size_t)lines_fields[k].width; w++)
            buf_append_byte(line, ' ');
}

static void
lines_one(const struct lines *l, FILE *f, const struct jt_node *s, const struct jt_node *t,
          size_t depth)
{
    struct buf line, val;
    buf_init(&line, LINES_LINE_MAX);
    buf_init(&val, LINES_LINE_MAX);
    struct lines_reply r = t ? lines_txn_reply(t) : lines_session_reply(s);
    int64_t ts = lines_parse_time(jt_str(jt_get(s, "start")));
    const struct jt_val *tms = jt_get(t, "t_ms");
    if (tms && tms->type == JT_MS)
        ts += tms->u.i;
    else if (tms)
        ts += (int64_t)(jt_num(tms, 0) * 1000.0 + 0.5);
    for (int k = 0; k < LF_COUNT; k++) {
        buf_reset(&val);
        lines_field(l, &val, (enum lines_field)k, s, t, depth, ts, &r);
        lines_column(l, &line, (enum lines_field)k, val.data, val.len);
    }
    /* Aligned columns end with the last value, without trailing blanks. */
    while (line.len && line.data[line.len - 1] == ' ')
        line.len--;
    buf_append_byte(&line, '\n');
    fwrite(line.data, 1, line.len, f);
    buf_free(&line);
    buf_free(&val);
}

void
lines_session(const struct lines *l, FILE *f, const struct jt_node *s)
{
    const struct jt_node *txns = jt_arr(jt_get(s, "transactions"));
    size_t n = jt_size(txns);
    if (!n)
        lines_one(l, f, s, NULL, 0);
    for (size_t i = 0; i < n; i++)
        lines_one(l, f, s, jt_obj(jt_at(txns, i)), i + 1);
}

/* ---- header and end ---- */

/* Zeek writes #open and #close times as YYYY-MM-DD-HH-MM-SS. Here they are capture times
 * (the first line's, the last packet's), never the wall clock: one capture, one output. */
static void
lines_meta_time(FILE *out, const char *what, int64_t us)
{
    char tmp[32];
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(tmp, sizeof tmp, "%Y-%m-%d-%H-%M-%S", &tm);
    fprintf(out, "#%s\t%s\n", what, tmp);
}

static void
lines_header(struct lines *l, FILE *out, int64_t open_us)
{
    l->header_done = 1;
    if (l->style == LINES_ALIGNED) {
        struct buf line;
        buf_init(&line, LINES_LINE_MAX);
        for (int k = 0; k < LF_COUNT; k++)
            lines_column(l, &line, (enum lines_field)k, (const uint8_t *)lines_fields[k].name,
                         strlen(lines_fields[k].name));
        while (line.len && line.data[line.len - 1] == ' ')
            line.len--;
        buf_append_byte(&line, '\n');
        fwrite(line.data, 1, line.len, out);
        buf_free(&line);
        return;
    }
    fputs("#separator \\x09\n#set_separator\t,\n#empty_field\t" LINES_EMPTY
          "\n#unset_field\t" LINES_UNSET "\n#path\tsmtp\n",
          out);
    lines_meta_time(out, "open", open_us);
    fputs("#fields", out);
    for (int k = 0; k < LF_COUNT; k++)
        fprintf(out, "\t%s", lines_fields[k].name);
    fputs("\n#types", out);
    for (int k = 0; k < LF_COUNT; k++)
        fprintf(out, "\t%s", lines_fields[k].type);
    fputc('\n', out);
}

int
lines_write(struct lines *l, FILE *out, const char *text, size_t len)
{
    if (!len)
        return 0;
    if (!l->header_done) {
        /* The first line's ts, seconds since the epoch, opens the log (TSV only). */
        char *end;
        long long sec = strtoll(text, &end, 10);
        lines_header(l, out, end != text ? (int64_t)sec * 1000000 : 0);
    }
    if (fwrite(text, 1, len, out) != len)
        return -1;
    return ferror(out) ? -1 : 0;
}

int
lines_end(struct lines *l, FILE *out, json_t *summary)
{
    /* Aligned: a blank line between the columns and the text summary that follows. */
    if (l->style != LINES_TSV) {
        if (l->header_done)
            fputc('\n', out);
        return ferror(out) ? -1 : 0;
    }
    json_t *first = json_object_get(summary, "first_packet");
    json_t *last = json_object_get(summary, "last_packet");
    int64_t first_us = lines_parse_time(json_string_value(first));
    int64_t last_us = lines_parse_time(json_string_value(last));
    if (!l->header_done)
        lines_header(l, out, first_us);
    lines_meta_time(out, "close", last_us ? last_us : first_us);
    return ferror(out) ? -1 : 0;
}
