/* jsonx.c - Jansson helpers for untrusted bytes and capture time. */
#include "jsonx.h"

#include <stdio.h>
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

size_t
jx_escape(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0, o = 0, k;

    if (!outlen)
        return 0;
    while (i < n) {
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

json_t *
jx_bytes(const uint8_t *p, size_t n)
{
    char small[512];
    char *out = small;
    size_t cap = n * 4 + 1;
    json_t *j;

    if (n > (SIZE_MAX - 1) / 4)
        return NULL;
    if (cap > sizeof small) {
        out = mem_alloc(cap);
        if (!out)
            return NULL;
    }
    size_t len = jx_escape(p, n, out, cap);
    j = json_stringn(out, len);
    if (out != small)
        mem_free(out);
    return j;
}

json_t *
jx_str(const char *s)
{
    return jx_bytes((const uint8_t *)s, strlen(s));
}

void
jx_format_time(int64_t ts_us, char *out, size_t outlen)
{
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
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
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

void
jx_set(json_t *obj, const char *key, json_t *v)
{
    if (v)
        json_object_set_new(obj, key, v);
}
