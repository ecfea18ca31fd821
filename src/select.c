/* select.c - content-based selection of connections on other ports (see select.h). */
#include "select.h"

#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mem.h"

/* Held back per connection while undecided (a greeting or an EHLO comes in the first few
 * hundred bytes); a connection that says nothing recognisable within this much is taken
 * for another protocol. Small, because every tracked connection may hold this much. */
#define SEL_HOLD_MAX 4096

enum sel_verdict { SEL_UNKNOWN, SEL_SMTP, SEL_OTHER };
enum sel_kind { SEL_EV_DATA, SEL_EV_GAP };

struct sel_ev {
    uint8_t kind, dir;
    int64_t ts_us;
    uint64_t n; /* bytes (data: at off in held) */
    size_t off;
};

struct sel_conn {
    struct sel *s;
    void *inner;                 /* the session layer's handle once it is opened */
    const struct reasm_facts *f; /* the reassembler's, valid for the connection's life */
    int passing;                 /* decided SMTP (or on a mail port): events go through */
    int established;
    enum sel_verdict dir_verdict[2];
    uint8_t first[2][8]; /* first bytes of each direction */
    size_t nfirst[2];
    struct sel_ev *ev;
    size_t nev, aev;
    struct buf held;
    int over; /* more than SEL_HOLD_MAX held: not SMTP */
};

struct sel {
    struct reasm_ops inner;
    uint16_t ports[64];
    size_t nports;
    uint64_t not_smtp;
};

static int
sel_mail_port(const struct sel *s, uint16_t port)
{
    for (size_t i = 0; i < s->nports; i++)
        if (s->ports[i] == port)
            return 1;
    return 0;
}

static void *
sel_open(void *ctx, const struct reasm_facts *f)
{
    struct sel *s = ctx;
    struct sel_conn *c = mem_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->s = s;
    c->f = f;
    buf_init(&c->held, SEL_HOLD_MAX);
    if (sel_mail_port(s, f->server_port)) {
        c->passing = 1;
        c->inner = s->inner.open ? s->inner.open(s->inner.ctx, f) : NULL;
        if (!c->inner) {
            mem_free(c);
            return NULL;
        }
    }
    return c;
}

/* RFC 5321 4.2 / 4.1.1.1: a greeting is "220" then SP or "-"; a client's first command
 * on a new connection is EHLO or HELO. */
static enum sel_verdict
sel_judge(int dir, const uint8_t *p, size_t n)
{
    if (dir == REASM_SERVER) {
        if (n < 4)
            return SEL_UNKNOWN;
        return memcmp(p, "220", 3) == 0 && (p[3] == ' ' || p[3] == '-' || p[3] == '\r') ? SEL_SMTP
                                                                                        : SEL_OTHER;
    }
    if (n < 5)
        return SEL_UNKNOWN;
    if ((strncasecmp((const char *)p, "EHLO", 4) == 0 ||
         strncasecmp((const char *)p, "HELO", 4) == 0) &&
        (p[4] == ' ' || p[4] == '\t' || p[4] == '\r'))
        return SEL_SMTP;
    return SEL_OTHER;
}

static int
sel_hold(struct sel_conn *c, enum sel_kind kind, int dir, const uint8_t *p, uint64_t n,
         int64_t ts_us)
{
    if (c->nev == c->aev) {
        size_t na = c->aev ? c->aev * 2 : 8;
        struct sel_ev *e = mem_realloc(c->ev, na * sizeof *e);
        if (!e)
            return -1;
        c->ev = e;
        c->aev = na;
    }
    struct sel_ev *e = &c->ev[c->nev];
    *e = (struct sel_ev){(uint8_t)kind, (uint8_t)dir, ts_us, n, c->held.len};
    if (kind == SEL_EV_DATA && n && buf_append(&c->held, p, (size_t)n) != 0)
        return -1;
    c->nev++;
    return 0;
}

/* SMTP after all: the session layer sees everything held back, in order. */
static void
sel_release(struct sel_conn *c)
{
    struct sel *s = c->s;
    c->passing = 1;
    c->inner = s->inner.open ? s->inner.open(s->inner.ctx, c->f) : NULL;
    if (c->inner && c->established && s->inner.established)
        s->inner.established(c->inner, c->f);
    for (size_t i = 0; c->inner && i < c->nev; i++) {
        const struct sel_ev *e = &c->ev[i];
        if (e->kind == SEL_EV_DATA && s->inner.data)
            s->inner.data(c->inner, e->dir, c->held.data + e->off, (size_t)e->n, e->ts_us);
        else if (e->kind == SEL_EV_GAP && s->inner.gap)
            s->inner.gap(c->inner, e->dir, e->n, e->ts_us);
    }
    mem_free(c->ev);
    c->ev = NULL;
    c->nev = c->aev = 0;
    buf_free(&c->held);
}

static void
sel_established(void *conn, const struct reasm_facts *f)
{
    struct sel_conn *c = conn;
    c->f = f;
    c->established = 1;
    if (c->passing && c->inner && c->s->inner.established)
        c->s->inner.established(c->inner, f);
}

static void
sel_data(void *conn, int dir, const uint8_t *p, size_t n, int64_t ts_us)
{
    struct sel_conn *c = conn;
    if (c->passing) {
        if (c->inner && c->s->inner.data)
            c->s->inner.data(c->inner, dir, p, n, ts_us);
        return;
    }
    if (c->over)
        return;
    if (sel_hold(c, SEL_EV_DATA, dir, p, n, ts_us) != 0) {
        c->over = 1;
        return;
    }
    if (c->dir_verdict[dir] == SEL_UNKNOWN) {
        size_t k = sizeof c->first[dir] - c->nfirst[dir];
        k = n < k ? n : k;
        memcpy(c->first[dir] + c->nfirst[dir], p, k);
        c->nfirst[dir] += k;
        c->dir_verdict[dir] = sel_judge(dir, c->first[dir], c->nfirst[dir]);
    }
    if (c->dir_verdict[0] == SEL_SMTP || c->dir_verdict[1] == SEL_SMTP)
        sel_release(c);
    else if (c->dir_verdict[0] == SEL_OTHER && c->dir_verdict[1] == SEL_OTHER)
        c->over = 1;
}

static void
sel_gap(void *conn, int dir, uint64_t n, int64_t ts_us)
{
    struct sel_conn *c = conn;
    if (c->passing) {
        if (c->inner && c->s->inner.gap)
            c->s->inner.gap(c->inner, dir, n, ts_us);
        return;
    }
    if (c->over)
        return;
    /* A direction whose first bytes are missing cannot show it is SMTP. */
    if (c->dir_verdict[dir] == SEL_UNKNOWN)
        c->dir_verdict[dir] = SEL_OTHER;
    if (sel_hold(c, SEL_EV_GAP, dir, NULL, n, ts_us) != 0)
        c->over = 1;
}

static void
sel_close(void *conn, const struct reasm_facts *f, enum reasm_end end, int64_t ts_us)
{
    struct sel_conn *c = conn;
    if (c->passing && c->inner && c->s->inner.close)
        c->s->inner.close(c->inner, f, end, ts_us);
    else if (!c->passing)
        c->s->not_smtp++;
    mem_free(c->ev);
    buf_free(&c->held);
    mem_free(c);
}

/* Live ticks reach the session once it is known to be SMTP (mail ports: from the start). */
static void
sel_tick(void *conn, const struct reasm_facts *f, int64_t now_us)
{
    struct sel_conn *c = conn;
    if (c->passing && c->inner && c->s->inner.tick)
        c->s->inner.tick(c->inner, f, now_us);
}

struct sel *
sel_create(const uint16_t *ports, size_t nports, const struct reasm_ops *inner,
           struct reasm_ops *out)
{
    struct sel *s = mem_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->inner = *inner;
    for (size_t i = 0; i < nports && s->nports < sizeof s->ports / sizeof s->ports[0]; i++)
        s->ports[s->nports++] = ports[i];
    memset(out, 0, sizeof *out);
    out->ctx = s;
    out->open = sel_open;
    out->established = sel_established;
    out->data = sel_data;
    out->gap = sel_gap;
    out->close = sel_close;
    out->tick = sel_tick;
    return s;
}

void
sel_destroy(struct sel *s)
{
    mem_free(s);
}

uint64_t
sel_not_smtp(const struct sel *s)
{
    return s ? s->not_smtp : 0;
}
