/* jxcheck.c - proves the report writers (jx_dump, and jt_dump of the same tree as a jtree)
 * write the bytes Jansson's json_dumps writes with JX_DUMP_FLAGS from the tree jx_ordered
 * makes (the Jansson path), and that those bytes hold every object's keys in the documented
 * order (checked here against jx_key_order by a plain search, not by the writers' lookup):
 * over every line of NDJSON files (reports: real trees) and over random trees built to reach
 * the corners (escapes, UTF-8, integer limits, reals of every kind, key order, nesting).
 * Exit 0 when every tree agreed, 1 otherwise.
 *
 * usage: jxcheck [--random N] [--seed S] [FILE.ndjson...] */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonx.h"
#include "jtree.h"

struct jc_state {
    uint64_t rng;
    unsigned long trees;
    unsigned long mismatches;
    unsigned long fallbacks;
};

static uint64_t
jc_next(struct jc_state *st)
{
    /* splitmix64: small, and the same sequence on every machine for a seed. */
    uint64_t z = (st->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned
jc_below(struct jc_state *st, unsigned n)
{
    return (unsigned)(jc_next(st) % n);
}

/* A key's place in the documented order, by a search of the list (the oracle). */
static size_t
jc_rank(const char *key, size_t n)
{
    size_t rest = SIZE_MAX;
    for (size_t i = 0; i < jx_key_order_len; i++) {
        const struct jx_key *k = &jx_key_order[i];
        if (!k->name)
            rest = i;
        else if (strlen(k->name) == n && memcmp(k->name, key, n) == 0)
            return i;
    }
    return rest;
}

/* Whether key a (length na) may come before key b in an object. */
static int
jc_in_order(const char *a, size_t na, const char *b, size_t nb)
{
    size_t ra = jc_rank(a, na), rb = jc_rank(b, nb);
    if (ra != rb)
        return ra < rb;
    int c = memcmp(a, b, na < nb ? na : nb);
    return c < 0 || (c == 0 && na < nb);
}

/* Whether every object in v (as parsed: members in the order written) keeps the order. */
static int
jc_ordered(const json_t *v)
{
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!jc_ordered(json_array_get(v, i)))
                return 0;
        return 1;
    }
    if (!json_is_object(v))
        return 1;
    const char *prev = NULL;
    size_t prevn = 0;
    for (void *it = json_object_iter((json_t *)v); it;
         it = json_object_iter_next((json_t *)v, it)) {
        const char *k = json_object_iter_key(it);
        size_t n = json_object_iter_key_len(it);
        if ((prev && !jc_in_order(prev, prevn, k, n)) || !jc_ordered(json_object_iter_value(it)))
            return 0;
        prev = k;
        prevn = n;
    }
    return 1;
}

/* The list itself: one NULL (the unlisted keys' place), no key twice, and every key found
 * by the writers' lookup at its place. */
static int
jc_check_list(void)
{
    size_t nulls = 0;
    int ok = 1;
    for (size_t i = 0; i < jx_key_order_len; i++) {
        const struct jx_key *k = &jx_key_order[i];
        if (!k->name) {
            nulls++;
            continue;
        }
        if (k->len != strlen(k->name) || jc_rank(k->name, k->len) != i ||
            jx_key_rank(k->name, k->len, jx_key_prefix(k->name, k->len)) != i) {
            fprintf(stderr, "jxcheck: key order entry %zu (%s) is wrong\n", i, k->name);
            ok = 0;
        }
    }
    if (nulls != 1) {
        fprintf(stderr, "jxcheck: the key order has %zu places for unlisted keys\n", nulls);
        ok = 0;
    }
    return ok;
}

/* The report tree (jtree) copied from o: written by jt_dump, and given back as Jansson
 * values, it must give the bytes ref of the Jansson path. */
static void
jc_compare_tree(struct jc_state *st, const json_t *o, const char *ref, const char *where)
{
    struct jt *t = jt_new();
    struct buf b;
    char *back = NULL;
    int rc = -1;

    buf_init(&b, (size_t)1 << 30);
    if (t && jt_from_json(jt_root(t), o) == 0) {
        rc = jt_dump(jt_root(t), NULL, 0, &b);
        json_t *j = jt_to_json(jt_root(t));
        back = j ? json_dumps(j, JX_DUMP_FLAGS) : NULL;
        json_decref(j);
    }
    if (rc == JX_DUMP_UNSUPPORTED) {
        st->fallbacks++;
    } else if (rc != JX_DUMP_OK || b.len != strlen(ref) || memcmp(b.data, ref, b.len) != 0 ||
               !back || strcmp(back, ref) != 0) {
        st->mismatches++;
        if (st->mismatches <= 5)
            fprintf(stderr,
                    "jxcheck: %s: the report tree differs (rc %d)\n  jansson: %.80s\n"
                    "  jt_dump: %.*s\n",
                    where, rc, ref, (int)(b.len < 80 ? b.len : 80),
                    b.data ? (const char *)b.data : "");
    }
    free(back);
    buf_free(&b);
    jt_free(t);
}

/* Compares the writers on one tree; prints the first difference. */
static void
jc_compare(struct jc_state *st, const json_t *o, const char *where)
{
    struct buf b;
    json_t *ordered = jx_ordered(o);
    char *ref = ordered ? json_dumps(ordered, JX_DUMP_FLAGS) : NULL;
    int rc;

    buf_init(&b, (size_t)1 << 30);
    st->trees++;
    /* Jansson writes the members as jx_ordered set them: its tree's order is ref's (ref is
     * not always parsed back: a real near DBL_MAX written with 15 digits overflows). */
    if (!ordered || !jc_ordered(ordered)) {
        st->mismatches++;
        fprintf(stderr, "jxcheck: %s: the Jansson path breaks the key order: %.80s\n", where,
                ref ? ref : "(null)");
    }
    json_decref(ordered);
    rc = jx_dump(o, &b);
    if (rc == JX_DUMP_UNSUPPORTED) {
        /* Left to Jansson by design; the caller falls back, so nothing to compare. */
        st->fallbacks++;
    } else if (rc != JX_DUMP_OK || !ref || b.len != strlen(ref) ||
               memcmp(b.data, ref, b.len) != 0) {
        size_t i = 0, rl = ref ? strlen(ref) : 0;
        while (i < b.len && i < rl && b.data[i] == (uint8_t)ref[i])
            i++;
        st->mismatches++;
        if (st->mismatches <= 5)
            fprintf(stderr,
                    "jxcheck: %s: differs at byte %zu (rc %d, %zu vs %zu bytes)\n"
                    "  jansson: %.80s\n  jx_dump: %.80s\n",
                    where, i, rc, rl, b.len, ref ? ref + (i > 20 ? i - 20 : 0) : "(null)",
                    b.data ? (const char *)b.data + (i > 20 ? i - 20 : 0) : "(null)");
    }
    if (rc == JX_DUMP_OK) {
        /* And the bytes themselves, where Jansson reads them back (see above). */
        json_t *back = json_loadb((const char *)b.data, b.len, JSON_ALLOW_NUL, NULL);
        if (back && !jc_ordered(back)) {
            st->mismatches++;
            fprintf(stderr, "jxcheck: %s: jx_dump breaks the key order\n", where);
        }
        json_decref(back);
    }
    if (ref && json_is_object(o))
        jc_compare_tree(st, o, ref, where);
    free(ref);
    buf_free(&b);
}

static int
jc_file(struct jc_state *st, const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;

    if (!f) {
        perror(path);
        return -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        char where[512];
        lineno++;
        json_t *o = json_loadb(line, (size_t)n, JSON_ALLOW_NUL, &err);
        if (!o) {
            fprintf(stderr, "jxcheck: %s:%lu: %s\n", path, lineno, err.text);
            continue;
        }
        snprintf(where, sizeof where, "%s:%lu", path, lineno);
        jc_compare(st, o, where);
        json_decref(o);
    }
    free(line);
    fclose(f);
    return 0;
}

static json_t *
jc_string(struct jc_state *st)
{
    static const char *const samples[] = {
        "",
        "a",
        "\"",
        "\\",
        "/",
        "\x7f",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xed\x9f\xbf",
        "\x1b[0m",
        "tab\there",
        "a\r\nb",
        "\b\f",
        "\x01\x1f",
        "MAIL FROM:<a@b>",
    };
    uint8_t raw[64];
    size_t n = jc_below(st, sizeof raw), i;

    switch (jc_below(st, 4)) {
    case 0:
        return json_string(samples[jc_below(st, sizeof samples / sizeof *samples)]);
    case 1:
        /* Arbitrary bytes, NUL included, through the escaping every report string takes. */
        for (i = 0; i < n; i++)
            raw[i] = (uint8_t)jc_next(st);
        return jx_bytes(raw, n);
    case 2:
        /* Mostly ASCII with controls and quotes, given to Jansson as they are. */
        for (i = 0; i < n; i++)
            raw[i] = (uint8_t)(jc_below(st, 8) ? 0x20 + jc_below(st, 0x60) : jc_below(st, 0x20));
        return json_stringn_nocheck((const char *)raw, n);
    default: {
        /* Valid multi-byte UTF-8 made from random code points (not surrogates). */
        char u[256];
        size_t o = 0;
        for (i = 0; i < n / 4 && o + 4 < sizeof u; i++) {
            uint32_t cp = (uint32_t)jc_below(st, 0x110000);
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD;
            if (cp < 0x80) {
                u[o++] = (char)cp;
            } else if (cp < 0x800) {
                u[o++] = (char)(0xC0 | (cp >> 6));
                u[o++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                u[o++] = (char)(0xE0 | (cp >> 12));
                u[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[o++] = (char)(0x80 | (cp & 0x3F));
            } else {
                u[o++] = (char)(0xF0 | (cp >> 18));
                u[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[o++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        return json_stringn(u, o);
    }
    }
}

static json_t *
jc_real(struct jc_state *st)
{
    static const double corners[] = {
        0.0,
        -0.0,
        0.001,
        -0.001,
        0.5,
        1.0,
        1e-4,
        1e-5,
        123456789.123,
        1e11,
        1e12,
        1e15,
        1e16,
        1e17,
        -1e300,
        5e-324,
        0.1,
        2.5e-3,
        999999999999.999,
        -999999999999.999,
        1.7976931348623157e308,
    };
    switch (jc_below(st, 4)) {
    case 0:
        return json_real(corners[jc_below(st, sizeof corners / sizeof *corners)]);
    case 1: {
        /* What jx_ms makes: microseconds over a thousand, over the whole fast range. */
        int64_t us = (int64_t)(jc_next(st) % 2000000000000000ull) - 1000000000000000ll;
        us >>= jc_below(st, 50);
        return json_real((double)us / 1000.0);
    }
    case 2: {
        /* Any finite double. */
        uint64_t bits = jc_next(st);
        double d;
        memcpy(&d, &bits, sizeof d);
        return json_real(isfinite(d) ? d : 1.0);
    }
    default:
        return json_real((double)(int64_t)jc_next(st) / (double)(1 + jc_below(st, 100000)));
    }
}

static json_t *
jc_tree(struct jc_state *st, int depth)
{
    unsigned kind = jc_below(st, depth > 5 ? 7 : 9);
    size_t i, n;
    json_t *o;

    switch (kind) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(jc_below(st, 2));
    case 2: {
        static const json_int_t corners[] = {0, -1, 1, INT64_MAX, INT64_MIN, 9, 10, -10};
        if (jc_below(st, 3) == 0)
            return json_integer(corners[jc_below(st, 8)]);
        return json_integer((json_int_t)(jc_next(st) >> jc_below(st, 64)) *
                            (jc_below(st, 2) ? 1 : -1));
    }
    case 3:
        return jc_real(st);
    case 4:
    case 5:
    case 6:
        return jc_string(st);
    case 7:
        o = json_array();
        n = jc_below(st, 6);
        for (i = 0; i < n; i++)
            json_array_append_new(o, jc_tree(st, depth + 1));
        return o;
    default: {
        /* Listed keys, unlisted ones around them (a prefix, one more letter, another case),
         * and the corners of byte order. */
        static const char *const keys[] = {"a",        "ab",
                                           "b",        "",
                                           "A",        "transcript",
                                           "t_ms",     "tcp",
                                           "\xc3\xa9", "a\"b",
                                           "z",        "aa",
                                           "type",     "typ",
                                           "types",    "Type",
                                           "schema",   "id",
                                           "session",  "sessions",
                                           "end",      "ends",
                                           "from",     "src_ip",
                                           "src_port", "transcript_dropped",
                                           "tls",      "server",
                                           "smtp",     "anomalies"};
        o = json_object();
        n = jc_below(st, jc_below(st, 8) ? 8 : 80);
        for (i = 0; i < n; i++) {
            char k[32];
            if (jc_below(st, 2))
                snprintf(k, sizeof k, "%s", keys[jc_below(st, sizeof keys / sizeof *keys)]);
            else
                snprintf(k, sizeof k, "k%u", jc_below(st, 1000));
            json_object_set_new(o, k, jc_tree(st, depth + 1));
        }
        return o;
    }
    }
}

int
main(int argc, char **argv)
{
    struct jc_state st = {.rng = 1};
    unsigned long random_trees = 0;
    int i;

    if (!jc_check_list())
        return 1;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--random") == 0 && i + 1 < argc) {
            random_trees = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            st.rng = strtoull(argv[++i], NULL, 10);
        } else if (argv[i][0] == '-') {
            fputs("usage: jxcheck [--random N] [--seed S] [FILE.ndjson...]\n", stderr);
            return 2;
        } else if (jc_file(&st, argv[i]) < 0) {
            return 2;
        }
    }
    for (unsigned long t = 0; t < random_trees; t++) {
        json_t *o = json_object();
        json_object_set_new(o, "v", jc_tree(&st, 0));
        char where[64];
        snprintf(where, sizeof where, "random tree %lu", t);
        jc_compare(&st, o, where);
        json_decref(o);
    }
    printf("jxcheck: %lu trees, %lu identical, %lu left to Jansson, %lu differ\n", st.trees,
           st.trees - st.mismatches - st.fallbacks, st.fallbacks, st.mismatches);
    return st.mismatches ? 1 : 0;
}
