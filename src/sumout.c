/* sumout.c - summarize's session outputs in start order (see sumout.h). */
#define _FILE_OFFSET_BITS 64
#include "sumout.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "html.h"
#include "lines.h"
#include "mem.h"

struct sumout_rec {
    int64_t start_us;
    uint64_t seq; /* arrival: input order, then order within the input */
    off_t off;    /* in the spool: the lines, then the JSON */
    uint64_t lines_len, json_len;
};

struct sumout {
    struct lines *lines;
    struct html *html;
    FILE *spool;
    off_t end;
    struct sumout_rec *recs;
    size_t n, alloc;
};

struct sumout *
sumout_create(struct lines *lines, struct html *html)
{
    struct sumout *o = mem_calloc(1, sizeof *o);
    if (!o) {
        errno = ENOMEM;
        return NULL;
    }
    o->lines = lines;
    o->html = html;
    /* tmpfile: created without a name anyone else could open or plant beforehand. */
    o->spool = tmpfile();
    if (!o->spool) {
        mem_free(o);
        return NULL;
    }
    return o;
}

void
sumout_destroy(struct sumout *o)
{
    if (!o)
        return;
    if (o->spool)
        fclose(o->spool);
    mem_free(o->recs);
    mem_free(o);
}

int
sumout_add(struct sumout *o, int64_t start_us, const struct jt_node *session, const char *json,
           size_t len)
{
    if (o->n == o->alloc) {
        size_t na = o->alloc ? o->alloc * 2 : 1024;
        struct sumout_rec *p = mem_realloc(o->recs, na * sizeof *p);
        if (!p) {
            errno = ENOMEM;
            return -1;
        }
        o->recs = p;
        o->alloc = na;
    }
    struct sumout_rec *r = &o->recs[o->n];
    r->start_us = start_us;
    r->seq = o->n;
    r->off = o->end;
    r->lines_len = 0;
    r->json_len = 0;
    if (o->lines) {
        lines_session(o->lines, o->spool, session);
        off_t pos = ftello(o->spool);
        if (pos < 0)
            return -1;
        r->lines_len = (uint64_t)(pos - o->end);
        o->end = pos;
    }
    if (o->html) {
        if (fwrite(json, 1, len, o->spool) != len)
            return -1;
        r->json_len = len;
        o->end += (off_t)len;
    }
    if (ferror(o->spool)) {
        if (!errno)
            errno = EIO;
        return -1;
    }
    o->n++;
    return 0;
}

static int
sumout_cmp(const void *a, const void *b)
{
    const struct sumout_rec *x = a, *y = b;
    if (x->start_us != y->start_us)
        return x->start_us < y->start_us ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
sumout_finish(struct sumout *o, FILE *out)
{
    if (o->n)
        qsort(o->recs, o->n, sizeof *o->recs, sumout_cmp);
    if (fflush(o->spool) != 0)
        return -1;
    char *buf = NULL;
    size_t alloc = 0;
    int rc = 0;
    for (size_t i = 0; i < o->n && rc == 0; i++) {
        const struct sumout_rec *r = &o->recs[i];
        size_t len = (size_t)(r->lines_len + r->json_len);
        if (len > alloc) {
            char *p = mem_realloc(buf, len);
            if (!p) {
                errno = ENOMEM;
                rc = -1;
                break;
            }
            buf = p;
            alloc = len;
        }
        if (fseeko(o->spool, r->off, SEEK_SET) != 0 || fread(buf, 1, len, o->spool) != len) {
            if (!errno)
                errno = EIO;
            rc = -1;
            break;
        }
        if (o->lines && lines_write(o->lines, out, buf, (size_t)r->lines_len) < 0)
            rc = -1;
        else if (o->html && html_session_json(o->html, buf + r->lines_len, (size_t)r->json_len) < 0)
            rc = -1;
    }
    mem_free(buf);
    return rc;
}
