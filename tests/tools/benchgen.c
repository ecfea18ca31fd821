/* benchgen.c - fast deterministic generator of SMTP traffic (RFC 5321, 2920, 4954, 5322) for
 * the throughput benchmark: many interleaved TCP connections (RFC 9293, 7323) over IPv4
 * (RFC 791) and IPv6 (RFC 8200), written as a classic microsecond pcap file on Ethernet. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mem.h"

/* Every capture starts at 2024-03-11T09:00:00Z so one seed always gives the same bytes. */
#define BG_T0_S INT64_C(1710147600)

#define BG_OUTBUF (4u << 20)
/* The largest frame we ever make: record header, Ethernet, IPv6, TCP with options, one MSS. */
#define BG_FRAME_MAX 2048u
#define BG_MSS4 1448u /* 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps) */
#define BG_MSS6 1428u /* 1500 - 40 (IPv6) - 20 (TCP) - 12 (timestamps) */
#define BG_POOL_SIZE (1u << 20)
#define BG_HDR_MAX 2048u
#define BG_MAX_RCPT 3u
#define BG_MAX_MSGS 2u

#define BG_C 0 /* client to server */
#define BG_S 1 /* server to client */

#define BG_FIN 0x01u
#define BG_SYN 0x02u
#define BG_PSH 0x08u
#define BG_ACK 0x10u

enum bg_step {
    BG_ST_HANDSHAKE,
    BG_ST_BANNER,
    BG_ST_EHLO,
    BG_ST_AUTH,
    BG_ST_MAIL,
    BG_ST_RCPT,
    BG_ST_DATA,
    BG_ST_BODY,
    BG_ST_QUEUED,
    BG_ST_QUIT,
    BG_ST_CLOSE,
    BG_ST_DONE,
    BG_ST_COUNT
};

struct bg_sess {
    enum bg_step step;
    int v6;
    int auth;
    int pipelined;
    uint8_t addr[2][16]; /* [BG_C] client, [BG_S] server; IPv4 uses the first 4 bytes */
    uint16_t port[2];
    uint32_t seq[2];     /* next sequence number each side sends */
    uint32_t ts_base[2]; /* RFC 7323 timestamp clock origin of each host */
    uint32_t last_ts[2]; /* last TSval each side sent, echoed by the other */
    uint16_t ipid[2];
    uint32_t flow[2]; /* IPv6 flow labels */
    unsigned server;  /* index into bg_servers */
    unsigned mss;
    unsigned client_dom, client_user, client_host;
    unsigned nmsgs, msg;
    size_t body_len[BG_MAX_MSGS];
    unsigned nrcpt, rcpt, reject; /* reject: 1-based index of a refused RCPT, 0 = none */
    unsigned rcpt_user[BG_MAX_RCPT], rcpt_dom[BG_MAX_RCPT];
    unsigned unacked;  /* full data segments the server has not acknowledged yet */
    uint64_t est_left; /* bytes this session is still expected to write */
    /* the message being sent: header block, then text from the pool, then ".\r\n" */
    size_t hdr_len, hdr_off;
    size_t text_off, text_left;
    size_t dot_left;
    char hdr[BG_HDR_MAX];
};

struct bg_server {
    const char *name;
    uint8_t v4[4];
    uint8_t v6[16];
    uint8_t mac[6];
    uint16_t port;
};

struct bg_gen {
    uint64_t rng;
    FILE *f;
    const char *path;
    uint8_t *out;
    size_t out_len;
    uint64_t written;
    uint64_t target;
    int64_t t_us; /* capture clock, microseconds since BG_T0_S */
    uint8_t *pool;
    size_t pool_len;
    size_t body_mean;
    uint64_t pending; /* sum of est_left over the active sessions */
    uint64_t sessions, v6, auth, pipelined, messages, packets, rejected;
    uint64_t next_id;
};

static const struct bg_server bg_servers[] = {
    {"mx1.example.net",
     {192, 0, 2, 25},
     {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x25, 0, 0, 0, 0, 0, 0, 0, 0x25},
     {0x52, 0x54, 0x00, 0x12, 0x00, 0x25},
     25},
    {"mx2.example.net",
     {192, 0, 2, 26},
     {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x25, 0, 0, 0, 0, 0, 0, 0, 0x26},
     {0x52, 0x54, 0x00, 0x12, 0x00, 0x26},
     25},
    {"smtp.example.net",
     {192, 0, 2, 87},
     {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0x25, 0, 0, 0, 0, 0, 0, 0x05, 0x87},
     {0x52, 0x54, 0x00, 0x12, 0x05, 0x87},
     587},
};
#define BG_SUBMISSION 2u

/* Clients reach the servers through the site's router: its (VRRP) MAC on their frames. */
static const uint8_t bg_router_mac[6] = {0x00, 0x00, 0x5e, 0x00, 0x01, 0x01};

static const char *const bg_domains[] = {
    "example.org",    "example.com",       "corp.example",   "shop.example",
    "news.example",   "lists.example.org", "mail.example",   "bank.example",
    "travel.example", "school.example",    "health.example", "city.example.com",
};
#define BG_NDOMAINS (sizeof bg_domains / sizeof bg_domains[0])

static const char *const bg_users[] = {
    "alice", "bob",    "carol",   "dave",    "erin",    "frank",   "grace",      "heidi",
    "ivan",  "judy",   "mallory", "niaj",    "olivia",  "peggy",   "rupert",     "sybil",
    "trent", "victor", "walter",  "noreply", "billing", "support", "newsletter", "hr",
};
#define BG_NUSERS (sizeof bg_users / sizeof bg_users[0])

static const char *const bg_names[] = {
    "Alice Martin", "Bob Dupont",   "Carol Smith",    "Dave Jones",      "Erin Novak",
    "Frank Weber",  "Grace Rossi",  "Heidi Berg",     "Ivan Petrov",     "Judy Lee",
    "Mallory Kent", "Niaj Khan",    "Olivia Brown",   "Peggy Olsen",     "Rupert Gray",
    "Sybil Moreau", "Trent Walker", "Victor Haas",    "Walter White",    "No Reply",
    "Billing",      "Support Team", "The Newsletter", "Human Resources",
};

static const char *const bg_subjects[] = {
    "Re: meeting notes",
    "Invoice 2024-0311 for March",
    "Your order has shipped",
    "Weekly newsletter",
    "Fwd: travel plans for the conference",
    "Quarterly report (draft)",
    "Password expiry reminder",
    "Re: Re: budget figures",
    "Lunch on Friday?",
    "Project status: green",
    "Welcome aboard",
    "Réunion de lundi",
    "Your statement is ready",
    "Holiday schedule",
    "Minutes of the board meeting",
    "Re: question about the contract",
};
#define BG_NSUBJECTS (sizeof bg_subjects / sizeof bg_subjects[0])

static const char *const bg_mailers[] = {
    "Mozilla Thunderbird 115.8.1", "Microsoft Outlook 16.0", "Apple Mail (2.3774)",
    "Roundcube Webmail/1.6.6",     "Evolution 3.46.4",       "mutt/2.2.9",
};
#define BG_NMAILERS (sizeof bg_mailers / sizeof bg_mailers[0])

static const char *const bg_words[] = {
    "the",      "of",       "and",       "to",       "in",       "is",      "that",     "for",
    "it",       "as",       "was",       "with",     "be",       "by",      "on",       "not",
    "he",       "this",     "are",       "or",       "his",      "from",    "at",       "which",
    "but",      "have",     "an",        "had",      "they",     "you",     "were",     "their",
    "one",      "all",      "we",        "can",      "her",      "has",     "there",    "been",
    "if",       "more",     "when",      "will",     "would",    "who",     "so",       "no",
    "meeting",  "report",   "schedule",  "please",   "attached", "invoice", "budget",   "project",
    "customer", "delivery", "thanks",    "regards",  "tomorrow", "morning", "review",   "contract",
    "update",   "figures",  "quarter",   "team",     "office",   "travel",  "document", "question",
    "answer",   "price",    "order",     "shipment", "account",  "payment", "reminder", "agenda",
    "minutes",  "proposal", "draft",     "version",  "server",   "network", "upgrade",  "weekend",
    "holiday",  "deadline", "colleague", "Grüße",    "café",     "naïve",   "déjà",     "Straße",
    "résumé",   "señor",
};
#define BG_NWORDS (sizeof bg_words / sizeof bg_words[0])

static const char bg_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static uint64_t
bg_rand(struct bg_gen *g)
{
    /* splitmix64: tiny, fast and good enough to pick names and sizes. */
    uint64_t z = (g->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A number in [0, n). */
static unsigned
bg_below(struct bg_gen *g, unsigned n)
{
    return (unsigned)(((bg_rand(g) >> 32) * (uint64_t)n) >> 32);
}

/* True with probability pct percent. */
static int
bg_chance(struct bg_gen *g, unsigned pct)
{
    return bg_below(g, 100) < pct;
}

static void
bg_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
bg_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void
bg_put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* RFC 1071 sum over native-order words: the folded sum stored back in native order is the
 * right checksum on either byte order, and 32-bit loads let the compiler vectorise. */
static uint64_t
bg_sum(const uint8_t *p, size_t n, uint64_t acc)
{
    while (n >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        acc += w;
        p += 4;
        n -= 4;
    }
    if (n) {
        uint8_t tail[4] = {0, 0, 0, 0};
        memcpy(tail, p, n);
        uint32_t w;
        memcpy(&w, tail, 4);
        acc += w;
    }
    return acc;
}

static void
bg_store_csum(uint8_t *where, uint64_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    uint16_t c = (uint16_t)~acc;
    memcpy(where, &c, 2);
}

static void
bg_die_io(const struct bg_gen *g)
{
    fprintf(stderr, "benchgen: cannot write %s: %s\n", g->path, strerror(errno ? errno : EIO));
    exit(1);
}

static void
bg_flush(struct bg_gen *g)
{
    if (g->out_len && fwrite(g->out, 1, g->out_len, g->f) != g->out_len)
        bg_die_io(g);
    g->out_len = 0;
}

/* Room for one frame; the payload goes at the returned offset from the frame start. */
static uint8_t *
bg_frame(struct bg_gen *g, const struct bg_sess *s, size_t *payload_at)
{
    if (BG_OUTBUF - g->out_len < BG_FRAME_MAX)
        bg_flush(g);
    *payload_at = 16 + 14 + (s->v6 ? 40u : 20u) + 32;
    return g->out + g->out_len;
}

static uint32_t
bg_tsval(const struct bg_gen *g, const struct bg_sess *s, int dir)
{
    return s->ts_base[dir] + (uint32_t)(g->t_us / 1000);
}

/* Writes the headers of the frame whose payload (len bytes) is already in place. */
static void
bg_finish(struct bg_gen *g, struct bg_sess *s, int dir, unsigned flags, size_t len)
{
    uint8_t *rec = g->out + g->out_len;
    uint8_t *eth = rec + 16;
    uint8_t *ip = eth + 14;
    size_t iphl = s->v6 ? 40u : 20u;
    uint8_t *tcp = ip + iphl;
    size_t thl = (flags & BG_SYN) ? 40u : 32u;
    int peer = !dir;

    if (flags & BG_SYN) {
        /* SYNs carry 8 more option bytes than the rest: move the (empty) payload along. */
        memmove(tcp + thl, tcp + 32, len);
    }
    size_t frame = 14 + iphl + thl + len;

    /* A few to a few dozen microseconds between frames: a busy gigabit link. */
    g->t_us += 2 + bg_below(g, 24);
    int64_t t = BG_T0_S * 1000000 + g->t_us;
    bg_put32le(rec, (uint32_t)(t / 1000000));
    bg_put32le(rec + 4, (uint32_t)(t % 1000000));
    bg_put32le(rec + 8, (uint32_t)frame);
    bg_put32le(rec + 12, (uint32_t)frame);

    const uint8_t *smac = dir == BG_C ? bg_router_mac : bg_servers[s->server].mac;
    const uint8_t *dmac = dir == BG_C ? bg_servers[s->server].mac : bg_router_mac;
    memcpy(eth, dmac, 6);
    memcpy(eth + 6, smac, 6);
    bg_put16(eth + 12, s->v6 ? 0x86ddu : 0x0800u);

    uint64_t pseudo;
    size_t tcplen = thl + len;
    if (s->v6) {
        bg_put32(ip, 0x60000000u | s->flow[dir]);
        bg_put16(ip + 4, (uint32_t)tcplen);
        ip[6] = 6;
        ip[7] = dir == BG_C ? 52 : 64;
        memcpy(ip + 8, s->addr[dir], 16);
        memcpy(ip + 24, s->addr[peer], 16);
        uint8_t ph[8];
        bg_put32(ph, (uint32_t)tcplen);
        bg_put32(ph + 4, 6);
        pseudo = bg_sum(ip + 8, 32, bg_sum(ph, 8, 0));
    } else {
        ip[0] = 0x45;
        ip[1] = 0;
        bg_put16(ip + 2, (uint32_t)(20 + tcplen));
        bg_put16(ip + 4, s->ipid[dir]++);
        bg_put16(ip + 6, 0x4000); /* DF: path MTU discovery, as every modern stack */
        ip[8] = dir == BG_C ? 52 : 64;
        ip[9] = 6;
        ip[10] = ip[11] = 0;
        memcpy(ip + 12, s->addr[dir], 4);
        memcpy(ip + 16, s->addr[peer], 4);
        bg_store_csum(ip + 10, bg_sum(ip, 20, 0));
        uint8_t ph[4] = {0, 6, 0, 0};
        bg_put16(ph + 2, (uint32_t)tcplen);
        pseudo = bg_sum(ip + 12, 8, bg_sum(ph, 4, 0));
    }

    bg_put16(tcp, s->port[dir]);
    bg_put16(tcp + 2, s->port[peer]);
    bg_put32(tcp + 4, s->seq[dir]);
    bg_put32(tcp + 8, (flags & BG_ACK) ? s->seq[peer] : 0);
    tcp[12] = (uint8_t)((thl / 4) << 4);
    tcp[13] = (uint8_t)flags;
    /* SYNs are not scaled (RFC 7323 2.2); afterwards 501 << 7 is Linux's usual 64 KB. */
    bg_put16(tcp + 14, (flags & BG_SYN) ? 64240u : 501u);
    tcp[16] = tcp[17] = 0;
    tcp[18] = tcp[19] = 0;
    uint32_t tsval = bg_tsval(g, s, dir);
    uint8_t *o = tcp + 20;
    if (flags & BG_SYN) {
        o[0] = 2; /* MSS */
        o[1] = 4;
        bg_put16(o + 2, s->mss);
        o[4] = 4; /* SACK permitted */
        o[5] = 2;
        o += 6;
    } else {
        o[0] = o[1] = 1;
        o += 2;
    }
    o[0] = 8; /* timestamps */
    o[1] = 10;
    bg_put32(o + 2, tsval);
    bg_put32(o + 6, (flags & BG_ACK) ? s->last_ts[peer] : 0);
    if (flags & BG_SYN) {
        o[10] = 1;
        o[11] = 3; /* window scale 7 */
        o[12] = 3;
        o[13] = 7;
    }
    bg_store_csum(tcp + 16, bg_sum(tcp, tcplen, pseudo));

    s->last_ts[dir] = tsval;
    s->seq[dir] += (uint32_t)len + ((flags & (BG_SYN | BG_FIN)) ? 1u : 0u);
    g->out_len += 16 + frame;
    g->written += 16 + frame;
    g->packets++;
    uint64_t used = 16 + frame;
    uint64_t dec = used < s->est_left ? used : s->est_left;
    s->est_left -= dec;
    g->pending -= dec;
}

static void
bg_send(struct bg_gen *g, struct bg_sess *s, int dir, unsigned flags, const char *data, size_t len)
{
    size_t at;
    uint8_t *fr = bg_frame(g, s, &at);
    if (len)
        memcpy(fr + at, data, len);
    bg_finish(g, s, dir, flags, len);
}

/* Sends one line or a few lines built with a format; every line fits one segment. */
static void bg_sendf(struct bg_gen *g, struct bg_sess *s, int dir, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
bg_sendf(struct bg_gen *g, struct bg_sess *s, int dir, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line || (size_t)n > s->mss) {
        fprintf(stderr, "benchgen: internal error: line too long\n");
        abort();
    }
    bg_send(g, s, dir, BG_PSH | BG_ACK, line, (size_t)n);
}

/* Body text: lines of words, blank lines between paragraphs, a few quoted lines and a few
 * lines that begin with a dot, already dot-stuffed as RFC 5321 4.5.2 requires on the wire.
 * It ends with CRLF so bodies may wrap around it and still end on a line boundary. */
static int
bg_make_pool(struct bg_gen *g)
{
    g->pool = mem_alloc(BG_POOL_SIZE);
    if (!g->pool)
        return -1;
    size_t n = 0;
    while (n + 200 < BG_POOL_SIZE) {
        unsigned kind = bg_below(g, 100);
        if (kind < 8) {
            memcpy(g->pool + n, "\r\n", 2);
            n += 2;
            continue;
        }
        size_t start = n;
        if (kind < 14) {
            memcpy(g->pool + n, "> ", 2);
            n += 2;
        } else if (kind < 15) {
            memcpy(g->pool + n, "..", 2);
            n += 2;
        }
        size_t width = 40 + bg_below(g, 37);
        int first = 1;
        while (n - start < width) {
            const char *w = bg_words[bg_below(g, BG_NWORDS)];
            size_t wl = strlen(w);
            if (!first)
                g->pool[n++] = ' ';
            memcpy(g->pool + n, w, wl);
            if (first && g->pool[n] >= 'a' && g->pool[n] <= 'z')
                g->pool[n] = (uint8_t)(g->pool[n] - 'a' + 'A');
            n += wl;
            first = 0;
        }
        if (bg_chance(g, 30))
            g->pool[n++] = (uint8_t)(bg_chance(g, 50) ? '.' : ',');
        memcpy(g->pool + n, "\r\n", 2);
        n += 2;
    }
    g->pool_len = n;
    return 0;
}

static void
bg_b64_random(struct bg_gen *g, char *dst, size_t n)
{
    uint64_t r = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (bits < 6) {
            r = bg_rand(g);
            bits = 64;
        }
        dst[i] = bg_b64[r & 63];
        r >>= 6;
        bits -= 6;
    }
    dst[n] = '\0';
}

static size_t
bg_b64_encode(const uint8_t *src, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)src[i + 1] << 8;
        if (i + 2 < n)
            v |= src[i + 2];
        if (o + 5 > cap)
            break;
        dst[o++] = bg_b64[(v >> 18) & 63];
        dst[o++] = bg_b64[(v >> 12) & 63];
        dst[o++] = i + 1 < n ? bg_b64[(v >> 6) & 63] : '=';
        dst[o++] = i + 2 < n ? bg_b64[v & 63] : '=';
    }
    dst[o] = '\0';
    return o;
}

/* Body size around the mean: the mean of three uniform draws, so mostly near the mean and
 * never above twice it. */
static size_t
bg_body_size(struct bg_gen *g)
{
    uint64_t u = (uint64_t)bg_below(g, 1000) + bg_below(g, 1000) + bg_below(g, 1000);
    uint64_t n = (uint64_t)g->body_mean * (u + 30) / 1530;
    return n < 600 ? 600 : (size_t)n;
}

static uint64_t
bg_estimate(const struct bg_sess *s, size_t body)
{
    uint64_t segs = body / s->mss + 1;
    return body + segs * (16 + 14 + 40 + 32) * 3 / 2;
}

static void
bg_start(struct bg_gen *g, struct bg_sess *s)
{
    memset(s, 0, offsetof(struct bg_sess, hdr));
    g->sessions++;
    g->next_id++;
    s->v6 = bg_chance(g, 10);
    s->auth = bg_chance(g, 30);
    s->pipelined = bg_chance(g, 20);
    s->server = s->auth ? BG_SUBMISSION : bg_below(g, 2);
    s->mss = s->v6 ? BG_MSS6 : BG_MSS4;
    const struct bg_server *sv = &bg_servers[s->server];
    if (s->v6) {
        static const uint8_t pfx[6] = {0x20, 0x01, 0x0d, 0xb8, 0x10, 0x00};
        memcpy(s->addr[BG_C], pfx, 6);
        uint64_t r = bg_rand(g);
        for (int i = 6; i < 16; i++) {
            s->addr[BG_C][i] = (uint8_t)r;
            r >>= 8;
            if (i == 13)
                r = bg_rand(g);
        }
        memcpy(s->addr[BG_S], sv->v6, 16);
        s->flow[BG_C] = (uint32_t)bg_rand(g) & 0xfffffu;
        s->flow[BG_S] = (uint32_t)bg_rand(g) & 0xfffffu;
        g->v6++;
    } else {
        /* Clients come from 198.18.0.0/15 (RFC 2544, set aside for benchmarks). */
        uint32_t a = (198u << 24) | (18u << 16) | (uint32_t)bg_below(g, 1u << 17);
        bg_put32(s->addr[BG_C], a);
        memcpy(s->addr[BG_S], sv->v4, 4);
    }
    /* Ports walk the ephemeral range so connections open at the same time never share a
     * 4-tuple even when a client address repeats. */
    s->port[BG_C] = (uint16_t)(32768 + (g->next_id * 7919) % 28232);
    s->port[BG_S] = sv->port;
    s->seq[BG_C] = (uint32_t)bg_rand(g);
    s->seq[BG_S] = (uint32_t)bg_rand(g);
    s->ts_base[BG_C] = (uint32_t)bg_rand(g);
    s->ts_base[BG_S] = (uint32_t)bg_rand(g);
    s->ipid[BG_C] = (uint16_t)bg_rand(g);
    s->ipid[BG_S] = (uint16_t)bg_rand(g);
    s->client_dom = bg_below(g, BG_NDOMAINS);
    s->client_user = bg_below(g, BG_NUSERS);
    s->client_host = bg_below(g, 64);
    s->nmsgs = bg_chance(g, 10) ? 2 : 1;
    s->est_left = 3000;
    for (unsigned i = 0; i < s->nmsgs; i++) {
        s->body_len[i] = bg_body_size(g);
        s->est_left += bg_estimate(s, s->body_len[i]) + 600;
    }
    g->pending += s->est_left;
    if (s->auth)
        g->auth++;
    if (s->pipelined)
        g->pipelined++;
    s->step = BG_ST_HANDSHAKE;
}

static void
bg_new_message(struct bg_gen *g, struct bg_sess *s)
{
    s->nrcpt = 1 + bg_below(g, BG_MAX_RCPT);
    for (unsigned i = 0; i < s->nrcpt; i++) {
        s->rcpt_user[i] = bg_below(g, BG_NUSERS);
        s->rcpt_dom[i] = bg_below(g, 3);
    }
    /* Now and then one recipient (never the first, so DATA is still accepted) is unknown. */
    s->reject = (s->nrcpt > 1 && bg_chance(g, 15)) ? 1 + 1 + bg_below(g, s->nrcpt - 1) : 0;
    s->rcpt = 0;
    g->messages++;
}

static const char *
bg_rcpt_domain(unsigned i)
{
    static const char *const d[] = {"example.net", "staff.example.net", "lists.example.net"};
    return d[i];
}

/* The header block of RFC 5322 a mail client and the previous relay would have written. */
static void
bg_build_header(struct bg_gen *g, struct bg_sess *s)
{
    char date[64], dkim_b[4][80], bh[48], qid[16];
    time_t now = (time_t)(BG_T0_S + g->t_us / 1000000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    for (int i = 0; i < 4; i++)
        bg_b64_random(g, dkim_b[i], i == 3 ? 22 : 72);
    bg_b64_random(g, bh, 43);
    snprintf(qid, sizeof qid, "%08" PRIX64, bg_rand(g) >> 32);
    const char *dom = bg_domains[s->client_dom];
    const char *user = bg_users[s->client_user];
    unsigned r0 = s->rcpt_user[0];
    int n = snprintf(s->hdr, sizeof s->hdr,
                     "Received: from [10.%u.%u.%u] (unknown [10.%u.%u.%u])\r\n"
                     "\tby mail%u.%s (Postfix) with ESMTPSA id %s\r\n"
                     "\tfor <%s@%s>; %s\r\n"
                     "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s;\r\n"
                     "\ts=s2024; t=%lld;\r\n"
                     "\tbh=%s=;\r\n"
                     "\th=From:To:Subject:Date:Message-ID:MIME-Version;\r\n"
                     "\tb=%s\r\n\t %s\r\n\t %s\r\n\t %s==\r\n"
                     "From: %s <%s@%s>\r\n"
                     "To: %s <%s@%s>\r\n"
                     "Subject: %s\r\n"
                     "Date: %s\r\n"
                     "Message-ID: <%016" PRIx64 ".%" PRIu64 "@%s>\r\n"
                     "MIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n"
                     "X-Mailer: %s\r\n"
                     "\r\n",
                     s->client_host % 8, s->client_host, s->client_dom, s->client_host % 8,
                     s->client_host, s->client_dom, s->client_host % 4, dom, qid, bg_users[r0],
                     bg_rcpt_domain(s->rcpt_dom[0]), date, dom, (long long)now, bh, dkim_b[0],
                     dkim_b[1], dkim_b[2], dkim_b[3], bg_names[s->client_user], user, dom,
                     bg_names[r0], bg_users[r0], bg_rcpt_domain(s->rcpt_dom[0]),
                     bg_subjects[bg_below(g, BG_NSUBJECTS)], date, bg_rand(g), g->messages, dom,
                     bg_mailers[bg_below(g, BG_NMAILERS)]);
    if (n < 0 || (size_t)n >= sizeof s->hdr) {
        fprintf(stderr, "benchgen: internal error: header block too long\n");
        abort();
    }
    s->hdr_len = (size_t)n;
    s->hdr_off = 0;

    /* Text from a random line of the pool, ending on the first line end past the size. */
    size_t body = s->body_len[s->msg];
    size_t want = body > s->hdr_len + 3 ? body - s->hdr_len - 3 : 2;
    size_t off = bg_below(g, (unsigned)g->pool_len);
    const uint8_t *nl = memchr(g->pool + off, '\n', g->pool_len - off);
    off = nl ? (size_t)(nl - g->pool) + 1 : 0;
    if (off >= g->pool_len)
        off = 0;
    size_t end = (off + want) % g->pool_len;
    nl = memchr(g->pool + end, '\n', g->pool_len - end);
    size_t extra = nl ? (size_t)(nl - (g->pool + end)) + 1 : g->pool_len - end;
    s->text_off = off;
    s->text_left = want + extra;
    s->dot_left = 3;
}

/* Fills one segment of the message: header block, pool text (wrapping), then ".\r\n". */
static size_t
bg_body_fill(struct bg_gen *g, struct bg_sess *s, uint8_t *dst, size_t room)
{
    size_t n = 0;
    if (s->hdr_off < s->hdr_len) {
        size_t k = s->hdr_len - s->hdr_off;
        k = k < room ? k : room;
        memcpy(dst, s->hdr + s->hdr_off, k);
        s->hdr_off += k;
        n += k;
    }
    while (n < room && s->text_left) {
        size_t k = g->pool_len - s->text_off;
        k = k < s->text_left ? k : s->text_left;
        k = k < room - n ? k : room - n;
        memcpy(dst + n, g->pool + s->text_off, k);
        n += k;
        s->text_left -= k;
        s->text_off += k;
        if (s->text_off == g->pool_len)
            s->text_off = 0;
    }
    while (n < room && s->dot_left) {
        dst[n++] = (uint8_t) ".\r\n"[3 - s->dot_left];
        s->dot_left--;
    }
    return n;
}

static void
bg_ehlo_reply(struct bg_gen *g, struct bg_sess *s)
{
    const char *name = bg_servers[s->server].name;
    bg_sendf(g, s, BG_S,
             "250-%s\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-VRFY\r\n250-ETRN\r\n"
             "250-STARTTLS\r\n%s250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
             "250-SMTPUTF8\r\n250 CHUNKING\r\n",
             name, s->server == BG_SUBMISSION ? "250-AUTH PLAIN LOGIN\r\n" : "");
}

static void
bg_rcpt_reply(struct bg_sess *s, unsigned i, char *dst, size_t cap)
{
    if (s->reject == i + 1)
        snprintf(dst, cap,
                 "550 5.1.1 <%s@%s>: Recipient address rejected: User unknown in virtual "
                 "mailbox table\r\n",
                 bg_users[s->rcpt_user[i]], bg_rcpt_domain(s->rcpt_dom[i]));
    else
        snprintf(dst, cap, "250 2.1.5 Ok\r\n");
}

/* One exchange of session s: a few packets, then other sessions get their turn. */
static void
bg_step(struct bg_gen *g, struct bg_sess *s)
{
    const char *dom = bg_domains[s->client_dom];
    char a[512], b[512];
    switch (s->step) {
    case BG_ST_HANDSHAKE:
        bg_send(g, s, BG_C, BG_SYN, NULL, 0);
        bg_send(g, s, BG_S, BG_SYN | BG_ACK, NULL, 0);
        bg_send(g, s, BG_C, BG_ACK, NULL, 0);
        s->step = BG_ST_BANNER;
        break;
    case BG_ST_BANNER:
        bg_sendf(g, s, BG_S, "220 %s ESMTP Postfix (Debian/GNU)\r\n", bg_servers[s->server].name);
        s->step = BG_ST_EHLO;
        break;
    case BG_ST_EHLO:
        if (s->auth)
            bg_sendf(g, s, BG_C, "EHLO [10.%u.%u.%u]\r\n", s->client_host % 8, s->client_host,
                     s->client_dom);
        else
            bg_sendf(g, s, BG_C, "EHLO mail%u.%s\r\n", s->client_host % 4, dom);
        bg_ehlo_reply(g, s);
        s->step = s->auth ? BG_ST_AUTH : BG_ST_MAIL;
        break;
    case BG_ST_AUTH: {
        uint8_t cred[160];
        int n = snprintf((char *)cred, sizeof cred, "%c%s@%s%cpw-%08" PRIx64, 0,
                         bg_users[s->client_user], dom, 0, bg_rand(g) >> 32);
        bg_b64_encode(cred, (size_t)n, b, sizeof b);
        bg_sendf(g, s, BG_C, "AUTH PLAIN %s\r\n", b);
        bg_sendf(g, s, BG_S, "235 2.7.0 Authentication successful\r\n");
        s->step = BG_ST_MAIL;
        break;
    }
    case BG_ST_MAIL:
        bg_new_message(g, s);
        if (s->pipelined) {
            /* RFC 2920: the whole envelope in one segment, the replies in one. */
            size_t an = 0, bn = 0;
            an += (size_t)snprintf(a + an, sizeof a - an, "MAIL FROM:<%s@%s> SIZE=%zu\r\n",
                                   bg_users[s->client_user], dom, s->body_len[s->msg]);
            bn += (size_t)snprintf(b + bn, sizeof b - bn, "250 2.1.0 Ok\r\n");
            for (unsigned i = 0; i < s->nrcpt; i++) {
                an += (size_t)snprintf(a + an, sizeof a - an, "RCPT TO:<%s@%s>\r\n",
                                       bg_users[s->rcpt_user[i]], bg_rcpt_domain(s->rcpt_dom[i]));
                bg_rcpt_reply(s, i, b + bn, sizeof b - bn);
                bn += strlen(b + bn);
            }
            an += (size_t)snprintf(a + an, sizeof a - an, "DATA\r\n");
            bn +=
                (size_t)snprintf(b + bn, sizeof b - bn, "354 End data with <CR><LF>.<CR><LF>\r\n");
            bg_send(g, s, BG_C, BG_PSH | BG_ACK, a, an);
            bg_send(g, s, BG_S, BG_PSH | BG_ACK, b, bn);
            if (s->reject)
                g->rejected++;
            bg_build_header(g, s);
            s->step = BG_ST_BODY;
        } else {
            bg_sendf(g, s, BG_C, "MAIL FROM:<%s@%s> SIZE=%zu\r\n", bg_users[s->client_user], dom,
                     s->body_len[s->msg]);
            bg_sendf(g, s, BG_S, "250 2.1.0 Ok\r\n");
            s->step = BG_ST_RCPT;
        }
        break;
    case BG_ST_RCPT:
        bg_sendf(g, s, BG_C, "RCPT TO:<%s@%s>\r\n", bg_users[s->rcpt_user[s->rcpt]],
                 bg_rcpt_domain(s->rcpt_dom[s->rcpt]));
        bg_rcpt_reply(s, s->rcpt, b, sizeof b);
        bg_sendf(g, s, BG_S, "%s", b);
        if (s->reject == s->rcpt + 1)
            g->rejected++;
        if (++s->rcpt == s->nrcpt)
            s->step = BG_ST_DATA;
        break;
    case BG_ST_DATA:
        bg_sendf(g, s, BG_C, "DATA\r\n");
        bg_sendf(g, s, BG_S, "354 End data with <CR><LF>.<CR><LF>\r\n");
        bg_build_header(g, s);
        s->step = BG_ST_BODY;
        break;
    case BG_ST_BODY: {
        /* A burst of full segments, the server acknowledging every second one (RFC 1122
         * 4.2.3.2 delayed ACK), until the message and its final dot are out. */
        unsigned burst = 2 + bg_below(g, 9);
        for (unsigned i = 0; i < burst; i++) {
            size_t at;
            uint8_t *fr = bg_frame(g, s, &at);
            size_t n = bg_body_fill(g, s, fr + at, s->mss);
            int last = s->dot_left == 0;
            bg_finish(g, s, BG_C, BG_ACK | (last ? BG_PSH : 0u), n);
            if (last) {
                s->unacked = 0;
                s->step = BG_ST_QUEUED;
                break;
            }
            if (++s->unacked == 2) {
                bg_send(g, s, BG_S, BG_ACK, NULL, 0);
                s->unacked = 0;
            }
        }
        break;
    }
    case BG_ST_QUEUED:
        bg_sendf(g, s, BG_S, "250 2.0.0 Ok: queued as %011" PRIX64 "\r\n", bg_rand(g) >> 20);
        s->step = ++s->msg < s->nmsgs ? BG_ST_MAIL : BG_ST_QUIT;
        break;
    case BG_ST_QUIT:
        bg_sendf(g, s, BG_C, "QUIT\r\n");
        bg_sendf(g, s, BG_S, "221 2.0.0 Bye\r\n");
        bg_send(g, s, BG_S, BG_FIN | BG_ACK, NULL, 0);
        s->step = BG_ST_CLOSE;
        break;
    case BG_ST_CLOSE:
        bg_send(g, s, BG_C, BG_FIN | BG_ACK, NULL, 0);
        bg_send(g, s, BG_S, BG_ACK, NULL, 0);
        s->step = BG_ST_DONE;
        break;
    case BG_ST_DONE:
    case BG_ST_COUNT:
        break;
    }
}

static void
bg_usage(FILE *f)
{
    fputs("usage: benchgen [--seed N] --size MB [--sessions-concurrent K] [--body-kb KB] "
          "OUT.pcap\n"
          "  --seed N                 random seed (default 1); one seed, one capture\n"
          "  --size MB                approximate file size in MB (10^6 bytes)\n"
          "  --sessions-concurrent K  SMTP sessions open at once (default 200)\n"
          "  --body-kb KB             mean message size in KiB (default 20)\n",
          f);
}

static uint64_t
bg_number(const char *s, uint64_t lo, uint64_t hi, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "benchgen: %s must be a number from %" PRIu64 " to %" PRIu64 "\n", what, lo,
                hi);
        exit(2);
    }
    return v;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"seed", required_argument, NULL, 's'},
        {"size", required_argument, NULL, 'S'},
        {"sessions-concurrent", required_argument, NULL, 'k'},
        {"body-kb", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bg_gen g;
    memset(&g, 0, sizeof g);
    uint64_t seed = 1, size_mb = 0, conc = 200, body_kb = 20;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            seed = bg_number(optarg, 0, UINT64_MAX, "--seed");
            break;
        case 'S':
            size_mb = bg_number(optarg, 1, 1000000, "--size");
            break;
        case 'k':
            conc = bg_number(optarg, 1, 100000, "--sessions-concurrent");
            break;
        case 'b':
            body_kb = bg_number(optarg, 1, 1000000, "--body-kb");
            break;
        case 'h':
            bg_usage(stdout);
            return 0;
        default:
            bg_usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || !size_mb) {
        bg_usage(stderr);
        return 2;
    }
    g.path = argv[optind];
    g.rng = seed ^ UINT64_C(0x626e6368736d7470);
    g.target = size_mb * 1000000;
    g.body_mean = (size_t)body_kb * 1024;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g.out = mem_alloc(BG_OUTBUF);
    struct bg_sess *sess = mem_calloc(conc, sizeof *sess);
    size_t *active = mem_calloc(conc, sizeof *active);
    if (!g.out || !sess || !active || bg_make_pool(&g) < 0) {
        fprintf(stderr, "benchgen: out of memory\n");
        return 1;
    }
    g.f = fopen(g.path, "wb");
    if (!g.f)
        bg_die_io(&g);

    uint8_t *fh = g.out;
    bg_put32le(fh, 0xa1b2c3d4u); /* microsecond pcap */
    fh[4] = 2;                   /* version 2.4 */
    fh[5] = 0;
    fh[6] = 4;
    fh[7] = 0;
    memset(fh + 8, 0, 8);
    bg_put32le(fh + 16, 262144);
    bg_put32le(fh + 20, 1); /* LINKTYPE_ETHERNET */
    g.out_len = 24;
    g.written = 24;

    /* Active sessions live in a dense index so one random draw finds the next to move. */
    size_t nactive = 0;
    for (size_t i = 0; i < conc; i++) {
        if (g.written + g.pending >= g.target && i > 0)
            break;
        bg_start(&g, &sess[i]);
        active[nactive++] = i;
    }
    while (nactive) {
        size_t k = bg_below(&g, (unsigned)nactive);
        struct bg_sess *s = &sess[active[k]];
        bg_step(&g, s);
        if (s->step != BG_ST_DONE)
            continue;
        g.pending -= s->est_left;
        s->est_left = 0;
        /* New connections open until what is written and what the open ones still owe
         * reach the size asked for; then the open ones finish. */
        if (g.written + g.pending < g.target)
            bg_start(&g, s);
        else
            active[k] = active[--nactive];
    }
    bg_flush(&g);
    if (fclose(g.f) != 0)
        bg_die_io(&g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr,
            "benchgen: %" PRIu64 " sessions (%" PRIu64 " IPv6, %" PRIu64 " AUTH, %" PRIu64
            " pipelined), %" PRIu64 " messages, %" PRIu64 " refused recipients, %" PRIu64
            " packets, %.1f MB in %.2f s (%.0f MB/s)\n",
            g.sessions, g.v6, g.auth, g.pipelined, g.messages, g.rejected, g.packets,
            (double)g.written / 1e6, secs, secs > 0 ? (double)g.written / 1e6 / secs : 0.0);
    mem_free(g.pool);
    mem_free(g.out);
    mem_free(sess);
    mem_free(active);
    return 0;
}
