/* smtp.h - SMTP dialogue model built from the two byte streams of one TCP connection.
 * RFC 5321 (commands, replies, line limits), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING),
 * RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 3463 (enhanced status codes), RFC 1870 (SIZE). */
#ifndef SMTPSNIFF_SMTP_H
#define SMTPSNIFF_SMTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "buf.h"
#include "imf.h"
#include "jtree.h"

enum smtp_dir { SMTP_CLIENT = 0, SMTP_SERVER = 1 };

struct keylog;

struct smtp_config {
    int show_secrets;        /* write passwords, tokens and AUTH blobs (never by default) */
    int implicit_tls;        /* port 465: TLS from the first byte */
    int hash_bodies;         /* SHA-256 of every message */
    const EVP_MD *sha256;    /* see struct imf_config (borrowed; NULL: EVP_sha256()) */
    size_t max_line;         /* bytes kept of one line before it is cut; 0: 4096 */
    size_t max_inflight;     /* commands awaiting their reply; 0: 1024 */
    size_t max_transcript;   /* transcript lines kept; 0: 1000 */
    size_t max_transactions; /* 0: 1000 */
    size_t max_rcpts;        /* recipients kept per transaction; 0: 1000 */
    /* Where each kept transaction's message goes as it is read (.eml output); begin NULL:
     * nowhere. begin gets the transaction's index in the report's "transactions". */
    struct imf_sink eml;
    /* TLS secrets (borrowed: must outlive every session created with this config). With
     * them the dialogue inside STARTTLS or implicit TLS is decrypted and read like the one in
     * clear; NULL: whatever follows the switch to TLS stays opaque. */
    const struct keylog *keylog;
    /* Live: the key log file is still being written; see tls_set_keylog_refresh. */
    int (*keylog_refresh)(void *arg, int force);
    void *keylog_refresh_arg;
};

struct smtp_session;

/* start_us: the session's start (first SYN); every t_ms in the report is relative to it.
 * established_us: when the TCP handshake completed; the banner delay is measured from it.
 * NULL on allocation failure. */
struct smtp_session *smtp_create(const struct smtp_config *cfg, int64_t start_us,
                                 int64_t established_us);
void smtp_destroy(struct smtp_session *s);

/* New bytes of one direction, in stream order. data is borrowed for the call only. */
void smtp_feed(struct smtp_session *s, enum smtp_dir dir, const uint8_t *data, size_t len,
               int64_t ts_us);
/* The capture begins inside the dialogue (no handshake seen); called before the first byte.
 * Each direction is read from its first line boundary, no reply is taken for the greeting,
 * and client lines before the first command are read as the tail of a message. */
void smtp_midstream(struct smtp_session *s);
/* len bytes of this direction are missing from the capture at this point. */
void smtp_gap(struct smtp_session *s, enum smtp_dir dir, uint64_t len, int64_t ts_us);
/* The capture holds the client's side of the connection only (a one-way tap); called
 * before smtp_finish: bytes sent after DATA are then read as the message. */
void smtp_client_only(struct smtp_session *s);
/* The connection is over (or the capture ended): close open commands and transactions. */
void smtp_finish(struct smtp_session *s, int64_t ts_us);

/* 1 once the rest of the connection is TLS (after STARTTLS's 220, or implicit TLS), whether
 * or not it is decrypted. */
int smtp_encrypted(const struct smtp_session *s);
/* 1 while the client waits for the server: for the greeting, or for the reply to its oldest
 * command in flight. what: "greeting", "end-of-data" or the command's verb (static text);
 * since_us: when that wait began (the handshake, the command, or the reply before it when
 * commands were pipelined). 0 when nothing is awaited or the dialogue is out of sight (TLS
 * not decrypted). */
int smtp_awaiting(const struct smtp_session *s, const char **what, int64_t *since_us);
/* 1 once plaintext came out of the TLS layer (config keylog): the dialogue inside is read. */
int smtp_decrypted(const struct smtp_session *s);
/* 1 when the client's next bytes in clear are read as the start of a command line (not a
 * message, a chunk, held bytes, TLS or the rest of a line). */
int smtp_reads_commands(const struct smtp_session *s);
/* 1 when the model misses part of the dialogue inside TLS: a record failed to decrypt after
 * plaintext had begun to flow (capture holes are known to the caller already). */
int smtp_partial(const struct smtp_session *s);

/* Adds the SMTP sections to a session report object (see docs/schema.md for every field):
 * banner, helo, extensions, server_software, tls, auth, transactions, commands, outcome,
 * smtp (protocol facts the anomaly rules read) and transcript_dropped, but not the transcript
 * array itself: smtp_dump_report writes that straight from the model. Returns 0 or -1 (no
 * memory; jt_failed of the tree says the same for what the tree could not take). */
int smtp_report_core(const struct smtp_session *s, struct jt_node *session);
/* The whole report as Jansson values (tests): smtp_report_core's members and the
 * transcript, added to session. 0 or -1 (no memory). */
int smtp_report(const struct smtp_session *s, json_t *session);

/* 1 when the report has a transcript (lines kept, or lines dropped). */
int smtp_has_transcript(const struct smtp_session *s);
/* Adds the "transcript" array to a Jansson report object as smtp_report does. 0, or -1. */
int smtp_transcript_add(const struct smtp_session *s, json_t *session);
/* Appends a report made by smtp_report_core (and whatever else its caller added) to b as
 * jt_dump writes it, with the transcript array written from the model at its sorted place:
 * the bytes Jansson writes for smtp_report's tree. A JX_DUMP_* code (see jsonx.h). */
int smtp_dump_report(const struct smtp_session *s, const struct jt_node *report, struct buf *b);
/* One kept line, for the text view: time since the session began, direction, the bytes as
 * seen (jx_bytes makes the transcript's string of them). Borrowed until destroy. */
struct smtp_tl_view {
    int64_t t_us;
    int client;
    const uint8_t *p;
    size_t n;
    int64_t latency_us; /* a reply's first line: since its command; -1 on other lines */
    int body;           /* a line about the message's bytes, not a line of the dialogue */
    int decrypted;      /* read inside TLS */
};
size_t smtp_transcript_count(const struct smtp_session *s);
int smtp_transcript_get(const struct smtp_session *s, size_t i, struct smtp_tl_view *v);

#endif
