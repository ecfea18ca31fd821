/* decode.h - link layer and IP header decoding into a bounds-checked packet view. */
#ifndef SMTPSNIFF_DECODE_H
#define SMTPSNIFF_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Link types we decode (values are the DLT_/LINKTYPE_ numbers libpcap reports). */
#define DEC_DLT_NULL 0
#define DEC_DLT_EN10MB 1
#define DEC_DLT_RAW 12   /* OpenBSD/ libpcap DLT_RAW on Linux */
#define DEC_DLT_LOOP 108 /* OpenBSD loopback: AF in network order */
#define DEC_DLT_LINUX_SLL 113
#define DEC_DLT_RAW_LT 101 /* LINKTYPE_RAW as stored in files */
#define DEC_DLT_IPV4 228
#define DEC_DLT_IPV6 229
#define DEC_DLT_LINUX_SLL2 276

enum dec_result {
    DEC_OK = 0,        /* pkt filled: an IPv4 or IPv6 packet */
    DEC_NOT_IP = 1,    /* a valid frame that carries no IP (ARP, LLDP, ...) */
    DEC_TRUNCATED = 2, /* the captured bytes end inside a link or IP header */
    DEC_MALFORMED = 3, /* impossible header values */
    DEC_UNSUPPORTED_LINK = 4,
};

/* A view of one IP packet inside the captured frame. Every pointer is borrowed from
 * the frame and valid as long as the frame is. */
struct dec_packet {
    int family;               /* 4 or 6 */
    const uint8_t *ip;        /* start of the IP header */
    size_t ip_caplen;         /* bytes of the IP packet present in the capture */
    size_t ip_len;            /* the IP packet's length as its header says (>= ip_caplen
                                 when the capture was cut by the snap length) */
    uint8_t src[16], dst[16]; /* addresses; IPv4 uses the first 4 bytes */
    uint8_t ttl;              /* TTL or hop limit */
    uint8_t proto;            /* upper-layer protocol after IPv6 extension headers */
    const uint8_t *l4;        /* upper-layer header (NULL for a non-first fragment) */
    size_t l4_caplen;         /* bytes of it present in the capture */
    size_t l4_len;            /* its length according to the IP header */
    int fragment;             /* IPv4: MF set or offset != 0; IPv6: fragment header */
    int truncated;            /* ip_caplen < ip_len */
    uint16_t vlan[2];         /* outer and inner VLAN ids, 0 when absent */
    int vlan_count;
};

/* Decodes one captured frame of link type `dlt`. caplen bytes are present at `frame`.
 * Never reads past frame + caplen. */
enum dec_result dec_frame(int dlt, const uint8_t *frame, size_t caplen, struct dec_packet *pkt);

/* 1 when dec_frame knows the link type. */
int dec_link_supported(int dlt);
/* A printable name for a link type, for error messages ("DLT 147"). */
const char *dec_link_name(int dlt, char *buf, size_t buflen);

/* TCP header view over pkt->l4 (only when proto == 6 and l4 != NULL). */
struct dec_tcp {
    uint16_t sport, dport;
    uint32_t seq, ack;
    uint8_t flags; /* the whole flags byte: FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 */
    uint16_t window;
    size_t hdr_len; /* data offset * 4 */
    const uint8_t *payload;
    size_t payload_caplen; /* payload bytes present in the capture */
    size_t payload_len;    /* payload length according to the IP header */
};

#define DEC_TH_FIN 0x01
#define DEC_TH_SYN 0x02
#define DEC_TH_RST 0x04
#define DEC_TH_PSH 0x08
#define DEC_TH_ACK 0x10
#define DEC_TH_URG 0x20

/* Returns DEC_OK, DEC_TRUNCATED (header not fully captured) or DEC_MALFORMED. */
enum dec_result dec_tcp(const struct dec_packet *pkt, struct dec_tcp *tcp);

#endif
