/* jsonx.h - Jansson helpers: wire bytes to JSON strings, capture timestamps to RFC 3339, and
 * a fast writer for the reports (RFC 8259 text, byte for byte what Jansson writes). */
#ifndef SMTPSNIFF_JSONX_H
#define SMTPSNIFF_JSONX_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

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

/* Steals the reference to v (as json_object_set_new); ignores a NULL v. key is one of our
 * own ASCII literals, so Jansson is spared checking it for UTF-8 (asserted in debug builds). */
void jx_set(json_t *obj, const char *key, json_t *v);

/* ---- key order ----
 * Every object of every record is written with its keys in one order (docs/schema.md, "Key
 * order"): the keys of jx_key_order first, in the list's order, where present; then every
 * other key, by bytes as Jansson's JSON_SORT_KEYS sorts them (a prefix first); then the
 * list's keys after its NULL entry (the transcript, the bulk of a report, last). */
struct jx_key {
    const char *name; /* NULL: the place of the keys not in the list */
    uint8_t len;
};
extern const struct jx_key jx_key_order[];
extern const size_t jx_key_order_len;

/* A key's first 8 bytes as a big-endian integer, zero-padded: compared as integers, keys
 * sort as their bytes do, and most keys are decided by it alone. */
static inline uint64_t
jx_key_prefix(const char *key, size_t n)
{
    /* Shorter keys are zero-padded: one copy, not a shift per byte (most keys are short). */
    unsigned char t[8] = {0};
    uint64_t pre;
    memcpy(t, key, n < 8 ? n : 8);
    memcpy(&pre, t, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    pre = __builtin_bswap64(pre);
#endif
    return pre;
}

/* A key's rank: its index in jx_key_order, or that of the NULL entry for a key not in the
 * list. pre is jx_key_prefix(key, n). Worked out once per key where a writer can (jtree does
 * it when the key is set): a multiply, and for a listed key one comparison of the prefix. */
uint8_t jx_key_rank(const char *key, size_t n, uint64_t pre);
/* Order of two keys given their ranks: < 0, 0 (the same key), > 0. Keys of equal rank are
 * the same listed key or two unlisted ones: compared by bytes. */
int jx_key_cmp(uint8_t ra, const char *a, size_t na, uint8_t rb, const char *b, size_t nb);

/* A copy of v whose objects hold their members in that order (values not containers are
 * shared): the reference "Jansson path". Jansson writes members in the order they were set
 * when not told to sort, so json_dumps(jx_ordered(v), JX_DUMP_FLAGS) gives jx_dump's bytes.
 * A new reference, NULL on allocation failure. */
json_t *jx_ordered(const json_t *v);

/* How reports are written: one line, keys in the order above, reals with up to 15
 * significant digits. Without JSON_SORT_KEYS, json_dumps keeps the order members were set
 * in: jt_to_json and jx_ordered set them in report order, so json_dumps of their trees with
 * these flags is the same text as the fast writers'. */
#define JX_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

enum { JX_DUMP_OK = 0, JX_DUMP_NOMEM = -1, JX_DUMP_FULL = -2, JX_DUMP_UNSUPPORTED = -3 };

/* Appends to b exactly the bytes json_dumps(jx_ordered(o), JX_DUMP_FLAGS) gives, without Jansson's
 * per-token callbacks, its loop-check table and its printf calls. o must be an object or an
 * array. On failure b->len is as it was: JX_DUMP_FULL when b's cap was reached,
 * JX_DUMP_UNSUPPORTED for what this writer leaves to Jansson (invalid UTF-8, nesting deeper
 * than 64, a cycle): the caller then writes o with json_dumpf, which gives the same bytes or
 * the same failure. */
int jx_dump(const json_t *o, struct buf *b);

/* A member of a top-level object written by a callback from the caller's own data instead
 * of from a tree (jt_dump: a session's transcript is most of a report). write appends the
 * value's bytes exactly as jx_dump would write the equivalent Jansson tree, with the jx_put_*
 * writers below, and returns a JX_DUMP_* code. */
struct jx_splice {
    const char *key; /* ASCII, not also a key of the object */
    int (*write)(void *ctx, struct buf *b);
    void *ctx;
};
/* Bytes as they are (punctuation, literal keys in quotes). */
int jx_put_raw(struct buf *b, const char *p, size_t n);
/* The JSON string jx_bytes(p, n) makes, as jx_dump writes it. */
int jx_put_bytes(struct buf *b, const uint8_t *p, size_t n);
/* The real jx_ms(us) makes, as jx_dump writes it. */
int jx_put_ms(struct buf *b, int64_t us);
/* A real, an integer, as jx_dump writes them. */
int jx_put_real(struct buf *b, double v);
int jx_put_int(struct buf *b, int64_t v);
/* A string known to be UTF-8 (JX_DUMP_UNSUPPORTED when it is not), quoted and escaped. */
int jx_put_string(struct buf *b, const char *s, size_t n);
/* lead (',' or '{'), the key as a JSON string, and the colon. */
int jx_put_key(struct buf *b, uint8_t lead, const char *key, size_t n);
/* The text of the string jx_bytes(p, n) makes: p itself when it is plain ASCII, else its
 * escaped form, in small when it fits (512 bytes) or in *heap, which the caller frees. NULL
 * without memory. */
const char *jx_bytes_text(const uint8_t *p, size_t n, char small[512], char **heap, size_t *len);

#endif
