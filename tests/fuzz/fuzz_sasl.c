/* fuzz_sasl.c - fuzz target for one SMTP AUTH exchange. Byte 0 picks max_blob; the first
 * line is the AUTH argument; every later line is an event chosen by its first byte: 'S' a 334
 * challenge, 'F' a final reply (three digits follow), 'I' the connection ending, anything
 * else a client line. Secrets must never reach a report made without show_secrets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_tree.h"
#include "jtree.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fuzz_code(const uint8_t *p, size_t n)
{
    int code = 0;
    size_t i;

    for (i = 0; i < 3 && i < n && p[i] >= '0' && p[i] <= '9'; i++)
        code = code * 10 + (p[i] - '0');
    return code;
}

static void
fuzz_report(const struct sasl *a, int secrets)
{
    struct jt *t = jt_new();
    struct jt_node *o = jt_root(t);
    json_t *r;
    char *s;

    if (sasl_report(a, secrets, o) != 0 || jt_failed(t)) {
        jt_free(t);
        return;
    }
    r = jt_to_json(o);
    if (!r)
        abort();
    if (!secrets && (json_object_get(r, "password") || json_object_get(r, "token") ||
                     json_object_get(r, "responses")))
        abort();
    s = fuzz_dump(o, r);
    if (!s)
        abort();
    free(s);
    json_decref(r);
    jt_free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sasl *a;
    const uint8_t *p, *e;
    size_t n, len;
    /* Tiny caps reach the truncation paths; 0 is the default. */
    size_t max_blob = size ? (size_t)(data[0] & 0x3f) * 4 : 0;

    if (size < 1)
        return 0;
    p = data + 1;
    n = size - 1;
    e = memchr(p, '\n', n);
    len = e ? (size_t)(e - p) : n;
    a = sasl_begin(p, len, max_blob);
    if (!a)
        return 0;
    p += e ? len + 1 : len;
    n -= e ? len + 1 : len;
    while (n) {
        e = memchr(p, '\n', n);
        len = e ? (size_t)(e - p) : n;
        if (len && p[0] == 'S') {
            sasl_challenge(a, p + 1, len - 1);
        } else if (len && p[0] == 'F') {
            int code = fuzz_code(p + 1, len - 1);
            size_t skip = len > 4 ? 4 : len;
            sasl_final(a, code, p + skip, len - skip);
        } else if (len && p[0] == 'I') {
            sasl_incomplete(a);
        } else {
            sasl_client_line(a, p, len);
        }
        (void)sasl_open(a);
        (void)sasl_result(a);
        p += e ? len + 1 : len;
        n -= e ? len + 1 : len;
    }
    fuzz_report(a, 0);
    fuzz_report(a, 1);
    sasl_destroy(a);
    return 0;
}
