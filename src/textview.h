/* textview.h - parts of the text view of a session that say in words what the report's JSON
 * says in fields: the server's name from its greeting, the TLS details, the message's MIME
 * parts, what a deferred outcome means, transcript times with their unit. Every string from
 * the report is written escaped (esc.h): it may come from the wire. */
#ifndef SMTPSNIFF_TEXTVIEW_H
#define SMTPSNIFF_TEXTVIEW_H

#include <jansson.h>
#include <stdio.h>

/* The host name the greeting gives (RFC 5321 4.3.1: code SP domain), "(no name)" when the
 * greeting's first word (after an enhanced status code) is no domain or address literal. */
void tv_server_name(FILE *f, json_t *banner);
/* The TLS lines of session s: version, cipher, SNI, certificate, alerts, decryption. */
void tv_tls(FILE *f, json_t *s);
/* The lines under a transaction: its message's client software and MIME parts. */
void tv_message(FILE *f, json_t *data);
/* A note on the outcome where its word alone misleads (deferred). */
void tv_outcome(FILE *f, json_t *s);
/* A transcript time: milliseconds since the connection began, with the unit. */
void tv_time(FILE *f, double t_ms);
/* A transcript line the model wrote about the message's bytes ("[message: N bytes]"): what
 * N counts. Returns 1 when it wrote the line itself, 0 for any other line. */
int tv_body_line(FILE *f, const char *line, size_t n);

#endif
