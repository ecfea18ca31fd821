/* buf.c - growable byte buffer with a hard cap. */
#include "buf.h"

#include <string.h>

#include "mem.h"

void
buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->alloc = 0;
    b->max = max;
}

static int
buf_reserve(struct buf *b, size_t need)
{
    size_t n;
    uint8_t *p;

    if (need <= b->alloc)
        return BUF_OK;
    n = b->alloc ? b->alloc : 64;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    if (n > b->max)
        n = b->max;
    p = mem_realloc(b->data, n);
    if (!p)
        return BUF_E_NOMEM;
    b->data = p;
    b->alloc = n;
    return BUF_OK;
}

int
buf_ensure(struct buf *b, size_t n)
{
    if (n > b->max - b->len)
        return BUF_E_FULL;
    return buf_reserve(b, b->len + n);
}

int
buf_append(struct buf *b, const void *data, size_t len)
{
    size_t room = b->max - b->len;
    size_t take = len < room ? len : room;
    int rc;

    if (take) {
        rc = buf_reserve(b, b->len + take);
        if (rc)
            return rc;
        memcpy(b->data + b->len, data, take);
        b->len += take;
    }
    return take == len ? BUF_OK : BUF_E_FULL;
}

int
buf_append_byte(struct buf *b, uint8_t c)
{
    return buf_append(b, &c, 1);
}

void
buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
}

void
buf_free(struct buf *b)
{
    mem_free(b->data);
    b->data = NULL;
    b->len = b->alloc = 0;
}
