/* test_tls.c - TLS record and handshake reader: real handshakes recorded by
 * scripts/gen-tls-fixtures.py, and hand-built records for the edge cases. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "jtree.h"
#include "mem.h"
#include "tls.h"

/* ---- fixtures ---------------------------------------------------------------------------- */

struct blob {
    uint8_t data[8192];
    size_t len;
};

static int
tt_load(const char *srcdir, const char *name, struct blob *b)
{
    /* argv[1] is the tests directory; accept the project root as well. */
    static const char *const subdirs[] = {"unit/data", "tests/unit/data", NULL};
    char path[1024];
    size_t i;

    for (i = 0; subdirs[i]; i++) {
        FILE *f;
        snprintf(path, sizeof path, "%s/%s/%s", srcdir, subdirs[i], name);
        f = fopen(path, "rb");
        if (!f)
            continue;
        b->len = fread(b->data, 1, sizeof b->data, f);
        fclose(f);
        return b->len > 0 && b->len < sizeof b->data ? 0 : -1;
    }
    fprintf(stderr, "cannot open fixture %s\n", name);
    return -1;
}

/* ---- a little builder for hand-made records ------------------------------------------------ */

struct wr {
    uint8_t b[4096];
    size_t n;
};

static void
wr_u8(struct wr *w, unsigned v)
{
    w->b[w->n++] = (uint8_t)v;
}

static void
wr_u16(struct wr *w, unsigned v)
{
    wr_u8(w, v >> 8);
    wr_u8(w, v & 0xff);
}

static void
wr_u24(struct wr *w, unsigned v)
{
    wr_u8(w, v >> 16);
    wr_u16(w, v & 0xffff);
}

static void
wr_bytes(struct wr *w, const void *p, size_t n)
{
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

/* Fills in a length field of `width` bytes at `at` with the bytes written after it. */
static void
wr_patch(struct wr *w, size_t at, int width)
{
    size_t len = w->n - at - (size_t)width;
    int i;

    for (i = 0; i < width; i++)
        w->b[at + (size_t)i] = (uint8_t)(len >> (8 * (width - 1 - i)));
}

/* A ClientHello handshake message: SNI, ALPN "smtp", supported_versions with GREASE. */
static void
build_client_hello(struct wr *w, const char *sni)
{
    size_t msg, ext, e, l;
    static const uint8_t random[32] = {1};

    wr_u8(w, 1);
    msg = w->n;
    wr_u24(w, 0);
    wr_u16(w, 0x0303);
    wr_bytes(w, random, 32);
    wr_u8(w, 0); /* session id */
    wr_u16(w, 8);
    wr_u16(w, 0x1301);
    wr_u16(w, 0xc02f);
    wr_u16(w, 0x009c);
    wr_u16(w, 0x00ff);
    wr_u8(w, 1);
    wr_u8(w, 0);
    ext = w->n;
    wr_u16(w, 0);
    /* server_name */
    wr_u16(w, 0);
    e = w->n;
    wr_u16(w, 0);
    l = w->n;
    wr_u16(w, 0);
    wr_u8(w, 0);
    wr_u16(w, (unsigned)strlen(sni));
    wr_bytes(w, sni, strlen(sni));
    wr_patch(w, l, 2);
    wr_patch(w, e, 2);
    /* ALPN */
    wr_u16(w, 16);
    e = w->n;
    wr_u16(w, 0);
    l = w->n;
    wr_u16(w, 0);
    wr_u8(w, 4);
    wr_bytes(w, "smtp", 4);
    wr_patch(w, l, 2);
    wr_patch(w, e, 2);
    /* supported_versions: GREASE, 1.3, 1.2 */
    wr_u16(w, 43);
    wr_u16(w, 7);
    wr_u8(w, 6);
    wr_u16(w, 0x3a3a);
    wr_u16(w, 0x0304);
    wr_u16(w, 0x0303);
    wr_patch(w, ext, 2);
    wr_patch(w, msg, 3);
}

static void
build_server_hello(struct wr *w, unsigned cipher, unsigned version13, int hrr)
{
    static const uint8_t hrr_random[32] = {
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C,
        0x02, 0x1E, 0x65, 0xB8, 0x91, 0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB,
        0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    };
    static const uint8_t random[32] = {2};
    size_t msg, ext;

    wr_u8(w, 2);
    msg = w->n;
    wr_u24(w, 0);
    wr_u16(w, 0x0303);
    wr_bytes(w, hrr ? hrr_random : random, 32);
    wr_u8(w, 0);
    wr_u16(w, cipher);
    wr_u8(w, 0);
    ext = w->n;
    wr_u16(w, 0);
    if (version13) {
        wr_u16(w, 43);
        wr_u16(w, 2);
        wr_u16(w, version13);
    }
    wr_patch(w, ext, 2);
    wr_patch(w, msg, 3);
}

/* Wraps bytes in records of at most `frag` bytes each. */
static void
wrap_records(struct wr *out, unsigned type, const uint8_t *p, size_t n, size_t frag)
{
    while (n) {
        size_t take = n < frag ? n : frag;
        wr_u8(out, type);
        wr_u16(out, 0x0303);
        wr_u16(out, (unsigned)take);
        wr_bytes(out, p, take);
        p += take;
        n -= take;
    }
}

/* ---- helpers -------------------------------------------------------------------------------- */

static json_t *
tt_report(const struct tls_view *t)
{
    struct jt *tree = jt_new();
    struct jt_node *o = jt_root(tree);
    json_t *j;

    CHECK_EQ_INT(tls_report(t, o), 0);
    CHECK(!jt_failed(tree));
    j = jt_to_json(o);
    jt_free(tree);
    return j;
}

static const char *
tt_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long
tt_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static char *
tt_dump(const json_t *o)
{
    return json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void
test_real_tls12(const char *srcdir)
{
    static struct blob c, s;
    struct tls_view *t, *u;
    json_t *o, *o2, *cert, *alpn;
    char *d1, *d2;
    size_t i, j;

    if (tt_load(srcdir, "tls12-client.bin", &c) || tt_load(srcdir, "tls12-server.bin", &s)) {
        CHECK(0);
        return;
    }
    t = tls_create(0);
    tls_feed(t, TLS_CLIENT, c.data, c.len);
    tls_feed(t, TLS_SERVER, s.data, s.len);
    o = tt_report(t);
    CHECK_EQ_STR(tt_str(o, "version"), "TLS 1.2");
    CHECK_EQ_STR(tt_str(o, "cipher"), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
    CHECK_EQ_STR(tt_str(o, "sni"), "mx.example.test");
    CHECK_EQ_STR(tt_str(o, "alpn_selected"), "smtp");
    alpn = json_object_get(o, "alpn");
    CHECK_EQ_INT(json_array_size(alpn), 2);
    CHECK_EQ_STR(json_string_value(json_array_get(alpn, 1)), "x-other");
    CHECK(tt_int(o, "client_ciphers") >= 1);
    cert = json_object_get(o, "certificate");
    CHECK(cert != NULL);
    CHECK_EQ_STR(tt_str(cert, "subject"), "CN=mx.example.test,O=smtpsniff tests");
    CHECK_EQ_STR(tt_str(cert, "issuer"), "CN=smtpsniff Test CA,O=smtpsniff tests");
    CHECK_EQ_STR(tt_str(cert, "not_before"), "2026-11-25T13:07:07Z");
    CHECK_EQ_STR(tt_str(cert, "not_after"), "2029-02-27T13:07:07Z");
    CHECK_EQ_STR(tt_str(cert, "sha256"),
                 "0c75844ace878f4f9ea384d87d04b2dce4d617f004b9ad6a6caa7da045362773");
    CHECK_EQ_INT(tt_int(cert, "chain"), 2);
    CHECK(json_is_true(json_object_get(o, "handshake_complete")));
    CHECK_EQ_INT(tls_handshake_complete(t), 1);
    CHECK_EQ_INT(tls_fatal_alerts(t), 0);
    CHECK(json_object_get(o, "parse_error") == NULL);
    CHECK(tt_int(json_object_get(o, "records"), "client") >= 4);
    CHECK(tt_int(json_object_get(o, "records"), "server") >= 4);

    /* The same bytes one at a time, directions interleaved, must read the same. */
    u = tls_create(0);
    for (i = 0, j = 0; i < c.len || j < s.len;) {
        if (i < c.len)
            tls_feed(u, TLS_CLIENT, c.data + i++, 1);
        if (j < s.len)
            tls_feed(u, TLS_SERVER, s.data + j++, 1);
    }
    o2 = tt_report(u);
    d1 = tt_dump(o);
    d2 = tt_dump(o2);
    CHECK(d1 && d2 && strcmp(d1, d2) == 0);
    free(d1);
    free(d2);
    json_decref(o);
    json_decref(o2);
    tls_destroy(t);
    tls_destroy(u);
}

static void
test_real_tls13(const char *srcdir)
{
    static struct blob c, s;
    struct tls_view *t;
    json_t *o, *vers;
    size_t i, found = 0;

    if (tt_load(srcdir, "tls13-client.bin", &c) || tt_load(srcdir, "tls13-server.bin", &s)) {
        CHECK(0);
        return;
    }
    t = tls_create(0);
    tls_feed(t, TLS_CLIENT, c.data, c.len);
    tls_feed(t, TLS_SERVER, s.data, s.len);
    o = tt_report(t);
    CHECK_EQ_STR(tt_str(o, "version"), "TLS 1.3");
    CHECK_EQ_STR(tt_str(o, "cipher"), "TLS_AES_256_GCM_SHA384");
    CHECK_EQ_STR(tt_str(o, "sni"), "mx.example.test");
    /* The certificate travels encrypted in TLS 1.3. */
    CHECK(json_object_get(o, "certificate") == NULL);
    vers = json_object_get(o, "client_versions");
    for (i = 0; i < json_array_size(vers); i++)
        if (strcmp(json_string_value(json_array_get(vers, i)), "TLS 1.3") == 0)
            found++;
    CHECK_EQ_INT(found, 1);
    CHECK_EQ_INT(tls_handshake_complete(t), 1);
    CHECK(json_object_get(o, "alerts") == NULL);
    CHECK(json_object_get(o, "parse_error") == NULL);
    json_decref(o);
    tls_destroy(t);
}

/* A ClientHello spread over three records, fed in awkward pieces. */
static void
test_handmade_hello(void)
{
    static struct wr hs, rec, sh, srec;
    struct tls_view *t = tls_create(0);
    json_t *o, *vers;
    size_t i;

    build_client_hello(&hs, "smtp.example.org");
    wrap_records(&rec, 22, hs.b, hs.n, 20);
    for (i = 0; i < rec.n; i += 7)
        tls_feed(t, TLS_CLIENT, rec.b + i, rec.n - i < 7 ? rec.n - i : 7);
    build_server_hello(&sh, 0x1234, 0, 0);
    wrap_records(&srec, 22, sh.b, sh.n, 1000);
    tls_feed(t, TLS_SERVER, srec.b, srec.n);
    o = tt_report(t);
    CHECK_EQ_STR(tt_str(o, "sni"), "smtp.example.org");
    CHECK_EQ_INT(tt_int(o, "client_ciphers"), 4);
    vers = json_object_get(o, "client_versions");
    CHECK_EQ_INT(json_array_size(vers), 2); /* GREASE left out */
    CHECK_EQ_STR(json_string_value(json_array_get(vers, 0)), "TLS 1.3");
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(o, "alpn"), 0)), "smtp");
    CHECK_EQ_STR(tt_str(o, "version"), "TLS 1.2");
    CHECK_EQ_STR(tt_str(o, "cipher"), "0x1234");
    CHECK(json_is_false(json_object_get(o, "handshake_complete")));
    CHECK_EQ_INT(tt_int(json_object_get(o, "records"), "client"), (hs.n + 19) / 20);
    json_decref(o);
    tls_destroy(t);
}

static void
test_hello_retry(void)
{
    static struct wr a, b, rec;
    static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    struct tls_view *t = tls_create(0);
    json_t *o;

    build_server_hello(&a, 0x1302, 0x0304, 1);
    wrap_records(&rec, 22, a.b, a.n, 1000);
    wr_bytes(&rec, ccs, sizeof ccs);
    build_server_hello(&b, 0x1302, 0x0304, 0);
    wrap_records(&rec, 22, b.b, b.n, 1000);
    tls_feed(t, TLS_SERVER, rec.b, rec.n);
    o = tt_report(t);
    CHECK_EQ_STR(tt_str(o, "version"), "TLS 1.3");
    CHECK_EQ_STR(tt_str(o, "cipher"), "TLS_AES_256_GCM_SHA384");
    CHECK(json_is_true(json_object_get(o, "hello_retry")));
    json_decref(o);
    tls_destroy(t);
}

static void
test_alert(void)
{
    static struct wr hs, rec;
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
    struct tls_view *t = tls_create(0);
    json_t *o, *a;

    build_client_hello(&hs, "x");
    wrap_records(&rec, 22, hs.b, hs.n, 4096);
    tls_feed(t, TLS_CLIENT, rec.b, rec.n);
    tls_feed(t, TLS_SERVER, alert, sizeof alert);
    o = tt_report(t);
    a = json_array_get(json_object_get(o, "alerts"), 0);
    CHECK_EQ_STR(tt_str(a, "dir"), "server");
    CHECK_EQ_STR(tt_str(a, "level"), "fatal");
    CHECK_EQ_STR(tt_str(a, "description"), "handshake_failure");
    CHECK_EQ_INT(tls_fatal_alerts(t), 1);
    CHECK_EQ_INT(tls_handshake_complete(t), 0);
    json_decref(o);
    tls_destroy(t);
}

/* The server answered STARTTLS in plaintext, or the client kept talking SMTP. */
static void
test_not_tls(void)
{
    static const char reply[] = "454 4.7.0 TLS not available due to local problem\r\n";
    static const uint8_t huge[] = {23, 3, 3, 0x48, 0x01};
    static const uint8_t badver[] = {22, 2, 0, 0, 4};
    struct tls_view *t = tls_create(0);
    json_t *o;

    tls_feed(t, TLS_SERVER, (const uint8_t *)reply, sizeof reply - 1);
    tls_feed(t, TLS_SERVER, (const uint8_t *)reply, sizeof reply - 1);
    o = tt_report(t);
    CHECK(tt_str(o, "parse_error") != NULL);
    CHECK(strstr(tt_str(o, "parse_error"), "server") != NULL);
    CHECK_EQ_INT(tt_int(json_object_get(o, "records"), "server"), 0);
    json_decref(o);
    tls_destroy(t);

    /* 0x4801 > 2^14 + 2048 */
    t = tls_create(0);
    tls_feed(t, TLS_CLIENT, huge, sizeof huge);
    o = tt_report(t);
    CHECK(tt_str(o, "parse_error") != NULL && strstr(tt_str(o, "parse_error"), "length"));
    json_decref(o);
    tls_destroy(t);

    t = tls_create(0);
    tls_feed(t, TLS_CLIENT, badver, sizeof badver);
    o = tt_report(t);
    CHECK(tt_str(o, "parse_error") != NULL && strstr(tt_str(o, "parse_error"), "version"));
    json_decref(o);
    tls_destroy(t);
}

/* A handshake message bigger than the buffer is read as far as it was kept. */
static void
test_small_buffer(void)
{
    static struct wr hs, rec;
    struct tls_view *t = tls_create(64);
    json_t *o;

    build_client_hello(&hs, "a-rather-long-host-name.example.org");
    wrap_records(&rec, 22, hs.b, hs.n, 100);
    tls_feed(t, TLS_CLIENT, rec.b, rec.n);
    o = tt_report(t);
    CHECK_EQ_INT(tt_int(o, "client_ciphers"), 4);
    CHECK(json_object_get(o, "sni") == NULL); /* beyond the 64 kept bytes */
    CHECK(json_object_get(o, "parse_error") == NULL);
    json_decref(o);
    tls_destroy(t);
}

static void
test_gap(void)
{
    static struct wr hs, rec;
    struct tls_view *t = tls_create(0);
    json_t *o;

    build_client_hello(&hs, "gap.example");
    wrap_records(&rec, 22, hs.b, hs.n, 4096);
    tls_gap(t, TLS_CLIENT);
    tls_feed(t, TLS_CLIENT, rec.b, rec.n);
    o = tt_report(t);
    CHECK(json_object_get(o, "sni") == NULL);
    CHECK(json_is_true(json_object_get(json_object_get(o, "gap"), "client")));
    CHECK(json_object_get(o, "parse_error") == NULL);
    json_decref(o);
    tls_destroy(t);
}

/* Every allocation failing in turn: no crash, no leak (the ASan build checks). */
static void
test_alloc_failures(const char *srcdir)
{
    static struct blob c, s;
    long k;

    if (tt_load(srcdir, "tls12-client.bin", &c) || tt_load(srcdir, "tls12-server.bin", &s))
        return;
    for (k = 0; k < 40; k++) {
        struct tls_view *t;
        struct jt *tree;
        mem_fail_after(k);
        t = tls_create(0);
        if (t) {
            tls_feed(t, TLS_CLIENT, c.data, c.len);
            tls_feed(t, TLS_SERVER, s.data, s.len);
            tree = jt_new();
            if (tree)
                tls_report(t, jt_root(tree));
            jt_free(tree);
        }
        tls_destroy(t);
    }
    mem_fail_after(-1);
}

int
main(int argc, char **argv)
{
    const char *srcdir = argc > 1 ? argv[1] : "tests";

    test_real_tls12(srcdir);
    test_real_tls13(srcdir);
    test_handmade_hello();
    test_hello_retry();
    test_alert();
    test_not_tls();
    test_small_buffer();
    test_gap();
    test_alloc_failures(srcdir);
    tls_destroy(NULL);
    CHECK_DONE();
}
