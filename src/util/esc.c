/* esc.c - wire text made safe for a terminal (see esc.h). */
#include "esc.h"

#include <stdint.h>
#include <string.h>

/* Length of the valid UTF-8 sequence (RFC 3629: no overlong form, no surrogate, nothing past
 * U+10FFFF) at p of 2 to 4 bytes, its code point in *cp; 0 when there is none. */
static size_t
esc_utf8(const uint8_t *p, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c, min;
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2, c = p[0] & 0x1Fu, min = 0x80;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3, c = p[0] & 0x0Fu, min = 0x800;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4, c = p[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Code points that a terminal acts on (C1), or that make text read otherwise than it is
 * stored (bidirectional overrides, invisible separators). */
static int
esc_unsafe_cp(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9F) || c == 0x061C || (c >= 0x200B && c <= 0x200F) ||
           (c >= 0x2028 && c <= 0x202E) || (c >= 0x2060 && c <= 0x2069) || c == 0xFEFF;
}

/* Printable ASCII but the backslash: written as it is. */
static int
esc_plain(uint8_t b)
{
    return b >= 0x20 && b < 0x7F && b != '\\';
}

/* The next piece of p[0..n): either a run to copy as it is (*raw = 1, length returned in
 * *adv) or one escape written into e (its length returned, input bytes used in *adv). */
static size_t
esc_piece(const uint8_t *p, size_t n, size_t *adv, int *raw, char e[8])
{
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    uint32_t cp = 0;
    while (k < n) {
        size_t u = 0;
        if (esc_plain(p[k]))
            u = 1;
        else if (p[k] >= 0x80 && (u = esc_utf8(p + k, n - k, &cp)) != 0 && esc_unsafe_cp(cp))
            u = 0;
        if (!u)
            break;
        k += u;
    }
    if (k) {
        *raw = 1;
        *adv = k;
        return k;
    }
    *raw = 0;
    if (p[0] == '\\') {
        *adv = 1;
        e[0] = e[1] = '\\';
        return 2;
    }
    if (p[0] >= 0x80 && (k = esc_utf8(p, n, &cp)) != 0) {
        /* valid UTF-8 of an unsafe code point: always at most U+FEFF */
        *adv = k;
        e[0] = '\\';
        e[1] = 'u';
        for (int i = 0; i < 4; i++)
            e[2 + i] = hex[(cp >> (12 - 4 * i)) & 15];
        return 6;
    }
    *adv = 1;
    e[0] = '\\';
    e[1] = 'x';
    e[2] = hex[p[0] >> 4];
    e[3] = hex[p[0] & 15];
    return 4;
}

void
esc_write(FILE *f, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    while (n) {
        char e[8];
        size_t adv;
        int raw;
        size_t len = esc_piece(p, n, &adv, &raw, e);
        fwrite(raw ? (const char *)p : e, 1, len, f);
        p += adv;
        n -= adv;
    }
}

void
esc_puts(FILE *f, const char *s)
{
    if (s)
        esc_write(f, s, strlen(s));
}

size_t
esc_str(const char *s, size_t n, char *out, size_t outlen)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t o = 0;
    if (!outlen)
        return 0;
    while (n) {
        char e[8];
        size_t adv;
        int raw;
        size_t len = esc_piece(p, n, &adv, &raw, e);
        if (raw && len > outlen - 1 - o) {
            /* cut a run at a character boundary */
            len = outlen - 1 - o;
            while (len && (p[len] & 0xC0) == 0x80)
                len--;
            memcpy(out + o, p, len);
            o += len;
            break;
        }
        if (len > outlen - 1 - o)
            break;
        memcpy(out + o, raw ? (const char *)p : e, len);
        o += len;
        p += adv;
        n -= adv;
    }
    out[o] = '\0';
    return o;
}
