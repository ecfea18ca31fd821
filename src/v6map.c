/* v6map.c - IPv6 address to synthetic 240.0.0.0/4 IPv4 address map (RFC 1112 section 4
 * reserves the block, so it never collides with a real unicast peer). */
#include "v6map.h"

#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"

/* 240.0.0.1 .. 255.255.255.254: the block without its network and broadcast addresses. */
#define V6MAP_BASE 0xf0000001u
#define V6MAP_SPACE ((size_t)0x0ffffffe)
#define V6MAP_NONE UINT32_MAX
#define V6MAP_INITIAL 64

struct v6map_entry {
    uint8_t addr[16];
    uint32_t refs; /* 0: on the free queue */
    uint32_t next; /* hash chain while in use, free queue while free */
};

struct v6map {
    struct v6map_entry *e; /* index i holds synthetic address V6MAP_BASE + i */
    size_t cap;            /* entries allocated */
    size_t used;           /* entries ever handed out (prefix of e[]) */
    size_t max;
    size_t count;     /* entries with refs > 0 */
    uint32_t *bucket; /* heads of the hash chains, a power of two of them */
    size_t nbucket;
    uint32_t free_head, free_tail;
    uint64_t key; /* per-map hash key, so chain lengths cannot be chosen by peers */
};

static uint64_t
v6map_mix(uint64_t h)
{
    /* splitmix64 finaliser: every input bit affects every output bit. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static size_t
v6map_hash(const struct v6map *m, const uint8_t addr[16])
{
    uint64_t a = 0, b = 0;
    for (int i = 0; i < 8; i++) {
        a = (a << 8) | addr[i];
        b = (b << 8) | addr[8 + i];
    }
    uint64_t h = v6map_mix(m->key ^ a);
    h = v6map_mix(h ^ b);
    return (size_t)h & (m->nbucket - 1);
}

struct v6map *
v6map_create(size_t max_entries)
{
    struct v6map *m = mem_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->max = max_entries < V6MAP_SPACE ? max_entries : V6MAP_SPACE;
    m->free_head = m->free_tail = V6MAP_NONE;
    if (getentropy(&m->key, sizeof m->key) != 0)
        m->key = 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)m;
    return m;
}

void
v6map_destroy(struct v6map *m)
{
    if (!m)
        return;
    mem_free(m->e);
    mem_free(m->bucket);
    mem_free(m);
}

/* Grows the entry array and rebuilds the chains over twice as many buckets. The table is
 * sized by use, never by max_entries, which may be the whole 2^28 block. */
static int
v6map_grow(struct v6map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : V6MAP_INITIAL;
    if (ncap > m->max)
        ncap = m->max;
    if (ncap <= m->cap)
        return -1;
    size_t nb = 1;
    while (nb < ncap * 2)
        nb <<= 1;
    struct v6map_entry *ne = mem_realloc(m->e, ncap * sizeof *ne);
    if (!ne)
        return -1;
    m->e = ne;
    uint32_t *b = mem_alloc(nb * sizeof *b);
    if (!b)
        return -1; /* the larger array is kept; the next call retries the buckets */
    m->cap = ncap;
    mem_free(m->bucket);
    m->bucket = b;
    m->nbucket = nb;
    for (size_t i = 0; i < nb; i++)
        b[i] = V6MAP_NONE;
    for (size_t i = 0; i < m->used; i++) {
        if (m->e[i].refs == 0)
            continue; /* free entries keep their free-queue link */
        size_t h = v6map_hash(m, m->e[i].addr);
        m->e[i].next = b[h];
        b[h] = (uint32_t)i;
    }
    return 0;
}

static uint32_t
v6map_find(const struct v6map *m, const uint8_t addr[16])
{
    if (!m->nbucket)
        return V6MAP_NONE;
    for (uint32_t i = m->bucket[v6map_hash(m, addr)]; i != V6MAP_NONE; i = m->e[i].next)
        if (memcmp(m->e[i].addr, addr, 16) == 0)
            return i;
    return V6MAP_NONE;
}

static uint32_t
v6map_synth(uint32_t idx)
{
    return htonl(V6MAP_BASE + idx);
}

/* Index of a synthetic address, or V6MAP_NONE when it names no live entry. */
static uint32_t
v6map_index(const struct v6map *m, uint32_t synth)
{
    uint32_t h = ntohl(synth);
    if (h < V6MAP_BASE || h - V6MAP_BASE >= m->used)
        return V6MAP_NONE;
    uint32_t idx = h - V6MAP_BASE;
    return m->e[idx].refs ? idx : V6MAP_NONE;
}

int
v6map_acquire(struct v6map *m, const uint8_t addr[16], uint32_t *out)
{
    uint32_t idx = v6map_find(m, addr);
    if (idx != V6MAP_NONE) {
        if (m->e[idx].refs == UINT32_MAX)
            return -1;
        m->e[idx].refs++;
        *out = v6map_synth(idx);
        return 0;
    }
    if (m->count >= m->max)
        return -1;
    if (m->free_head != V6MAP_NONE) {
        /* Oldest freed first: an address released a moment ago may still sit in the
         * reassembler's tables, so it is reused last. */
        idx = m->free_head;
        m->free_head = m->e[idx].next;
        if (m->free_head == V6MAP_NONE)
            m->free_tail = V6MAP_NONE;
    } else {
        if (m->used == m->cap && v6map_grow(m) != 0)
            return -1;
        if (m->used == m->cap || !m->bucket)
            return -1;
        idx = (uint32_t)m->used++;
    }
    struct v6map_entry *e = &m->e[idx];
    memcpy(e->addr, addr, 16);
    e->refs = 1;
    size_t h = v6map_hash(m, addr);
    e->next = m->bucket[h];
    m->bucket[h] = idx;
    m->count++;
    *out = v6map_synth(idx);
    return 0;
}

int
v6map_lookup(const struct v6map *m, const uint8_t addr[16], uint32_t *out)
{
    uint32_t idx = v6map_find(m, addr);
    if (idx == V6MAP_NONE)
        return -1;
    *out = v6map_synth(idx);
    return 0;
}

int
v6map_reverse(const struct v6map *m, uint32_t synth, uint8_t addr[16])
{
    uint32_t idx = v6map_index(m, synth);
    if (idx == V6MAP_NONE)
        return -1;
    memcpy(addr, m->e[idx].addr, 16);
    return 0;
}

void
v6map_release(struct v6map *m, uint32_t synth)
{
    uint32_t idx = v6map_index(m, synth);
    if (idx == V6MAP_NONE)
        return;
    struct v6map_entry *e = &m->e[idx];
    if (--e->refs > 0)
        return;
    /* Unlink from its chain, then queue for reuse. */
    uint32_t *link = &m->bucket[v6map_hash(m, e->addr)];
    while (*link != idx)
        link = &m->e[*link].next;
    *link = e->next;
    e->next = V6MAP_NONE;
    if (m->free_tail == V6MAP_NONE)
        m->free_head = idx;
    else
        m->e[m->free_tail].next = idx;
    m->free_tail = idx;
    m->count--;
}

size_t
v6map_count(const struct v6map *m)
{
    return m ? m->count : 0;
}

int
v6map_is_synthetic(uint32_t addr_be)
{
    return (ntohl(addr_be) & 0xf0000000u) == 0xf0000000u;
}
