/* test_imf.c - DATA/BDAT message reader: end of data, dot-unstuffing, smuggling forms,
 * chunk boundaries, headers, hashing, the bytes handed to the sink, gaps. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "check.h"
#include "imf.h"
#include "jtree.h"
#include "mem.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* The sink of the message being tested (one at a time): what it was given. */
static struct {
    struct buf b;
    int begun, ended, whole;
    uint64_t id;
} col;

static void *
col_begin(void *ctx, uint64_t id, const struct imf_envelope *env)
{
    CHECK(env == NULL); /* none given in these tests */
    buf_free(&col.b);
    buf_init(&col.b, 1 << 20);
    col.begun++;
    col.ended = col.whole = 0;
    col.id = id;
    return ctx;
}

static void
col_bytes(void *msg, const uint8_t *p, size_t n)
{
    CHECK(msg == &col);
    CHECK_EQ_INT(col.ended, 0);
    /* Fails only under test_alloc_failures; check_kept sees any loss elsewhere. */
    (void)buf_append(&col.b, p, n);
}

static void
col_end(void *msg, int whole)
{
    CHECK(msg == &col);
    col.ended++;
    col.whole = whole;
}

static const struct imf_config cfg_all = {
    .hash = 1, .sink = {col_begin, col_bytes, col_end, &col}, .sink_id = 7};

static void
hex_sha256(const void *p, size_t n, char out[65])
{
    unsigned char d[32];
    unsigned int len = 0, i;
    static const char digits[] = "0123456789abcdef";

    EVP_Digest(p, n, d, &len, EVP_sha256(), NULL);
    for (i = 0; i < 32; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[64] = '\0';
}

static json_t *
report(const struct imf *m)
{
    struct jt *t = jt_new();
    struct jt_node *o = jt_root(t);
    json_t *j;

    CHECK_EQ_INT(imf_report(m, o), 0);
    CHECK(!jt_failed(t));
    j = jt_to_json(o);
    jt_free(t);
    return j;
}

static const char *
str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long
num(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* Feeds a whole DATA stream in pieces of `step` bytes (0: at once); returns bytes consumed. */
static size_t
feed(struct imf *m, const uint8_t *p, size_t n, size_t step, int *done)
{
    size_t used = 0;

    *done = 0;
    if (!step)
        step = n;
    while (used < n && !*done) {
        size_t take = n - used < step ? n - used : step;
        size_t got = imf_data_feed(m, p + used, take, done);
        CHECK(got <= take);
        CHECK(*done || got == take);
        used += got;
    }
    return used;
}

/* What the sink was given for m so far. */
static void
check_kept(const struct imf *m, const char *expect, size_t len)
{
    (void)m;
    CHECK_EQ_INT(col.b.len, len);
    CHECK(col.b.len == len && (len == 0 || memcmp(col.b.data, expect, len) == 0));
}

/* The sink's message ended once, whole or not. */
static void
check_ended(int whole)
{
    CHECK_EQ_INT(col.ended, 1);
    CHECK_EQ_INT(col.whole, whole);
}

static void
test_basic(void)
{
    static const char wire[] = "From: Alice <alice@example.org>\r\n"
                               "To: bob@example.net\r\n"
                               "Subject: hello\r\n"
                               "\r\n"
                               "body line\r\n"
                               ".\r\n"
                               "QUIT\r\n";
    static const char msg[] = "From: Alice <alice@example.org>\r\n"
                              "To: bob@example.net\r\n"
                              "Subject: hello\r\n"
                              "\r\n"
                              "body line\r\n";
    struct imf *m = imf_create(&cfg_all);
    char expect[65];
    json_t *o, *h;
    int done;
    size_t used;

    used = feed(m, S(wire), 0, &done);
    CHECK_EQ_INT(done, 1);
    CHECK_EQ_INT(used, sizeof wire - 1 - 6);
    /* After the end, nothing more belongs to the message. */
    CHECK_EQ_INT(imf_data_feed(m, S("MORE\r\n"), &done), 0);
    CHECK_EQ_INT(done, 1);
    o = report(m); /* before imf_finish: the hash of what came so far */
    imf_finish(m);
    hex_sha256(msg, sizeof msg - 1, expect);
    CHECK_EQ_STR(str(o, "sha256"), expect);
    json_decref(o);
    o = report(m);
    CHECK_EQ_STR(str(o, "sha256"), expect);
    CHECK_EQ_INT(num(o, "bytes"), sizeof msg - 1);
    CHECK_EQ_STR(str(o, "end_of_data"), "crlf.crlf");
    CHECK_EQ_INT(num(o, "bare_lf"), 0);
    CHECK_EQ_INT(num(o, "longest_line"), 31);
    CHECK(json_object_get(o, "smuggling") == NULL);
    CHECK(json_object_get(o, "gap") == NULL);
    h = json_object_get(o, "headers");
    CHECK_EQ_STR(str(h, "from"), "Alice <alice@example.org>");
    CHECK_EQ_STR(str(h, "to"), "bob@example.net");
    CHECK_EQ_STR(str(h, "subject"), "hello");
    CHECK(json_object_get(h, "cc") == NULL);
    check_kept(m, msg, sizeof msg - 1);
    check_ended(1);
    CHECK_EQ_INT(col.id, 7);
    json_decref(o);
    imf_destroy(m);
}

/* ".\r\n" at once: an empty message, the SHA-256 of nothing. */
static void
test_empty(void)
{
    struct imf *m = imf_create(&cfg_all);
    json_t *o;
    int done;

    CHECK_EQ_INT(imf_data_feed(m, S(".\r\nQUIT\r\n"), &done), 3);
    CHECK_EQ_INT(done, 1);
    imf_finish(m);
    o = report(m);
    CHECK_EQ_INT(num(o, "bytes"), 0);
    CHECK_EQ_STR(str(o, "sha256"),
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(json_object_get(o, "headers") == NULL);
    json_decref(o);
    imf_destroy(m);
}

/* RFC 5321 4.5.2: one leading dot is removed from every line that has one. */
static void
test_unstuffing(void)
{
    static const char wire[] = "Subject: dots\r\n\r\n..leading\r\n...\r\n.x\r\nmid.dle\r\n.\r\n";
    static const char msg[] = "Subject: dots\r\n\r\n.leading\r\n..\r\nx\r\nmid.dle\r\n";
    struct imf *m = imf_create(&cfg_all);
    char expect[65];
    json_t *o;
    int done;

    feed(m, S(wire), 0, &done);
    CHECK_EQ_INT(done, 1);
    imf_finish(m);
    check_kept(m, msg, sizeof msg - 1);
    hex_sha256(msg, sizeof msg - 1, expect);
    o = report(m);
    CHECK_EQ_STR(str(o, "sha256"), expect);
    /* The same digest from coreutils sha256sum over the unstuffed text. */
    CHECK_EQ_STR(str(o, "sha256"),
                 "c104c6750622de0ebd40799f2f3a803b9e02c92018e40345e369e71a616af2d2");
    json_decref(o);
    imf_destroy(m);
}

/* Every split of the stream into two feeds, and byte by byte, gives the same report. */
static void
test_boundaries(void)
{
    static const char wire[] = "Received: from a\r\n by b\r\nSubject: s\r\n\r\n..x\r\n"
                               "bare\n.\nlf\r\n.\r\r.\r\n\r\n..\r\n.\r\nEHLO again\r\n";
    size_t n = sizeof wire - 1, split, used, ref_used;
    struct imf *m;
    json_t *o;
    char *ref, *got;
    int done;

    m = imf_create(&cfg_all);
    ref_used = feed(m, S(wire), 0, &done);
    CHECK_EQ_INT(done, 1);
    CHECK_EQ_INT(ref_used, n - 12);
    imf_finish(m);
    o = report(m);
    ref = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    imf_destroy(m);

    for (split = 0; split <= n + 1; split++) {
        m = imf_create(&cfg_all);
        if (split == n + 1) {
            used = feed(m, S(wire), 1, &done);
        } else {
            int d2 = 0;
            used = imf_data_feed(m, (const uint8_t *)wire, split, &done);
            if (!done) {
                used += imf_data_feed(m, (const uint8_t *)wire + split, n - split, &d2);
                done = d2;
            }
        }
        CHECK_EQ_INT(done, 1);
        CHECK_EQ_INT(used, ref_used);
        imf_finish(m);
        o = report(m);
        got = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
        CHECK(ref && got && strcmp(ref, got) == 0);
        free(got);
        json_decref(o);
        imf_destroy(m);
    }
    free(ref);
}

struct smuggle_case {
    const char *wire;
    size_t len;
    const char *form;
    long long offset;
    const char *kept;
    size_t kept_len;
};

#define SC(w, f, off, k)                                                                           \
    {                                                                                              \
        w, sizeof w - 1, f, off, k, sizeof k - 1                                                   \
    }

/* End-of-data look-alikes inside a body: recorded, never honoured. */
static void
test_smuggling(void)
{
    static const struct smuggle_case cases[] = {
        SC("a\n.\nb\r\n.\r\n", "lf.lf", 2, "a\n.\nb\r\n"),
        SC("a\n.\r\nb\r\n.\r\n", "lf.crlf", 2, "a\n.\r\nb\r\n"),
        SC("a\r\n.\nb\r\n.\r\n", "crlf.lf", 3, "a\r\n\nb\r\n"),
        SC("a\r.\rb\r\n.\r\n", "cr.cr", 2, "a\r.\rb\r\n"),
        SC("a\r.\r\nb\r\n.\r\n", "cr.crlf", 2, "a\r.\r\nb\r\n"),
        SC("a\r\n.\rb\r\n.\r\n", "crlf.cr", 3, "a\r\n\rb\r\n"),
        SC("a\n.\rb\r\n.\r\n", "lf.cr", 2, "a\n.\rb\r\n"),
        SC("a\r.\nb\r\n.\r\n", "cr.lf", 2, "a\r.\nb\r\n"),
        SC(".\nb\r\n.\r\n", "crlf.lf", 0, "\nb\r\n"),
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct smuggle_case *c = &cases[i];
        struct imf *m = imf_create(&cfg_all);
        json_t *o, *ev;
        int done;
        size_t used = feed(m, (const uint8_t *)c->wire, c->len, 0, &done);

        CHECK_EQ_INT(done, 1);
        CHECK_EQ_INT(used, c->len);
        imf_finish(m);
        o = report(m);
        ev = json_array_get(json_object_get(o, "smuggling"), 0);
        CHECK_EQ_STR(str(ev, "form"), c->form);
        CHECK_EQ_INT(num(ev, "offset"), c->offset);
        CHECK_EQ_INT(json_array_size(json_object_get(o, "smuggling")), 1);
        check_kept(m, c->kept, c->kept_len);
        json_decref(o);
        imf_destroy(m);
    }
}

static void
test_counts_and_lines(void)
{
    struct imf *m = imf_create(&cfg_all);
    uint8_t big[3000];
    json_t *o;
    int done;
    size_t i;

    memset(big, 'x', sizeof big);
    imf_data_feed(m, S("one\ntwo\nthree\r\n"), &done);
    imf_data_feed(m, big, sizeof big, &done);
    imf_data_feed(m, S("\r\n"), &done);
    for (i = 0; i < 100; i++)
        imf_data_feed(m, S("a\n.\n"), &done);
    imf_data_feed(m, S(".\r\n"), &done);
    CHECK_EQ_INT(done, 0); /* "\n.\r\n" is not the end */
    imf_data_feed(m, S("\r\n.\r\n"), &done);
    CHECK_EQ_INT(done, 1);
    imf_finish(m);
    o = report(m);
    CHECK_EQ_INT(num(o, "bare_lf"), 202);
    CHECK_EQ_INT(num(o, "longest_line"), 3000);
    CHECK_EQ_INT(json_array_size(json_object_get(o, "smuggling")), 32);
    CHECK_EQ_INT(num(o, "smuggling_dropped"), 101 - 32);
    json_decref(o);
    imf_destroy(m);
}

static void
test_headers(void)
{
    static const char wire[] = "Received: from mx1.example.org\r\n\tby mx2.example.net;\r\n"
                               " Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                               "Received: from two\r\n"
                               "Received: from three\r\n"
                               "SUBJECT :  folded\r\n  subject line  \r\n"
                               "Subject: second subject ignored\r\n"
                               "cc: c@example.org\r\n"
                               "Message-ID: <id@example.org>\r\n"
                               "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                               "From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\n"
                               "X-Bin: \xff\r\n"
                               "\r\n"
                               "To: not-a-header@example.org\r\n"
                               ".\r\n";
    struct imf_config cfg = {.max_received = 2};
    struct imf *m = imf_create(&cfg);
    json_t *o, *h, *r;
    int done;

    feed(m, S(wire), 5, &done);
    CHECK_EQ_INT(done, 1);
    imf_finish(m);
    o = report(m);
    CHECK(json_object_get(o, "sha256") == NULL); /* hash off */
    h = json_object_get(o, "headers");
    r = json_object_get(h, "received");
    CHECK_EQ_INT(json_array_size(r), 2);
    CHECK_EQ_STR(json_string_value(json_array_get(r, 0)),
                 "from mx1.example.org\tby mx2.example.net; Mon, 1 Jan 2024 00:00:00 +0000");
    CHECK_EQ_INT(num(h, "received_dropped"), 1);
    CHECK_EQ_STR(str(h, "subject"), "folded  subject line");
    CHECK_EQ_STR(str(h, "cc"), "c@example.org");
    CHECK_EQ_STR(str(h, "message_id"), "<id@example.org>");
    CHECK_EQ_STR(str(h, "date"), "Mon, 1 Jan 2024 00:00:00 +0000");
    CHECK_EQ_STR(str(h, "from"), "=?utf-8?q?J=C3=B6rg?= <j@example.org>");
    CHECK(json_object_get(h, "to") == NULL);
    json_decref(o);
    imf_destroy(m);

    /* Only max_header bytes are read. */
    cfg.max_header = 40;
    m = imf_create(&cfg);
    feed(m, S("Subject: short\r\nFrom: far-away-beyond-the-limit@example.org\r\n\r\n.\r\n"), 0,
         &done);
    imf_finish(m);
    o = report(m);
    h = json_object_get(o, "headers");
    CHECK_EQ_STR(str(h, "subject"), "short");
    CHECK(str(h, "from") == NULL || strlen(str(h, "from")) < 24);
    json_decref(o);
    imf_destroy(m);

    /* A body that starts without any header. */
    m = imf_create(NULL);
    feed(m, S("just text\r\nKey: value\r\n.\r\n"), 0, &done);
    imf_finish(m);
    o = report(m);
    CHECK(json_object_get(o, "headers") == NULL);
    json_decref(o);
    imf_destroy(m);
}

static void
test_sink_and_gap(void)
{
    struct imf_config cfg = {.hash = 1};
    struct imf *m = imf_create(&cfg_all);
    json_t *o;
    int done;

    /* Each piece goes to the sink as it is read: before the end, what came so far. */
    CHECK_EQ_INT(imf_data_feed(m, S("Subject: x\r\n\r\nhel"), &done), 17);
    check_kept(m, "Subject: x\r\n\r\nhel", 17);
    CHECK_EQ_INT(col.ended, 0);
    feed(m, S("lo\r\n.\r\n"), 0, &done);
    imf_finish(m);
    check_kept(m, "Subject: x\r\n\r\nhello\r\n", 21);
    check_ended(1);
    imf_finish(m);
    imf_destroy(m);
    check_ended(1);

    /* Without a sink nothing is begun. */
    int begun = col.begun;
    m = imf_create(&cfg);
    feed(m, S("a\r\n.\r\n"), 0, &done);
    imf_destroy(m);
    CHECK_EQ_INT(col.begun, begun);

    /* Destroyed before its end: the message ends, cut. */
    m = imf_create(&cfg_all);
    feed(m, S("a\r\nb"), 0, &done);
    imf_destroy(m);
    check_kept(NULL, "a\r\nb", 4);
    check_ended(0);

    /* A hole: no hash, the hole is reported, and a terminator after it still ends. */
    m = imf_create(&cfg_all);
    imf_data_feed(m, S("Subject: gap\r\n\r\nfirst part"), &done);
    imf_gap(m, 1400);
    CHECK_EQ_INT(imf_data_feed(m, S(".\r\nQUIT\r\n"), &done), 3);
    CHECK_EQ_INT(done, 1);
    imf_finish(m);
    o = report(m);
    CHECK(json_object_get(o, "sha256") == NULL);
    CHECK_EQ_INT(num(o, "gap"), 1400);
    CHECK_EQ_INT(num(o, "bytes"), 26);
    CHECK_EQ_STR(str(json_object_get(o, "headers"), "subject"), "gap");
    check_ended(0);
    json_decref(o);
    imf_destroy(m);
}

static void
test_bdat_and_cut(void)
{
    static const char raw[] = "Subject: b\r\n\r\n.\r\n..stays\r\n";
    struct imf *m = imf_create(&cfg_all);
    char expect[65];
    json_t *o;
    int done;

    imf_chunk_feed(m, (const uint8_t *)raw, 10);
    imf_chunk_feed(m, (const uint8_t *)raw + 10, sizeof raw - 1 - 10);
    imf_finish(m);
    o = report(m);
    hex_sha256(raw, sizeof raw - 1, expect);
    CHECK_EQ_STR(str(o, "sha256"), expect);
    CHECK_EQ_INT(num(o, "bytes"), sizeof raw - 1);
    CHECK(json_object_get(o, "end_of_data") == NULL);
    check_kept(m, raw, sizeof raw - 1);
    /* BDAT: only the caller knows the last chunk came. */
    check_ended(0);
    json_decref(o);
    imf_destroy(m);
    m = imf_create(&cfg_all);
    imf_chunk_feed(m, (const uint8_t *)raw, sizeof raw - 1);
    imf_complete(m);
    imf_finish(m);
    check_kept(m, raw, sizeof raw - 1);
    check_ended(1);
    imf_destroy(m);

    /* The connection died in the middle of a possible terminator. */
    m = imf_create(&cfg_all);
    feed(m, S("text\r\n."), 0, &done);
    CHECK_EQ_INT(done, 0);
    imf_finish(m);
    imf_finish(m);
    o = report(m);
    CHECK(json_object_get(o, "end_of_data") == NULL);
    CHECK_EQ_INT(num(o, "bytes"), 7);
    hex_sha256("text\r\n.", 7, expect);
    CHECK_EQ_STR(str(o, "sha256"), expect);
    check_kept(m, "text\r\n.", 7);
    check_ended(0);
    json_decref(o);
    /* Nothing is taken after finish. */
    CHECK_EQ_INT(imf_data_feed(m, S(".\r\n"), &done), 0);
    imf_destroy(m);
    imf_destroy(NULL);
}

static void
test_alloc_failures(void)
{
    long k;

    for (k = 0; k < 30; k++) {
        struct imf *m;
        struct jt *t;
        int done;
        mem_fail_after(k);
        m = imf_create(&cfg_all);
        if (m) {
            feed(m, S("Received: x\r\nSubject: y\r\n\r\nz\r\n.\r\n"), 3, &done);
            imf_finish(m);
            t = jt_new();
            if (t)
                imf_report(m, jt_root(t));
            jt_free(t);
        }
        imf_destroy(m);
    }
    mem_fail_after(-1);
}

int
main(void)
{
    test_basic();
    test_empty();
    test_unstuffing();
    test_boundaries();
    test_smuggling();
    test_counts_and_lines();
    test_headers();
    test_sink_and_gap();
    test_bdat_and_cut();
    test_alloc_failures();
    buf_free(&col.b);
    CHECK_DONE();
}
