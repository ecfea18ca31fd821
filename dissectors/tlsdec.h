/* tlsdec.h - decryption of one TLS connection's records with secrets from a key log:
 * TLS 1.3 (RFC 8446 5.2-5.4, 7.1-7.3: AES-GCM, ChaCha20-Poly1305, KeyUpdate) and TLS 1.2
 * (RFC 5246 5, 6.2.3, 6.3: AES-GCM per RFC 5288, ChaCha20-Poly1305 per RFC 7905, AES-CBC
 * with HMAC-SHA1/SHA256/SHA384, MAC-then-encrypt or encrypt-then-MAC per RFC 7366). */
#ifndef SMTPSNIFF_TLSDEC_H
#define SMTPSNIFF_TLSDEC_H

#include <stddef.h>
#include <stdint.h>

#include "keylog.h"
#include "tls.h"

#define TLSDEC_TLS12 0x0303
#define TLSDEC_TLS13 0x0304
/* RFC 5246 6.2.3: a protected record body is at most 2^14 + 2048 bytes (RFC 8446 5.2:
 * 2^14 + 256 for TLS 1.3). The plaintext is never longer than the body it came from. */
#define TLSDEC_MAX_RECORD (16384 + 2048)

enum tlsdec_status {
    TLSDEC_OK = 0,
    TLSDEC_E_AUTH = -1,        /* tag, MAC or padding check failed: wrong keys or tampering */
    TLSDEC_E_LENGTH = -2,      /* body shorter than the cipher's overhead, longer than allowed,
                                * or not what the header says */
    TLSDEC_E_NOKEYS = -3,      /* the key log has no secret for this connection or direction */
    TLSDEC_E_UNSUPPORTED = -4, /* protocol version or cipher suite not handled */
    TLSDEC_E_NOTYPE = -5,      /* TLS 1.3 plaintext of zeros only (RFC 8446 5.4) */
    TLSDEC_E_NOMEM = -6,
    TLSDEC_E_CRYPTO = -7, /* the crypto library refused an operation it should not */
    TLSDEC_E_ARG = -8,    /* NULL pointer, bad direction, output buffer too small */
    TLSDEC_E_TYPE = -9,   /* a record type TLS does not define (RFC 8446 5, RFC 5246 6.2.1) */
    TLSDEC_STATUS_COUNT = 10
};

struct tlsdec_counters {
    uint64_t clear;     /* records passed through unprotected (before ChangeCipherSpec...) */
    uint64_t decrypted; /* records whose protection checked out */
    uint64_t failed;    /* protected records that could not be decrypted */
};

struct tlsdec;

/* A decryptor for the connection whose ClientHello.random and ServerHello.random are given,
 * with the version and cipher suite the ServerHello selected. The secrets are copied out of
 * kl, which may be destroyed afterwards. NULL when the version or suite is not handled, the
 * key log holds no secret for this client random, or on allocation failure; *why (if not
 * NULL) then says which (TLSDEC_E_UNSUPPORTED, TLSDEC_E_NOKEYS, TLSDEC_E_NOMEM). A TLS 1.3
 * connection with only some of its four secrets is accepted: records of the missing
 * phase fail with TLSDEC_E_NOKEYS. */
struct tlsdec *tlsdec_create(uint16_t version, uint16_t suite,
                             const uint8_t client_random[KEYLOG_RANDOM_LEN],
                             const uint8_t server_random[KEYLOG_RANDOM_LEN],
                             const struct keylog *kl, int *why);
void tlsdec_destroy(struct tlsdec *d);
/* A key log that grows while the capture runs (live): non-zero while a TLS 1.3 direction
 * still lacks its application traffic secret; tlsdec_add_secrets takes those that kl now
 * holds for this connection. Returns the number of secrets taken. */
int tlsdec_missing_secrets(const struct tlsdec *d);
int tlsdec_add_secrets(struct tlsdec *d, const struct keylog *kl,
                       const uint8_t client_random[KEYLOG_RANDOM_LEN]);

/* One whole record of direction dir, in stream order, every record after the ServerHello
 * (records before it are never protected): hdr is its 5-byte header, body its len bytes.
 * Unprotected records (TLS 1.2 up to and including the direction's ChangeCipherSpec, which
 * switches the direction to its keys; TLS 1.3 records whose outer type is not
 * application_data, RFC 8446 5) are copied unchanged. On success the plaintext is in out
 * and its length in *outlen, and *inner_type is the real content type (RFC 8446 5.2).
 * *outlen holds the size of out on entry; out must have room for len bytes and must not
 * overlap body. On failure out holds zeros, *outlen is 0, and the direction's sequence
 * number does not move; the next record is tried at it and, after failures, at the
 * numbers the failed records would have used (up to 3), so neither a record that is not
 * the peer's (TLS 1.3 early data, an injected record) nor a damaged one of the peer's
 * desynchronises the records after it. */
int tlsdec_record(struct tlsdec *d, enum tls_dir dir, const uint8_t hdr[5], const uint8_t *body,
                  size_t len, uint8_t *out, size_t *outlen, uint8_t *inner_type);

/* 1 when the next record of this outer type in direction dir is protected: a caller that
 * handles unprotected records itself passes tlsdec_record only these, and TLS 1.2's
 * ChangeCipherSpec. */
int tlsdec_protected(const struct tlsdec *d, enum tls_dir dir, uint8_t type);

/* "ok", "auth_failed", "bad_length"... for a tlsdec_status; "unknown" for anything else. */
const char *tlsdec_error_name(int status);

void tlsdec_get_counters(const struct tlsdec *d, enum tls_dir dir, struct tlsdec_counters *c);
/* TLS 1.3: 0 while the direction uses handshake keys, 1 + n after its n-th KeyUpdate on
 * application keys. TLS 1.2: 0 before the direction's ChangeCipherSpec, 1 after. */
int tlsdec_epoch(const struct tlsdec *d, enum tls_dir dir);

/* RFC 8446 7.1 HKDF-Expand-Label(secret, label, context, out_len), with the hash of the
 * TLS 1.3 cipher suite `suite`; label without the "tls13 " prefix. Returns 0 or a
 * tlsdec_status. */
int tlsdec_expand_label(uint16_t suite, const uint8_t *secret, size_t secret_len, const char *label,
                        const uint8_t *context, size_t context_len, uint8_t *out, size_t out_len);

#endif
