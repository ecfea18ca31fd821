/* reorder.c - reports copied out in session start order (see reorder.h). */
#include "reorder.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem.h"

struct reorder_rec {
    uint64_t key; /* session id */
    uint64_t seq; /* place in the file: equal ids keep their order */
    long off;
    size_t len;
};

struct reorder_idx {
    struct reorder_rec *r;
    size_t n, alloc;
};

static int
reorder_push(struct reorder_idx *x, uint64_t key, long off, size_t len)
{
    if (x->n == x->alloc) {
        size_t na = x->alloc ? x->alloc * 2 : 256;
        struct reorder_rec *nr = mem_realloc(x->r, na * sizeof *nr);
        if (!nr) {
            errno = ENOMEM;
            return -1;
        }
        x->r = nr;
        x->alloc = na;
    }
    x->r[x->n] = (struct reorder_rec){key, x->n, off, len};
    x->n++;
    return 0;
}

static int
reorder_cmp(const void *a, const void *b)
{
    const struct reorder_rec *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The decimal number at p (at most n bytes); 0 when there is none. */
static uint64_t
reorder_num(const char *p, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9' && v < UINT64_MAX / 10; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

/* Where a line stands: -1 not a record (head or tail, or a record's continuation), else 1
 * with its key. */
static int
reorder_classify(enum reorder_kind kind, const char *l, size_t n, uint64_t *key)
{
    static const char sess[] = "{\"type\":\"session\",\"schema\":\"smtpsniff.session/1\",\"id\":";
    switch (kind) {
    case REORDER_NDJSON:
        /* Keys are written in reading order: type, schema, id first. */
        if (n > sizeof sess - 1 && memcmp(l, sess, sizeof sess - 1) == 0) {
            *key = reorder_num(l + sizeof sess - 1, n - (sizeof sess - 1));
            return 1;
        }
        return -1;
    case REORDER_TEXT:
        if (n > 8 && memcmp(l, "session ", 8) == 0 && l[8] >= '0' && l[8] <= '9') {
            *key = reorder_num(l + 8, n - 8);
            return 1;
        }
        return -1;
    case REORDER_TSV: {
        if (n == 0 || l[0] == '#')
            return -1;
        const char *t = memchr(l, '\t', n);
        if (!t)
            return -1;
        *key = reorder_num(t + 1, n - (size_t)(t + 1 - l));
        return 1;
    }
    case REORDER_ALIGNED: {
        /* A row: its time, then its session id, the second column. */
        size_t i = 0;
        while (i < n && l[i] != ' ')
            i++;
        while (i < n && l[i] == ' ')
            i++;
        if (i >= n || l[i] < '0' || l[i] > '9' || l[0] < '0' || l[0] > '9')
            return -1;
        *key = reorder_num(l + i, n - i);
        return 1;
    }
    }
    return -1;
}

/* Where the records end and the tail (the summary, TSV's #close) begins. */
static int
reorder_tail_starts(enum reorder_kind kind, const char *l, size_t n)
{
    switch (kind) {
    case REORDER_TEXT:
        return n >= 8 && memcmp(l, "summary:", 8) == 0;
    case REORDER_TSV:
        return n >= 6 && memcmp(l, "#close", 6) == 0;
    case REORDER_ALIGNED:
        return n == 0 || (n == 1 && l[0] == '\n');
    case REORDER_NDJSON:
        return 0;
    }
    return 0;
}

static int
reorder_span(FILE *tmp, FILE *out, long off, size_t len, char *buf, size_t bufsz)
{
    if (fseek(tmp, off, SEEK_SET) != 0)
        return -1;
    while (len) {
        size_t k = len < bufsz ? len : bufsz;
        if (fread(buf, 1, k, tmp) != k) {
            errno = EIO;
            return -1;
        }
        if (fwrite(buf, 1, k, out) != k)
            return -1;
        len -= k;
    }
    return 0;
}

/* TSV's header with its #open line made the time of the first line in the new order, as
 * the lines writer gives it (Zeek's YYYY-MM-DD-HH-MM-SS, UTC). */
static int
reorder_tsv_head(FILE *tmp, FILE *out, long head_len, const struct reorder_rec *first, char *buf,
                 size_t bufsz)
{
    if (fseek(tmp, first->off, SEEK_SET) != 0)
        return -1;
    char ts[32] = "";
    size_t k = fread(ts, 1, sizeof ts - 1, tmp);
    ts[k] = '\0';
    char stamp[32] = "";
    time_t sec = (time_t)strtoll(ts, NULL, 10);
    struct tm tm;
    if (ts[0] >= '0' && ts[0] <= '9' && gmtime_r(&sec, &tm))
        strftime(stamp, sizeof stamp, "%Y-%m-%d-%H-%M-%S", &tm);
    if (fseek(tmp, 0, SEEK_SET) != 0)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    long pos = 0;
    int rc = 0;
    while (rc == 0 && pos < head_len) {
        ssize_t got = getline(&line, &cap, tmp);
        if (got <= 0)
            break;
        pos += got;
        if (stamp[0] && got > 6 && memcmp(line, "#open\t", 6) == 0)
            rc = fprintf(out, "#open\t%s\n", stamp) < 0 ? -1 : 0;
        else
            rc = fwrite(line, 1, (size_t)got, out) == (size_t)got ? 0 : -1;
    }
    free(line);
    (void)buf;
    (void)bufsz;
    return rc;
}

int
reorder_copy(FILE *tmp, FILE *out, enum reorder_kind kind)
{
    if (fflush(tmp) != 0 || fseek(tmp, 0, SEEK_SET) != 0)
        return -1;
    struct reorder_idx x = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long pos = 0, head_len = 0, tail_off = -1;
    int in_records = 0, rc = 0, unordered = 0;
    while ((got = getline(&line, &cap, tmp)) > 0) {
        size_t n = (size_t)got;
        uint64_t key = 0;
        if (tail_off < 0 && (in_records || kind == REORDER_NDJSON) &&
            reorder_tail_starts(kind, line, n))
            tail_off = pos;
        if (tail_off >= 0) {
            /* A record after the tail began (not written offline) still finds its place. */
            if (kind == REORDER_NDJSON && reorder_classify(kind, line, n, &key) == 1) {
                unordered = 1; /* never written offline: copied as it is, not lost */
                break;
            }
        } else if (reorder_classify(kind, line, n, &key) == 1) {
            in_records = 1;
            if (reorder_push(&x, key, pos, n) < 0) {
                rc = -1;
                break;
            }
        } else if (!in_records) {
            head_len = pos + (long)n;
        } else if (kind == REORDER_NDJSON) {
            /* The summary (or anything else) after the sessions: the tail. */
            tail_off = pos;
        } else {
            x.r[x.n - 1].len += n; /* the record's next line */
        }
        pos += (long)n;
    }
    mem_free(line);
    if (rc == 0 && ferror(tmp)) {
        errno = EIO;
        rc = -1;
    }
    char *buf = rc == 0 ? mem_alloc(1 << 16) : NULL;
    if (rc == 0 && !buf) {
        errno = ENOMEM;
        rc = -1;
    }
    if (rc == 0 && unordered) {
        long end = fseek(tmp, 0, SEEK_END) == 0 ? ftell(tmp) : -1;
        rc = end < 0 ? -1 : reorder_span(tmp, out, 0, (size_t)end, buf, 1 << 16);
    } else if (rc == 0) {
        if (x.n)
            qsort(x.r, x.n, sizeof *x.r, reorder_cmp);
        rc = kind == REORDER_TSV && x.n
                 ? reorder_tsv_head(tmp, out, head_len, &x.r[0], buf, 1 << 16)
                 : reorder_span(tmp, out, 0, (size_t)head_len, buf, 1 << 16);
        for (size_t i = 0; rc == 0 && i < x.n; i++)
            rc = reorder_span(tmp, out, x.r[i].off, x.r[i].len, buf, 1 << 16);
        if (rc == 0 && tail_off >= 0)
            rc = reorder_span(tmp, out, tail_off, (size_t)(pos - tail_off), buf, 1 << 16);
    }
    mem_free(buf);
    mem_free(x.r);
    return rc;
}
