/* sasl.h - one SMTP AUTH exchange (RFC 4954) and the SASL mechanisms inside it:
 * PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2, OAUTHBEARER (RFC 7628),
 * SCRAM-SHA-1/256 (RFC 5802, 7677), EXTERNAL (RFC 4422 appendix A). */
#ifndef SMTPSNIFF_SASL_H
#define SMTPSNIFF_SASL_H

#include <stddef.h>
#include <stdint.h>

enum sasl_result { SASL_PENDING, SASL_SUCCESS, SASL_FAILURE, SASL_ABORTED, SASL_INCOMPLETE };

struct sasl;
struct jt_node;

/* Begins an exchange from the arguments of the AUTH command line ("PLAIN dGVzd..."):
 * mechanism and optional initial response. max_blob caps the bytes kept of any one
 * blob (0: 16384). NULL on allocation failure. */
struct sasl *sasl_begin(const uint8_t *args, size_t len, size_t max_blob);
void sasl_destroy(struct sasl *a);

/* A client line sent while the exchange is open (a base64 response or "*"). */
void sasl_client_line(struct sasl *a, const uint8_t *line, size_t len);
/* A 334 challenge from the server (the text after "334 "). */
void sasl_challenge(struct sasl *a, const uint8_t *text, size_t len);
/* The final reply: 235 success, 5xx/4xx failure, 501 after "*" is an abort. */
void sasl_final(struct sasl *a, int code, const uint8_t *text, size_t len);
/* The connection ended with the exchange open. */
void sasl_incomplete(struct sasl *a);

enum sasl_result sasl_result(const struct sasl *a);

/* What a mechanism's client responses reveal to whoever reads them on the wire. */
enum sasl_secret {
    SASL_SECRET_UNKNOWN,  /* a mechanism this program does not know */
    SASL_SECRET_NONE,     /* challenge-response or external: no reusable secret */
    SASL_SECRET_PASSWORD, /* the password itself (PLAIN, LOGIN) */
    SASL_SECRET_TOKEN,    /* a bearer token (XOAUTH2, OAUTHBEARER) */
};
/* The mechanism by name (case does not matter, as in RFC 4422 3.1). */
enum sasl_secret sasl_mech_secret(const char *name);
/* 1 while the server expects more client lines (after a 334). */
int sasl_open(const struct sasl *a);

/* Fills object o with {mechanism, user, authzid, result, code, enhanced, text, steps,
 * responses_sent (client responses that carried data), malformed, and with show_secrets:
 * password / token / blobs}. Returns 0 or -1. */
int sasl_report(const struct sasl *a, int show_secrets, struct jt_node *o);

#endif
