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
#define BG_HDR_MAX 4096u
#define BG_MID_MAX 512u
#define BG_PIECES 6u
#define BG_MAX_RCPT 3u
#define BG_MAX_MSGS 2u

#define BG_C 0 /* client to server */
#define BG_S 1 /* server to client */

#define BG_FIN 0x01u
#define BG_SYN 0x02u
#define BG_RST 0x04u
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
    /* the MX profile's steps */
    BG_ST_STARTTLS,
    BG_ST_TLS,
    BG_ST_AUTH_USER,
    BG_ST_AUTH_PASS,
    BG_ST_CFIN,
    BG_ST_COUNT
};

/* What becomes of an MX profile session (see bg_start_mx). */
enum bg_fate {
    BG_F_DELIVER,
    BG_F_REFUSE,   /* every recipient refused at RCPT */
    BG_F_GREET554, /* refused at the greeting, the client says QUIT */
    BG_F_GREET421, /* refused at the greeting, the server closes */
    BG_F_SCAN,     /* the client reads the banner and closes */
    BG_F_TLS,      /* STARTTLS, then opaque TLS records */
    BG_F_AUTHFAIL, /* 535 to AUTH */
};

/* How the connection ends after the last reply. */
enum bg_close {
    BG_CL_SFIN,  /* QUIT, 221, the server closes first */
    BG_CL_CFIN,  /* QUIT, 221, the client closes first */
    BG_CL_RST,   /* QUIT, 221, the client resets */
    BG_CL_ABORT, /* no QUIT: the client resets after the last reply */
};

/* A run of message bytes: left bytes from base + off, wrapping to base at size. */
struct bg_piece {
    const uint8_t *base;
    size_t size, off, left;
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
    /* the message being sent, as runs of bytes: header block, text, (attachment), ".\r\n" */
    struct bg_piece piece[BG_PIECES];
    unsigned npiece, cur;
    size_t hdr_len;
    /* MX profile */
    enum bg_fate fate;
    enum bg_close close;
    unsigned mech;     /* AUTH: 1 PLAIN, 2 LOGIN */
    unsigned relay;    /* recipients in other domains: refused as relaying */
    unsigned helo;     /* HELO instead of EHLO */
    unsigned tls_left; /* TLS exchanges still to come */
    unsigned tls_hs;   /* the TLS handshake's records are out */
    char hdr[BG_HDR_MAX];
    char mid[BG_MID_MAX];
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
    int mx;             /* --profile mx */
    int mime;           /* --mime: header blocks and MIME bodies of real mail */
    uint64_t max_sess;  /* --sessions: stop opening connections after this many; 0 = no limit */
    uint8_t *b64pool;   /* base64 lines of 76 characters for attachments */
    size_t b64pool_len; /* a whole number of 78-byte lines */
    uint64_t greet_refused, refused_sessions, tls, auth_failed, resets;
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

static void
bg_piece_add(struct bg_sess *s, const uint8_t *base, size_t size, size_t off, size_t left)
{
    if (s->npiece == BG_PIECES) {
        fprintf(stderr, "benchgen: internal error: too many pieces\n");
        abort();
    }
    s->piece[s->npiece++] = (struct bg_piece){base, size, off, left};
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
    s->npiece = 0;
    s->cur = 0;
    bg_piece_add(s, (const uint8_t *)s->hdr, s->hdr_len, 0, s->hdr_len);
    bg_piece_add(s, g->pool, g->pool_len, off, want + extra);
    bg_piece_add(s, (const uint8_t *)".\r\n", 3, 0, 3);
}

/* Fills one segment of the message from its pieces; sets *done once the last byte is out. */
static size_t
bg_body_fill(struct bg_sess *s, uint8_t *dst, size_t room, int *done)
{
    size_t n = 0;
    while (n < room && s->cur < s->npiece) {
        struct bg_piece *p = &s->piece[s->cur];
        if (!p->left) {
            s->cur++;
            continue;
        }
        size_t k = p->size - p->off;
        k = k < p->left ? k : p->left;
        k = k < room - n ? k : room - n;
        memcpy(dst + n, p->base + p->off, k);
        n += k;
        p->left -= k;
        p->off += k;
        if (p->off == p->size)
            p->off = 0;
    }
    while (s->cur < s->npiece && !s->piece[s->cur].left)
        s->cur++;
    *done = s->cur == s->npiece;
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

static void bg_message_start(struct bg_gen *g, struct bg_sess *s);

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
            bg_message_start(g, s);
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
        bg_message_start(g, s);
        s->step = BG_ST_BODY;
        break;
    case BG_ST_BODY: {
        /* A burst of full segments, the server acknowledging every second one (RFC 1122
         * 4.2.3.2 delayed ACK), until the message and its final dot are out. */
        unsigned burst = 2 + bg_below(g, 9);
        for (unsigned i = 0; i < burst; i++) {
            size_t at;
            uint8_t *fr = bg_frame(g, s, &at);
            int last;
            size_t n = bg_body_fill(s, fr + at, s->mss, &last);
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
    case BG_ST_STARTTLS:
    case BG_ST_TLS:
    case BG_ST_AUTH_USER:
    case BG_ST_AUTH_PASS:
    case BG_ST_CFIN:
    case BG_ST_COUNT:
        break;
    }
}

/* ---- Mail-like bodies (--mime) ------------------------------------------------------- */

#define BG_B64_LINE 76u
#define BG_B64_LINES 4096u

/* Base64 lines for attachments: 76 characters and CRLF (RFC 2045 6.8), as mailers write. */
static int
bg_make_b64pool(struct bg_gen *g)
{
    g->b64pool_len = (size_t)BG_B64_LINES * (BG_B64_LINE + 2);
    g->b64pool = mem_alloc(g->b64pool_len);
    if (!g->b64pool)
        return -1;
    char line[BG_B64_LINE + 1];
    for (size_t i = 0; i < BG_B64_LINES; i++) {
        bg_b64_random(g, line, BG_B64_LINE);
        memcpy(g->b64pool + i * (BG_B64_LINE + 2), line, BG_B64_LINE);
        memcpy(g->b64pool + i * (BG_B64_LINE + 2) + BG_B64_LINE, "\r\n", 2);
    }
    return 0;
}

static const char *const bg_attach[][3] = {
    {"application/pdf", "invoice-", "pdf"},
    {"application/pdf", "statement-", "pdf"},
    {"image/jpeg", "IMG_", "jpg"},
    {"image/png", "screenshot-", "png"},
    {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "figures-", "xlsx"},
    {"text/calendar", "invite-", "ics"},
};
#define BG_NATTACH (sizeof bg_attach / sizeof bg_attach[0])

/* Appends with a format to the buffer dst of cap bytes holding *n; aborts on overflow (the
 * buffers are sized for the longest header block we write). */
static void bg_cat(char *dst, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
bg_cat(char *dst, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(dst + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap - *n) {
        fprintf(stderr, "benchgen: internal error: header block too long\n");
        abort();
    }
    *n += (size_t)k;
}

static const char *bg_rdom(const struct bg_sess *s, unsigned i);

/* A message as an MX receives it: a Received chain (ours on top), DKIM now and then, the
 * usual RFC 5322 fields and, in most messages, a multipart/mixed body (RFC 2046 5.1) of a
 * text part and a base64 attachment; the text is ordinary lines from the pool. */
static void
bg_build_mime(struct bg_gen *g, struct bg_sess *s)
{
    char date[64], qid[16], bnd[40];
    time_t now = (time_t)(BG_T0_S + g->t_us / 1000000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    const char *dom = bg_domains[s->client_dom];
    const char *user = bg_users[s->client_user];
    unsigned r0 = s->rcpt_user[0];
    const char *rdom = bg_rdom(s, 0);
    const uint8_t *ca = s->addr[BG_C];
    char *h = s->hdr;
    size_t n = 0, cap = sizeof s->hdr;

    snprintf(qid, sizeof qid, "%010" PRIX64, bg_rand(g) >> 24);
    if (s->v6)
        bg_cat(h, cap, &n,
               "Received: from mail%u.%s (mail%u.%s [IPv6:2001:db8:1000::%02x%02x])\r\n",
               s->client_host % 4, dom, s->client_host % 4, dom, ca[14], ca[15]);
    else
        bg_cat(h, cap, &n, "Received: from mail%u.%s (mail%u.%s [%u.%u.%u.%u])\r\n",
               s->client_host % 4, dom, s->client_host % 4, dom, ca[0], ca[1], ca[2], ca[3]);
    bg_cat(h, cap, &n, "\tby %s (Postfix) with ESMTP%s id %s\r\n\tfor <%s@%s>; %s\r\n",
           bg_servers[s->server].name, s->auth ? "SA" : "S", qid, bg_users[r0], rdom, date);
    unsigned hops = bg_below(g, 3);
    for (unsigned i = 0; i < hops; i++) {
        snprintf(qid, sizeof qid, "%010" PRIX64, bg_rand(g) >> 24);
        bg_cat(h, cap, &n,
               "Received: from [10.%u.%u.%u] (helo=ws%u.%s)\r\n"
               "\tby mail%u.%s with esmtpsa (TLS1.3) id %s; %s\r\n",
               i, s->client_host, s->client_dom, s->client_host + i, dom, s->client_host % 4, dom,
               qid, date);
    }
    if (bg_chance(g, 60)) {
        char b[4][80], bh[48];
        for (int i = 0; i < 4; i++)
            bg_b64_random(g, b[i], i == 3 ? 22 : 72);
        bg_b64_random(g, bh, 43);
        bg_cat(h, cap, &n,
               "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s;\r\n"
               "\ts=s2024; t=%lld; bh=%s=;\r\n"
               "\th=From:To:Subject:Date:Message-ID:MIME-Version:Content-Type;\r\n"
               "\tb=%s\r\n\t %s\r\n\t %s\r\n\t %s==\r\n",
               dom, (long long)now, bh, b[0], b[1], b[2], b[3]);
    }
    bg_cat(h, cap, &n, "From: %s <%s@%s>\r\nTo: %s <%s@%s>\r\n", bg_names[s->client_user], user,
           dom, bg_names[r0], bg_users[r0], rdom);
    if (s->nrcpt > 1)
        bg_cat(h, cap, &n, "Cc: %s@%s\r\n", bg_users[s->rcpt_user[1]], bg_rdom(s, 1));
    bg_cat(h, cap, &n,
           "Subject: %s\r\nDate: %s\r\nMessage-ID: <%016" PRIx64 ".%" PRIu64
           "@%s>\r\nMIME-Version: 1.0\r\n",
           bg_subjects[bg_below(g, BG_NSUBJECTS)], date, bg_rand(g), g->messages, dom);
    int multi = bg_chance(g, 60);
    snprintf(bnd, sizeof bnd, "=_Part_%" PRIu64 "_%08" PRIx64, g->messages, bg_rand(g) >> 32);
    if (multi)
        bg_cat(h, cap, &n,
               "Content-Type: multipart/mixed;\r\n\tboundary=\"%s\"\r\nX-Mailer: %s\r\n\r\n"
               "This is a multi-part message in MIME format.\r\n\r\n--%s\r\n"
               "Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n",
               bnd, bg_mailers[bg_below(g, BG_NMAILERS)], bnd);
    else
        bg_cat(h, cap, &n,
               "Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
               "Content-Transfer-Encoding: 8bit\r\nX-Mailer: %s\r\n\r\n",
               bg_mailers[bg_below(g, BG_NMAILERS)]);
    s->hdr_len = n;

    size_t mid = 0;
    if (multi) {
        unsigned a = bg_below(g, BG_NATTACH);
        char fname[64];
        snprintf(fname, sizeof fname, "%s%u.%s", bg_attach[a][1], 1000 + bg_below(g, 9000),
                 bg_attach[a][2]);
        bg_cat(s->mid, sizeof s->mid, &mid,
               "\r\n--%s\r\nContent-Type: %s;\r\n\tname=\"%s\"\r\n"
               "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n",
               bnd, bg_attach[a][0], fname, fname);
        /* the closing delimiter goes after the base64 lines, from the same buffer */
        bg_cat(s->mid, sizeof s->mid, &mid, "--%s--\r\n", bnd);
    }
    size_t closing = multi ? strlen(bnd) + 6 : 0;

    /* What is left of the body size after the fixed parts: text, and the attachment's
     * share (60 %) of it in a multipart message; at least one line of each. */
    size_t body = s->body_len[s->msg];
    size_t fixed = s->hdr_len + mid + 3;
    size_t rest = body > fixed + 80 ? body - fixed : 80;
    size_t want = multi ? rest * 2 / 5 : rest;
    size_t lines = multi ? (rest - want) / (BG_B64_LINE + 2) : 0;
    if (multi && !lines)
        lines = 1;
    if (lines > BG_B64_LINES)
        lines = BG_B64_LINES;
    size_t off = bg_below(g, (unsigned)g->pool_len);
    const uint8_t *nl = memchr(g->pool + off, '\n', g->pool_len - off);
    off = nl ? (size_t)(nl - g->pool) + 1 : 0;
    if (off >= g->pool_len)
        off = 0;
    size_t end = (off + want) % g->pool_len;
    nl = memchr(g->pool + end, '\n', g->pool_len - end);
    size_t extra = nl ? (size_t)(nl - (g->pool + end)) + 1 : g->pool_len - end;

    s->npiece = 0;
    s->cur = 0;
    bg_piece_add(s, (const uint8_t *)s->hdr, s->hdr_len, 0, s->hdr_len);
    bg_piece_add(s, g->pool, g->pool_len, off, want + extra);
    if (multi) {
        size_t first = bg_below(g, BG_B64_LINES) * (size_t)(BG_B64_LINE + 2);
        bg_piece_add(s, (const uint8_t *)s->mid, mid - closing, 0, mid - closing);
        bg_piece_add(s, g->b64pool, g->b64pool_len, first, lines * (BG_B64_LINE + 2));
        bg_piece_add(s, (const uint8_t *)s->mid + mid - closing, closing, 0, closing);
    }
    bg_piece_add(s, (const uint8_t *)".\r\n", 3, 0, 3);
}

static void
bg_message_start(struct bg_gen *g, struct bg_sess *s)
{
    if (g->mime)
        bg_build_mime(g, s);
    else
        bg_build_header(g, s);
}

/* ---- The MX profile ----------------------------------------------------------------- */

/* Recipient domain of recipient i: ours, or a stranger's when the client tries to relay. */
static const char *
bg_rdom(const struct bg_sess *s, unsigned i)
{
    return s->relay ? bg_domains[(s->rcpt_dom[i] + s->client_dom + 1) % BG_NDOMAINS]
                    : bg_rcpt_domain(s->rcpt_dom[i]);
}

/* A connection to a site's MX as it is on most days: mostly refused (unknown users, relay
 * attempts, blocked hosts at the greeting, failed logins), some small deliveries, some
 * STARTTLS after which only TLS records are seen. */
static void
bg_start_mx(struct bg_gen *g, struct bg_sess *s)
{
    memset(s, 0, offsetof(struct bg_sess, hdr));
    g->sessions++;
    g->next_id++;
    s->v6 = bg_chance(g, 10);
    unsigned f = bg_below(g, 100);
    s->fate = f < 5    ? BG_F_GREET554
              : f < 8  ? BG_F_GREET421
              : f < 11 ? BG_F_SCAN
              : f < 21 ? BG_F_TLS
              : f < 24 ? BG_F_AUTHFAIL
              : f < 29 ? BG_F_DELIVER /* submission, after AUTH */
              : f < 47 ? BG_F_DELIVER
                       : BG_F_REFUSE;
    s->auth = s->fate == BG_F_AUTHFAIL || (f >= 24 && f < 29);
    s->mech = 1 + bg_below(g, 2);
    s->relay = s->fate == BG_F_REFUSE && bg_chance(g, 30);
    s->helo = !s->auth && bg_chance(g, 8);
    s->pipelined = !s->helo && bg_chance(g, 35);
    unsigned c = bg_below(g, 100);
    s->close = c < 60 ? BG_CL_SFIN : c < 80 ? BG_CL_CFIN : BG_CL_RST;
    if ((s->fate == BG_F_REFUSE || s->fate == BG_F_AUTHFAIL) && bg_chance(g, 15))
        s->close = BG_CL_ABORT;
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
        uint32_t a = (198u << 24) | (18u << 16) | (uint32_t)bg_below(g, 1u << 17);
        bg_put32(s->addr[BG_C], a);
        memcpy(s->addr[BG_S], sv->v4, 4);
    }
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
    s->nmsgs = s->fate == BG_F_DELIVER && bg_chance(g, 8) ? 2 : 1;
    s->est_left = s->fate == BG_F_TLS ? 9000 : 2200;
    if (s->fate == BG_F_DELIVER) {
        for (unsigned i = 0; i < s->nmsgs; i++) {
            /* 1-3 KB: what most mail to a site's users is, once the big ones are left out */
            s->body_len[i] = 1024 + bg_below(g, 2049);
            s->est_left += bg_estimate(s, s->body_len[i]) + 600;
        }
    }
    g->pending += s->est_left;
    if (s->auth)
        g->auth++;
    if (s->pipelined)
        g->pipelined++;
    if (s->fate == BG_F_GREET554 || s->fate == BG_F_GREET421)
        g->greet_refused++;
    if (s->fate == BG_F_TLS)
        g->tls++;
    if (s->fate == BG_F_AUTHFAIL)
        g->auth_failed++;
    if (s->fate == BG_F_REFUSE)
        g->refused_sessions++;
    s->step = BG_ST_HANDSHAKE;
}

static void
bg_new_message_mx(struct bg_gen *g, struct bg_sess *s)
{
    s->nrcpt = 1 + bg_below(g, BG_MAX_RCPT);
    for (unsigned i = 0; i < s->nrcpt; i++) {
        s->rcpt_user[i] = bg_below(g, BG_NUSERS);
        s->rcpt_dom[i] = bg_below(g, 3);
    }
    s->reject = (s->nrcpt > 1 && bg_chance(g, 15)) ? 1 + 1 + bg_below(g, s->nrcpt - 1) : 0;
    s->rcpt = 0;
    if (s->fate == BG_F_DELIVER)
        g->messages++;
}

static void bg_rcpt_addr(const struct bg_sess *s, unsigned i, char *dst, size_t cap);

static void
bg_rcpt_reply_mx(struct bg_gen *g, struct bg_sess *s, unsigned i, char *dst, size_t cap)
{
    char u[96];
    bg_rcpt_addr(s, i, u, sizeof u);
    if (s->fate == BG_F_REFUSE && s->relay)
        snprintf(dst, cap, "554 5.7.1 <%s>: Relay access denied\r\n", u);
    else if (s->fate == BG_F_REFUSE || s->reject == i + 1)
        snprintf(dst, cap,
                 "550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual "
                 "mailbox table\r\n",
                 u);
    else {
        snprintf(dst, cap, "250 2.1.5 Ok\r\n");
        return;
    }
    g->rejected++;
}

/* The recipient's address: a real user's, or for unknown ones a guessed name (a dictionary
 * attack, as most of them are). */
static void
bg_rcpt_addr(const struct bg_sess *s, unsigned i, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s%s@%s", bg_users[s->rcpt_user[i]],
             s->fate == BG_F_REFUSE && !s->relay ? ".j" : "", bg_rdom(s, i));
}

/* Random bytes after a TLS record header (RFC 8446 5.1), cut into segments. */
static void
bg_send_record(struct bg_gen *g, struct bg_sess *s, int dir, uint8_t type, size_t len)
{
    uint8_t hdr[5] = {type, 3, 3, (uint8_t)(len >> 8), (uint8_t)len};
    size_t done = 0, total = len + 5;
    while (done < total) {
        size_t at;
        uint8_t *fr = bg_frame(g, s, &at);
        size_t k = total - done < s->mss ? total - done : s->mss;
        for (size_t i = 0; i < k; i++) {
            size_t pos = done + i;
            fr[at + i] = pos < 5 ? hdr[pos] : (uint8_t)(bg_rand(g) >> 56);
        }
        done += k;
        bg_finish(g, s, dir, BG_ACK | (done == total ? BG_PSH : 0u), k);
    }
}

/* TLS 1.3 hellos with the fields a dissector looks at (RFC 8446 4.1.2, 4.1.3): version,
 * SNI, key share; then the encrypted records are opaque. */
static void
bg_send_hello(struct bg_gen *g, struct bg_sess *s, int dir)
{
    uint8_t m[600];
    size_t n = 9; /* record header and handshake header, filled in below */
    m[n++] = 3;
    m[n++] = 3;
    for (int i = 0; i < 32 + 1 + 32; i++)
        m[n++] = (uint8_t)(bg_rand(g) >> 56);
    m[9 + 2 + 32] = 32; /* legacy session id length */
    if (dir == BG_C) {
        static const uint8_t suites[] = {0, 8, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2f};
        memcpy(m + n, suites, sizeof suites);
        n += sizeof suites;
        m[n++] = 1; /* compression methods */
        m[n++] = 0;
    } else {
        m[n++] = 0x13;
        m[n++] = 0x01;
        m[n++] = 0;
    }
    size_t ext = n;
    n += 2;
    if (dir == BG_C) {
        const char *sni = bg_servers[s->server].name;
        size_t l = strlen(sni);
        uint8_t e[] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
        bg_put16(e + 2, (uint32_t)(l + 5));
        bg_put16(e + 4, (uint32_t)(l + 3));
        bg_put16(e + 7, (uint32_t)l);
        memcpy(m + n, e, sizeof e);
        n += sizeof e;
        memcpy(m + n, sni, l);
        n += l;
        static const uint8_t sv[] = {0x00, 0x2b, 0, 3, 2, 3, 4};
        memcpy(m + n, sv, sizeof sv);
        n += sizeof sv;
        static const uint8_t ks[] = {0x00, 0x33, 0, 38, 0, 36, 0, 0x1d, 0, 32};
        memcpy(m + n, ks, sizeof ks);
        n += sizeof ks;
    } else {
        static const uint8_t sv[] = {0x00, 0x2b, 0, 2, 3, 4};
        memcpy(m + n, sv, sizeof sv);
        n += sizeof sv;
        static const uint8_t ks[] = {0x00, 0x33, 0, 36, 0, 0x1d, 0, 32};
        memcpy(m + n, ks, sizeof ks);
        n += sizeof ks;
    }
    for (int i = 0; i < 32; i++)
        m[n++] = (uint8_t)(bg_rand(g) >> 56);
    bg_put16(m + ext, (uint32_t)(n - ext - 2));
    m[0] = 0x16;
    m[1] = 3;
    m[2] = 1;
    bg_put16(m + 3, (uint32_t)(n - 5));
    m[5] = dir == BG_C ? 1 : 2;
    m[6] = 0;
    bg_put16(m + 7, (uint32_t)(n - 9));
    if (dir == BG_S) {
        /* the server's flight goes on in the same segment: change_cipher_spec */
        static const uint8_t ccs[] = {0x14, 3, 3, 0, 1, 1};
        memcpy(m + n, ccs, sizeof ccs);
        n += sizeof ccs;
    }
    bg_send(g, s, dir, BG_PSH | BG_ACK, (const char *)m, n);
}

/* After the last reply: QUIT and the close the session was dealt. */
static void
bg_quit_mx(struct bg_gen *g, struct bg_sess *s)
{
    if (s->close == BG_CL_ABORT) {
        bg_send(g, s, BG_C, BG_RST | BG_ACK, NULL, 0);
        g->resets++;
        s->step = BG_ST_DONE;
        return;
    }
    s->step = BG_ST_QUIT;
}

static void
bg_auth_result(struct bg_gen *g, struct bg_sess *s)
{
    if (s->fate == BG_F_AUTHFAIL) {
        bg_sendf(g, s, BG_S, "535 5.7.8 Error: authentication failed: authentication failure\r\n");
        bg_quit_mx(g, s);
    } else {
        bg_sendf(g, s, BG_S, "235 2.7.0 Authentication successful\r\n");
        s->step = BG_ST_MAIL;
    }
}

static void
bg_step_mx(struct bg_gen *g, struct bg_sess *s)
{
    const char *dom = bg_domains[s->client_dom];
    const char *name = bg_servers[s->server].name;
    char a[768], b[768], r[256], ip[48];
    if (s->v6)
        snprintf(ip, sizeof ip, "2001:db8:1000:%02x%02x:%02x%02x:%02x%02x:%02x%02x:%02x%02x",
                 s->addr[BG_C][6], s->addr[BG_C][7], s->addr[BG_C][8], s->addr[BG_C][9],
                 s->addr[BG_C][10], s->addr[BG_C][11], s->addr[BG_C][12], s->addr[BG_C][13],
                 s->addr[BG_C][14], s->addr[BG_C][15]);
    else
        snprintf(ip, sizeof ip, "%u.%u.%u.%u", s->addr[BG_C][0], s->addr[BG_C][1], s->addr[BG_C][2],
                 s->addr[BG_C][3]);
    switch (s->step) {
    case BG_ST_HANDSHAKE:
        bg_send(g, s, BG_C, BG_SYN, NULL, 0);
        bg_send(g, s, BG_S, BG_SYN | BG_ACK, NULL, 0);
        bg_send(g, s, BG_C, BG_ACK, NULL, 0);
        s->step = BG_ST_BANNER;
        break;
    case BG_ST_BANNER:
        if (s->fate == BG_F_GREET554) {
            bg_sendf(g, s, BG_S,
                     "554 5.7.1 %s ESMTP not accepting mail from %s: listed at zen.example\r\n",
                     name, ip);
            s->step = BG_ST_QUIT;
        } else if (s->fate == BG_F_GREET421) {
            bg_sendf(g, s, BG_S, "421 4.7.0 %s Error: too many connections from %s\r\n", name, ip);
            bg_send(g, s, BG_S, BG_FIN | BG_ACK, NULL, 0);
            s->step = BG_ST_CLOSE;
        } else {
            bg_sendf(g, s, BG_S, "220 %s ESMTP Postfix (Debian/GNU)\r\n", name);
            s->step = s->fate == BG_F_SCAN ? BG_ST_CFIN : BG_ST_EHLO;
        }
        break;
    case BG_ST_EHLO:
        if (s->helo) {
            bg_sendf(g, s, BG_C, "HELO mail%u.%s\r\n", s->client_host % 4, dom);
            bg_sendf(g, s, BG_S, "250 %s\r\n", name);
        } else {
            if (s->auth)
                bg_sendf(g, s, BG_C, "EHLO [10.%u.%u.%u]\r\n", s->client_host % 8, s->client_host,
                         s->client_dom);
            else
                bg_sendf(g, s, BG_C, "EHLO mail%u.%s\r\n", s->client_host % 4, dom);
            bg_ehlo_reply(g, s);
        }
        s->step = s->fate == BG_F_TLS ? BG_ST_STARTTLS : s->auth ? BG_ST_AUTH : BG_ST_MAIL;
        break;
    case BG_ST_STARTTLS:
        bg_sendf(g, s, BG_C, "STARTTLS\r\n");
        bg_sendf(g, s, BG_S, "220 2.0.0 Ready to start TLS\r\n");
        bg_send_hello(g, s, BG_C);
        s->tls_left = 4 + bg_below(g, 6);
        s->step = BG_ST_TLS;
        break;
    case BG_ST_TLS:
        if (!s->tls_hs) {
            /* first visit: the server's flight (hello, then certificate and the rest
             * encrypted), the client's finished */
            bg_send_hello(g, s, BG_S);
            bg_send_record(g, s, BG_S, 0x17, 2400 + bg_below(g, 1600));
            bg_send_record(g, s, BG_C, 0x14, 1);
            bg_send_record(g, s, BG_C, 0x17, 53);
            s->tls_hs = 1;
        } else if (s->tls_left > 1) {
            /* encrypted SMTP: a command, then its reply; the message is the larger one */
            bg_send_record(g, s, BG_C, 0x17,
                           s->tls_left == 2 ? 1024 + bg_below(g, 3000) : 20 + bg_below(g, 60));
            bg_send_record(g, s, BG_S, 0x17, 20 + bg_below(g, 120));
            s->tls_left--;
        } else {
            /* close_notify alerts and the close */
            bg_send_record(g, s, BG_C, 0x17, 19);
            bg_send(g, s, BG_S, BG_ACK, NULL, 0);
            if (s->close == BG_CL_RST) {
                bg_send(g, s, BG_C, BG_RST | BG_ACK, NULL, 0);
                g->resets++;
            } else {
                bg_send(g, s, BG_C, BG_FIN | BG_ACK, NULL, 0);
            }
            s->step = s->close == BG_CL_RST ? BG_ST_DONE : BG_ST_CFIN;
            if (s->step == BG_ST_CFIN) {
                bg_send_record(g, s, BG_S, 0x17, 19);
                bg_send(g, s, BG_S, BG_FIN | BG_ACK, NULL, 0);
                bg_send(g, s, BG_C, BG_ACK, NULL, 0);
                s->step = BG_ST_DONE;
            }
        }
        break;
    case BG_ST_AUTH: {
        uint8_t cred[160];
        int n = snprintf((char *)cred, sizeof cred, "%c%s@%s%cpw-%08" PRIx64, 0,
                         bg_users[s->client_user], dom, 0, bg_rand(g) >> 32);
        if (s->mech == 1) {
            bg_b64_encode(cred, (size_t)n, b, sizeof b);
            bg_sendf(g, s, BG_C, "AUTH PLAIN %s\r\n", b);
            bg_auth_result(g, s);
            break;
        }
        bg_sendf(g, s, BG_C, "AUTH LOGIN\r\n");
        bg_sendf(g, s, BG_S, "334 VXNlcm5hbWU6\r\n");
        s->step = BG_ST_AUTH_USER;
        break;
    }
    case BG_ST_AUTH_USER: {
        int n = snprintf(a, sizeof a, "%s@%s", bg_users[s->client_user], dom);
        bg_b64_encode((const uint8_t *)a, (size_t)n, b, sizeof b);
        bg_sendf(g, s, BG_C, "%s\r\n", b);
        bg_sendf(g, s, BG_S, "334 UGFzc3dvcmQ6\r\n");
        s->step = BG_ST_AUTH_PASS;
        break;
    }
    case BG_ST_AUTH_PASS: {
        int n = snprintf(a, sizeof a, "pw-%08" PRIx64, bg_rand(g) >> 32);
        bg_b64_encode((const uint8_t *)a, (size_t)n, b, sizeof b);
        bg_sendf(g, s, BG_C, "%s\r\n", b);
        bg_auth_result(g, s);
        break;
    }
    case BG_ST_MAIL: {
        bg_new_message_mx(g, s);
        if (bg_chance(g, 5))
            snprintf(r, sizeof r, "MAIL FROM:<>");
        else
            snprintf(r, sizeof r, "MAIL FROM:<%s@%s>", bg_users[s->client_user], dom);
        if (s->fate == BG_F_DELIVER)
            snprintf(r + strlen(r), sizeof r - strlen(r), " SIZE=%zu", s->body_len[s->msg]);
        if (s->pipelined) {
            size_t an = 0, bn = 0, accepted = 0;
            char addr[96];
            bg_cat(a, sizeof a, &an, "%s\r\n", r);
            bg_cat(b, sizeof b, &bn, "250 2.1.0 Ok\r\n");
            for (unsigned i = 0; i < s->nrcpt; i++) {
                bg_rcpt_addr(s, i, addr, sizeof addr);
                bg_cat(a, sizeof a, &an, "RCPT TO:<%s>\r\n", addr);
                bg_rcpt_reply_mx(g, s, i, b + bn, sizeof b - bn);
                accepted += b[bn] == '2';
                bn += strlen(b + bn);
            }
            bg_cat(a, sizeof a, &an, "DATA\r\n");
            if (accepted)
                bg_cat(b, sizeof b, &bn, "354 End data with <CR><LF>.<CR><LF>\r\n");
            else
                bg_cat(b, sizeof b, &bn, "554 5.5.1 Error: no valid recipients\r\n");
            bg_send(g, s, BG_C, BG_PSH | BG_ACK, a, an);
            bg_send(g, s, BG_S, BG_PSH | BG_ACK, b, bn);
            if (accepted) {
                bg_message_start(g, s);
                s->step = BG_ST_BODY;
            } else {
                bg_quit_mx(g, s);
            }
        } else {
            bg_sendf(g, s, BG_C, "%s\r\n", r);
            bg_sendf(g, s, BG_S, "250 2.1.0 Ok\r\n");
            s->step = BG_ST_RCPT;
        }
        break;
    }
    case BG_ST_RCPT: {
        char addr[96];
        bg_rcpt_addr(s, s->rcpt, addr, sizeof addr);
        bg_sendf(g, s, BG_C, "RCPT TO:<%s>\r\n", addr);
        bg_rcpt_reply_mx(g, s, s->rcpt, b, sizeof b);
        bg_sendf(g, s, BG_S, "%s", b);
        if (++s->rcpt == s->nrcpt) {
            if (s->fate == BG_F_DELIVER)
                s->step = BG_ST_DATA;
            else
                bg_quit_mx(g, s);
        }
        break;
    }
    case BG_ST_DATA:
        bg_sendf(g, s, BG_C, "DATA\r\n");
        bg_sendf(g, s, BG_S, "354 End data with <CR><LF>.<CR><LF>\r\n");
        bg_message_start(g, s);
        s->step = BG_ST_BODY;
        break;
    case BG_ST_BODY:
    case BG_ST_QUEUED:
        bg_step(g, s);
        break;
    case BG_ST_QUIT:
        bg_sendf(g, s, BG_C, "QUIT\r\n");
        bg_sendf(g, s, BG_S, "221 2.0.0 Bye\r\n");
        if (s->close == BG_CL_RST) {
            bg_send(g, s, BG_C, BG_RST | BG_ACK, NULL, 0);
            g->resets++;
            s->step = BG_ST_DONE;
        } else if (s->close == BG_CL_CFIN) {
            s->step = BG_ST_CFIN;
        } else {
            bg_send(g, s, BG_S, BG_FIN | BG_ACK, NULL, 0);
            s->step = BG_ST_CLOSE;
        }
        break;
    case BG_ST_CFIN:
        bg_send(g, s, BG_C, BG_FIN | BG_ACK, NULL, 0);
        bg_send(g, s, BG_S, BG_FIN | BG_ACK, NULL, 0);
        bg_send(g, s, BG_C, BG_ACK, NULL, 0);
        s->step = BG_ST_DONE;
        break;
    case BG_ST_CLOSE:
        bg_step(g, s);
        break;
    case BG_ST_DONE:
    case BG_ST_COUNT:
        break;
    }
}

static void
bg_usage(FILE *f)
{
    fputs("usage: benchgen [--seed N] {--size MB | --sessions N} [--profile bulk|mx] [--mime]\n"
          "                [--sessions-concurrent K] [--body-kb KB] OUT.pcap\n"
          "  --seed N                 random seed (default 1); one seed, one capture\n"
          "  --size MB                approximate file size in MB (10^6 bytes)\n"
          "  --sessions N             stop after N connections (with --size: whichever first)\n"
          "  --profile P              bulk (default): every session delivers mail of about\n"
          "                           --body-kb; mx: what a site's MX sees, mostly refused\n"
          "                           sessions (RCPT, greeting, AUTH), STARTTLS, small mail\n"
          "  --mime                   bodies like real mail: Received chain, MIME multipart\n"
          "                           with a text part and a base64 attachment (mx: always)\n"
          "  --sessions-concurrent K  SMTP sessions open at once (default 200)\n"
          "  --body-kb KB             mean message size in KiB (default 20; bulk profile)\n",
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
        {"profile", required_argument, NULL, 'p'},
        {"mime", no_argument, NULL, 'm'},
        {"sessions", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bg_gen g;
    memset(&g, 0, sizeof g);
    uint64_t seed = 1, size_mb = 0, conc = 200, body_kb = 20;
    int c, have_max = 0;
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
        case 'p':
            if (strcmp(optarg, "mx") == 0) {
                g.mx = 1;
            } else if (strcmp(optarg, "bulk") == 0) {
                g.mx = 0;
            } else {
                fprintf(stderr, "benchgen: --profile must be bulk or mx\n");
                return 2;
            }
            break;
        case 'm':
            g.mime = 1;
            break;
        case 'n':
            g.max_sess = bg_number(optarg, 0, UINT64_MAX / 2, "--sessions");
            have_max = 1;
            break;
        case 'h':
            bg_usage(stdout);
            return 0;
        default:
            bg_usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || (!size_mb && !have_max)) {
        bg_usage(stderr);
        return 2;
    }
    g.path = argv[optind];
    g.rng = seed ^ UINT64_C(0x626e6368736d7470);
    g.target = size_mb ? size_mb * 1000000 : UINT64_MAX / 2;
    if (!have_max)
        g.max_sess = UINT64_MAX;
    if (g.mx)
        g.mime = 1;
    g.body_mean = (size_t)body_kb * 1024;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    g.out = mem_alloc(BG_OUTBUF);
    struct bg_sess *sess = mem_calloc(conc, sizeof *sess);
    size_t *active = mem_calloc(conc, sizeof *active);
    if (!g.out || !sess || !active || bg_make_pool(&g) < 0 || (g.mime && bg_make_b64pool(&g) < 0)) {
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
        if ((g.written + g.pending >= g.target && i > 0) || g.sessions >= g.max_sess)
            break;
        if (g.mx)
            bg_start_mx(&g, &sess[i]);
        else
            bg_start(&g, &sess[i]);
        active[nactive++] = i;
    }
    while (nactive) {
        size_t k = bg_below(&g, (unsigned)nactive);
        struct bg_sess *s = &sess[active[k]];
        if (g.mx)
            bg_step_mx(&g, s);
        else
            bg_step(&g, s);
        if (s->step != BG_ST_DONE)
            continue;
        g.pending -= s->est_left;
        s->est_left = 0;
        /* New connections open until what is written and what the open ones still owe
         * reach the size asked for; then the open ones finish. */
        if (g.written + g.pending < g.target && g.sessions < g.max_sess) {
            if (g.mx)
                bg_start_mx(&g, s);
            else
                bg_start(&g, s);
        } else
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
    if (g.mx)
        fprintf(stderr,
                "benchgen: mx profile: %" PRIu64 " refused at the greeting, %" PRIu64
                " with every recipient refused, %" PRIu64 " failed AUTH, %" PRIu64
                " STARTTLS, %" PRIu64 " ended by the client's RST\n",
                g.greet_refused, g.refused_sessions, g.auth_failed, g.tls, g.resets);
    mem_free(g.b64pool);
    mem_free(g.pool);
    mem_free(g.out);
    mem_free(sess);
    mem_free(active);
    return 0;
}
