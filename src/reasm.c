/* reasm.c - libnids glue: every decoded IP packet goes to nids_pcap_handler through a
 * DLT_RAW handle we own; IPv6 segments are re-expressed as IPv4 with synthetic addresses
 * (v6map); raw segments are watched for what libnids never reports (RFC 793 handshake,
 * RST, TTLs), and holes in the capture are filled so streams never stall (the filled
 * ranges are reported as gaps, never as data). Connections whose handshake is not captured
 * get a synthetic one, and segments libnids would drop although the capture holds them
 * are admitted (see "what libnids would drop"). */
#include "reasm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <nids.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "mem.h"
#include "v6map.h"

/* libnids keeps the out-of-order queue as a list of these; its layout is fixed in
 * libnids' tcp.h (1.2x) but not exported. We only read seq of the first element to
 * know where the queued data begins, so a hole is filled up to it and no further. */
struct reasm_nids_skbuff {
    struct reasm_nids_skbuff *next, *prev;
    void *data;
    u_int len, truesize, urg_ptr;
    char fin, urg;
    u_int seq, ack;
};

/* RS_CLOSING: over for libnids (FIN or RST), kept a moment so the packets that trail the
 * close (a last ACK, the peer's own RST, a retransmission) count for this connection. */
enum reasm_state { RS_SYN_SENT, RS_SYN_RCVD, RS_ESTABLISHED, RS_MIDSTREAM, RS_CLOSING };

#define REASM_LINGER_US 2000000

#define REASM_MAX_FILLS 2
/* Retransmissions come back within a window of the last segments sent. */
#define REASM_FPS 8
/* libnids prunes (silently drops) a half's whole out-of-order queue above 64 KiB; holes
 * are filled before that can happen. */
#define REASM_QUEUE_PRESSURE 32768u
#define REASM_FILL_CHUNK 32768u

struct reasm_fill {
    uint64_t start, end; /* stream offsets of zeros we injected */
};

struct reasm_conn {
    struct reasm_conn *hnext;         /* hash chain */
    struct reasm_conn *lprev, *lnext; /* idle (LRU) list, oldest first */
    struct reasm_conn *cprev, *cnext; /* closing list, in closing order */
    enum reasm_end close_reason;
    int64_t closing_us;
    int on_closing_list;
    uint32_t caddr, saddr; /* as libnids sees them (synthetic for IPv6) */
    uint16_t cport, sport;
    enum reasm_state state;
    uint32_t isn;
    uint32_t seq_isn[2]; /* each side's ISN, for the offsets in facts.sent_hi/acked */
    uint32_t fin_seq[2];
    int v6_refs; /* synthetic addresses held in the v6 map */
    void *user;
    struct tcp_stream *stream; /* libnids' stream once established */
    int end_pending;           /* an end decided inside a libnids call */
    enum reasm_end pending_end;
    uint64_t delivered[2]; /* stream offset of the next byte per direction */
    struct reasm_fill fills[2][REASM_MAX_FILLS];
    size_t nfills[2];
    /* The receiver acknowledged bytes of this direction not captured yet: filled as a hole
     * before the next segment, unless that segment brings them (capture reordering). */
    int defer[2];
    uint32_t defer_ack[2];
    int ck_first[2]; /* the side's first checksummed segment: 0 not yet, 1 right, 2 wrong */
    int in_burst[2]; /* index of the side's retransmission burst going on; -1 none */
    /* Fingerprints of each side's last data segments, for telling a copy that differs. */
    struct reasm_fp {
        uint64_t off, h;
        uint32_t len;
    } fp[2][REASM_FPS];
    unsigned fp_next[2];
    struct reasm_facts f;
};

/* A connection that ended while a frame was processed; reported once the frame is done, in
 * the order of each connection's last packet, so the order of reports does not depend on
 * how the work was split (libnids callbacks, idle expiry, workers). */
struct reasm_pending {
    void *user;
    enum reasm_end why;
    int64_t ts;
    struct reasm_facts f;
};

/* The one file-level state of the project (libnids forces it). */
static struct {
    struct reasm_pending *pending;
    size_t npending, apending;
    struct reasm_config cfg;
    struct reasm_ops ops;
    pcap_t *dead;
    struct v6map *v6;
    struct reasm_conn **buckets;
    size_t nbuckets;
    size_t nconns;
    struct reasm_conn *lru_head, *lru_tail;
    struct reasm_conn *closing_head, *closing_tail;
    struct reasm_stats st;
    uint8_t *scratch; /* room for one rewritten packet */
    /* the packet being fed */
    int64_t cur_ts;
    uint64_t cur_frame;
    uint32_t cur_frame_len;
    const struct dec_packet *cur_pkt;
    struct reasm_conn *cur_conn;
    int cur_dir;
    int cur_has_ack;
    uint8_t cur_flags; /* TCP flags of the packet being read */
    uint32_t cur_ack;
    int cur_ck; /* the packet's TCP checksum: 0 not checked, 1 right, 2 wrong */
    uint64_t fp_key;
    int in_fill;
    int initialised;
} R;

static void reasm_expire(int64_t now_us);
static void reasm_flush_pending(void);

static const char *const reasm_end_names[REASM_END_COUNT] = {
    [REASM_END_FIN] = "fin",
    [REASM_END_RST_CLIENT] = "rst_client",
    [REASM_END_RST_SERVER] = "rst_server",
    [REASM_END_TIMEOUT] = "timeout",
    [REASM_END_CAPTURE_END] = "capture_end",
    [REASM_END_SYN_UNANSWERED] = "syn_unanswered",
    [REASM_END_REFUSED] = "refused",
    [REASM_END_EVICTED] = "evicted",
};

const char *
reasm_end_name(enum reasm_end e)
{
    return (unsigned)e < REASM_END_COUNT ? reasm_end_names[e] : "unknown";
}

static int
reasm_seq_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

static int
reasm_seq_after(uint32_t a, uint32_t b)
{
    return (int32_t)(b - a) < 0;
}

/* RFC 1071: one's-complement sum of 16-bit words, then folded and inverted. */
static uint64_t
reasm_csum_add(uint64_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)(p[len - 1] << 8);
    return sum;
}

static uint16_t
reasm_csum_fold(uint64_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint16_t
reasm_ip_checksum(const uint8_t *p, size_t len)
{
    return reasm_csum_fold(reasm_csum_add(0, p, len));
}

/* Over the TCP segment and its pseudo-header (RFC 793 3.1, RFC 8200 8.1); 0 when right. */
static uint16_t
reasm_tcp_checksum(const struct dec_packet *pkt)
{
    size_t alen = pkt->family == 4 ? 4 : 16;
    uint64_t sum = reasm_csum_add(0, pkt->src, alen);
    sum = reasm_csum_add(sum, pkt->dst, alen);
    sum += IPPROTO_TCP + (pkt->l4_len & 0xffff) + (pkt->l4_len >> 16);
    return reasm_csum_fold(reasm_csum_add(sum, pkt->l4, pkt->l4_len));
}

static int
reasm_port_wanted(uint16_t a, uint16_t b)
{
    if (R.cfg.nports == 0)
        return 1;
    for (size_t i = 0; i < R.cfg.nports; i++)
        if (R.cfg.ports[i] == a || R.cfg.ports[i] == b)
            return 1;
    return 0;
}

uint32_t
reasm_flow_hash(const uint8_t *a, uint16_t ap, const uint8_t *b, uint16_t bp)
{
    /* XOR first, so both directions of a connection hash alike. */
    uint64_t x = 0;
    for (int i = 0; i < 16; i += 8) {
        uint64_t wa, wb;
        memcpy(&wa, a + i, 8);
        memcpy(&wb, b + i, 8);
        x = (x ^ (wa ^ wb)) * 0x9E3779B97F4A7C15ull;
    }
    x ^= (uint64_t)(ap ^ bp) * 0xC2B2AE3D27D4EB4Full;
    x ^= x >> 31;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 29;
    return (uint32_t)x;
}

static int
reasm_mine(uint16_t sport, uint16_t dport)
{
    if (R.cfg.shard_count <= 1 || !R.cur_pkt)
        return 1;
    uint32_t h = reasm_flow_hash(R.cur_pkt->src, sport, R.cur_pkt->dst, dport);
    return h % R.cfg.shard_count == R.cfg.shard_index;
}

/* References both addresses of an IPv6 packet in the map (synthetic values in *s4, *d4);
 * all or nothing: -1 when the map is full. */
static int
reasm_v6_acquire(const struct dec_packet *pkt, uint32_t *s4, uint32_t *d4)
{
    if (v6map_acquire(R.v6, pkt->src, s4) < 0)
        return -1;
    if (v6map_acquire(R.v6, pkt->dst, d4) < 0) {
        v6map_release(R.v6, *s4);
        return -1;
    }
    return 0;
}

/* ---- connection table ---- */

static size_t
reasm_hash(uint32_t a, uint16_t ap, uint32_t b, uint16_t bp)
{
    /* Symmetric, so both directions of a connection land in the same bucket. */
    uint64_t x = (uint64_t)(a ^ b) * 0x9E3779B97F4A7C15ull;
    x ^= (uint64_t)(ap ^ bp) * 0xC2B2AE3D27D4EB4Full;
    x ^= x >> 29;
    return (size_t)(x & (R.nbuckets - 1));
}

static struct reasm_conn *
reasm_find(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, int *dir)
{
    for (struct reasm_conn *c = R.buckets[reasm_hash(src, sport, dst, dport)]; c; c = c->hnext) {
        if (c->caddr == src && c->cport == sport && c->saddr == dst && c->sport == dport) {
            *dir = REASM_CLIENT;
            return c;
        }
        if (c->caddr == dst && c->cport == dport && c->saddr == src && c->sport == sport) {
            *dir = REASM_SERVER;
            return c;
        }
    }
    return NULL;
}

static void
reasm_lru_unlink(struct reasm_conn *c)
{
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        R.lru_head = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    else
        R.lru_tail = c->lprev;
    c->lprev = c->lnext = NULL;
}

static void
reasm_lru_append(struct reasm_conn *c)
{
    c->lprev = R.lru_tail;
    c->lnext = NULL;
    if (R.lru_tail)
        R.lru_tail->lnext = c;
    else
        R.lru_head = c;
    R.lru_tail = c;
}

static void
reasm_unlink(struct reasm_conn *c)
{
    struct reasm_conn **pp = &R.buckets[reasm_hash(c->caddr, c->cport, c->saddr, c->sport)];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    reasm_lru_unlink(c);
    if (c->on_closing_list) {
        c->on_closing_list = 0;
        if (c->cprev)
            c->cprev->cnext = c->cnext;
        else
            R.closing_head = c->cnext;
        if (c->cnext)
            c->cnext->cprev = c->cprev;
        else
            R.closing_tail = c->cprev;
    }
    R.nconns--;
}

static void
reasm_conn_free(struct reasm_conn *c)
{
    mem_free(c->f.gaps);
    if (c->v6_refs) {
        v6map_release(R.v6, c->caddr);
        v6map_release(R.v6, c->saddr);
    }
    if (R.cur_conn == c)
        R.cur_conn = NULL;
    mem_free(c);
}

/* Gives libnids' stream s back, if it is still one libnids holds and no other connection has
 * taken it: libnids keeps its streams in a pool, where freeing a stream twice (or one
 * already handed out again) corrupts it silently, and only libnids' own exit then fails. */
static int
reasm_stream_held(const struct tcp_stream *s, const struct reasm_conn *c)
{
    return nids_find_tcp_stream((struct tuple4 *)&s->addr) == s && (!s->user || s->user == c);
}

static void
reasm_free_stream(struct tcp_stream *s, const struct reasm_conn *c)
{
    if (s && reasm_stream_held(s, c))
        nids_free_tcp_stream(s);
}

/* Ends a connection: tells the session layer, frees libnids' stream unless libnids is
 * freeing it itself (in_nids), and forgets the connection. */
static void
reasm_end(struct reasm_conn *c, enum reasm_end why, int in_nids)
{
    if (c->stream && !in_nids)
        reasm_free_stream(c->stream, c);
    c->stream = NULL;
    if (!c->stream && (c->state == RS_SYN_SENT || c->state == RS_SYN_RCVD) && !in_nids) {
        /* libnids also holds a stream for a connection still in its handshake. */
        struct tuple4 t = {
            .source = c->cport, .dest = c->sport, .saddr = c->caddr, .daddr = c->saddr};
        reasm_free_stream(nids_find_tcp_stream(&t), c);
    }
    c->f.end_frame = R.cur_frame;
    if (c->user && R.ops.close) {
        if (R.npending == R.apending) {
            size_t n = R.apending ? R.apending * 2 : 64;
            struct reasm_pending *p = mem_realloc(R.pending, n * sizeof *p);
            if (p) {
                R.pending = p;
                R.apending = n;
            }
        }
        if (R.npending < R.apending) {
            R.pending[R.npending++] = (struct reasm_pending){c->user, why, R.cur_ts, c->f};
            c->f.gaps = NULL; /* now the pending entry's */
        } else {
            R.ops.close(c->user, &c->f, why, R.cur_ts); /* no memory: report out of order */
        }
    }
    c->user = NULL;
    reasm_unlink(c);
    reasm_conn_free(c);
}

/* libnids is done with the connection; we keep it for REASM_LINGER_US. */
static void
reasm_closing(struct reasm_conn *c, enum reasm_end why)
{
    c->stream = NULL;
    c->state = RS_CLOSING;
    c->close_reason = why;
    if (c->on_closing_list)
        return;
    c->on_closing_list = 1;
    c->closing_us = R.cur_ts;
    c->cnext = NULL;
    c->cprev = R.closing_tail;
    if (R.closing_tail)
        R.closing_tail->cnext = c;
    else
        R.closing_head = c;
    R.closing_tail = c;
}

static struct reasm_conn *
reasm_conn_new(uint32_t caddr, uint16_t cport, uint32_t saddr, uint16_t sport)
{
    struct reasm_conn *c = mem_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->caddr = caddr;
    c->cport = cport;
    c->saddr = saddr;
    c->sport = sport;
    c->f.rst_from = -1;
    c->in_burst[0] = c->in_burst[1] = -1;
    size_t h = reasm_hash(caddr, cport, saddr, sport);
    c->hnext = R.buckets[h];
    R.buckets[h] = c;
    reasm_lru_append(c);
    R.nconns++;
    return c;
}

/* Makes room for one more connection: unanswered SYNs and mid-stream records go first
 * (a SYN flood must not push out real sessions); otherwise the newcomer is shed. */
static int
reasm_make_room(void)
{
    if (R.nconns < R.cfg.max_sessions)
        return 0;
    int looked = 0;
    /* Only the oldest few are looked at, so the cost per packet stays constant. */
    for (struct reasm_conn *c = R.lru_head; c && looked < 8; c = c->lnext, looked++) {
        if (c->state == RS_MIDSTREAM) {
            reasm_end(c, REASM_END_EVICTED, 0);
            return 0;
        }
        if (c->state == RS_CLOSING) {
            reasm_end(c, c->close_reason, 0);
            return 0;
        }
        if (c->state == RS_SYN_SENT || (c->state == RS_SYN_RCVD && !c->f.established)) {
            /* Handshakes that never completed: the session layer does not report these
             * one by one (a flood would make millions of lines); they are counted. */
            R.st.syn_evicted++;
            reasm_end(c, REASM_END_EVICTED, 0);
            return 0;
        }
    }
    return -1;
}

/* ---- hole filling ---- */

static struct half_stream *
reasm_rcv_half(struct tcp_stream *s, int dir)
{
    /* libnids names halves by receiver: data sent by the client lands in s->server. */
    return dir == REASM_CLIENT ? &s->server : &s->client;
}

static struct half_stream *
reasm_snd_half(struct tcp_stream *s, int dir)
{
    return dir == REASM_CLIENT ? &s->client : &s->server;
}

static void
reasm_feed_raw(uint8_t *ip, size_t len)
{
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)(R.cur_ts / 1000000);
    h.ts.tv_usec = (suseconds_t)(R.cur_ts % 1000000);
    h.caplen = (bpf_u_int32)len;
    h.len = (bpf_u_int32)len;
    nids_pcap_handler(NULL, &h, ip);
}

/* Injects zeros from `dir` at the next expected sequence number, up to `limit` (or up to
 * the first queued segment when that comes first), and records the range as a hole. */
/* The IPv4 and TCP headers of a segment reassembly makes up for libnids (a hole's stand-in,
 * a synthetic handshake): c's addresses and ports from `dir`, TTL 64, window 0xffff. The
 * caller zeroed p (total bytes) and writes any TCP options after the 20 fixed bytes. */
static void
reasm_segment_headers(const struct reasm_conn *c, int dir, uint8_t *p, size_t total, size_t thl,
                      uint8_t flags, uint32_t seq, uint32_t ack)
{
    p[0] = 0x45;
    p[2] = (uint8_t)(total >> 8);
    p[3] = (uint8_t)total;
    p[8] = 64;
    p[9] = IPPROTO_TCP;
    uint32_t src = dir == REASM_CLIENT ? c->caddr : c->saddr;
    uint32_t dst = dir == REASM_CLIENT ? c->saddr : c->caddr;
    memcpy(p + 12, &src, 4);
    memcpy(p + 16, &dst, 4);
    uint16_t ck = reasm_ip_checksum(p, 20);
    p[10] = (uint8_t)(ck >> 8);
    p[11] = (uint8_t)ck;
    uint8_t *t = p + 20;
    uint16_t sp = dir == REASM_CLIENT ? c->cport : c->sport;
    uint16_t dp = dir == REASM_CLIENT ? c->sport : c->cport;
    t[0] = (uint8_t)(sp >> 8);
    t[1] = (uint8_t)sp;
    t[2] = (uint8_t)(dp >> 8);
    t[3] = (uint8_t)dp;
    for (int i = 0; i < 4; i++) {
        t[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
        t[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
    }
    t[12] = (uint8_t)(thl / 4 << 4);
    t[13] = flags;
    t[14] = 0xff;
    t[15] = 0xff;
}

static void
reasm_fill(struct reasm_conn *c, int dir, uint32_t limit, int use_limit)
{
    for (int rounds = 0; rounds < 64 && c->stream; rounds++) {
        struct half_stream *snd = reasm_snd_half(c->stream, dir);
        struct half_stream *rcv = reasm_rcv_half(c->stream, dir);
        uint32_t exp = snd->first_data_seq + (uint32_t)rcv->count + (uint32_t)rcv->urg_count;
        uint32_t target = limit;
        const struct reasm_nids_skbuff *q = (const struct reasm_nids_skbuff *)rcv->list;
        if (q && (!use_limit || reasm_seq_before(q->seq, target)))
            target = q->seq;
        else if (!use_limit)
            return;
        if (!reasm_seq_after(target, exp))
            return;
        uint32_t len = target - exp;
        if (len > REASM_FILL_CHUNK)
            len = REASM_FILL_CHUNK;
        if (c->nfills[dir] == REASM_MAX_FILLS)
            return;
        c->fills[dir][c->nfills[dir]++] =
            (struct reasm_fill){c->delivered[dir], c->delivered[dir] + len};
        if (!c->f.gaps)
            c->f.gaps = mem_alloc(REASM_MAX_GAPS * sizeof *c->f.gaps);
        if (c->f.gaps && c->f.ngaps < REASM_MAX_GAPS)
            c->f.gaps[c->f.ngaps++] = (struct reasm_gap){dir, c->delivered[dir], len, R.cur_ts};
        else
            c->f.gaps_dropped++;
        c->f.gap_bytes[dir] += len;
        R.st.holes_filled++;

        uint8_t *p = R.scratch;
        size_t total = 40 + (size_t)len;
        memset(p, 0, total);
        reasm_segment_headers(c, dir, p, total, 20, TH_ACK, exp, snd->ack_seq);
        /* libnids drops a segment that ends before what the receiver already acknowledged
         * (an old retransmission to it); the receiver acknowledged exactly the bytes we
         * are standing in for, so its acknowledgement is wound back for this one segment. */
        u_int saved_ack = rcv->ack_seq;
        u_short saved_win = rcv->window;
        rcv->ack_seq = exp;
        if (rcv->window == 0)
            rcv->window = 1;
        int before_count = rcv->count;
        R.in_fill = 1;
        reasm_feed_raw(p, total);
        R.in_fill = 0;
        if (!c->stream)
            return;
        rcv = reasm_rcv_half(c->stream, dir);
        if (reasm_seq_after(saved_ack, rcv->ack_seq))
            rcv->ack_seq = saved_ack;
        rcv->window = saved_win;
        if (rcv->count == before_count) {
            /* Not taken: forget the hole rather than report it over and over. */
            c->nfills[dir]--;
            if (c->f.ngaps > 0 && c->f.gaps[c->f.ngaps - 1].offset == c->delivered[dir])
                c->f.ngaps--;
            c->f.gap_bytes[dir] -= len;
            R.st.holes_filled--;
            return;
        }
    }
}

/* After a packet went through libnids: fill what the capture lost. A hole is certain when
 * the receiver acknowledged bytes we never saw; queued data growing towards libnids' prune
 * limit means the sender went on after a loss whose ACK we also missed. */
static void
reasm_after_packet(struct reasm_conn *c)
{
    if (c->end_pending) {
        reasm_end(c, c->pending_end, 0);
        return;
    }
    /* A stream libnids let go of without telling (its callbacks do not cover every way it
     * drops one; seen with crafted handshakes) must not be read or freed again: freeing it
     * twice corrupted libnids' stream pool. Checked after packets that open or end one. */
    if (c->stream && (R.cur_flags & (TH_SYN | TH_FIN | TH_RST) || c->stream->user != c) &&
        !reasm_stream_held(c->stream, c))
        c->stream = NULL;
    if (!c->stream)
        return;
    int dir = R.cur_dir, other = !dir;
    if (R.cur_has_ack) {
        struct half_stream *snd = reasm_snd_half(c->stream, other);
        struct half_stream *rcv = reasm_rcv_half(c->stream, other);
        uint32_t exp = snd->first_data_seq + (uint32_t)rcv->count + (uint32_t)rcv->urg_count;
        uint32_t ack = R.cur_ack;
        if (c->f.fin[other] && reasm_seq_before(c->fin_seq[other], ack))
            ack = c->fin_seq[other];
        /* One unexplained byte is a FIN the capture missed, not data. */
        if (reasm_seq_after(ack, exp) && (ack - exp > 1 || rcv->list)) {
            if (rcv->list) {
                reasm_fill(c, other, ack, 1);
            } else if (!c->defer[other] || reasm_seq_after(ack, c->defer_ack[other])) {
                c->defer[other] = 1;
                c->defer_ack[other] = ack;
            }
        }
    }
    for (int d = 0; d < 2 && c->stream; d++) {
        struct half_stream *rcv = reasm_rcv_half(c->stream, d);
        if (rcv->list && (unsigned)rcv->rmem_alloc > REASM_QUEUE_PRESSURE)
            reasm_fill(c, d, 0, 0);
    }
    /* libnids keeps a 4 KiB buffer per direction for good once data flowed, although we
     * always take every byte at once: with 100,000 idle sessions that is most of the
     * memory. Given back while empty (libnids allocates it again on the next byte). */
    for (int d = 0; d < 2 && c->stream; d++) {
        struct half_stream *h = reasm_rcv_half(c->stream, d);
        if (h->data && h->count == h->offset) {
            free(h->data);
            h->data = NULL;
            h->bufsize = 0;
        }
    }
}

/* ---- libnids callbacks ---- */

static void
reasm_deliver(struct reasm_conn *c, int dir, const uint8_t *p, size_t n)
{
    uint64_t off = c->delivered[dir], end = off + n;
    c->delivered[dir] = end;
    while (off < end) {
        /* The next injected range at or after off, if any. */
        struct reasm_fill *fl = NULL;
        for (size_t i = 0; i < c->nfills[dir]; i++)
            if (c->fills[dir][i].end > off && (!fl || c->fills[dir][i].start < fl->start))
                fl = &c->fills[dir][i];
        uint64_t real_end = fl && fl->start < end ? (fl->start > off ? fl->start : off) : end;
        if (real_end > off) {
            c->f.stream_bytes[dir] += real_end - off;
            if (c->user && R.ops.data)
                R.ops.data(c->user, dir, p, (size_t)(real_end - off), R.cur_ts);
            p += real_end - off;
            off = real_end;
            continue;
        }
        uint64_t gap_end = fl->end < end ? fl->end : end;
        if (c->user && R.ops.gap)
            R.ops.gap(c->user, dir, gap_end - off, R.cur_ts);
        p += gap_end - off;
        off = gap_end;
    }
    /* Forget ranges entirely delivered. */
    size_t k = 0;
    for (size_t i = 0; i < c->nfills[dir]; i++)
        if (c->fills[dir][i].end > end)
            c->fills[dir][k++] = c->fills[dir][i];
    c->nfills[dir] = k;
}

static void
reasm_on_tcp(struct tcp_stream *s, void **param)
{
    (void)param;
    struct reasm_conn *c = s->user;
    if (s->nids_state == NIDS_JUST_EST) {
        int dir;
        c = reasm_find(s->addr.saddr, s->addr.source, s->addr.daddr, s->addr.dest, &dir);
        if (!c || !c->user || dir != REASM_CLIENT || c->state == RS_CLOSING)
            return;
        s->user = c;
        c->stream = s;
        c->state = RS_ESTABLISHED;
        c->f.established = 1;
        c->f.established_us = R.cur_ts;
        s->client.collect++;
        s->server.collect++;
        if (R.ops.established)
            R.ops.established(c->user, &c->f);
        return;
    }
    if (!c)
        return;
    switch (s->nids_state) {
    case NIDS_DATA:
        if (s->server.count_new > 0)
            reasm_deliver(c, REASM_CLIENT, (const uint8_t *)s->server.data,
                          (size_t)s->server.count_new);
        if (s->client.count_new > 0)
            reasm_deliver(c, REASM_SERVER, (const uint8_t *)s->client.data,
                          (size_t)s->client.count_new);
        return;
    case NIDS_CLOSE:
        reasm_closing(c, REASM_END_FIN);
        return;
    case NIDS_RESET:
        reasm_closing(c,
                      c->f.rst_from == REASM_SERVER ? REASM_END_RST_SERVER : REASM_END_RST_CLIENT);
        return;
    case NIDS_TIMED_OUT:
        c->stream = NULL;
        reasm_end(c, REASM_END_EVICTED, 1);
        return;
    case NIDS_EXITING:
        c->stream = NULL;
        reasm_end(c, REASM_END_CAPTURE_END, 1);
        return;
    default:
        return;
    }
}

/* A new connection of the packet being read, whose sender is on side `dir`; addresses as
 * libnids sees them. NULL: no memory. */
static struct reasm_conn *
reasm_conn_open(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, int dir)
{
    int cl = dir == REASM_CLIENT;
    struct reasm_conn *c =
        reasm_conn_new(cl ? src : dst, cl ? sport : dport, cl ? dst : src, cl ? dport : sport);
    if (!c)
        return NULL;
    const struct dec_packet *pkt = R.cur_pkt;
    c->f.family = pkt ? pkt->family : 4;
    if (c->f.family == 6) {
        /* The map entries stay referenced for the connection's life. */
        uint32_t a4, b4;
        if (reasm_v6_acquire(pkt, &a4, &b4) == 0)
            c->v6_refs = 1;
    }
    if (pkt) {
        memcpy(c->f.client_ip, cl ? pkt->src : pkt->dst, 16);
        memcpy(c->f.server_ip, cl ? pkt->dst : pkt->src, 16);
        c->f.vlan_count = pkt->vlan_count;
        memcpy(c->f.vlan, pkt->vlan, sizeof c->f.vlan);
    } else {
        memcpy(c->f.client_ip, cl ? &src : &dst, 4);
        memcpy(c->f.server_ip, cl ? &dst : &src, 4);
    }
    c->f.client_port = c->cport;
    c->f.server_port = c->sport;
    c->f.syn_us = R.cur_ts;
    c->f.syn_frame = R.cur_frame;
    return c;
}

/* Sees every (defragmented) IPv4 packet before libnids' own TCP processing. */
/* A sequence number as an offset in the side's stream; -1 when it is not one (before the
 * ISN, or wrapped: more than 2 GiB from it). */
static int64_t
reasm_seq_off(uint32_t isn, uint32_t seq)
{
    uint32_t d = seq - isn - 1;
    return d < (UINT32_C(1) << 31) ? (int64_t)d : -1;
}

/* What a packet's numbers prove (died_after_data's evidence): its sender sent every byte
 * below seq (+ its data), and its ACK says how much of the peer's stream arrived. */
/* A keyed hash of a segment's bytes, four lanes so that it keeps up with the copy libnids
 * makes anyway. Not cryptographic: the key is drawn per run, so a sender cannot make two
 * different copies hash alike without knowing it. */
static uint64_t
reasm_fingerprint(const uint8_t *p, size_t n)
{
    const uint64_t m = 0x9E3779B97F4A7C15ull;
    uint64_t a = R.fp_key, b = ~R.fp_key, c = R.fp_key * m, d = n;
    while (n >= 32) {
        uint64_t w[4];
        memcpy(w, p, 32);
        a = (a ^ w[0]) * m;
        b = (b ^ w[1]) * m;
        c = (c ^ w[2]) * m;
        d = (d ^ w[3]) * m;
        a ^= a >> 32;
        b ^= b >> 32;
        c ^= c >> 32;
        d ^= d >> 32;
        p += 32;
        n -= 32;
    }
    uint8_t tail[32] = {0};
    memcpy(tail, p, n);
    uint64_t w[4];
    memcpy(w, tail, 32);
    a = (a ^ w[0]) * m;
    b = (b ^ w[1]) * m;
    c = (c ^ w[2]) * m;
    d = (d ^ w[3]) * m;
    uint64_t h = a ^ (b >> 7 | b << 57) ^ (c >> 19 | c << 45) ^ (d >> 41 | d << 23);
    h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

/* A data segment of side dir at stream offset start: a copy of bytes already sent at the
 * same place and length with other content is counted (evasion, or a broken middlebox);
 * the report keeps the first copy, as libnids and the receiving stack do. */
static void
reasm_compare_copy(struct reasm_conn *c, int dir, uint64_t start, const uint8_t *data, size_t len,
                   int resent)
{
    if (!data || len == 0 || len > UINT32_MAX || (R.cur_pkt && R.cur_pkt->truncated))
        return;
    uint64_t h = reasm_fingerprint(data, len);
    if (resent)
        for (unsigned i = 0; i < REASM_FPS; i++) {
            const struct reasm_fp *fp = &c->fp[dir][i];
            if (fp->len != len || fp->off != start)
                continue;
            if (fp->h == h)
                return; /* the same bytes again */
            struct reasm_facts *f = &c->f;
            f->conflicting[dir]++;
            R.st.conflicting_copies++;
            if (f->nconflicts < REASM_MAX_CONFLICTS)
                f->conflicts[f->nconflicts++] =
                    (struct reasm_conflict){dir, start, (uint32_t)len, R.cur_ts};
            return;
        }
    c->fp[dir][c->fp_next[dir]] = (struct reasm_fp){start, h, (uint32_t)len};
    c->fp_next[dir] = (c->fp_next[dir] + 1) % REASM_FPS;
}

/* Retransmitted segments one after the other, with no new data of that side between them,
 * are one burst: how a sender that gets no acknowledgment behaves. */
static void
reasm_note_burst(struct reasm_conn *c, int dir, size_t len, int resent)
{
    struct reasm_facts *f = &c->f;
    if (!resent) {
        c->in_burst[dir] = -1;
        return;
    }
    int b = c->in_burst[dir];
    if (b == -1) {
        if (f->nbursts == REASM_MAX_BURSTS) {
            f->bursts_dropped++;
            c->in_burst[dir] = -2; /* counted, not kept */
            return;
        }
        b = (int)f->nbursts++;
        f->bursts[b] = (struct reasm_burst){dir, R.cur_ts, R.cur_ts, 0, 0};
        c->in_burst[dir] = b;
    }
    if (b < 0)
        return;
    f->bursts[b].last_us = R.cur_ts;
    f->bursts[b].segments++;
    f->bursts[b].bytes += len;
}

static void
reasm_track_seq(struct reasm_conn *c, int dir, uint8_t flags, uint32_t seq, uint32_t ack,
                const uint8_t *data, size_t len)
{
    struct reasm_facts *f = &c->f;
    if (flags & TH_SYN) {
        c->seq_isn[dir] = seq;
        f->seq_known[dir] = 1;
    } else if (f->seq_known[dir] && !(flags & TH_RST)) {
        int64_t start = reasm_seq_off(c->seq_isn[dir], seq);
        if (start >= 0) {
            uint64_t end = (uint64_t)start + len;
            int resent = len && (uint64_t)start < f->sent_hi[dir];
            if (resent)
                f->retrans[dir]++;
            if (len) {
                reasm_note_burst(c, dir, len, resent);
                reasm_compare_copy(c, dir, (uint64_t)start, data, len, resent);
            }
            if (end > f->sent_hi[dir])
                f->sent_hi[dir] = end;
        }
    }
    if ((flags & TH_ACK) && !(flags & TH_RST) && f->seq_known[!dir]) {
        int64_t a = reasm_seq_off(c->seq_isn[!dir], ack);
        if (a > 0 && (uint64_t)a > f->acked[!dir])
            f->acked[!dir] = (uint64_t)a;
    }
}

static void
reasm_on_ip(struct ip *iph, int skblen)
{
    (void)skblen;
    if (R.in_fill || iph->ip_p != IPPROTO_TCP)
        return;
    size_t hl = (size_t)iph->ip_hl * 4, iplen = ntohs(iph->ip_len);
    if (iplen < hl + 20)
        return;
    const uint8_t *th = (const uint8_t *)iph + hl;
    size_t doff = (size_t)(th[12] >> 4) * 4;
    if (doff < 20 || iplen < hl + doff)
        return;
    uint16_t sport = (uint16_t)(th[0] << 8 | th[1]), dport = (uint16_t)(th[2] << 8 | th[3]);
    if (!reasm_port_wanted(sport, dport))
        return;
    uint32_t seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
    uint32_t ack = (uint32_t)th[8] << 24 | (uint32_t)th[9] << 16 | (uint32_t)th[10] << 8 | th[11];
    uint8_t flags = th[13];
    size_t datalen = iplen - hl - doff;
    uint32_t src = iph->ip_src.s_addr, dst = iph->ip_dst.s_addr;
    int dir = REASM_CLIENT;
    struct reasm_conn *c = reasm_find(src, sport, dst, dport, &dir);
    if (!c && !reasm_mine(sport, dport))
        return; /* another worker's */
    R.st.tcp_packets++;
    int syn_only = (flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN;
    if (c && syn_only && dir == REASM_CLIENT && c->state != RS_SYN_SENT &&
        c->state != RS_MIDSTREAM && (seq != c->isn || c->state == RS_CLOSING)) {
        /* The ports were reused by a new connection before the old one was seen to end. */
        reasm_end(c, c->state == RS_CLOSING ? c->close_reason : REASM_END_TIMEOUT, 0);
        c = NULL;
    }
    if (c && c->state == RS_MIDSTREAM && syn_only) {
        reasm_end(c, REASM_END_EVICTED, 0);
        c = NULL;
    }
    if (!c) {
        if (!reasm_mine(sport, dport))
            return;
        if (reasm_make_room() < 0) {
            if (syn_only)
                R.st.sessions_shed++;
            return;
        }
        dir = syn_only ? REASM_CLIENT : REASM_SERVER;
        c = reasm_conn_open(src, sport, dst, dport, dir);
        if (!c) {
            R.st.sessions_shed++;
            return;
        }
        if (syn_only) {
            c->state = RS_SYN_SENT;
            c->isn = seq;
            if (R.ops.open)
                c->user = R.ops.open(R.ops.ctx, &c->f);
            if (!c->user)
                R.st.sessions_shed++;
        } else {
            /* No handshake: libnids cannot follow it; remembered so it is counted once. */
            c->state = RS_MIDSTREAM;
            R.st.midstream++;
        }
    } else if (c->state == RS_MIDSTREAM) {
        reasm_lru_unlink(c);
        reasm_lru_append(c);
        c->f.last_us = R.cur_ts;
        return;
    } else {
        reasm_lru_unlink(c);
        reasm_lru_append(c);
    }
    if (c->state == RS_MIDSTREAM) {
        c->f.last_us = R.cur_ts;
        return;
    }

    struct reasm_facts *f = &c->f;
    f->last_us = R.cur_ts;
    f->last_frame = R.cur_frame;
    f->packets[dir]++;
    f->frame_bytes[dir] += R.cur_frame_len;
    if (R.cur_ck && !c->ck_first[dir])
        c->ck_first[dir] = R.cur_ck;
    if (R.cur_ck == 2)
        f->bad_checksums[dir]++;
    if ((flags & TH_FIN) && !f->fin_us[dir]) {
        f->fin_us[dir] = R.cur_ts;
        f->fin_ttl[dir] = iph->ip_ttl;
    }
    if (R.cur_pkt && R.cur_pkt->truncated)
        f->truncated_packets++;
    uint8_t ttl = iph->ip_ttl;
    if (flags & TH_RST) {
        if (f->rst_from < 0) {
            f->rst_from = dir;
            f->rst_ttl = ttl;
            f->rst_us = R.cur_ts;
        }
        f->rst_count++;
    } else if (!f->ttl_seen[dir]) {
        f->ttl_seen[dir] = 1;
        f->ttl[dir] = ttl;
    } else if (f->ttl[dir] != ttl) {
        f->ttl_varies[dir] = 1;
    }

    reasm_track_seq(c, dir, flags, seq, ack, th + doff, datalen);
    if (syn_only && dir == REASM_CLIENT && c->state == RS_SYN_SENT) {
        if (f->syn_count++ > 0)
            c->isn = seq;
    } else if ((flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK) && dir == REASM_SERVER) {
        if (f->synack_count++ == 0)
            f->synack_us = R.cur_ts;
        if (c->state == RS_SYN_SENT)
            c->state = RS_SYN_RCVD;
    } else if ((flags & TH_RST) && dir == REASM_SERVER &&
               (c->state == RS_SYN_SENT || c->state == RS_SYN_RCVD) && f->synack_count == 0) {
        c->end_pending = 1;
        c->pending_end = REASM_END_REFUSED;
    } else if ((flags & TH_RST) && c->state != RS_ESTABLISHED) {
        c->end_pending = 1;
        c->pending_end = dir == REASM_SERVER ? REASM_END_RST_SERVER : REASM_END_RST_CLIENT;
    }
    if (flags & TH_FIN) {
        f->fin[dir] = 1;
        c->fin_seq[dir] = seq + (uint32_t)datalen;
    }
    if (c->state == RS_CLOSING)
        return;
    R.cur_conn = c;
    R.cur_dir = dir;
    R.cur_has_ack = (flags & TH_ACK) != 0 && !(flags & TH_RST);
    R.cur_flags = flags;
    R.cur_ack = ack;
}

static void
reasm_nids_syslog(int type, int errnum, struct ip *iph, void *data)
{
    (void)type;
    (void)errnum;
    (void)iph;
    (void)data;
    R.st.nids_warnings++;
}

static void
reasm_nids_no_mem(char *where)
{
    (void)where;
    /* libnids cannot recover from this; it calls exit() after us. Say why first. */
    fputs("smtpsniff: out of memory in TCP reassembly\n", stderr);
}

int
reasm_init(const struct reasm_config *cfg, const struct reasm_ops *ops, char *err, size_t errlen)
{
    memset(&R, 0, sizeof R);
    R.cfg = *cfg;
    R.ops = *ops;
    if (R.cfg.max_sessions < 16)
        R.cfg.max_sessions = 16;
    R.nbuckets = 16;
    while (R.nbuckets < R.cfg.max_sessions && R.nbuckets < ((size_t)1 << 24))
        R.nbuckets <<= 1;
    R.buckets = mem_calloc(R.nbuckets, sizeof *R.buckets);
    R.scratch = mem_alloc(65536 + 64);
    /* The fingerprint key: what a sender cannot guess, it cannot collide with. */
    if (getrandom(&R.fp_key, sizeof R.fp_key, GRND_NONBLOCK) != (ssize_t)sizeof R.fp_key)
        R.fp_key = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    R.v6 = v6map_create(2 * R.cfg.max_sessions + 16);
    R.dead = pcap_open_dead(DLT_RAW, 65535);
    if (!R.buckets || !R.scratch || !R.v6 || !R.dead) {
        snprintf(err, errlen, "out of memory setting up reassembly");
        goto fail;
    }
    nids_params.pcap_desc = R.dead;
    nids_params.filename = NULL;
    nids_params.device = NULL;
    nids_params.pcap_filter = NULL;
    nids_params.scan_num_hosts = 0;
    nids_params.tcp_workarounds = 0;
    nids_params.multiproc = 0;
    nids_params.syslog = reasm_nids_syslog;
    nids_params.no_mem = reasm_nids_no_mem;
    /* libnids uses 3/4 of its table; keep room for every connection we track plus
     * handshakes it holds that we shed. */
    size_t n = R.cfg.max_sessions * 4 / 3 + 64;
    nids_params.n_tcp_streams = n > (size_t)1 << 26 ? 1 << 26 : (int)n;
    nids_params.n_hosts = 1024;
    if (!nids_init()) {
        snprintf(err, errlen, "cannot start TCP reassembly: %s", nids_errbuf);
        goto fail;
    }
    /* Checksums are verified here (both families) when asked; libnids never checks them:
     * with capture-side offload nearly every locally sent segment carries a wrong one. */
    static struct nids_chksum_ctl all = {0, 0, NIDS_DONT_CHKSUM, 0};
    nids_register_chksum_ctl(&all, 1);
    /* nids.h declares the callbacks as void *; ISO C has no conversion from a function
     * pointer to void *, so the pointer's bytes are copied (POSIX guarantees they fit). */
    void (*ipf)(struct ip *, int) = reasm_on_ip;
    void (*tcpf)(struct tcp_stream *, void **) = reasm_on_tcp;
    void *ipp, *tcpp;
    memcpy(&ipp, &ipf, sizeof ipp);
    memcpy(&tcpp, &tcpf, sizeof tcpp);
    nids_register_ip(ipp);
    nids_register_tcp(tcpp);
    R.initialised = 1;
    return 0;
fail:
    mem_free(R.buckets);
    mem_free(R.scratch);
    v6map_destroy(R.v6);
    if (R.dead)
        pcap_close(R.dead);
    memset(&R, 0, sizeof R);
    return -1;
}

/* Re-expresses an IPv6 TCP segment as IPv4 with synthetic addresses in R.scratch. */
static size_t
reasm_v6_to_v4(const struct dec_packet *pkt, size_t tcp_caplen)
{
    uint32_t s4, d4;
    int syn_only = tcp_caplen >= 14 && (pkt->l4[13] & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN;
    /* A SYN, or a segment of no tracked connection (mid-stream, counted once like IPv4
     * ones), is mapped only for this packet: a connection takes references of its own. */
    int temporary =
        syn_only || v6map_lookup(R.v6, pkt->src, &s4) < 0 || v6map_lookup(R.v6, pkt->dst, &d4) < 0;
    if (temporary && reasm_v6_acquire(pkt, &s4, &d4) < 0)
        return 0;
    size_t total = 20 + tcp_caplen;
    uint8_t *p = R.scratch;
    memset(p, 0, 20);
    p[0] = 0x45;
    p[2] = (uint8_t)(total >> 8);
    p[3] = (uint8_t)total;
    p[8] = pkt->ttl;
    p[9] = IPPROTO_TCP;
    memcpy(p + 12, &s4, 4);
    memcpy(p + 16, &d4, 4);
    uint16_t ck = reasm_ip_checksum(p, 20);
    p[10] = (uint8_t)(ck >> 8);
    p[11] = (uint8_t)ck;
    memcpy(p + 20, pkt->l4, tcp_caplen);
    return temporary ? total | ((size_t)1 << 31) : total;
}

/* ---- what libnids would drop of a capture that holds it ----
 * libnids follows a connection only from its handshake, and takes a data segment only when
 * it starts inside the receiver's advertised window and ends after what the receiver
 * already acknowledged (tcp.c, process_tcp). Captures from the field break these: one
 * started mid-session, a tap that sees one direction, a sender overrunning the window, an
 * ACK captured before the data it acknowledges. The segments are in the file, so libnids is
 * given what it needs to take them: a synthetic handshake, and for one segment a window or
 * an acknowledgement that admits it. */

static int
reasm_server_port(uint16_t p)
{
    for (size_t i = 0; i < R.cfg.nports; i++)
        if (R.cfg.ports[i] == p)
            return 1;
    return p == 25 || p == 587 || p == 465 || p == 2525 || p == 24;
}

/* Whether the sender of a connection's first captured segment is the server: a SYN-ACK, a
 * mail port on one side only, bytes that open with a reply code, else the lower port. */
static int
reasm_sender_is_server(uint16_t sport, uint16_t dport, uint8_t flags, const uint8_t *d, size_t n)
{
    if (flags & TH_SYN)
        return 1;
    if (reasm_server_port(sport) != reasm_server_port(dport))
        return reasm_server_port(sport);
    if (n >= 4 && d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' && d[2] >= '0' &&
        d[2] <= '9' && (d[3] == ' ' || d[3] == '-'))
        return 1;
    return sport < dport;
}

/* One synthetic segment of c from `dir` into libnids (never seen by reasm_on_ip). A SYN offers
 * the largest window scale, so the window check never drops what the real sides, whose scale
 * is unknown, sent in their window. */
static void
reasm_inject(const struct reasm_conn *c, int dir, uint8_t flags, uint32_t seq, uint32_t ack)
{
    uint8_t p[44];
    size_t total = flags & TH_SYN ? 44 : 40;
    memset(p, 0, sizeof p);
    reasm_segment_headers(c, dir, p, total, total - 20, flags, seq, ack);
    uint8_t *t = p + 20;
    if (flags & TH_SYN) {
        t[20] = 3; /* window scale 14 (RFC 7323 2.3), then NOP */
        t[21] = 3;
        t[22] = 14;
        t[23] = 1;
    }
    R.in_fill = 1;
    reasm_feed_raw(p, total);
    R.in_fill = 0;
}

/* A connection first seen after its handshake: opened as if the SYN, SYN-ACK and ACK had
 * been captured just before this segment, with the sequence numbers it carries. */
static void
reasm_pickup(struct reasm_conn *old, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
             uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *d, size_t n)
{
    int counted = old != NULL; /* a placeholder, counted when it was made */
    if (old)
        reasm_end(old, REASM_END_EVICTED, 0); /* no session behind it */
    if (reasm_make_room() < 0) {
        R.st.sessions_shed++;
        return;
    }
    int srv = reasm_sender_is_server(sport, dport, flags, d, n);
    struct reasm_conn *c = reasm_conn_open(src, sport, dst, dport, srv);
    if (!c) {
        R.st.sessions_shed++;
        return;
    }
    uint32_t snd_isn = flags & TH_SYN ? seq : seq - 1, peer_isn = ack - 1;
    uint32_t cisn = srv ? peer_isn : snd_isn, sisn = srv ? snd_isn : peer_isn;
    /* A SYN-ACK shows the start of the dialogue; only the client's SYN is missing. */
    c->f.midstream = !(flags & TH_SYN);
    c->f.handshake_unseen = 1;
    if (c->f.midstream && !counted)
        R.st.midstream++;
    c->state = RS_SYN_SENT;
    c->isn = cisn;
    if (R.ops.open)
        c->user = R.ops.open(R.ops.ctx, &c->f);
    if (!c->user) {
        R.st.sessions_shed++;
        return;
    }
    reasm_inject(c, REASM_CLIENT, TH_SYN, cisn, 0);
    reasm_inject(c, REASM_SERVER, TH_SYN | TH_ACK, sisn, cisn + 1);
    reasm_inject(c, REASM_CLIENT, TH_ACK, cisn + 1, sisn + 1);
}

/* What reasm_before_packet changed in libnids' receiver for one segment. */
struct reasm_prep {
    struct reasm_conn *c;
    struct tcp_stream *stream;
    struct half_stream *rcv;
    u_short window;
    u_int wscale, ack_seq;
};

static void
reasm_prep_undo(struct reasm_prep *pr)
{
    struct reasm_conn *c = pr->c;
    if (!c || !pr->rcv || c->stream != pr->stream || !reasm_stream_held(pr->stream, c))
        return;
    pr->rcv->window = pr->window;
    pr->rcv->wscale = pr->wscale;
    if (reasm_seq_after(pr->ack_seq, pr->rcv->ack_seq))
        pr->rcv->ack_seq = pr->ack_seq;
}

/* A decoded packet's addresses as libnids sees them (IPv6 ones through the synthetic map):
 * 0, or -1 when an IPv6 address has no entry (no connection can be its). */
static int
reasm_pkt_addrs(const struct dec_packet *pkt, uint32_t *src, uint32_t *dst)
{
    if (pkt->family == 4) {
        memcpy(src, pkt->src, 4);
        memcpy(dst, pkt->dst, 4);
        return 0;
    }
    if (v6map_lookup(R.v6, pkt->src, src) < 0 || v6map_lookup(R.v6, pkt->dst, dst) < 0) {
        *src = *dst = 0;
        return -1;
    }
    return 0;
}

/* Before a segment goes to libnids: picks up a connection without handshake, stands in for a
 * SYN-ACK the capture lacks, and opens the receiver's window (or winds back its ACK) so a
 * segment the capture holds is not dropped. A fill deferred for an ACK captured before its
 * data is made now unless this segment is that data. */
static void
reasm_before_packet(const struct dec_packet *pkt, struct reasm_prep *pr)
{
    memset(pr, 0, sizeof *pr);
    const uint8_t *th = pkt->l4;
    size_t doff = (size_t)(th[12] >> 4) * 4;
    size_t seglen = pkt->l4_len < pkt->l4_caplen ? pkt->l4_len : pkt->l4_caplen;
    size_t n = seglen > doff ? seglen - doff : 0;
    uint16_t sport = (uint16_t)(th[0] << 8 | th[1]), dport = (uint16_t)(th[2] << 8 | th[3]);
    uint32_t seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
    uint32_t ack = (uint32_t)th[8] << 24 | (uint32_t)th[9] << 16 | (uint32_t)th[10] << 8 | th[11];
    uint8_t flags = th[13];
    uint32_t src, dst;
    int dir = REASM_CLIENT;
    reasm_pkt_addrs(pkt, &src, &dst);
    struct reasm_conn *c = src || dst ? reasm_find(src, sport, dst, dport, &dir) : NULL;
    int plain_ack = (flags & (TH_ACK | TH_RST)) == TH_ACK;
    if ((!c || c->state == RS_MIDSTREAM) && plain_ack && (n > 0 || (flags & TH_SYN))) {
        if (pkt->family == 6 && reasm_v6_acquire(pkt, &src, &dst) < 0)
            return;
        reasm_pickup(c, src, sport, dst, dport, seq, ack, flags, th + doff, n);
        if (pkt->family == 6) { /* the connection holds references of its own */
            v6map_release(R.v6, src);
            v6map_release(R.v6, dst);
        }
        return;
    }
    if (!c)
        return;
    if (c->state == RS_SYN_SENT && dir == REASM_CLIENT && plain_ack && !(flags & TH_SYN) &&
        c->user) {
        /* The client acknowledges a SYN-ACK the capture lacks: the handshake completed. */
        c->f.handshake_unseen = 1;
        reasm_inject(c, REASM_SERVER, TH_SYN | TH_ACK, ack - 1, c->isn + 1);
        c->state = RS_SYN_RCVD;
        return;
    }
    if (!c->stream || !reasm_stream_held(c->stream, c))
        return;
    struct half_stream *rcv = reasm_rcv_half(c->stream, dir);
    struct half_stream *snd = reasm_snd_half(c->stream, dir);
    uint32_t exp = snd->first_data_seq + (uint32_t)rcv->count + (uint32_t)rcv->urg_count;
    int is_awaited = n > 0 && !reasm_seq_after(seq, exp) && reasm_seq_after(seq + (uint32_t)n, exp);
    for (int d = 0; d < 2 && c->stream; d++) {
        if (!c->defer[d] || (d == dir && is_awaited))
            continue;
        c->defer[d] = 0;
        reasm_fill(c, d, c->defer_ack[d], 1);
    }
    if (n == 0 || !c->stream || !(flags & TH_ACK) || (flags & TH_RST))
        return;
    rcv = reasm_rcv_half(c->stream, dir);
    pr->c = c;
    pr->stream = c->stream;
    pr->rcv = rcv;
    pr->window = rcv->window;
    pr->wscale = rcv->wscale;
    pr->ack_seq = rcv->ack_seq;
    if (!reasm_seq_before(seq, rcv->ack_seq + (uint32_t)rcv->window * rcv->wscale)) {
        /* Beyond the advertised window: the capture holds it, so it was sent. */
        rcv->window = 0xffff;
        rcv->wscale = 1u << 14;
    }
    if (is_awaited && reasm_seq_before(seq + (uint32_t)n, rcv->ack_seq))
        rcv->ack_seq = seq; /* acknowledged before it was captured */
}

/* A segment with a wrong checksum from a side whose first segment verified: that side's
 * checksums work, so this copy is one its peer's stack discarded (RFC 9293 3.10.7.4): not
 * believed, and counted on the connection. */
static int
reasm_checksum_refused(const struct dec_packet *pkt, uint16_t sport, uint16_t dport)
{
    uint32_t src, dst;
    int dir = REASM_CLIENT;
    struct reasm_conn *c =
        reasm_pkt_addrs(pkt, &src, &dst) == 0 ? reasm_find(src, sport, dst, dport, &dir) : NULL;
    if (!c || c->ck_first[dir] != 1)
        return 0;
    c->f.bad_checksums[dir]++;
    c->f.bad_checksums_ignored[dir]++;
    return 1;
}

static void
reasm_feed(const struct dec_packet *pkt)
{
    R.cur_ck = 0;

    if (pkt->proto != IPPROTO_TCP)
        return;
    size_t tcp_caplen = pkt->l4 ? pkt->l4_caplen : 0;
    if (pkt->l4 && !pkt->fragment) {
        if (tcp_caplen < 20 || (size_t)(pkt->l4[12] >> 4) * 4 > tcp_caplen ||
            (pkt->l4[12] >> 4) < 5) {
            R.st.unparsable++;
            return;
        }
        uint16_t sp = (uint16_t)(pkt->l4[0] << 8 | pkt->l4[1]);
        uint16_t dp = (uint16_t)(pkt->l4[2] << 8 | pkt->l4[3]);
        if (!reasm_port_wanted(sp, dp))
            return;
        /* Another worker's connection: not even libnids needs to see it. Fragments go on
         * (their ports are known only after reassembly) and are sorted out there. */
        if (!reasm_mine(sp, dp))
            return;
        R.cur_ck = pkt->truncated ? 0 : reasm_tcp_checksum(pkt) == 0 ? 1 : 2;
        if (R.cur_ck == 2) {
            R.st.bad_checksums++;
            if (R.cfg.verify_checksums || reasm_checksum_refused(pkt, sp, dp)) {
                R.st.bad_checksums_ignored++;
                R.cur_ck = 0;
                return;
            }
        }
    }
    struct reasm_prep prep = {0};
    if (pkt->l4 && !pkt->fragment)
        reasm_before_packet(pkt, &prep);
    if (pkt->family == 6) {
        if (pkt->fragment || !pkt->l4) {
            R.st.ipv6_fragments++;
            return;
        }
        if (tcp_caplen > 65535 - 20) {
            R.st.unparsable++; /* does not fit an IPv4 datagram */
            return;
        }
        size_t r = reasm_v6_to_v4(pkt, tcp_caplen);
        if (r == 0) {
            R.st.v6_map_full++;
            return;
        }
        int temp = (r >> 31) & 1;
        size_t total = r & (((size_t)1 << 31) - 1);
        uint32_t s4, d4;
        memcpy(&s4, R.scratch + 12, 4);
        memcpy(&d4, R.scratch + 16, 4);
        reasm_feed_raw(R.scratch, total);
        reasm_prep_undo(&prep);
        prep.c = NULL;
        if (temp) {
            v6map_release(R.v6, s4);
            v6map_release(R.v6, d4);
        }
    } else {
        if (pkt->truncated && pkt->fragment) {
            R.st.unparsable++;
            return;
        }
        /* Copied: the capture buffer is read-only to us and an IP header behind a 14-byte
         * Ethernet header is not 4-byte aligned, which libnids' struct ip access needs. */
        size_t n = pkt->ip_caplen;
        if (n > 65535 || n < 20) {
            R.st.unparsable++;
            return;
        }
        memcpy(R.scratch, pkt->ip, n);
        /* libnids drops a packet whose IP length differs from what it is given: one cut by
         * the snapshot length (its missing tail becomes a hole) or one captured before
         * segmentation offload split it (total length 0). Tell it what we have. */
        if ((size_t)(R.scratch[2] << 8 | R.scratch[3]) != n) {
            R.scratch[2] = (uint8_t)(n >> 8);
            R.scratch[3] = (uint8_t)n;
            R.scratch[10] = R.scratch[11] = 0;
            size_t hl = (size_t)(R.scratch[0] & 0x0f) * 4;
            uint16_t ck = reasm_ip_checksum(R.scratch, hl);
            R.scratch[10] = (uint8_t)(ck >> 8);
            R.scratch[11] = (uint8_t)ck;
        }
        reasm_feed_raw(R.scratch, n);
    }
    reasm_prep_undo(&prep);
    if (R.cur_conn)
        reasm_after_packet(R.cur_conn);
}

void
reasm_packet(const struct dec_packet *pkt, int64_t ts_us, uint32_t frame_len, uint64_t frame_no)
{
    if (!R.initialised)
        return;
    R.cur_ts = ts_us;
    R.cur_frame = frame_no;
    R.cur_frame_len = frame_len;
    R.cur_pkt = pkt;
    R.cur_conn = NULL;
    reasm_expire(ts_us);
    reasm_feed(pkt);
    R.cur_conn = NULL;
    R.cur_pkt = NULL;
    reasm_flush_pending();
}

static void
reasm_flush_queues(struct reasm_conn *c)
{
    for (int d = 0; d < 2 && c->stream; d++) {
        if (c->defer[d]) {
            c->defer[d] = 0;
            reasm_fill(c, d, c->defer_ack[d], 1);
        }
        if (c->stream)
            reasm_fill(c, d, 0, 0);
    }
}

static int
reasm_pending_cmp(const void *a, const void *b)
{
    const struct reasm_pending *x = a, *y = b;
    if (x->f.last_frame != y->f.last_frame)
        return x->f.last_frame < y->f.last_frame ? -1 : 1;
    return x->f.syn_frame < y->f.syn_frame ? -1 : x->f.syn_frame > y->f.syn_frame;
}

static void
reasm_flush_pending(void)
{
    if (R.npending == 0)
        return;
    qsort(R.pending, R.npending, sizeof *R.pending, reasm_pending_cmp);
    /* The callbacks cannot end connections, so the list does not change under us. */
    for (size_t i = 0; i < R.npending; i++) {
        R.ops.close(R.pending[i].user, &R.pending[i].f, R.pending[i].why, R.pending[i].ts);
        mem_free(R.pending[i].f.gaps);
    }
    R.npending = 0;
}

static enum reasm_end
reasm_quiet_end(const struct reasm_conn *c, enum reasm_end otherwise)
{
    if (c->state == RS_CLOSING)
        return c->close_reason;
    if (c->state == RS_SYN_SENT || (c->state == RS_SYN_RCVD && !c->f.established))
        return c->f.synack_count ? otherwise : REASM_END_SYN_UNANSWERED;
    /* An RST libnids judged out of window is still the last thing that happened. */
    if (c->f.rst_from >= 0 && c->f.rst_us == c->f.last_us)
        return c->f.rst_from == REASM_SERVER ? REASM_END_RST_SERVER : REASM_END_RST_CLIENT;
    return otherwise;
}

static void
reasm_expire(int64_t now_us)
{
    R.cur_ts = now_us;
    int64_t linger = R.cfg.linger_us > 0 ? R.cfg.linger_us : REASM_LINGER_US;
    while (R.closing_head && R.closing_head->closing_us + linger < now_us)
        reasm_end(R.closing_head, R.closing_head->close_reason, 0);
    if (R.cfg.idle_timeout_us <= 0)
        return;
    while (R.lru_head && R.lru_head->f.last_us + R.cfg.idle_timeout_us < now_us &&
           R.lru_head->f.last_us != 0) {
        struct reasm_conn *c = R.lru_head;
        int64_t saved = R.cur_ts;
        /* The session ends when it went quiet, not when we noticed. */
        R.cur_ts = c->f.last_us;
        reasm_flush_queues(c);
        if (R.lru_head == c)
            reasm_end(c, reasm_quiet_end(c, REASM_END_TIMEOUT), 0);
        R.cur_ts = saved;
    }
}

void
reasm_tick(int64_t now_us)
{
    if (!R.initialised)
        return;
    reasm_expire(now_us);
    reasm_flush_pending();
    if (!R.ops.tick)
        return;
    /* The callback cannot end connections, so the list does not change under us. */
    for (struct reasm_conn *c = R.lru_head; c; c = c->lnext)
        if (c->user && c->state != RS_CLOSING && c->state != RS_MIDSTREAM)
            R.ops.tick(c->user, &c->f, now_us);
}

void
reasm_finish(int64_t ts_us)
{
    if (!R.initialised)
        return;
    R.cur_ts = ts_us;
    /* Every packet moves its connection to the tail, so this is last-frame order: each
     * report can go out at once and nothing piles up in memory. */
    reasm_flush_pending();
    while (R.lru_head) {
        struct reasm_conn *c = R.lru_head;
        reasm_flush_queues(c);
        if (R.lru_head == c)
            reasm_end(c, reasm_quiet_end(c, REASM_END_CAPTURE_END), 0);
        reasm_flush_pending();
    }
    reasm_flush_pending();
}

void
reasm_get_stats(struct reasm_stats *st)
{
    *st = R.st;
}

size_t
reasm_open_connections(void)
{
    return R.nconns;
}

void
reasm_shutdown(void)
{
    if (!R.initialised)
        return;
    reasm_finish(R.cur_ts);
    nids_exit();
    mem_free(R.buckets);
    mem_free(R.scratch);
    v6map_destroy(R.v6);
    pcap_close(R.dead);
    mem_free(R.pending);
    memset(&R, 0, sizeof R);
}
