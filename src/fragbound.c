/* fragbound.c - bounded table of incomplete IPv4 datagrams (see fragbound.h). */
#include "fragbound.h"

#include <string.h>

#include "mem.h"

#define FB_NONE UINT32_MAX
/* Copies kept to compare overlapping fragments: a few per datagram, a bounded total. */
#define FB_KEEP_FRAGS 8
#define FB_KEEP_BYTES (4u << 20)

struct fb_copy {
    uint32_t off, len;
    uint8_t *data;
};

struct fb_entry {
    uint8_t src[4], dst[4];
    uint16_t id;
    uint8_t proto;
    uint8_t used;
    uint32_t hnext;        /* hash chain, or the free list */
    uint32_t tprev, tnext; /* in order of first fragment: the oldest expires first */
    int64_t first_us;
    uint32_t have;  /* payload bytes received (overlaps counted twice: ends it early) */
    uint32_t total; /* payload length once the last fragment was seen, else 0 */
    struct fb_copy copy[FB_KEEP_FRAGS];
    uint8_t ncopy;
};

struct fragbound {
    struct fb_entry *e;
    size_t max, count;
    uint32_t *bucket;
    size_t nbucket;
    uint32_t free_head, old_head, old_tail;
    size_t kept_bytes;
    uint64_t conflicts;
};

struct fragbound *
fb_create(size_t max_datagrams)
{
    struct fragbound *fb = mem_calloc(1, sizeof *fb);
    if (!fb)
        return NULL;
    fb->max = max_datagrams ? max_datagrams : FB_DEFAULT_MAX;
    fb->nbucket = 1;
    while (fb->nbucket < fb->max * 2)
        fb->nbucket <<= 1;
    fb->e = mem_calloc(fb->max, sizeof *fb->e);
    fb->bucket = mem_alloc(fb->nbucket * sizeof *fb->bucket);
    if (!fb->e || !fb->bucket) {
        fb_destroy(fb);
        return NULL;
    }
    for (size_t i = 0; i < fb->nbucket; i++)
        fb->bucket[i] = FB_NONE;
    for (size_t i = 0; i < fb->max; i++)
        fb->e[i].hnext = i + 1 < fb->max ? (uint32_t)(i + 1) : FB_NONE;
    fb->free_head = 0;
    fb->old_head = fb->old_tail = FB_NONE;
    return fb;
}

static void
fb_drop_copies(struct fragbound *fb, struct fb_entry *e)
{
    for (unsigned k = 0; k < e->ncopy; k++) {
        fb->kept_bytes -= e->copy[k].len;
        mem_free(e->copy[k].data);
    }
    e->ncopy = 0;
}

void
fb_destroy(struct fragbound *fb)
{
    if (!fb)
        return;
    for (size_t i = 0; fb->e && i < fb->max; i++)
        if (fb->e[i].used)
            fb_drop_copies(fb, &fb->e[i]);
    mem_free(fb->e);
    mem_free(fb->bucket);
    mem_free(fb);
}

static size_t
fb_hash(const struct fragbound *fb, const uint8_t *src, const uint8_t *dst, uint16_t id)
{
    uint32_t s, d;
    memcpy(&s, src, 4);
    memcpy(&d, dst, 4);
    uint64_t x = ((uint64_t)s << 32 | d) * 0x9E3779B97F4A7C15ull;
    x ^= (uint64_t)id * 0xC2B2AE3D27D4EB4Full;
    x ^= x >> 29;
    return (size_t)(x & (fb->nbucket - 1));
}

static void
fb_remove(struct fragbound *fb, uint32_t i)
{
    struct fb_entry *e = &fb->e[i];
    uint32_t *link = &fb->bucket[fb_hash(fb, e->src, e->dst, e->id)];
    while (*link != i)
        link = &fb->e[*link].hnext;
    *link = e->hnext;
    if (e->tprev != FB_NONE)
        fb->e[e->tprev].tnext = e->tnext;
    else
        fb->old_head = e->tnext;
    if (e->tnext != FB_NONE)
        fb->e[e->tnext].tprev = e->tprev;
    else
        fb->old_tail = e->tprev;
    fb_drop_copies(fb, e);
    e->used = 0;
    e->hnext = fb->free_head;
    fb->free_head = i;
    fb->count--;
}

static uint32_t
fb_insert(struct fragbound *fb, const struct dec_packet *pkt, uint16_t id, int64_t ts_us)
{
    uint32_t i = fb->free_head;
    struct fb_entry *e = &fb->e[i];
    fb->free_head = e->hnext;
    memset(e, 0, sizeof *e);
    memcpy(e->src, pkt->src, 4);
    memcpy(e->dst, pkt->dst, 4);
    e->id = id;
    e->proto = pkt->proto;
    e->used = 1;
    e->first_us = ts_us;
    size_t h = fb_hash(fb, e->src, e->dst, id);
    e->hnext = fb->bucket[h];
    fb->bucket[h] = i;
    e->tnext = FB_NONE;
    e->tprev = fb->old_tail;
    if (fb->old_tail != FB_NONE)
        fb->e[fb->old_tail].tnext = i;
    else
        fb->old_head = i;
    fb->old_tail = i;
    fb->count++;
    return i;
}

/* A fragment that overlaps one already received with other bytes is counted: an attempt
 * to show an observer other data than the receiver reassembles (receivers differ in which
 * copy they keep; current Linux drops such a datagram), or a broken middlebox. The
 * fragment is then kept for comparing the next ones, while the budget allows. */
static void
fb_compare(struct fragbound *fb, struct fb_entry *e, const struct dec_packet *pkt, uint32_t off,
           size_t hl)
{
    if (pkt->ip_caplen <= hl)
        return;
    const uint8_t *p = pkt->ip + hl;
    uint32_t n = (uint32_t)(pkt->ip_caplen - hl);
    if (pkt->ip_len > hl && pkt->ip_len - hl < n)
        n = (uint32_t)(pkt->ip_len - hl);
    uint32_t end = off + n;
    for (unsigned k = 0; k < e->ncopy; k++) {
        const struct fb_copy *c = &e->copy[k];
        uint32_t a = off > c->off ? off : c->off;
        uint32_t b = end < c->off + c->len ? end : c->off + c->len;
        if (a < b && memcmp(p + (a - off), c->data + (a - c->off), b - a) != 0) {
            fb->conflicts++;
            break;
        }
    }
    if (e->ncopy == FB_KEEP_FRAGS || fb->kept_bytes + n > FB_KEEP_BYTES)
        return;
    uint8_t *d = mem_alloc(n);
    if (!d)
        return;
    memcpy(d, p, n);
    e->copy[e->ncopy++] = (struct fb_copy){off, n, d};
    fb->kept_bytes += n;
}

uint64_t
fb_conflicts(const struct fragbound *fb)
{
    return fb ? fb->conflicts : 0;
}

int
fb_admit(struct fragbound *fb, const struct dec_packet *pkt, int64_t ts_us)
{
    if (!fb || pkt->family != 4 || !pkt->fragment || pkt->ip_caplen < 20)
        return 1;
    const uint8_t *ip = pkt->ip;
    uint16_t id = (uint16_t)(ip[4] << 8 | ip[5]);
    uint16_t frag = (uint16_t)(ip[6] << 8 | ip[7]);
    size_t hl = (size_t)(ip[0] & 0x0f) * 4;
    size_t len = pkt->ip_len > hl ? pkt->ip_len - hl : 0;
    while (fb->old_head != FB_NONE && fb->e[fb->old_head].first_us + FB_LIFETIME_US < ts_us)
        fb_remove(fb, fb->old_head);
    uint32_t i = fb->bucket[fb_hash(fb, pkt->src, pkt->dst, id)];
    while (i != FB_NONE &&
           !(memcmp(fb->e[i].src, pkt->src, 4) == 0 && memcmp(fb->e[i].dst, pkt->dst, 4) == 0 &&
             fb->e[i].id == id && fb->e[i].proto == pkt->proto))
        i = fb->e[i].hnext;
    if (i == FB_NONE) {
        if (fb->count >= fb->max)
            return 0;
        i = fb_insert(fb, pkt, id, ts_us);
    }
    struct fb_entry *e = &fb->e[i];
    fb_compare(fb, e, pkt, (uint32_t)(frag & 0x1fff) * 8, hl);
    e->have += (uint32_t)len;
    if (!(frag & 0x2000))
        e->total = (uint32_t)(frag & 0x1fff) * 8 + (uint32_t)len;
    /* Complete: libnids reassembles and forgets it with this fragment. */
    if (e->total && e->have >= e->total)
        fb_remove(fb, i);
    return 1;
}
