/* test_sasl.c - SMTP AUTH exchanges: every mechanism, outcomes, secrets, malformed and
 * oversized input. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "jtree.h"
#include "mem.h"
#include "sasl.h"

/* Base64 of n bytes into a static buffer (valid until the next call). */
static const char *
b64(const void *p, size_t n)
{
    static char out[4096];
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

#define B64(lit) b64(lit, sizeof lit - 1)

static struct sasl *
begin(const char *args)
{
    struct sasl *a = sasl_begin((const uint8_t *)args, strlen(args), 0);
    CHECK(a != NULL);
    return a;
}

static struct sasl *
begin_ir(const char *mech, const char *ir)
{
    char line[4096];
    snprintf(line, sizeof line, "%s %s", mech, ir);
    return begin(line);
}

static void
client(struct sasl *a, const char *line)
{
    sasl_client_line(a, (const uint8_t *)line, strlen(line));
}

static void
challenge(struct sasl *a, const char *text)
{
    sasl_challenge(a, (const uint8_t *)text, strlen(text));
}

static void
final(struct sasl *a, int code, const char *text)
{
    sasl_final(a, code, (const uint8_t *)text, strlen(text));
}

/* The report as Jansson values, for the checks below. */
static json_t *
report(const struct sasl *a, int show_secrets)
{
    struct jt *t = jt_new();
    struct jt_node *o = jt_root(t);
    json_t *j;

    CHECK_EQ_INT(sasl_report(a, show_secrets, o), 0);
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

static void
test_plain(void)
{
    struct sasl *a = begin_ir("PLAIN", B64("\0alice\0s3cret"));
    json_t *r, *s;

    CHECK_EQ_INT(sasl_open(a), 0);
    CHECK_EQ_INT(sasl_result(a), SASL_PENDING);
    final(a, 235, "2.7.0 Authentication successful");
    CHECK_EQ_INT(sasl_result(a), SASL_SUCCESS);
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "mechanism"), "PLAIN");
    CHECK_EQ_STR(str(r, "user"), "alice");
    CHECK_EQ_STR(str(r, "result"), "success");
    CHECK_EQ_INT(num(r, "code"), 235);
    CHECK_EQ_STR(str(r, "enhanced"), "2.7.0");
    CHECK_EQ_STR(str(r, "text"), "2.7.0 Authentication successful");
    CHECK(json_is_false(json_object_get(r, "malformed")));
    CHECK(json_object_get(r, "authzid") == NULL);
    /* No secret of any kind without show_secrets. */
    CHECK(json_object_get(r, "password") == NULL);
    CHECK(json_object_get(r, "token") == NULL);
    CHECK(json_object_get(r, "responses") == NULL);
    s = report(a, 1);
    CHECK_EQ_STR(str(s, "password"), "s3cret");
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(s, "responses"), 0)),
                 B64("\0alice\0s3cret"));
    json_decref(r);
    json_decref(s);
    sasl_destroy(a);

    /* authzid, lowercase mechanism name */
    a = begin_ir("plain", B64("admin\0alice\0pw"));
    final(a, 235, "ok");
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "mechanism"), "PLAIN");
    CHECK_EQ_STR(str(r, "authzid"), "admin");
    CHECK_EQ_STR(str(r, "user"), "alice");
    json_decref(r);
    sasl_destroy(a);

    /* Without an initial response: empty 334, then the credentials. */
    a = begin("PLAIN");
    challenge(a, "");
    CHECK_EQ_INT(sasl_open(a), 1);
    client(a, B64("\0bob\0wrong"));
    CHECK_EQ_INT(sasl_open(a), 0);
    final(a, 535, "535 5.7.8 Error: authentication failed: authentication failure");
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "user"), "bob");
    CHECK_EQ_STR(str(r, "result"), "failure");
    CHECK_EQ_INT(num(r, "code"), 535);
    CHECK_EQ_STR(str(r, "enhanced"), "5.7.8");
    CHECK_EQ_STR(str(r, "reason"), "invalid_credentials");
    CHECK_EQ_STR(str(r, "text"), "5.7.8 Error: authentication failed: authentication failure");
    CHECK_EQ_INT(num(r, "steps"), 1);
    json_decref(r);
    sasl_destroy(a);

    /* "=" is an empty initial response: no NUL separators, so malformed. */
    a = begin("PLAIN =");
    final(a, 501, "5.5.2 Cannot decode response");
    r = report(a, 0);
    CHECK(json_is_true(json_object_get(r, "malformed")));
    CHECK(json_object_get(r, "user") == NULL);
    CHECK_EQ_STR(str(r, "result"), "failure");
    CHECK_EQ_STR(str(r, "reason"), "cannot_decode");
    json_decref(r);
    sasl_destroy(a);

    /* A user name that is not UTF-8 comes out escaped. */
    a = begin_ir("PLAIN", B64("\0b\xff\0x"));
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "user"), "b\\xff");
    CHECK_EQ_STR(str(r, "result"), "pending");
    CHECK(json_object_get(r, "code") == NULL);
    json_decref(r);
    sasl_destroy(a);
}

static void
test_login(void)
{
    struct sasl *a = begin("LOGIN");
    json_t *r;

    challenge(a, "VXNlcm5hbWU6"); /* Username: */
    CHECK_EQ_INT(sasl_open(a), 1);
    client(a, B64("carol@example.org"));
    challenge(a, "UGFzc3dvcmQ6"); /* Password: */
    client(a, B64("hunter2"));
    final(a, 235, "2.7.0 Authentication successful");
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "user"), "carol@example.org");
    CHECK_EQ_STR(str(r, "password"), "hunter2");
    CHECK_EQ_INT(num(r, "steps"), 2);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "responses")), 2);
    json_decref(r);
    sasl_destroy(a);

    /* Initial response carries the user name (RFC 4954 style, as Outlook does). */
    a = begin_ir("LOGIN", B64("dave"));
    challenge(a, "UGFzc3dvcmQ6");
    client(a, B64("pw"));
    final(a, 454, "4.7.0 Temporary authentication failure");
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "user"), "dave");
    CHECK_EQ_STR(str(r, "password"), "pw");
    CHECK_EQ_STR(str(r, "reason"), "temporary_failure");
    CHECK_EQ_INT(sasl_result(a), SASL_FAILURE);
    json_decref(r);
    sasl_destroy(a);

    /* Cancelled with "*": aborted, with the 501. */
    a = begin("LOGIN");
    challenge(a, "VXNlcm5hbWU6");
    client(a, "*");
    final(a, 501, "5.7.0 Authentication aborted");
    CHECK_EQ_INT(sasl_result(a), SASL_ABORTED);
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "result"), "aborted");
    CHECK_EQ_INT(num(r, "code"), 501);
    CHECK(json_object_get(r, "user") == NULL);
    json_decref(r);
    sasl_destroy(a);

    /* The connection died after the user name. */
    a = begin("LOGIN");
    challenge(a, "VXNlcm5hbWU6");
    client(a, B64("eve"));
    challenge(a, "UGFzc3dvcmQ6");
    sasl_incomplete(a);
    CHECK_EQ_INT(sasl_result(a), SASL_INCOMPLETE);
    CHECK_EQ_INT(sasl_open(a), 0);
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "result"), "incomplete");
    CHECK_EQ_STR(str(r, "user"), "eve");
    json_decref(r);
    sasl_destroy(a);
}

static void
test_cram_md5(void)
{
    /* RFC 2195 section 2 example. */
    struct sasl *a = begin("CRAM-MD5");
    json_t *r;

    challenge(a, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    client(a, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
    final(a, 235, "Authentication successful");
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "user"), "tim");
    CHECK(json_is_false(json_object_get(r, "malformed")));
    CHECK(json_object_get(r, "token") == NULL);
    json_decref(r);
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "token"), "b913a602c7eda7a495b4e6e7334d3890");
    json_decref(r);
    sasl_destroy(a);

    a = begin("CRAM-MD5");
    challenge(a, "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
    client(a, B64("nospace"));
    final(a, 535, "5.7.8 no");
    r = report(a, 0);
    CHECK(json_is_true(json_object_get(r, "malformed")));
    CHECK(json_object_get(r, "user") == NULL);
    json_decref(r);
    sasl_destroy(a);
}

static void
test_xoauth2(void)
{
    struct sasl *a = begin_ir(
        "XOAUTH2", B64("user=someuser@example.com\x01"
                       "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"));
    json_t *r;

    CHECK_EQ_STR(str(r = report(a, 0), "user"), "someuser@example.com");
    json_decref(r);
    challenge(a, B64("{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://x/\"}"));
    client(a, "");
    final(a, 535, "5.7.8 Username and Password not accepted");
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "result"), "failure");
    CHECK(json_is_false(json_object_get(r, "malformed")));
    CHECK(str(r, "server_error") && strstr(str(r, "server_error"), "401"));
    CHECK(json_object_get(r, "token") == NULL);
    json_decref(r);
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "token"), "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
    json_decref(r);
    sasl_destroy(a);
}

static void
test_oauthbearer(void)
{
    /* RFC 7628 section 4.1. */
    struct sasl *a = begin_ir(
        "OAUTHBEARER", B64("n,a=user@example.com,\x01host=server.example.com\x01port=143"
                           "\x01"
                           "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"));
    json_t *r;

    final(a, 235, "2.7.0 ok");
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "user"), "user@example.com");
    CHECK_EQ_STR(str(r, "token"), "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
    CHECK(json_is_false(json_object_get(r, "malformed")));
    json_decref(r);
    sasl_destroy(a);

    /* No authzid: user unknown. */
    a = begin_ir("OAUTHBEARER", B64("n,,\x01"
                                    "auth=Bearer x\x01\x01"));
    r = report(a, 0);
    CHECK(json_object_get(r, "user") == NULL);
    CHECK(json_is_false(json_object_get(r, "malformed")));
    json_decref(r);
    sasl_destroy(a);
}

static void
test_scram(void)
{
    /* RFC 7677 section 3, with "=2C" in the user name to check saslname decoding. */
    struct sasl *a = begin_ir("SCRAM-SHA-256", B64("n,,n=us=2Cer,r=rOprNGfwEbeRWgbNEkqO"));
    json_t *r;

    challenge(a, B64("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
    client(a, B64("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
    challenge(a, B64("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
    client(a, "");
    final(a, 235, "2.7.0 Authentication successful");
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "mechanism"), "SCRAM-SHA-256");
    CHECK_EQ_STR(str(r, "user"), "us,er");
    CHECK_EQ_STR(str(r, "token"), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    CHECK_EQ_INT(num(r, "steps"), 2);
    CHECK_EQ_STR(str(r, "result"), "success");
    CHECK(json_object_get(r, "server_error") == NULL);
    json_decref(r);
    sasl_destroy(a);

    a = begin_ir("SCRAM-SHA-1", B64("n,a=boss,n=user,r=fyko+d2lbbFgONRv9qkxdawL"));
    challenge(a, B64("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"));
    client(a, B64("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=AAAA"));
    challenge(a, B64("e=invalid-proof"));
    client(a, "");
    final(a, 535, "5.7.8 Authentication credentials invalid");
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "user"), "user");
    CHECK_EQ_STR(str(r, "authzid"), "boss");
    CHECK_EQ_STR(str(r, "server_error"), "invalid-proof");
    CHECK_EQ_STR(str(r, "result"), "failure");
    json_decref(r);
    sasl_destroy(a);
}

static void
test_external_and_unknown(void)
{
    struct sasl *a = begin("EXTERNAL =");
    json_t *r;

    final(a, 235, "ok");
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "mechanism"), "EXTERNAL");
    CHECK(json_object_get(r, "authzid") == NULL);
    CHECK(json_is_false(json_object_get(r, "malformed")));
    json_decref(r);
    sasl_destroy(a);

    a = begin_ir("EXTERNAL", B64("postmaster@example.net"));
    final(a, 538, "5.7.11 Encryption required for requested authentication mechanism");
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "authzid"), "postmaster@example.net");
    CHECK_EQ_STR(str(r, "reason"), "encryption_required");
    json_decref(r);
    sasl_destroy(a);

    a = begin_ir("GSSAPI", "YIIBhwYJKoZIhvcSAQICAQBugg==");
    challenge(a, "");
    client(a, "");
    final(a, 534, "5.7.9 Authentication mechanism is too weak");
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "mechanism"), "GSSAPI");
    CHECK(json_object_get(r, "user") == NULL);
    CHECK_EQ_STR(str(r, "reason"), "mechanism_too_weak");
    CHECK(json_is_false(json_object_get(r, "malformed")));
    CHECK_EQ_INT(json_array_size(json_object_get(r, "responses")), 2);
    json_decref(r);
    sasl_destroy(a);

    /* AUTH with nothing after it. */
    a = begin("");
    final(a, 501, "5.5.4 Syntax: AUTH mechanism");
    r = report(a, 0);
    CHECK(json_is_true(json_object_get(r, "malformed")));
    json_decref(r);
    sasl_destroy(a);
}

static void
test_malformed(void)
{
    static const char *const bad[] = {
        "!!!notbase64", "QUJD=", "QQ", "Q===", "QUJDRA=x", "QU JD", "=QUJD", NULL};
    size_t i;

    for (i = 0; bad[i]; i++) {
        struct sasl *a = begin_ir("PLAIN", bad[i]);
        json_t *r = report(a, 1);
        CHECK(json_is_true(json_object_get(r, "malformed")));
        CHECK(json_object_get(r, "user") == NULL);
        json_decref(r);
        sasl_destroy(a);
    }
    /* Missing padding is tolerated: "QUI" is "AB". */
    {
        struct sasl *a = begin("LOGIN");
        json_t *r;
        client(a, "QUI");
        r = report(a, 0);
        CHECK_EQ_STR(str(r, "user"), "AB");
        CHECK(json_is_false(json_object_get(r, "malformed")));
        json_decref(r);
        sasl_destroy(a);
    }
    /* A challenge that is not base64 is not the client's fault. */
    {
        struct sasl *a = begin("LOGIN");
        json_t *r;
        challenge(a, "Username:");
        client(a, B64("frank"));
        challenge(a, "Password:");
        client(a, B64("pw"));
        r = report(a, 1);
        CHECK_EQ_STR(str(r, "user"), "frank");
        CHECK_EQ_STR(str(r, "password"), "pw");
        CHECK(json_is_false(json_object_get(r, "malformed")));
        json_decref(r);
        sasl_destroy(a);
    }
}

/* A megabyte response keeps at most max_blob bytes of anything. */
static void
test_huge_blob(void)
{
    size_t n = 1u << 20, i;
    uint8_t *line = malloc(n);
    struct sasl *a;
    json_t *r;

    for (i = 0; i < n; i++)
        line[i] = "QUFB"[i % 4];
    a = sasl_begin((const uint8_t *)"LOGIN", 5, 1024);
    sasl_client_line(a, line, n);
    sasl_client_line(a, line, n);
    line[n / 2] = '!';
    sasl_client_line(a, line, n);
    r = report(a, 1);
    CHECK(json_is_true(json_object_get(r, "truncated")));
    CHECK(json_is_true(json_object_get(r, "malformed")));
    CHECK_EQ_INT(strlen(str(r, "user")), 1024);
    CHECK_EQ_INT(strlen(str(r, "password")), 1024);
    CHECK_EQ_INT(strlen(json_string_value(json_array_get(json_object_get(r, "responses"), 0))),
                 1024);
    json_decref(r);
    sasl_destroy(a);

    /* Many responses: the list is capped, the rest counted. */
    a = begin("FOO");
    for (i = 0; i < 40; i++)
        client(a, "QUFB");
    r = report(a, 1);
    CHECK_EQ_INT(json_array_size(json_object_get(r, "responses")), 16);
    CHECK_EQ_INT(num(r, "responses_dropped"), 24);
    json_decref(r);
    sasl_destroy(a);
    free(line);
}

/* Every allocation failing in turn must neither crash nor leak. */
static void
test_alloc_failures(void)
{
    long k;

    for (k = 0; k < 40; k++) {
        struct sasl *a;
        struct jt *t;
        mem_fail_after(k);
        a = sasl_begin((const uint8_t *)"LOGIN Ym9i", 10, 0);
        if (a) {
            challenge(a, "UGFzc3dvcmQ6");
            client(a, B64("password"));
            final(a, 235, "2.7.0 ok");
            t = jt_new();
            if (t)
                sasl_report(a, 1, jt_root(t));
            jt_free(t);
        }
        sasl_destroy(a);
    }
    mem_fail_after(-1);
    sasl_destroy(NULL);
}

/* Where a client or server gets the protocol wrong, the password never becomes the user
 * name in the report. */
static void
test_password_never_a_user(void)
{
    /* PLAIN without the authorization identity: "user NUL password". */
    struct sasl *a = begin_ir("PLAIN", B64("carol\0hunter2"));
    json_t *r = report(a, 0);
    CHECK_EQ_STR(str(r, "user"), "carol");
    CHECK(json_is_true(json_object_get(r, "malformed")));
    json_decref(r);
    r = report(a, 1);
    CHECK_EQ_STR(str(r, "password"), "hunter2");
    json_decref(r);
    sasl_destroy(a);

    /* A PLAIN message sent to LOGIN's user prompt. */
    a = begin("LOGIN");
    challenge(a, "VXNlcm5hbWU6");
    client(a, B64("\0carol\0hunter2"));
    r = report(a, 0);
    CHECK(json_object_get(r, "user") == NULL);
    json_decref(r);
    sasl_destroy(a);

    /* A server that asks for the user name again after it got one. */
    a = begin("LOGIN");
    challenge(a, "VXNlcm5hbWU6");
    client(a, B64("carol"));
    challenge(a, "VXNlcm5hbWU6");
    client(a, B64("hunter2"));
    r = report(a, 0);
    CHECK_EQ_STR(str(r, "user"), "carol");
    json_decref(r);
    sasl_destroy(a);
}

/* The mechanism table says what each mechanism's responses reveal: the password (PLAIN,
 * LOGIN), a bearer token (XOAUTH2, OAUTHBEARER), or nothing reusable (challenge-response). */
static void
test_mech_secrets(void)
{
    CHECK_EQ_INT(sasl_mech_secret("PLAIN"), SASL_SECRET_PASSWORD);
    CHECK_EQ_INT(sasl_mech_secret("login"), SASL_SECRET_PASSWORD);
    CHECK_EQ_INT(sasl_mech_secret("XOAUTH2"), SASL_SECRET_TOKEN);
    CHECK_EQ_INT(sasl_mech_secret("XOAUTH"), SASL_SECRET_TOKEN);
    CHECK_EQ_INT(sasl_mech_secret("OAUTHBEARER"), SASL_SECRET_TOKEN);
    CHECK_EQ_INT(sasl_mech_secret("CRAM-MD5"), SASL_SECRET_NONE);
    CHECK_EQ_INT(sasl_mech_secret("DIGEST-MD5"), SASL_SECRET_NONE);
    CHECK_EQ_INT(sasl_mech_secret("SCRAM-SHA-1"), SASL_SECRET_NONE);
    CHECK_EQ_INT(sasl_mech_secret("scram-sha-256-plus"), SASL_SECRET_NONE);
    CHECK_EQ_INT(sasl_mech_secret("EXTERNAL"), SASL_SECRET_NONE);
    CHECK_EQ_INT(sasl_mech_secret("GSSAPI"), SASL_SECRET_UNKNOWN);
    CHECK_EQ_INT(sasl_mech_secret("PLAINX"), SASL_SECRET_UNKNOWN);
    CHECK_EQ_INT(sasl_mech_secret(""), SASL_SECRET_UNKNOWN);
    CHECK_EQ_INT(sasl_mech_secret(NULL), SASL_SECRET_UNKNOWN);
}

int
main(void)
{
    test_plain();
    test_login();
    test_password_never_a_user();
    test_cram_md5();
    test_xoauth2();
    test_oauthbearer();
    test_scram();
    test_external_and_unknown();
    test_malformed();
    test_huge_blob();
    test_alloc_failures();
    test_mech_secrets();
    CHECK_DONE();
}
