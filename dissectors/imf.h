/* imf.h - one message as it crosses DATA or BDAT: end-of-data detection and
 * dot-unstuffing (RFC 5321 4.1.1.4, 4.5.2), header fields (RFC 5322), size and SHA-256. */
#ifndef SMTPSNIFF_IMF_H
#define SMTPSNIFF_IMF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct imf;
struct jt_node;

/* Where the message's bytes go as they are read (the .eml writer lives outside dissectors/):
 * begin when the parser is created, then bytes with every piece of the message as it is
 * delivered (dot-unstuffed; what "bytes" and "sha256" cover), then end exactly once, at
 * imf_finish or imf_destroy. whole is 1 when the message came through to its end (DATA's
 * CRLF.CRLF, or imf_complete for BDAT) with no byte missing from the capture. begin returns
 * the handle the other two get; NULL: this message is not written. */
/* The envelope the message came with, as far as the capture holds it: the MAIL FROM path
 * (has_from 0: no MAIL FROM was seen) and the recipients the server accepted or had not yet
 * answered when the message began (BDAT may be sent before those replies). Wire bytes,
 * borrowed for the call to begin only. */
struct imf_bytes {
    const uint8_t *p;
    size_t n;
};

struct imf_envelope {
    int has_from;
    struct imf_bytes from;
    const struct imf_bytes *rcpt;
    size_t nrcpt;
};

struct imf_sink {
    /* env: NULL when the message has no transaction to take it from. */
    void *(*begin)(void *ctx, uint64_t id, const struct imf_envelope *env);
    void (*bytes)(void *msg, const uint8_t *p, size_t n);
    void (*end)(void *msg, int whole);
    void *ctx;
};

struct imf_config {
    int hash;                            /* compute SHA-256 of the message as delivered */
    struct imf_sink sink;                /* begin NULL: the bytes go nowhere */
    uint64_t sink_id;                    /* handed to sink.begin */
    const struct imf_envelope *envelope; /* handed to sink.begin; borrowed by imf_create */
    size_t max_header;                   /* header bytes parsed; 0: 65536 */
    size_t max_received;                 /* Received fields kept; 0: 50 */
    /* The SHA-256 implementation, fetched once by the caller (EVP_MD_fetch): OpenSSL 3 looks
     * EVP_sha256() up by name on every use. NULL: EVP_sha256(). Borrowed. */
    const EVP_MD *sha256;
};

struct imf *imf_create(const struct imf_config *cfg);
void imf_destroy(struct imf *m);

/* DATA mode: bytes as they come from the client after 354. Returns the number of bytes
 * that belong to the message including the terminating CRLF.CRLF; *done is set to 1 when
 * that terminator was found (the bytes after it are commands again). Dot-unstuffing is
 * done here; end-of-data forms other than CRLF.CRLF (LF.LF, CR.CR, LF.CRLF, CRLF.LF) seen
 * inside the body are recorded as smuggling evidence, not honoured. */
size_t imf_data_feed(struct imf *m, const uint8_t *p, size_t n, int *done);
/* BDAT mode: raw chunk bytes, no stuffing, no terminator. */
void imf_chunk_feed(struct imf *m, const uint8_t *p, size_t n);
/* Bytes of the message are missing from the capture. */
void imf_gap(struct imf *m, uint64_t n);
/* BDAT: the last chunk came through (DATA's end is found by the parser itself). */
void imf_complete(struct imf *m);
/* No more bytes: finalises the hash, ends the sink's message. */
void imf_finish(struct imf *m);

/* Adds to obj: "bytes", "sha256" (when hashed and no gap), "headers" {from, to, cc,
 * subject, date, message_id, received [..]}, "end_of_data" ("crlf.crlf"), "smuggling"
 * [{form, offset}], "bare_lf" count, "longest_line", "gap" (bytes missing). Returns 0/-1.
 * "bytes" and "sha256" cover the same bytes: in DATA mode the dot-unstuffed message from the
 * first byte after 354 up to and including the CRLF before the final ".", without the
 * ".CRLF" itself (".\r\n" at once: 0 bytes, SHA-256 of nothing); in BDAT mode the chunk
 * bytes as sent. Also "bare_cr", "smuggling_dropped", "headers.received_dropped" when
 * capped; a smuggling offset is that of the '.' in the DATA stream (0: first byte after 354),
 * forms are "lf.lf", "lf.crlf", "crlf.lf", "cr.cr", "cr.crlf", "crlf.cr", "lf.cr", "cr.lf". */
int imf_report(const struct imf *m, struct jt_node *obj);

#endif
