/* tls.h - reads the cleartext part of a TLS connection: record layer and handshake
 * (RFC 8446, RFC 5246, RFC 6066 SNI, RFC 7301 ALPN), alerts, certificates (TLS 1.2); and,
 * given a key log, the plaintext of its protected records (tlsdec.h). */
#ifndef SMTPSNIFF_TLS_H
#define SMTPSNIFF_TLS_H

#include <stddef.h>
#include <stdint.h>

enum tls_dir { TLS_CLIENT = 0, TLS_SERVER = 1 };

struct tls_view;
struct keylog;
struct jt_node;

/* Receives the decrypted application data of direction dir, in stream order; data is
 * borrowed for the call. data NULL: a protected record of len bytes (its plaintext is at
 * most that long) could not be decrypted after plaintext had begun to flow in this
 * direction, so the plaintext stream has a hole there. */
typedef void (*tls_plaintext_fn)(void *arg, enum tls_dir dir, const uint8_t *data, size_t len);

/* max_buffer caps the bytes held to reassemble one handshake message (0: 65536). */
struct tls_view *tls_create(size_t max_buffer);
void tls_destroy(struct tls_view *t);

/* Decrypts the connection with the secrets of kl (borrowed: it must outlive t), handing
 * the plaintext to fn. Set before the ServerHello is fed; the decryptor is built from the
 * ServerHello (tlsdec_create), and "decryption" appears in the report. */
void tls_set_keylog(struct tls_view *t, const struct keylog *kl, tls_plaintext_fn fn, void *arg);
/* A key log that is still being written (live capture): refresh(arg, force) reads what was
 * appended since and returns > 0 when it brought new secrets; with force 0 it may decline
 * (it looked less than a second ago). Called at the ServerHello and, while this connection
 * lacks secrets, at the start of each later record, so that secrets written after the
 * handshake began are still used. */
void tls_set_keylog_refresh(struct tls_view *t, int (*refresh)(void *arg, int force), void *arg);
/* 1 once a decryptor for this connection exists (the key log knew its client random). */
int tls_decrypting(const struct tls_view *t);

/* Stream bytes of one direction, in order, starting at the first TLS record. */
void tls_feed(struct tls_view *t, enum tls_dir dir, const uint8_t *data, size_t len);
/* Bytes of this direction are missing: records after this point are neither parsed nor
 * decrypted (the plaintext callback is not told: the caller knows of the gap). */
void tls_gap(struct tls_view *t, enum tls_dir dir);

/* 1 when both sides sent application data (or TLS 1.3's encrypted finish was seen). */
int tls_handshake_complete(const struct tls_view *t);
/* Number of fatal alerts seen, in clear or decrypted. */
int tls_fatal_alerts(const struct tls_view *t);

/* Adds to obj: "version", "cipher", "sni", "alpn", "client_versions", "client_ciphers"
 * (count), "certificate" {subject, issuer, not_before, not_after, sha256} (TLS <= 1.2),
 * "alerts" [{dir, level, description}] (decrypted ones included), "handshake_complete",
 * "records" {client, server}, "parse_error" when the stream is not TLS, and with a key log
 * "decryption" {status, client: {decrypted, failed}, server: {...}}: status "ok", or why no
 * plaintext came ("no_server_hello", "no_keys", "unsupported"; "auth_failed" when records of a
 * direction failed before any of its application data opened: wrong secrets). Returns 0 or
 * -1. */
int tls_report(const struct tls_view *t, struct jt_node *obj);

#endif
