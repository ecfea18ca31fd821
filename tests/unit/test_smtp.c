/* test_smtp.c - the SMTP dialogue model: Postfix-like dialogues, pipelining, BDAT, AUTH
 * redaction, STARTTLS, deaths after DATA, line anomalies, chunking independence, caps, and
 * the dialogue inside TLS decrypted with a key log (records sealed here, and the real
 * openssl connections of test_tlsdec.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "buf.h"
#include "check.h"
#include "jsonx.h"
#include "keylog.h"
#include "mem.h"
#include "smtp.h"
#include "tlsdec.h"

#define T0 1700000000000000LL /* session start (first SYN), microseconds */
#define HS 500                /* handshake completed 0.5 ms later */

struct step {
    int dir;
    const char *p;
    size_t n;
    int t_ms;
};

#define C_(t, s)                                                                                   \
    {                                                                                              \
        SMTP_CLIENT, s, sizeof(s) - 1, t                                                           \
    }
#define S_(t, s)                                                                                   \
    {                                                                                              \
        SMTP_SERVER, s, sizeof(s) - 1, t                                                           \
    }
#define NSTEPS(a) (sizeof(a) / sizeof((a)[0]))

enum feed_mode { FEED_WHOLE, FEED_BYTES, FEED_RANDOM };

static int64_t
ts(int t_ms)
{
    return T0 + (int64_t)t_ms * 1000;
}

static void
feed_step(struct smtp_session *s, const struct step *st, enum feed_mode mode, unsigned *seed)
{
    const uint8_t *p = (const uint8_t *)st->p;
    size_t n = st->n, off = 0;
    while (off < n) {
        size_t k = n - off;
        if (mode == FEED_BYTES) {
            k = 1;
        } else if (mode == FEED_RANDOM) {
            *seed = *seed * 1103515245u + 12345u;
            k = 1 + (*seed >> 16) % 7;
            if (k > n - off)
                k = n - off;
        }
        smtp_feed(s, (enum smtp_dir)st->dir, p + off, k, ts(st->t_ms));
        off += k;
    }
}

/* The report writer's path (tree without transcript + the transcript written from the model)
 * gives the bytes of the whole tree, for every session of these tests. */
static void
check_transcript_writer(const struct smtp_session *s, json_t *whole)
{
    struct buf a, b;
    buf_init(&a, 64u << 20);
    buf_init(&b, 64u << 20);
    struct jt *core = jt_new();
    CHECK(core != NULL);
    CHECK_EQ_INT(smtp_report_core(s, jt_root(core)), 0);
    CHECK_EQ_INT(jx_dump(whole, &a), JX_DUMP_OK);
    CHECK_EQ_INT(smtp_dump_report(s, jt_root(core), &b), JX_DUMP_OK);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    size_t nlines = json_array_size(json_object_get(whole, "transcript"));
    CHECK(smtp_transcript_count(s) == nlines);
    jt_free(core);
    buf_free(&a);
    buf_free(&b);
}

/* Runs a dialogue, finishes it 1 s after its last step and returns the report. */
static json_t *
run(const struct smtp_config *cfg, const struct step *steps, size_t n, enum feed_mode mode)
{
    struct smtp_session *s = smtp_create(cfg, T0, T0 + HS);
    unsigned seed = 7;
    int last = 0;
    CHECK(s != NULL);
    if (!s)
        return json_object();
    for (size_t i = 0; i < n; i++) {
        feed_step(s, &steps[i], mode, &seed);
        last = steps[i].t_ms;
    }
    smtp_finish(s, ts(last + 1000));
    json_t *o = json_object();
    CHECK_EQ_INT(smtp_report(s, o), 0);
    check_transcript_writer(s, o);
    smtp_destroy(s);
    return o;
}

/* "a.b.0.c": object keys and array indexes. */
static json_t *
jget(json_t *o, const char *path)
{
    char key[64];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = 0;
        if (json_is_array(o)) {
            char *end;
            unsigned long i = strtoul(key, &end, 10);
            o = *end ? NULL : json_array_get(o, i);
        } else {
            o = json_object_get(o, key);
        }
        path += n + (dot ? 1 : 0);
    }
    return o;
}

static const char *
jstr(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long
jint(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -999999;
}

static double
jnum(json_t *o, const char *path)
{
    json_t *v = jget(o, path);
    return json_is_number(v) ? json_number_value(v) : -999999.0;
}

static int
jtrue(json_t *o, const char *path)
{
    return json_is_true(jget(o, path));
}

static char *
dump(json_t *o)
{
    return json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
}

static int
dump_contains(json_t *o, const char *needle)
{
    char *d = dump(o);
    int r = d && strstr(d, needle) != NULL;
    free(d);
    return r;
}

/* 1 when some transcript entry's line equals text. */
static int
transcript_has(json_t *o, const char *text)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(o, "transcript"), i, e) {
        const char *l = jstr(e, "line");
        if (l && strcmp(l, text) == 0)
            return 1;
    }
    return 0;
}

/* ---- dialogues ---- */

static const struct step dlg_submission[] = {
    S_(10, "220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n"),
    C_(20, "EHLO client.example.net\r\n"),
    S_(21, "250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
           "250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n"
           "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"),
    C_(30, "AUTH PLAIN AGFsaWNlAHMzY3JldFBhc3M=\r\n"),
    S_(35, "235 2.7.0 Authentication successful\r\n"),
    C_(40, "MAIL FROM:<alice@example.net> SIZE=312 BODY=8BITMIME\r\n"),
    S_(41, "250 2.1.0 Ok\r\n"),
    C_(42, "RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@example.com\r\n"),
    S_(43, "250 2.1.5 Ok\r\n"),
    C_(44, "DATA\r\n"),
    S_(45, "354 End data with <CR><LF>.<CR><LF>\r\n"),
    C_(50, "From: Alice <alice@example.net>\r\nTo: bob@example.com\r\nSubject: Hello\r\n\r\n"
           "Hi Bob\r\n..dot line\r\n.\r\n"),
    S_(60, "250 2.0.0 Ok: queued as 4A1B2C3D\r\n"),
    C_(61, "QUIT\r\n"),
    S_(62, "221 2.0.0 Bye\r\n"),
};

static const struct step dlg_auth_login_fail[] = {
    S_(0, "220 smtp.example.org ESMTP Exim 4.96 Mon, 20 Nov 2023 10:00:00 +0000\r\n"),
    C_(5, "EHLO laptop\r\n"),
    S_(6, "250-smtp.example.org Hello laptop [192.0.2.7]\r\n250-SIZE 52428800\r\n"
          "250-8BITMIME\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 HELP\r\n"),
    C_(10, "AUTH LOGIN\r\n"),
    S_(11, "334 VXNlcm5hbWU6\r\n"),
    C_(20, "Ym9i\r\n"),
    S_(21, "334 UGFzc3dvcmQ6\r\n"),
    C_(30, "d3JvbmdwYXNz\r\n"),
    S_(1030, "535 5.7.8 Error: authentication failed: authentication failure\r\n"),
    C_(1040, "MAIL FROM:<bob@example.org>\r\n"),
    S_(1041, "250 OK\r\n"),
    C_(1042, "QUIT\r\n"),
    S_(1043, "221 smtp.example.org closing connection\r\n"),
};

static const struct step dlg_relay_denied[] = {
    S_(0, "220 relay.example.com ESMTP Sendmail 8.9.3/8.9.3; Mon, 20 Nov 2023 10:00:00 GMT\r\n"),
    C_(2, "HELO spammer.example\r\n"),
    S_(3, "250 relay.example.com Hello spammer.example [203.0.113.9], pleased to meet you\r\n"),
    C_(4, "MAIL FROM:<x@spammer.example>\r\n"),
    S_(5, "250 <x@spammer.example>... Sender ok\r\n"),
    C_(6, "RCPT TO:<victim@foreign.example>\r\n"),
    S_(7, "554 5.7.1 <victim@foreign.example>: Relay access denied\r\n"),
    C_(8, "QUIT\r\n"),
    S_(9, "221 2.0.0 relay.example.com closing connection\r\n"),
};

static const struct step dlg_pipelined[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "EHLO sender.example.net\r\n"),
    S_(2, "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"),
    C_(3, "MAIL FROM:<>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<nobody@example.com>\r\n"
          "DATA\r\n"),
    S_(4, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
          "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown\r\n"
          "354 End data with <CR><LF>.<CR><LF>\r\n"),
    C_(5, "Subject: bounce\r\n\r\nReport\r\n.\r\nQUIT\r\n"),
    S_(9, "250 2.0.0 Ok: queued as 1234\r\n221 2.0.0 Bye\r\n"),
};

static const struct step dlg_two_messages[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "EHLO a.example\r\n"),
    S_(2, "250-mx.example.com\r\n250 PIPELINING\r\n"),
    C_(3, "MAIL FROM:<a@a.example>\r\n"),
    S_(4, "250 2.1.0 Ok\r\n"),
    C_(5, "RCPT TO:<b@example.com>\r\n"),
    S_(6, "250 2.1.5 Ok\r\n"),
    C_(7, "DATA\r\n"),
    S_(8, "354 go ahead\r\n"),
    C_(9, "Subject: one\r\n\r\nfirst\r\n.\r\n"),
    S_(10, "250 2.0.0 Ok: queued as A1\r\n"),
    C_(11, "RSET\r\n"),
    S_(12, "250 2.0.0 Ok\r\n"),
    C_(13, "MAIL FROM:<a@a.example>\r\n"),
    S_(14, "250 2.1.0 Ok\r\n"),
    C_(15, "RCPT TO:<c@example.com>\r\n"),
    S_(16, "450 4.2.0 <c@example.com>: Recipient address rejected: Greylisted\r\n"),
    C_(17, "RSET\r\n"),
    S_(18, "250 2.0.0 Ok\r\n"),
    C_(19, "MAIL FROM:<a@a.example>\r\n"),
    S_(20, "250 2.1.0 Ok\r\n"),
    C_(21, "RCPT TO:<d@example.com>\r\n"),
    S_(22, "250 2.1.5 Ok\r\n"),
    C_(23, "DATA\r\n"),
    S_(24, "354 go ahead\r\n"),
    C_(25, "Subject: two\r\n\r\nsecond\r\n.\r\n"),
    S_(26, "250 2.0.0 Ok: queued as A2\r\n"),
    C_(27, "QUIT\r\n"),
    S_(28, "221 2.0.0 Bye\r\n"),
};

/* The chunk data holds CRLF, a lone "." line and "QUIT": none of it is a command. */
static const struct step dlg_bdat[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "EHLO a.example\r\n"),
    S_(2, "250-mx.example.com\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 8BITMIME\r\n"),
    C_(3, "MAIL FROM:<a@a.example> BODY=BINARYMIME\r\nRCPT TO:<b@example.com>\r\n"
          "BDAT 23\r\nSubject: x\r\n\r\n.\r\nQUIT\r\nBDAT 5 LAST\r\nabcde"),
    S_(5, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 23 octets received\r\n"),
    S_(9, "250 2.0.0 Ok: queued as B1\r\n"),
    C_(10, "QUIT\r\n"),
    S_(11, "221 2.0.0 Bye\r\n"),
};

/* After 220, a TLS ClientHello-like record, then bytes that would read as commands. */
static const struct step dlg_starttls[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "EHLO a.example\r\n"),
    S_(2, "250-mx.example.com\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
    C_(3, "STARTTLS\r\n"),
    S_(4, "220 2.0.0 Ready to start TLS\r\n"),
    C_(5, "\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\r\nQUIT\r\nMAIL FROM:<x@y>\r\n"),
    S_(6, "\x16\x03\x03\x00\x04\x02\x00\x00\x00"
          "250 fake\r\n"),
};

/* STARTTLS pipelined with a command in the same segment (the CVE-2011-0411 injection):
 * after the 220 that command is TLS bytes, never SMTP. */
static const struct step dlg_starttls_injection[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "EHLO a.example\r\n"),
    S_(2, "250-mx.example.com\r\n250 STARTTLS\r\n"),
    C_(3, "STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n"),
    S_(4, "220 2.0.0 Ready to start TLS\r\n"),
};

static const struct step dlg_starttls_refused[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "EHLO a.example\r\n"),
    S_(2, "250-mx.example.com\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
    C_(3, "STARTTLS\r\n"),
    S_(4, "454 4.7.0 TLS not available due to local problem\r\n"),
    C_(5, "MAIL FROM:<a@a.example>\r\n"),
    S_(6, "250 2.1.0 Ok\r\n"),
    C_(7, "RCPT TO:<b@example.com>\r\n"),
    S_(8, "250 2.1.5 Ok\r\n"),
    C_(9, "DATA\r\n"),
    S_(10, "354 go\r\n"),
    C_(11, "Subject: clear\r\n\r\nx\r\n.\r\n"),
    S_(12, "250 2.0.0 Ok: queued as C1\r\n"),
    C_(13, "QUIT\r\n"),
    S_(14, "221 2.0.0 Bye\r\n"),
};

static const struct step dlg_died_after_data[] = {
    S_(0, "220 mx.example.com ESMTP qmail 1.03\r\n"),
    C_(1, "HELO a.example\r\n"),
    S_(2, "250 mx.example.com\r\n"),
    C_(3, "MAIL FROM:<a@a.example>\r\n"),
    S_(4, "250 ok\r\n"),
    C_(5, "RCPT TO:<b@example.com>\r\n"),
    S_(6, "250 ok\r\n"),
    C_(7, "DATA\r\n"),
    S_(8, "354 go ahead\r\n"),
    C_(9, "Subject: lost\r\n\r\nbody\r\n.\r\n"),
};

static const struct step dlg_421[] = {
    S_(30, "421 4.3.2 mx.example.com Service shutting down, closing transmission channel\r\n"),
    C_(31, "QUIT\r\n"),
};

static const struct step dlg_unknown[] = {
    S_(0, "220 mx.example.com ESMTP OpenSMTPD\r\n"),
    C_(1, "EHLO a.example\n"),
    S_(2, "250-mx.example.com Hello a.example\r\n250 HELP\r\n"),
    C_(3, "FOOBAR baz\r\n"),
    S_(4, "500 5.5.1 Invalid command: Command unrecognized\r\n"),
    C_(5, "NOOP x\ry\r\n"),
    S_(6, "250 2.0.0 Ok\r\n"),
    C_(7, "QUIT\n"),
    S_(8, "221 2.0.0 Bye\r\n"),
};

/* Body bytes arrive before the 354 (the client did not wait): they are held, then read
 * as the message once the 354 is there. */
static const struct step dlg_early_body[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "HELO a.example\r\n"),
    S_(2, "250 mx.example.com\r\n"),
    C_(3, "MAIL FROM:<a@a.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
          "Subject: early\r\n\r\nx\r\n.\r\nQUIT\r\n"),
    S_(4, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n250 2.0.0 Ok: queued\r\n221 Bye\r\n"),
};

/* The same, but DATA is refused: what was held is commands after all. */
static const struct step dlg_data_refused[] = {
    S_(0, "220 mx.example.com ESMTP Postfix\r\n"),
    C_(1, "EHLO a.example\r\n"),
    S_(2, "250-mx.example.com\r\n250 PIPELINING\r\n"),
    C_(3, "MAIL FROM:<a@a.example>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nRSET\r\nQUIT\r\n"),
    S_(4, "250 2.1.0 Ok\r\n550 5.1.1 <b@example.com>: Recipient address rejected\r\n"
          "554 5.5.1 Error: no valid recipients\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"),
};

struct dialogue {
    const char *name;
    const struct step *steps;
    size_t n;
};

static const struct dialogue dialogues[] = {
    {"submission", dlg_submission, NSTEPS(dlg_submission)},
    {"auth_login_fail", dlg_auth_login_fail, NSTEPS(dlg_auth_login_fail)},
    {"relay_denied", dlg_relay_denied, NSTEPS(dlg_relay_denied)},
    {"pipelined", dlg_pipelined, NSTEPS(dlg_pipelined)},
    {"two_messages", dlg_two_messages, NSTEPS(dlg_two_messages)},
    {"bdat", dlg_bdat, NSTEPS(dlg_bdat)},
    {"starttls", dlg_starttls, NSTEPS(dlg_starttls)},
    {"starttls_injection", dlg_starttls_injection, NSTEPS(dlg_starttls_injection)},
    {"starttls_refused", dlg_starttls_refused, NSTEPS(dlg_starttls_refused)},
    {"died_after_data", dlg_died_after_data, NSTEPS(dlg_died_after_data)},
    {"421", dlg_421, NSTEPS(dlg_421)},
    {"unknown", dlg_unknown, NSTEPS(dlg_unknown)},
    {"early_body", dlg_early_body, NSTEPS(dlg_early_body)},
    {"data_refused", dlg_data_refused, NSTEPS(dlg_data_refused)},
};

/* ---- dialogue checks ---- */

static void
test_submission(void)
{
    json_t *o = run(NULL, dlg_submission, NSTEPS(dlg_submission), FEED_WHOLE);

    CHECK_EQ_INT(jint(o, "banner.code"), 220);
    CHECK_EQ_STR(jstr(o, "banner.text"), "mail.example.org ESMTP Postfix (Debian/GNU)");
    CHECK_EQ_INT(jint(o, "banner.lines"), 1);
    CHECK(jnum(o, "banner.delay_ms") == 9.5);
    CHECK(jnum(o, "banner.t_ms") == 10.0);
    CHECK_EQ_STR(jstr(o, "server_software.name"), "Postfix");
    CHECK(jget(o, "server_software.version") == NULL);
    CHECK_EQ_STR(jstr(o, "server_software.source"), "banner");
    CHECK_EQ_STR(jstr(o, "helo.verb"), "EHLO");
    CHECK_EQ_STR(jstr(o, "helo.name"), "client.example.net");
    CHECK_EQ_INT(jint(o, "helo.code"), 250);
    CHECK_EQ_INT(json_array_size(jget(o, "extensions")), 11);
    CHECK_EQ_STR(jstr(o, "extensions.0"), "PIPELINING");
    CHECK_EQ_STR(jstr(o, "extensions.5"), "AUTH PLAIN LOGIN");
    CHECK_EQ_STR(jstr(o, "ehlo.greeting"), "mail.example.org");
    CHECK_EQ_STR(jstr(o, "ehlo.auth.0"), "PLAIN");
    CHECK_EQ_STR(jstr(o, "ehlo.auth.1"), "LOGIN");
    CHECK_EQ_INT(jint(o, "ehlo.size"), 10240000);
    CHECK(jtrue(o, "ehlo.pipelining") && jtrue(o, "ehlo.chunking") && jtrue(o, "ehlo.starttls"));
    CHECK(jtrue(o, "ehlo.8bitmime") && jtrue(o, "ehlo.smtputf8") && jtrue(o, "ehlo.dsn"));
    CHECK(jtrue(o, "ehlo.enhancedstatuscodes"));
    CHECK_EQ_INT(json_array_size(jget(o, "ehlo.masked")), 0);
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "offered");
    CHECK(json_is_false(jget(o, "tls.encrypted")));

    CHECK_EQ_STR(jstr(o, "auth.0.mechanism"), "PLAIN");
    CHECK_EQ_STR(jstr(o, "auth.0.user"), "alice");
    CHECK_EQ_STR(jstr(o, "auth.0.result"), "success");
    CHECK_EQ_INT(jint(o, "auth.0.code"), 235);
    CHECK(jtrue(o, "auth.0.in_clear"));
    CHECK(jtrue(o, "auth.0.advertised"));
    CHECK(jnum(o, "auth.0.t_ms") == 30.0);

    CHECK_EQ_STR(jstr(o, "transactions.0.mail_from"), "alice@example.net");
    CHECK_EQ_INT(jint(o, "transactions.0.mail_params.SIZE"), 312);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_params.BODY"), "8BITMIME");
    CHECK_EQ_INT(jint(o, "transactions.0.mail_code"), 250);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_enhanced"), "2.1.0");
    CHECK(jtrue(o, "transactions.0.authenticated"));
    CHECK(json_is_false(jget(o, "transactions.0.tls")));
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.to"), "bob@example.com");
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.params.NOTIFY"), "SUCCESS,FAILURE");
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.params.ORCPT"), "rfc822;bob@example.com");
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt.0.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_count"), 1);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_accepted"), 1);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.verb"), "DATA");
    CHECK_EQ_INT(jint(o, "transactions.0.data.code_354"), 354);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.enhanced"), "2.0.0");
    CHECK_EQ_STR(jstr(o, "transactions.0.data.text"), "2.0.0 Ok: queued as 4A1B2C3D");
    CHECK(jnum(o, "transactions.0.data.sent_t_ms") == 50.0);
    CHECK(jnum(o, "transactions.0.data.reply_ms") == 10.0);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.headers.subject"), "Hello");
    CHECK_EQ_STR(jstr(o, "transactions.0.data.end_of_data"), "crlf.crlf");
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "data");

    CHECK_EQ_INT(jint(o, "commands.ehlo"), 1);
    CHECK_EQ_INT(jint(o, "commands.auth"), 1);
    CHECK_EQ_INT(jint(o, "commands.mail"), 1);
    CHECK_EQ_INT(jint(o, "commands.rcpt"), 1);
    CHECK_EQ_INT(jint(o, "commands.data"), 1);
    CHECK_EQ_INT(jint(o, "commands.quit"), 1);
    CHECK_EQ_INT(jint(o, "commands.total"), 6);
    CHECK(jget(o, "commands.unknown") == NULL);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    CHECK_EQ_INT(jint(o, "messages.delivered"), 1);
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "quit");
    CHECK(jtrue(o, "smtp.quit_sent") && jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    CHECK(json_is_false(jget(o, "smtp.pipelined")));
    CHECK_EQ_STR(jstr(o, "smtp.slowest_reply.command"), "DATA-END");
    CHECK(jnum(o, "smtp.slowest_reply.ms") == 10.0);
    CHECK(jnum(o, "smtp.slowest_reply.t_ms") == 50.0);
    CHECK(jnum(o, "smtp.last_client_t_ms") == 61.0);
    CHECK(jnum(o, "smtp.last_server_t_ms") == 62.0);
    CHECK_EQ_INT(jint(o, "smtp.error_replies_dropped"), 0);
    CHECK_EQ_INT(json_array_size(jget(o, "smtp.error_replies")), 0);

    /* RFC 4954 credentials are redacted everywhere without show_secrets. */
    CHECK(transcript_has(o, "AUTH PLAIN <redacted>"));
    CHECK(!dump_contains(o, "AGFsaWNlAHMzY3JldFBhc3M"));
    CHECK(!dump_contains(o, "s3cretPass"));
    CHECK(transcript_has(o, "[message: 95 bytes]"));
    CHECK(transcript_has(o, "250 2.0.0 Ok: queued as 4A1B2C3D"));
    CHECK_EQ_INT(jint(o, "transcript_dropped"), 0);
    /* The 354 answers DATA sent at 44 ms: its latency is on the reply line. */
    size_t i;
    json_t *e;
    int seen = 0;
    json_array_foreach (jget(o, "transcript"), i, e) {
        const char *l = jstr(e, "line");
        if (l && strncmp(l, "354 ", 4) == 0) {
            CHECK(jnum(e, "latency_ms") == 1.0);
            CHECK_EQ_STR(jstr(e, "dir"), "S");
            seen = 1;
        }
        if (l && strcmp(l, "[message: 95 bytes]") == 0)
            CHECK(jtrue(e, "body"));
    }
    CHECK(seen);
    json_decref(o);

    struct smtp_config cfg = {0};
    cfg.show_secrets = 1;
    o = run(&cfg, dlg_submission, NSTEPS(dlg_submission), FEED_WHOLE);
    CHECK(transcript_has(o, "AUTH PLAIN AGFsaWNlAHMzY3JldFBhc3M="));
    CHECK_EQ_STR(jstr(o, "auth.0.password"), "s3cretPass");
    json_decref(o);
}

static void
test_auth_login_failure(void)
{
    json_t *o = run(NULL, dlg_auth_login_fail, NSTEPS(dlg_auth_login_fail), FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "server_software.name"), "Exim");
    CHECK_EQ_STR(jstr(o, "server_software.version"), "4.96");
    CHECK_EQ_STR(jstr(o, "ehlo.greeting"), "smtp.example.org Hello laptop [192.0.2.7]");
    CHECK_EQ_STR(jstr(o, "auth.0.mechanism"), "LOGIN");
    CHECK_EQ_STR(jstr(o, "auth.0.user"), "bob");
    CHECK_EQ_STR(jstr(o, "auth.0.result"), "failure");
    CHECK_EQ_INT(jint(o, "auth.0.code"), 535);
    CHECK_EQ_STR(jstr(o, "auth.0.enhanced"), "5.7.8");
    CHECK(jget(o, "auth.0.password") == NULL);
    CHECK(transcript_has(o, "AUTH LOGIN"));
    CHECK(transcript_has(o, "<redacted>"));
    CHECK(!transcript_has(o, "Ym9i"));
    CHECK(!dump_contains(o, "d3JvbmdwYXNz"));
    CHECK(!dump_contains(o, "wrongpass"));
    /* The 535 answers the password line sent at 30 ms. */
    CHECK_EQ_STR(jstr(o, "smtp.slowest_reply.command"), "AUTH");
    CHECK(jnum(o, "smtp.slowest_reply.ms") == 1000.0);
    CHECK_EQ_STR(jstr(o, "smtp.error_replies.0.command"), "AUTH");
    CHECK_EQ_INT(jint(o, "smtp.error_replies.0.code"), 535);
    CHECK(json_is_false(jget(o, "transactions.0.authenticated")));
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "quit");
    CHECK_EQ_STR(jstr(o, "outcome"), "aborted");
    CHECK_EQ_INT(jint(o, "commands.auth"), 1);
    CHECK_EQ_INT(jint(o, "commands.total"), 4);
    CHECK(json_is_false(jget(o, "smtp.pipelined")));
    json_decref(o);
}

static void
test_relay_denied(void)
{
    json_t *o = run(NULL, dlg_relay_denied, NSTEPS(dlg_relay_denied), FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "server_software.name"), "Sendmail");
    CHECK_EQ_STR(jstr(o, "server_software.version"), "8.9.3");
    CHECK_EQ_STR(jstr(o, "helo.verb"), "HELO");
    CHECK(jget(o, "extensions") == NULL);
    CHECK(jget(o, "ehlo") == NULL);
    CHECK(jget(o, "tls") == NULL);
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.to"), "victim@foreign.example");
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt.0.code"), 554);
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.enhanced"), "5.7.1");
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.text"),
                 "5.7.1 <victim@foreign.example>: Relay access denied");
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_accepted"), 0);
    CHECK(jget(o, "transactions.0.data") == NULL);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "quit");
    CHECK_EQ_STR(jstr(o, "outcome"), "rejected");
    CHECK_EQ_INT(jint(o, "messages.rejected"), 1);
    CHECK_EQ_STR(jstr(o, "smtp.error_replies.0.command"), "RCPT");
    CHECK_EQ_STR(jstr(o, "smtp.error_replies.0.enhanced"), "5.7.1");
    json_decref(o);
}

static void
test_pipelined(void)
{
    json_t *o = run(NULL, dlg_pipelined, NSTEPS(dlg_pipelined), FEED_WHOLE);

    CHECK(jtrue(o, "smtp.pipelined"));
    CHECK_EQ_INT(jint(o, "smtp.pipelining_violations"), 0);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_from"), "");
    CHECK_EQ_INT(jint(o, "transactions.0.mail_code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt.0.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt.1.code"), 550);
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.1.enhanced"), "5.1.1");
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_count"), 2);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_accepted"), 1);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code_354"), 354);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.headers.subject"), "bounce");
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "data");
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    CHECK_EQ_INT(jint(o, "smtp.replies_without_command"), 0);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    CHECK_EQ_INT(jint(o, "commands.total"), 6);
    json_decref(o);

    /* The same client against a server that did not offer PIPELINING. */
    struct step v[NSTEPS(dlg_pipelined)];
    memcpy(v, dlg_pipelined, sizeof v);
    static const char ehlo[] = "250-mx.example.com\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";
    v[2].p = ehlo;
    v[2].n = sizeof ehlo - 1;
    o = run(NULL, v, NSTEPS(v), FEED_WHOLE);
    CHECK(jtrue(o, "smtp.pipelined"));
    /* RCPT, RCPT, DATA behind MAIL, then QUIT behind the end of data. */
    CHECK_EQ_INT(jint(o, "smtp.pipelining_violations"), 4);
    json_decref(o);
}

static void
test_two_messages(void)
{
    json_t *o = run(NULL, dlg_two_messages, NSTEPS(dlg_two_messages), FEED_WHOLE);

    CHECK_EQ_INT(json_array_size(jget(o, "transactions")), 3);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "data");
    CHECK_EQ_STR(jstr(o, "transactions.0.data.headers.subject"), "one");
    CHECK_EQ_STR(jstr(o, "transactions.1.ended_by"), "rset");
    CHECK_EQ_INT(jint(o, "transactions.1.rcpt.0.code"), 450);
    CHECK(jget(o, "transactions.1.data") == NULL);
    CHECK_EQ_STR(jstr(o, "transactions.2.ended_by"), "data");
    CHECK_EQ_STR(jstr(o, "transactions.2.data.headers.subject"), "two");
    CHECK_EQ_INT(jint(o, "messages.delivered"), 2);
    CHECK_EQ_INT(jint(o, "messages.deferred"), 1);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    CHECK_EQ_INT(jint(o, "commands.rset"), 2);
    CHECK_EQ_INT(jint(o, "commands.mail"), 3);
    CHECK_EQ_INT(jint(o, "commands.total"), 12);
    json_decref(o);
}

static void
test_bdat(void)
{
    json_t *o = run(NULL, dlg_bdat, NSTEPS(dlg_bdat), FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "transactions.0.data.verb"), "BDAT");
    CHECK_EQ_INT(jint(o, "transactions.0.data.chunks"), 2);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.data.bytes"), 28);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.headers.subject"), "x");
    CHECK(jnum(o, "transactions.0.data.sent_t_ms") == 3.0);
    CHECK(jnum(o, "transactions.0.data.reply_ms") == 6.0);
    CHECK(jget(o, "transactions.0.data.code_354") == NULL);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_params.BODY"), "BINARYMIME");
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "data");
    CHECK_EQ_INT(jint(o, "commands.bdat"), 2);
    CHECK_EQ_INT(jint(o, "commands.quit"), 1); /* the "QUIT" inside the chunk is data */
    CHECK_EQ_INT(jint(o, "commands.total"), 6);
    CHECK(transcript_has(o, "[chunk: 23 bytes]"));
    CHECK(transcript_has(o, "[chunk: 5 bytes]"));
    CHECK(!transcript_has(o, "QUIT\r"));
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    json_decref(o);
}

static void
test_starttls(void)
{
    json_t *o = run(NULL, dlg_starttls, NSTEPS(dlg_starttls), FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "tls.starttls"), "established");
    CHECK_EQ_INT(jint(o, "tls.code"), 220);
    CHECK(jnum(o, "tls.t_ms") == 3.0);
    CHECK(jtrue(o, "tls.encrypted"));
    CHECK_EQ_INT(jint(o, "tls.encrypted_bytes.client"), dlg_starttls[5].n);
    CHECK_EQ_INT(jint(o, "tls.encrypted_bytes.server"), dlg_starttls[6].n);
    CHECK(jget(o, "tls.records") != NULL); /* tls_report() merged in */
    CHECK(jget(o, "commands.quit") == NULL);
    CHECK(jget(o, "commands.mail") == NULL);
    CHECK_EQ_INT(jint(o, "commands.total"), 2);
    CHECK(!transcript_has(o, "QUIT"));
    CHECK(!transcript_has(o, "250 fake"));
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "tls");
    CHECK_EQ_STR(jstr(o, "outcome"), "encrypted");
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    json_decref(o);

    o = run(NULL, dlg_starttls_injection, NSTEPS(dlg_starttls_injection), FEED_WHOLE);
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "established");
    CHECK(jget(o, "commands.mail") == NULL);
    CHECK(!transcript_has(o, "MAIL FROM:<evil@example.net>"));
    /* Sent in clear after STARTTLS, before the 220: neither TLS nor the dialogue. */
    CHECK_EQ_INT(jint(o, "tls.cleartext_after_starttls"),
                 strlen("MAIL FROM:<evil@example.net>\r\n"));
    CHECK_EQ_INT(jint(o, "tls.encrypted_bytes.client"), 0);
    /* Held until the 220, then TLS: never a command, so not pipelining either. */
    CHECK(json_is_false(jget(o, "smtp.pipelined")));
    json_decref(o);

    struct smtp_session *s = smtp_create(NULL, T0, T0 + HS);
    CHECK(!smtp_encrypted(s));
    for (size_t i = 0; i < 5; i++)
        feed_step(s, &dlg_starttls[i], FEED_WHOLE, NULL);
    CHECK(smtp_encrypted(s));
    smtp_destroy(s);
}

static void
test_starttls_refused(void)
{
    json_t *o = run(NULL, dlg_starttls_refused, NSTEPS(dlg_starttls_refused), FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "tls.starttls"), "refused");
    CHECK_EQ_INT(jint(o, "tls.code"), 454);
    CHECK_EQ_STR(jstr(o, "tls.text"), "4.7.0 TLS not available due to local problem");
    CHECK(json_is_false(jget(o, "tls.encrypted")));
    CHECK(jget(o, "tls.encrypted_bytes") == NULL);
    CHECK_EQ_STR(jstr(o, "smtp.error_replies.0.command"), "STARTTLS");
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    CHECK_EQ_INT(jint(o, "commands.starttls"), 1);
    json_decref(o);
}

static void
test_died_after_data(void)
{
    json_t *o = run(NULL, dlg_died_after_data, NSTEPS(dlg_died_after_data), FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "server_software.name"), "qmail");
    CHECK_EQ_STR(jstr(o, "server_software.version"), "1.03");
    CHECK(json_is_null(jget(o, "transactions.0.data.code")));
    CHECK(jnum(o, "transactions.0.data.sent_t_ms") == 9.0);
    CHECK(jget(o, "transactions.0.data.reply_ms") == NULL);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code_354"), 354);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "connection_end");
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "data_sent");
    CHECK_EQ_STR(jstr(o, "outcome"), "incomplete");
    CHECK_EQ_INT(jint(o, "messages.incomplete"), 1);
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 1);
    CHECK_EQ_STR(jstr(o, "smtp.pending.0.command"), "DATA-END");
    CHECK(jnum(o, "smtp.pending.0.t_ms") == 9.0);
    CHECK(json_is_false(jget(o, "smtp.quit_sent")));
    json_decref(o);

    /* Died in the middle of the body: no end of data, phase "data". */
    struct step v[NSTEPS(dlg_died_after_data)];
    memcpy(v, dlg_died_after_data, sizeof v);
    static const char part[] = "Subject: cut\r\n\r\nhalf a bo";
    v[9].p = part;
    v[9].n = sizeof part - 1;
    o = run(NULL, v, NSTEPS(v), FEED_WHOLE);
    CHECK(json_is_null(jget(o, "transactions.0.data.code")));
    CHECK(jget(o, "transactions.0.data.sent_t_ms") == NULL);
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "data");
    CHECK_EQ_STR(jstr(o, "outcome"), "incomplete");
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    json_decref(o);
}

static void
test_421_greeting(void)
{
    json_t *o = run(NULL, dlg_421, NSTEPS(dlg_421), FEED_WHOLE);

    CHECK_EQ_INT(jint(o, "banner.code"), 421);
    CHECK(jnum(o, "banner.delay_ms") == 29.5);
    CHECK_EQ_STR(jstr(o, "outcome"), "aborted");
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "quit");
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 1);
    CHECK_EQ_STR(jstr(o, "smtp.pending.0.command"), "QUIT");
    CHECK(jget(o, "transactions") == NULL);
    json_decref(o);

    /* Nothing at all: outcome none, no sections. */
    o = run(NULL, NULL, 0, FEED_WHOLE);
    CHECK_EQ_STR(jstr(o, "outcome"), "none");
    CHECK(jget(o, "banner") == NULL);
    CHECK(jget(o, "transcript") == NULL);
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "connect");
    json_decref(o);
}

static void
test_unknown_and_line_ends(void)
{
    json_t *o = run(NULL, dlg_unknown, NSTEPS(dlg_unknown), FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "server_software.name"), "OpenSMTPD");
    CHECK_EQ_INT(jint(o, "commands.unknown"), 1);
    CHECK_EQ_INT(jint(o, "smtp.unknown_commands"), 1);
    CHECK(transcript_has(o, "FOOBAR baz"));
    CHECK_EQ_STR(jstr(o, "smtp.error_replies.0.command"), "UNKNOWN");
    CHECK_EQ_INT(jint(o, "smtp.error_replies.0.code"), 500);
    CHECK_EQ_INT(jint(o, "smtp.bare_lf.client"), 2);
    CHECK_EQ_INT(jint(o, "smtp.bare_lf.server"), 0);
    CHECK_EQ_INT(jint(o, "smtp.bare_cr.client"), 1);
    CHECK_EQ_INT(jint(o, "smtp.bare_cr.server"), 0);
    CHECK(transcript_has(o, "EHLO a.example"));
    CHECK(transcript_has(o, "NOOP x\ry"));
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "commands.noop"), 1);
    json_decref(o);
}

static void
test_held_bytes(void)
{
    json_t *o = run(NULL, dlg_early_body, NSTEPS(dlg_early_body), FEED_WHOLE);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.headers.subject"), "early");
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "commands.total"), 5);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    json_decref(o);

    o = run(NULL, dlg_data_refused, NSTEPS(dlg_data_refused), FEED_WHOLE);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 554);
    CHECK(jget(o, "transactions.0.data.code_354") == NULL);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "no_rcpt");
    CHECK_EQ_INT(jint(o, "commands.rset"), 1);
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "smtp.replies_without_command"), 0);
    CHECK_EQ_STR(jstr(o, "outcome"), "rejected");
    json_decref(o);
}

/* Rule 21 of the house style: the same bytes give the same report however they are cut. */
static void
test_chunking_equality(void)
{
    struct smtp_config cfg = {0};
    cfg.hash_bodies = 1;
    for (size_t d = 0; d < sizeof dialogues / sizeof dialogues[0]; d++) {
        json_t *a = run(&cfg, dialogues[d].steps, dialogues[d].n, FEED_WHOLE);
        json_t *b = run(&cfg, dialogues[d].steps, dialogues[d].n, FEED_BYTES);
        json_t *c = run(&cfg, dialogues[d].steps, dialogues[d].n, FEED_RANDOM);
        char *da = dump(a), *db = dump(b), *dc = dump(c);
        int same = da && db && dc && strcmp(da, db) == 0 && strcmp(da, dc) == 0;
        if (!same)
            fprintf(stderr, "chunking changes the report of %s:\n%s\n%s\n%s\n", dialogues[d].name,
                    da ? da : "", db ? db : "", dc ? dc : "");
        CHECK(same);
        free(da);
        free(db);
        free(dc);
        json_decref(a);
        json_decref(b);
        json_decref(c);
    }
}

/* ---- single sessions built step by step ---- */

static struct smtp_session *
session(const struct smtp_config *cfg)
{
    struct smtp_session *s = smtp_create(cfg, T0, T0 + HS);
    CHECK(s != NULL);
    return s;
}

static void
say(struct smtp_session *s, int dir, const char *text, int t_ms)
{
    smtp_feed(s, (enum smtp_dir)dir, (const uint8_t *)text, strlen(text), ts(t_ms));
}

static json_t *
finish(struct smtp_session *s, int t_ms)
{
    smtp_finish(s, ts(t_ms));
    json_t *o = json_object();
    CHECK_EQ_INT(smtp_report(s, o), 0);
    check_transcript_writer(s, o);
    smtp_destroy(s);
    return o;
}

static void
test_gaps(void)
{
    struct smtp_config cfg = {0};
    cfg.hash_bodies = 1;
    struct smtp_session *s = session(&cfg);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "EHLO a\r\n", 1);
    /* A hole in the middle of a reply line: its two halves are never joined. */
    say(s, SMTP_SERVER, "250-mx\r\n250-PIPEL", 2);
    smtp_gap(s, SMTP_SERVER, 20, ts(2));
    say(s, SMTP_SERVER, "ING\r\n250 8BITMIME\r\n", 3);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 4);
    say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n354 go\r\n", 5);
    say(s, SMTP_CLIENT, "Subject: g\r\n\r\nline1\r\n", 6);
    smtp_gap(s, SMTP_CLIENT, 100, ts(6));
    say(s, SMTP_CLIENT, "line3\r\n.\r\n", 7);
    say(s, SMTP_SERVER, "250 queued\r\n", 8);
    /* A hole inside a BDAT chunk shortens what is still to come. */
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 10 LAST\r\nabc", 9);
    smtp_gap(s, SMTP_CLIENT, 7, ts(9));
    say(s, SMTP_CLIENT, "QUIT\r\n", 10);
    say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n250 ok\r\n221 bye\r\n", 11);
    json_t *o = finish(s, 12);

    CHECK_EQ_INT(json_array_size(jget(o, "extensions")), 1);
    CHECK_EQ_STR(jstr(o, "extensions.0"), "8BITMIME");
    CHECK_EQ_INT(jint(o, "smtp.gaps.server"), 20);
    CHECK_EQ_INT(jint(o, "smtp.gaps.client"), 107);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.data.gap"), 100);
    CHECK(jget(o, "transactions.0.data.sha256") == NULL);
    CHECK_EQ_INT(jint(o, "transactions.1.data.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.1.data.gap"), 7);
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    json_decref(o);
}

static void
test_partial_lines(void)
{
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "QUI", 1);
    say(s, SMTP_SERVER, "  \r", 2);
    json_t *o = finish(s, 3);
    json_t *tr = jget(o, "transcript");
    CHECK_EQ_INT(json_array_size(tr), 2);
    CHECK_EQ_STR(jstr(tr, "1.line"), "QUI");
    CHECK(jtrue(tr, "1.incomplete"));
    CHECK(jget(o, "commands") == NULL); /* a line without its end was not acted on */
    json_decref(o);
}

static void
check_banner(const char *banner, const char *name, const char *version)
{
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, banner, 0);
    json_t *o = finish(s, 1);
    if (name)
        CHECK_EQ_STR(jstr(o, "server_software.name"), name);
    else
        CHECK(jget(o, "server_software") == NULL);
    if (version)
        CHECK_EQ_STR(jstr(o, "server_software.version"), version);
    else
        CHECK(jget(o, "server_software.version") == NULL);
    json_decref(o);
}

static void
test_server_software(void)
{
    check_banner("220 mail.contoso.com Microsoft ESMTP MAIL Service, Version: 6.0.3790.4675 "
                 "ready at  Mon, 20 Nov 2023 10:00:00 +0100\r\n",
                 "Microsoft ESMTP MAIL Service", "6.0.3790.4675");
    check_banner("220 ex.contoso.com Microsoft ESMTP MAIL Service ready at Mon, 20 Nov 2023 "
                 "10:00:00 +0000\r\n",
                 "Microsoft ESMTP MAIL Service", NULL);
    check_banner("220 ex.contoso.com Microsoft ESMTP MAIL Service (Exchange 2016) ready\r\n",
                 "Microsoft Exchange", NULL);
    check_banner("220 ex.contoso.com Microsoft Exchange Internet Mail Service 5.5.2653.13 "
                 "ready\r\n",
                 "Microsoft Exchange", "5.5.2653.13");
    check_banner("220 mx.example.com ESMTP Haraka/2.8.25 ready\r\n", "Haraka", "2.8.25");
    check_banner("220 mx.example.com ESMTP MDaemon 21.0.1; Mon, 20 Nov 2023\r\n", "MDaemon",
                 "21.0.1");
    check_banner("220 mx.example.com ESMTP IceWarp 12.0.2.1; Mon, 20 Nov 2023\r\n", "IceWarp",
                 "12.0.2.1");
    check_banner("220 mx.example.com Kerio Connect 9.2.1 ESMTP ready\r\n", "Kerio Connect",
                 "9.2.1");
    check_banner("220 mx.example.com ESMTP hMailServer\r\n", "hMailServer", NULL);
    check_banner("220 mx.example.com ESMTP Exim 4.92.3 #3 Mon, 20 Nov 2023\r\n", "Exim", "4.92.3");
    check_banner("220 mx.example.com ESMTP Sendmail 8.15.2/8.15.2/Debian-22; Mon\r\n", "Sendmail",
                 "8.15.2");
    check_banner("220 mx.example.com ESMTP Postfix (Ubuntu)\r\n", "Postfix", NULL);
    check_banner("220 mx.example.com ESMTP Zimbra ready\r\n", "Zimbra", NULL);
    check_banner("220 mx.example.com ESMTP Courier ready\r\n", "Courier", NULL);
    /* The host name is not the software. */
    check_banner("220 postfix.example.com ESMTP\r\n", NULL, NULL);
    check_banner("220 mx.google.com ESMTP a1-20020a17\r\n", NULL, NULL);

    /* From the EHLO greeting when the banner names nothing. */
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx.example.com ESMTP ready\r\n", 0);
    say(s, SMTP_CLIENT, "EHLO a\r\n", 1);
    say(s, SMTP_SERVER, "250-mx.example.com running Exim 4.97 hello a\r\n250 SIZE\r\n", 2);
    json_t *o = finish(s, 3);
    CHECK_EQ_STR(jstr(o, "server_software.name"), "Exim");
    CHECK_EQ_STR(jstr(o, "server_software.version"), "4.97");
    CHECK_EQ_STR(jstr(o, "server_software.source"), "ehlo");
    CHECK(json_is_false(jget(o, "ehlo.pipelining")));
    CHECK(jget(o, "ehlo.size") == NULL);
    json_decref(o);
}

static void
test_ehlo_details(void)
{
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220-mx.example.com ESMTP\r\n220-second line\r\n220 third\r\n", 0);
    say(s, SMTP_CLIENT, "EHLO a\r\n", 1);
    say(s, SMTP_SERVER,
        "250-mx.example.com\r\n250-XXXXXXXA\r\n250-XXXB\r\n250-AUTH=LOGIN PLAIN\r\n"
        "250-AUTH LOGIN PLAIN CRAM-MD5\r\n250-SIZE\r\n250 8BITMIME\r\n",
        2);
    say(s, SMTP_CLIENT, "AUTH CRAM-MD5\r\n", 3);
    say(s, SMTP_SERVER, "334 PDEyMzQ1QG14LmV4YW1wbGUuY29tPg==\r\n", 4);
    say(s, SMTP_CLIENT, "*\r\n", 5);
    say(s, SMTP_SERVER, "501 5.7.0 Authentication aborted\r\n", 6);
    say(s, SMTP_CLIENT, "AUTH XOAUTH2\r\n", 7);
    say(s, SMTP_SERVER, "504 5.5.4 Unrecognized authentication type\r\n", 8);
    /* RFC 3463: the class must match the code's, else it is just text. */
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\n", 9);
    say(s, SMTP_SERVER, "250 5.1.0 odd\r\n", 10);
    say(s, SMTP_CLIENT, "RCPT TO:<c@d>\r\n", 11);
    say(s, SMTP_SERVER,
        "550-5.7.1 [192.0.2.1] Our system has detected\r\n"
        "550-5.7.1 unsolicited mail, blocked using zen.spamhaus.org\r\n"
        "550 5.7.1 see https://example.org/why\r\n",
        12);
    json_t *o = finish(s, 13);

    CHECK_EQ_INT(jint(o, "banner.lines"), 3);
    CHECK_EQ_STR(jstr(o, "banner.text"), "mx.example.com ESMTP");
    CHECK_EQ_INT(json_array_size(jget(o, "ehlo.masked")), 2);
    CHECK_EQ_STR(jstr(o, "ehlo.masked.0"), "XXXXXXXA");
    CHECK_EQ_INT(json_array_size(jget(o, "ehlo.auth")), 3);
    CHECK_EQ_STR(jstr(o, "ehlo.auth.2"), "CRAM-MD5");
    CHECK(jget(o, "ehlo.size") == NULL);
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "not_offered");
    CHECK_EQ_STR(jstr(o, "auth.0.result"), "aborted");
    CHECK(transcript_has(o, "*"));
    CHECK(jtrue(o, "auth.0.advertised"));
    CHECK(json_is_false(jget(o, "auth.1.advertised")));
    CHECK_EQ_STR(jstr(o, "auth.1.result"), "failure");
    CHECK(jget(o, "transactions.0.mail_enhanced") == NULL);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_text"), "5.1.0 odd");
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.enhanced"), "5.7.1");
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.text"),
                 "5.7.1 [192.0.2.1] Our system has detected unsolicited mail, blocked using "
                 "zen.spamhaus.org see https://example.org/why");
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "connection_end");
    CHECK_EQ_STR(jstr(o, "outcome"), "incomplete");
    json_decref(o);
}

static void
test_implicit_tls(void)
{
    struct smtp_config cfg = {0};
    cfg.implicit_tls = 1;
    struct smtp_session *s = session(&cfg);
    CHECK(smtp_encrypted(s));
    static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00, '\r', '\n'};
    smtp_feed(s, SMTP_CLIENT, hello, sizeof hello, ts(1));
    say(s, SMTP_SERVER, "220 not parsed\r\n", 2);
    json_t *o = finish(s, 3);
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "implicit");
    CHECK(jtrue(o, "tls.encrypted"));
    CHECK_EQ_INT(jint(o, "tls.encrypted_bytes.client"), sizeof hello);
    CHECK(jget(o, "banner") == NULL);
    CHECK(jget(o, "transcript") == NULL);
    CHECK_EQ_STR(jstr(o, "outcome"), "encrypted");
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "tls");
    json_decref(o);
}

/* The message sink of test_kept_messages: every transaction's message, in order. */
struct msg_col {
    struct buf b;
    uint64_t txn;
    int begun, ended, whole;
    int env_from;
    size_t env_rcpt;
    char rcpt0[64];
};

static void *
msg_begin(void *ctx, uint64_t txn, const struct imf_envelope *env)
{
    struct msg_col *c = ctx;
    c->begun++;
    c->env_from = env && env->has_from;
    c->env_rcpt = env ? env->nrcpt : 0;
    if (env && env->nrcpt)
        snprintf(c->rcpt0, sizeof c->rcpt0, "%.*s", (int)env->rcpt[0].n,
                 (const char *)env->rcpt[0].p);
    c->txn = txn;
    return c;
}

static void
msg_bytes(void *msg, const uint8_t *p, size_t n)
{
    struct msg_col *c = msg;
    CHECK(buf_append(&c->b, p, n) == BUF_OK);
}

static void
msg_end(void *msg, int whole)
{
    struct msg_col *c = msg;
    c->ended++;
    c->whole = whole;
}

static void
test_kept_messages(void)
{
    struct smtp_config cfg = {0};
    struct msg_col col = {0};
    buf_init(&col.b, 65536);
    cfg.eml = (struct imf_sink){msg_begin, msg_bytes, msg_end, &col};
    struct smtp_session *s = session(&cfg);
    for (size_t i = 0; i < NSTEPS(dlg_submission); i++)
        feed_step(s, &dlg_submission[i], FEED_WHOLE, NULL);
    /* Streamed: the message went to the sink whole before the session ended. */
    CHECK_EQ_INT(col.begun, 1);
    CHECK_EQ_INT(col.ended, 1);
    CHECK_EQ_INT(col.whole, 1);
    CHECK_EQ_INT(col.txn, 0);
    /* The sink is told the envelope: the reverse path and the accepted recipient. */
    CHECK_EQ_INT(col.env_from, 1);
    CHECK_EQ_INT(col.env_rcpt, 1);
    CHECK_EQ_STR(col.rcpt0, "bob@example.com");
    smtp_finish(s, ts(100));
    CHECK_EQ_INT(col.ended, 1);
    static const char want[] = "From: Alice <alice@example.net>\r\nTo: bob@example.com\r\n"
                               "Subject: Hello\r\n\r\nHi Bob\r\n.dot line\r\n";
    CHECK(col.b.len == sizeof want - 1 && memcmp(col.b.data, want, col.b.len) == 0);
    smtp_destroy(s);
    buf_free(&col.b);

    s = session(NULL);
    for (size_t i = 0; i < NSTEPS(dlg_submission); i++)
        feed_step(s, &dlg_submission[i], FEED_WHOLE, NULL);
    smtp_destroy(s);
    smtp_destroy(NULL);
    smtp_feed(NULL, SMTP_CLIENT, (const uint8_t *)"x", 1, 0);
    smtp_gap(NULL, SMTP_CLIENT, 1, 0);
    smtp_finish(NULL, 0);
}

static void
test_misc_paths(void)
{
    /* MAIL refused; address forms; SMTPUTF8 without a value. */
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "MAIL FROM:<spam@bad.example>\r\n", 1);
    say(s, SMTP_SERVER, "550 5.7.1 <spam@bad.example>: Sender address rejected\r\n", 2);
    say(s, SMTP_CLIENT, "mail from: bare@example.org SMTPUTF8 ENVID=x1 RET=HDRS AUTH=<>\r\n", 3);
    say(s, SMTP_SERVER, "250 ok\r\n", 4);
    say(s, SMTP_CLIENT, "RCPT TO:<@relay.example,@r2.example:user@example.com>\r\n", 5);
    say(s, SMTP_SERVER, "250 ok\r\n", 6);
    say(s, SMTP_CLIENT, "RCPT TO:<\"odd>name\"@example.com> ORCPT=rfc822;x@y\r\n", 7);
    say(s, SMTP_SERVER, "250 ok\r\n", 8);
    /* An unreadable BDAT size: no chunk follows it. */
    say(s, SMTP_CLIENT, "BDAT many\r\n", 9);
    say(s, SMTP_SERVER, "501 5.5.4 Syntax error\r\n", 10);
    say(s, SMTP_CLIENT, "BDAT 3\r\nabcBDAT 0 LAST\r\n", 11);
    say(s, SMTP_SERVER, "552 5.3.4 Message too big\r\n503 5.5.1 Error: no transaction\r\n", 12);
    json_t *o = finish(s, 13);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "mail_rejected");
    CHECK_EQ_INT(jint(o, "transactions.0.mail_code"), 550);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_enhanced"), "5.7.1");
    CHECK_EQ_STR(jstr(o, "transactions.1.mail_from"), "bare@example.org");
    CHECK(jtrue(o, "transactions.1.mail_params.SMTPUTF8"));
    CHECK_EQ_STR(jstr(o, "transactions.1.mail_params.ENVID"), "x1");
    CHECK_EQ_STR(jstr(o, "transactions.1.mail_params.RET"), "HDRS");
    CHECK_EQ_STR(jstr(o, "transactions.1.mail_params.AUTH"), "<>");
    CHECK_EQ_STR(jstr(o, "transactions.1.rcpt.0.to"), "user@example.com");
    CHECK_EQ_STR(jstr(o, "transactions.1.rcpt.1.to"), "\"odd>name\"@example.com");
    CHECK_EQ_STR(jstr(o, "transactions.1.rcpt.1.params.ORCPT"), "rfc822;x@y");
    CHECK_EQ_STR(jstr(o, "transactions.1.data.verb"), "BDAT");
    CHECK_EQ_INT(jint(o, "transactions.1.data.chunks"), 2);
    CHECK_EQ_INT(jint(o, "transactions.1.data.code"), 503);
    CHECK_EQ_STR(jstr(o, "transactions.1.ended_by"), "data");
    CHECK_EQ_INT(jint(o, "commands.bdat"), 3);
    CHECK_EQ_STR(jstr(o, "outcome"), "rejected");
    CHECK_EQ_INT(jint(o, "messages.rejected"), 2);
    json_decref(o);

    /* More error replies than kept; partial AUTH line and unanswered DATA at the end. */
    s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    for (int i = 0; i < 120; i++) {
        say(s, SMTP_CLIENT, "VRFY root\r\n", 1);
        say(s, SMTP_SERVER, "252 2.0.0 root\r\n", 1);
        say(s, SMTP_CLIENT, "EXPN staff\r\n", 1);
        say(s, SMTP_SERVER, "502 5.5.1 EXPN not available\r\n", 1);
    }
    say(s, SMTP_CLIENT, "AUTH LOGIN\r\n", 2);
    say(s, SMTP_SERVER, "334 VXNlcm5hbWU6\r\n", 3);
    say(s, SMTP_CLIENT, "c2VjcmV0", 4);
    o = finish(s, 5);
    CHECK_EQ_INT(json_array_size(jget(o, "smtp.error_replies")), 100);
    CHECK_EQ_INT(jint(o, "smtp.error_replies_dropped"), 20);
    CHECK_EQ_STR(jstr(o, "auth.0.result"), "incomplete");
    CHECK(!dump_contains(o, "c2VjcmV0"));
    CHECK_EQ_STR(jstr(o, "smtp.pending.0.command"), "AUTH");
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "auth");
    json_decref(o);

    /* Gaps while bytes are held, in line mode, and after TLS began. */
    s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: h\r\n", 1);
    smtp_gap(s, SMTP_CLIENT, 10, ts(1));
    say(s, SMTP_CLIENT, "tail\r\n", 1);
    say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n354 go\r\n", 2);
    say(s, SMTP_CLIENT, ".\r\nNOO", 3);
    say(s, SMTP_SERVER, "250 ok\r\n", 4);
    smtp_gap(s, SMTP_CLIENT, 5, ts(4));
    say(s, SMTP_CLIENT, "P\r\nSTARTTLS\r\n", 5);
    say(s, SMTP_SERVER, "220 go\r\n", 6);
    smtp_gap(s, SMTP_CLIENT, 5, ts(7));
    smtp_gap(s, SMTP_SERVER, 5, ts(7));
    o = finish(s, 8);
    /* A hole while bytes are held loses what was held before it too (12 + 10 bytes). */
    CHECK_EQ_INT(jint(o, "transactions.0.data.gap"), 22);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK(jget(o, "commands.noop") == NULL); /* its two halves were never joined */
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "established");
    CHECK_EQ_INT(jint(o, "smtp.gaps.client"), 20);
    CHECK_EQ_INT(jint(o, "smtp.gaps.server"), 5);
    json_decref(o);

    /* The end comes while bytes wait for 354, or inside a BDAT chunk. */
    s = session(NULL);
    say(s, SMTP_CLIENT, "DATA\r\nhello\r\n", 1);
    o = finish(s, 2);
    CHECK(transcript_has(o, "[unanswered: 7 bytes]"));
    CHECK_EQ_STR(jstr(o, "smtp.pending.0.command"), "DATA");
    json_decref(o);
    s = session(NULL);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nBDAT 100 LAST\r\nabc", 1);
    o = finish(s, 2);
    CHECK(transcript_has(o, "[chunk: 3 bytes]"));
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 2);
    CHECK_EQ_STR(jstr(o, "smtp.pending.1.command"), "BDAT");
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "bdat");
    CHECK(json_is_null(jget(o, "transactions.0.data.code")));
    json_decref(o);
    /* The server gives up in the middle of the message: that reply is the final one. */
    s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 1);
    say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n354 go\r\n", 2);
    say(s, SMTP_CLIENT, "Subject: big\r\n\r\npart one\r\n", 3);
    say(s, SMTP_SERVER, "421 4.4.2 mx Error: timeout exceeded\r\n", 600);
    say(s, SMTP_CLIENT, "part two\r\n.\r\nQUIT\r\n", 601);
    o = finish(s, 602);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 421);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "data");
    CHECK(jnum(o, "transactions.0.data.sent_t_ms") == 601.0);
    CHECK_EQ_STR(jstr(o, "smtp.error_replies.0.command"), "DATA-END");
    CHECK_EQ_INT(jint(o, "smtp.replies_without_command"), 0);
    CHECK_EQ_STR(jstr(o, "smtp.pending.0.command"), "QUIT");
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 1);
    CHECK_EQ_STR(jstr(o, "outcome"), "deferred");
    json_decref(o);
    /* EHLO in the middle of a transaction ends it; STARTTLS without a reply; LHLO. */
    s = session(NULL);
    say(s, SMTP_SERVER, "220 lmtp.example.com LMTP ready\r\n", 0);
    say(s, SMTP_CLIENT, "LHLO a\r\n", 1);
    say(s, SMTP_SERVER, "250-lmtp.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 2);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nEHLO again\r\nSTARTTLS\r\n", 3);
    say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n250-lmtp.example.com\r\n250 8BITMIME\r\n", 4);
    o = finish(s, 5);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "helo");
    CHECK_EQ_STR(jstr(o, "helo.verb"), "EHLO");
    CHECK_EQ_INT(jint(o, "helo.count"), 2);
    CHECK_EQ_STR(jstr(o, "extensions.0"), "8BITMIME"); /* the last EHLO reply */
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "requested");
    CHECK(json_is_false(jget(o, "tls.encrypted")));
    CHECK_EQ_STR(jstr(o, "smtp.pending.0.command"), "STARTTLS");
    CHECK_EQ_INT(jint(o, "commands.lhlo"), 1);
    CHECK_EQ_STR(jstr(o, "outcome"), "aborted");
    json_decref(o);
}

/* ---- hostile sizes: bounded memory and time ---- */

static char *
repeat(const char *unit, size_t times, size_t *len)
{
    size_t ul = strlen(unit);
    char *b = malloc(ul * times + 1);
    CHECK(b != NULL);
    if (!b) {
        *len = 0;
        return NULL;
    }
    for (size_t i = 0; i < times; i++)
        memcpy(b + i * ul, unit, ul);
    b[ul * times] = 0;
    *len = ul * times;
    return b;
}

static void
test_cap_huge_line(void)
{
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "NOOP ", 1);
    size_t mb = 1 << 20;
    uint8_t *chunk = malloc(mb);
    CHECK(chunk != NULL);
    if (chunk) {
        memset(chunk, 'a', mb);
        for (int i = 0; i < 100; i++) /* 100 MB without a line end */
            smtp_feed(s, SMTP_CLIENT, chunk, mb, ts(2));
        free(chunk);
    }
    say(s, SMTP_CLIENT, "\r\nQUIT\r\n", 3);
    say(s, SMTP_SERVER, "500 5.5.2 line too long\r\n221 bye\r\n", 4);
    json_t *o = finish(s, 5);
    CHECK_EQ_INT(jint(o, "smtp.long_lines.client"), 1);
    CHECK_EQ_INT(jint(o, "commands.noop"), 1);
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(strlen(jstr(o, "transcript.1.line") ? jstr(o, "transcript.1.line") : ""), 4096);
    CHECK(jtrue(o, "transcript.1.cut"));
    json_decref(o);

    /* The same line still open at the end: flushed, cut, marked incomplete. */
    s = session(NULL);
    say(s, SMTP_CLIENT, "EHLO ", 1);
    chunk = malloc(mb);
    if (chunk) {
        memset(chunk, 'b', mb);
        for (int i = 0; i < 8; i++)
            smtp_feed(s, SMTP_CLIENT, chunk, mb, ts(2));
        free(chunk);
    }
    o = finish(s, 3);
    CHECK(jtrue(o, "transcript.0.incomplete"));
    CHECK(jtrue(o, "transcript.0.cut"));
    CHECK_EQ_INT(jint(o, "smtp.long_lines.client"), 1);
    json_decref(o);
}

static void
test_cap_pipelined_flood(void)
{
    size_t len;
    char *cmds = repeat("NOOP\r\n", 100000, &len);
    char *replies = repeat("250 2.0.0 Ok\r\n", 100000, &len);
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    if (cmds)
        say(s, SMTP_CLIENT, cmds, 1);
    json_t *o = json_object();
    /* A report mid-flight: 100,000 commands await their reply. */
    CHECK_EQ_INT(smtp_report(s, o), 0);
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 100000);
    CHECK_EQ_INT(json_array_size(jget(o, "smtp.pending")), 20);
    CHECK_EQ_INT(jint(o, "smtp.inflight_overflow"), 100000 - 1024);
    CHECK_EQ_INT(json_array_size(jget(o, "transcript")), 1000);
    CHECK_EQ_INT(jint(o, "transcript_dropped"), 100001 - 1000);
    json_decref(o);
    /* Every reply still finds its command, the dropped ones included, in order. */
    if (replies)
        say(s, SMTP_SERVER, replies, 2);
    say(s, SMTP_CLIENT, "QUIT\r\n", 3);
    say(s, SMTP_SERVER, "221 bye\r\n", 4);
    o = finish(s, 5);
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    CHECK_EQ_INT(jint(o, "smtp.replies_without_command"), 0);
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "commands.noop"), 100000);
    CHECK(jtrue(o, "smtp.pipelined"));
    json_decref(o);
    free(cmds);
    free(replies);

    /* A tiny queue: the replies of the commands that did not fit are skipped exactly. */
    struct smtp_config cfg = {0};
    cfg.max_inflight = 2;
    s = session(&cfg);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@f>\r\nRCPT TO:<g@h>\r\n",
        1);
    say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n550 no\r\n551 no\r\n", 2);
    say(s, SMTP_CLIENT, "QUIT\r\n", 3);
    say(s, SMTP_SERVER, "221 bye\r\n", 4);
    o = finish(s, 5);
    CHECK_EQ_INT(jint(o, "smtp.inflight_overflow"), 2);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_count"), 3);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt.0.code"), 250);
    CHECK(jget(o, "transactions.0.rcpt.1.code") == NULL);
    CHECK_EQ_INT(jint(o, "smtp.replies_without_command"), 0);
    CHECK_EQ_INT(json_array_size(jget(o, "smtp.error_replies")), 2);
    CHECK(jget(o, "smtp.error_replies.0.command") == NULL);
    CHECK(jtrue(o, "smtp.quit_replied"));
    json_decref(o);
}

static void
test_cap_recipients(void)
{
    struct smtp_session *s = session(NULL);
    char line[64];
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\n", 1);
    say(s, SMTP_SERVER, "250 ok\r\n", 1);
    for (int batch = 0; batch < 100; batch++) {
        for (int i = 0; i < 100; i++) {
            snprintf(line, sizeof line, "RCPT TO:<u%d@example.com>\r\n", batch * 100 + i);
            say(s, SMTP_CLIENT, line, 2);
        }
        for (int i = 0; i < 100; i++)
            say(s, SMTP_SERVER, "250 2.1.5 Ok\r\n", 3);
    }
    json_t *o = finish(s, 4);
    CHECK_EQ_INT(json_array_size(jget(o, "transactions.0.rcpt")), 1000);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_count"), 10000);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_accepted"), 10000);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_dropped"), 9000);
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.999.to"), "u999@example.com");
    json_decref(o);

    struct smtp_config cfg = {0};
    cfg.max_transactions = 2;
    cfg.max_transcript = 10;
    s = session(&cfg);
    for (int i = 0; i < 5; i++) {
        say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRSET\r\n", i);
        say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n", i);
    }
    o = finish(s, 6);
    CHECK_EQ_INT(json_array_size(jget(o, "transactions")), 2);
    CHECK_EQ_INT(jint(o, "smtp.transactions_dropped"), 3);
    CHECK_EQ_INT(json_array_size(jget(o, "transcript")), 10);
    CHECK_EQ_INT(jint(o, "transcript_dropped"), 10);
    json_decref(o);
}

static void
test_cap_long_reply(void)
{
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "EHLO a\r\n", 1);
    say(s, SMTP_SERVER, "250-mx.example.com\r\n", 2);
    char line[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(line, sizeof line, "250-FEATURE%d\r\n", i);
        say(s, SMTP_SERVER, line, 2);
    }
    say(s, SMTP_SERVER, "250 PIPELINING\r\n", 3);
    say(s, SMTP_CLIENT, "QUIT\r\n", 4);
    say(s, SMTP_SERVER, "221 bye\r\n", 5);
    json_t *o = finish(s, 6);
    CHECK_EQ_INT(json_array_size(jget(o, "extensions")), 64);
    CHECK_EQ_INT(jint(o, "smtp.extensions_dropped"), 100001 - 64);
    CHECK(jtrue(o, "ehlo.pipelining")); /* read although not kept verbatim */
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "transcript_dropped"), 100006 - 1000);
    json_decref(o);
}

static void
test_cap_auth_blob(void)
{
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "AUTH PLAIN ", 1);
    uint8_t *blob = malloc(65536);
    CHECK(blob != NULL);
    if (blob) {
        memset(blob, 'Q', 65536);
        for (int i = 0; i < 64; i++) /* 4 MB of base64 */
            smtp_feed(s, SMTP_CLIENT, blob, 65536, ts(2));
    }
    say(s, SMTP_CLIENT, "\r\n", 3);
    say(s, SMTP_SERVER, "535 5.7.8 Error: authentication failed\r\n", 4);
    /* The same through continuation lines. */
    say(s, SMTP_CLIENT, "AUTH LOGIN\r\n", 5);
    say(s, SMTP_SERVER, "334 VXNlcm5hbWU6\r\n", 6);
    if (blob) {
        for (int i = 0; i < 64; i++)
            smtp_feed(s, SMTP_CLIENT, blob, 65536, ts(7));
        free(blob);
    }
    say(s, SMTP_CLIENT, "\r\n", 7);
    say(s, SMTP_SERVER, "535 5.7.8 Error: authentication failed\r\n", 8);
    json_t *o = finish(s, 9);
    CHECK_EQ_INT(json_array_size(jget(o, "auth")), 2);
    CHECK_EQ_STR(jstr(o, "auth.0.result"), "failure");
    CHECK_EQ_STR(jstr(o, "auth.1.result"), "failure");
    CHECK(transcript_has(o, "AUTH PLAIN <redacted>"));
    CHECK(transcript_has(o, "<redacted>"));
    CHECK(!dump_contains(o, "QQQQQQQQ"));
    CHECK_EQ_INT(jint(o, "smtp.long_lines.client"), 2);
    json_decref(o);
}

/* The client streams a message without waiting for 354: what is held is capped. */
static void
test_cap_hold(void)
{
    size_t len;
    char *body = repeat("0123456789012345678901234567890123456789\r\n", 25000, &len);
    struct smtp_session *s = session(NULL);
    say(s, SMTP_SERVER, "220 mx ESMTP\r\n", 0);
    say(s, SMTP_CLIENT, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n", 1);
    if (body)
        say(s, SMTP_CLIENT, body, 2);
    say(s, SMTP_CLIENT, ".\r\n", 2);
    say(s, SMTP_SERVER, "250 ok\r\n250 ok\r\n354 go\r\n", 3);
    json_t *o = finish(s, 4);
    CHECK(jint(o, "transactions.0.data.bytes") <= 65536);
    CHECK(jint(o, "transactions.0.data.gap") > 0);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code_354"), 354);
    json_decref(o);
    free(body);
}

/* ---- the dialogue inside TLS, decrypted with a key log ---- */

/* A TLS 1.3 connection sealed here (RFC 8446 5.2, TLS_AES_128_GCM_SHA256): ClientHello and
 * ServerHello in clear, then application data under the traffic secrets the key log gives.
 * No encrypted handshake is sent: the decryptor tries the handshake keys of the key log,
 * then moves on to the application keys, as when a Finished went unseen. */
struct t13 {
    uint8_t random[32];
    uint8_t secret[2][32];
    uint8_t key[2][16];
    uint8_t iv[2][12];
    uint64_t seq[2];
};

/* Bytes on the wire of one direction at one time: a record or some of one. */
struct wire_step {
    int dir;
    uint8_t p[1024];
    size_t n;
    int t_ms;
};

struct wire {
    struct wire_step step[48];
    size_t n;
};

static void
t13_init(struct t13 *t, uint8_t seed)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 32; i++) {
        t->random[i] = (uint8_t)(seed + i);
        t->secret[0][i] = (uint8_t)(seed * 3 + i);
        t->secret[1][i] = (uint8_t)(seed * 5 + 0x80 + i);
    }
    for (int d = 0; d < 2; d++) {
        CHECK_EQ_INT(tlsdec_expand_label(0x1301, t->secret[d], 32, "key", NULL, 0, t->key[d], 16),
                     0);
        CHECK_EQ_INT(tlsdec_expand_label(0x1301, t->secret[d], 32, "iv", NULL, 0, t->iv[d], 12), 0);
    }
}

static void
t13_hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* The connection's key log; wrong: with the secrets altered (the right connection, keys
 * that do not open its records). */
static struct keylog *
t13_keylog(const struct t13 *t, int wrong)
{
    char text[1024], r[65], s0[65], s1[65], h0[65], h1[65];
    uint8_t sec[2][32], hs[2][32];
    struct keylog *kl = keylog_create(0);

    memcpy(sec, t->secret, sizeof sec);
    memcpy(hs, t->secret, sizeof hs);
    hs[0][0] ^= 0xff;
    hs[1][0] ^= 0xff;
    if (wrong) {
        sec[0][5] ^= 1;
        sec[1][5] ^= 1;
    }
    t13_hex(r, t->random, 32);
    t13_hex(s0, sec[0], 32);
    t13_hex(s1, sec[1], 32);
    t13_hex(h0, hs[0], 32);
    t13_hex(h1, hs[1], 32);
    snprintf(text, sizeof text,
             "CLIENT_HANDSHAKE_TRAFFIC_SECRET %s %s\nSERVER_HANDSHAKE_TRAFFIC_SECRET %s %s\n"
             "CLIENT_TRAFFIC_SECRET_0 %s %s\nSERVER_TRAFFIC_SECRET_0 %s %s\n",
             r, h0, r, h1, r, s0, r, s1);
    CHECK(kl != NULL);
    if (kl)
        CHECK_EQ_INT(keylog_load_buffer(kl, (const uint8_t *)text, strlen(text)), 0);
    return kl;
}

static struct wire_step *
wire_add(struct wire *w, int dir, int t_ms)
{
    CHECK(w->n < NSTEPS(w->step));
    if (w->n >= NSTEPS(w->step))
        w->n = NSTEPS(w->step) - 1;
    struct wire_step *e = &w->step[w->n++];
    e->dir = dir;
    e->n = 0;
    e->t_ms = t_ms;
    return e;
}

static void
wire_clear(struct wire *w, int dir, const char *text, int t_ms)
{
    struct wire_step *e = wire_add(w, dir, t_ms);
    e->n = strlen(text);
    memcpy(e->p, text, e->n);
}

/* One handshake message in a record of its own. */
static void
t13_hs_record(struct wire *w, int dir, uint8_t type, const uint8_t *body, size_t n, int t_ms)
{
    struct wire_step *e = wire_add(w, dir, t_ms);
    uint8_t *p = e->p;
    p[0] = 22;
    p[1] = 3;
    p[2] = dir == SMTP_CLIENT ? 1 : 3;
    p[3] = (uint8_t)((n + 4) >> 8);
    p[4] = (uint8_t)(n + 4);
    p[5] = type;
    p[6] = 0;
    p[7] = (uint8_t)(n >> 8);
    p[8] = (uint8_t)n;
    memcpy(p + 9, body, n);
    e->n = 9 + n;
}

/* ClientHello and ServerHello: the random names the connection in the key log, the
 * ServerHello picks TLS 1.3 (RFC 8446 4.2.1) and TLS_AES_128_GCM_SHA256. */
static void
t13_hellos(struct wire *w, const struct t13 *t, int t_ms)
{
    uint8_t ch[64], sh[64];
    size_t n = 0;

    ch[n++] = 3;
    ch[n++] = 3;
    memcpy(ch + n, t->random, 32);
    n += 32;
    static const uint8_t ch_tail[] = {0, 0, 2, 0x13, 0x01, 1, 0, 0, 7, 0, 43, 0, 3, 2, 3, 4};
    memcpy(ch + n, ch_tail, sizeof ch_tail);
    n += sizeof ch_tail;
    t13_hs_record(w, SMTP_CLIENT, 1, ch, n, t_ms);

    n = 0;
    sh[n++] = 3;
    sh[n++] = 3;
    for (int i = 0; i < 32; i++)
        sh[n++] = (uint8_t)(0x55 + i);
    static const uint8_t sh_tail[] = {0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 3, 4};
    memcpy(sh + n, sh_tail, sizeof sh_tail);
    n += sizeof sh_tail;
    t13_hs_record(w, SMTP_SERVER, 2, sh, n, t_ms + 1);
}

/* text as one application data record of dir (RFC 8446 5.2: the inner type follows the
 * content; the nonce is the IV xor the sequence number). */
static void
t13_seal(struct wire *w, struct t13 *t, int dir, const char *text, int t_ms)
{
    struct wire_step *e = wire_add(w, dir, t_ms);
    size_t n = strlen(text);
    uint8_t inner[1000], nonce[12];
    int len = 0, fin = 0;

    CHECK(n + 1 + 16 + 5 <= sizeof e->p);
    memcpy(inner, text, n);
    inner[n] = 23;
    memcpy(nonce, t->iv[dir], 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(t->seq[dir] >> (8 * i));
    t->seq[dir]++;
    e->p[0] = 23;
    e->p[1] = 3;
    e->p[2] = 3;
    e->p[3] = (uint8_t)((n + 17) >> 8);
    e->p[4] = (uint8_t)(n + 17);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, t->key[dir], nonce) == 1);
    CHECK(EVP_EncryptUpdate(c, NULL, &len, e->p, 5) == 1);
    CHECK(EVP_EncryptUpdate(c, e->p + 5, &len, inner, (int)n + 1) == 1);
    CHECK(EVP_EncryptFinal_ex(c, e->p + 5 + len, &fin) == 1);
    CHECK(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, e->p + 5 + n + 1) == 1);
    EVP_CIPHER_CTX_free(c);
    e->n = 5 + n + 1 + 16;
}

/* Feeds the wire in the given way and returns the report. */
static json_t *
wire_run(const struct smtp_config *cfg, const struct wire *w, enum feed_mode mode)
{
    struct smtp_session *s = smtp_create(cfg, T0, T0 + HS);
    unsigned seed = 11;
    int last = 0;

    CHECK(s != NULL);
    if (!s)
        return json_object();
    for (size_t i = 0; i < w->n; i++) {
        struct step st = {w->step[i].dir, (const char *)w->step[i].p, w->step[i].n,
                          w->step[i].t_ms};
        feed_step(s, &st, mode, &seed);
        last = w->step[i].t_ms;
    }
    smtp_finish(s, ts(last + 1000));
    json_t *o = json_object();
    CHECK_EQ_INT(smtp_report(s, o), 0);
    check_transcript_writer(s, o);
    CHECK_EQ_INT(smtp_decrypted(s), cfg && cfg->keylog && jtrue(o, "tls.decrypted"));
    smtp_destroy(s);
    return o;
}

/* 1 when every transcript entry from index `from` on is marked decrypted, and none before. */
static int
decrypted_from(json_t *o, size_t from)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(o, "transcript"), i, e) {
        if (jtrue(e, "decrypted") != (i >= from))
            return 0;
    }
    return json_array_size(json_object_get(o, "transcript")) > from;
}

/* Index of the transcript entry whose line is text, -1 when none. */
static long
transcript_index(json_t *o, const char *text)
{
    size_t i;
    json_t *e;
    json_array_foreach (json_object_get(o, "transcript"), i, e) {
        const char *l = jstr(e, "line");
        if (l && strcmp(l, text) == 0)
            return (long)i;
    }
    return -1;
}

/* Submission on 587: STARTTLS, then inside TLS a new EHLO, AUTH PLAIN, a pipelined
 * transaction whose message spans two records, QUIT. */
static void
wire_submission(struct wire *w, struct t13 *t)
{
    w->n = 0;
    t13_init(t, 7);
    wire_clear(w, SMTP_SERVER, "220 mx.example.com ESMTP Postfix\r\n", 0);
    wire_clear(w, SMTP_CLIENT, "EHLO a.example\r\n", 1);
    wire_clear(w, SMTP_SERVER, "250-mx.example.com\r\n250-STARTTLS\r\n250 8BITMIME\r\n", 2);
    wire_clear(w, SMTP_CLIENT, "STARTTLS\r\n", 3);
    wire_clear(w, SMTP_SERVER, "220 2.0.0 Ready to start TLS\r\n", 4);
    t13_hellos(w, t, 5);
    t13_seal(w, t, SMTP_CLIENT, "EHLO a.example\r\n", 10);
    t13_seal(w, t, SMTP_SERVER,
             "250-mx.example.com\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
             11);
    t13_seal(w, t, SMTP_CLIENT, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n", 20);
    t13_seal(w, t, SMTP_SERVER, "235 2.7.0 Authentication successful\r\n", 21);
    t13_seal(w, t, SMTP_CLIENT,
             "MAIL FROM:<alice@a.example>\r\nRCPT TO:<bob@b.example>\r\nDATA\r\n", 30);
    t13_seal(w, t, SMTP_SERVER, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n", 31);
    t13_seal(w, t, SMTP_CLIENT, "Subject: inside\r\n\r\nhello", 40);
    t13_seal(w, t, SMTP_CLIENT, " world\r\n.\r\n", 41);
    t13_seal(w, t, SMTP_SERVER, "250 2.0.0 Ok: queued as 4A2\r\n", 42);
    t13_seal(w, t, SMTP_CLIENT, "QUIT\r\n", 50);
    t13_seal(w, t, SMTP_SERVER, "221 2.0.0 Bye\r\n", 51);
}

static void
test_tls_decrypted(void)
{
    static struct wire w;
    struct t13 t;
    struct smtp_config cfg = {0};

    wire_submission(&w, &t);
    struct keylog *kl = t13_keylog(&t, 0);
    cfg.hash_bodies = 1;
    cfg.keylog = kl;
    json_t *o = wire_run(&cfg, &w, FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "tls.starttls"), "established");
    CHECK(jtrue(o, "tls.encrypted"));
    CHECK(jtrue(o, "tls.decrypted"));
    CHECK_EQ_STR(jstr(o, "tls.version"), "TLS 1.3");
    CHECK_EQ_STR(jstr(o, "tls.decryption.status"), "ok");
    CHECK_EQ_INT(jint(o, "tls.decryption.client.decrypted"), 6);
    CHECK_EQ_INT(jint(o, "tls.decryption.server.decrypted"), 5);
    CHECK_EQ_INT(jint(o, "tls.decryption.server.failed"), 0);
    CHECK_EQ_INT(jint(o, "tls.decrypted_bytes.client"),
                 strlen("EHLO a.example\r\nAUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n"
                        "MAIL FROM:<alice@a.example>\r\nRCPT TO:<bob@b.example>\r\nDATA\r\n"
                        "Subject: inside\r\n\r\nhello world\r\n.\r\nQUIT\r\n"));
    /* The 220 to STARTTLS is the last line in clear; everything after came from TLS. */
    long i220 = transcript_index(o, "220 2.0.0 Ready to start TLS");
    CHECK(i220 == 6);
    CHECK(decrypted_from(o, (size_t)i220 + 1));
    CHECK_EQ_STR(jstr(o, "transcript.7.line"), "EHLO a.example");
    CHECK(transcript_has(o, "AUTH PLAIN <redacted>"));
    CHECK(!dump_contains(o, "AGFsaWNlAHMzY3JldA"));
    CHECK(!dump_contains(o, "s3cret"));
    /* RFC 3207 4.2: the EHLO reply inside TLS replaces the one in clear. */
    CHECK_EQ_INT(jint(o, "helo.count"), 2);
    CHECK_EQ_INT(jint(o, "commands.ehlo"), 2);
    CHECK(jtrue(o, "ehlo.decrypted"));
    CHECK(jtrue(o, "ehlo.pipelining"));
    CHECK(json_is_false(jget(o, "ehlo.starttls")));
    CHECK_EQ_STR(jstr(o, "ehlo.auth.0"), "PLAIN");
    CHECK_EQ_STR(jstr(o, "extensions.1"), "AUTH PLAIN LOGIN");
    /* AUTH inside TLS: seen only by decryption, not in clear. */
    CHECK_EQ_STR(jstr(o, "auth.0.mechanism"), "PLAIN");
    CHECK_EQ_STR(jstr(o, "auth.0.user"), "alice");
    CHECK_EQ_STR(jstr(o, "auth.0.result"), "success");
    CHECK(json_is_false(jget(o, "auth.0.in_clear")));
    CHECK(jtrue(o, "auth.0.decrypted"));
    CHECK(jtrue(o, "auth.0.advertised"));
    CHECK(jget(o, "auth.0.password") == NULL);
    /* The transaction, pipelined under the PIPELINING the server offered inside TLS. */
    CHECK_EQ_INT(json_array_size(jget(o, "transactions")), 1);
    CHECK(jtrue(o, "transactions.0.decrypted"));
    CHECK(jtrue(o, "transactions.0.tls"));
    CHECK(jtrue(o, "transactions.0.authenticated"));
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_from"), "alice@a.example");
    CHECK_EQ_INT(jint(o, "transactions.0.mail_code"), 250);
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.0.to"), "bob@b.example");
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt.0.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code_354"), 354);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.text"), "2.0.0 Ok: queued as 4A2");
    CHECK(jstr(o, "transactions.0.data.sha256") != NULL);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "data");
    CHECK(transcript_has(o, "[message: 35 bytes]"));
    CHECK(jtrue(o, "smtp.pipelined"));
    CHECK_EQ_INT(jint(o, "smtp.pipelining_violations"), 0);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    CHECK_EQ_INT(jint(o, "messages.delivered"), 1);
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "quit");
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    CHECK_EQ_INT(jint(o, "smtp.gaps.server"), 0);

    /* However TCP cut the records, the report is the same. */
    char *whole = dump(o);
    for (int m = FEED_BYTES; m <= FEED_RANDOM; m++) {
        json_t *c = wire_run(&cfg, &w, (enum feed_mode)m);
        char *other = dump(c);
        CHECK(whole && other && strcmp(whole, other) == 0);
        free(other);
        json_decref(c);
    }
    free(whole);
    json_decref(o);

    /* --show-secrets reaches the AUTH decrypted from TLS too. */
    cfg.show_secrets = 1;
    o = wire_run(&cfg, &w, FEED_WHOLE);
    CHECK_EQ_STR(jstr(o, "auth.0.password"), "s3cret");
    json_decref(o);
    keylog_destroy(kl);

    /* No key log: the TLS part stays opaque, as without this feature. */
    cfg.show_secrets = 0;
    cfg.keylog = NULL;
    o = wire_run(&cfg, &w, FEED_WHOLE);
    CHECK_EQ_STR(jstr(o, "outcome"), "encrypted");
    CHECK(jget(o, "tls.decryption") == NULL);
    CHECK(jget(o, "tls.decrypted") == NULL);
    CHECK(jget(o, "transactions") == NULL);
    CHECK(jget(o, "auth") == NULL);
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "tls");
    CHECK(jget(o, "ehlo.decrypted") == NULL);
    CHECK(decrypted_from(o, 7) == 0 && json_array_size(jget(o, "transcript")) == 7);
    json_decref(o);

    /* Secrets of this connection that do not open its records: said, nothing read. */
    kl = t13_keylog(&t, 1);
    cfg.keylog = kl;
    o = wire_run(&cfg, &w, FEED_WHOLE);
    CHECK_EQ_STR(jstr(o, "tls.decryption.status"), "auth_failed");
    CHECK(jint(o, "tls.decryption.server.failed") > 0);
    CHECK_EQ_INT(jint(o, "tls.decryption.server.decrypted"), 0);
    CHECK(jget(o, "tls.decrypted") == NULL);
    CHECK_EQ_STR(jstr(o, "outcome"), "encrypted");
    CHECK(jget(o, "transactions") == NULL);
    CHECK_EQ_INT(json_array_size(jget(o, "transcript")), 7);
    CHECK_EQ_INT(jint(o, "smtp.gaps.client") + jint(o, "smtp.gaps.server"), 0);
    json_decref(o);
    keylog_destroy(kl);

    /* A key log without this connection. */
    struct t13 other;
    t13_init(&other, 99);
    kl = t13_keylog(&other, 0);
    cfg.keylog = kl;
    o = wire_run(&cfg, &w, FEED_WHOLE);
    CHECK_EQ_STR(jstr(o, "tls.decryption.status"), "no_keys");
    CHECK_EQ_STR(jstr(o, "outcome"), "encrypted");
    json_decref(o);
    keylog_destroy(kl);
}

/* What the client learnt in clear does not hold inside TLS (RFC 3207 4.2): a transaction
 * open at STARTTLS is over, AUTH in clear no longer counts, and until the new EHLO reply
 * the server's extensions are unknown. */
static void
test_tls_reset(void)
{
    static struct wire w;
    struct t13 t;
    struct smtp_config cfg = {0};

    t13_init(&t, 21);
    wire_clear(&w, SMTP_SERVER, "220 mx.example.com ESMTP\r\n", 0);
    wire_clear(&w, SMTP_CLIENT, "EHLO a.example\r\n", 1);
    wire_clear(&w, SMTP_SERVER, "250-mx.example.com\r\n250-AUTH PLAIN\r\n250 STARTTLS\r\n", 2);
    wire_clear(&w, SMTP_CLIENT, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n", 3);
    wire_clear(&w, SMTP_SERVER, "235 2.7.0 Authentication successful\r\n", 4);
    wire_clear(&w, SMTP_CLIENT, "MAIL FROM:<clear@a.example>\r\n", 5);
    wire_clear(&w, SMTP_SERVER, "250 2.1.0 Ok\r\n", 6);
    wire_clear(&w, SMTP_CLIENT, "STARTTLS\r\n", 7);
    wire_clear(&w, SMTP_SERVER, "220 2.0.0 Ready to start TLS\r\n", 8);
    t13_hellos(&w, &t, 9);
    /* Pipelined before the new EHLO reply: no PIPELINING known, and none is against it. */
    t13_seal(&w, &t, SMTP_CLIENT, "EHLO a.example\r\nNOOP\r\n", 20);
    t13_seal(&w, &t, SMTP_SERVER, "250-mx.example.com\r\n250 AUTH PLAIN\r\n250 2.0.0 Ok\r\n", 21);
    /* The EHLO reply inside TLS has no PIPELINING: this pair is a violation. */
    t13_seal(&w, &t, SMTP_CLIENT, "MAIL FROM:<tls@a.example>\r\nRCPT TO:<b@b.example>\r\n", 30);
    t13_seal(&w, &t, SMTP_SERVER, "250 2.1.0 Ok\r\n554 5.7.1 Relay access denied\r\n", 31);
    t13_seal(&w, &t, SMTP_CLIENT, "STARTTLS\r\n", 40);
    t13_seal(&w, &t, SMTP_SERVER, "554 5.5.1 Error: TLS already active\r\n", 41);
    t13_seal(&w, &t, SMTP_CLIENT, "QUIT\r\n", 50);
    t13_seal(&w, &t, SMTP_SERVER, "221 2.0.0 Bye\r\n", 51);
    struct keylog *kl = t13_keylog(&t, 0);
    cfg.keylog = kl;
    json_t *o = wire_run(&cfg, &w, FEED_WHOLE);

    CHECK_EQ_INT(json_array_size(jget(o, "transactions")), 2);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_from"), "clear@a.example");
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "rset");
    CHECK(json_is_false(jget(o, "transactions.0.tls")));
    CHECK(jget(o, "transactions.0.decrypted") == NULL);
    CHECK(jtrue(o, "transactions.0.authenticated"));
    CHECK_EQ_STR(jstr(o, "transactions.1.mail_from"), "tls@a.example");
    CHECK(jtrue(o, "transactions.1.decrypted"));
    CHECK(json_is_false(jget(o, "transactions.1.authenticated")));
    CHECK_EQ_INT(jint(o, "transactions.1.rcpt.0.code"), 554);
    CHECK_EQ_STR(jstr(o, "outcome"), "rejected");
    /* AUTH in clear stays what it was. */
    CHECK(jtrue(o, "auth.0.in_clear"));
    CHECK(jget(o, "auth.0.decrypted") == NULL);
    CHECK_EQ_INT(jint(o, "smtp.pipelining_violations"), 1);
    CHECK(jtrue(o, "ehlo.decrypted"));
    CHECK(json_is_false(jget(o, "ehlo.pipelining")));
    /* A second STARTTLS inside TLS: refused, and the tls section keeps the first. */
    CHECK_EQ_INT(jint(o, "tls.code"), 220);
    CHECK(jnum(o, "tls.t_ms") == 7.0);
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "established");
    CHECK_EQ_INT(jint(o, "commands.starttls"), 2);
    CHECK_EQ_STR(jstr(o, "smtp.error_replies.1.command"), "STARTTLS");
    CHECK_EQ_INT(jint(o, "smtp.error_replies.1.code"), 554);
    CHECK(jtrue(o, "smtp.quit_replied"));
    json_decref(o);

    /* Accepted instead: what follows is a second TLS layer, not read as SMTP. */
    w.n -= 3;
    t.seq[SMTP_SERVER] -= 2;
    t.seq[SMTP_CLIENT] -= 1;
    t13_seal(&w, &t, SMTP_SERVER, "220 2.0.0 Go ahead\r\n", 41);
    t13_seal(&w, &t, SMTP_CLIENT, "\x16\x03\x01\x00\x02\x01\x00QUIT\r\n", 42);
    t13_seal(&w, &t, SMTP_SERVER,
             "\x16\x03\x03\x00\x02\x02\x00"
             "250 fake\r\n",
             43);
    o = wire_run(&cfg, &w, FEED_WHOLE);
    CHECK(!transcript_has(o, "250 fake"));
    CHECK(jget(o, "commands.quit") == NULL);
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "tls");
    CHECK_EQ_INT(jint(o, "tls.code"), 220);
    CHECK(jnum(o, "tls.t_ms") == 7.0);
    CHECK_EQ_INT(jint(o, "smtp.pending_count"), 0);
    json_decref(o);
    keylog_destroy(kl);
}

/* Port 465 (RFC 8314 3.3): the greeting itself comes inside TLS. */
static void
test_tls_implicit_decrypted(void)
{
    static struct wire w;
    struct t13 t;
    struct smtp_config cfg = {0};

    t13_init(&t, 33);
    t13_hellos(&w, &t, 1);
    t13_seal(&w, &t, SMTP_SERVER, "220 smtp.example.com ESMTP Exim 4.96\r\n", 3);
    t13_seal(&w, &t, SMTP_CLIENT, "EHLO a.example\r\n", 4);
    t13_seal(&w, &t, SMTP_SERVER, "250-smtp.example.com\r\n250 AUTH PLAIN\r\n", 5);
    t13_seal(&w, &t, SMTP_CLIENT, "QUIT\r\n", 6);
    t13_seal(&w, &t, SMTP_SERVER, "221 Bye\r\n", 7);
    struct keylog *kl = t13_keylog(&t, 0);
    cfg.keylog = kl;
    cfg.implicit_tls = 1;
    json_t *o = wire_run(&cfg, &w, FEED_WHOLE);

    CHECK_EQ_STR(jstr(o, "tls.starttls"), "implicit");
    CHECK(jtrue(o, "tls.decrypted"));
    CHECK_EQ_INT(jint(o, "banner.code"), 220);
    CHECK(jnum(o, "banner.delay_ms") == 2.5);
    CHECK_EQ_STR(jstr(o, "server_software.name"), "Exim");
    CHECK(decrypted_from(o, 0));
    CHECK_EQ_INT(jint(o, "helo.count"), 1);
    CHECK_EQ_STR(jstr(o, "outcome"), "aborted");
    CHECK_EQ_STR(jstr(o, "smtp.phase"), "quit");
    CHECK_EQ_INT(jint(o, "smtp.replies_without_command"), 0);
    json_decref(o);
    keylog_destroy(kl);
}

/* A record that does not decrypt once plaintext flows is a hole: nothing of it reaches the
 * model, the dialogue resumes with the records after it, and the session is partial. */
static void
test_tls_hole(void)
{
    static struct wire w;
    struct t13 t;
    struct smtp_config cfg = {0};

    wire_submission(&w, &t);
    /* The record of the final reply to the message: its tag spoilt. */
    for (size_t i = 0; i < w.n; i++)
        if (w.step[i].t_ms == 42)
            w.step[i].p[w.step[i].n - 1] ^= 0x40;
    struct keylog *kl = t13_keylog(&t, 0);
    cfg.keylog = kl;
    struct smtp_session *s = smtp_create(&cfg, T0, T0 + HS);
    unsigned seed = 1;
    for (size_t i = 0; s && i < w.n; i++) {
        struct step st = {w.step[i].dir, (const char *)w.step[i].p, w.step[i].n, w.step[i].t_ms};
        feed_step(s, &st, FEED_WHOLE, &seed);
    }
    CHECK(smtp_partial(s));
    CHECK(smtp_decrypted(s));
    json_t *o = finish(s, 100);
    CHECK_EQ_INT(jint(o, "tls.decryption.server.failed"), 1);
    CHECK_EQ_STR(jstr(o, "tls.decryption.status"), "ok");
    CHECK_EQ_INT(jint(o, "smtp.gaps.server"), strlen("250 2.0.0 Ok: queued as 4A2\r\n") + 17);
    CHECK(!transcript_has(o, "250 2.0.0 Ok: queued as 4A2"));
    /* The records after the hole still decrypt: the 221 is read (as the reply the model
     * still waits for, as after any lost reply). */
    CHECK(transcript_has(o, "221 2.0.0 Bye"));
    CHECK(jtrue(o, "tls.decrypted"));
    json_decref(o);
    keylog_destroy(kl);

    /* Bytes lost on the wire inside TLS: no more plaintext from that side. */
    wire_submission(&w, &t);
    kl = t13_keylog(&t, 0);
    cfg.keylog = kl;
    s = smtp_create(&cfg, T0, T0 + HS);
    for (size_t i = 0; s && i < w.n; i++) {
        struct step st = {w.step[i].dir, (const char *)w.step[i].p, w.step[i].n, w.step[i].t_ms};
        if (w.step[i].t_ms == 40) {
            smtp_gap(s, SMTP_CLIENT, 10, ts(40));
            continue;
        }
        feed_step(s, &st, FEED_WHOLE, &seed);
    }
    o = finish(s, 100);
    CHECK_EQ_INT(jint(o, "smtp.gaps.client"), 10);
    CHECK(jget(o, "tls.gap.client") != NULL);
    CHECK(!transcript_has(o, "QUIT"));
    CHECK(transcript_has(o, "250 2.0.0 Ok: queued as 4A2"));
    json_decref(o);
    keylog_destroy(kl);
}

/* Real TLS 1.2 and 1.3 connections between openssl s_client and s_server (the fixtures of
 * test_tlsdec.c), taken as port 465: their lines are not SMTP replies, but the client's are
 * commands, and all is read through decryption. */
static int
load_fixture(const char *dir, const char *name, uint8_t *out, size_t cap, size_t *len)
{
    static const char *const subdirs[] = {"unit/data", "tests/unit/data"};
    char path[1024];
    for (size_t i = 0; dir && i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", dir, subdirs[i], name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        *len = fread(out, 1, cap, f);
        fclose(f);
        if (*len > 0 && *len < cap)
            return 0;
        break;
    }
    fprintf(stderr, "cannot load fixture %s\n", name);
    check_failures++;
    return -1;
}

static void
test_tls_fixtures(const char *dir)
{
    static const char *const cases[] = {"tls12-aes256gcm", "tls13-chacha", "tls12-cbc-mte"};
    static uint8_t c[4096], v[4096], k[4096];
    size_t cn, vn, kn;
    char name[128];

    for (size_t i = 0; i < NSTEPS(cases); i++) {
        snprintf(name, sizeof name, "tlsdec-%s-client.bin", cases[i]);
        if (load_fixture(dir, name, c, sizeof c, &cn) < 0)
            return;
        snprintf(name, sizeof name, "tlsdec-%s-server.bin", cases[i]);
        if (load_fixture(dir, name, v, sizeof v, &vn) < 0)
            return;
        snprintf(name, sizeof name, "tlsdec-%s.keylog", cases[i]);
        if (load_fixture(dir, name, k, sizeof k, &kn) < 0)
            return;
        struct keylog *kl = keylog_create(0);
        CHECK(kl != NULL);
        if (!kl)
            return;
        keylog_load_buffer(kl, k, kn);
        struct smtp_config cfg = {0};
        cfg.implicit_tls = 1;
        cfg.keylog = kl;
        struct smtp_session *s = session(&cfg);
        /* ClientHello, the server's whole side, then the rest of the client's. */
        size_t first = 5 + ((size_t)c[3] << 8 | c[4]);
        smtp_feed(s, SMTP_CLIENT, c, first, ts(1));
        smtp_feed(s, SMTP_SERVER, v, vn, ts(2));
        smtp_feed(s, SMTP_CLIENT, c + first, cn - first, ts(3));
        json_t *o = finish(s, 10);
        CHECK(jtrue(o, "tls.decrypted"));
        CHECK_EQ_STR(jstr(o, "tls.decryption.status"), "ok");
        CHECK_EQ_INT(jint(o, "tls.decrypted_bytes.client"),
                     strlen("EHLO client.example.test\r\nNOOP\r\n"));
        CHECK(transcript_has(o, "EHLO client.example.test"));
        CHECK(transcript_has(o, "NOOP"));
        CHECK(transcript_has(o, "tset.elpmaxe.tneilc OLHE"));
        CHECK(decrypted_from(o, 0));
        CHECK_EQ_INT(jint(o, "commands.ehlo"), 1);
        CHECK_EQ_INT(jint(o, "commands.noop"), 1);
        CHECK_EQ_INT(jint(o, "smtp.bare_lf.server"), 2);
        CHECK_EQ_STR(jstr(o, "helo.name"), "client.example.test");
        CHECK_EQ_STR(jstr(o, "outcome"), "aborted");
        json_decref(o);
        keylog_destroy(kl);
    }
}

/* Allocation failures while decrypting: no crash, no leak. */
static void
test_tls_alloc_failures(void)
{
    static struct wire w;
    struct t13 t;
    struct smtp_config cfg = {0};

    wire_submission(&w, &t);
    struct keylog *kl = t13_keylog(&t, 0);
    cfg.keylog = kl;
    cfg.hash_bodies = 1;
    for (long n = 0; n < 400; n++) {
        mem_fail_after(n);
        struct smtp_session *s = smtp_create(&cfg, T0, T0 + HS);
        unsigned seed = 3;
        for (size_t i = 0; s && i < w.n; i++) {
            struct step st = {w.step[i].dir, (const char *)w.step[i].p, w.step[i].n,
                              w.step[i].t_ms};
            feed_step(s, &st, FEED_WHOLE, &seed);
        }
        if (s) {
            smtp_finish(s, ts(100));
            json_t *o = json_object();
            int rc = smtp_report(s, o);
            CHECK(rc == 0 || rc == -1);
            json_decref(o);
            smtp_destroy(s);
        }
    }
    mem_fail_after(-1);
    keylog_destroy(kl);
}

/* Every allocation failing in turn: no crash, no leak (the sanitizer build checks). */
static void
test_alloc_failures(void)
{
    for (long n = 0; n < 1500; n++) {
        mem_fail_after(n);
        struct smtp_session *s = smtp_create(NULL, T0, T0 + HS);
        if (s) {
            for (size_t i = 0; i < NSTEPS(dlg_submission); i++)
                feed_step(s, &dlg_submission[i], FEED_WHOLE, NULL);
            for (size_t i = 0; i < NSTEPS(dlg_bdat); i++)
                feed_step(s, &dlg_bdat[i], FEED_WHOLE, NULL);
            smtp_finish(s, ts(200));
            json_t *o = json_object();
            int rc = smtp_report(s, o);
            CHECK(rc == 0 || rc == -1);
            json_decref(o);
            smtp_destroy(s);
        }
    }
    mem_fail_after(-1);
}

/* ---- the reply decides: state changes apply only when the server accepts them ---- */

#define EHLO_PF "250-mx.example.net\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n"

/* Postfix's replies to a second MAIL inside a transaction: the first sender keeps it. */
static const struct step dlg_nested_mail[] = {
    S_(1, "220 mx.example.net ESMTP Postfix\r\n"),
    C_(2, "EHLO c.example.org\r\n"),
    S_(3, EHLO_PF),
    C_(4, "MAIL FROM:<a@example.org>\r\n"),
    S_(5, "250 2.1.0 Ok\r\n"),
    C_(6, "RCPT TO:<x@example.net>\r\n"),
    S_(7, "250 2.1.5 Ok\r\n"),
    C_(8, "MAIL FROM:<b@example.org>\r\n"),
    S_(9, "503 5.5.1 Error: nested MAIL command\r\n"),
    C_(10, "RCPT TO:<y@example.net>\r\n"),
    S_(11, "250 2.1.5 Ok\r\n"),
    C_(12, "DATA\r\n"),
    S_(13, "354 End data with <CR><LF>.<CR><LF>\r\n"),
    C_(14, "Subject: t\r\n\r\nhello\r\n.\r\n"),
    S_(15, "250 2.0.0 Ok: queued as ABC\r\n"),
    C_(16, "QUIT\r\n"),
    S_(17, "221 2.0.0 Bye\r\n"),
};

/* The same, pipelined: the client sends everything before any reply comes. */
static const struct step dlg_nested_mail_pipelined[] = {
    S_(1, "220 mx.example.net ESMTP Postfix\r\n"),
    C_(2, "EHLO c.example.org\r\n"),
    S_(3, EHLO_PF),
    C_(4, "MAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.net>\r\n"),
    S_(5, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"),
    C_(6, "MAIL FROM:<b@example.org>\r\nRCPT TO:<y@example.net>\r\nBDAT 7 LAST\r\nhello\r\n"),
    S_(7,
       "503 5.5.1 Error: nested MAIL command\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as ABC\r\n"),
    C_(8, "QUIT\r\n"),
    S_(9, "221 2.0.0 Bye\r\n"),
};

static void
check_nested(json_t *o)
{
    CHECK_EQ_INT((long long)json_array_size(jget(o, "transactions")), 2);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_from"), "a@example.org");
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.rcpt_accepted"), 2);
    CHECK_EQ_STR(jstr(o, "transactions.0.rcpt.1.to"), "y@example.net");
    CHECK_EQ_STR(jstr(o, "transactions.1.mail_from"), "b@example.org");
    CHECK_EQ_INT(jint(o, "transactions.1.mail_code"), 503);
    CHECK_EQ_STR(jstr(o, "transactions.1.ended_by"), "mail_rejected");
    CHECK(jget(o, "transactions.1.data") == NULL);
    CHECK_EQ_INT(jint(o, "transactions.1.rcpt_count"), 0);
    CHECK_EQ_INT(jint(o, "messages.delivered"), 1);
}

static void
test_nested_mail(void)
{
    for (int m = FEED_WHOLE; m <= FEED_RANDOM; m++) {
        json_t *o = run(NULL, dlg_nested_mail, NSTEPS(dlg_nested_mail), (enum feed_mode)m);
        check_nested(o);
        CHECK_EQ_STR(jstr(o, "commands.postfix"),
                     "ehlo=1 mail=1/2 rcpt=2 data=1 quit=1 commands=6/7");
        json_decref(o);
        o = run(NULL, dlg_nested_mail_pipelined, NSTEPS(dlg_nested_mail_pipelined),
                (enum feed_mode)m);
        check_nested(o);
        CHECK_EQ_STR(jstr(o, "transactions.0.data.verb"), "BDAT");
        json_decref(o);
    }
}

/* RFC 5321 4.1.4: a refused EHLO does not reset the transaction; an accepted one does. */
static const struct step dlg_ehlo_refused[] = {
    S_(1, "220 mx.example.net ESMTP Postfix\r\n"),
    C_(2, "EHLO c.example.org\r\n"),
    S_(3, EHLO_PF),
    C_(4, "MAIL FROM:<a@example.org>\r\n"),
    S_(5, "250 2.1.0 Ok\r\n"),
    C_(6, "RCPT TO:<x@example.net>\r\n"),
    S_(7, "250 2.1.5 Ok\r\n"),
    C_(8, "EHLO\r\n"),
    S_(9, "501 Syntax: EHLO hostname\r\n"),
    C_(10, "DATA\r\n"),
    S_(11, "354 End data with <CR><LF>.<CR><LF>\r\n"),
    C_(12, "Subject: t\r\n\r\nhello\r\n.\r\n"),
    S_(13, "250 2.0.0 Ok: queued as ABC\r\n"),
    C_(14, "MAIL FROM:<b@example.org>\r\n"),
    S_(15, "250 2.1.0 Ok\r\n"),
    C_(16, "EHLO c.example.org\r\n"),
    S_(17, EHLO_PF),
    C_(18, "QUIT\r\n"),
    S_(19, "221 2.0.0 Bye\r\n"),
};

static void
test_ehlo_refused(void)
{
    json_t *o = run(NULL, dlg_ehlo_refused, NSTEPS(dlg_ehlo_refused), FEED_BYTES);
    CHECK_EQ_STR(jstr(o, "transactions.0.ended_by"), "data");
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    CHECK_EQ_STR(jstr(o, "transactions.1.ended_by"), "helo");
    CHECK_EQ_STR(jstr(o, "commands.postfix"), "ehlo=2/3 mail=2 rcpt=1 data=1 quit=1 commands=7/8");
    json_decref(o);
}

/* RSET takes effect on its 250; a refused one leaves the transaction open. */
static const struct step dlg_rset_refused[] = {
    S_(1, "220 mx.example.net ESMTP\r\n"),
    C_(2, "HELO c.example.org\r\n"),
    S_(3, "250 mx.example.net\r\n"),
    C_(4, "MAIL FROM:<a@example.org>\r\n"),
    S_(5, "250 Ok\r\n"),
    C_(6, "RCPT TO:<x@example.net>\r\n"),
    S_(7, "250 Ok\r\n"),
    C_(8, "RSET\r\n"),
    S_(9, "500 not now\r\n"),
    C_(10, "DATA\r\n"),
    S_(11, "354 go\r\n"),
    C_(12, "hello\r\n.\r\n"),
    S_(13, "250 queued\r\n"),
};

static void
test_rset_refused(void)
{
    json_t *o = run(NULL, dlg_rset_refused, NSTEPS(dlg_rset_refused), FEED_WHOLE);
    CHECK_EQ_INT((long long)json_array_size(jget(o, "transactions")), 1);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_from"), "a@example.org");
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK(jget(o, "transactions.0.no_envelope") == NULL);
    json_decref(o);
}

/* A server that takes a message without any accepted envelope: the message is reported. */
static const struct step dlg_no_envelope[] = {
    S_(1, "220 lax.example.net ESMTP\r\n"),
    C_(2, "EHLO c.example.org\r\n"),
    S_(3, "250 lax.example.net\r\n"),
    C_(4, "DATA\r\n"),
    S_(5, "354 go ahead\r\n"),
    C_(6, "Subject: no envelope\r\n\r\nhello\r\n.\r\n"),
    S_(7, "250 queued as Q1\r\n"),
    C_(8, "MAIL FROM:<a@example.org>\r\n"),
    S_(9, "550 no\r\n"),
    C_(10, "RCPT TO:<x@example.net>\r\n"),
    S_(11, "250 ok anyway\r\n"),
    C_(12, "BDAT 5 LAST\r\nhello"),
    S_(13, "250 queued as Q2\r\n"),
    C_(14, "QUIT\r\n"),
    S_(15, "221 bye\r\n"),
};

static void
test_no_envelope(void)
{
    json_t *o = run(NULL, dlg_no_envelope, NSTEPS(dlg_no_envelope), FEED_RANDOM);
    CHECK(jtrue(o, "transactions.0.no_envelope"));
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_STR(jstr(o, "transactions.0.data.headers.subject"), "no envelope");
    CHECK_EQ_INT(jint(o, "transactions.1.mail_code"), 550);
    CHECK(jtrue(o, "transactions.1.no_envelope"));
    CHECK_EQ_INT(jint(o, "transactions.1.data.code"), 250);
    CHECK_EQ_INT(jint(o, "smtp.data_without_envelope"), 2);
    CHECK_EQ_INT(jint(o, "messages.delivered"), 2);
    json_decref(o);
}

/* RFC 3030 2: only "BDAT" SP digits [SP "LAST"] frames a chunk. */
static const struct step dlg_bdat_malformed[] = {
    S_(1, "220 mx.example.net ESMTP Postfix\r\n"),
    C_(2, "EHLO c.example.org\r\n"),
    S_(3, EHLO_PF),
    C_(4, "MAIL FROM:<a@example.org>\r\n"),
    S_(5, "250 2.1.0 Ok\r\n"),
    C_(6, "RCPT TO:<x@example.net>\r\n"),
    S_(7, "250 2.1.5 Ok\r\n"),
    C_(8, "BDAT 5 X\r\n"),
    S_(9, "501 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    C_(10, "BDAT 1234 SCRAMBLE\r\n"),
    S_(11, "501 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    C_(12, "BDAT -5\r\n"),
    S_(13, "501 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    C_(14, "BDAT 99999999999999999999999\r\n"),
    S_(15, "501 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    C_(16, "BDAT +7\r\n"),
    S_(17, "501 5.5.4 Syntax: BDAT count [LAST]\r\n"),
    C_(18, "BDAT 7  LAST \r\nhello\r\n"),
    S_(19, "250 2.0.0 Ok: queued as ABC\r\n"),
    C_(20, "QUIT\r\n"),
    S_(21, "221 2.0.0 Bye\r\n"),
};

static void
test_bdat_malformed(void)
{
    json_t *o = run(NULL, dlg_bdat_malformed, NSTEPS(dlg_bdat_malformed), FEED_BYTES);
    CHECK_EQ_INT(jint(o, "smtp.bdat_malformed"), 5);
    CHECK_EQ_INT(jint(o, "transactions.0.data.code"), 250);
    CHECK_EQ_INT(jint(o, "transactions.0.data.chunks"), 1);
    CHECK(jtrue(o, "smtp.quit_sent"));
    CHECK(jtrue(o, "smtp.quit_replied"));
    CHECK_EQ_STR(jstr(o, "outcome"), "delivered");
    CHECK(transcript_has(o, "QUIT"));
    CHECK_EQ_STR(jstr(o, "commands.postfix"), "ehlo=1 mail=1 rcpt=1 bdat=1/6 quit=1 commands=5/10");
    json_decref(o);
}

/* TLS is what the bytes say: on port 465 a server greeting in clear is read as SMTP. */
static const struct step dlg_465_plain[] = {
    S_(1, "220 mx.example.net ESMTP Postfix\r\n"),
    C_(2, "EHLO c.example.org\r\n"),
    S_(3, "250 mx.example.net\r\n"),
    C_(4, "MAIL FROM:<a@example.org>\r\n"),
    S_(5, "250 Ok\r\n"),
    C_(6, "QUIT\r\n"),
    S_(7, "221 Bye\r\n"),
};

/* STARTTLS answered 220, and the client goes on in clear. */
static const struct step dlg_starttls_plain[] = {
    S_(1, "220 mx.example.net ESMTP Postfix\r\n"),   C_(2, "EHLO c.example.org\r\n"),
    S_(3, "250-mx.example.net\r\n250 STARTTLS\r\n"), C_(4, "STARTTLS\r\n"),
    S_(5, "220 2.0.0 Ready to start TLS\r\n"),       C_(6, "EHLO c.example.org\r\n"),
    C_(7, "MAIL FROM:<a@example.org>\r\n"),
};

static void
test_tls_sniffed(void)
{
    struct smtp_config cfg = {.implicit_tls = 1};
    json_t *o = run(&cfg, dlg_465_plain, NSTEPS(dlg_465_plain), FEED_BYTES);
    CHECK_EQ_INT(jint(o, "banner.code"), 220);
    CHECK_EQ_STR(jstr(o, "banner.text"), "mx.example.net ESMTP Postfix");
    CHECK(jtrue(o, "tls.plaintext_on_tls_port"));
    CHECK(json_is_false(jget(o, "tls.encrypted")));
    CHECK(jget(o, "tls.records") == NULL);
    CHECK_EQ_STR(jstr(o, "transactions.0.mail_from"), "a@example.org");
    CHECK(jtrue(o, "smtp.quit_replied"));
    json_decref(o);

    o = run(NULL, dlg_starttls_plain, NSTEPS(dlg_starttls_plain), FEED_WHOLE);
    CHECK_EQ_STR(jstr(o, "tls.starttls"), "not_started");
    CHECK(json_is_false(jget(o, "tls.encrypted")));
    CHECK(transcript_has(o, "MAIL FROM:<a@example.org>"));
    CHECK_EQ_INT(jint(o, "helo.count"), 2);
    json_decref(o);
}

/* Secrets are redacted by what the client sends, whatever the server said or whether it
 * was seen. The user is "u" (dQ==), the password "pw" (cHc=). */
static const struct step dlg_auth_pipelined[] = {
    S_(1, "220 mx.example.net ESMTP\r\n"),
    C_(2, "EHLO c.example.org\r\n"),
    S_(3, EHLO_PF),
    C_(4, "AUTH LOGIN\r\ndQ==\r\ncHc=\r\n"),
    S_(5, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 Authentication successful\r\n"),
    C_(6, "AUTH XYZ\r\n"),
    S_(7, "504 5.5.4 Unsupported authentication mechanism\r\n"),
    C_(8, "dQ==\r\ncHc=\r\n"),
    S_(9, "502 5.5.2 Error: command not recognized\r\n502 5.5.2 Error: command not "
          "recognized\r\n"),
    C_(10, "MAIL FROM:<a@example.org>\r\n"),
    S_(11, "250 Ok\r\n"),
    C_(12, "AUTH LOGIN\r\n"),
    C_(13, "dQ==\r\n"),
    C_(14, "MAIL FROM:<b@example.org>\r\n"),
    C_(15, "AUTH PLAIN\r\n"),
    C_(16, "AHUAcHc="),
};

static void
test_auth_redaction_by_client(void)
{
    for (int m = FEED_WHOLE; m <= FEED_RANDOM; m++) {
        json_t *o = run(NULL, dlg_auth_pipelined, NSTEPS(dlg_auth_pipelined), (enum feed_mode)m);
        char *d = dump(o);
        CHECK(d && !strstr(d, "cHc=") && !strstr(d, "dQ==") && !strstr(d, "AHUAcHc="));
        free(d);
        CHECK_EQ_STR(jstr(o, "auth.0.result"), "success");
        CHECK_EQ_STR(jstr(o, "auth.0.user"), "u");
        /* The MAIL after the second exchange is a command again, and so is the one whose
         * AUTH was never answered. */
        CHECK(transcript_has(o, "MAIL FROM:<a@example.org>"));
        CHECK(transcript_has(o, "MAIL FROM:<b@example.org>"));
        json_decref(o);
    }
    struct smtp_config cfg = {.show_secrets = 1};
    json_t *o = run(&cfg, dlg_auth_pipelined, NSTEPS(dlg_auth_pipelined), FEED_WHOLE);
    CHECK(transcript_has(o, "cHc="));
    json_decref(o);
}

/* ---- a capture that began inside the dialogue (smtp_midstream) ---- */

/* Starts inside a body line: the tail of the message, its ".", the reply, QUIT. The bytes
 * before the first line end are dropped, body lines are not commands, and the 250 answers
 * the end of data; the same however the bytes are cut. */
static void
test_midstream(void)
{
    static const struct step steps[] = {
        C_(1, "ure below is in thousands.\r\nLine 041 of the report\r\n.\r\n"),
        S_(20, "250 2.0.0 Ok: queued as 4HxK\r\n"),
        C_(21, "QUIT\r\n"),
        S_(22, "221 2.0.0 Bye\r\n"),
    };
    for (int mode = FEED_WHOLE; mode <= FEED_RANDOM; mode++) {
        struct smtp_session *s = smtp_create(NULL, T0, T0 + HS);
        unsigned seed = 3;
        CHECK(s != NULL);
        if (!s)
            return;
        smtp_midstream(s);
        for (size_t i = 0; i < NSTEPS(steps); i++)
            feed_step(s, &steps[i], (enum feed_mode)mode, &seed);
        smtp_finish(s, ts(1000));
        json_t *o = json_object();
        CHECK_EQ_INT(smtp_report(s, o), 0);
        CHECK(jget(o, "banner") == NULL);
        CHECK_EQ_INT(json_integer_value(jget(o, "smtp.unknown_commands")), 0);
        CHECK_EQ_INT(json_integer_value(jget(o, "smtp.replies_without_command")), 0);
        CHECK_EQ_INT(json_integer_value(jget(o, "commands.quit")), 1);
        CHECK(json_is_true(jget(o, "smtp.quit_replied")));
        CHECK(json_is_true(jget(o, "transcript.0.body")));
        CHECK_EQ_INT(json_integer_value(jget(o, "transactions.0.data.code")), 250);
        CHECK(jget(o, "transactions.0.mail_from") == NULL);
        CHECK_EQ_STR(json_string_value(jget(o, "outcome")), "delivered");
        CHECK_EQ_STR(json_string_value(jget(o, "transcript.1.line")),
                     "250 2.0.0 Ok: queued as 4HxK");
        json_decref(o);
        smtp_destroy(s);
    }
    /* Replies first, starting on a line boundary: the first line is kept; a 220 before any
     * client byte is the greeting. */
    static const struct step greet[] = {
        S_(1, "220 mx.example.net ESMTP\r\n"),
        C_(2, "EHLO c.example.org\r\n"),
        S_(3, "250 mx.example.net\r\n"),
    };
    struct smtp_session *s = smtp_create(NULL, T0, T0 + HS);
    unsigned seed = 1;
    CHECK(s != NULL);
    if (!s)
        return;
    smtp_midstream(s);
    for (size_t i = 0; i < NSTEPS(greet); i++)
        feed_step(s, &greet[i], FEED_WHOLE, &seed);
    smtp_finish(s, ts(1000));
    json_t *o = json_object();
    CHECK_EQ_INT(smtp_report(s, o), 0);
    CHECK_EQ_INT(json_integer_value(jget(o, "banner.code")), 220);
    CHECK(jget(o, "banner.delay_ms") == NULL);
    CHECK_EQ_STR(json_string_value(jget(o, "helo.name")), "c.example.org");
    json_decref(o);
    smtp_destroy(s);
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "tests";
    clock_t t0 = clock();
    test_submission();
    test_auth_login_failure();
    test_relay_denied();
    test_pipelined();
    test_two_messages();
    test_bdat();
    test_starttls();
    test_starttls_refused();
    test_died_after_data();
    test_421_greeting();
    test_unknown_and_line_ends();
    test_held_bytes();
    test_chunking_equality();
    test_gaps();
    test_partial_lines();
    test_server_software();
    test_ehlo_details();
    test_implicit_tls();
    test_kept_messages();
    test_misc_paths();
    test_cap_huge_line();
    test_cap_pipelined_flood();
    test_cap_recipients();
    test_cap_long_reply();
    test_cap_auth_blob();
    test_cap_hold();
    test_tls_decrypted();
    test_tls_reset();
    test_tls_implicit_decrypted();
    test_tls_hole();
    test_tls_fixtures(dir);
    test_tls_alloc_failures();
    test_alloc_failures();
    test_nested_mail();
    test_ehlo_refused();
    test_rset_refused();
    test_no_envelope();
    test_bdat_malformed();
    test_tls_sniffed();
    test_auth_redaction_by_client();
    test_midstream();
    /* Hostile sizes must stay cheap: a generous bound even for sanitizer builds. */
    CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 60.0);
    CHECK_DONE();
}
