/* reasm.h - TCP reassembly: the libnids glue (IPv4 defragmentation, stream reassembly),
 * IPv6 carried through synthetic IPv4 addresses, and the TCP facts libnids never reports
 * (unanswered SYNs, refusals, handshake RTT, TTLs, RST origin, holes in the capture).
 * libnids keeps its state in globals and its callbacks carry no context, so this module
 * is a singleton: it is the one place in the project with file-level state. */
#ifndef SMTPSNIFF_REASM_H
#define SMTPSNIFF_REASM_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"

enum reasm_dir { REASM_CLIENT = 0, REASM_SERVER = 1 }; /* who sent the bytes */

enum reasm_end {
    REASM_END_FIN,
    REASM_END_RST_CLIENT,
    REASM_END_RST_SERVER,
    REASM_END_TIMEOUT,
    REASM_END_CAPTURE_END,
    REASM_END_SYN_UNANSWERED,
    REASM_END_REFUSED,
    REASM_END_EVICTED, /* the stream table was full and this connection was the oldest */
    REASM_END_COUNT
};

#define REASM_MAX_GAPS 16

struct reasm_gap {
    int dir;         /* enum reasm_dir */
    uint64_t offset; /* stream offset (bytes of that direction before the hole) */
    uint64_t len;
    int64_t ts_us; /* when the hole was declared */
};

/* Everything observed about one connection, from the raw packets. */
#define REASM_MAX_BURSTS 8
#define REASM_MAX_CONFLICTS 4

struct reasm_facts {
    int family; /* 4 or 6 */
    uint8_t client_ip[16], server_ip[16];
    uint16_t client_port, server_port;
    uint16_t vlan[2];
    int vlan_count;
    int64_t syn_us, synack_us, established_us, last_us;
    uint64_t syn_frame;  /* frame number (1-based, capture order) of the first SYN */
    uint64_t last_frame; /* frame number of the connection's last packet */
    uint64_t end_frame;  /* frame being read when the connection ended */
    unsigned syn_count, synack_count;
    int ttl_seen[2];
    uint8_t ttl[2];    /* TTL / hop limit of each side's first non-RST packet */
    int ttl_varies[2]; /* a later non-RST packet of that side had another TTL */
    uint64_t packets[2], frame_bytes[2];
    uint64_t stream_bytes[2]; /* payload bytes delivered in order (holes excluded) */
    int rst_from;             /* -1, or the side that sent the first RST */
    uint8_t rst_ttl;
    int64_t rst_us;
    unsigned rst_count;
    int fin[2];
    struct reasm_gap *gaps; /* NULL until the first hole (most connections have none) */
    size_t ngaps, gaps_dropped;
    uint64_t gap_bytes[2];
    uint64_t truncated_packets; /* captured shorter than sent: their tails are holes */
    int established;            /* the full handshake was seen and the stream reassembled */
    /* What the sequence and acknowledgment numbers prove, per side, as stream offsets from
     * that side's ISN (only where seq_known: its SYN or SYN-ACK was seen or stood in for):
     * how far its packets' sequence numbers reached (bytes it sent, captured or not), how
     * many bytes of its stream the peer acknowledged, and its data segments that started
     * below what it had already sent (retransmissions). */
    int seq_known[2];
    uint64_t sent_hi[2], acked[2], retrans[2];
    /* Each side's first FIN as the capture shows it: when, and its TTL. */
    int64_t fin_us[2];
    uint8_t fin_ttl[2];
    /* Runs of retransmitted data segments (a side sending bytes again with no new data
     * between them), the first REASM_MAX_BURSTS of them. */
    struct reasm_burst {
        int dir;
        int64_t first_us, last_us;
        uint32_t segments;
        uint64_t bytes;
    } bursts[REASM_MAX_BURSTS];
    size_t nbursts, bursts_dropped;
    /* Segments whose TCP checksum is wrong, per side; of those, the ones not believed: a
     * side whose first segment verified has a working checksum, so a wrong one later is a
     * segment its peer's stack discarded (damaged, or forged). A side whose first segment
     * is wrong is taken to be the capturing host's own, checksummed later by its network
     * card (offload), and believed. */
    uint64_t bad_checksums[2], bad_checksums_ignored[2];
    /* Copies of the same bytes that differ: a segment sent again at the same place and
     * length with other content. The report keeps the first copy, as the receiving stack
     * does (RFC 9293 3.10.7.4: data already received is not replaced). */
    uint64_t conflicting[2];
    struct reasm_conflict {
        int dir;
        uint64_t offset;
        uint32_t len;
        int64_t ts_us;
    } conflicts[REASM_MAX_CONFLICTS];
    size_t nconflicts;
    /* The capture began after the handshake: libnids was given a synthetic one built from
     * the first segment's sequence numbers, and the stream is read from there. */
    int midstream;
    /* The handshake completed but part of it is not in the capture (the client acknowledged a
     * SYN-ACK that is missing, or the SYN is missing): a synthetic segment stood in. */
    int handshake_unseen;
};

struct reasm_ops {
    void *ctx;
    /* A new connection (its first SYN). Returns the caller's per-connection handle;
     * NULL means the caller shed it (it is then only counted). */
    void *(*open)(void *ctx, const struct reasm_facts *f);
    /* The handshake completed: stream bytes follow. */
    void (*established)(void *conn, const struct reasm_facts *f);
    /* Stream bytes of one direction, in order; p is borrowed for the call. */
    void (*data)(void *conn, int dir, const uint8_t *p, size_t n, int64_t ts_us);
    /* n bytes of that direction are missing from the capture at this point. */
    void (*gap)(void *conn, int dir, uint64_t n, int64_t ts_us);
    /* The connection is over; the handle is not used again. */
    void (*close)(void *conn, const struct reasm_facts *f, enum reasm_end end, int64_t ts_us);
    /* Live capture: the clock moved on (reasm_tick); called for every open connection, so
     * the caller can tell what has been awaited for how long. May be NULL. */
    void (*tick)(void *conn, const struct reasm_facts *f, int64_t now_us);
};

struct reasm_config {
    size_t max_sessions;     /* connections tracked at once */
    int verify_checksums;    /* ignore every segment whose TCP checksum is wrong */
    int64_t idle_timeout_us; /* capture time without a packet before a connection ends; 0: never */
    const uint16_t *ports;   /* analysed ports; nports 0: every TCP connection */
    size_t nports;
    unsigned shard_count; /* > 1: only connections whose flow hash modulo shard_count is */
    unsigned shard_index; /* shard_index are analysed (one worker's share) */
    int64_t linger_us;    /* how long a closed connection is kept for the packets that trail
                             its close (a last ACK, the peer's RST); 0: 2 s */
};

/* The symmetric flow hash the shards are cut by (addresses 16 bytes, IPv4 in the first 4). */
uint32_t reasm_flow_hash(const uint8_t *a, uint16_t ap, const uint8_t *b, uint16_t bp);

struct reasm_stats {
    uint64_t tcp_packets;           /* TCP segments on analysed ports */
    uint64_t midstream;             /* connections whose handshake was not captured */
    uint64_t sessions_shed;         /* connections not tracked: table full */
    uint64_t syn_evicted;           /* unanswered SYNs dropped to make room (SYN floods) */
    uint64_t v6_map_full;           /* IPv6 segments dropped: address map full */
    uint64_t bad_checksums;         /* segments whose TCP checksum is wrong */
    uint64_t bad_checksums_ignored; /* of those, not given to reassembly (see reasm_facts) */
    uint64_t conflicting_copies;    /* segments whose bytes differ from the first copy */
    uint64_t unparsable;            /* truncated inside the TCP header, or malformed */
    uint64_t holes_filled;
    uint64_t ipv6_fragments; /* IPv6 fragments are not reassembled */
    uint64_t nids_warnings;
};

const char *reasm_end_name(enum reasm_end e);

/* Starts libnids. Returns 0, or -1 with a reason in err. */
int reasm_init(const struct reasm_config *cfg, const struct reasm_ops *ops, char *err,
               size_t errlen);
/* One decoded IP packet. frame_len is its length on the wire (for the per-side counts);
 * frame_no its number in the capture (1-based, every frame counted, IP or not). */
void reasm_packet(const struct dec_packet *pkt, int64_t ts_us, uint32_t frame_len,
                  uint64_t frame_no);
/* The clock advanced without packets (live capture: the wall clock, every quarter second):
 * ends lingering and idle connections as of now_us, then calls ops.tick for each open one. */
void reasm_tick(int64_t now_us);
/* End of the capture: every open connection ends (capture_end, or syn_unanswered). */
void reasm_finish(int64_t ts_us);
void reasm_get_stats(struct reasm_stats *st);
size_t reasm_open_connections(void);
void reasm_shutdown(void);

#endif
