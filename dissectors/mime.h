/* mime.h - the MIME structure of one message (RFC 2045, 2046, 2047, 2183, 2231): its
 * entities (parts) with their content type, charset, file name, transfer encoding, size and
 * the SHA-256 of their decoded content, and how they nest. Read as a stream, a line at a
 * time, with bounded state: nothing of the body is kept. */
#ifndef SMTPSNIFF_MIME_H
#define SMTPSNIFF_MIME_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct mime;
struct jt_node;

struct mime_config {
    int hash;          /* SHA-256 of each leaf part's decoded content */
    const EVP_MD *sha; /* borrowed; NULL: EVP_sha256() */
    size_t max_parts;  /* parts listed; 0: 64 (the others are counted) */
    size_t max_depth;  /* nesting read into; 0: 8 (deeper containers are read as leaves) */
};

struct mime *mime_create(const struct mime_config *cfg);
void mime_destroy(struct mime *m);
/* The message's bytes as delivered (after dot-unstuffing), from its first header byte. */
void mime_feed(struct mime *m, const uint8_t *p, size_t n);
/* Bytes are missing: the structure after them cannot be known, so reading stops there. */
void mime_gap(struct mime *m);
/* The message ended: every part still open ends here. */
void mime_finish(struct mime *m);
/* Adds "mime": {"parts": [...], "parts_dropped", "depth_limited", "gap"}; the fields are
 * described in docs/schema.md. Returns 0, or -1 without memory. */
int mime_report(const struct mime *m, struct jt_node *obj);

/* Whether the n bytes at p are name (lower case) without regard to ASCII case: a header
 * field's name, a parameter's, a charset's. */
int mime_name_is(const uint8_t *p, size_t n, const char *name);

#endif
