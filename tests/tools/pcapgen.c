/* pcapgen.c - crafted capture generator for the capture tests: pcap and pcapng files (written
 * by hand, not through libpcap) holding TCP connections (RFC 9293) over IPv4 (RFC 791, 815)
 * and IPv6 (RFC 8200) that carry SMTP (RFC 5321, 2920, 3030, 4954), built segment by segment
 * so that edge cases and hostile input real MTAs never produce can be replayed exactly. */

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mem.h"

/* Every capture starts at 2021-11-20T01:02:03Z, so the same scenario always gives the same
 * bytes and the reports built from it can be compared byte for byte. */
#define PG_T0_US (INT64_C(1637370123) * 1000000)
#define PG_SEED UINT64_C(0x736d74702d67656e)

#define PG_SNAPLEN 262144u
#define PG_LINK_ROOM 64u
#define PG_IP_MAX 65535u
#define PG_FRAME_MAX (PG_LINK_ROOM + PG_IP_MAX + 64u)
/* Bulk data is handed to the segmenter in pieces of this size: a whole number of IPv4 and
 * IPv6 MSS-sized segments, so piecing never makes short segments in the middle. */
#define PG_CHUNK (1460u * 1440u / 40u)

#define PG_C 0 /* client to server */
#define PG_S 1 /* server to client */

#define PG_FIN 0x01u
#define PG_SYN 0x02u
#define PG_RST 0x04u
#define PG_PSH 0x08u
#define PG_ACK 0x10u

#define PG_ETH_IPV4 0x0800u
#define PG_ETH_IPV6 0x86ddu
#define PG_ETH_VLAN 0x8100u
#define PG_ETH_QINQ 0x88a8u

#define PG_TTL_CLIENT 64u
#define PG_TTL_SERVER 57u /* 64 at the server, seven routers before the capture point */
#define PG_TTL_INJECTED 250u

enum pg_format { PG_FMT_PCAP, PG_FMT_PCAPNG };

enum pg_link {
    PG_LINK_ETH,
    PG_LINK_VLAN,
    PG_LINK_QINQ,
    PG_LINK_SLL,
    PG_LINK_SLL2,
    PG_LINK_NULL,
    PG_LINK_LOOP,
    PG_LINK_RAW,
    PG_LINK_COUNT
};

/* LINKTYPE_ numbers as stored in files (pcap-linktype(7)). */
static const uint32_t pg_linktype[PG_LINK_COUNT] = {1, 1, 1, 113, 276, 0, 108, 101};

struct pg_rec {
    int64_t ts;
    size_t order; /* keeps packets of equal time in the order they were made */
    uint32_t caplen;
    uint32_t len;
    uint8_t *data;
};

struct pg_writer {
    FILE *f;
    enum pg_format fmt;
    uint32_t linktype;
    uint32_t snaplen;
    int keep_oversize; /* records may exceed the snap length (hostile_bigcaplen) */
    int io_error;
    /* Buffered mode: packets are kept, sorted by time and written at the end, so that
     * sessions made one after the other come out interleaved, or a capture is split. */
    int buffered;
    struct pg_rec *recs;
    size_t nrecs;
    size_t recs_alloc;
    unsigned long packets;   /* records written completely */
    unsigned long truncated; /* of which caplen < len */
};

struct pg_ep {
    uint8_t addr[16];
    uint16_t port;
    uint8_t mac[6];
    uint8_t ttl;
    uint32_t isn;
    uint32_t nxt; /* next sequence number this side sends */
    uint16_t ipid;
    uint32_t flow;    /* IPv6 flow label */
    uint64_t bytes;   /* payload bytes sent, whether or not the capture saw them */
    uint64_t packets; /* packets written to the capture */
    uint64_t unacked; /* payload bytes the peer has not acknowledged yet */
};

struct pg;

struct pg_conn {
    struct pg *g;
    int family; /* 4 or 6 */
    struct pg_ep ep[2];
    uint16_t mss;
    uint16_t window;
    int64_t rtt;          /* µs; the capture point sits next to the client */
    int64_t ack_delay;    /* µs between a data burst and the peer's pure ACK */
    int64_t banner_delay; /* µs the server takes before its greeting */
    unsigned hbh_every;   /* IPv6: a hop-by-hop options header on every Nth packet, 0 never */
    unsigned npkts;
    int emit;      /* 0: the packets happen but the capture misses them */
    int frag_next; /* IPv4: send the next segment as fragments */
    int gap_dir;   /* a data segment starting at this stream offset is missing */
    uint32_t gap_off;
    int gap_armed;
    int hide_dir;        /* 1 + a direction the capture never sees (a one-way tap); 0: none */
    int bad_csum[2];     /* every segment of that side has a wrong TCP checksum (offload) */
    int corrupt_next[2]; /* the side's next segment has a wrong TCP checksum */
    int frag_again;      /* fragments: the second one is sent twice, 1 the same, 2 changed */
};

struct pg {
    struct pg_writer w;
    enum pg_link link;
    int64_t now; /* capture clock, µs since the epoch */
    uint64_t rng;
    uint64_t size; /* the scenario's size argument */
    uint8_t l4[PG_IP_MAX];
    uint8_t frame[PG_FRAME_MAX];
};

static const uint8_t pg_zero[8];

static const uint8_t pg_v4_client[4] = {192, 0, 2, 10};
static const uint8_t pg_v4_server[4] = {198, 51, 100, 25};
static const uint8_t pg_v6_client[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                         0,    0,    0,    0,    0, 0, 0, 0x10};
static const uint8_t pg_v6_server[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x25, 0, 0,
                                         0,    0,    0,    0,    0, 0,    0, 0x25};
static const uint8_t pg_mac_client[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x10};
static const uint8_t pg_mac_gateway[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

static const char pg_banner[] = "220 mail.example.net ESMTP Postfix (Debian/GNU)\r\n";
static const char pg_ehlo[] = "EHLO client.example.org\r\n";
static const char pg_ehlo_reply[] = "250-mail.example.net\r\n"
                                    "250-PIPELINING\r\n"
                                    "250-SIZE 10240000\r\n"
                                    "250-VRFY\r\n"
                                    "250-ETRN\r\n"
                                    "250-STARTTLS\r\n"
                                    "250-AUTH PLAIN LOGIN\r\n"
                                    "250-ENHANCEDSTATUSCODES\r\n"
                                    "250-8BITMIME\r\n"
                                    "250-DSN\r\n"
                                    "250-SMTPUTF8\r\n"
                                    "250 CHUNKING\r\n";
static const char pg_354[] = "354 End data with <CR><LF>.<CR><LF>\r\n";

/* ---- bytes ---------------------------------------------------------------------------- */

static void
pg_be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
pg_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Files are always written little-endian, whatever the host, so the output is the same
 * everywhere; readers swap by the magic number. */
static void
pg_le16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void
pg_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* splitmix64: tiny, seedable, and the same sequence on every platform. */
static uint64_t
pg_rand(struct pg *g)
{
    uint64_t z = (g->rng += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint32_t
pg_rand_below(struct pg *g, uint32_t n)
{
    return n ? (uint32_t)(pg_rand(g) % n) : 0;
}

static void pg_fact(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Facts go to stdout as "fact KEY VALUE" so the tests know what the capture holds without
 * repeating the generator's arithmetic. */
static void
pg_fact(const char *key, const char *fmt, ...)
{
    va_list ap;

    printf("fact %s ", key);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- file writer -------------------------------------------------------------------------- */

static void
pg_wr_bytes(struct pg_writer *w, const void *p, size_t n)
{
    if (n > 0 && !w->io_error && fwrite(p, 1, n, w->f) != n)
        w->io_error = errno ? errno : EIO;
}

static void
pg_wr_header(struct pg_writer *w)
{
    uint8_t h[64];

    if (w->fmt == PG_FMT_PCAP) {
        /* Classic pcap, microsecond resolution, version 2.4. */
        pg_le32(h, 0xa1b2c3d4u);
        pg_le16(h + 4, 2);
        pg_le16(h + 6, 4);
        pg_le32(h + 8, 0);
        pg_le32(h + 12, 0);
        pg_le32(h + 16, w->snaplen);
        pg_le32(h + 20, w->linktype);
        pg_wr_bytes(w, h, 24);
        return;
    }
    /* pcapng section header block: byte-order magic, version 1.0, section length unknown
     * (-1), an shb_userappl option padded to 32 bits, opt_endofopt, the length again. */
    memset(h, 0, sizeof(h));
    pg_le32(h, 0x0a0d0d0au);
    pg_le32(h + 4, 44);
    pg_le32(h + 8, 0x1a2b3c4du);
    pg_le16(h + 12, 1);
    pg_le16(h + 14, 0);
    pg_le32(h + 16, 0xffffffffu);
    pg_le32(h + 20, 0xffffffffu);
    pg_le16(h + 24, 4);
    pg_le16(h + 26, 7);
    memcpy(h + 28, "pcapgen", 7);
    pg_le32(h + 36, 0);
    pg_le32(h + 40, 44);
    pg_wr_bytes(w, h, 44);

    /* Interface description block: link type, snap length, if_name "eth0" and if_tsresol 6
     * (microseconds, also the default, stated so readers need not assume it). */
    memset(h, 0, sizeof(h));
    pg_le32(h, 1);
    pg_le32(h + 4, 40);
    pg_le16(h + 8, w->linktype);
    pg_le16(h + 10, 0);
    pg_le32(h + 12, w->snaplen);
    pg_le16(h + 16, 2);
    pg_le16(h + 18, 4);
    memcpy(h + 20, "eth0", 4);
    pg_le16(h + 24, 9);
    pg_le16(h + 26, 1);
    h[28] = 6;
    pg_le32(h + 32, 0);
    pg_le32(h + 36, 40);
    pg_wr_bytes(w, h, 40);
}

/* One record. `present` bytes of data follow the header although it claims caplen: less
 * than caplen only for the captures that end inside a record. */
static void
pg_wr_record(struct pg_writer *w, int64_t ts, const uint8_t *data, uint32_t caplen, uint32_t len,
             uint32_t present)
{
    uint8_t h[28];

    if (w->fmt == PG_FMT_PCAP) {
        pg_le32(h, (uint32_t)(ts / 1000000));
        pg_le32(h + 4, (uint32_t)(ts % 1000000));
        pg_le32(h + 8, caplen);
        pg_le32(h + 12, len);
        pg_wr_bytes(w, h, 16);
        pg_wr_bytes(w, data, present);
    } else {
        uint32_t pad = (4u - caplen % 4u) % 4u;
        uint32_t total = 32u + caplen + pad;
        uint64_t t = (uint64_t)ts;

        /* Enhanced packet block on interface 0, timestamp in units of if_tsresol. */
        pg_le32(h, 6);
        pg_le32(h + 4, total);
        pg_le32(h + 8, 0);
        pg_le32(h + 12, (uint32_t)(t >> 32));
        pg_le32(h + 16, (uint32_t)t);
        pg_le32(h + 20, caplen);
        pg_le32(h + 24, len);
        pg_wr_bytes(w, h, 28);
        pg_wr_bytes(w, data, present);
        if (present < caplen)
            return;
        pg_wr_bytes(w, pg_zero, pad);
        pg_le32(h, total);
        pg_wr_bytes(w, h, 4);
    }
    if (present == caplen) {
        w->packets++;
        if (caplen < len)
            w->truncated++;
    }
}

static uint32_t
pg_wr_caplen(const struct pg_writer *w, uint32_t len)
{
    return (!w->keep_oversize && len > w->snaplen) ? w->snaplen : len;
}

/* A frame of `len` bytes on the wire of which the first `caplen` were captured. */
static void
pg_wr_frame(struct pg_writer *w, int64_t ts, const uint8_t *data, uint32_t caplen, uint32_t len)
{
    struct pg_rec *r;

    caplen = pg_wr_caplen(w, caplen);
    if (!w->buffered) {
        pg_wr_record(w, ts, data, caplen, len, caplen);
        return;
    }
    if (w->nrecs == w->recs_alloc) {
        size_t n = w->recs_alloc ? w->recs_alloc * 2 : 1024;
        struct pg_rec *nr = mem_realloc(w->recs, n * sizeof(*nr));

        if (!nr) {
            w->io_error = ENOMEM;
            return;
        }
        w->recs = nr;
        w->recs_alloc = n;
    }
    r = &w->recs[w->nrecs];
    r->data = mem_alloc(caplen ? caplen : 1);
    if (!r->data) {
        w->io_error = ENOMEM;
        return;
    }
    memcpy(r->data, data, caplen);
    r->ts = ts;
    r->order = w->nrecs;
    r->caplen = caplen;
    r->len = len;
    w->nrecs++;
}

static int
pg_rec_cmp(const void *a, const void *b)
{
    const struct pg_rec *x = a, *y = b;

    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Writes the buffered packets in time order: only those with from <= ts < until, and when
 * cut_index is set the record with that index is written half and the file ends there. */
static void
pg_wr_flush(struct pg_writer *w, int64_t from, int64_t until, size_t cut_index)
{
    size_t i, n = 0;

    qsort(w->recs, w->nrecs, sizeof(*w->recs), pg_rec_cmp);
    for (i = 0; i < w->nrecs; i++) {
        const struct pg_rec *r = &w->recs[i];

        if (r->ts < from || r->ts >= until)
            continue;
        if (cut_index && n == cut_index) {
            pg_wr_record(w, r->ts, r->data, r->caplen, r->len, r->caplen / 2);
            break;
        }
        pg_wr_record(w, r->ts, r->data, r->caplen, r->len, r->caplen);
        n++;
    }
    for (i = 0; i < w->nrecs; i++)
        mem_free(w->recs[i].data);
    mem_free(w->recs);
    w->recs = NULL;
    w->nrecs = w->recs_alloc = 0;
    w->buffered = 0;
}

/* ---- link layer ----------------------------------------------------------------------------- */

/* Writes the link header for one IP packet that starts at g->frame + PG_LINK_ROOM and returns
 * where the frame starts. dir decides the MAC addresses and the cooked packet type. */
static uint8_t *
pg_link_header(struct pg *g, int dir, int family, size_t *hlen)
{
    uint8_t *ip = g->frame + PG_LINK_ROOM;
    uint32_t etype = family == 6 ? PG_ETH_IPV6 : PG_ETH_IPV4;
    const uint8_t *src = dir == PG_C ? pg_mac_client : pg_mac_gateway;
    const uint8_t *dst = dir == PG_C ? pg_mac_gateway : pg_mac_client;
    uint8_t *p = ip;

    switch (g->link) {
    case PG_LINK_ETH:
    case PG_LINK_VLAN:
    case PG_LINK_QINQ:
        p -= 2;
        pg_be16(p, etype);
        if (g->link != PG_LINK_ETH) {
            /* inner (or only) 802.1Q tag: priority 0, VLAN 100 */
            p -= 4;
            pg_be16(p, PG_ETH_VLAN);
            pg_be16(p + 2, 100);
        }
        if (g->link == PG_LINK_QINQ) {
            /* 802.1ad service tag outside it: VLAN 200 */
            p -= 4;
            pg_be16(p, PG_ETH_QINQ);
            pg_be16(p + 2, 200);
        }
        p -= 12;
        memcpy(p, dst, 6);
        memcpy(p + 6, src, 6);
        break;
    case PG_LINK_SLL:
        /* Linux cooked v1: packet type (4 = sent by us, 0 = to us), ARPHRD_ETHER, address
         * length, sender address padded to 8, protocol. */
        p -= 16;
        pg_be16(p, dir == PG_C ? 4 : 0);
        pg_be16(p + 2, 1);
        pg_be16(p + 4, 6);
        memset(p + 6, 0, 8);
        memcpy(p + 6, src, 6);
        pg_be16(p + 14, etype);
        break;
    case PG_LINK_SLL2:
        /* Linux cooked v2: protocol, reserved, interface index, ARPHRD, packet type,
         * address length, address. */
        p -= 20;
        pg_be16(p, etype);
        pg_be16(p + 2, 0);
        pg_be32(p + 4, 2);
        pg_be16(p + 8, 1);
        p[10] = dir == PG_C ? 4 : 0;
        p[11] = 6;
        memset(p + 12, 0, 8);
        memcpy(p + 12, src, 6);
        break;
    case PG_LINK_NULL:
        /* BSD loopback: address family in the byte order of the host that captured, which
         * is the file's (little-endian) order here. 24 is the NetBSD/OpenBSD AF_INET6. */
        p -= 4;
        pg_le32(p, family == 6 ? 24 : 2);
        break;
    case PG_LINK_LOOP:
        /* OpenBSD loopback: the same field, always in network order. */
        p -= 4;
        pg_be32(p, family == 6 ? 24 : 2);
        break;
    case PG_LINK_RAW:
    case PG_LINK_COUNT:
        break;
    }
    *hlen = (size_t)(ip - p);
    return p;
}

static void
pg_link_emit(struct pg *g, struct pg_conn *c, int dir, int family, size_t iplen)
{
    size_t hlen;
    uint8_t *frame;

    if (c && (!c->emit || c->hide_dir == dir + 1))
        return;
    frame = pg_link_header(g, dir, family, &hlen);
    pg_wr_frame(&g->w, g->now, frame, (uint32_t)(hlen + iplen), (uint32_t)(hlen + iplen));
    if (c)
        c->ep[dir].packets++;
}

/* ---- IP and TCP ----------------------------------------------------------------------------- */

/* Internet checksum (RFC 1071) accumulation; fold with pg_csum_fold. */
static uint64_t
pg_csum_add(uint64_t acc, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i + 1 < n; i += 2)
        acc += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static uint16_t
pg_csum_fold(uint64_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffffu) + (acc >> 16);
    return (uint16_t)~acc;
}

/* TCP checksum over the pseudo-header of RFC 9293 3.1 (IPv4) or RFC 8200 8.1 (IPv6). The
 * checksum field in l4 must be zero. */
static uint16_t
pg_l4_csum(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto, const uint8_t *l4,
           size_t len)
{
    size_t alen = family == 6 ? 16 : 4;
    uint64_t acc = 0;

    acc = pg_csum_add(acc, src, alen);
    acc = pg_csum_add(acc, dst, alen);
    acc += proto;
    acc += (uint32_t)(len >> 16);
    acc += (uint32_t)(len & 0xffffu);
    return pg_csum_fold(pg_csum_add(acc, l4, len));
}

/* A 20-byte IPv4 header with a correct checksum. frag is the flags + offset field. */
static void
pg_ipv4_header(uint8_t *p, const uint8_t *src, const uint8_t *dst, uint8_t proto, uint8_t ttl,
               uint16_t id, uint16_t frag, size_t payload)
{
    p[0] = 0x45;
    p[1] = 0;
    pg_be16(p + 2, (uint32_t)(20 + payload));
    pg_be16(p + 4, id);
    pg_be16(p + 6, frag);
    p[8] = ttl;
    p[9] = proto;
    pg_be16(p + 10, 0);
    memcpy(p + 12, src, 4);
    memcpy(p + 16, dst, 4);
    pg_be16(p + 10, pg_csum_fold(pg_csum_add(0, p, 20)));
}

static void
pg_ipv6_header(uint8_t *p, const uint8_t *src, const uint8_t *dst, uint8_t nh, uint8_t hlim,
               uint32_t flow, size_t payload)
{
    pg_be32(p, 0x60000000u | (flow & 0xfffffu));
    pg_be16(p + 4, (uint32_t)payload);
    p[6] = nh;
    p[7] = hlim;
    memcpy(p + 8, src, 16);
    memcpy(p + 24, dst, 16);
}

/* Splits an IPv4 datagram into three fragments (RFC 791 3.2): 24 and 16 bytes of transport
 * data, then the rest; offsets in units of 8. The TCP header stays whole in the first. */
static void
pg_ipv4_fragments(struct pg_conn *c, int dir, uint8_t proto, const uint8_t *l4, size_t l4len,
                  uint8_t ttl, uint16_t id)
{
    static const size_t piece[2] = {24, 16};
    struct pg *g = c->g;
    uint8_t *ip = g->frame + PG_LINK_ROOM;
    size_t off = 0;
    int i;

    for (i = 0; off < l4len; i++) {
        size_t n = i < 2 ? piece[i] : l4len - off;
        uint16_t frag;

        if (n > l4len - off)
            n = l4len - off;
        frag = (uint16_t)((off / 8) | (off + n < l4len ? 0x2000u : 0));
        pg_ipv4_header(ip, c->ep[dir].addr, c->ep[!dir].addr, proto, ttl, id, frag, n);
        memcpy(ip + 20, l4 + off, n);
        pg_link_emit(g, c, dir, 4, 20 + n);
        if (i == 1 && c->frag_again) {
            /* The same fragment again, as sent or with its bytes changed. */
            g->now += 2;
            pg_ipv4_header(ip, c->ep[dir].addr, c->ep[!dir].addr, proto, ttl, id, frag, n);
            memcpy(ip + 20, l4 + off, n);
            if (c->frag_again == 2)
                for (size_t k = 0; k < n; k++)
                    ip[20 + k] = ip[20 + k] == 'e' ? 'x' : ip[20 + k];
            pg_link_emit(g, c, dir, 4, 20 + n);
        }
        off += n;
        g->now += 2;
    }
}

static void
pg_ip_emit(struct pg_conn *c, int dir, uint8_t proto, const uint8_t *l4, size_t l4len, uint8_t ttl)
{
    struct pg *g = c->g;
    struct pg_ep *e = &c->ep[dir];
    uint8_t *ip = g->frame + PG_LINK_ROOM;

    if (c->family == 4) {
        uint16_t id = e->ipid++;

        if (c->frag_next && l4len > 40) {
            c->frag_next = 0;
            pg_ipv4_fragments(c, dir, proto, l4, l4len, ttl, id);
        } else {
            /* DF set, as every modern stack does with path MTU discovery */
            pg_ipv4_header(ip, e->addr, c->ep[!dir].addr, proto, ttl, id, 0x4000, l4len);
            memcpy(ip + 20, l4, l4len);
            pg_link_emit(g, c, dir, 4, 20 + l4len);
        }
    } else {
        /* A hop-by-hop options header (RFC 8200 4.3) holding one PadN option on some
         * packets, so decoders must walk the extension chain to find TCP. */
        int hbh = c->hbh_every && c->npkts % c->hbh_every == 0;
        size_t hl = 40;

        if (hbh) {
            pg_ipv6_header(ip, e->addr, c->ep[!dir].addr, 0, ttl, e->flow, 8 + l4len);
            ip[40] = proto;
            ip[41] = 0;
            ip[42] = 1;
            ip[43] = 4;
            memset(ip + 44, 0, 4);
            hl = 48;
        } else {
            pg_ipv6_header(ip, e->addr, c->ep[!dir].addr, proto, ttl, e->flow, l4len);
        }
        memcpy(ip + hl, l4, l4len);
        pg_link_emit(g, c, dir, 6, hl + l4len);
    }
    c->npkts++;
}

struct pg_seg {
    uint8_t flags;
    uint32_t seq;
    uint32_t ack;
    uint16_t window;
    const uint8_t *data;
    size_t len;
    uint8_t ttl; /* 0: the sending side's own */
};

static void
pg_tcp_emit(struct pg_conn *c, int dir, const struct pg_seg *s)
{
    struct pg *g = c->g;
    uint8_t *t = g->l4;
    size_t hl = 20;

    if (s->flags & PG_SYN) {
        /* MSS, NOP, NOP, SACK permitted: what a SYN of a common stack carries, minus
         * timestamps and window scaling so window arithmetic stays plain. */
        t[20] = 2;
        t[21] = 4;
        pg_be16(t + 22, c->mss);
        t[24] = 1;
        t[25] = 1;
        t[26] = 4;
        t[27] = 2;
        hl = 28;
    }
    pg_be16(t, c->ep[dir].port);
    pg_be16(t + 2, c->ep[!dir].port);
    pg_be32(t + 4, s->seq);
    pg_be32(t + 8, s->ack);
    t[12] = (uint8_t)((hl / 4) << 4);
    t[13] = s->flags;
    pg_be16(t + 14, s->window);
    pg_be16(t + 16, 0);
    pg_be16(t + 18, 0);
    if (s->len)
        memcpy(t + hl, s->data, s->len);
    pg_be16(t + 16, pg_l4_csum(c->family, c->ep[dir].addr, c->ep[!dir].addr, 6, t, hl + s->len));
    if (c->bad_csum[dir] || c->corrupt_next[dir]) {
        t[16] ^= 0x5a; /* wrong, whatever it was */
        c->corrupt_next[dir] = 0;
    }
    pg_ip_emit(c, dir, 6, t, hl + s->len, s->ttl ? s->ttl : c->ep[dir].ttl);
}

/* Sends one segment from `dir` at the side's next sequence number and advances it. */
static void
pg_tcp_send(struct pg_conn *c, int dir, uint8_t flags, const uint8_t *data, size_t len)
{
    struct pg_ep *e = &c->ep[dir];
    struct pg_seg s;

    memset(&s, 0, sizeof(s));
    s.flags = flags;
    s.seq = e->nxt;
    s.ack = (flags & PG_ACK) ? c->ep[!dir].nxt : 0;
    s.window = c->window;
    s.data = data;
    s.len = len;
    pg_tcp_emit(c, dir, &s);
    e->nxt += (uint32_t)len + ((flags & PG_SYN) ? 1u : 0u) + ((flags & PG_FIN) ? 1u : 0u);
    e->bytes += len;
    e->unacked += len;
    if (flags & PG_ACK)
        c->ep[!dir].unacked = 0;
}

static void
pg_conn_init(struct pg_conn *c, struct pg *g, int family, const uint8_t *caddr, uint16_t cport,
             const uint8_t *saddr, uint16_t sport)
{
    size_t alen = family == 6 ? 16 : 4;

    memset(c, 0, sizeof(*c));
    c->g = g;
    c->family = family;
    memcpy(c->ep[PG_C].addr, caddr, alen);
    memcpy(c->ep[PG_S].addr, saddr, alen);
    c->ep[PG_C].port = cport;
    c->ep[PG_S].port = sport;
    memcpy(c->ep[PG_C].mac, pg_mac_client, 6);
    memcpy(c->ep[PG_S].mac, pg_mac_gateway, 6);
    c->ep[PG_C].ttl = PG_TTL_CLIENT;
    c->ep[PG_S].ttl = PG_TTL_SERVER;
    c->ep[PG_C].isn = c->ep[PG_C].nxt = (uint32_t)pg_rand(g);
    c->ep[PG_S].isn = c->ep[PG_S].nxt = (uint32_t)pg_rand(g);
    c->ep[PG_C].ipid = (uint16_t)pg_rand(g);
    c->ep[PG_S].ipid = (uint16_t)pg_rand(g);
    c->ep[PG_C].flow = (uint32_t)pg_rand(g) & 0xfffffu;
    c->ep[PG_S].flow = (uint32_t)pg_rand(g) & 0xfffffu;
    c->mss = family == 6 ? 1440 : 1460;
    c->window = 64240;
    c->rtt = 20000;
    c->ack_delay = 150;
    c->banner_delay = 5000;
    c->emit = 1;
}

static uint32_t
pg_stream_off(const struct pg_conn *c, int dir)
{
    return c->ep[dir].nxt - c->ep[dir].isn - 1;
}

static void
pg_ack(struct pg_conn *c, int dir)
{
    pg_tcp_send(c, dir, PG_ACK, NULL, 0);
}

/* Sends application bytes from `dir` in MSS-sized segments, PSH on the last. The peer
 * acknowledges every second full segment (RFC 9293 3.8.6.3) so the sender never runs past
 * the advertised window, which is how a reassembler decides what is in window. */
static void
pg_send(struct pg_conn *c, int dir, const void *data, size_t len)
{
    const uint8_t *p = data;

    while (len > 0) {
        size_t n = len < c->mss ? len : c->mss;
        int emit = c->emit;

        if (c->gap_armed && dir == c->gap_dir && pg_stream_off(c, dir) == c->gap_off) {
            /* This segment reaches the server but not the capture. */
            c->emit = 0;
            c->gap_armed = 0;
            pg_fact("gap_len", "%zu", n);
        }
        pg_tcp_send(c, dir, (uint8_t)(PG_ACK | (n == len ? PG_PSH : 0)), p, n);
        c->emit = emit;
        p += n;
        len -= n;
        c->g->now += 12;
        if (c->ep[dir].unacked >= 2u * c->mss) {
            c->g->now += c->ack_delay;
            pg_ack(c, !dir);
        }
    }
}

static void
pg_send_str(struct pg_conn *c, int dir, const char *s)
{
    pg_send(c, dir, s, strlen(s));
}

/* A command and its reply as seen next to the client: the reply comes one round trip plus
 * the server's processing time later, and the client takes a moment before the next. */
static void
pg_exchange(struct pg_conn *c, const char *cmd, const char *reply)
{
    pg_send_str(c, PG_C, cmd);
    c->g->now += c->rtt + 400;
    if (reply)
        pg_send_str(c, PG_S, reply);
    c->g->now += 250;
}

static void
pg_handshake(struct pg_conn *c)
{
    pg_tcp_send(c, PG_C, PG_SYN, NULL, 0);
    c->g->now += c->rtt;
    pg_tcp_send(c, PG_S, PG_SYN | PG_ACK, NULL, 0);
    c->g->now += 40;
    pg_ack(c, PG_C);
}

static void
pg_banner_from_server(struct pg_conn *c, const char *banner)
{
    c->g->now += c->rtt + c->banner_delay;
    pg_send_str(c, PG_S, banner);
    c->g->now += 300;
}

/* After "221": the server closes first, the client answers with its own FIN at once and
 * the server's last ACK comes a round trip later. */
static void
pg_close_server_first(struct pg_conn *c)
{
    c->g->now += 60;
    pg_tcp_send(c, PG_S, PG_FIN | PG_ACK, NULL, 0);
    c->g->now += 45;
    pg_tcp_send(c, PG_C, PG_FIN | PG_ACK, NULL, 0);
    c->g->now += c->rtt;
    pg_ack(c, PG_S);
}

static void
pg_close_client_first(struct pg_conn *c)
{
    c->g->now += 100;
    pg_tcp_send(c, PG_C, PG_FIN | PG_ACK, NULL, 0);
    c->g->now += c->rtt;
    pg_tcp_send(c, PG_S, PG_FIN | PG_ACK, NULL, 0);
    c->g->now += 45;
    pg_ack(c, PG_C);
}

static void
pg_conn_facts(const struct pg_conn *c)
{
    char a[2][INET6_ADDRSTRLEN];
    int i;

    for (i = 0; i < 2; i++)
        if (!inet_ntop(c->family == 6 ? AF_INET6 : AF_INET, c->ep[i].addr, a[i], sizeof(a[i])))
            snprintf(a[i], sizeof(a[i]), "?");
    pg_fact("client", "%s %u", a[PG_C], c->ep[PG_C].port);
    pg_fact("server", "%s %u", a[PG_S], c->ep[PG_S].port);
    pg_fact("bytes_client", "%" PRIu64, c->ep[PG_C].bytes);
    pg_fact("bytes_server", "%" PRIu64, c->ep[PG_S].bytes);
    pg_fact("packets_client", "%" PRIu64, c->ep[PG_C].packets);
    pg_fact("packets_server", "%" PRIu64, c->ep[PG_S].packets);
}

static void
pg_buf_str(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

/* ---- the standard dialogue ---------------------------------------------------------------- */

/* A small RFC 5322 message. With `stuffed` it is ready for DATA (RFC 5321 4.5.2): dot-stuffed
 * and ended by CRLF.CRLF; without, raw for BDAT. 80 lines make about 5 kB, four segments, so
 * one can go missing in the middle. */
static void
pg_message(struct buf *b, const char *subject, int lines, int stuffed)
{
    char line[160];
    int i, n;

    n = snprintf(line, sizeof(line),
                 "From: Alice <alice@example.org>\r\n"
                 "To: Bob <bob@example.net>\r\n"
                 "Subject: %s\r\n",
                 subject);
    buf_append(b, line, (size_t)n);
    n = snprintf(line, sizeof(line),
                 "Date: Sat, 20 Nov 2021 01:02:03 +0000\r\n"
                 "Message-ID: <20211120010203.4711@client.example.org>\r\n");
    buf_append(b, line, (size_t)n);
    n = snprintf(line, sizeof(line),
                 "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    buf_append(b, line, (size_t)n);
    for (i = 1; i <= lines; i++) {
        n = snprintf(line, sizeof(line),
                     "Line %03d of the report: every figure below is in thousands.\r\n", i);
        buf_append(b, line, (size_t)n);
        if (i == lines / 2) {
            /* A line that starts with a dot must arrive doubled on the wire. */
            n = snprintf(line, sizeof(line), "%s.signature follows in the next part\r\n",
                         stuffed ? "." : "");
            buf_append(b, line, (size_t)n);
        }
    }
    if (stuffed)
        buf_append(b, ".\r\n", 3);
}

enum pg_std_end {
    PG_END_QUIT,         /* 250, QUIT, 221, FIN both ways */
    PG_END_RST_INJECTED, /* body ACKed, then an RST with a foreign TTL "from the server" */
    PG_END_RST_SERVER,   /* 250, then the server resets instead of waiting for QUIT */
    PG_END_SILENT,       /* body ACKed, then nothing until the capture ends */
};

struct pg_std {
    int midstream;    /* the capture starts after the handshake */
    int frag_ehlo;    /* the EHLO segment travels in IPv4 fragments */
    int overlap;      /* the RCPT segment is retransmitted with other bytes */
    int badck_rcpt;   /* the RCPT segment first arrives damaged (other bytes, wrong checksum) */
    int resend_body;  /* the body's last segment is sent this many more times before its ACK */
    int gap;          /* one body segment is missing from the capture */
    int64_t split_at; /* out: capture time between the EHLO reply and MAIL */
    size_t body_rec;  /* out: buffered records made before the message body */
    enum pg_std_end end;
};

static void
pg_std_session(struct pg_conn *c, struct pg_std *o)
{
    struct pg *g = c->g;
    struct buf body;

    if (o->midstream)
        c->emit = 0;
    pg_handshake(c);
    if (o->midstream) {
        c->emit = 1;
        pg_fact("midstream", "1");
    }
    pg_banner_from_server(c, pg_banner);
    if (o->frag_ehlo)
        c->frag_next = 1;
    pg_exchange(c, pg_ehlo, pg_ehlo_reply);
    o->split_at = g->now;
    g->now += 100;
    pg_exchange(c, "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
    if (o->overlap) {
        static const char orig[] = "RCPT TO:<bob@example.net>\r\n";
        static const char other[] = "RCPT TO:<eve@example.com>\r\n";
        struct pg_seg s;

        memset(&s, 0, sizeof(s));
        s.seq = c->ep[PG_C].nxt;
        pg_send_str(c, PG_C, orig);
        g->now += 900;
        /* The same sequence range again with different bytes, before the server's reply:
         * whatever the receiver kept first is what it answered. */
        s.flags = PG_ACK | PG_PSH;
        s.ack = c->ep[PG_S].nxt;
        s.window = c->window;
        s.data = (const uint8_t *)other;
        s.len = sizeof(other) - 1;
        pg_tcp_emit(c, PG_C, &s);
        g->now += c->rtt;
        pg_send_str(c, PG_S, "250 2.1.5 Ok\r\n");
        g->now += 250;
    } else if (o->badck_rcpt) {
        static const char damaged[] = "RCPT TO:<eve@example.com>\r\n";
        struct pg_seg s;

        /* The same range with other bytes and a wrong checksum: the server's stack drops it
         * and the client sends the segment again. */
        memset(&s, 0, sizeof(s));
        s.flags = PG_ACK | PG_PSH;
        s.seq = c->ep[PG_C].nxt;
        s.ack = c->ep[PG_S].nxt;
        s.window = c->window;
        s.data = (const uint8_t *)damaged;
        s.len = sizeof(damaged) - 1;
        c->corrupt_next[PG_C] = 1;
        pg_tcp_emit(c, PG_C, &s);
        g->now += 200000;
        pg_exchange(c, "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
    } else {
        pg_exchange(c, "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
    }
    pg_exchange(c, "DATA\r\n", pg_354);

    buf_init(&body, 1u << 20);
    pg_message(&body, "Quarterly report", 80, 1);
    if (o->gap) {
        c->gap_armed = 1;
        c->gap_dir = PG_C;
        c->gap_off = pg_stream_off(c, PG_C) + c->mss;
        pg_fact("gap_dir", "client");
        pg_fact("gap_offset", "%" PRIu32, c->gap_off);
    }
    pg_fact("message_bytes", "%zu", body.len);
    o->body_rec = g->w.nrecs;
    pg_send(c, PG_C, body.data, body.len);
    if (o->resend_body) {
        /* No ACK comes: the client sends its last segment again as its timer backs off
         * (RFC 6298 5.5), 200 ms, then 400, 800 ... */
        size_t last = body.len % c->mss ? body.len % c->mss : c->mss;
        struct pg_seg s;
        int64_t rto = 200000;

        memset(&s, 0, sizeof(s));
        s.flags = PG_ACK | PG_PSH;
        s.seq = c->ep[PG_C].nxt - (uint32_t)last;
        s.ack = c->ep[PG_S].nxt;
        s.window = c->window;
        s.data = body.data + body.len - last;
        s.len = last;
        for (int i = 0; i < o->resend_body; i++, rto *= 2) {
            g->now += rto;
            pg_tcp_emit(c, PG_C, &s);
        }
        pg_fact("resent_bytes", "%zu", last * (size_t)o->resend_body);
    }
    buf_free(&body);

    if (o->end == PG_END_RST_INJECTED || o->end == PG_END_SILENT) {
        /* The server acknowledged every byte of the message, but its answer never comes. */
        g->now += c->rtt;
        pg_ack(c, PG_S);
        if (o->end == PG_END_RST_INJECTED) {
            struct pg_seg s;

            g->now += 1500000;
            memset(&s, 0, sizeof(s));
            s.flags = PG_RST | PG_ACK;
            s.seq = c->ep[PG_S].nxt;
            s.ack = c->ep[PG_C].nxt;
            s.ttl = PG_TTL_INJECTED;
            pg_tcp_emit(c, PG_S, &s);
            pg_fact("rst_ttl", "%u", PG_TTL_INJECTED);
        }
        return;
    }
    g->now += c->rtt + 30000;
    pg_send_str(c, PG_S, "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLb\r\n");
    if (o->end == PG_END_RST_SERVER) {
        struct pg_seg s;

        g->now += 40;
        memset(&s, 0, sizeof(s));
        s.flags = PG_RST | PG_ACK;
        s.seq = c->ep[PG_S].nxt;
        s.ack = c->ep[PG_C].nxt;
        pg_tcp_emit(c, PG_S, &s);
        pg_fact("rst_ttl", "%u", PG_TTL_SERVER);
        return;
    }
    g->now += 250;
    pg_exchange(c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(c);
}

/* ---- scenarios -------------------------------------------------------------------------- */

static void
pg_begin(struct pg *g, enum pg_format fmt, enum pg_link link, uint32_t snaplen)
{
    g->link = link;
    g->w.fmt = fmt;
    g->w.linktype = pg_linktype[link];
    g->w.snaplen = snaplen;
    pg_wr_header(&g->w);
}

static void
pg_std_v4(struct pg *g, struct pg_std *o)
{
    struct pg_conn c;

    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_std_session(&c, o);
    pg_conn_facts(&c);
}

static void
pg_link_scenario(struct pg *g, enum pg_link link)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAP, link, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_eth(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_ETH);
}

static void
sc_vlan(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_VLAN);
}

static void
sc_qinq(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_QINQ);
}

static void
sc_sll(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_SLL);
}

static void
sc_sll2(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_SLL2);
}

static void
sc_null(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_NULL);
}

static void
sc_loop(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_LOOP);
}

static void
sc_raw(struct pg *g)
{
    pg_link_scenario(g, PG_LINK_RAW);
}

static void
sc_ipv6(struct pg *g)
{
    struct pg_conn c;
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 6, pg_v6_client, 51514, pg_v6_server, 25);
    c.hbh_every = 3;
    pg_std_session(&c, &o);
    pg_conn_facts(&c);
}

static void
sc_pcapng(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAPNG, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_gap(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.gap = 1;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_truncated(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, 96);
    pg_std_v4(g, &o);
}

static void
sc_cut(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    g->w.buffered = 1;
    pg_std_v4(g, &o);
    /* The file ends half-way through the data of the second (full-sized) body segment. */
    pg_wr_flush(&g->w, INT64_MIN, INT64_MAX, o.body_rec + 1);
}

static void
sc_syn_unanswered(struct pg *g)
{
    struct pg_conn c;
    struct pg_seg s;
    int i;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_tcp_send(&c, PG_C, PG_SYN, NULL, 0);
    /* Linux retransmits an unanswered SYN after 1 s, then 2 s later (RFC 6298 backoff). */
    memset(&s, 0, sizeof(s));
    s.flags = PG_SYN;
    s.seq = c.ep[PG_C].isn;
    s.window = c.window;
    for (i = 0; i < 2; i++) {
        g->now += (int64_t)1000000 << i;
        pg_tcp_emit(&c, PG_C, &s);
    }
    pg_fact("syn_count", "3");
    pg_conn_facts(&c);
}

static void
sc_refused(struct pg *g)
{
    struct pg_conn c;
    struct pg_seg s;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_tcp_send(&c, PG_C, PG_SYN, NULL, 0);
    g->now += c.rtt;
    /* RFC 9293 3.10.7.1: a SYN to a closed port gets <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>. */
    memset(&s, 0, sizeof(s));
    s.flags = PG_RST | PG_ACK;
    s.seq = 0;
    s.ack = c.ep[PG_C].nxt;
    pg_tcp_emit(&c, PG_S, &s);
    pg_conn_facts(&c);
}

static void
sc_rst_injected(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.end = PG_END_RST_INJECTED;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_rst_server(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.end = PG_END_RST_SERVER;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_died_after_data(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.end = PG_END_SILENT;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_midstream(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.midstream = 1;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_overlap(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.overlap = 1;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_badck_rcpt(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.badck_rcpt = 1;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_offload(struct pg *g)
{
    struct pg_std o;
    struct pg_conn c;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    c.bad_csum[PG_C] = 1;
    pg_std_session(&c, &o);
    pg_conn_facts(&c);
}

static void
sc_resend_body(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.resend_body = 3;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
sc_fragments(struct pg *g)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    o.frag_ehlo = 1;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_std_v4(g, &o);
}

static void
pg_frag_again(struct pg *g, int how)
{
    struct pg_std o;
    struct pg_conn c;

    memset(&o, 0, sizeof(o));
    o.frag_ehlo = 1;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    c.frag_again = how;
    pg_std_session(&c, &o);
    pg_conn_facts(&c);
}

static void
sc_frag_dup(struct pg *g)
{
    pg_frag_again(g, 1);
}

static void
sc_frag_conflict(struct pg *g)
{
    pg_frag_again(g, 2);
}

static void
sc_idle(struct pg *g)
{
    struct pg_conn a, b;
    struct pg_std o;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    /* The first session stops talking after EHLO; ten minutes later another begins. */
    pg_conn_init(&a, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(&a);
    pg_banner_from_server(&a, pg_banner);
    pg_exchange(&a, pg_ehlo, pg_ehlo_reply);
    pg_fact("idle_client_port", "51514");
    pg_fact("idle_seconds", "600");
    g->now += INT64_C(600) * 1000000;
    memset(&o, 0, sizeof(o));
    pg_conn_init(&b, g, 4, pg_v4_client, 51515, pg_v4_server, 25);
    pg_std_session(&b, &o);
    pg_fact("second_client_port", "51515");
}

/* Waits for the server: the EHLO reply 7 s late; then the end-of-data reply never comes,
 * and the capture goes on 4 s after the session's last packet (a SYN of another client
 * is the capture's last packet): smtp.waits, measured to the end of the capture. */
static void
sc_waits(struct pg *g)
{
    struct pg_conn a, b;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&a, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(&a);
    pg_banner_from_server(&a, pg_banner);
    int64_t ehlo_us = g->now;
    pg_send_str(&a, PG_C, pg_ehlo);
    g->now += INT64_C(7000000);
    pg_send_str(&a, PG_S, pg_ehlo_reply);
    pg_fact("ehlo_wait_us", "%" PRId64, g->now - ehlo_us);
    g->now += 250;
    pg_exchange(&a, "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&a, "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&a, "DATA\r\n", pg_354);
    pg_send_str(&a, PG_C, "Subject: waits\r\n\r\nhello\r\n.\r\n");
    int64_t eod_us = g->now;
    g->now += a.rtt;
    pg_ack(&a, PG_S);
    g->now += INT64_C(4000000);
    pg_conn_init(&b, g, 4, pg_v4_client, 51515, pg_v4_server, 25);
    pg_tcp_send(&b, PG_C, PG_SYN, NULL, 0);
    pg_fact("eod_wait_us", "%" PRId64, g->now - eod_us);
}

static void
sc_pipelining(struct pg *g)
{
    struct pg_conn c;
    struct buf m;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, pg_banner);
    pg_exchange(&c, pg_ehlo, pg_ehlo_reply);
    /* RFC 2920: the whole transaction up to DATA in one segment. */
    pg_send_str(&c, PG_C,
                "MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n"
                "RCPT TO:<carol@example.net>\r\nDATA\r\n");
    g->now += c.rtt + 400;
    /* The replies come in two segments split inside a line. */
    pg_send_str(&c, PG_S, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1");
    g->now += 80;
    pg_send_str(&c, PG_S, ".5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    g->now += 250;
    buf_init(&m, 1u << 20);
    pg_message(&m, "First of two", 20, 1);
    pg_send(&c, PG_C, m.data, m.len);
    buf_free(&m);
    g->now += c.rtt + 20000;
    pg_send_str(&c, PG_S, "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLc\r\n");
    g->now += 250;
    pg_send_str(&c, PG_C,
                "RSET\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n");
    g->now += c.rtt + 400;
    pg_send_str(&c, PG_S, "250 2.0.0 Ok\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n");
    pg_send_str(&c, PG_S, pg_354);
    g->now += 250;
    buf_init(&m, 1u << 20);
    pg_message(&m, "Second of two", 5, 1);
    pg_send(&c, PG_C, m.data, m.len);
    buf_free(&m);
    g->now += c.rtt + 20000;
    pg_send_str(&c, PG_S, "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLd\r\n");
    g->now += 250;
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

static void
sc_bdat(struct pg *g)
{
    struct pg_conn c;
    struct buf m, wire;
    char hdr[64];
    size_t first = 1000;
    int n;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, pg_banner);
    pg_exchange(&c, pg_ehlo, pg_ehlo_reply);

    /* RFC 3030: chunk data is not dot-stuffed and may hold anything, including a line
     * with a lone dot and text that looks like a command. */
    buf_init(&m, 1u << 20);
    pg_message(&m, "Sent in chunks", 10, 0);
    pg_buf_str(&m, "\r\n.\r\nBDAT 1 LAST\r\n.lonely dot above\r\n");
    pg_message(&m, "Attached", 8, 0);
    pg_fact("bdat_bytes", "%zu", m.len);
    pg_fact("bdat_chunks", "2");

    buf_init(&wire, 1u << 20);
    pg_buf_str(&wire, "MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n");
    n = snprintf(hdr, sizeof(hdr), "BDAT %zu\r\n", first);
    buf_append(&wire, hdr, (size_t)n);
    buf_append(&wire, m.data, first);
    n = snprintf(hdr, sizeof(hdr), "BDAT %zu LAST\r\n", m.len - first);
    buf_append(&wire, hdr, (size_t)n);
    buf_append(&wire, m.data + first, m.len - first);
    pg_send(&c, PG_C, wire.data, wire.len);
    buf_free(&wire);
    buf_free(&m);
    g->now += c.rtt + 20000;
    pg_send_str(&c, PG_S,
                "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 1000 octets received\r\n"
                "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLe\r\n");
    g->now += 250;
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

static void
sc_multi(struct pg *g)
{
    static const uint8_t cl[4][4] = {
        {192, 0, 2, 11}, {192, 0, 2, 12}, {192, 0, 2, 13}, {192, 0, 2, 14}};
    struct pg_conn c;
    struct pg_std o;
    struct buf m;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    g->w.buffered = 1;

    /* Port 25: the standard delivery. */
    g->now = PG_T0_US;
    memset(&o, 0, sizeof(o));
    pg_conn_init(&c, g, 4, cl[0], 40001, pg_v4_server, 25);
    pg_std_session(&c, &o);

    /* Port 587: submission with AUTH PLAIN (RFC 4954), user alice. */
    g->now = PG_T0_US + 7000;
    pg_conn_init(&c, g, 4, cl[1], 40002, pg_v4_server, 587);
    pg_handshake(&c);
    pg_banner_from_server(&c, pg_banner);
    pg_exchange(&c, "EHLO laptop.example.org\r\n", pg_ehlo_reply);
    pg_exchange(&c, "AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n",
                "235 2.7.0 Authentication successful\r\n");
    pg_exchange(&c, "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<someone@elsewhere.test>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&c, "DATA\r\n", pg_354);
    buf_init(&m, 1u << 20);
    pg_message(&m, "Submitted", 12, 1);
    pg_send(&c, PG_C, m.data, m.len);
    buf_free(&m);
    g->now += c.rtt + 9000;
    pg_send_str(&c, PG_S, "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLf\r\n");
    g->now += 250;
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);

    /* Port 2525: HELO, relaying refused. */
    g->now = PG_T0_US + 13000;
    pg_conn_init(&c, g, 4, cl[2], 40003, pg_v4_server, 2525);
    pg_handshake(&c);
    pg_banner_from_server(&c, pg_banner);
    pg_exchange(&c, "HELO relay.example.com\r\n", "250 mail.example.net\r\n");
    pg_exchange(&c, "MAIL FROM:<spam@example.com>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<victim@elsewhere.test>\r\n",
                "554 5.7.1 <victim@elsewhere.test>: Relay access denied\r\n");
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);

    /* Port 80: not mail, must not become a session by default. */
    g->now = PG_T0_US + 21000;
    pg_conn_init(&c, g, 4, cl[3], 40004, pg_v4_server, 80);
    pg_handshake(&c);
    pg_exchange(&c, "GET / HTTP/1.1\r\nHost: www.example.net\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
    pg_close_client_first(&c);

    pg_fact("sessions", "3");
    pg_fact("ports", "25 587 2525");
    pg_fact("ignored_port", "80");
    pg_wr_flush(&g->w, INT64_MIN, INT64_MAX, 0);
}

static void
pg_split(struct pg *g, int second)
{
    struct pg_std o;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    g->w.buffered = 1;
    pg_std_v4(g, &o);
    pg_fact("split_at_us", "%" PRId64, o.split_at);
    if (second)
        pg_wr_flush(&g->w, o.split_at, INT64_MAX, 0);
    else
        pg_wr_flush(&g->w, INT64_MIN, o.split_at, 0);
}

static void
sc_split_a(struct pg *g)
{
    pg_split(g, 0);
}

static void
sc_split_b(struct pg *g)
{
    pg_split(g, 1);
}

/* ---- hostile input ---------------------------------------------------------------------- */

/* Handshake, banner and EHLO for the hostile sessions. */
static void
pg_hostile_open(struct pg *g, struct pg_conn *c)
{
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(c);
    pg_banner_from_server(c, pg_banner);
    pg_exchange(c, pg_ehlo, pg_ehlo_reply);
}

static void
pg_hostile_close(struct pg_conn *c)
{
    pg_exchange(c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(c);
    pg_conn_facts(c);
}

/* Streams `total` bytes of a repeating pattern in chunk-sized pieces, never holding more
 * than one piece in memory. */
static void
pg_send_pattern(struct pg_conn *c, int dir, uint64_t total, const char *alphabet)
{
    static uint8_t chunk[PG_CHUNK];
    size_t alen = strlen(alphabet), i;

    for (i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)alphabet[i % alen];
    while (total > 0) {
        size_t n = total < sizeof(chunk) ? (size_t)total : sizeof(chunk);

        pg_send(c, dir, chunk, n);
        total -= n;
    }
}

static void
sc_hostile_longline(struct pg *g)
{
    struct pg_conn c;

    pg_hostile_open(g, &c);
    pg_send_str(&c, PG_C, "MAIL FROM:<");
    pg_send_pattern(&c, PG_C, g->size, "abcdefghijklmnopqrstuvwxyz0123456789");
    pg_fact("line_bytes", "%" PRIu64, g->size);
    g->now += c.rtt + 400;
    pg_send_str(&c, PG_S, "500 5.5.0 Error: line too long\r\n");
    g->now += 250;
    pg_send_str(&c, PG_C, "\r\n");
    g->now += c.rtt + 400;
    pg_send_str(&c, PG_S, "502 5.5.2 Error: command not recognized\r\n");
    g->now += 250;
    pg_hostile_close(&c);
}

/* Builds and sends a stream of generated lines without holding it all. */
struct pg_lines {
    struct pg_conn *c;
    int dir;
    struct buf b;
};

static void
pg_lines_add(struct pg_lines *l, const char *s, size_t n)
{
    if (l->b.len + n > PG_CHUNK) {
        pg_send(l->c, l->dir, l->b.data, l->b.len);
        buf_reset(&l->b);
    }
    buf_append(&l->b, s, n);
}

static void
pg_lines_str(struct pg_lines *l, const char *s)
{
    pg_lines_add(l, s, strlen(s));
}

static void
pg_lines_end(struct pg_lines *l)
{
    if (l->b.len)
        pg_send(l->c, l->dir, l->b.data, l->b.len);
    buf_free(&l->b);
}

static void
sc_hostile_pipeline(struct pg *g)
{
    static const char *const cmds[] = {"NOOP\r\n",
                                       "RSET\r\n",
                                       "VRFY postmaster\r\n",
                                       "HELP\r\n",
                                       "MAIL FROM:<x@y>\r\n",
                                       "RCPT TO:<p@q>\r\n",
                                       "EHLO again\r\n",
                                       "XFOO bar\r\n"};
    struct pg_conn c;
    struct pg_lines l;
    uint64_t i;

    pg_hostile_open(g, &c);
    l.c = &c;
    l.dir = PG_C;
    buf_init(&l.b, PG_CHUNK);
    /* Commands that are never answered: the server only acknowledges bytes. */
    for (i = 0; i < g->size; i++) {
        const char *s = cmds[i % (sizeof(cmds) / sizeof(cmds[0]))];

        pg_lines_str(&l, s);
    }
    pg_lines_end(&l);
    pg_fact("commands", "%" PRIu64, g->size);
    g->now += c.rtt;
    pg_ack(&c, PG_S);
    pg_close_client_first(&c);
    pg_conn_facts(&c);
}

static void
sc_hostile_rcpts(struct pg *g)
{
    struct pg_conn c;
    struct pg_lines cl, sl;
    struct buf m;
    uint64_t i;
    char line[96];
    int n;

    pg_hostile_open(g, &c);
    pg_exchange(&c, "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
    /* Pipelined in groups of 100, every one accepted. */
    for (i = 0; i < g->size; i += 100) {
        uint64_t j, end = i + 100 < g->size ? i + 100 : g->size;

        cl.c = sl.c = &c;
        cl.dir = PG_C;
        sl.dir = PG_S;
        buf_init(&cl.b, PG_CHUNK);
        buf_init(&sl.b, PG_CHUNK);
        for (j = i; j < end; j++) {
            n = snprintf(line, sizeof(line), "RCPT TO:<user%06" PRIu64 "@example.net>\r\n", j);
            pg_lines_add(&cl, line, (size_t)n);
            pg_lines_str(&sl, "250 2.1.5 Ok\r\n");
        }
        pg_lines_end(&cl);
        g->now += c.rtt + 400;
        pg_lines_end(&sl);
        g->now += 250;
    }
    pg_fact("rcpts", "%" PRIu64, g->size);
    pg_exchange(&c, "DATA\r\n", pg_354);
    buf_init(&m, 1u << 20);
    pg_message(&m, "For many", 3, 1);
    pg_send(&c, PG_C, m.data, m.len);
    buf_free(&m);
    g->now += c.rtt + 5000;
    pg_send_str(&c, PG_S, "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLg\r\n");
    g->now += 250;
    pg_hostile_close(&c);
}

static void
sc_hostile_multiline(struct pg *g)
{
    struct pg_conn c;
    struct pg_lines l;
    uint64_t i;
    char line[64];
    int n;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, pg_banner);
    pg_send_str(&c, PG_C, pg_ehlo);
    g->now += c.rtt + 400;
    l.c = &c;
    l.dir = PG_S;
    buf_init(&l.b, PG_CHUNK);
    pg_lines_str(&l, "250-mail.example.net\r\n");
    for (i = 0; i < g->size; i++) {
        n = snprintf(line, sizeof(line), "250-X-EXTENSION-%07" PRIu64 " some value\r\n", i);
        pg_lines_add(&l, line, (size_t)n);
    }
    pg_lines_str(&l, "250 CHUNKING\r\n");
    pg_lines_end(&l);
    pg_fact("reply_lines", "%" PRIu64, g->size + 2);
    g->now += 250;
    pg_hostile_close(&c);
}

static void
sc_hostile_authblob(struct pg *g)
{
    struct pg_conn c;

    pg_hostile_open(g, &c);
    /* One AUTH PLAIN line carrying megabytes of valid base64. */
    pg_send_str(&c, PG_C, "AUTH PLAIN ");
    pg_send_pattern(&c, PG_C, g->size, "QUFB");
    pg_send_str(&c, PG_C, "\r\n");
    g->now += c.rtt + 400;
    pg_send_str(&c, PG_S, "500 5.5.2 Error: line too long\r\n");
    g->now += 250;
    /* The same as an AUTH LOGIN continuation line (RFC 4954 4). */
    pg_exchange(&c, "AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n");
    pg_send_pattern(&c, PG_C, g->size, "YWFh");
    pg_send_str(&c, PG_C, "\r\n");
    g->now += c.rtt + 400;
    pg_send_str(&c, PG_S, "535 5.7.8 Error: authentication failed\r\n");
    g->now += 250;
    pg_fact("blob_bytes", "%" PRIu64, g->size);
    pg_hostile_close(&c);
}

static void
sc_hostile_badbase64(struct pg *g)
{
    /* Client line, server reply; a reply starting "334" expects a continuation line. */
    static const char *const steps[][2] = {
        {"AUTH PLAIN !!!!\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH PLAIN QUJD=ZGVm\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH PLAIN A\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH PLAIN ====\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH PLAIN AGFsaWNlAHNlY3JldA\r\n", "535 5.7.8 Error: authentication failed\r\n"},
        {"AUTH PLAIN AAAAAAAAAAAA\r\n", "535 5.7.8 Error: authentication failed\r\n"},
        {"AUTH PLAIN \x80\xff\xfe\x01\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH PLAIN =\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH PLAIN\r\n", "334 \r\n"},
        {"AG\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n"},
        {"%%%%\r\n", "501 5.5.2 Cannot decode response\r\n"},
        {"AUTH LOGIN\r\n", "334 !!not base64!!\r\n"},
        {"*\r\n", "501 5.7.0 Authentication aborted\r\n"},
        {"AUTH LOGIN YWxpY2U\r\n", "334 UGFzc3dvcmQ6\r\n"},
        {"c2VjcmV0===\r\n", "535 5.7.8 Error: authentication failed\r\n"},
        {"AUTH CRAM-MD5\r\n", "334 ###\r\n"},
        {"bm90IGEgdmFsaWQgcmVzcG9uc2U\r\n", "535 5.7.8 Error: authentication failed\r\n"},
        {"AUTH XOAUTH2 dXNlcj0BYXV0aD1CZWFyZXI=\r\n", "334 eyJzdGF0dXMiOiI0MDAi\r\n"},
        {"\r\n", "535 5.7.8 Error: authentication failed\r\n"},
        {"AUTH PLAIN AGFsaWNlAHMzY3JldA==AGFsaWNl\r\n", "501 5.5.2 Cannot decode response\r\n"},
    };
    struct pg_conn c;
    uint64_t i;
    size_t n = sizeof(steps) / sizeof(steps[0]);

    pg_hostile_open(g, &c);
    for (i = 0; i < g->size; i++)
        pg_exchange(&c, steps[i % n][0], steps[i % n][1]);
    pg_fact("auth_steps", "%" PRIu64, g->size);
    pg_hostile_close(&c);
}

static void
pg_flood_addr(uint8_t *a, uint64_t i)
{
    a[0] = 10;
    a[1] = (uint8_t)(i >> 16);
    a[2] = (uint8_t)(i >> 8);
    a[3] = (uint8_t)i;
}

static void
sc_hostile_synflood(struct pg *g)
{
    struct pg_conn c;
    struct pg_std o;
    uint8_t src[4];
    uint64_t i;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    /* Spoofed SYNs from distinct addresses, each answered by a SYN-ACK that no one
     * acknowledges: every one leaves a half-open connection behind. */
    for (i = 0; i < g->size; i++) {
        pg_flood_addr(src, i + 1);
        pg_conn_init(&c, g, 4, src, (uint16_t)(1024 + pg_rand_below(g, 64511)), pg_v4_server, 25);
        c.ep[PG_C].ttl = (uint8_t)(32 + pg_rand_below(g, 200));
        pg_tcp_send(&c, PG_C, PG_SYN, NULL, 0);
        g->now += 3;
        pg_tcp_send(&c, PG_S, PG_SYN | PG_ACK, NULL, 0);
        g->now += 7;
    }
    pg_fact("syns", "%" PRIu64, g->size);
    /* A real session at the end still has to come through. */
    memset(&o, 0, sizeof(o));
    g->now += 1000;
    pg_std_v4(g, &o);
}

static void
sc_hostile_idle_sessions(struct pg *g)
{
    struct pg_conn c;
    uint8_t src[4];
    uint64_t i;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    /* Established connections that got their banner and then never say anything. */
    for (i = 0; i < g->size; i++) {
        pg_flood_addr(src, i + 1);
        pg_conn_init(&c, g, 4, src, (uint16_t)(1024 + i % 60000), pg_v4_server, 25);
        c.rtt = 200;
        c.banner_delay = 100;
        pg_handshake(&c);
        pg_banner_from_server(&c, pg_banner);
        g->now += 50;
        pg_ack(&c, PG_C);
    }
    pg_fact("sessions", "%" PRIu64, g->size);
}

/* ---- hostile_headers: frames with impossible header values ------------------------------ */

static void
pg_raw_eth(struct pg *g, int64_t ts, uint32_t etype, const uint8_t *payload, size_t len,
           size_t caplen)
{
    uint8_t *f = g->frame;

    if (len > PG_FRAME_MAX - 14)
        len = PG_FRAME_MAX - 14;
    if (caplen > len + 14)
        caplen = len + 14;
    memcpy(f, pg_mac_gateway, 6);
    memcpy(f + 6, pg_mac_client, 6);
    pg_be16(f + 12, etype);
    memmove(f + 14, payload, len);
    pg_wr_frame(&g->w, ts, f, (uint32_t)caplen, (uint32_t)(len + 14));
}

/* An IPv4 header with chosen (possibly impossible) IHL and total length, checksum right
 * over whatever the IHL claims as far as it is present. */
static void
pg_bad_v4(uint8_t *p, size_t present, unsigned ihl, unsigned totlen, uint8_t proto)
{
    size_t hl = (size_t)ihl * 4;

    p[0] = (uint8_t)(0x40 | (ihl & 15));
    p[1] = 0;
    pg_be16(p + 2, totlen);
    pg_be16(p + 4, 0x1234);
    pg_be16(p + 6, 0);
    p[8] = 64;
    p[9] = proto;
    pg_be16(p + 10, 0);
    memcpy(p + 12, pg_v4_client, 4);
    memcpy(p + 16, pg_v4_server, 4);
    if (hl > present)
        hl = present;
    pg_be16(p + 10, pg_csum_fold(pg_csum_add(0, p, hl)));
}

static void
pg_bad_tcp(uint8_t *t, unsigned doff, uint8_t flags)
{
    pg_be16(t, 51999);
    pg_be16(t + 2, 25);
    pg_be32(t + 4, 0x01020304u);
    pg_be32(t + 8, 0);
    t[12] = (uint8_t)((doff & 15) << 4);
    t[13] = flags;
    pg_be16(t + 14, 512);
    pg_be16(t + 16, 0);
    pg_be16(t + 18, 0);
}

static void
pg_hostile_malformed(struct pg *g, int64_t ts)
{
    /* TCP option lists that lie about their lengths (RFC 9293 3.2). */
    static const uint8_t bad_opts[][20] = {
        {2, 0, 5, 0xb4, 1, 1, 1, 0}, /* MSS with length 0: a naive loop never ends */
        {3, 1, 7, 1, 1, 1, 1, 0},    /* window scale with length 1 */
        {8, 40, 0, 0, 0, 0, 0, 0},   /* timestamps running past the header */
        {5, 2, 1, 1, 1, 1, 1, 1},    /* SACK with no blocks */
        {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
        {1, 1, 1, 1, 1, 1, 1, 2}, /* ends in a kind with no length byte */
        {5, 250, 0, 0, 0, 0, 0, 0},
        {2, 4, 0, 0, 4, 2, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 3, 3},
    };
    uint8_t p[4096];
    size_t k;

    memset(p, 0, sizeof(p));
    /* Ethernet says IPv4, nothing follows; then 1, 13 and 14 byte frames. */
    pg_raw_eth(g, ts, PG_ETH_IPV4, p, 0, 14);
    for (k = 0; k < 3; k++) {
        static const size_t tiny[3] = {1, 13, 14};

        memset(g->frame, 0xab, tiny[k]);
        pg_wr_frame(&g->w, ts + 1, g->frame, (uint32_t)tiny[k], (uint32_t)tiny[k]);
    }
    /* IHL below 5; IHL 15 in a 20-byte packet; total length below the header; total length
     * far above what was on the wire; version 6 inside an IPv4 frame. */
    pg_bad_v4(p, 40, 4, 40, 6);
    pg_raw_eth(g, ts + 2, PG_ETH_IPV4, p, 40, 54);
    pg_bad_v4(p, 20, 15, 20, 6);
    pg_raw_eth(g, ts + 3, PG_ETH_IPV4, p, 20, 34);
    pg_bad_v4(p, 40, 5, 12, 6);
    pg_raw_eth(g, ts + 4, PG_ETH_IPV4, p, 40, 54);
    pg_bad_v4(p, 60, 5, 65535, 6);
    pg_bad_tcp(p + 20, 5, PG_ACK);
    pg_raw_eth(g, ts + 5, PG_ETH_IPV4, p, 60, 74);
    pg_bad_v4(p, 40, 5, 40, 6);
    p[0] = 0x65;
    pg_raw_eth(g, ts + 6, PG_ETH_IPV4, p, 40, 54);
    /* IPv4 options with length 0 and length 255. */
    pg_bad_v4(p, 44, 6, 44, 6);
    p[20] = 7;
    p[21] = 0;
    pg_raw_eth(g, ts + 7, PG_ETH_IPV4, p, 44, 58);
    pg_bad_v4(p, 44, 6, 44, 6);
    p[20] = 0x44;
    p[21] = 255;
    pg_raw_eth(g, ts + 8, PG_ETH_IPV4, p, 44, 58);
    /* TCP data offsets 0, 4 and 15 (header claims 60 bytes of 20). */
    for (k = 0; k < 3; k++) {
        static const unsigned doff[3] = {0, 4, 15};

        memset(p, 0, 64);
        pg_bad_v4(p, 40, 5, 40, 6);
        pg_bad_tcp(p + 20, doff[k], PG_ACK | PG_PSH);
        pg_raw_eth(g, ts + 9 + (int64_t)k, PG_ETH_IPV4, p, 40, 54);
    }
    /* Option lists with lying lengths, in a header of 28 or 40 bytes. */
    for (k = 0; k < sizeof(bad_opts) / sizeof(bad_opts[0]); k++) {
        unsigned doff = k == 7 ? 10 : 7;

        memset(p, 0, 80);
        pg_bad_v4(p, 20 + doff * 4 + 6, 5, 20 + doff * 4 + 6, 6);
        pg_bad_tcp(p + 20, doff, k & 1 ? PG_SYN : PG_ACK | PG_PSH);
        memcpy(p + 40, bad_opts[k], k == 7 ? 20 : 8);
        memcpy(p + 20 + doff * 4, "NOOP\r\n", 6);
        pg_raw_eth(g, ts + 12 + (int64_t)k, PG_ETH_IPV4, p, 20 + doff * 4 + 6,
                   14 + 20 + doff * 4 + 6);
    }
    /* Every flag at once, with data; SYN with data; SYN+RST. */
    for (k = 0; k < 3; k++) {
        static const uint8_t fl[3] = {0x3f, PG_SYN, PG_SYN | PG_RST};

        memset(p, 0, 64);
        pg_bad_v4(p, 50, 5, 50, 6);
        pg_bad_tcp(p + 20, 5, fl[k]);
        memcpy(p + 40, "EHLO x\r\n\r\n", 10);
        pg_raw_eth(g, ts + 30 + (int64_t)k, PG_ETH_IPV4, p, 50, 64);
    }
    /* Fragments: one reaching past 65535, one with MF and an odd length, overlapping pieces
     * with different bytes, a first fragment of 8 bytes that splits the TCP header. */
    memset(p, 0x41, 200);
    pg_ipv4_header(p, pg_v4_client, pg_v4_server, 6, 64, 0x7777, 0x1fff, 100);
    pg_raw_eth(g, ts + 40, PG_ETH_IPV4, p, 120, 134);
    pg_ipv4_header(p, pg_v4_client, pg_v4_server, 6, 64, 0x7778, 0x2000, 13);
    pg_raw_eth(g, ts + 41, PG_ETH_IPV4, p, 33, 47);
    for (k = 0; k < 3; k++) {
        memset(p + 20, (int)('a' + k), 48);
        pg_ipv4_header(p, pg_v4_client, pg_v4_server, 6, 64, 0x7779,
                       (uint16_t)((k == 2 ? 0 : 0x2000) | (k * 2)), 48);
        if (k == 0)
            pg_bad_tcp(p + 20, 5, PG_ACK | PG_PSH);
        pg_raw_eth(g, ts + 42 + (int64_t)k, PG_ETH_IPV4, p, 68, 82);
    }
    pg_bad_tcp(p + 20, 5, PG_ACK);
    pg_ipv4_header(p, pg_v4_client, pg_v4_server, 6, 64, 0x777a, 0x2000, 8);
    pg_raw_eth(g, ts + 45, PG_ETH_IPV4, p, 28, 42);
    /* IPv6: payload length beyond the packet; a chain of 60 destination-options headers;
     * an extension header claiming 2 kB; a fragment header; "no next header" with data. */
    memset(p, 0, sizeof(p));
    pg_ipv6_header(p, pg_v6_client, pg_v6_server, 6, 64, 0, 65535);
    pg_bad_tcp(p + 40, 5, PG_ACK);
    pg_raw_eth(g, ts + 50, PG_ETH_IPV6, p, 60, 74);
    memset(p, 0, sizeof(p));
    pg_ipv6_header(p, pg_v6_client, pg_v6_server, 60, 64, 0, 60 * 8 + 20);
    for (k = 0; k < 60; k++) {
        p[40 + k * 8] = k == 59 ? 6 : 60;
        p[41 + k * 8] = 0;
        p[42 + k * 8] = 1;
        p[43 + k * 8] = 4;
    }
    pg_bad_tcp(p + 40 + 60 * 8, 5, PG_ACK);
    pg_raw_eth(g, ts + 51, PG_ETH_IPV6, p, 40 + 60 * 8 + 20, 14 + 40 + 60 * 8 + 20);
    memset(p, 0, sizeof(p));
    pg_ipv6_header(p, pg_v6_client, pg_v6_server, 0, 64, 0, 60);
    p[40] = 6;
    p[41] = 255;
    pg_raw_eth(g, ts + 52, PG_ETH_IPV6, p, 100, 114);
    memset(p, 0, sizeof(p));
    pg_ipv6_header(p, pg_v6_client, pg_v6_server, 44, 64, 0, 28);
    p[40] = 6;
    p[42] = 0xff;
    p[43] = 0xf9;
    pg_be32(p + 44, 0xdeadbeefu);
    pg_bad_tcp(p + 48, 5, PG_ACK);
    pg_raw_eth(g, ts + 53, PG_ETH_IPV6, p, 68, 82);
    memset(p, 0, sizeof(p));
    pg_ipv6_header(p, pg_v6_client, pg_v6_server, 59, 64, 0, 20);
    pg_raw_eth(g, ts + 54, PG_ETH_IPV6, p, 60, 74);
    /* Thirty stacked 802.1Q tags; a QinQ tag with nothing after it. */
    memset(p, 0, sizeof(p));
    for (k = 0; k < 30; k++) {
        pg_be16(p + k * 4, 100 + (uint32_t)k);
        pg_be16(p + k * 4 + 2, k == 29 ? PG_ETH_IPV4 : PG_ETH_VLAN);
    }
    pg_bad_v4(p + 120, 40, 5, 40, 6);
    pg_bad_tcp(p + 140, 5, PG_ACK);
    pg_raw_eth(g, ts + 60, PG_ETH_VLAN, p, 160, 174);
    pg_raw_eth(g, ts + 61, PG_ETH_QINQ, p, 2, 16);
    /* Captured length ending inside the IP header of a longer frame. */
    pg_bad_v4(p, 60, 5, 60, 6);
    pg_bad_tcp(p + 20, 5, PG_ACK);
    pg_raw_eth(g, ts + 62, PG_ETH_IPV4, p, 60, 24);
}

static void
sc_hostile_headers(struct pg *g)
{
    struct pg_std o;
    struct pg_conn c;
    uint8_t p[1600], src[4];
    int64_t start, span;
    uint64_t i;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    g->w.buffered = 1;
    start = g->now;
    memset(&o, 0, sizeof(o));
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_std_session(&c, &o);
    span = g->now - start;
    pg_hostile_malformed(g, start + span / 3);

    /* Garbage frames at random times inside the session: random bytes; random bytes after
     * an IPv4 ethertype; random TCP after a valid IPv4 header to port 25; and segments on
     * the valid session's own ports with sequence numbers from nowhere. */
    for (i = 0; i < g->size; i++) {
        size_t len = pg_rand_below(g, sizeof(p)), k;
        int64_t ts = start + (int64_t)pg_rand_below(g, (uint32_t)span);
        uint32_t kind = pg_rand_below(g, 4);

        for (k = 0; k < len; k++)
            p[k] = (uint8_t)pg_rand(g);
        if (kind == 0) {
            memcpy(g->frame, p, len);
            pg_wr_frame(&g->w, ts, g->frame, (uint32_t)len, (uint32_t)len);
            continue;
        }
        if (len < 60)
            len = 60;
        if (kind == 1) {
            p[0] = (uint8_t)(0x40 | (p[0] & 15));
            pg_raw_eth(g, ts, PG_ETH_IPV4, p, len, len + 14);
            continue;
        }
        memcpy(src, kind == 3 ? pg_v4_client : p + 12, 4);
        pg_ipv4_header(p, src, pg_v4_server, 6, (uint8_t)(p[8] | 1), (uint16_t)i, 0, len - 20);
        pg_be16(p + 22, 25);
        if (kind == 3) {
            pg_be16(p + 20, 51514);
            p[32] = (uint8_t)((5 + (p[32] & 7) % 11) << 4);
        }
        pg_raw_eth(g, ts, PG_ETH_IPV4, p, len, len + 14);
    }
    pg_fact("garbage_frames", "%" PRIu64, g->size);
    pg_conn_facts(&c);
    pg_wr_flush(&g->w, INT64_MIN, INT64_MAX, 0);
}

static void
sc_hostile_garbage_after_header(struct pg *g)
{
    uint8_t b[4096];
    uint64_t left = g->size;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    while (left > 0) {
        size_t n = left < sizeof(b) ? (size_t)left : sizeof(b), i;

        for (i = 0; i < n; i++)
            b[i] = (uint8_t)pg_rand(g);
        pg_wr_bytes(&g->w, b, n);
        left -= n;
    }
    pg_fact("garbage_bytes", "%" PRIu64, g->size);
}

static void
sc_hostile_bigcaplen(struct pg *g)
{
    struct pg_std o;
    uint8_t b[64];

    /* The file header promises 128-byte records, the records are whole frames (up to 1514
     * bytes), and the last one claims `size` bytes where 64 follow. */
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, 128);
    g->w.keep_oversize = 1;
    memset(&o, 0, sizeof(o));
    pg_std_v4(g, &o);
    memset(b, 0x5a, sizeof(b));
    g->now += 1000;
    pg_wr_record(&g->w, g->now, b, (uint32_t)g->size, (uint32_t)g->size,
                 g->size < sizeof(b) ? (uint32_t)g->size : (uint32_t)sizeof(b));
    pg_fact("claimed_caplen", "%" PRIu64, g->size);
}

/* ---- rules: dialogues that test what the anomaly rules conclude ---------------------------- */

/* One step of a scripted dialogue: a client line and the server's reply to it, or (cmd
 * NULL) a reply the server sends on its own after `wait_us` of silence. */
struct pg_step {
    const char *cmd;
    const char *reply;
    int64_t wait_us;
};

static const uint8_t pg_v4_loopback[4] = {127, 0, 0, 1};

/* Handshake, greeting, EHLO, the steps, then the server closes (after QUIT or on its own). */
static void
pg_script(struct pg *g, const uint8_t *caddr, const uint8_t *saddr, const char *banner,
          const char *ehlo_reply, const struct pg_step *steps, size_t n)
{
    struct pg_conn c;
    size_t i;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, caddr, 51514, saddr, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, banner);
    pg_exchange(&c, pg_ehlo, ehlo_reply);
    for (i = 0; i < n; i++) {
        g->now += steps[i].wait_us;
        if (steps[i].cmd) {
            pg_exchange(&c, steps[i].cmd, steps[i].reply);
        } else {
            pg_send_str(&c, PG_S, steps[i].reply);
            g->now += 250;
        }
    }
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

#define PG_STEPS(a) (a), sizeof(a) / sizeof((a)[0])

static const char pg_rules_msg[] =
    "From: <alice@example.org>\r\nSubject: hello\r\n\r\nHi.\r\n.\r\n";

/* Inbound mail for gmail.com at an MX named mx.google.com: ordinary, whatever the names. */
static void
sc_relay_mx(struct pg *g)
{
    static const struct pg_step s[] = {
        {"MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 OK\r\n", 0},
        {"RCPT TO:<bob@gmail.com>\r\n", "250 2.1.5 OK\r\n", 0},
        {"DATA\r\n", "354 Go ahead\r\n", 0},
        {pg_rules_msg, "250 2.0.0 OK 1700000000 a1si123456 - gsmtp\r\n", 0},
        {"QUIT\r\n", "221 2.0.0 closing connection\r\n", 0},
    };
    pg_script(g, pg_v4_client, pg_v4_server, "220 mx.google.com ESMTP a1si123456 - gsmtp\r\n",
              "250-mx.google.com at your service\r\n250 8BITMIME\r\n", PG_STEPS(s));
}

/* A stranger (public address, no AUTH) whose recipients in three unrelated registrable
 * domains are all accepted: the spam-relay pattern. sub.example.org and example.org are
 * one registrable domain, example.co.uk another (co.uk is a public suffix). */
static const struct pg_step pg_relay_steps[] = {
    {"MAIL FROM:<offers@spam.example>\r\n", "250 2.1.0 Ok\r\n", 0},
    {"RCPT TO:<victim@example.org>\r\n", "250 2.1.5 Ok\r\n", 0},
    {"RCPT TO:<other@sub.example.org>\r\n", "250 2.1.5 Ok\r\n", 0},
    {"RCPT TO:<third@example.com>\r\n", "250 2.1.5 Ok\r\n", 0},
    {"RCPT TO:<fourth@example.co.uk>\r\n", "250 2.1.5 Ok\r\n", 0},
    {"RCPT TO:<postmaster@mail.example.net>\r\n", "250 2.1.5 Ok\r\n", 0},
    {"DATA\r\n", pg_354, 0},
    {pg_rules_msg, "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLr\r\n", 0},
    {"QUIT\r\n", "221 2.0.0 Bye\r\n", 0},
};

static void
sc_relay_open(struct pg *g)
{
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(pg_relay_steps));
}

/* The same from the host itself (127.0.0.1): local submission, relayed by every MTA. */
static void
sc_relay_loopback(struct pg *g)
{
    pg_script(g, pg_v4_loopback, pg_v4_loopback, pg_banner, pg_ehlo_reply,
              PG_STEPS(pg_relay_steps));
}

/* AUTH refused before any credential (538 encryption required, 504, a cancel with "*"),
 * then AUTH PLAIN with an initial response, refused too: only that one sent a password. */
static void
sc_auth_refused(struct pg *g)
{
    static const struct pg_step s[] = {
        {"AUTH PLAIN\r\n",
         "538 5.7.11 Encryption required for requested authentication mechanism\r\n", 0},
        {"AUTH DIGEST-MD5\r\n", "504 5.5.4 Unrecognized authentication type\r\n", 0},
        {"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n", 0},
        {"*\r\n", "501 5.7.0 Authentication aborted\r\n", 0},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n", 0},
    };
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(s));
}

static void
sc_auth_refused_sent(struct pg *g)
{
    static const struct pg_step s[] = {
        {"AUTH PLAIN\r\n",
         "538 5.7.11 Encryption required for requested authentication mechanism\r\n", 0},
        /* "\0alice\0s3cret" */
        {"AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n",
         "538 5.7.11 Encryption required for requested authentication mechanism\r\n", 0},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n", 0},
    };
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(s));
}

/* A message delivered (Sendmail's reply form), then the client idles and the server gives
 * up on it: "451 4.4.2 Timeout" (or Postfix's 421) with no command in flight, and its FIN. */
static void
pg_idle_close(struct pg *g, const char *reply)
{
    const struct pg_step s[] = {
        {"MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Sender ok\r\n", 0},
        {"RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Recipient ok\r\n", 0},
        {"DATA\r\n", pg_354, 0},
        {pg_rules_msg, "250 2.0.0 4B1AbC12345 Message accepted for delivery\r\n", 0},
        {NULL, reply, 300 * INT64_C(1000000)},
    };
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(s));
}

static void
sc_idle_451(struct pg *g)
{
    pg_idle_close(g, "451 4.4.2 Timeout waiting for data from client.\r\n");
}

static void
sc_idle_421(struct pg *g)
{
    pg_idle_close(g, "421 4.4.2 mail.example.net Error: timeout exceeded\r\n");
}

/* Temporary limits (4xx: the sender retries) beside a permanent one (5xx: it bounces). */
static void
sc_limits_temp(struct pg *g)
{
    static const struct pg_step s[] = {
        {"MAIL FROM:<alice@example.org> SIZE=900000\r\n",
         "452 4.3.4 Message size exceeds fixed limit, try again later\r\n", 0},
        {"MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n", 0},
        {"RCPT TO:<full@example.net>\r\n",
         "452 4.2.2 <full@example.net>: Recipient address rejected: Mailbox full\r\n", 0},
        {"RSET\r\n", "250 2.0.0 Ok\r\n", 0},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n", 0},
    };
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(s));
}

/* A body with a hidden second transaction behind <LF>.<LF>. A server that splits answers it
 * too (Postfix before smtpd_forbid_bare_newline: five replies to the one write); one that
 * does not gives a single final reply (here in Exim's form). */
static const char pg_smuggled[] = "From: <news@example.org>\r\nSubject: smuggled\r\n\r\nHi.\n"
                                  ".\nMAIL FROM:<ceo@bank.example>\nRCPT TO:<x@example.net>\n"
                                  "DATA\nFrom: <ceo@bank.example>\n\nPay.\r\n.\r\n";

static void
sc_smuggling_split(struct pg *g)
{
    static const struct pg_step s[] = {
        {"MAIL FROM:<news@example.org>\r\n", "250 2.1.0 Ok\r\n", 0},
        {"RCPT TO:<user@example.net>\r\n", "250 2.1.5 Ok\r\n", 0},
        {"DATA\r\n", pg_354, 0},
        {pg_smuggled,
         "250 2.0.0 Ok: queued as 7E3D3A73FE3\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
         "354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 7F1DEA73FE3\r\n",
         0},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n", 0},
    };
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(s));
}

static void
sc_smuggling_nosplit(struct pg *g)
{
    static const struct pg_step s[] = {
        {"MAIL FROM:<news@example.org>\r\n", "250 OK\r\n", 0},
        {"RCPT TO:<user@example.net>\r\n", "250 Accepted\r\n", 0},
        {"DATA\r\n", "354 Enter message, ending with \".\" on a line by itself\r\n", 0},
        {pg_smuggled, "250 OK id=1tBd2x-0003kQ-2v\r\n", 0},
        {"QUIT\r\n", "221 mail.example.net closing connection\r\n", 0},
    };
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(s));
}

/* A handshake and no greeting: the capture stops 2 s later, or the client gives up after
 * 8 s and closes. */
static void
pg_no_banner(struct pg *g, int client_closes)
{
    struct pg_conn c;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(&c);
    g->now += (client_closes ? 8 : 2) * INT64_C(1000000);
    if (client_closes)
        pg_close_client_first(&c);
    else
        pg_ack(&c, PG_C);
    pg_conn_facts(&c);
}

static void
sc_no_banner_cut(struct pg *g)
{
    pg_no_banner(g, 0);
}

static void
sc_no_banner_closed(struct pg *g)
{
    pg_no_banner(g, 1);
}

/* ---- hostile output: terminal escapes in wire text ------------------------------------- */

/* Bytes a terminal acts on: ESC ] 0 ; title BEL (window title), CR and BS (overwrite the
 * line), ESC [ 2 K (erase it), a C1 CSI as a lone byte (0x9B) and in UTF-8 (C2 9B), a
 * right-to-left override (U+202E), and the literal text \x1b, which must stay told apart from
 * an escaped ESC. */
#define PG_TERM_NASTY                                                                              \
    "\x1b]0;pwned\x07\r\b\x1b[2K\x9b"                                                              \
    "31m\xc2\x9b"                                                                                  \
    "1m\xe2\x80\xae\\x1b"

static void
sc_term_escapes(struct pg *g)
{
    struct pg_conn c;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, "220 mx.example.net" PG_TERM_NASTY " ESMTP\r\n");
    pg_exchange(&c, "EHLO client" PG_TERM_NASTY ".example.org\r\n",
                "250-mx.example.net" PG_TERM_NASTY "\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n");
    /* AUTH PLAIN: authzid "", user "us ESC [2K er", password "pw" */
    pg_exchange(&c, "AUTH PLAIN AHVzG1syS2VyAHB3\r\n", "235 2.7.0 ok" PG_TERM_NASTY "\r\n");
    pg_exchange(&c, "MAIL FROM:<alice" PG_TERM_NASTY "@example.org>\r\n",
                "250 2.1.0 Ok" PG_TERM_NASTY "\r\n");
    pg_exchange(&c, "RCPT TO:<bob" PG_TERM_NASTY "@example.net>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&c, "X" PG_TERM_NASTY "\r\n", "500 5.5.2 what" PG_TERM_NASTY "\r\n");
    pg_exchange(&c, "DATA\r\n", pg_354);
    pg_send_str(&c, PG_C, "Subject: hi" PG_TERM_NASTY "\r\n\r\nbody" PG_TERM_NASTY "\r\n.\r\n");
    g->now += c.rtt + 3000;
    pg_send_str(&c, PG_S, "250 2.0.0 queued" PG_TERM_NASTY "\r\n");
    g->now += 250;
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

/* ---- load: one long session among many short ones (--workers merge) ------------------ */

/* A message of SIZE bytes sent in small segments over the whole capture, and between two of
 * its 2 KiB pieces a whole standard session on another port: the worker that owns the long session
 * has far more to do than the others, which run ahead of it. */
static void
sc_workers_skew(struct pg *g)
{
    struct pg_conn lc, c;
    struct pg_std o;
    char piece[2048];
    uint64_t sent = 0, shorts = 0;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    for (size_t i = 0; i < sizeof(piece); i += 64) {
        memset(piece + i, 'a' + (int)(i / 64 % 26), 62);
        piece[i + 62] = '\r';
        piece[i + 63] = '\n';
    }
    pg_conn_init(&lc, g, 4, pg_v4_client, 40000, pg_v4_server, 25);
    /* Small segments: each one is work for the worker that owns the session alone. */
    lc.mss = 96;
    pg_handshake(&lc);
    pg_banner_from_server(&lc, pg_banner);
    pg_exchange(&lc, pg_ehlo, pg_ehlo_reply);
    pg_exchange(&lc, "MAIL FROM:<bulk@example.org>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&lc, "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&lc, "DATA\r\n", pg_354);
    pg_send_str(&lc, PG_C, "Subject: bulk\r\n\r\n");
    while (sent < g->size) {
        pg_send(&lc, PG_C, piece, sizeof(piece));
        sent += sizeof(piece);
        memset(&o, 0, sizeof(o));
        pg_conn_init(&c, g, 4, pg_v4_client, (uint16_t)(1024 + shorts % 30000), pg_v4_server, 25);
        pg_std_session(&c, &o);
        shorts++;
    }
    pg_send_str(&lc, PG_C, ".\r\n");
    g->now += lc.rtt + 3000;
    pg_send_str(&lc, PG_S, "250 2.0.0 Ok: queued\r\n");
    g->now += 250;
    pg_exchange(&lc, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&lc);
    pg_fact("long_session_bytes", "%" PRIu64, sent);
    pg_fact("short_sessions", "%" PRIu64, shorts);
}

/* ---- .eml output ------------------------------------------------------------------------ */

#define PG_EML_LINE 78u                   /* 76 letters and CRLF */
#define PG_EML_ROUND (PG_EML_LINE * 840u) /* bytes a session sends before the next one's turn */

/* n sessions on ports 40000.. that each send one message of about `size` bytes (a header,
 * then whole lines; never a line opening with '.', so the message is the bytes sent), all
 * at once: their bodies interleave a round at a time. cut: the clients go away in the middle
 * of the body (half of it sent, no end of data). */
static void
pg_eml_sessions(struct pg *g, unsigned n, uint64_t size, int cut)
{
    static uint8_t round[PG_EML_ROUND];
    struct pg_conn *c = mem_calloc(n, sizeof(*c));
    uint64_t lines = size / PG_EML_LINE + 1, left, total;
    char hdr[96];
    unsigned i;
    int hl = 0;

    if (!c) {
        g->w.io_error = ENOMEM;
        return;
    }
    for (i = 0; i < sizeof(round); i++)
        round[i] = i % PG_EML_LINE == PG_EML_LINE - 2   ? '\r'
                   : i % PG_EML_LINE == PG_EML_LINE - 1 ? '\n'
                                                        : (uint8_t)('a' + i % 26);
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    for (i = 0; i < n; i++) {
        pg_conn_init(&c[i], g, 4, pg_v4_client, (uint16_t)(40000 + i), pg_v4_server, 25);
        pg_handshake(&c[i]);
        pg_banner_from_server(&c[i], pg_banner);
        pg_exchange(&c[i], pg_ehlo, pg_ehlo_reply);
        pg_exchange(&c[i], "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
        pg_exchange(&c[i], "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
        pg_exchange(&c[i], "DATA\r\n", pg_354);
        hl = snprintf(hdr, sizeof(hdr), "Subject: message %u of %u\r\n\r\n", i + 1, n);
        pg_send(&c[i], PG_C, hdr, (size_t)hl);
    }
    total = lines * PG_EML_LINE;
    left = cut ? total / 2 : total;
    while (left > 0) {
        size_t k = left < sizeof(round) ? (size_t)left : sizeof(round);

        for (i = 0; i < n; i++)
            pg_send(&c[i], PG_C, round, k);
        left -= k;
    }
    for (i = 0; i < n; i++) {
        if (cut) {
            pg_close_client_first(&c[i]);
            continue;
        }
        pg_exchange(&c[i], ".\r\n", "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLf\r\n");
        pg_exchange(&c[i], "QUIT\r\n", "221 2.0.0 Bye\r\n");
        pg_close_server_first(&c[i]);
    }
    pg_fact("sessions", "%u", n);
    pg_fact("message_bytes", "%" PRIu64, (uint64_t)hl + (cut ? total / 2 : total));
    mem_free(c);
}

static void
sc_eml_concurrent(struct pg *g)
{
    pg_eml_sessions(g, 20, g->size, 0);
}

static void
sc_eml_big(struct pg *g)
{
    pg_eml_sessions(g, 1, g->size, 0);
}

static void
sc_eml_cut(struct pg *g)
{
    pg_eml_sessions(g, 1, 100000, 1);
}

/* ---- capture artefacts: mid-stream pickup, one-sided captures, window and reordering ---- */

/* The standard session, one direction never captured (a tap on one path of asymmetric
 * routing); with `midstream` the handshake is not captured either. */
static void
pg_oneside(struct pg *g, int hidden, int midstream)
{
    struct pg_std o;
    struct pg_conn c;

    memset(&o, 0, sizeof(o));
    o.midstream = midstream;
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    c.hide_dir = hidden + 1;
    pg_fact("hidden", "%s", hidden == PG_C ? "client" : "server");
    pg_std_session(&c, &o);
    pg_conn_facts(&c);
}

static void
sc_oneside_client(struct pg *g)
{
    pg_oneside(g, PG_S, 0);
}

static void
sc_oneside_server(struct pg *g)
{
    pg_oneside(g, PG_C, 0);
}

static void
sc_oneside_client_mid(struct pg *g)
{
    pg_oneside(g, PG_S, 1);
}

/* How the message body of pg_artefact_session reaches the capture. */
enum pg_body_way {
    PG_BODY_MIDDATA,   /* the capture begins in the middle of the body, inside a line */
    PG_BODY_OVERRUN,   /* the server advertises a window smaller than a segment */
    PG_BODY_ACK_FIRST, /* one body segment is captured after the ACK that covers it */
};

static void
pg_artefact_body(struct pg_conn *c, const struct buf *body, enum pg_body_way way)
{
    size_t half = body->len / 2 + 7; /* not at a line boundary */

    if (way == PG_BODY_MIDDATA) {
        pg_send(c, PG_C, body->data, half);
        c->emit = 1;
        pg_fact("midstream", "1");
        pg_fact("seen_body_bytes", "%zu", body->len - half);
        pg_send(c, PG_C, body->data + half, body->len - half);
        return;
    }
    if (way == PG_BODY_OVERRUN) {
        /* Every segment of the body is larger than the window the server advertises. */
        c->window = 1000;
        pg_ack(c, PG_S);
        pg_send(c, PG_C, body->data, body->len);
        c->window = 64240;
        return;
    }
    size_t first = c->mss;
    size_t n = c->mss < body->len - first ? c->mss : body->len - first;
    struct pg_seg a, d;

    pg_send(c, PG_C, body->data, first);
    memset(&a, 0, sizeof(a));
    a.flags = PG_ACK;
    a.seq = c->ep[PG_S].nxt;
    a.ack = c->ep[PG_C].nxt + (uint32_t)n;
    a.window = c->window;
    pg_tcp_emit(c, PG_S, &a); /* written first by a capture that reorders */
    c->g->now += 5;
    memset(&d, 0, sizeof(d));
    d.flags = PG_ACK;
    d.seq = c->ep[PG_C].nxt;
    d.ack = c->ep[PG_S].nxt;
    d.window = c->window;
    d.data = body->data + first;
    d.len = n;
    pg_tcp_emit(c, PG_C, &d);
    c->ep[PG_C].nxt += (uint32_t)n;
    c->ep[PG_C].bytes += n;
    pg_fact("reordered_offset", "%" PRIu32, pg_stream_off(c, PG_C) - (uint32_t)n);
    c->g->now += 12;
    pg_send(c, PG_C, body->data + first + n, body->len - first - n);
}

static void
pg_artefact_session(struct pg *g, enum pg_body_way way)
{
    struct pg_conn c;
    struct buf body;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    if (way == PG_BODY_MIDDATA)
        c.emit = 0;
    pg_handshake(&c);
    pg_banner_from_server(&c, pg_banner);
    pg_exchange(&c, pg_ehlo, pg_ehlo_reply);
    pg_exchange(&c, "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&c, "DATA\r\n", pg_354);
    buf_init(&body, 1u << 20);
    pg_message(&body, "Quarterly report", 80, 1);
    pg_fact("message_bytes", "%zu", body.len);
    pg_artefact_body(&c, &body, way);
    buf_free(&body);
    g->now += c.rtt + 30000;
    pg_send_str(&c, PG_S, "250 2.0.0 Ok: queued as 4HxKQv0Wq9z9sLb\r\n");
    g->now += 250;
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

static void
sc_middata(struct pg *g)
{
    pg_artefact_session(g, PG_BODY_MIDDATA);
}

static void
sc_window_overrun(struct pg *g)
{
    pg_artefact_session(g, PG_BODY_OVERRUN);
}

static void
sc_ack_first(struct pg *g)
{
    pg_artefact_session(g, PG_BODY_ACK_FIRST);
}

/* ---- capture files and packet selection ------------------------------------------------- */

/* The standard dialogue with two clock steps back: the SYN-ACK is stamped a second before
 * the SYN, and the EHLO reply half a second before the EHLO. */
static void
sc_cf_backwards(struct pg *g)
{
    struct pg_conn c;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 25);
    pg_tcp_send(&c, PG_C, PG_SYN, NULL, 0);
    g->now -= 1000000;
    pg_tcp_send(&c, PG_S, PG_SYN | PG_ACK, NULL, 0);
    g->now += 1000000 + c.rtt;
    pg_ack(&c, PG_C);
    pg_banner_from_server(&c, pg_banner);
    pg_send_str(&c, PG_C, pg_ehlo);
    g->now -= 500000;
    pg_send_str(&c, PG_S, pg_ehlo_reply);
    g->now += 500000 + c.rtt;
    pg_exchange(&c, "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
    pg_fact("backwards", "2");
}

/* The standard session inside three VLAN tags (802.1ad 300, 802.1Q 200, 802.1Q 100): the
 * Ethernet frames are written buffered and get their tags before they are flushed. */
static void
sc_cf_vlan3(struct pg *g)
{
    static const uint8_t tags[12] = {0x88, 0xa8, 0x01, 0x2c, 0x81, 0x00,
                                     0x00, 0xc8, 0x81, 0x00, 0x00, 0x64};
    struct pg_std o;
    size_t i;

    memset(&o, 0, sizeof(o));
    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    g->w.buffered = 1;
    pg_std_v4(g, &o);
    for (i = 0; i < g->w.nrecs; i++) {
        struct pg_rec *r = &g->w.recs[i];
        uint8_t *d = mem_alloc(r->caplen + sizeof(tags));

        if (!d || r->caplen < 14) {
            mem_free(d);
            g->w.io_error = ENOMEM;
            return;
        }
        memcpy(d, r->data, 12);
        memcpy(d + 12, tags, sizeof(tags));
        memcpy(d + 12 + sizeof(tags), r->data + 12, r->caplen - 12);
        mem_free(r->data);
        r->data = d;
        r->caplen += (uint32_t)sizeof(tags);
        r->len += (uint32_t)sizeof(tags);
    }
    pg_wr_flush(&g->w, INT64_MIN, INT64_MAX, 0);
}

/* An IPv6 session; with `forge`, IPv4 segments from and to 240.0.0.1 and 240.0.0.2 (the
 * synthetic addresses smtpsniff gives the session's first two IPv6 addresses) on the same
 * ports, with the client's sequence numbers: a MAIL FROM ahead of the real one, then an
 * RST. Nothing of them may reach the IPv6 session. */
static void
pg_cf_v6(struct pg *g, int forge)
{
    static const uint8_t a1[4] = {240, 0, 0, 1}, a2[4] = {240, 0, 0, 2};
    static const char evil[] = "MAIL FROM:<evil@x>\r\n";
    struct pg_conn c, f;
    struct pg_seg s;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 6, pg_v6_client, 51514, pg_v6_server, 25);
    pg_conn_init(&f, g, 4, a1, 51514, a2, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, pg_banner);
    pg_exchange(&c, pg_ehlo, pg_ehlo_reply);
    memset(&s, 0, sizeof(s));
    s.seq = c.ep[PG_C].nxt;
    s.ack = c.ep[PG_S].nxt;
    s.window = c.window;
    if (forge) {
        s.flags = PG_ACK | PG_PSH;
        s.data = (const uint8_t *)evil;
        s.len = sizeof(evil) - 1;
        pg_tcp_emit(&f, PG_C, &s);
    }
    pg_exchange(&c, "MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n");
    if (forge) {
        memset(&s, 0, sizeof(s));
        s.flags = PG_RST | PG_ACK;
        s.seq = c.ep[PG_S].nxt;
        s.ack = c.ep[PG_C].nxt;
        pg_tcp_emit(&f, PG_S, &s);
    }
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

static void
sc_cf_v6_plain(struct pg *g)
{
    pg_cf_v6(g, 0);
}

static void
sc_cf_v6_forged(struct pg *g)
{
    pg_cf_v6(g, 1);
}

/* SIZE first fragments (MF set, offset 0) of TCP segments to port 25, each to another
 * destination and never completed, then a standard session. */
static void
sc_cf_fragflood(struct pg *g)
{
    static const uint8_t src[4] = {203, 0, 113, 7};
    uint8_t *ip = g->frame + PG_LINK_ROOM, dst[4];
    struct pg_std o;
    uint64_t i;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    for (i = 0; i < g->size; i++) {
        pg_flood_addr(dst, i + 1);
        pg_ipv4_header(ip, src, dst, 6, 64, (uint16_t)i, 0x2000, 24);
        memset(ip + 20, 0, 24);
        pg_be16(ip + 20, 40000);
        pg_be16(ip + 22, 25);
        ip[32] = 5 << 4;
        ip[33] = PG_ACK;
        pg_link_emit(g, NULL, PG_C, 4, 44);
        g->now += 1;
    }
    pg_fact("fragments", "%" PRIu64, g->size);
    memset(&o, 0, sizeof(o));
    g->now += 1000;
    pg_std_v4(g, &o);
}

/* HTTP on 8080 and SMTP on 10025, both to the standard server: with a BPF filter that
 * lets both through, only the one whose content is SMTP is a session. */
static void
sc_cf_other_ports(struct pg *g)
{
    struct pg_conn h, c;
    struct pg_std o;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&h, g, 4, pg_v4_client, 40080, pg_v4_server, 8080);
    pg_handshake(&h);
    pg_exchange(&h, "GET / HTTP/1.1\r\nHost: www.example.net\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    pg_close_client_first(&h);
    memset(&o, 0, sizeof(o));
    pg_conn_init(&c, g, 4, pg_v4_client, 51514, pg_v4_server, 10025);
    pg_std_session(&c, &o);
    pg_conn_facts(&c);
}

/* ---- HTML report: markup in the wire's text ------------------------------------------- */

/* A dialogue whose every client string is markup: the HTML and SVG reports must show it as
 * text. Banner, EHLO name, MAIL FROM and RCPT TO carry tags, quotes and entities. */
static void
sc_html_hostile(struct pg *g)
{
    struct pg_conn c;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51600, pg_v4_server, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, "220 mx.example.net ESMTP <b onmouseover=\"alert(3)\">x</b>\r\n");
    pg_exchange(&c, "EHLO <script>document.title='pwned';alert(1)</script>\r\n",
                "250-mx.example.net\r\n250 PIPELINING\r\n");
    pg_exchange(&c, "MAIL FROM:<\"><img src=x onerror=alert(2)>@example.org>\r\n",
                "250 2.1.0 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<a'b&amp;c\"d]]></svg><svg onload=alert(4)>@example.net>\r\n",
                "550 5.1.1 <script>alert(5)</script> unknown\r\n");
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

/* ---- driver ---------------------------------------------------------------------------- */

struct pg_scenario {
    const char *name;
    void (*run)(struct pg *g);
    uint64_t default_size; /* 0: takes no size argument */
    uint64_t max_size;
    const char *what;
};

/* ---- lines: values that need Zeek's log escapes (--lines) ----------------------------- */

/* A HELO name that reads as the unset marker "-", the null sender, recipients holding a
 * comma (the set separator), a TAB (the field separator) and exactly "(empty)" (the empty
 * marker), a refusal whose text holds a TAB, and a Message-ID with a TAB in it. */
static void
sc_lines_escapes(struct pg *g)
{
    struct pg_conn c;

    pg_begin(g, PG_FMT_PCAP, PG_LINK_ETH, PG_SNAPLEN);
    pg_conn_init(&c, g, 4, pg_v4_client, 51620, pg_v4_server, 25);
    pg_handshake(&c);
    pg_banner_from_server(&c, "220 mx.example.net ESMTP\r\n");
    pg_exchange(&c, "EHLO -\r\n", "250-mx.example.net\r\n250 8BITMIME\r\n");
    pg_exchange(&c, "MAIL FROM:<>\r\n", "250 2.1.0 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<\"a,b\"@example.net>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<tab\there@example.net>\r\n", "250 2.1.5 Ok\r\n");
    pg_exchange(&c, "RCPT TO:<(empty)>\r\n", "550 5.1.1 no\tsuch user\r\n");
    pg_exchange(&c, "DATA\r\n", pg_354);
    pg_send_str(&c, PG_C, "Message-ID: <x\ty@example.org>\r\nSubject: hi\r\n\r\nbody\r\n.\r\n");
    g->now += c.rtt + 1000;
    pg_send_str(&c, PG_S, "250 2.0.0 Ok: queued as 4F2A1B\r\n");
    g->now += 250;
    pg_exchange(&c, "QUIT\r\n", "221 2.0.0 Bye\r\n");
    pg_close_server_first(&c);
    pg_conn_facts(&c);
}

/* A message with MIME parts, as a mail client sends one: multipart/mixed holding a
 * multipart/alternative (plain text, quoted-printable HTML), a base64 PDF named in RFC 2231
 * form, and a message/rfc822 attachment; the attachment spans several segments. */
static char pg_mime_msg[16384];

static void
pg_mime_build(void)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0, i, col = 0;
    uint8_t raw[3000];

    for (i = 0; i < sizeof raw; i++)
        raw[i] = (uint8_t)(i * 7 + 3);
    n += (size_t)snprintf(
        pg_mime_msg + n, sizeof pg_mime_msg - n, "%s",
        "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: report\r\n"
        "User-Agent: Mozilla Thunderbird 115\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"------------outer01\"\r\n\r\n"
        "This is a multi-part message in MIME format.\r\n"
        "--------------outer01\r\n"
        "Content-Type: multipart/alternative; boundary=\"------------alt02\"\r\n\r\n"
        "--------------alt02\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\nThe report is attached.\r\n\r\n"
        "--------------alt02\r\nContent-Type: text/html; charset=UTF-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "<html><body><p>The report is attached =E2=80=93 see=\r\n below.</p></body></html>\r\n\r\n"
        "--------------alt02--\r\n\r\n"
        "--------------outer01\r\nContent-Type: application/pdf; name=\"q3 report.pdf\"\r\n"
        "Content-Disposition: attachment;\r\n filename*0=\"q3 \";\r\n filename*1=\"report.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n");
    for (i = 0; i + 2 < sizeof raw; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        pg_mime_msg[n++] = b64[v >> 18];
        pg_mime_msg[n++] = b64[(v >> 12) & 63];
        pg_mime_msg[n++] = b64[(v >> 6) & 63];
        pg_mime_msg[n++] = b64[v & 63];
        if ((col += 4) == 76) {
            pg_mime_msg[n++] = '\r';
            pg_mime_msg[n++] = '\n';
            col = 0;
        }
    }
    n +=
        (size_t)snprintf(pg_mime_msg + n, sizeof pg_mime_msg - n, "%s%s", col ? "\r\n" : "",
                         "\r\n--------------outer01\r\nContent-Type: message/rfc822\r\n"
                         "Content-Disposition: attachment; filename=\"fwd.eml\"\r\n\r\n"
                         "From: carol@example.com\r\nSubject: earlier\r\n\r\nforwarded text\r\n\r\n"
                         "--------------outer01--\r\n.\r\n");
}

static void
sc_mime_attach(struct pg *g)
{
    pg_mime_build();
    const struct pg_step s[] = {
        {"MAIL FROM:<alice@example.org>\r\n", "250 2.1.0 Ok\r\n", 0},
        {"RCPT TO:<bob@example.net>\r\n", "250 2.1.5 Ok\r\n", 0},
        {"DATA\r\n", pg_354, 0},
        {pg_mime_msg, "250 2.0.0 Ok: queued as 4MimeAtt01\r\n", 0},
        {"QUIT\r\n", "221 2.0.0 Bye\r\n", 0},
    };
    pg_script(g, pg_v4_client, pg_v4_server, pg_banner, pg_ehlo_reply, PG_STEPS(s));
}

static const struct pg_scenario pg_scenarios[] = {
    {"eth", sc_eth, 0, 0, "standard session, Ethernet"},
    {"vlan", sc_vlan, 0, 0, "standard session, 802.1Q VLAN 100"},
    {"qinq", sc_qinq, 0, 0, "standard session, 802.1ad VLAN 200 over 802.1Q VLAN 100"},
    {"sll", sc_sll, 0, 0, "standard session, Linux cooked v1"},
    {"sll2", sc_sll2, 0, 0, "standard session, Linux cooked v2"},
    {"null", sc_null, 0, 0, "standard session, BSD loopback (host order)"},
    {"loop", sc_loop, 0, 0, "standard session, OpenBSD loopback (network order)"},
    {"raw", sc_raw, 0, 0, "standard session, raw IP (LINKTYPE_RAW 101)"},
    {"ipv6", sc_ipv6, 0, 0, "standard session over IPv6, hop-by-hop header on some packets"},
    {"pcapng", sc_pcapng, 0, 0, "standard session in pcapng (SHB, IDB, EPB)"},
    {"gap", sc_gap, 0, 0, "one client body segment missing, later ones present and ACKed"},
    {"truncated", sc_truncated, 0, 0, "snap length 96: every longer packet cut"},
    {"cut", sc_cut, 0, 0, "file ends in the middle of a record"},
    {"syn_unanswered", sc_syn_unanswered, 0, 0, "SYN and two retransmissions, no answer"},
    {"refused", sc_refused, 0, 0, "SYN answered by RST-ACK"},
    {"rst_injected", sc_rst_injected, 0, 0,
     "after the body, an RST with TTL 250 'from' the server"},
    {"rst_server", sc_rst_server, 0, 0, "server resets with its own TTL after the final 250"},
    {"died_after_data", sc_died_after_data, 0, 0, "body sent and ACKed, then silence"},
    {"midstream", sc_midstream, 0, 0, "capture starts after the handshake"},
    {"overlap", sc_overlap, 0, 0, "RCPT segment retransmitted with different bytes"},
    {"frag_dup", sc_frag_dup, 0, 0, "EHLO in fragments, the second sent twice the same"},
    {"frag_conflict", sc_frag_conflict, 0, 0, "EHLO in fragments, the second again changed"},
    {"badck_rcpt", sc_badck_rcpt, 0, 0, "RCPT first damaged with a wrong checksum, then resent"},
    {"offload", sc_offload, 0, 0, "every client segment with a wrong checksum (offload)"},
    {"resend_body", sc_resend_body, 0, 0, "the body's last segment sent 3 more times"},
    {"fragments", sc_fragments, 0, 0, "the EHLO segment in three IPv4 fragments"},
    {"idle", sc_idle, 0, 0, "session silent for 10 minutes, then another session"},
    {"waits", sc_waits, 0, 0, "EHLO reply 7 s late, end-of-data unanswered, capture goes on"},
    {"pipelining", sc_pipelining, 0, 0, "pipelined MAIL/RCPT/RCPT/DATA, two messages, RSET"},
    {"bdat", sc_bdat, 0, 0, "CHUNKING: pipelined BDAT and BDAT LAST"},
    {"multi", sc_multi, 0, 0, "sessions on 25, 587, 2525 interleaved, plus HTTP on 80"},
    {"split_a", sc_split_a, 0, 0, "first half (by time) of the standard session"},
    {"split_b", sc_split_b, 0, 0, "second half (by time) of the standard session"},
    {"hostile_longline", sc_hostile_longline, UINT64_C(20) << 20, UINT64_C(4) << 30,
     "a line without CRLF of SIZE bytes (default 20M)"},
    {"hostile_pipeline", sc_hostile_pipeline, 100000, 50000000,
     "SIZE commands that are never answered (default 100000)"},
    {"hostile_rcpts", sc_hostile_rcpts, 10000, 10000000,
     "one transaction with SIZE recipients (default 10000)"},
    {"hostile_multiline", sc_hostile_multiline, 100000, 50000000,
     "an EHLO reply of SIZE continuation lines (default 100000)"},
    {"hostile_authblob", sc_hostile_authblob, UINT64_C(4) << 20, UINT64_C(1) << 30,
     "AUTH PLAIN and AUTH LOGIN lines of SIZE base64 bytes (default 4M)"},
    {"hostile_badbase64", sc_hostile_badbase64, 210, 1000000,
     "SIZE AUTH steps with broken base64 both ways (default 210)"},
    {"hostile_synflood", sc_hostile_synflood, 100000, 16000000,
     "SIZE SYNs from distinct sources, each SYN-ACKed, then a session (default 100000)"},
    {"hostile_idle_sessions", sc_hostile_idle_sessions, 10000, 16000000,
     "SIZE established sessions that go silent after the banner (default 10000)"},
    {"hostile_headers", sc_hostile_headers, 5000, 10000000,
     "impossible IP/TCP headers and SIZE garbage frames around a session (default 5000)"},
    {"hostile_garbage_after_header", sc_hostile_garbage_after_header, UINT64_C(1) << 20,
     UINT64_C(4) << 30, "a valid pcap header, then SIZE random bytes (default 1M)"},
    {"hostile_bigcaplen", sc_hostile_bigcaplen, 1000000, 0xffffffffu,
     "records longer than the snap length, the last claiming SIZE bytes (default 1000000)"},
    {"relay_mx", sc_relay_mx, 0, 0, "inbound mail for gmail.com at an MX named mx.google.com"},
    {"relay_open", sc_relay_open, 0, 0,
     "public client, no AUTH, recipients in 3 unrelated domains accepted"},
    {"relay_loopback", sc_relay_loopback, 0, 0, "relay_open from 127.0.0.1"},
    {"auth_refused", sc_auth_refused, 0, 0,
     "AUTH refused (538, 504, cancelled) before a credential"},
    {"auth_refused_sent", sc_auth_refused_sent, 0, 0,
     "AUTH PLAIN with an initial response in clear, refused 538"},
    {"idle_451", sc_idle_451, 0, 0, "delivered, then 451 4.4.2 to the idle client and FIN"},
    {"idle_421", sc_idle_421, 0, 0, "delivered, then 421 4.4.2 to the idle client and FIN"},
    {"limits_temp", sc_limits_temp, 0, 0, "MAIL 452 4.3.4 (size), RCPT 452 4.2.2 (mailbox full)"},
    {"smuggling_split", sc_smuggling_split, 0, 0,
     "<LF>.<LF> inside the body; the server splits it (two queue ids)"},
    {"smuggling_nosplit", sc_smuggling_nosplit, 0, 0,
     "<LF>.<LF> inside the body; one final reply (Exim id=)"},
    {"no_banner_cut", sc_no_banner_cut, 0, 0, "handshake, no greeting, the capture ends 2 s later"},
    {"no_banner_closed", sc_no_banner_closed, 0, 0,
     "handshake, no greeting, the client closes after 8 s"},
    {"term_escapes", sc_term_escapes, 0, 0,
     "terminal control sequences in the banner, EHLO, AUTH user, addresses and replies"},
    {"workers_skew", sc_workers_skew, UINT64_C(16) << 20, UINT64_C(4) << 30,
     "a SIZE-byte message in small segments, a short session per 2 KiB (default 16M)"},
    {"eml_concurrent", sc_eml_concurrent, UINT64_C(1) << 20, UINT64_C(1) << 30,
     "20 sessions each sending a message of SIZE bytes, all at once (default 1M)"},
    {"eml_big", sc_eml_big, UINT64_C(1) << 20, UINT64_C(4) << 30,
     "one session, one message of SIZE bytes (default 1M)"},
    {"eml_cut", sc_eml_cut, 0, 0, "the client goes away in the middle of a message"},
    {"oneside_client", sc_oneside_client, 0, 0,
     "standard session, the server's packets never captured"},
    {"oneside_server", sc_oneside_server, 0, 0,
     "standard session, the client's packets never captured"},
    {"oneside_client_mid", sc_oneside_client_mid, 0, 0,
     "client's packets only, from after the handshake"},
    {"middata", sc_middata, 0, 0, "capture begins inside the message body, mid-line"},
    {"window_overrun", sc_window_overrun, 0, 0,
     "client's body segments larger than the 1000-byte window the server advertises"},
    {"ack_first", sc_ack_first, 0, 0, "a body segment captured after the ACK that covers it"},
    {"cf_backwards", sc_cf_backwards, 0, 0,
     "a session whose SYN-ACK and EHLO reply go back in time"},
    {"cf_vlan3", sc_cf_vlan3, 0, 0, "standard session inside three VLAN tags"},
    {"cf_v6_plain", sc_cf_v6_plain, 0, 0, "an IPv6 session"},
    {"cf_v6_forged", sc_cf_v6_forged, 0, 0,
     "the same with IPv4 MAIL FROM and RST forged from its synthetic 240/4 addresses"},
    {"cf_other_ports", sc_cf_other_ports, 0, 0, "HTTP on 8080 and SMTP on 10025"},
    {"cf_fragflood", sc_cf_fragflood, 1000000, 16000000,
     "SIZE incomplete IPv4 fragments to distinct hosts, then a session (default 1M)"},
    {"html_hostile", sc_html_hostile, 0, 0,
     "markup, quotes and entities in the banner, EHLO, MAIL FROM and RCPT TO"},
    {"lines_escapes", sc_lines_escapes, 0, 0,
     "HELO \"-\", null sender, recipients with ',', TAB and \"(empty)\", TABs in a reply"},
    {"mime_attach", sc_mime_attach, 0, 0,
     "a message with nested multiparts, a QP part, a base64 PDF and a message/rfc822"},
};

static void
pg_usage(FILE *f)
{
    fprintf(f, "usage: pcapgen SCENARIO OUTFILE [SIZE]\n"
               "       pcapgen --list\n"
               "SIZE takes a k, M or G suffix (powers of 1024). Facts about the capture are\n"
               "printed as \"fact KEY VALUE\" lines.\n");
}

static int
pg_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return -1;
    if (*end == 'k' || *end == 'K')
        mult = UINT64_C(1) << 10;
    else if (*end == 'm' || *end == 'M')
        mult = UINT64_C(1) << 20;
    else if (*end == 'g' || *end == 'G')
        mult = UINT64_C(1) << 30;
    else if (*end != '\0')
        return -1;
    if (mult > 1 && end[1] != '\0')
        return -1;
    if (v > UINT64_MAX / mult)
        return -1;
    *out = (uint64_t)v * mult;
    return 0;
}

int
main(int argc, char **argv)
{
    const struct pg_scenario *sc = NULL;
    struct pg *g;
    size_t i;
    int rc = 0;

    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (i = 0; i < sizeof(pg_scenarios) / sizeof(pg_scenarios[0]); i++)
            printf("%-30s %s\n", pg_scenarios[i].name, pg_scenarios[i].what);
        return 0;
    }
    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        pg_usage(stdout);
        return 0;
    }
    if (argc < 3 || argc > 4) {
        pg_usage(stderr);
        return 2;
    }
    for (i = 0; i < sizeof(pg_scenarios) / sizeof(pg_scenarios[0]); i++)
        if (strcmp(argv[1], pg_scenarios[i].name) == 0)
            sc = &pg_scenarios[i];
    if (!sc) {
        fprintf(stderr, "pcapgen: unknown scenario '%s' (see --list)\n", argv[1]);
        return 2;
    }
    g = mem_calloc(1, sizeof(*g));
    if (!g) {
        fprintf(stderr, "pcapgen: out of memory\n");
        return 1;
    }
    g->size = sc->default_size;
    if (argc == 4) {
        if (!sc->default_size) {
            fprintf(stderr, "pcapgen: scenario '%s' takes no size\n", sc->name);
            rc = 2;
            goto out;
        }
        if (pg_parse_size(argv[3], &g->size) < 0 || g->size > sc->max_size) {
            fprintf(stderr, "pcapgen: bad size '%s' for %s (at most %" PRIu64 ")\n", argv[3],
                    sc->name, sc->max_size);
            rc = 2;
            goto out;
        }
    }
    g->now = PG_T0_US;
    g->rng = PG_SEED;
    g->w.f = fopen(argv[2], "wb");
    if (!g->w.f) {
        fprintf(stderr, "pcapgen: %s: %s\n", argv[2], strerror(errno));
        rc = 1;
        goto out;
    }
    sc->run(g);
    if (g->w.buffered)
        pg_wr_flush(&g->w, INT64_MIN, INT64_MAX, 0);
    if (fclose(g->w.f) != 0 && !g->w.io_error)
        g->w.io_error = errno ? errno : EIO;
    if (g->w.io_error) {
        fprintf(stderr, "pcapgen: %s: %s\n", argv[2], strerror(g->w.io_error));
        rc = 1;
        goto out;
    }
    pg_fact("packets", "%lu", g->w.packets);
    pg_fact("truncated_packets", "%lu", g->w.truncated);
    pg_fact("linktype", "%" PRIu32, g->w.linktype);
out:
    mem_free(g);
    return rc;
}
