/* jsonx.h - Jansson helpers: wire bytes to JSON strings, capture timestamps to RFC 3339. */
#ifndef SMTPSNIFF_JSONX_H
#define SMTPSNIFF_JSONX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A JSON string from untrusted bytes: valid UTF-8 is kept, every other byte becomes the
 * four characters \xNN, so the result is always valid and the original recoverable.
 * Returns a new reference, NULL only on allocation failure. */
json_t *jx_bytes(const uint8_t *p, size_t n);
/* Same for a NUL-terminated string we produced ourselves. */
json_t *jx_str(const char *s);

/* Writes the escaped form of p[0..n) into out (always NUL-terminated, cut to outlen). */
size_t jx_escape(const uint8_t *p, size_t n, char *out, size_t outlen);

/* "2021-11-20T01:02:03.456789Z" from microseconds since the epoch; out needs 32 bytes. */
void jx_format_time(int64_t ts_us, char *out, size_t outlen);
json_t *jx_time(int64_t ts_us);
/* Milliseconds with microsecond precision, as a JSON real rounded to 3 decimals. */
json_t *jx_ms(int64_t us);

/* Steals the reference to v (as json_object_set_new); ignores a NULL v. */
void jx_set(json_t *obj, const char *key, json_t *v);

#endif
