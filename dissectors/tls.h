/* tls.h - reads the cleartext part of a TLS connection: record layer and handshake
 * (RFC 8446, RFC 5246, RFC 6066 SNI, RFC 7301 ALPN), alerts, certificates (TLS 1.2). */
#ifndef SMTPSNIFF_TLS_H
#define SMTPSNIFF_TLS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum tls_dir { TLS_CLIENT = 0, TLS_SERVER = 1 };

struct tls_view;

/* max_buffer caps the bytes held to reassemble one handshake message (0: 65536). */
struct tls_view *tls_create(size_t max_buffer);
void tls_destroy(struct tls_view *t);

/* Stream bytes of one direction, in order, starting at the first TLS record. */
void tls_feed(struct tls_view *t, enum tls_dir dir, const uint8_t *data, size_t len);
/* Bytes of this direction are missing: records after this point are not parsed. */
void tls_gap(struct tls_view *t, enum tls_dir dir);

/* 1 when both sides sent application data (or TLS 1.3's encrypted finish was seen). */
int tls_handshake_complete(const struct tls_view *t);
/* Number of fatal alerts seen in clear. */
int tls_fatal_alerts(const struct tls_view *t);

/* Adds to obj: "version", "cipher", "sni", "alpn", "client_versions", "client_ciphers"
 * (count), "certificate" {subject, issuer, not_before, not_after, sha256} (TLS <= 1.2),
 * "alerts" [{dir, level, description}], "handshake_complete", "records" {client, server},
 * "parse_error" when the stream is not TLS. Returns 0 or -1. */
int tls_report(const struct tls_view *t, json_t *obj);

#endif
