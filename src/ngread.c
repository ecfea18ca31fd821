/* ngread.c - pcapng read block by block (see ngread.h). Every length is checked against the
 * block that holds it: the file is untrusted input. */
#include "ngread.h"

#include <string.h>

#include "mem.h"

#define NGR_SHB 0x0A0D0D0Au
#define NGR_IDB 0x00000001u
#define NGR_PB 0x00000002u /* obsolete Packet Block */
#define NGR_SPB 0x00000003u
#define NGR_EPB 0x00000006u
/* libpcap refuses larger blocks too: no packet needs more. */
#define NGR_MAX_BLOCK (16u << 20)
/* Interfaces per section: a hostile file cannot make the table grow without bound. */
#define NGR_MAX_IFACES 65536u

struct ngr_iface {
    int dlt;
    uint32_t snaplen;
    int pow2;            /* if_tsresol: ticks are 2^-shift s (else 10^-digits s) */
    unsigned shift;      /* pow2 */
    uint64_t per_second; /* ticks per second (not pow2) */
    int64_t offset_s;    /* if_tsoffset */
};

struct ngr {
    FILE *f;
    int64_t skip_before;
    int64_t pos;       /* file offset of the next block */
    int64_t block_off; /* of the block being read */
    int swap;
    int in_section;
    struct ngr_iface *ifs;
    size_t nifs, aifs;
    uint8_t *body;
    size_t abody;
    int truncated;
    const char *error;
};

struct ngr *
ngr_open(FILE *f, int64_t skip_before)
{
    struct ngr *r = mem_calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->f = f;
    r->skip_before = skip_before;
    return r;
}

void
ngr_close(struct ngr *r)
{
    if (!r)
        return;
    mem_free(r->ifs);
    mem_free(r->body);
    mem_free(r);
}

const char *
ngr_error(const struct ngr *r)
{
    return r->error ? r->error : "unreadable block";
}

int
ngr_truncated(const struct ngr *r)
{
    return r->truncated;
}

int64_t
ngr_offset(const struct ngr *r)
{
    return r->block_off;
}

static uint32_t
ngr_u32(const struct ngr *r, const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return r->swap ? __builtin_bswap32(v) : v;
}

static uint16_t
ngr_u16(const struct ngr *r, const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return r->swap ? __builtin_bswap16(v) : v;
}

static int
ngr_fail(struct ngr *r, const char *why, int truncated)
{
    r->error = why;
    r->truncated = truncated;
    return NGR_DAMAGED;
}

/* An IDB's options: the timestamp resolution and offset. */
static void
ngr_idb_options(const struct ngr *r, struct ngr_iface *ifc, const uint8_t *p, size_t n)
{
    while (n >= 4) {
        uint16_t code = ngr_u16(r, p), len = ngr_u16(r, p + 2);
        size_t padded = ((size_t)len + 3) & ~(size_t)3;
        if (code == 0 || padded > n - 4)
            return; /* opt_endofopt, or an option that does not fit */
        const uint8_t *v = p + 4;
        if (code == 9 && len == 1) { /* if_tsresol */
            unsigned e = v[0] & 0x7f;
            if (v[0] & 0x80) {
                if (e <= 63) {
                    ifc->pow2 = 1;
                    ifc->shift = e;
                }
            } else if (e <= 19) { /* 10^19 is the largest power of ten in 64 bits */
                uint64_t t = 1;
                for (unsigned i = 0; i < e; i++)
                    t *= 10;
                ifc->pow2 = 0;
                ifc->per_second = t;
            }
        } else if (code == 14 && len == 8) { /* if_tsoffset, seconds */
            uint64_t o;
            memcpy(&o, v, 8);
            if (r->swap)
                o = __builtin_bswap64(o);
            ifc->offset_s = (int64_t)o;
        }
        p += 4 + padded;
        n -= 4 + padded;
    }
}

static int
ngr_idb(struct ngr *r, const uint8_t *b, size_t n)
{
    if (n < 8)
        return ngr_fail(r, "interface block too short", 0);
    if (r->nifs == NGR_MAX_IFACES)
        return ngr_fail(r, "too many interfaces in one section", 0);
    if (r->nifs == r->aifs) {
        size_t na = r->aifs ? r->aifs * 2 : 4;
        struct ngr_iface *ni = mem_realloc(r->ifs, na * sizeof *ni);
        if (!ni)
            return ngr_fail(r, "out of memory", 0);
        r->ifs = ni;
        r->aifs = na;
    }
    struct ngr_iface *ifc = &r->ifs[r->nifs++];
    memset(ifc, 0, sizeof *ifc);
    ifc->dlt = ngr_u16(r, b);
    ifc->snaplen = ngr_u32(r, b + 4);
    ifc->per_second = 1000000;
    ngr_idb_options(r, ifc, b + 8, n - 8);
    return 0;
}

/* Ticks of an interface's resolution as microseconds since the epoch, clamped to years
 * 1970..9999 as the libpcap path does. */
static int64_t
ngr_ts(const struct ngr_iface *ifc, uint64_t ticks)
{
    const int64_t max_s = INT64_C(253402300799);
    uint64_t sec, us;
    if (ifc->pow2) {
        unsigned sh = ifc->shift;
        sec = sh ? ticks >> sh : ticks;
        uint64_t frac = sh ? ticks & ((UINT64_C(1) << sh) - 1) : 0;
        /* frac * 10^6 fits in 64 bits while frac < 2^44; finer bits do not reach a us. */
        us = sh <= 44 ? (frac * 1000000) >> sh : ((frac >> (sh - 44)) * 1000000) >> 44;
    } else {
        /* per_second is a power of ten: one of the two divisions is exact. */
        uint64_t d = ifc->per_second, frac = ticks % d;
        sec = ticks / d;
        us = d <= 1000000 ? frac * (1000000 / d) : frac / (d / 1000000);
    }
    int64_t s = sec > (uint64_t)max_s ? max_s : (int64_t)sec;
    s += ifc->offset_s;
    if (s < 0)
        return 0;
    if (s > max_s)
        s = max_s;
    return s * 1000000 + (int64_t)us;
}

/* Reads one whole block into r->body (the part after type and length). 1 read, 0 at a
 * clean end of file, NGR_DAMAGED. */
static int
ngr_block(struct ngr *r, uint32_t *type, size_t *body_len)
{
    uint8_t h[12];
    r->block_off = r->pos;
    size_t got = fread(h, 1, 8, r->f);
    if (got == 0)
        return 0;
    if (got < 8)
        return ngr_fail(r, "file ends in the middle of a block", 1);
    uint32_t raw;
    memcpy(&raw, h, 4);
    if (raw == NGR_SHB) {
        /* A new section: its byte-order magic decides how its lengths are read. */
        if (fread(h + 8, 1, 4, r->f) != 4)
            return ngr_fail(r, "file ends in the middle of a block", 1);
        uint32_t magic;
        memcpy(&magic, h + 8, 4);
        if (magic == 0x1A2B3C4Du)
            r->swap = 0;
        else if (magic == 0x4D3C2B1Au)
            r->swap = 1;
        else
            return ngr_fail(r, "section header with a bad byte-order magic", 0);
        r->in_section = 1;
        r->nifs = 0;
    } else if (!r->in_section) {
        return ngr_fail(r, "not a pcapng file", 0);
    }
    *type = ngr_u32(r, h);
    uint32_t total = ngr_u32(r, h + 4);
    size_t head = raw == NGR_SHB ? 12 : 8;
    if (total < 12 || total % 4 || total > NGR_MAX_BLOCK || total < head + 4)
        return ngr_fail(r, "block with an impossible length", 0);
    size_t n = total - head;
    if (n > r->abody) {
        uint8_t *nb = mem_realloc(r->body, n);
        if (!nb)
            return ngr_fail(r, "out of memory", 0);
        r->body = nb;
        r->abody = n;
    }
    if (fread(r->body, 1, n, r->f) != n)
        return ngr_fail(r, "file ends in the middle of a block", 1);
    if (ngr_u32(r, r->body + n - 4) != total)
        return ngr_fail(r, "block lengths disagree", 0);
    r->pos += total;
    *body_len = n - 4; /* without the trailing length */
    return 1;
}

int
ngr_next(struct ngr *r, struct ngr_pkt *p)
{
    for (;;) {
        uint32_t type;
        size_t n;
        int rc = ngr_block(r, &type, &n);
        if (rc <= 0)
            return rc;
        const uint8_t *b = r->body;
        if (type == NGR_SHB)
            continue;
        if (type == NGR_IDB) {
            if (ngr_idb(r, b, n) < 0)
                return NGR_DAMAGED;
            continue;
        }
        uint32_t ifid, caplen, len;
        uint64_t ticks;
        const uint8_t *data;
        if (type == NGR_EPB || type == NGR_PB) {
            if (n < 20)
                return ngr_fail(r, "packet block too short", 0);
            ifid = type == NGR_EPB ? ngr_u32(r, b) : ngr_u16(r, b);
            ticks = (uint64_t)ngr_u32(r, b + 4) << 32 | ngr_u32(r, b + 8);
            caplen = ngr_u32(r, b + 12);
            len = ngr_u32(r, b + 16);
            if (caplen > n - 20)
                return ngr_fail(r, "packet longer than its block", 0);
            data = b + 20;
        } else if (type == NGR_SPB) {
            /* No timestamp: the previous packet's time keeps the capture in order. */
            if (n < 4)
                return ngr_fail(r, "packet block too short", 0);
            ifid = 0;
            ticks = 0;
            len = ngr_u32(r, b);
            caplen = len < n - 4 ? len : (uint32_t)(n - 4);
            data = b + 4;
        } else {
            continue;
        }
        if (ifid >= r->nifs)
            return ngr_fail(r, "packet of an interface not described", 0);
        const struct ngr_iface *ifc = &r->ifs[ifid];
        if (ifc->snaplen && caplen > ifc->snaplen && caplen > 262144)
            caplen = ifc->snaplen; /* as libpcap: never more than the snapshot length */
        if (r->block_off < r->skip_before)
            continue;
        p->ts_us = type == NGR_SPB ? -1 : ngr_ts(ifc, ticks);
        p->caplen = caplen;
        p->len = len < caplen ? caplen : len;
        p->dlt = ifc->dlt;
        p->data = data;
        p->offset = r->block_off;
        return NGR_PACKET;
    }
}
