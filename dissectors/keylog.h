/* keylog.h - NSS key log files (SSLKEYLOGFILE): the secrets of TLS 1.2 (CLIENT_RANDOM) and
 * TLS 1.3 (RFC 8446 7.1 traffic secrets) connections, looked up by ClientHello.random. The
 * same text is what a pcapng Decryption Secrets Block of type TLS Key Log carries. */
#ifndef SMTPSNIFF_KEYLOG_H
#define SMTPSNIFF_KEYLOG_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5246 8.1: the master secret is 48 bytes; TLS 1.3 secrets are Hash.length, 32 or 48. */
#define KEYLOG_MAX_SECRET 48
#define KEYLOG_RANDOM_LEN 32

enum keylog_label {
    KEYLOG_CLIENT_RANDOM,    /* TLS <= 1.2 master secret */
    KEYLOG_CLIENT_HANDSHAKE, /* CLIENT_HANDSHAKE_TRAFFIC_SECRET */
    KEYLOG_SERVER_HANDSHAKE, /* SERVER_HANDSHAKE_TRAFFIC_SECRET */
    KEYLOG_CLIENT_TRAFFIC_0, /* CLIENT_TRAFFIC_SECRET_0 */
    KEYLOG_SERVER_TRAFFIC_0, /* SERVER_TRAFFIC_SECRET_0 */
    KEYLOG_LABEL_COUNT
};

enum {
    KEYLOG_OK = 0,
    KEYLOG_E_NOTFOUND = -1,
    KEYLOG_E_NOMEM = -2,
    KEYLOG_E_IO = -3,
    KEYLOG_E_TOOBIG = -4
};

struct keylog_stats {
    uint64_t lines;     /* lines read, blank ones included */
    uint64_t secrets;   /* secrets stored (a repeated one counts again) */
    uint64_t comments;  /* lines starting with '#' */
    uint64_t ignored;   /* well-formed lines with a label not used here (EXPORTER_SECRET...) */
    uint64_t bad;       /* malformed lines: wrong field count, bad hex, wrong lengths, too long */
    uint64_t replaced;  /* a secret given again for the same client random: the last one wins */
    uint64_t dropped;   /* secrets of new client randoms refused because the table was full */
    size_t connections; /* distinct client randoms held */
};

struct keylog;

/* The distinct client randoms held by default: about 280 bytes each, so at most some
 * 300 MiB; the secrets of further ones are counted as dropped. */
#define KEYLOG_MAX_CONNECTIONS 1048576
/* A key log file is read up to this many bytes and lines: past either, it is no key log of
 * this machine's size (an endless stream such as /dev/zero, a runaway file) and reading it
 * fails (KEYLOG_E_TOOBIG). A TLS 1.3 connection takes about 1 KiB in 5 lines, so a full
 * table fits in both. */
#define KEYLOG_MAX_FILE_BYTES (UINT64_C(2) << 30)
#define KEYLOG_MAX_FILE_LINES (UINT64_C(8) * KEYLOG_MAX_CONNECTIONS)

/* max_entries caps the distinct client randoms held (0: KEYLOG_MAX_CONNECTIONS). NULL on
 * allocation failure. */
struct keylog *keylog_create(size_t max_entries);
void keylog_destroy(struct keylog *kl);

/* Streaming input: text in any chunks; a line cut between two calls is joined. Bad lines
 * are counted, never fatal. Returns 0, or KEYLOG_E_NOMEM when the table could not grow (the
 * line is counted as dropped and reading goes on with the next calls). */
int keylog_feed(struct keylog *kl, const uint8_t *data, size_t len);
/* The end of the input: a last line without its newline is taken. */
void keylog_finish(struct keylog *kl);

/* A whole buffer (e.g. a pcapng Decryption Secrets Block): feed plus finish. */
int keylog_load_buffer(struct keylog *kl, const uint8_t *data, size_t len);
/* A whole file, of at most KEYLOG_MAX_FILE_BYTES and KEYLOG_MAX_FILE_LINES. Returns 0,
 * KEYLOG_E_IO or KEYLOG_E_TOOBIG (err says why) or KEYLOG_E_NOMEM. err may be NULL. */
int keylog_load_file(struct keylog *kl, const char *path, char *err, size_t errlen);

/* Copies the secret logged under `label` for the connection whose ClientHello.random is
 * client_random into out (KEYLOG_MAX_SECRET bytes) and its length into *outlen.
 * Returns 0 or KEYLOG_E_NOTFOUND. */
int keylog_find(const struct keylog *kl, const uint8_t client_random[KEYLOG_RANDOM_LEN],
                enum keylog_label label, uint8_t *out, size_t *outlen);

void keylog_get_stats(const struct keylog *kl, struct keylog_stats *st);
const char *keylog_label_name(enum keylog_label label);

#endif
