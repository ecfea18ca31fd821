/* test_mime.c - the MIME structure of a message: nested multiparts, base64 and
 * quoted-printable parts with the SHA-256 of their decoded content, RFC 2231 and RFC 2047
 * file names, a multipart that never closes, the part and depth limits, gaps; each message
 * is read at once and in small pieces, with the same result. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "imf.h"
#include "jtree.h"
#include "mem.h"
#include "mime.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

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

/* The "mime" object of msg read in pieces of step bytes (0: at once), as JSON text. */
static char *
parse(const struct mime_config *cfg, const uint8_t *p, size_t n, size_t step)
{
    struct mime *m = mime_create(cfg);
    struct jt *t = jt_new();
    size_t used = 0;
    char *s;
    json_t *j;

    CHECK(m && t);
    if (!step)
        step = n ? n : 1;
    while (used < n) {
        size_t take = n - used < step ? n - used : step;
        mime_feed(m, p + used, take);
        used += take;
    }
    mime_finish(m);
    CHECK_EQ_INT(mime_report(m, jt_root(t)), 0);
    j = jt_to_json(jt_root(t));
    s = json_dumps(json_object_get(j, "mime"), JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(j);
    jt_free(t);
    mime_destroy(m);
    return s;
}

/* Reads msg at once, a byte at a time and 7 at a time: the reports must agree. Returns the
 * parts array (the caller frees the root it returns through *root). */
static json_t *
parts_of(const struct mime_config *cfg, const uint8_t *p, size_t n, json_t **root)
{
    static const size_t steps[] = {1, 2, 7, 64};
    char *whole = parse(cfg, p, n, 0);
    json_error_t err;
    size_t k;

    CHECK(whole != NULL);
    for (k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        char *piece = parse(cfg, p, n, steps[k]);
        CHECK(piece && whole && strcmp(piece, whole) == 0);
        if (piece && whole && strcmp(piece, whole) != 0)
            fprintf(stderr, "step %zu:\n  %s\nwhole:\n  %s\n", steps[k], piece, whole);
        free(piece);
    }
    *root = json_loads(whole ? whole : "{}", 0, &err);
    free(whole);
    return json_object_get(*root, "parts");
}

static const char *
str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long
num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v ? json_integer_value(v) : -1;
}

static const struct mime_config hashing = {.hash = 1};

static void
test_plain(void)
{
    static const char msg[] = "Subject: x\r\n\r\nline one\r\nline two\r\n";
    char hex[65];
    json_t *root, *parts = parts_of(&hashing, S(msg), &root), *p;

    CHECK_EQ_INT(json_array_size(parts), 1);
    p = json_array_get(parts, 0);
    CHECK_EQ_STR(str(p, "type"), "text/plain");
    CHECK(json_is_false(json_object_get(p, "type_given")));
    CHECK_EQ_INT(num(p, "depth"), 0);
    CHECK_EQ_INT(num(p, "bytes"), 20);
    /* One plain part: the message's own SHA-256 covers it. */
    CHECK(!json_object_get(p, "sha256"));
    CHECK(!json_object_get(p, "decoded_bytes"));
    json_decref(root);
    (void)hex;

    /* One base64 part: its decoded content is hashed. */
    static const char b64[] = "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n";
    parts = parts_of(&hashing, S(b64), &root);
    hex_sha256("hello", 5, hex);
    CHECK_EQ_STR(str(json_array_get(parts, 0), "sha256"), hex);
    json_decref(root);
}

/* multipart/mixed holding multipart/alternative (text, QP html) and a base64 attachment. */
static const char nested[] = "From: a@example.org\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: multipart/mixed;\r\n"
                             " boundary=\"outer\"\r\n"
                             "\r\n"
                             "preamble\r\n"
                             "--outer\r\n"
                             "Content-Type: multipart/alternative; boundary=inner\r\n"
                             "\r\n"
                             "--inner\r\n"
                             "Content-Type: text/plain; charset=UTF-8\r\n"
                             "\r\n"
                             "hello\r\n"
                             "--inner\r\n"
                             "Content-Type: text/html; charset=\"iso-8859-1\"\r\n"
                             "Content-Transfer-Encoding: quoted-printable\r\n"
                             "\r\n"
                             "<p>caf=E9 soft=\r\n"
                             "break</p>  \r\n"
                             "--inner--\r\n"
                             "--outer\r\n"
                             "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
                             "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
                             "Content-Transfer-Encoding: base64\r\n"
                             "\r\n"
                             "aGVsbG8gd29y\r\n"
                             "bGQ=\r\n"
                             "--outer--\r\n"
                             "epilogue\r\n";

static void
test_nested(void)
{
    char hex[65];
    json_t *root, *parts = parts_of(&hashing, S(nested), &root), *p;

    CHECK_EQ_INT(json_array_size(parts), 5);
    p = json_array_get(parts, 0);
    CHECK_EQ_STR(str(p, "type"), "multipart/mixed");
    CHECK_EQ_INT(num(p, "depth"), 0);
    CHECK(!json_object_get(p, "sha256")); /* containers have no content of their own */
    CHECK(!json_object_get(p, "unclosed"));
    p = json_array_get(parts, 1);
    CHECK_EQ_STR(str(p, "type"), "multipart/alternative");
    CHECK_EQ_INT(num(p, "depth"), 1);
    CHECK_EQ_INT(num(p, "parent"), 0);
    p = json_array_get(parts, 2);
    CHECK_EQ_STR(str(p, "type"), "text/plain");
    CHECK_EQ_STR(str(p, "charset"), "utf-8");
    CHECK_EQ_INT(num(p, "depth"), 2);
    CHECK_EQ_INT(num(p, "parent"), 1);
    /* The CRLF before "--inner" belongs to the delimiter. */
    CHECK_EQ_INT(num(p, "bytes"), 5);
    hex_sha256("hello", 5, hex);
    CHECK_EQ_STR(str(p, "sha256"), hex);
    p = json_array_get(parts, 3);
    CHECK_EQ_STR(str(p, "type"), "text/html");
    CHECK_EQ_STR(str(p, "charset"), "iso-8859-1");
    CHECK_EQ_STR(str(p, "transfer_encoding"), "quoted-printable");
    CHECK_EQ_INT(num(p, "bytes"), (long long)strlen("<p>caf=E9 soft=\r\nbreak</p>  "));
    /* =E9 a byte, the soft break gone, the trailing blanks are padding. */
    hex_sha256("<p>caf\xe9 softbreak</p>", 21, hex);
    CHECK_EQ_STR(str(p, "sha256"), hex);
    CHECK_EQ_INT(num(p, "decoded_bytes"), 21);
    CHECK(!json_object_get(p, "decode_errors"));
    p = json_array_get(parts, 4);
    CHECK_EQ_STR(str(p, "type"), "application/pdf");
    CHECK_EQ_STR(str(p, "name"), "report.pdf");
    CHECK_EQ_STR(str(p, "filename"), "report.pdf");
    CHECK_EQ_STR(str(p, "disposition"), "attachment");
    CHECK_EQ_STR(str(p, "transfer_encoding"), "base64");
    CHECK_EQ_INT(num(p, "parent"), 0);
    CHECK_EQ_INT(num(p, "bytes"), 18);
    CHECK_EQ_INT(num(p, "decoded_bytes"), 11);
    hex_sha256("hello world", 11, hex);
    CHECK_EQ_STR(str(p, "sha256"), hex);
    json_decref(root);
}

static void
test_filenames(void)
{
    static const char msg[] =
        "Content-Type: multipart/mixed; boundary=b\r\n"
        "\r\n"
        "--b\r\n"
        /* RFC 2231: continuations, a charset, %XX */
        "Content-Disposition: attachment;\r\n"
        " filename*0*=UTF-8''na%C3%AFve%20;\r\n"
        " filename*1=\"report\";\r\n"
        " filename*2*=%2Epdf\r\n"
        "Content-Type: application/octet-stream; name*=iso-8859-1'en'caf%E9.bin\r\n"
        "\r\n"
        "x\r\n"
        "--b\r\n"
        /* RFC 2047 words in a quoted value, the blank between two of them dropped */
        "Content-Type: text/plain; name=\"=?UTF-8?B?w6ly?= =?ISO-8859-1?Q?=E9_t?=.txt\"\r\n"
        "\r\n"
        "y\r\n"
        "--b--\r\n";
    json_t *root, *parts = parts_of(&hashing, S(msg), &root), *p;

    CHECK_EQ_INT(json_array_size(parts), 3);
    p = json_array_get(parts, 1);
    CHECK_EQ_STR(str(p, "filename"), "na\xc3\xafve report.pdf");
    CHECK_EQ_STR(str(p, "name"), "caf\xc3\xa9.bin");
    p = json_array_get(parts, 2);
    CHECK_EQ_STR(str(p, "name"), "\xc3\xa9r\xc3\xa9 t.txt");
    json_decref(root);
}

static void
test_unclosed(void)
{
    /* The inner multipart never closes: the outer delimiter ends it, and the outer one never
     * closes either (the message ends first). */
    static const char msg[] = "Content-Type: multipart/mixed; boundary=o\r\n"
                              "\r\n"
                              "--o\r\n"
                              "Content-Type: multipart/related; boundary=i\r\n"
                              "\r\n"
                              "--i\r\n"
                              "\r\n"
                              "first\r\n"
                              "--o\r\n"
                              "Content-Type: text/plain\r\n"
                              "\r\n"
                              "last\r\n";
    char hex[65];
    json_t *root, *parts = parts_of(&hashing, S(msg), &root), *p;

    CHECK_EQ_INT(json_array_size(parts), 4);
    CHECK(json_is_true(json_object_get(json_array_get(parts, 0), "unclosed")));
    CHECK(json_is_true(json_object_get(json_array_get(parts, 1), "unclosed")));
    p = json_array_get(parts, 2);
    CHECK_EQ_INT(num(p, "depth"), 2);
    hex_sha256("first", 5, hex);
    CHECK_EQ_STR(str(p, "sha256"), hex);
    p = json_array_get(parts, 3);
    CHECK_EQ_INT(num(p, "depth"), 1);
    CHECK_EQ_INT(num(p, "parent"), 0);
    /* Ended by the message: its last line end is its own. */
    hex_sha256("last\r\n", 6, hex);
    CHECK_EQ_STR(str(p, "sha256"), hex);
    json_decref(root);
}

static void
test_rfc822_and_limits(void)
{
    static const char msg[] = "Content-Type: multipart/mixed; boundary=o\r\n"
                              "\r\n"
                              "--o\r\n"
                              "Content-Type: message/rfc822\r\n"
                              "\r\n"
                              "Subject: inner\r\n"
                              "Content-Type: multipart/mixed; boundary=x\r\n"
                              "\r\n"
                              "--x\r\n"
                              "\r\n"
                              "deep\r\n"
                              "--x--\r\n"
                              "--o--\r\n";
    json_t *root, *parts = parts_of(&hashing, S(msg), &root), *p;
    struct mime_config shallow = {.hash = 1, .max_depth = 2};

    CHECK_EQ_INT(json_array_size(parts), 4);
    CHECK_EQ_STR(str(json_array_get(parts, 1), "type"), "message/rfc822");
    p = json_array_get(parts, 2);
    CHECK_EQ_STR(str(p, "type"), "multipart/mixed");
    CHECK_EQ_INT(num(p, "depth"), 2);
    CHECK_EQ_INT(num(p, "parent"), 1);
    CHECK_EQ_INT(num(json_array_get(parts, 3), "depth"), 3);
    json_decref(root);

    /* Depth 2 at most: the inner multipart is read as a leaf. */
    parts = parts_of(&shallow, S(msg), &root);
    CHECK_EQ_INT(json_array_size(parts), 3);
    CHECK(json_is_true(json_object_get(json_array_get(parts, 2), "depth_limit")));
    CHECK_EQ_INT(num(root, "depth_limited"), 1);
    json_decref(root);
}

static void
test_too_many_parts(void)
{
    char msg[8192];
    size_t n = 0, k;
    json_t *root, *parts;

    n += (size_t)snprintf(msg + n, sizeof msg - n,
                          "Content-Type: multipart/mixed; boundary=z\r\n\r\n");
    for (k = 0; k < 100; k++)
        n += (size_t)snprintf(msg + n, sizeof msg - n, "--z\r\n\r\npart %zu\r\n", k);
    n += (size_t)snprintf(msg + n, sizeof msg - n, "--z--\r\n");
    parts = parts_of(&hashing, (const uint8_t *)msg, n, &root);
    CHECK_EQ_INT(json_array_size(parts), 64);
    CHECK_EQ_INT(num(root, "parts_dropped"), 101 - 64);
    json_decref(root);
}

static void
test_boundary_rules(void)
{
    /* 71 characters: longer than RFC 2046 allows, so no delimiter is looked for. */
    static const char msg[] =
        "Content-Type: multipart/mixed; boundary="
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        "\r\n"
        "--aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
        "\r\n"
        "x\r\n";
    /* A line that only starts like the delimiter is content, one with blanks after it (transport
     * padding) is a delimiter; a long line streams. */
    static const char msg2[] = "Content-Type: multipart/mixed; boundary=b\r\n"
                               "\r\n"
                               "--b\r\n"
                               "\r\n"
                               "--bb\r\n"
                               "--b \r\n"
                               "\r\n"
                               "0123456789012345678901234567890123456789012345678901234567890123"
                               "456789012345678901234567890123456789012345678901234567890123456"
                               "\r\n"
                               "--b--\r\n";
    json_t *root, *parts = parts_of(&hashing, S(msg), &root);

    CHECK_EQ_INT(json_array_size(parts), 1);
    CHECK(json_is_true(json_object_get(json_array_get(parts, 0), "no_boundary")));
    json_decref(root);
    parts = parts_of(&hashing, S(msg2), &root);
    CHECK_EQ_INT(json_array_size(parts), 3);
    CHECK_EQ_INT(num(json_array_get(parts, 1), "bytes"), 4);
    CHECK_EQ_INT(num(json_array_get(parts, 2), "bytes"), 127);
    json_decref(root);
}

static void
test_bad_base64_and_gap(void)
{
    static const char msg[] = "Content-Transfer-Encoding: BASE64\r\n"
                              "\r\n"
                              "aGVs!bG8\r\n";
    struct mime *m;
    struct jt *t;
    json_t *root, *parts = parts_of(&hashing, S(msg), &root), *p;

    p = json_array_get(parts, 0);
    CHECK_EQ_STR(str(p, "transfer_encoding"), "base64");
    CHECK_EQ_INT(num(p, "decoded_bytes"), 5);
    CHECK_EQ_INT(num(p, "decode_errors"), 1);
    json_decref(root);

    /* A gap: what is known stays, no hash of the part with the hole. */
    m = mime_create(&hashing);
    mime_feed(m, S("Subject: a\r\n\r\nxyz"));
    mime_gap(m);
    mime_feed(m, S("--whatever\r\n"));
    mime_finish(m);
    t = jt_new();
    CHECK_EQ_INT(mime_report(m, jt_root(t)), 0);
    root = jt_to_json(jt_root(t));
    p = json_object_get(root, "mime");
    CHECK(json_is_true(json_object_get(p, "gap")));
    CHECK(!json_object_get(json_array_get(json_object_get(p, "parts"), 0), "sha256"));
    json_decref(root);
    jt_free(t);
    mime_destroy(m);
}

/* Through the DATA reader: dot-unstuffed bytes are what MIME reads; User-Agent and X-Mailer. */
static void
test_through_imf(void)
{
    static const char wire[] = "User-Agent: Mutt/2.2\r\n"
                               "X-Mailer: other\r\n"
                               "Content-Type: text/plain\r\n"
                               "\r\n"
                               "..dot\r\n"
                               ".\r\n";
    struct imf *m = imf_create(&(struct imf_config){.hash = 1});
    struct jt *t = jt_new();
    json_t *root, *p;
    char hex[65];
    int done = 0;

    CHECK_EQ_INT(imf_data_feed(m, S(wire), &done), (long long)sizeof wire - 1);
    CHECK(done);
    imf_finish(m);
    CHECK_EQ_INT(imf_report(m, jt_root(t)), 0);
    root = jt_to_json(jt_root(t));
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(root, "headers"), "user_agent")),
                 "Mutt/2.2");
    CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(root, "headers"), "x_mailer")),
                 "other");
    p = json_array_get(json_object_get(json_object_get(root, "mime"), "parts"), 0);
    CHECK_EQ_INT(num(p, "bytes"), 6); /* ".dot\r\n": what MIME reads is dot-unstuffed */
    (void)hex;
    CHECK(!json_object_get(p, "type_given"));
    json_decref(root);
    jt_free(t);
    imf_destroy(m);
}

static void
test_alloc_failures(void)
{
    long k;

    for (k = 0; k < 40; k++) {
        struct mime *m;
        struct jt *t;
        mem_fail_after(k);
        m = mime_create(&hashing);
        mime_feed(m, S(nested));
        mime_finish(m);
        t = jt_new();
        if (t)
            mime_report(m, jt_root(t));
        jt_free(t);
        mime_destroy(m);
    }
    mem_fail_after(-1);
}

int
main(void)
{
    test_plain();
    test_nested();
    test_filenames();
    test_unclosed();
    test_rfc822_and_limits();
    test_too_many_parts();
    test_boundary_rules();
    test_bad_base64_and_gap();
    test_through_imf();
    test_alloc_failures();
    CHECK_DONE();
}
