/* jsonx.c - Jansson helpers for untrusted bytes and capture time, and the report writer
 * (RFC 8259 text as Jansson 2.14's dump writes it with JX_DUMP_FLAGS). */
#include "jsonx.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem.h"

/* Length of the valid UTF-8 sequence at p (RFC 3629), 0 if invalid. */
static size_t
jx_utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t need, i;
    uint32_t cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3Fu);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need;
}

/* Eight bytes at a time (Hacker's Delight 6-1, "bit twiddling hacks" hasless): nonzero when
 * some byte of x is below n (n <= 128, bytes below 0x80), or has its high bit set. */
#define JX_ONES 0x0101010101010101ull
#define JX_HIGHS 0x8080808080808080ull

static inline uint64_t
jx_word(const uint8_t *p)
{
    uint64_t x;

    memcpy(&x, p, sizeof x);
    return x;
}

static inline uint64_t
jx_below(uint64_t x, unsigned n)
{
    return ((x - JX_ONES * n) & ~x & JX_HIGHS) | (x & JX_HIGHS);
}

/* Length of the run at p of bytes 0x01..0x7F: ASCII that needs no escaping here. */
static size_t
jx_ascii_run(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (n - i >= 8 && !jx_below(jx_word(p + i), 1))
        i += 8;
    while (i < n && (uint8_t)(p[i] - 1u) < 0x7Fu)
        i++;
    return i;
}

size_t
jx_escape(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, o = 0, k;

    if (!outlen)
        return 0;
    while (i < n) {
        /* ASCII, the usual case, a run at a time; cut where the output is full. */
        k = jx_ascii_run(p + i, n - i);
        if (k) {
            if (k > outlen - 1 - o) {
                memcpy(out + o, p + i, outlen - 1 - o);
                o = outlen - 1;
                break;
            }
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
            continue;
        }
        k = jx_utf8_len(p + i, n - i);
        if (k && p[i] != 0) {
            if (o + k >= outlen)
                break;
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            if (o + 4 >= outlen)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[p[i] >> 4];
            out[o++] = hex[p[i] & 15];
            i++;
        }
    }
    out[o] = '\0';
    return o;
}

const char *
jx_bytes_text(const uint8_t *p, size_t n, char small[512], char **heap, size_t *len)
{
    size_t cap = n * 4 + 1;
    char *out = small;

    *heap = NULL;
    *len = n;
    /* Most wire text (an SMTP line, a header field) is plain ASCII: valid UTF-8 as it
     * stands, used without a copy (and Jansson is spared its own UTF-8 check). */
    if (jx_ascii_run(p, n) == n)
        return n ? (const char *)p : "";
    if (n > (SIZE_MAX - 1) / 4)
        return NULL;
    if (cap > 512) {
        out = *heap = mem_alloc(cap);
        if (!out)
            return NULL;
    }
    /* jx_escape writes valid UTF-8 without NUL: Jansson need not check it again. */
    *len = jx_escape(p, n, out, cap);
    return out;
}

json_t *
jx_bytes(const uint8_t *p, size_t n)
{
    char small[512], *heap;
    size_t len;
    const char *text = jx_bytes_text(p, n, small, &heap, &len);
    json_t *j = text ? json_stringn_nocheck(text, len) : NULL;
    mem_free(heap);
    return j;
}

json_t *
jx_str(const char *s)
{
    return jx_bytes((const uint8_t *)s, strlen(s));
}

/* n as exactly w decimal digits at p. */
static void
jx_fixed(char *p, unsigned long long n, int w)
{
    while (w-- > 0) {
        p[w] = (char)('0' + n % 10);
        n /= 10;
    }
}

/* The civil date of a day count since 1970-01-01 (proleptic Gregorian: the era arithmetic
 * of H. Hinnant's chrono date algorithms). */
static void
jx_civil(long long days, int *y, int *m, int *d)
{
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

void
jx_format_time(int64_t ts_us, char *out, size_t outlen)
{
    /* Every report has two of these: gmtime_r and snprintf were most of building one's
     * envelope. The years 1970-9999 are written here, the rest by the C library. */
    if (ts_us >= 0 && ts_us < INT64_C(253402300800000000) && outlen >= 28) {
        long long secs = ts_us / 1000000, sod = secs % 86400;
        int y, m, d;
        jx_civil(secs / 86400, &y, &m, &d);
        jx_fixed(out, (unsigned long long)y, 4);
        out[4] = '-';
        jx_fixed(out + 5, (unsigned long long)m, 2);
        out[7] = '-';
        jx_fixed(out + 8, (unsigned long long)d, 2);
        out[10] = 'T';
        jx_fixed(out + 11, (unsigned long long)(sod / 3600), 2);
        out[13] = ':';
        jx_fixed(out + 14, (unsigned long long)(sod / 60 % 60), 2);
        out[16] = ':';
        jx_fixed(out + 17, (unsigned long long)(sod % 60), 2);
        out[19] = '.';
        jx_fixed(out + 20, (unsigned long long)(ts_us % 1000000), 6);
        out[26] = 'Z';
        out[27] = '\0';
        return;
    }
    time_t secs = (time_t)(ts_us / 1000000);
    long usec = (long)(ts_us % 1000000);
    struct tm tm;

    if (usec < 0) {
        usec += 1000000;
        secs--;
    }
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, outlen, "invalid");
        return;
    }
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
}

json_t *
jx_time(int64_t ts_us)
{
    char b[40];
    jx_format_time(ts_us, b, sizeof b);
    return json_string(b);
}

json_t *
jx_ms(int64_t us)
{
    return json_real((double)us / 1000.0);
}

#ifndef NDEBUG
static int
jx_is_ascii(const char *s)
{
    while (*s && (unsigned char)*s < 0x80)
        s++;
    return *s == 0;
}
#endif

void
jx_set(json_t *obj, const char *key, json_t *v)
{
    assert(jx_is_ascii(key));
    if (v)
        json_object_set_new_nocheck(obj, key, v);
}

/* ---- key order ---- */

#define JX_K(s)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* A record read top-down: what it is, when, the flow (as Suricata's EVE leads with it), who,
 * how it ended and what was wrong, then the details in the order of a dialogue. The same
 * list orders nested objects (an anomaly's id first, a FIN's from). Keys that the
 * transcript writer (smtp.c) writes in place, in byte order, are not listed: t_ms, dir,
 * line, latency_ms, body, cut, decrypted, incomplete. */
const struct jx_key jx_key_order[] = {
    /* what it is */
    JX_K("type"),
    JX_K("schema"),
    JX_K("id"),
    JX_K("session"),
    /* when */
    JX_K("start"),
    JX_K("end"),
    JX_K("first_packet"),
    JX_K("last_packet"),
    JX_K("time"),
    JX_K("since"),
    JX_K("timestamp"),
    JX_K("duration_ms"),
    /* the flow */
    JX_K("src_ip"),
    JX_K("src_port"),
    JX_K("dest_ip"),
    JX_K("dest_port"),
    JX_K("proto"),
    JX_K("community_id"),
    JX_K("ip_version"),
    JX_K("vlan"),
    /* who */
    JX_K("client"),
    JX_K("server"),
    JX_K("from"),
    /* how it ended, what was wrong */
    JX_K("outcome"),
    JX_K("messages"),
    JX_K("partial"),
    JX_K("anomaly"),
    JX_K("anomalies"),
    JX_K("severity"),
    JX_K("message"),
    JX_K("evidence"),
    /* the details */
    JX_K("tcp"),
    JX_K("banner"),
    JX_K("server_software"),
    JX_K("helo"),
    JX_K("ehlo"),
    JX_K("extensions"),
    JX_K("tls"),
    JX_K("auth"),
    JX_K("transactions"),
    JX_K("commands"),
    JX_K("smtp"),
    {NULL, 0}, /* every other key, by bytes */
    JX_K("transcript"),
};
const size_t jx_key_order_len = sizeof jx_key_order / sizeof *jx_key_order;

#undef JX_K

/* The listed keys by a hash of their prefix, built on first use. Two threads may build it
 * at once: each slot is atomic, and both write the same keys in the same order, so a slot
 * holds a key whose probe path is complete either way (a slot is never emptied). */
#define JX_KEY_SLOTS 256u
static _Atomic uint8_t jx_key_slot[JX_KEY_SLOTS];    /* index + 1 in jx_key_order; 0 empty */
static _Atomic uint64_t jx_key_pre[JX_KEY_SLOTS][2]; /* its bytes 0-7 and 8-15 (jx_key_prefix) */
static atomic_int jx_key_ready;
static uint8_t jx_key_rest;

static inline unsigned
jx_key_hash(uint64_t pre, size_t n)
{
    return (unsigned)(((pre ^ n) * 0x9E3779B97F4A7C15ull) >> 56);
}

/* Listed keys are at most 16 bytes: two prefixes compare them, without a call. */
#define JX_KEY_MAXLEN 16u

/* Once per process (out of line: the lookup stays a leaf). */
static __attribute__((noinline, cold)) void
jx_key_build(void)
{
    uint8_t rest = 0;
    for (size_t i = 0; i < jx_key_order_len; i++) {
        const struct jx_key *k = &jx_key_order[i];
        if (!k->name) {
            rest = (uint8_t)i;
            continue;
        }
        assert(k->len > 0 && k->len <= JX_KEY_MAXLEN);
        uint64_t pre = jx_key_prefix(k->name, k->len);
        uint64_t pre2 = k->len > 8 ? jx_key_prefix(k->name + 8, k->len - 8u) : 0;
        unsigned h = jx_key_hash(pre, k->len), s;
        while ((s = atomic_load_explicit(&jx_key_slot[h], memory_order_relaxed)) != 0 && s != i + 1)
            h = (h + 1) & (JX_KEY_SLOTS - 1);
        atomic_store_explicit(&jx_key_pre[h][0], pre, memory_order_relaxed);
        atomic_store_explicit(&jx_key_pre[h][1], pre2, memory_order_relaxed);
        atomic_store_explicit(&jx_key_slot[h], (uint8_t)(i + 1), memory_order_relaxed);
    }
    jx_key_rest = rest; /* the same value from every builder, read only after jx_key_ready */
    atomic_store_explicit(&jx_key_ready, 1, memory_order_release);
}

/* Bytes 8-15 of a key of 9 to 16 bytes against those of slot h's key: out of line, so the
 * lookup of the many short keys needs no stack frame. */
static __attribute__((noinline)) int
jx_key_tail_eq(unsigned h, const char *key, size_t n)
{
    return atomic_load_explicit(&jx_key_pre[h][1], memory_order_relaxed) ==
           jx_key_prefix(key + 8, n - 8);
}

uint8_t
jx_key_rank(const char *key, size_t n, uint64_t pre)
{
    if (!atomic_load_explicit(&jx_key_ready, memory_order_acquire))
        jx_key_build();
    if (n == 0 || n > JX_KEY_MAXLEN)
        return jx_key_rest;
    for (unsigned h = jx_key_hash(pre, n);; h = (h + 1) & (JX_KEY_SLOTS - 1)) {
        unsigned s = atomic_load_explicit(&jx_key_slot[h], memory_order_relaxed);
        if (!s)
            return jx_key_rest;
        if (jx_key_order[s - 1].len == n &&
            atomic_load_explicit(&jx_key_pre[h][0], memory_order_relaxed) == pre &&
            (n <= 8 || jx_key_tail_eq(h, key, n)))
            return (uint8_t)(s - 1);
    }
}

int
jx_key_cmp(uint8_t ra, const char *a, size_t na, uint8_t rb, const char *b, size_t nb)
{
    if (ra != rb)
        return ra < rb ? -1 : 1;
    size_t n = na < nb ? na : nb;
    /* Keys mostly differ in their first byte: decided without a call. */
    if (n && a[0] != b[0])
        return (uint8_t)a[0] < (uint8_t)b[0] ? -1 : 1;
    int c = memcmp(a, b, n);
    if (c)
        return c;
    return na < nb ? -1 : na > nb;
}

/* ---- the report writer ---- */

/* Nesting written here; deeper trees, and cycles (which never end), are left to Jansson. */
#define JX_MAX_DEPTH 64
/* Members of an object sorted in place on the stack; larger objects sort a heap copy. */
#define JX_SORT_STACK 48

/* What a string byte needs (Jansson's dump_string without JSON_ENSURE_ASCII and
 * JSON_ESCAPE_SLASH): 0 written as it is, 1 escaped ('"', '\\', controls), 2 the lead byte
 * of a UTF-8 sequence, checked and written as it is (RFC 8259 7). */
static const uint8_t jx_str_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 00 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 70 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 80 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 90 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* a0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* b0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* c0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* d0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* e0 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* f0 */
};

struct jx_member {
    const char *key;
    size_t len;
    json_t *value;
    uint8_t rank;
};

static int
jx_grow(struct buf *b, size_t n)
{
    switch (buf_ensure(b, n)) {
    case BUF_OK:
        return JX_DUMP_OK;
    case BUF_E_FULL:
        return JX_DUMP_FULL;
    default:
        return JX_DUMP_NOMEM;
    }
}

/* Room for n more bytes at b->data + b->len; the buffer is reused, so it is almost always
 * there already. */
static inline int
jx_room(struct buf *b, size_t n)
{
    return b->alloc - b->len >= n ? JX_DUMP_OK : jx_grow(b, n);
}

static inline int
jx_put(struct buf *b, const void *p, size_t n)
{
    int rc = jx_room(b, n);

    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return JX_DUMP_OK;
}

static inline int
jx_put_byte(struct buf *b, uint8_t c)
{
    int rc = jx_room(b, 1);

    if (rc)
        return rc;
    b->data[b->len++] = c;
    return JX_DUMP_OK;
}

/* Writes the escape for an ASCII byte that needs one; returns its length. */
static size_t
jx_put_escape(uint8_t *o, uint8_t c)
{
    static const char hex[] = "0123456789ABCDEF"; /* Jansson's "\\u%04X" */

    o[0] = '\\';
    switch (c) {
    case '\\':
    case '"':
        o[1] = c;
        return 2;
    case '\b':
        o[1] = 'b';
        return 2;
    case '\f':
        o[1] = 'f';
        return 2;
    case '\n':
        o[1] = 'n';
        return 2;
    case '\r':
        o[1] = 'r';
        return 2;
    case '\t':
        o[1] = 't';
        return 2;
    default:
        o[1] = 'u';
        o[2] = '0';
        o[3] = '0';
        o[4] = (uint8_t)hex[c >> 4];
        o[5] = (uint8_t)hex[c & 15];
        return 6;
    }
}

/* Nonzero when one of the eight bytes in x is not written as it is: a control, '"', '\\',
 * or a byte of a multi-byte UTF-8 sequence. */
static inline uint64_t
jx_special(uint64_t x)
{
    return jx_below(x, 0x20) | jx_below(x ^ (JX_ONES * '"'), 1) | jx_below(x ^ (JX_ONES * '\\'), 1);
}

int
jx_put_string(struct buf *b, const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    uint8_t *o, *start;
    size_t i = 0, k;
    int rc;

    /* Room for the worst case (every byte a six-character escape) is made once, so the loop
     * below writes without checks. */
    if (n > (SIZE_MAX - 2) / 6)
        return JX_DUMP_FULL;
    rc = jx_room(b, n * 6 + 2);
    if (rc)
        return rc;
    start = o = b->data + b->len;
    *o++ = '"';
    while (i < n) {
        while (n - i >= 8) {
            uint64_t x = jx_word(s + i);
            if (jx_special(x))
                break;
            memcpy(o, &x, sizeof x);
            o += 8;
            i += 8;
        }
        while (i < n && !jx_str_class[s[i]])
            *o++ = s[i++];
        if (i == n)
            break;
        if (jx_str_class[s[i]] == 1) {
            o += jx_put_escape(o, s[i]);
            i++;
            continue;
        }
        /* Jansson refuses to write invalid UTF-8; the caller's fallback fails the same way. */
        k = jx_utf8_len(s + i, n - i);
        if (!k)
            return JX_DUMP_UNSUPPORTED;
        memcpy(o, s + i, k);
        o += k;
        i += k;
    }
    *o++ = '"';
    b->len += (size_t)(o - start);
    return JX_DUMP_OK;
}

/* Writes the decimal digits of u ending just before end; returns where they start. */
static char *
jx_digits(char *end, unsigned long long u)
{
    do {
        *--end = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    return end;
}

int
jx_put_int(struct buf *b, int64_t v)
{
    char d[24], *p;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    p = jx_digits(d + sizeof d, u);
    if (v < 0)
        *--p = '-';
    return jx_put(b, p, (size_t)(d + sizeof d - p));
}

/* k / 1000 in decimal: three decimals, the trailing zeros dropped as %g does, ".0" when
 * there are none. */
static int
jx_put_thousandths(struct buf *b, long long k)
{
    char d[32], *p = d + sizeof d;
    unsigned long long u = k < 0 ? 0ULL - (unsigned long long)k : (unsigned long long)k;
    unsigned frac = (unsigned)(u % 1000);
    if (frac == 0) {
        *--p = '0';
    } else {
        int nd = frac % 100 == 0 ? 1 : frac % 10 == 0 ? 2 : 3;
        for (int x = 0; x < 3 - nd; x++)
            frac /= 10;
        for (int x = 0; x < nd; x++) {
            *--p = (char)('0' + frac % 10);
            frac /= 10;
        }
    }
    *--p = '.';
    p = jx_digits(p, u / 1000);
    if (k < 0)
        *--p = '-';
    return jx_put(b, p, (size_t)(d + sizeof d - p));
}

/* A real as Jansson writes it with precision 15: printf's "%.15g", plus ".0" when that
 * looks like an integer. The reals in a report are milliseconds made by jx_ms, us / 1000.0;
 * for v equal to k / 1000.0 with |k| < 10^15, "%.15g" gives the decimal k / 1000 exactly
 * (k has at most 15 digits and v is within 2^-53 of it, well inside half a unit of the 15th
 * digit), no exponent (10^-3 <= |v| < 10^12), trailing zeros dropped: that is written here
 * without printf. Any other value goes through Jansson itself. */
int
jx_put_real(struct buf *b, double v)
{
    if (v > -1e12 && v < 1e12 && !(v == 0 && signbit(v))) {
        double scaled = v * 1000.0;
        long long k = (long long)(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
        if ((double)k / 1000.0 == v)
            return jx_put_thousandths(b, k);
    }
    json_t *j = json_real(v);
    if (!j)
        return JX_DUMP_NOMEM;
    char tmp[128];
    size_t n = json_dumpb(j, tmp, sizeof tmp, JX_DUMP_FLAGS | JSON_ENCODE_ANY);
    json_decref(j);
    if (n == 0 || n > sizeof tmp)
        return JX_DUMP_UNSUPPORTED;
    return jx_put(b, tmp, n);
}

static int
jx_member_cmp(const struct jx_member *a, const struct jx_member *b)
{
    return jx_key_cmp(a->rank, a->key, a->len, b->rank, b->key, b->len);
}

static int
jx_member_qsort_cmp(const void *a, const void *b)
{
    return jx_member_cmp(a, b);
}

static int jx_dump_value(const json_t *j, struct buf *b, int depth);

/* lead, the key as a JSON string, and the colon. Keys are nearly always short names that
 * need no escape: those are copied in one piece. */
int
jx_put_key(struct buf *b, uint8_t lead, const char *key, size_t n)
{
    size_t i = 0;
    int rc;

    while (i < n && !jx_str_class[(uint8_t)key[i]])
        i++;
    if (i == n && n <= SIZE_MAX - 4) {
        rc = jx_room(b, n + 4);
        if (rc)
            return rc;
        uint8_t *o = b->data + b->len;
        o[0] = lead;
        o[1] = '"';
        memcpy(o + 2, key, n);
        o[n + 2] = '"';
        o[n + 3] = ':';
        b->len += n + 4;
        return JX_DUMP_OK;
    }
    rc = jx_put_byte(b, lead);
    if (rc == JX_DUMP_OK)
        rc = jx_put_string(b, key, n);
    if (rc == JX_DUMP_OK)
        rc = jx_put_byte(b, ':');
    return rc;
}

/* The members of object j in report order, in stack (JX_SORT_STACK) or a heap copy the
 * caller frees when it is not stack. NULL without memory. */
static struct jx_member *
jx_sorted_members(const json_t *j, struct jx_member *stack, size_t *count)
{
    struct jx_member *m = stack;
    size_t n = json_object_size(j), i = 0, x;
    void *it;

    if (n > JX_SORT_STACK) {
        m = mem_calloc(n, sizeof *m);
        if (!m)
            return NULL;
    }
    for (it = json_object_iter((json_t *)j); it && i < n;
         it = json_object_iter_next((json_t *)j, it)) {
        m[i].key = json_object_iter_key(it);
        m[i].len = json_object_iter_key_len(it);
        m[i].value = json_object_iter_value(it);
        m[i].rank = jx_key_rank(m[i].key, m[i].len, jx_key_prefix(m[i].key, m[i].len));
        i++;
    }
    n = i;
    /* Reports hold small objects, mostly built in an order close to the written one:
     * insertion sort beats qsort's calls through a pointer there. */
    if (n <= JX_SORT_STACK) {
        for (i = 1; i < n; i++) {
            struct jx_member t = m[i];
            for (x = i; x > 0 && jx_member_cmp(&m[x - 1], &t) > 0; x--)
                m[x] = m[x - 1];
            m[x] = t;
        }
    } else {
        qsort(m, n, sizeof *m, jx_member_qsort_cmp);
    }
    *count = n;
    return m;
}

static int
jx_dump_object(const json_t *j, struct buf *b, int depth)
{
    struct jx_member stack[JX_SORT_STACK], *m;
    size_t n, i;
    int rc = JX_DUMP_OK;

    if (json_object_size(j) == 0)
        return jx_put(b, "{}", 2);
    m = jx_sorted_members(j, stack, &n);
    if (!m)
        return JX_DUMP_NOMEM;
    for (i = 0; i < n; i++) {
        rc = jx_put_key(b, i ? ',' : '{', m[i].key, m[i].len);
        if (rc == JX_DUMP_OK)
            rc = jx_dump_value(m[i].value, b, depth + 1);
        if (rc != JX_DUMP_OK)
            break;
    }
    if (rc == JX_DUMP_OK)
        rc = jx_put_byte(b, '}');
    if (m != stack)
        mem_free(m);
    return rc;
}

static int
jx_dump_value(const json_t *j, struct buf *b, int depth)
{
    size_t i, n;
    int rc;

    if (!j)
        return JX_DUMP_UNSUPPORTED;
    switch (json_typeof(j)) {
    case JSON_NULL:
        return jx_put(b, "null", 4);
    case JSON_TRUE:
        return jx_put(b, "true", 4);
    case JSON_FALSE:
        return jx_put(b, "false", 5);
    case JSON_INTEGER:
        return jx_put_int(b, json_integer_value(j));
    case JSON_REAL:
        return jx_put_real(b, json_real_value(j));
    case JSON_STRING:
        return jx_put_string(b, json_string_value(j), json_string_length(j));
    case JSON_ARRAY:
        if (depth >= JX_MAX_DEPTH)
            return JX_DUMP_UNSUPPORTED;
        n = json_array_size(j);
        if (n == 0)
            return jx_put(b, "[]", 2);
        for (i = 0; i < n; i++) {
            rc = jx_put_byte(b, i ? ',' : '[');
            if (rc == JX_DUMP_OK)
                rc = jx_dump_value(json_array_get(j, i), b, depth + 1);
            if (rc != JX_DUMP_OK)
                return rc;
        }
        return jx_put_byte(b, ']');
    case JSON_OBJECT:
        if (depth >= JX_MAX_DEPTH)
            return JX_DUMP_UNSUPPORTED;
        return jx_dump_object(j, b, depth);
    }
    return JX_DUMP_UNSUPPORTED;
}

int
jx_dump(const json_t *o, struct buf *b)
{
    size_t len0 = b->len;
    int rc;

    if (!json_is_object(o) && !json_is_array(o))
        return JX_DUMP_UNSUPPORTED;
    rc = jx_dump_value(o, b, 0);
    if (rc != JX_DUMP_OK)
        b->len = len0;
    return rc;
}

int
jx_put_raw(struct buf *b, const char *p, size_t n)
{
    return jx_put(b, p, n);
}

int
jx_put_bytes(struct buf *b, const uint8_t *p, size_t n)
{
    char small[512], *heap;
    size_t len;
    const char *text = jx_bytes_text(p, n, small, &heap, &len);
    int rc = text ? jx_put_string(b, text, len) : JX_DUMP_NOMEM;
    mem_free(heap);
    return rc;
}

int
jx_put_ms(struct buf *b, int64_t us)
{
    /* jx_ms's value as jx_put_real writes it, without the json_t: |us| < 10^15 is inside
     * that writer's exact range (us / 1000.0 * 1000 rounds back to us). */
    if (us > -INT64_C(1000000000000000) && us < INT64_C(1000000000000000))
        return jx_put_thousandths(b, (long long)us);
    return jx_put_real(b, (double)us / 1000.0);
}

json_t *
jx_ordered(const json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < json_array_size(v); i++)
            if (json_array_append_new(a, jx_ordered(json_array_get(v, i))) < 0) {
                json_decref(a);
                a = NULL;
            }
        return a;
    }
    if (!json_is_object(v))
        return json_incref((json_t *)v);
    struct jx_member stack[JX_SORT_STACK], *m;
    size_t n;
    json_t *o = json_object();
    if (!o || !(m = jx_sorted_members(v, stack, &n))) {
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (json_object_setn_new_nocheck(o, m[i].key, m[i].len, jx_ordered(m[i].value)) < 0) {
            json_decref(o);
            o = NULL;
            break;
        }
    if (m != stack)
        mem_free(m);
    return o;
}
