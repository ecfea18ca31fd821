/* tls.c - the cleartext part of a TLS connection: record layer (RFC 5246 6.2, RFC 8446 5.1),
 * handshake reassembly, ClientHello and ServerHello (RFC 8446 4.1.2, 4.1.3, 4.2.1), SNI
 * (RFC 6066 3), ALPN (RFC 7301 3.1), Certificate of TLS <= 1.2 (RFC 5246 7.4.2), alerts
 * (RFC 8446 6). Every length read from the wire is checked against the bytes at hand. Given
 * a key log, protected records are gathered whole and decrypted by tlsdec. */
#include "tls.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "jtree.h"
#include "keylog.h"
#include "mem.h"
#include "tlsdec.h"

#define TLS_DEFAULT_BUFFER 65536
/* RFC 5246 6.2.3: TLSCiphertext.length is at most 2^14 + 2048. */
#define TLS_MAX_RECORD (16384 + 2048)
#define TLS_MAX_ALERTS 32
#define TLS_MAX_VERSIONS 16
/* RFC 6066 3: a host name fits in 2^16 - 1 bytes, but a DNS name in 253. */
#define TLS_MAX_SNI 1024
#define TLS_MAX_ALPN 1024
#define TLS_MAX_NAME 2048

#define TLS_V13 0x0304

enum tls_content {
    TLS_CT_CHANGE_CIPHER_SPEC = 20,
    TLS_CT_ALERT = 21,
    TLS_CT_HANDSHAKE = 22,
    TLS_CT_APPLICATION_DATA = 23,
};

enum tls_hs_type {
    TLS_HS_CLIENT_HELLO = 1,
    TLS_HS_SERVER_HELLO = 2,
    TLS_HS_CERTIFICATE = 11,
};

enum tls_ext {
    TLS_EXT_SERVER_NAME = 0,
    TLS_EXT_ALPN = 16,
    TLS_EXT_SUPPORTED_VERSIONS = 43,
};

/* RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest. */
static const uint8_t tls_hrr_random[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
};

/* One handshake message being reassembled (it may span records, RFC 5246 6.2.1). */
struct tls_hs {
    uint8_t hdr[4];
    size_t hdr_len;
    uint32_t need; /* body bytes still to come */
    int cut;       /* body longer than max_buffer: only its start is kept */
    struct buf body;
};

struct tls_side {
    uint8_t hdr[5];
    size_t hdr_len;
    uint8_t type;
    size_t rec_len;
    size_t left; /* bytes of the current record body still to come */
    uint8_t alert[8];
    size_t alert_len;
    int enc;         /* the current record's contents are encrypted */
    uint64_t offset; /* stream offset, for error messages */
    struct tls_hs hs;
    uint64_t records;
    uint64_t app_records;
    uint64_t app_after_hello; /* application data after the ServerHello */
    uint64_t enc_handshakes;  /* encrypted handshake records (TLS <= 1.2 Finished) */
    uint64_t enc_alerts;
    int ccs;
    int dead;
    int gap;
    /* Decryption: the current record is gathered whole for tlsdec (protected, or TLS 1.2's
     * ChangeCipherSpec), and whether tlsdec will treat it as protected. */
    int collect;
    int is_protected;
    int plain_started; /* application data was delivered in this direction */
    int dec_error;     /* why the first protected record that failed did (tlsdec_status) */
    struct buf rec;
};

struct tls_alert {
    uint8_t dir, level, desc;
};

struct tls_cert {
    int present;
    int error;
    unsigned chain; /* certificates in the message */
    struct buf subject;
    struct buf issuer;
    char not_before[32];
    char not_after[32];
    char sha256[65];
};

struct tls_view {
    size_t max_buffer;
    struct tls_side side[2];

    int client_hello;
    uint16_t client_legacy;
    uint64_t client_ciphers;
    uint16_t client_versions[TLS_MAX_VERSIONS];
    size_t nclient_versions;
    struct buf sni;
    int have_sni;
    struct buf alpn; /* the client's protocol_name_list as on the wire */

    int server_hello;
    int hello_retry;
    uint16_t version;
    uint16_t cipher;
    int have_cipher;
    struct buf alpn_selected;
    int have_alpn_selected;

    struct tls_cert cert;

    struct tls_alert alerts[TLS_MAX_ALERTS];
    size_t nalerts;
    uint64_t alerts_total;
    int fatal;

    /* Decryption: the randoms name the connection in the key log (borrowed). */
    const struct keylog *keylog;
    tls_plaintext_fn plain_fn;
    void *plain_arg;
    uint8_t client_random[KEYLOG_RANDOM_LEN];
    int have_client_random;
    uint8_t server_random[KEYLOG_RANDOM_LEN];
    struct tlsdec *dec;
    int dec_tried;
    int dec_status;
    uint8_t *plain; /* TLSDEC_MAX_RECORD bytes, while dec exists */
    int (*refresh)(void *arg, int force);
    void *refresh_arg;
    unsigned refresh_tries;

    char parse_error[128];
};

static const struct tls_name {
    uint16_t id;
    const char *name;
} tls_versions[] = {
    {0x0300, "SSL 3.0"}, {0x0301, "TLS 1.0"}, {0x0302, "TLS 1.1"},
    {0x0303, "TLS 1.2"}, {0x0304, "TLS 1.3"}, {0, NULL},
};

/* IANA TLS Cipher Suites registry names of the suites mail servers actually pick. */
static const struct tls_name tls_ciphers[] = {
    {0x1301, "TLS_AES_128_GCM_SHA256"},
    {0x1302, "TLS_AES_256_GCM_SHA384"},
    {0x1303, "TLS_CHACHA20_POLY1305_SHA256"},
    {0x1304, "TLS_AES_128_CCM_SHA256"},
    {0x1305, "TLS_AES_128_CCM_8_SHA256"},
    {0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    {0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    {0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
    {0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
    {0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
    {0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
    {0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
    {0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"},
    {0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"},
    {0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
    {0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"},
    {0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"},
    {0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
    {0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"},
    {0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"},
    {0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"},
    {0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"},
    {0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"},
    {0x0005, "TLS_RSA_WITH_RC4_128_SHA"},
    {0x0004, "TLS_RSA_WITH_RC4_128_MD5"},
    {0, NULL},
};

/* RFC 8446 6 and the IANA TLS Alerts registry. */
static const struct tls_name tls_alert_names[] = {
    {0, "close_notify"},
    {10, "unexpected_message"},
    {20, "bad_record_mac"},
    {21, "decryption_failed"},
    {22, "record_overflow"},
    {30, "decompression_failure"},
    {40, "handshake_failure"},
    {41, "no_certificate"},
    {42, "bad_certificate"},
    {43, "unsupported_certificate"},
    {44, "certificate_revoked"},
    {45, "certificate_expired"},
    {46, "certificate_unknown"},
    {47, "illegal_parameter"},
    {48, "unknown_ca"},
    {49, "access_denied"},
    {50, "decode_error"},
    {51, "decrypt_error"},
    {60, "export_restriction"},
    {70, "protocol_version"},
    {71, "insufficient_security"},
    {80, "internal_error"},
    {86, "inappropriate_fallback"},
    {90, "user_canceled"},
    {100, "no_renegotiation"},
    {109, "missing_extension"},
    {110, "unsupported_extension"},
    {111, "certificate_unobtainable"},
    {112, "unrecognized_name"},
    {113, "bad_certificate_status_response"},
    {114, "bad_certificate_hash_value"},
    {115, "unknown_psk_identity"},
    {116, "certificate_required"},
    {120, "no_application_protocol"},
    {0, NULL},
};

static const char *const tls_dir_names[] = {[TLS_CLIENT] = "client", [TLS_SERVER] = "server"};

static const char *
tls_lookup(const struct tls_name *t, uint16_t id)
{
    for (; t->name; t++)
        if (t->id == id)
            return t->name;
    return NULL;
}

/* A table name, or "0xNNNN" for an id the table does not know: member key of o, or with key
 * NULL appended to array o. */
static void
tls_set_name(struct jt_node *o, const char *key, const struct tls_name *t, uint16_t id)
{
    const char *name = tls_lookup(t, id);
    char hex[8];

    if (name) {
        if (key)
            jt_set_lit(o, key, name);
        else
            jt_push_lit(o, name);
        return;
    }
    snprintf(hex, sizeof hex, "0x%04x", id);
    if (key)
        jt_set_str(o, key, hex);
    else
        jt_push_str(o, hex);
}

/* RFC 8701: GREASE values are 0x?A?A with both bytes equal. */
static int
tls_is_grease(uint16_t v)
{
    return (v & 0x0F0F) == 0x0A0A && (v >> 8) == (v & 0xFF);
}

/* ---- bounds-checked reading ------------------------------------------------------------ */

struct tls_cur {
    const uint8_t *p;
    size_t n;
    int bad; /* a read went past the end: every later read yields 0 */
};

static uint32_t
tls_get(struct tls_cur *c, size_t bytes)
{
    uint32_t v = 0;
    size_t i;

    if (c->bad || c->n < bytes) {
        c->bad = 1;
        return 0;
    }
    for (i = 0; i < bytes; i++)
        v = (v << 8) | c->p[i];
    c->p += bytes;
    c->n -= bytes;
    return v;
}

/* The next len bytes as a cursor of their own. */
static struct tls_cur
tls_sub(struct tls_cur *c, size_t len)
{
    struct tls_cur s = {NULL, 0, 1};

    if (c->bad || c->n < len) {
        c->bad = 1;
        return s;
    }
    s.p = c->p;
    s.n = len;
    s.bad = 0;
    if (len) {
        c->p += len;
        c->n -= len;
    }
    return s;
}

/* ---- handshake messages ---------------------------------------------------------------- */

static void
tls_parse_client_hello(struct tls_view *t, struct tls_cur c)
{
    struct tls_cur cs, ext, e, list, random;
    uint32_t type, total;

    t->client_hello = 1;
    t->client_legacy = (uint16_t)tls_get(&c, 2);
    random = tls_sub(&c, 32);
    if (!random.bad) {
        memcpy(t->client_random, random.p, KEYLOG_RANDOM_LEN);
        t->have_client_random = 1;
    }
    tls_sub(&c, tls_get(&c, 1));      /* legacy_session_id */
    cs = tls_sub(&c, tls_get(&c, 2)); /* cipher_suites */
    t->client_ciphers = cs.n / 2;
    tls_sub(&c, tls_get(&c, 1)); /* legacy_compression_methods */
    if (c.bad || c.n == 0)
        return;
    /* A message cut at max_buffer: read the extensions that are there. */
    total = tls_get(&c, 2);
    ext = total <= c.n ? tls_sub(&c, total) : c;
    while (!ext.bad && ext.n >= 4) {
        type = tls_get(&ext, 2);
        e = tls_sub(&ext, tls_get(&ext, 2));
        if (e.bad)
            break;
        switch (type) {
        case TLS_EXT_SERVER_NAME:
            /* RFC 6066 3: ServerNameList of (name_type, HostName); the first host_name. */
            list = tls_sub(&e, tls_get(&e, 2));
            while (!list.bad && list.n >= 3 && !t->have_sni) {
                uint32_t nt = tls_get(&list, 1);
                struct tls_cur name = tls_sub(&list, tls_get(&list, 2));
                if (!name.bad && nt == 0) {
                    if (name.n && buf_append(&t->sni, name.p, name.n) == BUF_E_NOMEM)
                        break;
                    t->have_sni = 1;
                }
            }
            break;
        case TLS_EXT_ALPN:
            /* RFC 7301 3.1: ProtocolNameList; kept as is, read at report time. */
            list = tls_sub(&e, tls_get(&e, 2));
            buf_reset(&t->alpn);
            if (!list.bad && list.n)
                buf_append(&t->alpn, list.p, list.n);
            break;
        case TLS_EXT_SUPPORTED_VERSIONS:
            /* RFC 8446 4.2.1: ProtocolVersion versions<2..254>. */
            list = tls_sub(&e, tls_get(&e, 1));
            t->nclient_versions = 0;
            while (!list.bad && list.n >= 2 && t->nclient_versions < TLS_MAX_VERSIONS) {
                uint16_t v = (uint16_t)tls_get(&list, 2);
                if (!tls_is_grease(v))
                    t->client_versions[t->nclient_versions++] = v;
            }
            break;
        default:
            break;
        }
    }
}

/* The ServerHello names version and suite: with a key log, the decryptor is built now, so
 * that the records after the ServerHello's reach it. */
static void
tls_dec_start(struct tls_view *t)
{
    if (!t->keylog || t->dec_tried)
        return;
    t->dec_tried = 1;
    /* A new connection needing keys: the key log is looked at now, whenever it last was. */
    if (t->refresh)
        t->refresh(t->refresh_arg, 1);
    if (!t->have_client_random || !t->have_cipher) {
        t->dec_status = TLSDEC_E_NOKEYS;
        return;
    }
    t->plain = mem_alloc(TLSDEC_MAX_RECORD);
    if (!t->plain) {
        t->dec_status = TLSDEC_E_NOMEM;
        return;
    }
    t->dec = tlsdec_create(t->version, t->cipher, t->client_random, t->server_random, t->keylog,
                           &t->dec_status);
    if (!t->dec) {
        mem_free(t->plain);
        t->plain = NULL;
    }
}

/* Records in a session the growing key log had no (or not all) secrets for. The secrets of
 * a handshake are written as it goes, so the log is looked at on each of the first records
 * whatever the time (a reader racing the writer); after that at most once a second. */
#define TLS_FOLLOW_FORCED 16

static void
tls_dec_follow(struct tls_view *t)
{
    int force = t->refresh_tries < TLS_FOLLOW_FORCED;
    if (t->refresh_tries < UINT_MAX)
        t->refresh_tries++;
    if (t->refresh(t->refresh_arg, force) <= 0)
        return;
    if (t->dec) {
        tlsdec_add_secrets(t->dec, t->keylog, t->client_random);
        return;
    }
    if (!t->plain && !(t->plain = mem_alloc(TLSDEC_MAX_RECORD)))
        return;
    t->dec = tlsdec_create(t->version, t->cipher, t->client_random, t->server_random, t->keylog,
                           &t->dec_status);
    if (!t->dec) {
        mem_free(t->plain);
        t->plain = NULL;
    }
}

static void
tls_parse_server_hello(struct tls_view *t, struct tls_cur c)
{
    struct tls_cur random, ext, e;
    uint16_t legacy, selected = 0;
    uint32_t type;
    int hrr;

    legacy = (uint16_t)tls_get(&c, 2);
    random = tls_sub(&c, 32);
    if (c.bad)
        return;
    hrr = memcmp(random.p, tls_hrr_random, sizeof tls_hrr_random) == 0;
    memcpy(t->server_random, random.p, KEYLOG_RANDOM_LEN);
    tls_sub(&c, tls_get(&c, 1)); /* legacy_session_id_echo */
    t->cipher = (uint16_t)tls_get(&c, 2);
    t->have_cipher = !c.bad;
    tls_get(&c, 1); /* legacy_compression_method */
    if (!c.bad && c.n) {
        ext = tls_sub(&c, tls_get(&c, 2));
        while (!ext.bad && ext.n >= 4) {
            type = tls_get(&ext, 2);
            e = tls_sub(&ext, tls_get(&ext, 2));
            if (e.bad)
                break;
            if (type == TLS_EXT_SUPPORTED_VERSIONS) {
                /* RFC 8446 4.2.1: the server names the one version it selected. */
                uint16_t v = (uint16_t)tls_get(&e, 2);
                if (!e.bad)
                    selected = v;
            } else if (type == TLS_EXT_ALPN) {
                /* RFC 7301 3.1: exactly one protocol name in the server's list. */
                struct tls_cur list = tls_sub(&e, tls_get(&e, 2));
                struct tls_cur name = tls_sub(&list, tls_get(&list, 1));
                if (!name.bad) {
                    buf_reset(&t->alpn_selected);
                    if (name.n)
                        buf_append(&t->alpn_selected, name.p, name.n);
                    t->have_alpn_selected = 1;
                }
            }
        }
    }
    t->version = selected ? selected : legacy;
    if (hrr) {
        t->hello_retry = 1;
    } else {
        t->server_hello = 1;
        tls_dec_start(t);
    }
}

/* "YYYY-MM-DDTHH:MM:SSZ" (RFC 3339) from an ASN.1 UTCTime or GeneralizedTime. */
static void
tls_asn1_time(const ASN1_TIME *a, char *out, size_t outlen)
{
    struct tm tm;
    int w;

    memset(&tm, 0, sizeof tm);
    if (!a || ASN1_TIME_to_tm(a, &tm) != 1) {
        out[0] = '\0';
        return;
    }
    w = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (w < 0 || (size_t)w >= outlen)
        out[0] = '\0';
}

/* A distinguished name on one line, RFC 2253 order and escaping. */
static void
tls_name_line(const X509_NAME *name, struct buf *out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;

    buf_reset(out);
    if (!b)
        return;
    if (name && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        len = BIO_get_mem_data(b, &data);
        if (len > 0 && data)
            buf_append(out, data, (size_t)len);
    }
    BIO_free(b);
}

/* RFC 5246 7.4.2: certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>; the first one is
 * the server's own. The message may have been cut at max_buffer: what is there is read. */
static void
tls_parse_certificate(struct tls_view *t, struct tls_cur c)
{
    struct tls_cur list, first, next;
    const unsigned char *q;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    static const char digits[] = "0123456789abcdef";
    uint32_t total;
    X509 *x;

    total = tls_get(&c, 3);
    t->cert.present = 1;
    if (c.bad) {
        t->cert.error = 1;
        return;
    }
    /* A message cut at max_buffer still holds the start of the list. */
    list = total <= c.n ? tls_sub(&c, total) : c;
    first = tls_sub(&list, tls_get(&list, 3));
    t->cert.chain = first.bad ? 0 : 1;
    next = list;
    while (!next.bad && next.n >= 3) {
        tls_sub(&next, tls_get(&next, 3));
        if (!next.bad)
            t->cert.chain++;
    }
    if (first.bad || first.n == 0 || first.n > (size_t)0x7fffffff) {
        t->cert.error = 1;
        return;
    }
    q = first.p;
    x = d2i_X509(NULL, &q, (long)first.n);
    if (!x) {
        t->cert.error = 1;
        return;
    }
    tls_name_line(X509_get_subject_name(x), &t->cert.subject);
    tls_name_line(X509_get_issuer_name(x), &t->cert.issuer);
    tls_asn1_time(X509_get0_notBefore(x), t->cert.not_before, sizeof t->cert.not_before);
    tls_asn1_time(X509_get0_notAfter(x), t->cert.not_after, sizeof t->cert.not_after);
    /* The fingerprint is over the DER bytes as sent, as "openssl x509 -fingerprint". */
    if (EVP_Digest(first.p, (size_t)(q - first.p), md, &mdlen, EVP_sha256(), NULL) == 1 &&
        mdlen == 32) {
        for (i = 0; i < mdlen; i++) {
            t->cert.sha256[2 * i] = digits[md[i] >> 4];
            t->cert.sha256[2 * i + 1] = digits[md[i] & 15];
        }
        t->cert.sha256[64] = '\0';
    }
    X509_free(x);
}

static void
tls_hs_message(struct tls_view *t, enum tls_dir dir, uint8_t type, const uint8_t *p, size_t n)
{
    struct tls_cur c = {p, n, 0};

    if (dir == TLS_CLIENT && type == TLS_HS_CLIENT_HELLO && !t->client_hello)
        tls_parse_client_hello(t, c);
    else if (dir == TLS_SERVER && type == TLS_HS_SERVER_HELLO && !t->server_hello)
        tls_parse_server_hello(t, c);
    /* TLS 1.3 sends its Certificate encrypted (RFC 8446 4.4.2). */
    else if (dir == TLS_SERVER && type == TLS_HS_CERTIFICATE && !t->cert.present &&
             t->version != TLS_V13)
        tls_parse_certificate(t, c);
}

/* Handshake bytes in clear, in order: messages are cut out by their 4-byte header. */
static void
tls_hs_feed(struct tls_view *t, enum tls_dir dir, const uint8_t *p, size_t n)
{
    struct tls_hs *hs = &t->side[dir].hs;
    size_t take;

    while (n) {
        if (hs->hdr_len < 4) {
            take = 4 - hs->hdr_len < n ? 4 - hs->hdr_len : n;
            memcpy(hs->hdr + hs->hdr_len, p, take);
            hs->hdr_len += take;
            p += take;
            n -= take;
            if (hs->hdr_len < 4)
                return;
            hs->need = (uint32_t)hs->hdr[1] << 16 | (uint32_t)hs->hdr[2] << 8 | hs->hdr[3];
            hs->cut = 0;
            buf_reset(&hs->body);
        }
        take = hs->need < n ? hs->need : n;
        if (take && buf_append(&hs->body, p, take) != BUF_OK)
            hs->cut = 1;
        hs->need -= (uint32_t)take;
        p += take;
        n -= take;
        if (!hs->need) {
            tls_hs_message(t, dir, hs->hdr[0], hs->body.data, hs->body.len);
            hs->hdr_len = 0;
            buf_reset(&hs->body);
        }
    }
}

/* ---- record layer ---------------------------------------------------------------------- */

static void
tls_error(struct tls_view *t, enum tls_dir dir, const char *what, unsigned value)
{
    struct tls_side *s = &t->side[dir];

    s->dead = 1;
    if (!t->parse_error[0])
        snprintf(t->parse_error, sizeof t->parse_error, "%s: %s 0x%x at offset %llu",
                 tls_dir_names[dir], what, value, (unsigned long long)s->offset);
}

/* Whether this direction's handshake records are encrypted by now: after its
 * ChangeCipherSpec up to TLS 1.2; for a TLS 1.3 server after its ServerHello (RFC 8446 2),
 * while a TLS 1.3 client's CCS is only for middleboxes (RFC 8446 D.4) and its encrypted
 * messages come as application data. */
static int
tls_hs_encrypted(const struct tls_view *t, enum tls_dir dir)
{
    if (t->version == TLS_V13)
        return dir == TLS_SERVER && t->server_hello;
    return t->side[dir].ccs;
}

/* Alert messages (level, description pairs), in clear or decrypted. */
static void
tls_add_alerts(struct tls_view *t, enum tls_dir dir, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i + 1 < n; i += 2) {
        t->alerts_total++;
        if (p[i] == 2)
            t->fatal++;
        if (t->nalerts < TLS_MAX_ALERTS) {
            t->alerts[t->nalerts].dir = (uint8_t)dir;
            t->alerts[t->nalerts].level = p[i];
            t->alerts[t->nalerts].desc = p[i + 1];
            t->nalerts++;
        }
    }
}

static void
tls_alert_record(struct tls_view *t, enum tls_dir dir)
{
    struct tls_side *s = &t->side[dir];

    /* Up to TLS 1.2 alerts after ChangeCipherSpec are encrypted and longer than two
     * bytes; TLS 1.3 hides encrypted ones inside application data records. */
    if (s->rec_len < 2)
        return;
    if (t->version != TLS_V13 && s->ccs && s->rec_len != 2) {
        s->enc_alerts++;
        return;
    }
    tls_add_alerts(t, dir, s->alert, s->alert_len);
}

static void
tls_record_start(struct tls_view *t, enum tls_dir dir)
{
    struct tls_side *s = &t->side[dir];

    s->records++;
    s->alert_len = 0;
    s->enc = 0;
    if (t->refresh && t->server_hello && t->have_client_random && t->have_cipher &&
        (t->dec ? tlsdec_missing_secrets(t->dec) : t->dec_status == TLSDEC_E_NOKEYS))
        tls_dec_follow(t);
    /* Whether tlsdec sees this record is settled before its first byte: the ServerHello's
     * own record is never protected. */
    s->is_protected = t->dec && tlsdec_protected(t->dec, dir, s->type);
    s->collect = s->is_protected || (t->dec && s->type == TLS_CT_CHANGE_CIPHER_SPEC);
    buf_reset(&s->rec);
    switch (s->type) {
    case TLS_CT_CHANGE_CIPHER_SPEC:
        s->ccs = 1;
        break;
    case TLS_CT_HANDSHAKE:
        s->enc = tls_hs_encrypted(t, dir);
        if (s->enc)
            s->enc_handshakes++;
        break;
    case TLS_CT_APPLICATION_DATA:
        s->app_records++;
        if (t->server_hello)
            s->app_after_hello++;
        break;
    default:
        break;
    }
}

static void
tls_record_body(struct tls_view *t, enum tls_dir dir, const uint8_t *p, size_t n)
{
    struct tls_side *s = &t->side[dir];
    size_t take;

    /* Held to TLS_MAX_RECORD by the header check; a failed append leaves the record short,
     * and tlsdec then refuses it for its length. */
    if (s->collect)
        buf_append(&s->rec, p, n);
    if (s->type == TLS_CT_HANDSHAKE && !s->enc) {
        tls_hs_feed(t, dir, p, n);
    } else if (s->type == TLS_CT_ALERT) {
        take = sizeof s->alert - s->alert_len;
        if (take > n)
            take = n;
        memcpy(s->alert + s->alert_len, p, take);
        s->alert_len += take;
    }
}

/* A gathered record through tlsdec. Returns 1 when it was protected and its plaintext was
 * handled here. */
static int
tls_dec_record(struct tls_view *t, enum tls_dir dir)
{
    struct tls_side *s = &t->side[dir];
    size_t n = TLSDEC_MAX_RECORD;
    uint8_t type = 0;
    int rc;

    rc = tlsdec_record(t->dec, dir, s->hdr, s->rec.data, s->rec.len, t->plain, &n, &type);
    if (!s->is_protected)
        return 0;
    if (rc != TLSDEC_OK) {
        if (!s->dec_error)
            s->dec_error = rc;
        if (s->plain_started && t->plain_fn)
            t->plain_fn(t->plain_arg, dir, NULL, s->rec_len);
        return 0;
    }
    switch (type) {
    case TLS_CT_APPLICATION_DATA:
        if (n && t->plain_fn)
            t->plain_fn(t->plain_arg, dir, t->plain, n);
        s->plain_started = 1;
        break;
    case TLS_CT_ALERT:
        tls_add_alerts(t, dir, t->plain, n);
        break;
    default:
        /* Encrypted handshake messages (TLS 1.3's certificate among them) are not read. */
        break;
    }
    return 1;
}

static void
tls_record_end(struct tls_view *t, enum tls_dir dir)
{
    struct tls_side *s = &t->side[dir];

    if (s->collect && tls_dec_record(t, dir))
        return;
    if (s->type == TLS_CT_ALERT)
        tls_alert_record(t, dir);
}

struct tls_view *
tls_create(size_t max_buffer)
{
    struct tls_view *t = mem_calloc(1, sizeof *t);
    int d;

    if (!t)
        return NULL;
    t->max_buffer = max_buffer ? max_buffer : TLS_DEFAULT_BUFFER;
    for (d = 0; d < 2; d++) {
        buf_init(&t->side[d].hs.body, t->max_buffer);
        buf_init(&t->side[d].rec, TLS_MAX_RECORD);
    }
    buf_init(&t->sni, TLS_MAX_SNI);
    buf_init(&t->alpn, TLS_MAX_ALPN);
    buf_init(&t->alpn_selected, 256);
    buf_init(&t->cert.subject, TLS_MAX_NAME);
    buf_init(&t->cert.issuer, TLS_MAX_NAME);
    return t;
}

void
tls_destroy(struct tls_view *t)
{
    int d;

    if (!t)
        return;
    for (d = 0; d < 2; d++) {
        buf_free(&t->side[d].hs.body);
        buf_free(&t->side[d].rec);
    }
    tlsdec_destroy(t->dec);
    mem_free(t->plain);
    buf_free(&t->sni);
    buf_free(&t->alpn);
    buf_free(&t->alpn_selected);
    buf_free(&t->cert.subject);
    buf_free(&t->cert.issuer);
    mem_free(t);
}

void
tls_set_keylog(struct tls_view *t, const struct keylog *kl, tls_plaintext_fn fn, void *arg)
{
    if (!t)
        return;
    t->keylog = kl;
    t->plain_fn = fn;
    t->plain_arg = arg;
}

void
tls_set_keylog_refresh(struct tls_view *t, int (*refresh)(void *arg, int force), void *arg)
{
    if (!t)
        return;
    t->refresh = refresh;
    t->refresh_arg = arg;
}

int
tls_decrypting(const struct tls_view *t)
{
    return t && t->dec;
}

void
tls_feed(struct tls_view *t, enum tls_dir dir, const uint8_t *data, size_t len)
{
    struct tls_side *s;
    size_t take;

    if (!t || (dir != TLS_CLIENT && dir != TLS_SERVER))
        return;
    s = &t->side[dir];
    while (len && !s->dead) {
        if (s->hdr_len < 5) {
            take = 5 - s->hdr_len < len ? 5 - s->hdr_len : len;
            memcpy(s->hdr + s->hdr_len, data, take);
            s->hdr_len += take;
            data += take;
            len -= take;
            if (s->hdr_len < 5)
                return;
            s->type = s->hdr[0];
            s->rec_len = (size_t)s->hdr[3] << 8 | s->hdr[4];
            /* RFC 8446 5.1: unknown content types and versions outside 3.x mean this is not
             * TLS at all (plaintext SMTP after a failed STARTTLS, SSLv2, garbage). */
            if (s->type < TLS_CT_CHANGE_CIPHER_SPEC || s->type > TLS_CT_APPLICATION_DATA) {
                tls_error(t, dir, "record type", s->type);
                return;
            }
            if (s->hdr[1] != 3 || s->hdr[2] > 4) {
                tls_error(t, dir, "record version", (unsigned)s->hdr[1] << 8 | s->hdr[2]);
                return;
            }
            if (s->rec_len > TLS_MAX_RECORD) {
                tls_error(t, dir, "record length", (unsigned)s->rec_len);
                return;
            }
            s->left = s->rec_len;
            tls_record_start(t, dir);
        }
        take = s->left < len ? s->left : len;
        if (take) {
            tls_record_body(t, dir, data, take);
            data += take;
            len -= take;
            s->left -= take;
        }
        if (!s->left) {
            tls_record_end(t, dir);
            s->offset += 5 + s->rec_len;
            s->hdr_len = 0;
        }
    }
}

void
tls_gap(struct tls_view *t, enum tls_dir dir)
{
    if (!t || (dir != TLS_CLIENT && dir != TLS_SERVER))
        return;
    /* Record boundaries are lost with the missing bytes; nothing after can be framed. */
    t->side[dir].dead = 1;
    t->side[dir].gap = 1;
}

int
tls_handshake_complete(const struct tls_view *t)
{
    const struct tls_side *c, *s;

    if (!t || t->fatal)
        return 0;
    c = &t->side[TLS_CLIENT];
    s = &t->side[TLS_SERVER];
    if (c->app_records && s->app_records)
        return 1;
    /* TLS 1.3: the client's first encrypted record is its Finished (RFC 8446 4.4.4),
     * sent only once the server's whole flight checked out. */
    if (t->version == TLS_V13 && c->app_after_hello)
        return 1;
    /* TLS <= 1.2: both Finished messages, encrypted after each side's CCS. */
    if (t->version != TLS_V13 && c->enc_handshakes && s->enc_handshakes)
        return 1;
    return 0;
}

int
tls_fatal_alerts(const struct tls_view *t)
{
    return t ? t->fatal : 0;
}

static void
tls_report_alerts(const struct tls_view *t, struct jt_node *obj)
{
    struct jt_node *arr = jt_set_arr(obj, "alerts"), *a;
    char num[24];
    const char *name;
    size_t i;

    for (i = 0; i < t->nalerts; i++) {
        const struct tls_alert *al = &t->alerts[i];
        a = jt_push_obj(arr);
        jt_set_lit(a, "dir", tls_dir_names[al->dir]);
        if (al->level == 1 || al->level == 2) {
            jt_set_lit(a, "level", al->level == 1 ? "warning" : "fatal");
        } else {
            snprintf(num, sizeof num, "%u", al->level);
            jt_set_str(a, "level", num);
        }
        name = tls_lookup(tls_alert_names, al->desc);
        if (name) {
            jt_set_lit(a, "description", name);
        } else {
            snprintf(num, sizeof num, "%u", al->desc);
            jt_set_str(a, "description", num);
        }
    }
    if (t->alerts_total > t->nalerts)
        jt_set_int(obj, "alerts_dropped", (int64_t)(t->alerts_total - t->nalerts));
}

/* Why no plaintext came: the decryptor could not be built, or (wrong secrets: the key log
 * names the connection, but its records do not open) a direction's records failed before
 * any of its application data came through. "ok" otherwise, failures after plaintext began
 * included (the counters show them). */
static const char *
tls_dec_status(const struct tls_view *t)
{
    struct tlsdec_counters c;
    int d;

    if (!t->dec_tried)
        return "no_server_hello";
    if (!t->dec)
        return tlsdec_error_name(t->dec_status);
    for (d = 0; d < 2; d++) {
        tlsdec_get_counters(t->dec, (enum tls_dir)d, &c);
        if (c.failed && !t->side[d].plain_started && t->side[d].dec_error)
            return tlsdec_error_name(t->side[d].dec_error);
    }
    return "ok";
}

static void
tls_report_decryption(const struct tls_view *t, struct jt_node *obj)
{
    struct tlsdec_counters c;
    struct jt_node *o = jt_set_obj(obj, "decryption"), *side;
    int d;

    jt_set_lit(o, "status", tls_dec_status(t));
    if (!t->dec)
        return;
    for (d = 0; d < 2; d++) {
        tlsdec_get_counters(t->dec, (enum tls_dir)d, &c);
        side = jt_set_obj(o, tls_dir_names[d]);
        jt_set_int(side, "decrypted", (int64_t)c.decrypted);
        jt_set_int(side, "failed", (int64_t)c.failed);
    }
}

/* The dates and the fingerprint are ASCII (tls_asn1_time, hex digits). */
static void
tls_report_certificate(const struct tls_view *t, struct jt_node *obj)
{
    struct jt_node *c = jt_set_obj(obj, "certificate");

    jt_set_int(c, "chain", t->cert.chain);
    if (t->cert.error) {
        jt_set_lit(c, "error", "undecodable");
        return;
    }
    jt_set_bytes(c, "subject", t->cert.subject.data, t->cert.subject.len);
    jt_set_bytes(c, "issuer", t->cert.issuer.data, t->cert.issuer.len);
    if (t->cert.not_before[0])
        jt_set_str(c, "not_before", t->cert.not_before);
    if (t->cert.not_after[0])
        jt_set_str(c, "not_after", t->cert.not_after);
    if (t->cert.sha256[0])
        jt_set_str(c, "sha256", t->cert.sha256);
}

int
tls_report(const struct tls_view *t, struct jt_node *obj)
{
    struct jt_node *arr, *o;
    size_t i;
    int d;

    if (!t || !obj)
        return -1;
    if (t->server_hello || t->hello_retry) {
        tls_set_name(obj, "version", tls_versions, t->version);
        if (t->have_cipher)
            tls_set_name(obj, "cipher", tls_ciphers, t->cipher);
    }
    if (t->hello_retry)
        jt_set_bool(obj, "hello_retry", 1);
    if (t->have_sni)
        jt_set_bytes(obj, "sni", t->sni.data, t->sni.len);
    if (t->alpn.len) {
        /* The client's offer; "alpn_selected" is the server's pick when in clear. */
        struct tls_cur c = {t->alpn.data, t->alpn.len, 0};
        arr = jt_set_arr(obj, "alpn");
        while (c.n) {
            struct tls_cur name = tls_sub(&c, tls_get(&c, 1));
            if (name.bad)
                break;
            jt_push_bytes(arr, name.p, name.n);
        }
    }
    if (t->have_alpn_selected)
        jt_set_bytes(obj, "alpn_selected", t->alpn_selected.data, t->alpn_selected.len);
    if (t->client_hello) {
        /* Without supported_versions the legacy field is the client's highest version. */
        arr = jt_set_arr(obj, "client_versions");
        if (t->nclient_versions == 0)
            tls_set_name(arr, NULL, tls_versions, t->client_legacy);
        for (i = 0; i < t->nclient_versions; i++)
            tls_set_name(arr, NULL, tls_versions, t->client_versions[i]);
        jt_set_int(obj, "client_ciphers", (int64_t)t->client_ciphers);
    }
    if (t->cert.present)
        tls_report_certificate(t, obj);
    if (t->nalerts)
        tls_report_alerts(t, obj);
    if (t->side[TLS_CLIENT].enc_alerts || t->side[TLS_SERVER].enc_alerts) {
        o = jt_set_obj(obj, "alerts_encrypted");
        for (d = 0; d < 2; d++)
            jt_set_int(o, tls_dir_names[d], (int64_t)t->side[d].enc_alerts);
    }
    jt_set_bool(obj, "handshake_complete", tls_handshake_complete(t));
    o = jt_set_obj(obj, "records");
    for (d = 0; d < 2; d++)
        jt_set_int(o, tls_dir_names[d], (int64_t)t->side[d].records);
    if (t->side[TLS_CLIENT].gap || t->side[TLS_SERVER].gap) {
        o = jt_set_obj(obj, "gap");
        for (d = 0; d < 2; d++)
            jt_set_bool(o, tls_dir_names[d], t->side[d].gap);
    }
    if (t->keylog)
        tls_report_decryption(t, obj);
    /* ASCII: tls_error writes it from our own names and numbers. */
    if (t->parse_error[0])
        jt_set_str(obj, "parse_error", t->parse_error);
    return 0;
}
