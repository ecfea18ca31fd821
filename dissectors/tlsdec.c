/* tlsdec.c - TLS record decryption from key log secrets. TLS 1.3: HKDF-Expand-Label and the
 * traffic keys (RFC 8446 7.1, 7.3), per-record nonce (5.3), AEAD with the record header as
 * additional data (5.2), inner content type (5.4), KeyUpdate (4.6.3, 7.2). TLS 1.2: key
 * block from the master secret (RFC 5246 5, 6.3), AES-GCM (RFC 5288 3), ChaCha20-Poly1305
 * (RFC 7905 2), AES-CBC with HMAC, MAC-then-encrypt (RFC 5246 6.2.3.2) or encrypt-then-MAC
 * (RFC 7366 3). Only OpenSSL's EVP interfaces do cryptography here. */
#include "tlsdec.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <string.h>

#include "mem.h"

#define TLSDEC_TAG_LEN 16
#define TLSDEC_NONCE_LEN 12
#define TLSDEC_BLOCK 16
#define TLSDEC_MAX_KEY 32
#define TLSDEC_MAX_MAC 48
#define TLSDEC_MAX_HASH 48
/* RFC 8446 5.2: TLSCiphertext.length is at most 2^14 + 256. */
#define TLSDEC_MAX_RECORD13 (16384 + 256)
/* After records that failed, the next is also tried at the sequence numbers they would
 * have used, up to this many. */
#define TLSDEC_SEQ_WINDOW 3

enum tlsdec_content {
    TLSDEC_CT_CHANGE_CIPHER_SPEC = 20,
    TLSDEC_CT_ALERT = 21,
    TLSDEC_CT_HANDSHAKE = 22,
    TLSDEC_CT_APPLICATION_DATA = 23,
};

enum tlsdec_hs_type {
    TLSDEC_HS_FINISHED = 20,
    TLSDEC_HS_KEY_UPDATE = 24,
};

enum tlsdec_kind { TLSDEC_AES_GCM, TLSDEC_CHACHA20_POLY1305, TLSDEC_AES_CBC };

struct tlsdec_suite {
    uint16_t id;
    uint8_t tls13;
    uint8_t kind; /* enum tlsdec_kind */
    uint8_t key_len;
    uint8_t mac_len;    /* CBC only: HMAC key and output length */
    const char *mac_md; /* CBC only */
    const char *prf_md; /* TLS 1.2 PRF (RFC 5246 5) or TLS 1.3 HKDF hash */
};

/* RFC 8446 B.4 and the IANA registry. TLS 1.2 suites use P_SHA256 unless their name ends
 * in SHA384 (RFC 5246 5, RFC 5288 3, RFC 5289 3.2). Key exchange and authentication do not
 * matter here: the key log gives the master secret. */
static const struct tlsdec_suite tlsdec_suites[] = {
    {0x1301, 1, TLSDEC_AES_GCM, 16, 0, NULL, "SHA256"},
    {0x1302, 1, TLSDEC_AES_GCM, 32, 0, NULL, "SHA384"},
    {0x1303, 1, TLSDEC_CHACHA20_POLY1305, 32, 0, NULL, "SHA256"},

    {0x009C, 0, TLSDEC_AES_GCM, 16, 0, NULL, "SHA256"}, /* RSA */
    {0x009D, 0, TLSDEC_AES_GCM, 32, 0, NULL, "SHA384"},
    {0x009E, 0, TLSDEC_AES_GCM, 16, 0, NULL, "SHA256"}, /* DHE_RSA */
    {0x009F, 0, TLSDEC_AES_GCM, 32, 0, NULL, "SHA384"},
    {0x00A2, 0, TLSDEC_AES_GCM, 16, 0, NULL, "SHA256"}, /* DHE_DSS */
    {0x00A3, 0, TLSDEC_AES_GCM, 32, 0, NULL, "SHA384"},
    {0xC02B, 0, TLSDEC_AES_GCM, 16, 0, NULL, "SHA256"}, /* ECDHE_ECDSA */
    {0xC02C, 0, TLSDEC_AES_GCM, 32, 0, NULL, "SHA384"},
    {0xC02F, 0, TLSDEC_AES_GCM, 16, 0, NULL, "SHA256"}, /* ECDHE_RSA */
    {0xC030, 0, TLSDEC_AES_GCM, 32, 0, NULL, "SHA384"},

    {0xCCA8, 0, TLSDEC_CHACHA20_POLY1305, 32, 0, NULL, "SHA256"}, /* ECDHE_RSA */
    {0xCCA9, 0, TLSDEC_CHACHA20_POLY1305, 32, 0, NULL, "SHA256"}, /* ECDHE_ECDSA */
    {0xCCAA, 0, TLSDEC_CHACHA20_POLY1305, 32, 0, NULL, "SHA256"}, /* DHE_RSA */

    {0x002F, 0, TLSDEC_AES_CBC, 16, 20, "SHA1", "SHA256"}, /* RSA */
    {0x0035, 0, TLSDEC_AES_CBC, 32, 20, "SHA1", "SHA256"},
    {0x003C, 0, TLSDEC_AES_CBC, 16, 32, "SHA256", "SHA256"},
    {0x003D, 0, TLSDEC_AES_CBC, 32, 32, "SHA256", "SHA256"},
    {0x0033, 0, TLSDEC_AES_CBC, 16, 20, "SHA1", "SHA256"}, /* DHE_RSA */
    {0x0039, 0, TLSDEC_AES_CBC, 32, 20, "SHA1", "SHA256"},
    {0x0067, 0, TLSDEC_AES_CBC, 16, 32, "SHA256", "SHA256"},
    {0x006B, 0, TLSDEC_AES_CBC, 32, 32, "SHA256", "SHA256"},
    {0xC009, 0, TLSDEC_AES_CBC, 16, 20, "SHA1", "SHA256"}, /* ECDHE_ECDSA */
    {0xC00A, 0, TLSDEC_AES_CBC, 32, 20, "SHA1", "SHA256"},
    {0xC023, 0, TLSDEC_AES_CBC, 16, 32, "SHA256", "SHA256"},
    {0xC024, 0, TLSDEC_AES_CBC, 32, 48, "SHA384", "SHA384"},
    {0xC013, 0, TLSDEC_AES_CBC, 16, 20, "SHA1", "SHA256"}, /* ECDHE_RSA */
    {0xC014, 0, TLSDEC_AES_CBC, 32, 20, "SHA1", "SHA256"},
    {0xC027, 0, TLSDEC_AES_CBC, 16, 32, "SHA256", "SHA256"},
    {0xC028, 0, TLSDEC_AES_CBC, 32, 48, "SHA384", "SHA384"},
    {0, 0, 0, 0, 0, NULL, NULL},
};

static const char *const tlsdec_status_names[TLSDEC_STATUS_COUNT] = {
    [-TLSDEC_OK] = "ok",
    [-TLSDEC_E_AUTH] = "auth_failed",
    [-TLSDEC_E_LENGTH] = "bad_length",
    [-TLSDEC_E_NOKEYS] = "no_keys",
    [-TLSDEC_E_UNSUPPORTED] = "unsupported",
    [-TLSDEC_E_NOTYPE] = "no_content_type",
    [-TLSDEC_E_NOMEM] = "no_memory",
    [-TLSDEC_E_CRYPTO] = "crypto_error",
    [-TLSDEC_E_ARG] = "bad_argument",
    [-TLSDEC_E_TYPE] = "bad_record_type",
};

/* The keys of one direction in one epoch. */
struct tlsdec_keys {
    int valid;
    uint8_t key[TLSDEC_MAX_KEY];
    uint8_t iv[TLSDEC_BLOCK]; /* TLS 1.3 and ChaCha20: 12 bytes; TLS 1.2 GCM: 4-byte salt */
    uint8_t mac_key[TLSDEC_MAX_MAC];
    uint64_t seq; /* RFC 5246 6.1, RFC 8446 5.3: records read under these keys */
};

struct tlsdec_side {
    struct tlsdec_keys cur;
    /* TLS 1.2: the keys ChangeCipherSpec turns on. */
    struct tlsdec_keys pending;
    /* TLS 1.3: the application traffic secret of this epoch once epoch >= 1, of epoch 1
     * before (RFC 8446 7.2). */
    uint8_t app_secret[TLSDEC_MAX_HASH];
    int have_app_secret;
    int epoch;
    uint64_t missed; /* records failed since the last one that decrypted, at most the window */
    /* TLS 1.3 handshake messages are cut out of the plaintext to see Finished and
     * KeyUpdate, after which the next record uses new keys (RFC 8446 5.1). */
    uint8_t hs_hdr[4];
    size_t hs_hdr_len;
    uint32_t hs_left;
    struct tlsdec_counters cnt;
};

struct tlsdec {
    const struct tlsdec_suite *suite;
    uint16_t version;
    size_t hash_len;
    EVP_CIPHER *cipher;
    EVP_CIPHER_CTX *cctx;
    EVP_MAC *mac;
    EVP_MAC_CTX *mctx;
    int etm; /* TLS 1.2 CBC: -1 not known yet, 0 MAC-then-encrypt, 1 encrypt-then-MAC */
    struct tlsdec_side side[2];
};

const char *
tlsdec_error_name(int status)
{
    if (status > 0 || status <= -TLSDEC_STATUS_COUNT)
        return "unknown";
    return tlsdec_status_names[-status];
}

static const struct tlsdec_suite *
tlsdec_find_suite(uint16_t id)
{
    const struct tlsdec_suite *s;

    for (s = tlsdec_suites; s->prf_md; s++)
        if (s->id == id)
            return s;
    return NULL;
}

static size_t
tlsdec_hash_len(const char *md)
{
    return strcmp(md, "SHA384") == 0 ? 48 : 32;
}

/* ---- key derivation ------------------------------------------------------------------- */

int
tlsdec_expand_label(uint16_t suite, const uint8_t *secret, size_t secret_len, const char *label,
                    const uint8_t *context, size_t context_len, uint8_t *out, size_t out_len)
{
    static const char prefix[] = "tls13 ";
    const struct tlsdec_suite *s = tlsdec_find_suite(suite);
    uint8_t info[2 + 1 + 255 + 1 + 255];
    size_t label_len, n = 0;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[5];
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY, rc = TLSDEC_E_CRYPTO;

    if (!s || !s->tls13)
        return TLSDEC_E_UNSUPPORTED;
    if (!secret || !secret_len || !label || (!context && context_len) || !out || !out_len)
        return TLSDEC_E_ARG;
    /* RFC 8446 7.1: struct { uint16 length; opaque label<7..255>; opaque context<0..255>; }
     * HkdfLabel, the label being "tls13 " + Label. */
    label_len = strlen(label);
    if (label_len > 255 - (sizeof prefix - 1) || context_len > 255 || out_len > 0xffff)
        return TLSDEC_E_ARG;
    info[n++] = (uint8_t)(out_len >> 8);
    info[n++] = (uint8_t)out_len;
    info[n++] = (uint8_t)(sizeof prefix - 1 + label_len);
    memcpy(info + n, prefix, sizeof prefix - 1);
    n += sizeof prefix - 1;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = (uint8_t)context_len;
    if (context_len)
        memcpy(info + n, context, context_len);
    n += context_len;

    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    if (!kctx)
        goto out;
    params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)s->prf_md, 0);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
    params[4] = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
        rc = TLSDEC_OK;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

/* RFC 8446 7.3: [sender]_write_key and [sender]_write_iv from a traffic secret. */
static int
tlsdec_traffic_keys(const struct tlsdec *d, const uint8_t *secret, struct tlsdec_keys *k)
{
    int rc;

    memset(k, 0, sizeof *k);
    rc = tlsdec_expand_label(d->suite->id, secret, d->hash_len, "key", NULL, 0, k->key,
                             d->suite->key_len);
    if (rc == TLSDEC_OK)
        rc = tlsdec_expand_label(d->suite->id, secret, d->hash_len, "iv", NULL, 0, k->iv,
                                 TLSDEC_NONCE_LEN);
    k->valid = rc == TLSDEC_OK;
    return rc;
}

/* HMAC with digest md over a then b (either may be empty). */
static int
tlsdec_hmac(struct tlsdec *d, const char *md, const uint8_t *key, size_t key_len, const uint8_t *a,
            size_t a_len, const uint8_t *b, size_t b_len, uint8_t *out, size_t out_size)
{
    OSSL_PARAM params[2];
    size_t got = 0;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(d->mctx, key, key_len, params) != 1 ||
        (a_len && EVP_MAC_update(d->mctx, a, a_len) != 1) ||
        (b_len && EVP_MAC_update(d->mctx, b, b_len) != 1) ||
        EVP_MAC_final(d->mctx, out, &got, out_size) != 1)
        return TLSDEC_E_CRYPTO;
    return TLSDEC_OK;
}

/* RFC 5246 5: PRF(secret, label, seed) = P_<hash>(secret, label + seed), where
 * A(0) = seed', A(i) = HMAC(secret, A(i-1)), output = HMAC(secret, A(1) + seed') + ... */
static int
tlsdec_prf(struct tlsdec *d, const uint8_t *secret, size_t secret_len, const char *label,
           const uint8_t *seed1, size_t seed1_len, const uint8_t *seed2, size_t seed2_len,
           uint8_t *out, size_t out_len)
{
    const char *md = d->suite->prf_md;
    uint8_t seed[64 + 2 * KEYLOG_RANDOM_LEN], a[TLSDEC_MAX_HASH], block[TLSDEC_MAX_HASH];
    size_t label_len = strlen(label), seed_len, hl = tlsdec_hash_len(md), take;
    int rc = TLSDEC_OK;

    if (label_len + seed1_len + seed2_len > sizeof seed)
        return TLSDEC_E_ARG;
    memcpy(seed, label, label_len);
    memcpy(seed + label_len, seed1, seed1_len);
    memcpy(seed + label_len + seed1_len, seed2, seed2_len);
    seed_len = label_len + seed1_len + seed2_len;
    rc = tlsdec_hmac(d, md, secret, secret_len, seed, seed_len, NULL, 0, a, sizeof a);
    while (rc == TLSDEC_OK && out_len) {
        rc = tlsdec_hmac(d, md, secret, secret_len, a, hl, seed, seed_len, block, sizeof block);
        if (rc != TLSDEC_OK)
            break;
        take = out_len < hl ? out_len : hl;
        memcpy(out, block, take);
        out += take;
        out_len -= take;
        rc = tlsdec_hmac(d, md, secret, secret_len, a, hl, NULL, 0, a, sizeof a);
    }
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(block, sizeof block);
    return rc;
}

/* RFC 5246 6.3: the key block, cut into client/server MAC keys, keys and IVs. */
static int
tlsdec_key_block(struct tlsdec *d, const uint8_t *master, size_t master_len,
                 const uint8_t *client_random, const uint8_t *server_random)
{
    const struct tlsdec_suite *s = d->suite;
    uint8_t kb[2 * (TLSDEC_MAX_MAC + TLSDEC_MAX_KEY + TLSDEC_BLOCK)], *p = kb;
    size_t iv_len, need;
    int rc, dir;

    /* RFC 5288 3: 4-byte salt for GCM; RFC 7905 2: 12-byte IV for ChaCha20; CBC since
     * TLS 1.1 carries its IV in each record and takes none from the block. */
    iv_len = s->kind == TLSDEC_AES_GCM ? 4 : s->kind == TLSDEC_CHACHA20_POLY1305 ? 12 : 0;
    need = 2 * ((size_t)s->mac_len + s->key_len + iv_len);
    rc = tlsdec_prf(d, master, master_len, "key expansion", server_random, KEYLOG_RANDOM_LEN,
                    client_random, KEYLOG_RANDOM_LEN, kb, need);
    if (rc != TLSDEC_OK)
        goto out;
    for (dir = 0; dir < 2; dir++) {
        memcpy(d->side[dir].pending.mac_key, p, s->mac_len);
        p += s->mac_len;
    }
    for (dir = 0; dir < 2; dir++) {
        memcpy(d->side[dir].pending.key, p, s->key_len);
        p += s->key_len;
    }
    for (dir = 0; dir < 2; dir++) {
        memcpy(d->side[dir].pending.iv, p, iv_len);
        p += iv_len;
        d->side[dir].pending.valid = 1;
    }
out:
    OPENSSL_cleanse(kb, sizeof kb);
    return rc;
}

/* ---- record protection ---------------------------------------------------------------- */

/* RFC 8446 5.3, RFC 7905 2: the 64-bit sequence number, left-padded to the IV length, XORed
 * with the IV. */
static void
tlsdec_xor_nonce(const uint8_t *iv, uint64_t seq, uint8_t *nonce)
{
    int i;

    memcpy(nonce, iv, TLSDEC_NONCE_LEN);
    for (i = 0; i < 8; i++)
        nonce[TLSDEC_NONCE_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
}

/* RFC 5246 6.2.3.3: additional_data = seq_num + type + version + length (of the plaintext);
 * the same prefix feeds the HMAC of 6.2.3.1. */
static void
tlsdec_seq_header(uint8_t out[13], uint64_t seq, const uint8_t *hdr, size_t len)
{
    int i;

    for (i = 0; i < 8; i++)
        out[i] = (uint8_t)(seq >> (56 - 8 * i));
    out[8] = hdr[0];
    out[9] = hdr[1];
    out[10] = hdr[2];
    out[11] = (uint8_t)(len >> 8);
    out[12] = (uint8_t)len;
}

static int
tlsdec_aead_open(struct tlsdec *d, const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                 size_t aad_len, const uint8_t *in, size_t in_len, const uint8_t *tag, uint8_t *out)
{
    uint8_t t[TLSDEC_TAG_LEN];
    int a = 0, n = 0, f = 0;

    memcpy(t, tag, sizeof t);
    if (EVP_DecryptInit_ex(d->cctx, d->cipher, NULL, key, nonce) != 1 ||
        EVP_DecryptUpdate(d->cctx, NULL, &a, aad, (int)aad_len) != 1 ||
        (in_len && EVP_DecryptUpdate(d->cctx, out, &n, in, (int)in_len) != 1) ||
        EVP_CIPHER_CTX_ctrl(d->cctx, EVP_CTRL_AEAD_SET_TAG, (int)sizeof t, t) != 1)
        return TLSDEC_E_CRYPTO;
    if (EVP_DecryptFinal_ex(d->cctx, out + n, &f) != 1)
        return TLSDEC_E_AUTH;
    return TLSDEC_OK;
}

static int
tlsdec_cbc_decrypt(struct tlsdec *d, const uint8_t *key, const uint8_t *iv, const uint8_t *in,
                   size_t in_len, uint8_t *out)
{
    int n = 0, f = 0;

    if (EVP_DecryptInit_ex(d->cctx, d->cipher, NULL, key, iv) != 1 ||
        EVP_CIPHER_CTX_set_padding(d->cctx, 0) != 1 ||
        EVP_DecryptUpdate(d->cctx, out, &n, in, (int)in_len) != 1 ||
        EVP_DecryptFinal_ex(d->cctx, out + n, &f) != 1)
        return TLSDEC_E_CRYPTO;
    return TLSDEC_OK;
}

/* RFC 5246 6.2.3.2: padding_length bytes, each equal to padding_length, then
 * padding_length itself. Returns the bytes before the padding, or -1. */
static long
tlsdec_unpad(const uint8_t *p, size_t n)
{
    size_t pad, i;

    if (!n)
        return -1;
    pad = p[n - 1];
    if (pad + 1 > n)
        return -1;
    for (i = n - 1 - pad; i < n - 1; i++)
        if (p[i] != pad)
            return -1;
    return (long)(n - 1 - pad);
}

/* RFC 7366 3: IV + ciphertext, then HMAC(seq + type + version + length + IV + ciphertext). */
static int
tlsdec_open_etm(struct tlsdec *d, const struct tlsdec_keys *k, const uint8_t *hdr,
                const uint8_t *body, size_t len, uint8_t *out, size_t *plain)
{
    size_t m = d->suite->mac_len, clen;
    uint8_t sh[13], mac[TLSDEC_MAX_MAC];
    long n;
    int rc;

    if (len < TLSDEC_BLOCK + TLSDEC_BLOCK + m || (len - m) % TLSDEC_BLOCK)
        return TLSDEC_E_LENGTH;
    clen = len - m;
    tlsdec_seq_header(sh, k->seq, hdr, clen);
    rc =
        tlsdec_hmac(d, d->suite->mac_md, k->mac_key, m, sh, sizeof sh, body, clen, mac, sizeof mac);
    if (rc != TLSDEC_OK)
        return rc;
    if (CRYPTO_memcmp(mac, body + clen, m) != 0)
        return TLSDEC_E_AUTH;
    rc = tlsdec_cbc_decrypt(d, k->key, body, body + TLSDEC_BLOCK, clen - TLSDEC_BLOCK, out);
    if (rc != TLSDEC_OK)
        return rc;
    n = tlsdec_unpad(out, clen - TLSDEC_BLOCK);
    if (n < 0)
        return TLSDEC_E_AUTH;
    *plain = (size_t)n;
    return TLSDEC_OK;
}

/* RFC 5246 6.2.3.2: IV, then the encryption of content + HMAC + padding (TLS 1.1 and
 * later carry the IV in the record). */
static int
tlsdec_open_mte(struct tlsdec *d, const struct tlsdec_keys *k, const uint8_t *hdr,
                const uint8_t *body, size_t len, uint8_t *out, size_t *plain)
{
    size_t m = d->suite->mac_len, n;
    uint8_t sh[13], mac[TLSDEC_MAX_MAC];
    long unpadded;
    int rc;

    if (len < TLSDEC_BLOCK + TLSDEC_BLOCK || len % TLSDEC_BLOCK || len - TLSDEC_BLOCK < m + 1)
        return TLSDEC_E_LENGTH;
    rc = tlsdec_cbc_decrypt(d, k->key, body, body + TLSDEC_BLOCK, len - TLSDEC_BLOCK, out);
    if (rc != TLSDEC_OK)
        return rc;
    unpadded = tlsdec_unpad(out, len - TLSDEC_BLOCK);
    /* A bad padding and a bad MAC are the same failure (RFC 5246 6.2.3.2's warning). */
    if (unpadded < 0 || (size_t)unpadded < m)
        return TLSDEC_E_AUTH;
    n = (size_t)unpadded - m;
    tlsdec_seq_header(sh, k->seq, hdr, n);
    rc = tlsdec_hmac(d, d->suite->mac_md, k->mac_key, m, sh, sizeof sh, out, n, mac, sizeof mac);
    if (rc != TLSDEC_OK)
        return rc;
    if (CRYPTO_memcmp(mac, out + n, m) != 0)
        return TLSDEC_E_AUTH;
    *plain = n;
    return TLSDEC_OK;
}

/* Whichever of the two CBC layouts the connection uses: the ServerHello's
 * encrypt_then_mac extension is not at hand, so the first record that checks out under
 * one of them settles it. A chance HMAC match is as likely as a forged one. */
static int
tlsdec_open_cbc(struct tlsdec *d, const struct tlsdec_keys *k, const uint8_t *hdr,
                const uint8_t *body, size_t len, uint8_t *out, size_t *plain)
{
    int rc_etm = TLSDEC_E_AUTH, rc_mte = TLSDEC_E_AUTH;

    if (d->etm != 0) {
        rc_etm = tlsdec_open_etm(d, k, hdr, body, len, out, plain);
        if (rc_etm == TLSDEC_OK)
            d->etm = 1;
        if (rc_etm == TLSDEC_OK || d->etm == 1)
            return rc_etm;
    }
    rc_mte = tlsdec_open_mte(d, k, hdr, body, len, out, plain);
    if (rc_mte == TLSDEC_OK)
        d->etm = 0;
    if (rc_mte == TLSDEC_E_LENGTH && d->etm < 0 && rc_etm != TLSDEC_E_LENGTH)
        return rc_etm;
    return rc_mte;
}

static int
tlsdec_open12(struct tlsdec *d, const struct tlsdec_keys *k, const uint8_t *hdr,
              const uint8_t *body, size_t len, uint8_t *out, size_t *plain)
{
    uint8_t nonce[TLSDEC_NONCE_LEN], aad[13];
    size_t n;
    int rc;

    switch (d->suite->kind) {
    case TLSDEC_AES_GCM:
        /* RFC 5288 3: nonce = salt (4, from the key block) + nonce_explicit (8, in the
         * record); the record ends with the 16-byte tag. */
        if (len < 8 + TLSDEC_TAG_LEN)
            return TLSDEC_E_LENGTH;
        n = len - 8 - TLSDEC_TAG_LEN;
        memcpy(nonce, k->iv, 4);
        memcpy(nonce + 4, body, 8);
        tlsdec_seq_header(aad, k->seq, hdr, n);
        rc = tlsdec_aead_open(d, k->key, nonce, aad, sizeof aad, body + 8, n,
                              body + len - TLSDEC_TAG_LEN, out);
        break;
    case TLSDEC_CHACHA20_POLY1305:
        /* RFC 7905 2: no explicit nonce; the sequence number XORed into the IV. */
        if (len < TLSDEC_TAG_LEN)
            return TLSDEC_E_LENGTH;
        n = len - TLSDEC_TAG_LEN;
        tlsdec_xor_nonce(k->iv, k->seq, nonce);
        tlsdec_seq_header(aad, k->seq, hdr, n);
        rc = tlsdec_aead_open(d, k->key, nonce, aad, sizeof aad, body, n, body + n, out);
        break;
    default:
        return tlsdec_open_cbc(d, k, hdr, body, len, out, plain);
    }
    if (rc == TLSDEC_OK)
        *plain = n;
    return rc;
}

/* RFC 8446 5.2: the whole header is the additional data; the tag ends the record. */
static int
tlsdec_open13(struct tlsdec *d, const struct tlsdec_keys *k, const uint8_t *hdr,
              const uint8_t *body, size_t len, uint8_t *out, size_t *plain)
{
    uint8_t nonce[TLSDEC_NONCE_LEN];
    size_t n;
    int rc;

    /* At least the content type byte besides the tag. */
    if (len < TLSDEC_TAG_LEN + 1 || len > TLSDEC_MAX_RECORD13)
        return TLSDEC_E_LENGTH;
    n = len - TLSDEC_TAG_LEN;
    tlsdec_xor_nonce(k->iv, k->seq, nonce);
    rc = tlsdec_aead_open(d, k->key, nonce, hdr, 5, body, n, body + n, out);
    if (rc == TLSDEC_OK)
        *plain = n;
    return rc;
}

/* ---- TLS 1.3 key phases --------------------------------------------------------------- */

/* The keys this direction moves to at its next key change: application traffic secret 0
 * after the handshake, then secret N+1 = HKDF-Expand-Label(secret N, "traffic upd", "",
 * Hash.length) at each KeyUpdate (RFC 8446 7.2). */
static int
tlsdec_next_keys(const struct tlsdec *d, const struct tlsdec_side *s, struct tlsdec_keys *k,
                 uint8_t *secret)
{
    int rc;

    if (!s->have_app_secret)
        return TLSDEC_E_NOKEYS;
    if (s->epoch == 0) {
        memcpy(secret, s->app_secret, d->hash_len);
    } else {
        rc = tlsdec_expand_label(d->suite->id, s->app_secret, d->hash_len, "traffic upd", NULL, 0,
                                 secret, d->hash_len);
        if (rc != TLSDEC_OK)
            return rc;
    }
    return tlsdec_traffic_keys(d, secret, k);
}

static void
tlsdec_commit(const struct tlsdec *d, struct tlsdec_side *s, const struct tlsdec_keys *k,
              const uint8_t *secret)
{
    s->cur = *k;
    s->cur.seq = 0;
    s->missed = 0;
    memcpy(s->app_secret, secret, d->hash_len);
    s->epoch++;
    /* Messages never span a key change (RFC 8446 5.1). */
    s->hs_hdr_len = 0;
    s->hs_left = 0;
}

/* Walks the handshake messages of one plaintext record; 1 when one that changes this
 * direction's keys ended in it: Finished under handshake keys (RFC 8446 4.4.4, 7.3), or
 * KeyUpdate under application keys (4.6.3). */
static int
tlsdec_hs_scan(struct tlsdec_side *s, const uint8_t *p, size_t n)
{
    int change = 0;
    size_t take;

    while (n) {
        if (s->hs_hdr_len < 4) {
            take = 4 - s->hs_hdr_len < n ? 4 - s->hs_hdr_len : n;
            memcpy(s->hs_hdr + s->hs_hdr_len, p, take);
            s->hs_hdr_len += take;
            p += take;
            n -= take;
            if (s->hs_hdr_len < 4)
                break;
            s->hs_left = (uint32_t)s->hs_hdr[1] << 16 | (uint32_t)s->hs_hdr[2] << 8 | s->hs_hdr[3];
        }
        take = s->hs_left < n ? s->hs_left : n;
        s->hs_left -= (uint32_t)take;
        p += take;
        n -= take;
        if (s->hs_left == 0) {
            uint8_t type = s->hs_hdr[0];
            if ((type == TLSDEC_HS_FINISHED && s->epoch == 0) ||
                (type == TLSDEC_HS_KEY_UPDATE && s->epoch >= 1))
                change = 1;
            s->hs_hdr_len = 0;
        }
    }
    return change;
}

/* The direction's keys at its expected sequence number, then at the numbers of the records
 * that failed before: a record that was not the peer's (TLS 1.3 early data, an injected
 * one) leaves the number where it was, a damaged one of the peer's used it up. */
static int
tlsdec_open_cur(struct tlsdec *d, struct tlsdec_side *s, const uint8_t *hdr, const uint8_t *body,
                size_t len, uint8_t *out, size_t *plain)
{
    struct tlsdec_keys k;
    uint64_t j;
    int rc = TLSDEC_E_NOKEYS;

    if (!s->cur.valid)
        return rc;
    k = s->cur;
    for (j = 0; j <= s->missed; j++) {
        k.seq = s->cur.seq + j;
        if (d->version == TLSDEC_TLS13)
            rc = tlsdec_open13(d, &k, hdr, body, len, out, plain);
        else
            rc = tlsdec_open12(d, &k, hdr, body, len, out, plain);
        if (rc != TLSDEC_E_AUTH)
            break;
    }
    if (rc == TLSDEC_OK) {
        s->cur.seq = k.seq + 1;
        s->missed = 0;
    }
    OPENSSL_cleanse(&k, sizeof k);
    return rc;
}

static int
tlsdec_record13(struct tlsdec *d, struct tlsdec_side *s, const uint8_t *hdr, const uint8_t *body,
                size_t len, uint8_t *out, size_t *plain, uint8_t *inner)
{
    struct tlsdec_keys next;
    uint8_t secret[TLSDEC_MAX_HASH];
    size_t n = 0;
    int rc = TLSDEC_E_NOKEYS, rc2;

    rc = tlsdec_open_cur(d, s, hdr, body, len, out, &n);
    /* A key change whose message went unseen (Finished in a record that did not decrypt,
     * keys missing for the handshake): the record may be the first under the next keys. */
    if (rc == TLSDEC_E_AUTH || rc == TLSDEC_E_NOKEYS) {
        rc2 = tlsdec_next_keys(d, s, &next, secret);
        if (rc2 == TLSDEC_OK)
            rc2 = tlsdec_open13(d, &next, hdr, body, len, out, &n);
        if (rc2 == TLSDEC_OK) {
            tlsdec_commit(d, s, &next, secret);
            s->cur.seq = 1;
        }
        if (rc2 == TLSDEC_OK || rc2 == TLSDEC_E_LENGTH)
            rc = rc2;
        OPENSSL_cleanse(&next, sizeof next);
    }
    if (rc != TLSDEC_OK)
        goto out;
    /* RFC 8446 5.4: zeros after the content type are padding. */
    while (n && out[n - 1] == 0)
        n--;
    if (!n) {
        rc = TLSDEC_E_NOTYPE;
        goto out;
    }
    *inner = out[--n];
    *plain = n;
    if (*inner == TLSDEC_CT_HANDSHAKE && tlsdec_hs_scan(s, out, n)) {
        if (tlsdec_next_keys(d, s, &next, secret) == TLSDEC_OK) {
            tlsdec_commit(d, s, &next, secret);
        } else {
            /* No keys for what follows: the records after fail, counted as such. */
            s->cur.valid = 0;
            s->epoch++;
        }
        OPENSSL_cleanse(&next, sizeof next);
    }
out:
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
}

/* ---- the public interface ------------------------------------------------------------- */

static int
tlsdec_load13(struct tlsdec *d, const struct keylog *kl, const uint8_t *client_random)
{
    static const enum keylog_label hs[2] = {KEYLOG_CLIENT_HANDSHAKE, KEYLOG_SERVER_HANDSHAKE};
    static const enum keylog_label app[2] = {KEYLOG_CLIENT_TRAFFIC_0, KEYLOG_SERVER_TRAFFIC_0};
    uint8_t secret[KEYLOG_MAX_SECRET];
    size_t len;
    int dir, found = 0, rc = TLSDEC_OK;

    for (dir = 0; dir < 2 && rc == TLSDEC_OK; dir++) {
        struct tlsdec_side *s = &d->side[dir];
        /* A secret of the wrong length belongs to some other suite: as good as none. */
        if (keylog_find(kl, client_random, hs[dir], secret, &len) == KEYLOG_OK &&
            len == d->hash_len) {
            rc = tlsdec_traffic_keys(d, secret, &s->cur);
            found++;
        }
        if (keylog_find(kl, client_random, app[dir], secret, &len) == KEYLOG_OK &&
            len == d->hash_len) {
            memcpy(s->app_secret, secret, len);
            s->have_app_secret = 1;
            found++;
        }
    }
    OPENSSL_cleanse(secret, sizeof secret);
    if (rc == TLSDEC_OK && !found)
        rc = TLSDEC_E_NOKEYS;
    return rc;
}

int
tlsdec_missing_secrets(const struct tlsdec *d)
{
    return d && d->version == TLSDEC_TLS13 &&
           (!d->side[0].have_app_secret || !d->side[1].have_app_secret);
}

int
tlsdec_add_secrets(struct tlsdec *d, const struct keylog *kl,
                   const uint8_t client_random[KEYLOG_RANDOM_LEN])
{
    static const enum keylog_label app[2] = {KEYLOG_CLIENT_TRAFFIC_0, KEYLOG_SERVER_TRAFFIC_0};
    uint8_t secret[KEYLOG_MAX_SECRET];
    size_t len;
    int added = 0;

    if (!tlsdec_missing_secrets(d) || !kl || !client_random)
        return 0;
    for (int dir = 0; dir < 2; dir++) {
        struct tlsdec_side *s = &d->side[dir];
        if (s->have_app_secret)
            continue;
        if (keylog_find(kl, client_random, app[dir], secret, &len) != KEYLOG_OK ||
            len != d->hash_len)
            continue;
        memcpy(s->app_secret, secret, len);
        s->have_app_secret = 1;
        /* A Finished seen without the secret moved the side past epoch 0 with no keys:
         * back to where the secret itself is the next keys. */
        if (!s->cur.valid && s->epoch == 1)
            s->epoch = 0;
        added++;
    }
    OPENSSL_cleanse(secret, sizeof secret);
    return added;
}

struct tlsdec *
tlsdec_create(uint16_t version, uint16_t suite, const uint8_t client_random[KEYLOG_RANDOM_LEN],
              const uint8_t server_random[KEYLOG_RANDOM_LEN], const struct keylog *kl, int *why)
{
    const struct tlsdec_suite *s = tlsdec_find_suite(suite);
    uint8_t master[KEYLOG_MAX_SECRET];
    size_t master_len = 0;
    const char *name;
    struct tlsdec *d = NULL;
    int rc = TLSDEC_E_UNSUPPORTED;

    if (!client_random || !server_random || !kl) {
        rc = TLSDEC_E_ARG;
        goto out;
    }
    if (!s || (version == TLSDEC_TLS13) != (s->tls13 != 0) ||
        (version != TLSDEC_TLS12 && version != TLSDEC_TLS13))
        goto out;
    if (version == TLSDEC_TLS12 &&
        keylog_find(kl, client_random, KEYLOG_CLIENT_RANDOM, master, &master_len) != KEYLOG_OK) {
        rc = TLSDEC_E_NOKEYS;
        goto out;
    }
    rc = TLSDEC_E_NOMEM;
    d = mem_calloc(1, sizeof *d);
    if (!d)
        goto out;
    d->suite = s;
    d->version = version;
    d->hash_len = tlsdec_hash_len(s->prf_md);
    d->etm = -1;
    if (s->kind == TLSDEC_CHACHA20_POLY1305)
        name = "ChaCha20-Poly1305";
    else if (s->kind == TLSDEC_AES_GCM)
        name = s->key_len == 16 ? "AES-128-GCM" : "AES-256-GCM";
    else
        name = s->key_len == 16 ? "AES-128-CBC" : "AES-256-CBC";
    /* Fetched once per connection rather than looked up by name at every record. */
    d->cipher = EVP_CIPHER_fetch(NULL, name, NULL);
    d->cctx = EVP_CIPHER_CTX_new();
    d->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    d->mctx = d->mac ? EVP_MAC_CTX_new(d->mac) : NULL;
    if (!d->cipher || !d->cctx || !d->mctx) {
        /* A provider without the algorithm (a FIPS-only build lacks ChaCha20). */
        rc = !d->cipher || !d->mac ? TLSDEC_E_UNSUPPORTED : TLSDEC_E_NOMEM;
        goto out;
    }
    if (version == TLSDEC_TLS12)
        rc = tlsdec_key_block(d, master, master_len, client_random, server_random);
    else
        rc = tlsdec_load13(d, kl, client_random);
out:
    OPENSSL_cleanse(master, sizeof master);
    if (rc != TLSDEC_OK) {
        tlsdec_destroy(d);
        d = NULL;
    }
    if (why)
        *why = rc;
    return d;
}

void
tlsdec_destroy(struct tlsdec *d)
{
    if (!d)
        return;
    EVP_CIPHER_CTX_free(d->cctx);
    EVP_CIPHER_free(d->cipher);
    EVP_MAC_CTX_free(d->mctx);
    EVP_MAC_free(d->mac);
    OPENSSL_cleanse(d, sizeof *d);
    mem_free(d);
}

/* Whether this record of the direction is protected (see tlsdec_record). */
static int
tlsdec_side_protected(const struct tlsdec *d, const struct tlsdec_side *s, uint8_t type)
{
    if (d->version == TLSDEC_TLS13)
        return type == TLSDEC_CT_APPLICATION_DATA;
    return s->epoch > 0;
}

int
tlsdec_protected(const struct tlsdec *d, enum tls_dir dir, uint8_t type)
{
    if (!d || (dir != TLS_CLIENT && dir != TLS_SERVER))
        return 0;
    return tlsdec_side_protected(d, &d->side[dir], type);
}

int
tlsdec_record(struct tlsdec *d, enum tls_dir dir, const uint8_t hdr[5], const uint8_t *body,
              size_t len, uint8_t *out, size_t *outlen, uint8_t *inner_type)
{
    struct tlsdec_side *s;
    size_t n = 0;
    int rc;

    if (!d || (dir != TLS_CLIENT && dir != TLS_SERVER) || !hdr || (!body && len) || !out ||
        !outlen || !inner_type || *outlen < len)
        return TLSDEC_E_ARG;
    s = &d->side[dir];
    *inner_type = 0;
    if (hdr[0] < TLSDEC_CT_CHANGE_CIPHER_SPEC || hdr[0] > TLSDEC_CT_APPLICATION_DATA) {
        rc = TLSDEC_E_TYPE;
        goto out;
    }
    if (!tlsdec_side_protected(d, s, hdr[0])) {
        if (len)
            memcpy(out, body, len);
        *outlen = len;
        *inner_type = hdr[0];
        s->cnt.clear++;
        /* RFC 5246 7.1: the sender's records after its ChangeCipherSpec use the new keys
         * and sequence numbers from zero. */
        if (d->version == TLSDEC_TLS12 && hdr[0] == TLSDEC_CT_CHANGE_CIPHER_SPEC) {
            s->cur = s->pending;
            s->cur.seq = 0;
            s->epoch = 1;
        }
        return TLSDEC_OK;
    }
    if (((size_t)hdr[3] << 8 | hdr[4]) != len || len > TLSDEC_MAX_RECORD)
        rc = TLSDEC_E_LENGTH;
    else if (d->version == TLSDEC_TLS13)
        rc = tlsdec_record13(d, s, hdr, body, len, out, &n, inner_type);
    else if ((rc = tlsdec_open_cur(d, s, hdr, body, len, out, &n)) == TLSDEC_OK)
        *inner_type = hdr[0];
out:
    if ((rc == TLSDEC_E_AUTH || rc == TLSDEC_E_LENGTH) && s->missed < TLSDEC_SEQ_WINDOW)
        s->missed++;
    if (rc != TLSDEC_OK) {
        /* Unauthenticated bytes never reach the caller. */
        memset(out, 0, len);
        *outlen = 0;
        *inner_type = 0;
        s->cnt.failed++;
        return rc;
    }
    *outlen = n;
    s->cnt.decrypted++;
    return TLSDEC_OK;
}

void
tlsdec_get_counters(const struct tlsdec *d, enum tls_dir dir, struct tlsdec_counters *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof *c);
    if (d && (dir == TLS_CLIENT || dir == TLS_SERVER))
        *c = d->side[dir].cnt;
}

int
tlsdec_epoch(const struct tlsdec *d, enum tls_dir dir)
{
    if (!d || (dir != TLS_CLIENT && dir != TLS_SERVER))
        return -1;
    return d->side[dir].epoch;
}
