/* buf.h - growable byte buffer with a hard cap fixed at creation (curl's dynbuf idea). */
#ifndef SMTPSNIFF_BUF_H
#define SMTPSNIFF_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t alloc;
    size_t max; /* appends beyond this fail with BUF_E_FULL */
};

enum { BUF_OK = 0, BUF_E_NOMEM = -1, BUF_E_FULL = -2 };

void buf_init(struct buf *b, size_t max);
/* Appends as much as fits below the cap; returns BUF_E_FULL when it had to cut. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_byte(struct buf *b, uint8_t c);
/* Makes room for n more bytes without changing len, so a writer can fill data + len itself
 * and then add what it wrote to len: BUF_OK, BUF_E_FULL when len + n passes the cap (nothing
 * is grown), BUF_E_NOMEM. */
int buf_ensure(struct buf *b, size_t n);
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
