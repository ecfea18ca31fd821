/* test_tlsdec.c - key log reader and TLS record decryption: the RFC 8448 section 3 trace
 * (Simple 1-RTT Handshake), real TLS 1.2 and 1.3 connections recorded by
 * scripts/gen-tlsdec-fixtures.py, records sealed here for the cases a peer rarely sends,
 * and hostile input. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "jtree.h"
#include "keylog.h"
#include "mem.h"
#include "tlsdec.h"

/* ---- helpers ---------------------------------------------------------------------------- */

struct blob {
    uint8_t data[4096];
    size_t len;
};

static int
td_nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Hex digits with any spaces between byte pairs, as the RFC prints them. */
static size_t
td_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;

    while (*s) {
        if (*s == ' ') {
            s++;
            continue;
        }
        if (td_nibble(s[0]) < 0 || td_nibble(s[1]) < 0 || n == cap) {
            fprintf(stderr, "bad hex in test data near \"%.8s\"\n", s);
            check_failures++;
            return n;
        }
        out[n++] = (uint8_t)(td_nibble(s[0]) << 4 | td_nibble(s[1]));
        s += 2;
    }
    return n;
}

static int
td_load(const char *srcdir, const char *name, struct blob *b)
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
        if (b->len > 0 && b->len < sizeof b->data)
            return 0;
        break;
    }
    fprintf(stderr, "cannot load fixture %s\n", name);
    check_failures++;
    return -1;
}

static struct keylog *
td_keylog(const char *text)
{
    struct keylog *kl = keylog_create(0);

    if (kl)
        keylog_load_buffer(kl, (const uint8_t *)text, strlen(text));
    return kl;
}

/* One whole record out of a hex string: splits the header off and decrypts. */
static int
td_record(struct tlsdec *d, enum tls_dir dir, const char *hex, uint8_t *out, size_t *outlen,
          uint8_t *type)
{
    uint8_t rec[1024];
    size_t n = td_hex(hex, rec, sizeof rec);

    *outlen = 1024;
    if (n < 5)
        return TLSDEC_E_ARG;
    return tlsdec_record(d, dir, rec, rec + 5, n - 5, out, outlen, type);
}

/* ---- the key log -------------------------------------------------------------------------- */

#define CR_A "aa00000000000000000000000000000000000000000000000000000000000001"
#define CR_B "bb00000000000000000000000000000000000000000000000000000000000002"
#define S32 "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
#define S48 S32 "2122232425262728292a2b2c2d2e2f30"

static const char td_keylog_text[] =
    "# SSL/TLS secrets log file\n"
    "\n"
    "CLIENT_RANDOM " CR_A " " S48 "\n"
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET " CR_B " " S32 "\r\n"
    "SERVER_HANDSHAKE_TRAFFIC_SECRET\t" CR_B "  " S48 "\n"
    "EXPORTER_SECRET " CR_B " " S32 "\n"
    "CLIENT_EARLY_TRAFFIC_SECRET " CR_B " " S32 "\n"
    "CLIENT_RANDOM " CR_A "\n"                     /* two fields */
    "CLIENT_RANDOM " CR_A " " S32 "\n"             /* not 48 bytes */
    "CLIENT_TRAFFIC_SECRET_0 " CR_B " 0102\n"      /* too short */
    "CLIENT_TRAFFIC_SECRET_0 " CR_B "ff " S32 "\n" /* random too long */
    "SERVER_TRAFFIC_SECRET_0 " CR_B " " S32 "zz\n" /* not hex */
    "client_random " CR_A " " S48 "\n"             /* not a label */
    "CLIENT_RANDOM " CR_A " " S48 " extra\n"       /* four fields */
    "SERVER_TRAFFIC_SECRET_0 " CR_B " " S32;       /* no final newline */

static void
td_check_keylog_contents(const struct keylog *kl)
{
    struct keylog_stats st;
    uint8_t cra[32], crb[32], want[48], got[KEYLOG_MAX_SECRET];
    size_t len = 0;

    td_hex(CR_A, cra, sizeof cra);
    td_hex(CR_B, crb, sizeof crb);
    td_hex(S48, want, sizeof want);
    keylog_get_stats(kl, &st);
    CHECK_EQ_INT(st.lines, 15);
    CHECK_EQ_INT(st.comments, 1);
    CHECK_EQ_INT(st.secrets, 4);
    CHECK_EQ_INT(st.ignored, 2);
    CHECK_EQ_INT(st.bad, 7);
    CHECK_EQ_INT(st.connections, 2);
    CHECK_EQ_INT(st.replaced, 0);

    CHECK_EQ_INT(keylog_find(kl, cra, KEYLOG_CLIENT_RANDOM, got, &len), KEYLOG_OK);
    CHECK_EQ_INT(len, 48);
    CHECK(memcmp(got, want, 48) == 0);
    CHECK_EQ_INT(keylog_find(kl, crb, KEYLOG_CLIENT_HANDSHAKE, got, &len), KEYLOG_OK);
    CHECK_EQ_INT(len, 32);
    CHECK(memcmp(got, want, 32) == 0);
    CHECK_EQ_INT(keylog_find(kl, crb, KEYLOG_SERVER_HANDSHAKE, got, &len), KEYLOG_OK);
    CHECK_EQ_INT(len, 48);
    CHECK_EQ_INT(keylog_find(kl, crb, KEYLOG_SERVER_TRAFFIC_0, got, &len), KEYLOG_OK);
    CHECK_EQ_INT(len, 32);
    /* Bad lines left nothing behind. */
    CHECK_EQ_INT(keylog_find(kl, crb, KEYLOG_CLIENT_TRAFFIC_0, got, &len), KEYLOG_E_NOTFOUND);
    CHECK_EQ_INT(keylog_find(kl, cra, KEYLOG_CLIENT_HANDSHAKE, got, &len), KEYLOG_E_NOTFOUND);
    crb[31] ^= 1;
    CHECK_EQ_INT(keylog_find(kl, crb, KEYLOG_CLIENT_HANDSHAKE, got, &len), KEYLOG_E_NOTFOUND);
    CHECK_EQ_INT(keylog_find(kl, cra, KEYLOG_LABEL_COUNT, got, &len), KEYLOG_E_NOTFOUND);
}

static void
test_keylog_parse(void)
{
    struct keylog *kl = td_keylog(td_keylog_text);

    CHECK(kl != NULL);
    td_check_keylog_contents(kl);
    keylog_destroy(kl);
}

/* Any split of the input reads the same as the whole. */
static void
test_keylog_chunks(void)
{
    const uint8_t *text = (const uint8_t *)td_keylog_text;
    size_t len = strlen(td_keylog_text), i, step;

    for (step = 1; step <= 7; step += 3) {
        struct keylog *kl = keylog_create(0);
        CHECK(kl != NULL);
        if (!kl)
            return;
        for (i = 0; i < len; i += step)
            keylog_feed(kl, text + i, i + step <= len ? step : len - i);
        keylog_finish(kl);
        td_check_keylog_contents(kl);
        keylog_destroy(kl);
    }
}

static void
test_keylog_limits(void)
{
    char line[2048];
    struct keylog_stats st;
    uint8_t cr[32], got[KEYLOG_MAX_SECRET];
    size_t len, i;
    struct keylog *kl = keylog_create(3);

    CHECK(kl != NULL);
    if (!kl)
        return;
    /* Four client randoms into a table of three: the fourth is dropped, counted. Giving a
     * known one again replaces its secret. */
    for (i = 0; i < 5; i++) {
        snprintf(line, sizeof line, "CLIENT_RANDOM %064zx %s\n", i < 4 ? i : 1, S48);
        CHECK_EQ_INT(keylog_feed(kl, (const uint8_t *)line, strlen(line)), KEYLOG_OK);
    }
    /* An over-long line is cut and counted; the next line still reads. */
    memset(line, 'A', sizeof line);
    keylog_feed(kl, (const uint8_t *)line, sizeof line);
    keylog_feed(kl, (const uint8_t *)line, sizeof line);
    snprintf(line, sizeof line, "\nCLIENT_RANDOM %064x %s\n", 2, S48);
    keylog_feed(kl, (const uint8_t *)line, strlen(line));
    keylog_finish(kl);
    keylog_get_stats(kl, &st);
    CHECK_EQ_INT(st.connections, 3);
    CHECK_EQ_INT(st.dropped, 1);
    CHECK_EQ_INT(st.replaced, 2);
    CHECK_EQ_INT(st.bad, 1);
    CHECK_EQ_INT(st.lines, 7);
    memset(cr, 0, sizeof cr);
    cr[31] = 3;
    CHECK_EQ_INT(keylog_find(kl, cr, KEYLOG_CLIENT_RANDOM, got, &len), KEYLOG_E_NOTFOUND);
    cr[31] = 2;
    CHECK_EQ_INT(keylog_find(kl, cr, KEYLOG_CLIENT_RANDOM, got, &len), KEYLOG_OK);
    keylog_destroy(kl);

    /* Many entries: the table grows and every one is found again. */
    kl = keylog_create(0);
    CHECK(kl != NULL);
    if (!kl)
        return;
    for (i = 0; i < 3000; i++) {
        snprintf(line, sizeof line, "CLIENT_RANDOM %064zx %s\n", i * 7919, S48);
        keylog_feed(kl, (const uint8_t *)line, strlen(line));
    }
    for (i = 0; i < 3000; i++) {
        size_t v = i * 7919, k;
        memset(cr, 0, sizeof cr);
        for (k = 0; k < sizeof(size_t); k++)
            cr[31 - k] = (uint8_t)(v >> (8 * k));
        if (keylog_find(kl, cr, KEYLOG_CLIENT_RANDOM, got, &len) != KEYLOG_OK) {
            CHECK_FAIL("an entry went missing");
            break;
        }
    }
    keylog_get_stats(kl, &st);
    CHECK_EQ_INT(st.connections, 3000);
    keylog_destroy(kl);
    keylog_destroy(NULL);
}

static void
test_keylog_file(const char *srcdir)
{
    char path[1024], err[256];
    struct keylog_stats st;
    struct keylog *kl = keylog_create(0);
    int rc;

    CHECK(kl != NULL);
    if (!kl)
        return;
    /* argv[1] is the tests directory or the project root. */
    snprintf(path, sizeof path, "%s/unit/data/tlsdec-tls13-aes128gcm.keylog", srcdir);
    rc = keylog_load_file(kl, path, err, sizeof err);
    if (rc == KEYLOG_E_IO) {
        snprintf(path, sizeof path, "%s/tests/unit/data/tlsdec-tls13-aes128gcm.keylog", srcdir);
        rc = keylog_load_file(kl, path, err, sizeof err);
    }
    CHECK_EQ_INT(rc, KEYLOG_OK);
    keylog_get_stats(kl, &st);
    CHECK_EQ_INT(st.connections, 1);
    CHECK_EQ_INT(st.secrets, 4);
    CHECK_EQ_INT(st.comments, 1);
    CHECK(st.ignored >= 1); /* EXPORTER_SECRET and OpenSSL's *_TRAFFIC_SECRET_N */
    CHECK_EQ_INT(st.bad, 0);
    snprintf(path, sizeof path, "%s/unit/data/no-such-file.keylog", srcdir);
    CHECK_EQ_INT(keylog_load_file(kl, path, err, sizeof err), KEYLOG_E_IO);
    CHECK(strstr(err, "no-such-file") != NULL);
    keylog_destroy(kl);
}

/* ---- RFC 8448 section 3: Simple 1-RTT Handshake (TLS_AES_128_GCM_SHA256) ------------------ */

/* ClientHello.random and ServerHello.random of the trace. */
#define R_CLIENT_RANDOM "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7"
#define R_SERVER_RANDOM "a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e26928"
/* "{client} derive secret tls13 c hs traffic", "s hs traffic", "c ap traffic",
 * "s ap traffic". */
#define R_C_HS "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"
#define R_S_HS "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"
#define R_C_AP "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"
#define R_S_AP "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"

static const char r_server_flight[] = /* EE, Certificate, CertificateVerify, Finished */
    "17 03 03 02 a2 d1 ff 33 4a 56 f5 bf f6 59 4a 07 cc 87 b5 80 23 3f 50 0f"
    "45 e4 89 e7 f3 3a f3 5e df 78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca"
    "07 61 2e f9 f9 45 cb 96 0b 40 68 90 51 23 ea 78 b1 11 b4 29 ba 91 91 cd"
    "05 d2 a3 89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b"
    "d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9 b1 18 3e"
    "f3 ab 20 e3 7d 57 a6 b9 d7 47 76 09 ae e6 e1 22 a4 cf 51 42 73 25 25 0c"
    "7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d 2e d6 5b 0e 3c dd 0c ba e8"
    "bf 2d 0b 22 78 12 cb b3 60 98 72 55 cc 74 41 10 c4 53 ba a4 fc d6 10 92"
    "8d 80 98 10 e4 b7 ed 1a 8f d9 91 f0 6a a6 24 82 04 79 7e 36 a6 a7 3b 70"
    "a2 55 9c 09 ea d6 86 94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8"
    "94 41 ac 66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 45 96 c9 60 bd 59 6e ea"
    "52 0a 56 a8 d6 50 f5 63 aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e a5 e2 2f"
    "44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6 54 0c 84 83 8d 89"
    "f7 2c 24 46 1a ad 6d 26 f5 9e ca ba 9a cb bb 31 7b 66 d9 02 f4 f2 92 a3"
    "6a c1 b6 39 c6 37 ce 34 31 17 b6 59 62 22 45 31 7b 49 ee da 0c 62 58 f1"
    "00 d7 d9 61 ff b1 38 64 7e 92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd 7e"
    "1b 7a 6c 71 78 af 36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84"
    "c8 b0 37 8b f3 02 44 da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c"
    "f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7 d4 61 e6 6f 99 88 2b d8 9f"
    "c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80 f8 5d f8 81 ed be"
    "5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69 18 a3 96 fa 48 a1 81 d6 b6"
    "fa 4f 9d 62 d5 13 af bb 99 2f 2b 99 2f 67 f8 af e6 7f 76 91 3f a3 88 cb"
    "56 30 c8 ca 01 e0 c6 5d 11 c6 6a 1e 2a c4 c8 59 77 b7 c7 a6 99 9b bf 10"
    "dc 35 ae 69 f5 51 56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38"
    "eb ba 42 f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f"
    "60 f0 50 4d e9 3b 5b 84 5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd d5 02 78"
    "40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 d2 af 93 98 28 fd 4a e3"
    "79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da bf 02 53 fe 51 75 be 89 8e"
    "75 0e dc 53 37 0d 2b";
static const char r_server_ticket[] = /* NewSessionTicket */
    "17 03 03 00 de 3a 6b 8f 90 41 4a 97 d6 95 9c 34 87 68 0d e5 13 4a 2b 24"
    "0e 6c ff ac 11 6e 95 d4 1d 6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a"
    "01 59 40 25 2f 55 71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1"
    "70 ad 3c 73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0"
    "9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13 06 46 15"
    "13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84 00 25 db 2f 0a 77"
    "f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86 51 9d 86 cb ee ac 87 aa c3"
    "47 d1 43 f9 60 5d 64 f6 50 db 4d 02 3e 70 e9 52 ca 49 fe 51 37 12 1c 74"
    "bc 26 97 68 7e 24 87 46 d6 df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b"
    "3b 6c 67 79 b3 7b f1 59 85 68 4f";
static const char r_server_app[] =
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc"
    "32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8"
    "fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d";
static const char r_server_alert[] =
    "17 03 03 00 13 b5 8f d6 71 66 eb f5 99 d2 47 20 cf be 7e fa 7a 88 64 a9";
static const char r_client_finished[] =
    "17 03 03 00 35 75 ec 4d c2 38 cc e6 0b 29 80 44 a7 1e 21 9c 56 cc 77 b0"
    "51 7f e9 b9 3c 7a 4b fc 44 d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c"
    "ae ac ab 68 67 d7 26 c4 05 46";
static const char r_client_app[] =
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea"
    "42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b"
    "62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4";
static const char r_client_alert[] =
    "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3";
static const char r_server_finished[] =
    "14 00 00 20 9b 9b 14 1d 90 63 37 fb d2 cb dc e7 1d f4 de da 4a b4 2c 30"
    "95 72 cb 7f ff ee 54 54 b7 8f 07 18";

static const char r_keylog[] = "CLIENT_HANDSHAKE_TRAFFIC_SECRET " R_CLIENT_RANDOM " " R_C_HS "\n"
                               "SERVER_HANDSHAKE_TRAFFIC_SECRET " R_CLIENT_RANDOM " " R_S_HS "\n"
                               "CLIENT_TRAFFIC_SECRET_0 " R_CLIENT_RANDOM " " R_C_AP "\n"
                               "SERVER_TRAFFIC_SECRET_0 " R_CLIENT_RANDOM " " R_S_AP "\n";

static void
td_expect_label(const char *secret_hex, const char *label, const char *want_hex)
{
    uint8_t secret[32], want[32], got[32];
    size_t n = td_hex(want_hex, want, sizeof want);

    td_hex(secret_hex, secret, sizeof secret);
    CHECK_EQ_INT(tlsdec_expand_label(0x1301, secret, sizeof secret, label, NULL, 0, got, n),
                 TLSDEC_OK);
    if (memcmp(got, want, n) != 0) {
        fprintf(stderr, "HKDF-Expand-Label(%s, \"%s\") differs from RFC 8448\n", secret_hex, label);
        check_failures++;
    }
}

static void
test_rfc8448_labels(void)
{
    uint8_t s[32], out[16];

    /* "{server} derive write traffic keys for handshake data" */
    td_expect_label(R_S_HS, "key", "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc");
    td_expect_label(R_S_HS, "iv", "5d 31 3e b2 67 12 76 ee 13 00 0b 30");
    /* "{server} derive read traffic keys for handshake data" (the client's) */
    td_expect_label(R_C_HS, "key", "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01");
    td_expect_label(R_C_HS, "iv", "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f");
    /* "{client} derive write traffic keys for application data" */
    td_expect_label(R_C_AP, "key", "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51");
    td_expect_label(R_C_AP, "iv", "5b 78 92 3d ee 08 57 90 33 e5 23 d9");
    /* "{server} derive write traffic keys for application data" */
    td_expect_label(R_S_AP, "key", "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56");
    td_expect_label(R_S_AP, "iv", "cf 78 2b 88 dd 83 54 9a ad f1 e9 84");

    td_hex(R_S_AP, s, sizeof s);
    /* Only TLS 1.3 suites have a HKDF here. */
    CHECK_EQ_INT(tlsdec_expand_label(0xC02F, s, sizeof s, "key", NULL, 0, out, 16),
                 TLSDEC_E_UNSUPPORTED);
    CHECK_EQ_INT(tlsdec_expand_label(0x1301, NULL, 0, "key", NULL, 0, out, 16), TLSDEC_E_ARG);
}

static struct tlsdec *
td_rfc8448(const char *keylog_text, int *why)
{
    uint8_t cr[32], sr[32];
    struct keylog *kl = td_keylog(keylog_text);
    struct tlsdec *d;

    td_hex(R_CLIENT_RANDOM, cr, sizeof cr);
    td_hex(R_SERVER_RANDOM, sr, sizeof sr);
    d = tlsdec_create(TLSDEC_TLS13, 0x1301, cr, sr, kl, why);
    /* The decryptor keeps copies of what it needs. */
    keylog_destroy(kl);
    return d;
}

static void
test_rfc8448_records(void)
{
    uint8_t out[1024], want[64], fin[16], type;
    size_t n, i;
    struct tlsdec_counters c;
    int why = 1;
    struct tlsdec *d = td_rfc8448(r_keylog, &why);

    CHECK(d != NULL);
    CHECK_EQ_INT(why, TLSDEC_OK);
    if (!d)
        return;
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_SERVER), 0);

    /* The server's flight under its handshake keys: 657 bytes of handshake messages,
     * EncryptedExtensions first and Finished last. */
    CHECK_EQ_INT(td_record(d, TLS_SERVER, r_server_flight, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 22);
    CHECK_EQ_INT(n, 657);
    CHECK_EQ_INT(out[0], 8);
    n = td_hex(r_server_finished, want, sizeof want);
    CHECK(memcmp(out + 657 - n, want, n) == 0);
    /* Its Finished moved the server to application traffic secret 0. */
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_SERVER), 1);

    CHECK_EQ_INT(td_record(d, TLS_SERVER, r_server_ticket, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 22);
    CHECK_EQ_INT(n, 205);
    CHECK_EQ_INT(out[0], 4); /* new_session_ticket */
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_SERVER), 1);

    /* The trace's application data is the bytes 00 01 .. 31 each way. */
    for (i = 0; i < 50; i++)
        want[i] = (uint8_t)i;
    CHECK_EQ_INT(td_record(d, TLS_SERVER, r_server_app, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 23);
    CHECK_EQ_INT(n, 50);
    CHECK(memcmp(out, want, 50) == 0);
    CHECK_EQ_INT(td_record(d, TLS_SERVER, r_server_alert, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 21);
    CHECK_EQ_INT(n, 2);
    CHECK(out[0] == 1 && out[1] == 0); /* warning, close_notify */

    CHECK_EQ_INT(td_record(d, TLS_CLIENT, r_client_finished, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 22);
    CHECK_EQ_INT(n, 36);
    n = td_hex("14 00 00 20 a8 ec 43 6d 67 76 34 ae 52 5a c1 fc", fin, sizeof fin);
    CHECK(memcmp(out, fin, n) == 0);
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_CLIENT), 1);
    CHECK_EQ_INT(td_record(d, TLS_CLIENT, r_client_app, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 23);
    CHECK_EQ_INT(n, 50);
    CHECK(memcmp(out, want, 50) == 0);
    CHECK_EQ_INT(td_record(d, TLS_CLIENT, r_client_alert, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 21);

    tlsdec_get_counters(d, TLS_SERVER, &c);
    CHECK_EQ_INT(c.decrypted, 4);
    CHECK_EQ_INT(c.failed, 0);
    tlsdec_get_counters(d, TLS_CLIENT, &c);
    CHECK_EQ_INT(c.decrypted, 3);
    tlsdec_destroy(d);
    tlsdec_destroy(NULL);
}

/* Without the handshake secrets, the first application record is found by trying the
 * application keys when the handshake ones are missing. */
static void
test_rfc8448_app_only(void)
{
    static const char app_only[] = "CLIENT_TRAFFIC_SECRET_0 " R_CLIENT_RANDOM " " R_C_AP "\n"
                                   "SERVER_TRAFFIC_SECRET_0 " R_CLIENT_RANDOM " " R_S_AP "\n";
    uint8_t out[1024], type;
    size_t n;
    struct tlsdec_counters c;
    int why;
    struct tlsdec *d = td_rfc8448(app_only, &why);

    CHECK(d != NULL);
    if (!d)
        return;
    CHECK_EQ_INT(td_record(d, TLS_SERVER, r_server_flight, out, &n, &type), TLSDEC_E_NOKEYS);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(td_record(d, TLS_SERVER, r_server_ticket, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(td_record(d, TLS_SERVER, r_server_app, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(n, 50);
    CHECK_EQ_INT(td_record(d, TLS_CLIENT, r_client_finished, out, &n, &type), TLSDEC_E_NOKEYS);
    CHECK_EQ_INT(td_record(d, TLS_CLIENT, r_client_app, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 23);
    tlsdec_get_counters(d, TLS_SERVER, &c);
    CHECK_EQ_INT(c.failed, 1);
    CHECK_EQ_INT(c.decrypted, 2);
    tlsdec_destroy(d);
}

static void
test_rfc8448_hostile(void)
{
    uint8_t rec[1024], out[1024], type;
    size_t len, n;
    int why = 0;
    char bad_keylog[sizeof r_keylog];
    struct tlsdec *d;
    size_t i;

    /* A wrong secret: authentication fails and nothing of the record comes out. */
    memcpy(bad_keylog, r_keylog, sizeof r_keylog);
    bad_keylog[strlen("CLIENT_HANDSHAKE_TRAFFIC_SECRET ") + 65 + 3] ^= 1;
    d = td_rfc8448(bad_keylog, &why);
    CHECK(d != NULL);
    if (d) {
        memset(out, 0xEE, sizeof out);
        CHECK_EQ_INT(td_record(d, TLS_CLIENT, r_client_finished, out, &n, &type), TLSDEC_E_AUTH);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(type, 0);
        for (i = 0; i < 53 && out[i] == 0; i++)
            ;
        CHECK_EQ_INT(i, 53);
        tlsdec_destroy(d);
    }

    d = td_rfc8448(r_keylog, &why);
    CHECK(d != NULL);
    if (!d)
        return;
    len = td_hex(r_client_finished, rec, sizeof rec);
    /* Truncated: the header promises more than there is. */
    n = sizeof out;
    CHECK_EQ_INT(tlsdec_record(d, TLS_CLIENT, rec, rec + 5, len - 6, out, &n, &type),
                 TLSDEC_E_LENGTH);
    /* Shorter than a tag plus the content type. */
    rec[3] = 0;
    rec[4] = 16;
    n = sizeof out;
    CHECK_EQ_INT(tlsdec_record(d, TLS_CLIENT, rec, rec + 5, 16, out, &n, &type), TLSDEC_E_LENGTH);
    /* Over RFC 8446 5.2's 2^14 + 256. */
    {
        static uint8_t big[16384 + 257 + 5];
        static uint8_t big_out[sizeof big];
        big[0] = 23;
        big[1] = 3;
        big[2] = 3;
        big[3] = (uint8_t)((sizeof big - 5) >> 8);
        big[4] = (uint8_t)(sizeof big - 5);
        n = sizeof big_out;
        CHECK_EQ_INT(tlsdec_record(d, TLS_CLIENT, big, big + 5, sizeof big - 5, big_out, &n, &type),
                     TLSDEC_E_LENGTH);
    }
    /* A flipped bit anywhere, header included, fails; the sequence number stays, so the
     * genuine record decrypts after. */
    len = td_hex(r_client_finished, rec, sizeof rec);
    for (i = 0; i < len; i += 7) {
        rec[i] ^= 0x10;
        n = sizeof out;
        CHECK(tlsdec_record(d, TLS_CLIENT, rec, rec + 5, len - 5, out, &n, &type) != TLSDEC_OK);
        rec[i] ^= 0x10;
    }
    n = sizeof out;
    CHECK_EQ_INT(tlsdec_record(d, TLS_CLIENT, rec, rec + 5, len - 5, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(n, 36);
    /* Output buffer too small, NULL arguments, a bad direction. */
    n = 10;
    CHECK_EQ_INT(tlsdec_record(d, TLS_CLIENT, rec, rec + 5, len - 5, out, &n, &type), TLSDEC_E_ARG);
    n = sizeof out;
    CHECK_EQ_INT(tlsdec_record(d, (enum tls_dir)2, rec, rec + 5, len - 5, out, &n, &type),
                 TLSDEC_E_ARG);
    CHECK_EQ_INT(tlsdec_record(NULL, TLS_CLIENT, rec, rec + 5, len - 5, out, &n, &type),
                 TLSDEC_E_ARG);
    /* Outer types other than application_data pass through in TLS 1.3 (a CCS for
     * middleboxes, RFC 8446 D.4). */
    rec[0] = 20;
    rec[3] = 0;
    rec[4] = 1;
    rec[5] = 1;
    n = sizeof out;
    CHECK_EQ_INT(tlsdec_record(d, TLS_CLIENT, rec, rec + 5, 1, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 20);
    CHECK_EQ_INT(n, 1);
    tlsdec_destroy(d);
}

static void
test_create_errors(void)
{
    uint8_t cr[32], sr[32];
    struct keylog *kl = td_keylog(r_keylog);
    struct tlsdec *d;
    int why = 0;

    td_hex(R_CLIENT_RANDOM, cr, sizeof cr);
    td_hex(R_SERVER_RANDOM, sr, sizeof sr);
    /* A TLS 1.2 connection with only TLS 1.3 secrets logged. */
    CHECK(tlsdec_create(TLSDEC_TLS12, 0xC02F, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_NOKEYS);
    /* Secrets of 32 bytes do not fit a SHA-384 suite. */
    CHECK(tlsdec_create(TLSDEC_TLS13, 0x1302, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_NOKEYS);
    /* A client random the key log does not know. */
    cr[0] ^= 1;
    CHECK(tlsdec_create(TLSDEC_TLS13, 0x1301, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_NOKEYS);
    cr[0] ^= 1;
    /* Suites and versions not handled, and suites of the other version. */
    CHECK(tlsdec_create(TLSDEC_TLS13, 0x1304, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_UNSUPPORTED);
    CHECK(tlsdec_create(TLSDEC_TLS12, 0x1301, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_UNSUPPORTED);
    CHECK(tlsdec_create(TLSDEC_TLS13, 0xC02F, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_UNSUPPORTED);
    CHECK(tlsdec_create(0x0302, 0xC013, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_UNSUPPORTED);
    CHECK(tlsdec_create(0x0300, 0x0005, cr, sr, kl, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_UNSUPPORTED);
    CHECK(tlsdec_create(TLSDEC_TLS13, 0x1301, cr, sr, NULL, &why) == NULL);
    CHECK_EQ_INT(why, TLSDEC_E_ARG);
    /* The reason is optional. */
    d = tlsdec_create(TLSDEC_TLS13, 0x1301, cr, sr, kl, NULL);
    CHECK(d != NULL);
    tlsdec_destroy(d);

    CHECK_EQ_STR(tlsdec_error_name(TLSDEC_OK), "ok");
    CHECK_EQ_STR(tlsdec_error_name(TLSDEC_E_AUTH), "auth_failed");
    CHECK_EQ_STR(tlsdec_error_name(TLSDEC_E_ARG), "bad_argument");
    CHECK_EQ_STR(tlsdec_error_name(-TLSDEC_STATUS_COUNT), "unknown");
    CHECK_EQ_STR(tlsdec_error_name(1), "unknown");
    keylog_destroy(kl);
}

/* ---- records sealed here, under the RFC 8448 keys ------------------------------------------ */

/* TLS 1.3 AES-128-GCM protection of inner (content + type + padding) with seq. */
static size_t
td_seal13(const uint8_t *key, const uint8_t *iv, uint64_t seq, const uint8_t *inner, size_t n,
          uint8_t *rec)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t nonce[12];
    int l = 0, i;

    memcpy(nonce, iv, 12);
    for (i = 0; i < 8; i++)
        nonce[11 - i] ^= (uint8_t)(seq >> (8 * i));
    rec[0] = 23;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = (uint8_t)((n + 16) >> 8);
    rec[4] = (uint8_t)(n + 16);
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &l, rec, 5) != 1 ||
        EVP_EncryptUpdate(ctx, rec + 5, &l, inner, (int)n) != 1 ||
        EVP_EncryptFinal_ex(ctx, rec + 5 + n, &l) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, rec + 5 + n) != 1) {
        CHECK_FAIL("sealing failed");
        n = 0;
    }
    EVP_CIPHER_CTX_free(ctx);
    return 5 + n + 16;
}

struct td_keys {
    uint8_t key[16], iv[12];
};

static void
td_keys_from(const uint8_t *secret, struct td_keys *k)
{
    tlsdec_expand_label(0x1301, secret, 32, "key", NULL, 0, k->key, 16);
    tlsdec_expand_label(0x1301, secret, 32, "iv", NULL, 0, k->iv, 12);
}

static int
td_open(struct tlsdec *d, enum tls_dir dir, const uint8_t *rec, size_t len, uint8_t *out, size_t *n,
        uint8_t *type)
{
    *n = 1024;
    return tlsdec_record(d, dir, rec, rec + 5, len - 5, out, n, type);
}

static void
test_sealed13(void)
{
    uint8_t hs[32], ap[32], ap1[32], inner[64], rec[128], out[1024], type;
    struct td_keys khs, kap, kap1;
    size_t len, n;
    int why;
    struct tlsdec *d = td_rfc8448(r_keylog, &why);

    CHECK(d != NULL);
    if (!d)
        return;
    td_hex(R_C_HS, hs, sizeof hs);
    td_hex(R_C_AP, ap, sizeof ap);
    td_keys_from(hs, &khs);
    td_keys_from(ap, &kap);
    tlsdec_expand_label(0x1301, ap, 32, "traffic upd", NULL, 0, ap1, 32);
    td_keys_from(ap1, &kap1);

    /* A Finished cut across two records: the keys change after the second. */
    memset(inner, 0, sizeof inner);
    inner[0] = 20;
    inner[3] = 32;
    inner[10] = 22;
    len = td_seal13(khs.key, khs.iv, 0, inner, 11, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(n, 10);
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_CLIENT), 0);
    memset(inner, 0, sizeof inner);
    inner[26] = 22;
    len = td_seal13(khs.key, khs.iv, 1, inner, 27 + 20, rec); /* with 20 bytes of padding */
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(n, 26);
    CHECK_EQ_INT(type, 22);
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_CLIENT), 1);

    /* Application data, then a KeyUpdate (RFC 8446 4.6.3) and data under the next keys. */
    memcpy(inner, "MAIL FROM:<>\r\n\x17", 15);
    len = td_seal13(kap.key, kap.iv, 0, inner, 15, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(type, 23);
    CHECK_EQ_INT(n, 14);
    CHECK(memcmp(out, "MAIL FROM:<>\r\n", 14) == 0);
    memcpy(inner, "\x18\x00\x00\x01\x00\x16", 6);
    len = td_seal13(kap.key, kap.iv, 1, inner, 6, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_CLIENT), 2);
    memcpy(inner, "DATA\r\n\x17", 7);
    len = td_seal13(kap1.key, kap1.iv, 0, inner, 7, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(n, 6);
    CHECK(memcmp(out, "DATA\r\n", 6) == 0);

    /* All zeros: authentic, but no content type (RFC 8446 5.4). */
    memset(inner, 0, sizeof inner);
    len = td_seal13(kap1.key, kap1.iv, 1, inner, 8, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_E_NOTYPE);
    CHECK_EQ_INT(n, 0);
    /* It did use up sequence number 1. */
    memcpy(inner, "QUIT\r\n\x17", 7);
    len = td_seal13(kap1.key, kap1.iv, 2, inner, 7, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    /* Two damaged records of the peer's: the one after them still decrypts. */
    len = td_seal13(kap1.key, kap1.iv, 3, inner, 7, rec);
    rec[9] ^= 4;
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_E_AUTH);
    len = td_seal13(kap1.key, kap1.iv, 4, inner, 7, rec);
    rec[len - 1] ^= 4;
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_E_AUTH);
    len = td_seal13(kap1.key, kap1.iv, 5, inner, 7, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    len = td_seal13(kap1.key, kap1.iv, 6, inner, 7, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK(n == 6 && memcmp(out, "QUIT\r\n", 6) == 0);
    tlsdec_destroy(d);

    /* A KeyUpdate whose record was lost to the capture: the record after it is tried under
     * the next keys too. */
    d = td_rfc8448(r_keylog, &why);
    CHECK(d != NULL);
    if (!d)
        return;
    memcpy(inner, "\x14\x00\x00\x00\x16", 5);
    len = td_seal13(khs.key, khs.iv, 0, inner, 5, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_CLIENT), 1);
    memcpy(inner, "RSET\r\n\x17", 7);
    len = td_seal13(kap1.key, kap1.iv, 0, inner, 7, rec);
    CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
    CHECK_EQ_INT(tlsdec_epoch(d, TLS_CLIENT), 2);
    CHECK(n == 6 && memcmp(out, "RSET\r\n", 6) == 0);
    tlsdec_destroy(d);
}

/* ---- TLS 1.2 CBC records sealed here ------------------------------------------------------- */

/* The key block through OpenSSL's own TLS1-PRF, a second implementation to hold the
 * decryptor's against (RFC 5246 6.3). */
static int
td_key_block12(const uint8_t *master, const uint8_t *cr, const uint8_t *sr, uint8_t *out, size_t n)
{
    static const char label[] = "key expansion";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "TLS1-PRF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    uint8_t seed[13 + 64];
    OSSL_PARAM p[4];
    int ok;

    memcpy(seed, label, 13);
    memcpy(seed + 13, sr, 32);
    memcpy(seed + 45, cr, 32);
    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)master, 48);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed);
    p[3] = OSSL_PARAM_construct_end();
    ok = ctx && EVP_KDF_derive(ctx, out, n, p) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : -1;
}

/* TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, client record with sequence number 0: MAC-then-encrypt
 * (RFC 5246 6.2.3.2) or encrypt-then-MAC (RFC 7366), with a wrong padding byte if asked. */
static size_t
td_seal_cbc(const uint8_t *kb, int etm, const char *text, int bad_padding, uint8_t *rec)
{
    const uint8_t *mac_key = kb, *key = kb + 40;
    uint8_t plain[128], macin[13 + 160], iv[16];
    size_t n = strlen(text), total = n, pad, got = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int l = 0;

    memset(iv, 0x5a, sizeof iv);
    /* seq_num 0, type, version; the length goes in once known. */
    memset(macin, 0, 8);
    macin[8] = 23;
    macin[9] = 3;
    macin[10] = 3;
    memcpy(plain, text, n);
    if (!etm) {
        macin[11] = (uint8_t)(n >> 8);
        macin[12] = (uint8_t)n;
        memcpy(macin + 13, plain, n);
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, mac_key, 20, macin, 13 + n, plain + n, 20,
                  &got);
        total += 20;
    }
    pad = 15 - total % 16;
    memset(plain + total, (int)pad, pad);
    if (bad_padding && pad)
        plain[total] ^= 0x40;
    plain[total + pad] = (uint8_t)pad;
    total += pad + 1;
    memcpy(rec + 5, iv, 16);
    if (!ctx || EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv) != 1 ||
        EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
        EVP_EncryptUpdate(ctx, rec + 5 + 16, &l, plain, (int)total) != 1)
        CHECK_FAIL("CBC sealing failed");
    EVP_CIPHER_CTX_free(ctx);
    total += 16;
    if (etm) {
        macin[11] = (uint8_t)(total >> 8);
        macin[12] = (uint8_t)total;
        memcpy(macin + 13, rec + 5, total);
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, mac_key, 20, macin, 13 + total, rec + 5 + total,
                  20, &got);
        total += 20;
    }
    rec[0] = 23;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = (uint8_t)(total >> 8);
    rec[4] = (uint8_t)total;
    return 5 + total;
}

static void
test_sealed_cbc(void)
{
    /* 17 bytes: padding in both layouts (10 bytes after a MAC, 14 without). */
    static const char text[] = "RCPT TO:<a@b.c>\r\n";
    uint8_t master[48], cr[32], sr[32], kb[72], rec[256], out[1024], type;
    char line[256];
    size_t i, len, n;
    struct keylog *kl;
    int etm, why;

    for (i = 0; i < 48; i++)
        master[i] = (uint8_t)(0x80 + i);
    memset(cr, 0x11, sizeof cr);
    memset(sr, 0x22, sizeof sr);
    CHECK_EQ_INT(td_key_block12(master, cr, sr, kb, sizeof kb), 0);
    n = (size_t)snprintf(line, sizeof line, "CLIENT_RANDOM ");
    for (i = 0; i < 32; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%02x", cr[i]);
    line[n++] = ' ';
    for (i = 0; i < 48; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%02x", master[i]);
    line[n] = '\0';
    kl = td_keylog(line);

    for (etm = 0; etm < 2; etm++) {
        static const uint8_t ccs[6] = {20, 3, 3, 0, 1, 1};
        struct tlsdec *d = tlsdec_create(TLSDEC_TLS12, 0xC013, cr, sr, kl, &why);
        CHECK(d != NULL);
        if (!d)
            continue;
        n = sizeof out;
        CHECK_EQ_INT(tlsdec_record(d, TLS_CLIENT, ccs, ccs + 5, 1, out, &n, &type), TLSDEC_OK);
        CHECK_EQ_INT(type, 20);
        CHECK_EQ_INT(tlsdec_epoch(d, TLS_CLIENT), 1);
        /* Padding bytes that are not all equal to the padding length: refused even though
         * in MAC-then-encrypt the MAC does not cover them. */
        len = td_seal_cbc(kb, etm, text, 1, rec);
        CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_E_AUTH);
        len = td_seal_cbc(kb, etm, text, 0, rec);
        CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_OK);
        CHECK_EQ_INT(type, 23);
        CHECK(n == strlen(text) && memcmp(out, text, n) == 0);
        /* The same record again: sequence number 1 now, so its MAC no longer fits. */
        CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len, out, &n, &type), TLSDEC_E_AUTH);
        /* Not a whole number of blocks. */
        rec[4]--;
        CHECK_EQ_INT(td_open(d, TLS_CLIENT, rec, len - 1, out, &n, &type), TLSDEC_E_LENGTH);
        tlsdec_destroy(d);
    }
    keylog_destroy(kl);
}

/* ---- real connections ------------------------------------------------------------------- */

struct td_hello {
    uint8_t client_random[32], server_random[32];
    uint16_t version, suite;
    int etm; /* the ServerHello carries encrypt_then_mac (RFC 7366) */
};

static unsigned
td_u16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* The randoms, version and suite out of the first record of each direction. */
static int
td_parse_hellos(const struct blob *c, const struct blob *s, struct td_hello *h)
{
    size_t i, end;

    memset(h, 0, sizeof *h);
    if (c->len < 43 || c->data[0] != 22 || c->data[5] != 1 || s->len < 44 || s->data[0] != 22 ||
        s->data[5] != 2)
        return -1;
    memcpy(h->client_random, c->data + 11, 32);
    memcpy(h->server_random, s->data + 11, 32);
    h->version = (uint16_t)td_u16(s->data + 9);
    i = 44 + s->data[43];
    end = 5 + td_u16(s->data + 3);
    if (end > s->len || i + 5 > end)
        return -1;
    h->suite = (uint16_t)td_u16(s->data + i);
    i += 3;
    i += 2;
    while (i + 4 <= end) {
        unsigned type = td_u16(s->data + i), len = td_u16(s->data + i + 2);
        if (type == 43 && len == 2 && i + 6 <= end)
            h->version = (uint16_t)td_u16(s->data + i + 4);
        if (type == 22)
            h->etm = 1;
        i += 4 + len;
    }
    return 0;
}

struct td_side {
    uint8_t app[512]; /* application data, concatenated */
    size_t app_len;
    uint8_t alert[2];
    int alerts;
    int handshakes; /* protected records holding handshake messages */
    int failures;
    int first_inner; /* inner type of the first protected record */
};

/* Every record after the first of one direction through the decryptor. */
static void
td_run(struct tlsdec *d, enum tls_dir dir, const struct blob *b, struct td_side *side)
{
    uint8_t out[TLSDEC_MAX_RECORD], type;
    size_t off, n, len;
    struct tlsdec_counters before, after;
    int first = 1;

    memset(side, 0, sizeof *side);
    side->first_inner = -1;
    off = 5 + td_u16(b->data + 3);
    while (off + 5 <= b->len) {
        len = td_u16(b->data + off + 3);
        if (off + 5 + len > b->len) {
            CHECK_FAIL("fixture ends inside a record");
            break;
        }
        tlsdec_get_counters(d, dir, &before);
        n = sizeof out;
        if (tlsdec_record(d, dir, b->data + off, b->data + off + 5, len, out, &n, &type) !=
            TLSDEC_OK) {
            side->failures++;
        } else {
            tlsdec_get_counters(d, dir, &after);
            if (after.decrypted > before.decrypted) {
                if (first)
                    side->first_inner = type;
                first = 0;
                if (type == 22)
                    side->handshakes++;
            }
            if (type == 23 && side->app_len + n <= sizeof side->app) {
                memcpy(side->app + side->app_len, out, n);
                side->app_len += n;
            } else if (type == 21 && n == 2 && after.decrypted > before.decrypted) {
                memcpy(side->alert, out, 2);
                side->alerts++;
            }
        }
        off += 5 + len;
    }
    CHECK_EQ_INT(off, b->len);
}

/* What s_server -rev answers to each line: the line reversed, then a newline. */
static const char td_client_text[] = "EHLO client.example.test\r\nNOOP\r\n";
static const char td_server_text[] = "tset.elpmaxe.tneilc OLHE\nPOON\n";

static void
test_fixture(const char *srcdir, const char *name, uint16_t version, uint16_t suite,
             int key_updates, int etm)
{
    char file[256];
    static struct blob c, s, k;
    struct td_hello h;
    struct td_side cs, ss;
    struct keylog *kl;
    struct tlsdec *d;
    int why = 0, dir;

    fprintf(stderr, "fixture %s\n", name);
    snprintf(file, sizeof file, "tlsdec-%s-client.bin", name);
    if (td_load(srcdir, file, &c) < 0)
        return;
    snprintf(file, sizeof file, "tlsdec-%s-server.bin", name);
    if (td_load(srcdir, file, &s) < 0)
        return;
    snprintf(file, sizeof file, "tlsdec-%s.keylog", name);
    if (td_load(srcdir, file, &k) < 0)
        return;
    CHECK_EQ_INT(td_parse_hellos(&c, &s, &h), 0);
    CHECK_EQ_INT(h.version, version);
    CHECK_EQ_INT(h.suite, suite);
    if (version == TLSDEC_TLS12 && etm >= 0)
        CHECK_EQ_INT(h.etm, etm);
    kl = keylog_create(0);
    CHECK(kl != NULL);
    if (!kl)
        return;
    keylog_load_buffer(kl, k.data, k.len);
    d = tlsdec_create(h.version, h.suite, h.client_random, h.server_random, kl, &why);
    CHECK_EQ_INT(why, TLSDEC_OK);
    CHECK(d != NULL);
    if (!d) {
        keylog_destroy(kl);
        return;
    }
    td_run(d, TLS_CLIENT, &c, &cs);
    td_run(d, TLS_SERVER, &s, &ss);
    CHECK_EQ_INT(cs.failures, 0);
    CHECK_EQ_INT(ss.failures, 0);
    CHECK(cs.app_len == strlen(td_client_text) && memcmp(cs.app, td_client_text, cs.app_len) == 0);
    CHECK(ss.app_len == strlen(td_server_text) && memcmp(ss.app, td_server_text, ss.app_len) == 0);
    if (cs.app_len != strlen(td_client_text) || ss.app_len != strlen(td_server_text))
        fprintf(stderr, "client sent \"%.*s\", server \"%.*s\"\n", (int)cs.app_len, cs.app,
                (int)ss.app_len, ss.app);
    /* The client ends with close_notify, encrypted. */
    CHECK_EQ_INT(cs.alerts, 1);
    CHECK(cs.alert[0] == 1 && cs.alert[1] == 0);
    /* The first protected record of each side is a handshake message: Finished in
     * TLS 1.2, EncryptedExtensions or Finished in TLS 1.3. */
    CHECK_EQ_INT(cs.first_inner, 22);
    CHECK_EQ_INT(ss.first_inner, 22);
    for (dir = 0; dir < 2; dir++) {
        int want = version == TLSDEC_TLS13 ? 1 + key_updates : 1;
        CHECK_EQ_INT(tlsdec_epoch(d, (enum tls_dir)dir), want);
    }

    /* The same connection with one wrong bit in the key log: every protected record fails,
     * none yields bytes. */
    tlsdec_destroy(d);
    keylog_destroy(kl);
    /* The last hex digit of the last line. */
    k.data[k.len - 2] = k.data[k.len - 2] == '0' ? '1' : '0';
    if (version == TLSDEC_TLS12) {
        kl = keylog_create(0);
        keylog_load_buffer(kl, k.data, k.len);
        d = tlsdec_create(h.version, h.suite, h.client_random, h.server_random, kl, &why);
        CHECK(d != NULL);
        if (d) {
            td_run(d, TLS_CLIENT, &c, &cs);
            td_run(d, TLS_SERVER, &s, &ss);
            CHECK(cs.failures > 0 && ss.failures > 0);
            CHECK_EQ_INT(cs.app_len, 0);
            CHECK_EQ_INT(ss.app_len, 0);
        }
        tlsdec_destroy(d);
        keylog_destroy(kl);
    }
}

/* OpenSSL logs the secrets after a KeyUpdate as CLIENT_TRAFFIC_SECRET_N: the "traffic upd"
 * derivation must reach the same value. */
static void
test_fixture_traffic_update(const char *srcdir)
{
    static struct blob k;
    uint8_t s0[32], want[32], got[32];
    char line[512];
    const char *p, *q, *end;
    int found = 0;

    if (td_load(srcdir, "tlsdec-tls13-aes128gcm.keylog", &k) < 0)
        return;
    k.data[k.len] = '\0';
    for (p = (const char *)k.data; *p; p = *end ? end + 1 : end) {
        end = strchr(p, '\n');
        if (!end)
            end = p + strlen(p);
        if ((size_t)(end - p) >= sizeof line)
            continue;
        memcpy(line, p, (size_t)(end - p));
        line[end - p] = '\0';
        q = strchr(line, ' ');
        if (!q || strlen(q) < 1 + 64 + 1 + 64)
            continue;
        if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) {
            char hex[65];
            memcpy(hex, q + 66, 64);
            hex[64] = '\0';
            td_hex(hex, s0, sizeof s0);
            found |= 1;
        } else if (strncmp(line, "CLIENT_TRAFFIC_SECRET_N ", 24) == 0) {
            char hex[65];
            memcpy(hex, q + 66, 64);
            hex[64] = '\0';
            td_hex(hex, want, sizeof want);
            found |= 2;
        }
    }
    CHECK_EQ_INT(found, 3);
    if (found != 3)
        return;
    CHECK_EQ_INT(tlsdec_expand_label(0x1301, s0, 32, "traffic upd", NULL, 0, got, 32), TLSDEC_OK);
    CHECK(memcmp(got, want, 32) == 0);
}

/* ---- through the TLS reader (tls.h) ------------------------------------------------------- */

struct td_sink {
    uint8_t data[2][512];
    size_t len[2];
    int holes[2];
    size_t hole_bytes[2];
};

static void
td_sink_fn(void *arg, enum tls_dir dir, const uint8_t *data, size_t len)
{
    struct td_sink *k = arg;

    if (!data) {
        k->holes[dir]++;
        k->hole_bytes[dir] += len;
        return;
    }
    if (k->len[dir] + len <= sizeof k->data[dir]) {
        memcpy(k->data[dir] + k->len[dir], data, len);
        k->len[dir] += len;
    }
}

/* The first record of the client, all of the server, the rest of the client: each in
 * chunks of `step` bytes, so records are gathered across feeds. */
static void
td_feed_view(struct tls_view *v, const struct blob *c, const struct blob *s, size_t step)
{
    size_t first = 5 + td_u16(c->data + 3), i, n;

    for (i = 0; i < first; i += n) {
        n = first - i < step ? first - i : step;
        tls_feed(v, TLS_CLIENT, c->data + i, n);
    }
    for (i = 0; i < s->len; i += n) {
        n = s->len - i < step ? s->len - i : step;
        tls_feed(v, TLS_SERVER, s->data + i, n);
    }
    for (i = first; i < c->len; i += n) {
        n = c->len - i < step ? c->len - i : step;
        tls_feed(v, TLS_CLIENT, c->data + i, n);
    }
}

static json_t *
td_view_report(const struct tls_view *v)
{
    struct jt *t = jt_new();
    struct jt_node *o = jt_root(t);
    json_t *j;

    CHECK_EQ_INT(tls_report(v, o), 0);
    CHECK(!jt_failed(t));
    j = jt_to_json(o);
    jt_free(t);
    return j;
}

/* The offset of the last byte of the nth server record holding application data. */
static size_t
td_nth_app_record(const struct blob *c, const struct blob *s, const struct blob *k, int nth)
{
    static uint8_t out[TLSDEC_MAX_RECORD];
    struct keylog *kl = keylog_create(0);
    struct td_hello h;
    struct tlsdec *d;
    size_t off, len, n, found = 0;
    uint8_t type;

    keylog_load_buffer(kl, k->data, k->len);
    td_parse_hellos(c, s, &h);
    d = tlsdec_create(h.version, h.suite, h.client_random, h.server_random, kl, NULL);
    keylog_destroy(kl);
    for (off = 5 + td_u16(s->data + 3); d && off + 5 <= s->len; off += 5 + len) {
        len = td_u16(s->data + off + 3);
        n = sizeof out;
        if (tlsdec_record(d, TLS_SERVER, s->data + off, s->data + off + 5, len, out, &n, &type) ==
                TLSDEC_OK &&
            type == 23 && --nth == 0) {
            found = off + 5 + len - 1;
            break;
        }
    }
    tlsdec_destroy(d);
    return found;
}

static void
test_view(const char *srcdir)
{
    static const char *const cases[] = {"tls12-aes256gcm", "tls12-cbc-mte", "tls13-aes128gcm",
                                        "tls13-chacha", NULL};
    static struct blob c, s, k;
    char file[256];
    size_t i, step, last;
    struct keylog *kl;

    for (i = 0; cases[i]; i++) {
        snprintf(file, sizeof file, "tlsdec-%s-client.bin", cases[i]);
        if (td_load(srcdir, file, &c) < 0)
            return;
        snprintf(file, sizeof file, "tlsdec-%s-server.bin", cases[i]);
        if (td_load(srcdir, file, &s) < 0)
            return;
        snprintf(file, sizeof file, "tlsdec-%s.keylog", cases[i]);
        if (td_load(srcdir, file, &k) < 0)
            return;
        kl = keylog_create(0);
        keylog_load_buffer(kl, k.data, k.len);
        for (step = 1; step <= 4096; step *= 64) {
            struct td_sink sink;
            struct tls_view *v = tls_create(0);
            json_t *o, *dec;
            memset(&sink, 0, sizeof sink);
            CHECK(v != NULL);
            if (!v)
                break;
            tls_set_keylog(v, kl, td_sink_fn, &sink);
            td_feed_view(v, &c, &s, step);
            CHECK(tls_decrypting(v));
            CHECK(sink.len[TLS_CLIENT] == strlen(td_client_text) &&
                  memcmp(sink.data[TLS_CLIENT], td_client_text, sink.len[TLS_CLIENT]) == 0);
            CHECK(sink.len[TLS_SERVER] == strlen(td_server_text) &&
                  memcmp(sink.data[TLS_SERVER], td_server_text, sink.len[TLS_SERVER]) == 0);
            CHECK_EQ_INT(sink.holes[0] + sink.holes[1], 0);
            CHECK(tls_handshake_complete(v));
            o = td_view_report(v);
            dec = json_object_get(o, "decryption");
            CHECK_EQ_STR(json_string_value(json_object_get(dec, "status")), "ok");
            CHECK_EQ_INT(
                json_integer_value(json_object_get(json_object_get(dec, "client"), "failed")), 0);
            CHECK(json_integer_value(
                      json_object_get(json_object_get(dec, "server"), "decrypted")) >= 3);
            /* The client's close_notify, decrypted, is an alert like one in clear. */
            CHECK_EQ_STR(json_string_value(json_object_get(
                             json_array_get(json_object_get(o, "alerts"), 0), "description")),
                         "close_notify");
            CHECK(json_object_get(o, "alerts_encrypted") == NULL);
            json_decref(o);
            tls_destroy(v);
        }
        keylog_destroy(kl);
    }

    /* tls13-chacha still loaded: its second server record of application data spoilt. The
     * first line comes through, the second is reported as a hole. */
    last = td_nth_app_record(&c, &s, &k, 2);
    CHECK(last > 0);
    s.data[last] ^= 1;
    kl = keylog_create(0);
    keylog_load_buffer(kl, k.data, k.len);
    {
        struct td_sink sink;
        struct tls_view *v = tls_create(0);
        memset(&sink, 0, sizeof sink);
        tls_set_keylog(v, kl, td_sink_fn, &sink);
        td_feed_view(v, &c, &s, 100);
        CHECK(sink.len[TLS_SERVER] > 0 && sink.len[TLS_SERVER] < strlen(td_server_text));
        CHECK_EQ_INT(sink.holes[TLS_SERVER], 1);
        CHECK_EQ_INT(sink.holes[TLS_CLIENT], 0);
        tls_destroy(v);
    }
    keylog_destroy(kl);

    /* A key log without this connection: the report says so, nothing is delivered. */
    kl = td_keylog(r_keylog);
    {
        struct td_sink sink;
        struct tls_view *v = tls_create(0);
        json_t *o;
        memset(&sink, 0, sizeof sink);
        tls_set_keylog(v, kl, td_sink_fn, &sink);
        td_feed_view(v, &c, &s, 4096);
        CHECK(!tls_decrypting(v));
        CHECK_EQ_INT(sink.len[0] + sink.len[1], 0);
        o = td_view_report(v);
        CHECK_EQ_STR(json_string_value(json_object_get(json_object_get(o, "decryption"), "status")),
                     "no_keys");
        json_decref(o);
        tls_destroy(v);
    }
    keylog_destroy(kl);

    /* No key log: no "decryption" in the report. */
    {
        struct tls_view *v = tls_create(0);
        json_t *o;
        td_feed_view(v, &c, &s, 4096);
        o = td_view_report(v);
        CHECK(json_object_get(o, "decryption") == NULL);
        json_decref(o);
        tls_destroy(v);
    }
}

/* ---- allocation failures ------------------------------------------------------------------ */

static void
test_alloc_failures(const char *srcdir)
{
    static struct blob c, s, kb;
    long k;

    /* Through the TLS reader: every allocation failing in turn, nothing crashes or leaks. */
    if (td_load(srcdir, "tlsdec-tls13-chacha-client.bin", &c) == 0 &&
        td_load(srcdir, "tlsdec-tls13-chacha-server.bin", &s) == 0 &&
        td_load(srcdir, "tlsdec-tls13-chacha.keylog", &kb) == 0) {
        for (k = 0; k < 40; k++) {
            struct td_sink sink;
            struct keylog *kl;
            struct tls_view *v;
            struct jt *t;

            memset(&sink, 0, sizeof sink);
            mem_fail_after(k);
            kl = keylog_create(0);
            if (kl)
                keylog_load_buffer(kl, kb.data, kb.len);
            v = tls_create(0);
            if (v) {
                tls_set_keylog(v, kl, td_sink_fn, &sink);
                td_feed_view(v, &c, &s, 333);
                t = jt_new();
                if (t)
                    tls_report(v, jt_root(t));
                jt_free(t);
                /* Whatever came through is a prefix of the truth. */
                CHECK(sink.len[TLS_SERVER] <= strlen(td_server_text) &&
                      memcmp(sink.data[TLS_SERVER], td_server_text, sink.len[TLS_SERVER]) == 0);
            }
            tls_destroy(v);
            keylog_destroy(kl);
            mem_fail_after(-1);
        }
    }

    for (k = 0; k < 12; k++) {
        struct keylog *kl;
        struct tlsdec *d;
        int why = 0;
        uint8_t cr[32], sr[32];

        mem_fail_after(k);
        kl = td_keylog(r_keylog);
        td_hex(R_CLIENT_RANDOM, cr, sizeof cr);
        td_hex(R_SERVER_RANDOM, sr, sizeof sr);
        d = kl ? tlsdec_create(TLSDEC_TLS13, 0x1301, cr, sr, kl, &why) : NULL;
        if (kl && !d)
            CHECK(why == TLSDEC_E_NOMEM || why == TLSDEC_E_NOKEYS);
        tlsdec_destroy(d);
        keylog_destroy(kl);
        mem_fail_after(-1);
    }
}

int
main(int argc, char **argv)
{
    const char *srcdir = argc > 1 ? argv[1] : "tests";

    test_keylog_parse();
    test_keylog_chunks();
    test_keylog_limits();
    test_keylog_file(srcdir);
    test_rfc8448_labels();
    test_rfc8448_records();
    test_rfc8448_app_only();
    test_rfc8448_hostile();
    test_create_errors();
    test_sealed13();
    test_sealed_cbc();
    test_fixture(srcdir, "tls12-aes128gcm", TLSDEC_TLS12, 0xC02B, 0, -1);
    test_fixture(srcdir, "tls12-aes256gcm", TLSDEC_TLS12, 0xC030, 0, -1);
    test_fixture(srcdir, "tls12-chacha", TLSDEC_TLS12, 0xCCA9, 0, -1);
    test_fixture(srcdir, "tls12-cbc-etm", TLSDEC_TLS12, 0xC009, 0, 1);
    test_fixture(srcdir, "tls12-cbc-mte", TLSDEC_TLS12, 0xC024, 0, 0);
    test_fixture(srcdir, "tls13-aes128gcm", TLSDEC_TLS13, 0x1301, 1, -1);
    test_fixture(srcdir, "tls13-aes256gcm", TLSDEC_TLS13, 0x1302, 0, -1);
    test_fixture(srcdir, "tls13-chacha", TLSDEC_TLS13, 0x1303, 0, -1);
    test_fixture_traffic_update(srcdir);
    test_view(srcdir);
    test_alloc_failures(srcdir);
    CHECK_DONE();
}
