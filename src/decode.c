/* decode.c - link layers (Ethernet with IEEE 802.1Q/802.1ad tags, Linux cooked v1/v2, BSD
 * loopback, raw IP) and IP headers (RFC 791, RFC 8200 section 4, RFC 4302) into a view. */
#include "decode.h"

#include <stdio.h>
#include <string.h>

#define DEC_ETH_HLEN 14
#define DEC_SLL_HLEN 16
#define DEC_SLL2_HLEN 20
#define DEC_NULL_HLEN 4
#define DEC_VLAN_TAG_LEN 4
#define DEC_IPV4_HLEN 20
#define DEC_IPV6_HLEN 40
#define DEC_TCP_HLEN 20

/* Real networks stack two tags (QinQ), rarely three; anything deeper is a crafted frame,
 * and a bound keeps the walk from being driven by the sender. */
#define DEC_VLAN_MAX 8
/* RFC 8200 section 4.1 expects at most a handful of extension headers; a long chain is an
 * evasion attempt or garbage, not traffic we could reassemble. */
#define DEC_V6_EXT_MAX 16

#define DEC_ETYPE_IPV4 0x0800u
#define DEC_ETYPE_IPV6 0x86ddu
#define DEC_ETYPE_8021Q 0x8100u
#define DEC_ETYPE_8021AD 0x88a8u
#define DEC_ETYPE_QINQ_OLD 0x9100u /* pre-802.1ad QinQ, still seen on older switches */

#define DEC_ARPHRD_NETLINK 824u /* cooked captures of netlink carry no ethertype */

#define DEC_V6_HOPOPTS 0
#define DEC_V6_ROUTING 43
#define DEC_V6_FRAGMENT 44
#define DEC_V6_AH 51
#define DEC_V6_NONXT 59
#define DEC_V6_DSTOPTS 60

/* Every multi-byte read goes through these after the caller has checked the length. */
static uint16_t
dec_be16(const uint8_t *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

static uint32_t
dec_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint32_t
dec_le32(const uint8_t *p)
{
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

static size_t
dec_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

static enum dec_result
dec_ipv4(const uint8_t *p, size_t avail, struct dec_packet *pkt)
{
    if (avail < DEC_IPV4_HLEN)
        return DEC_TRUNCATED;
    size_t hl = (size_t)(p[0] & 0x0f) * 4;
    if (hl < DEC_IPV4_HLEN)
        return DEC_MALFORMED;
    if (avail < hl)
        return DEC_TRUNCATED;
    size_t tot = dec_be16(p + 2);
    /* A zero total length is what a sender with TCP segmentation offload hands to the
     * capture before the NIC splits the segment; the captured bytes are the packet. */
    if (tot == 0)
        tot = avail;
    if (tot < hl)
        return DEC_MALFORMED;

    pkt->family = 4;
    pkt->ip = p;
    pkt->ip_len = tot;
    /* min() also drops Ethernet padding after a short packet (frames under 60 bytes). */
    pkt->ip_caplen = dec_min(avail, tot);
    pkt->truncated = avail < tot;
    pkt->ttl = p[8];
    pkt->proto = p[9];
    memcpy(pkt->src, p + 12, 4);
    memcpy(pkt->dst, p + 16, 4);

    /* RFC 791: flags in the top 3 bits, offset in 8-byte units in the low 13. */
    uint16_t frag = dec_be16(p + 6);
    uint16_t offset = frag & 0x1fff;
    int more = (frag & 0x2000) != 0;
    pkt->fragment = offset != 0 || more;
    if (offset != 0) {
        /* Only the first fragment starts with the upper-layer header. */
        pkt->l4 = NULL;
        pkt->l4_len = 0;
        pkt->l4_caplen = 0;
        return DEC_OK;
    }
    pkt->l4 = p + hl;
    pkt->l4_len = tot - hl;
    pkt->l4_caplen = pkt->ip_caplen - hl;
    return DEC_OK;
}

/* Checks that an extension header of elen bytes at off lies inside the packet: outside the
 * IP length it is malformed, inside but past the capture it is truncated. */
static enum dec_result
dec_v6_room(const struct dec_packet *pkt, size_t off, size_t elen)
{
    if (off > pkt->ip_len || elen > pkt->ip_len - off)
        return DEC_MALFORMED;
    if (off > pkt->ip_caplen || elen > pkt->ip_caplen - off)
        return DEC_TRUNCATED;
    return DEC_OK;
}

static enum dec_result
dec_ipv6(const uint8_t *p, size_t avail, struct dec_packet *pkt)
{
    if (avail < DEC_IPV6_HLEN)
        return DEC_TRUNCATED;
    size_t plen = dec_be16(p + 4);
    uint8_t nxt = p[6];
    size_t ip_len = DEC_IPV6_HLEN + plen;
    /* A zero payload length means a jumbogram (RFC 2675) or a segmentation-offload send;
     * either way the captured bytes are the packet. With no next header it is genuine. */
    if (plen == 0 && nxt != DEC_V6_NONXT)
        ip_len = avail;

    pkt->family = 6;
    pkt->ip = p;
    pkt->ip_len = ip_len;
    pkt->ip_caplen = dec_min(avail, ip_len);
    pkt->truncated = avail < ip_len;
    pkt->ttl = p[7];
    memcpy(pkt->src, p + 8, 16);
    memcpy(pkt->dst, p + 24, 16);

    size_t off = DEC_IPV6_HLEN;
    enum dec_result r;
    for (int n = 0;; n++) {
        size_t elen;
        switch (nxt) {
        case DEC_V6_HOPOPTS:
        case DEC_V6_ROUTING:
        case DEC_V6_DSTOPTS:
        case DEC_V6_AH:
            if (n >= DEC_V6_EXT_MAX)
                return DEC_MALFORMED;
            if ((r = dec_v6_room(pkt, off, 2)) != DEC_OK)
                return r;
            /* RFC 8200 4.3-4.6: length in 8-octet units not counting the first 8;
             * RFC 4302 section 2.2: AH counts 4-octet units, minus 2. */
            if (nxt == DEC_V6_AH)
                elen = ((size_t)p[off + 1] + 2) * 4;
            else
                elen = ((size_t)p[off + 1] + 1) * 8;
            if ((r = dec_v6_room(pkt, off, elen)) != DEC_OK)
                return r;
            nxt = p[off];
            off += elen;
            continue;
        case DEC_V6_FRAGMENT: {
            if (n >= DEC_V6_EXT_MAX)
                return DEC_MALFORMED;
            /* RFC 8200 4.5: fixed 8 bytes, offset in the top 13 bits of bytes 2-3. */
            if ((r = dec_v6_room(pkt, off, 8)) != DEC_OK)
                return r;
            uint16_t fo = (uint16_t)(dec_be16(p + off + 2) >> 3);
            pkt->fragment = 1;
            nxt = p[off];
            off += 8;
            if (fo != 0) {
                pkt->proto = nxt;
                pkt->l4 = NULL;
                pkt->l4_len = 0;
                pkt->l4_caplen = 0;
                return DEC_OK;
            }
            continue;
        }
        default:
            break;
        }
        break;
    }
    pkt->proto = nxt;
    pkt->l4 = p + off;
    pkt->l4_len = ip_len - off;
    pkt->l4_caplen = pkt->ip_caplen - off;
    return DEC_OK;
}

/* Decodes an IP packet at frame + off whose family the link layer announced (0: read it
 * from the version nibble, as raw-IP link types require). */
static enum dec_result
dec_ip(int family, const uint8_t *frame, size_t caplen, size_t off, struct dec_packet *pkt)
{
    if (off >= caplen)
        return DEC_TRUNCATED;
    const uint8_t *p = frame + off;
    size_t avail = caplen - off;
    int version = p[0] >> 4;
    if (family == 0)
        family = version;
    if (version != family)
        return DEC_MALFORMED;
    if (family == 4)
        return dec_ipv4(p, avail, pkt);
    if (family == 6)
        return dec_ipv6(p, avail, pkt);
    return DEC_MALFORMED;
}

/* Follows VLAN tags (the tag's TPID sits where the ethertype was) and dispatches on the
 * final ethertype. Linux cooked captures reinsert stripped tags the same way. */
static enum dec_result
dec_ethertype(const uint8_t *frame, size_t caplen, size_t off, uint16_t etype,
              struct dec_packet *pkt)
{
    while (etype == DEC_ETYPE_8021Q || etype == DEC_ETYPE_8021AD || etype == DEC_ETYPE_QINQ_OLD) {
        if (pkt->vlan_count >= DEC_VLAN_MAX)
            return DEC_MALFORMED;
        if (off > caplen || caplen - off < DEC_VLAN_TAG_LEN)
            return DEC_TRUNCATED;
        uint16_t tci = dec_be16(frame + off);
        if (pkt->vlan_count < 2)
            pkt->vlan[pkt->vlan_count] = tci & 0x0fff;
        pkt->vlan_count++;
        etype = dec_be16(frame + off + 2);
        off += DEC_VLAN_TAG_LEN;
    }
    if (etype == DEC_ETYPE_IPV4)
        return dec_ip(4, frame, caplen, off, pkt);
    if (etype == DEC_ETYPE_IPV6)
        return dec_ip(6, frame, caplen, off, pkt);
    return DEC_NOT_IP;
}

/* BSD address family values for IPv6 differ per system: 24 NetBSD/OpenBSD, 28 FreeBSD,
 * 30 macOS. */
static int
dec_af_family(uint32_t af)
{
    switch (af) {
    case 2:
        return 4;
    case 24:
    case 28:
    case 30:
        return 6;
    default:
        return 0;
    }
}

enum dec_result
dec_frame(int dlt, const uint8_t *frame, size_t caplen, struct dec_packet *pkt)
{
    memset(pkt, 0, sizeof *pkt);
    if (!frame)
        caplen = 0;

    switch (dlt) {
    case DEC_DLT_EN10MB:
        if (caplen < DEC_ETH_HLEN)
            return DEC_TRUNCATED;
        return dec_ethertype(frame, caplen, DEC_ETH_HLEN, dec_be16(frame + 12), pkt);
    case DEC_DLT_LINUX_SLL:
        /* packet type, ARPHRD type, address length, 8 address bytes, protocol */
        if (caplen < DEC_SLL_HLEN)
            return DEC_TRUNCATED;
        if (dec_be16(frame + 2) == DEC_ARPHRD_NETLINK)
            return DEC_NOT_IP;
        return dec_ethertype(frame, caplen, DEC_SLL_HLEN, dec_be16(frame + 14), pkt);
    case DEC_DLT_LINUX_SLL2:
        /* protocol, reserved, interface index, ARPHRD type, packet type, address length,
         * 8 address bytes */
        if (caplen < DEC_SLL2_HLEN)
            return DEC_TRUNCATED;
        if (dec_be16(frame + 8) == DEC_ARPHRD_NETLINK)
            return DEC_NOT_IP;
        return dec_ethertype(frame, caplen, DEC_SLL2_HLEN, dec_be16(frame + 0), pkt);
    case DEC_DLT_NULL: {
        if (caplen < DEC_NULL_HLEN)
            return DEC_TRUNCATED;
        /* The family is in the capturing host's byte order, which the file does not
         * record. Family values are small, so the order that yields one is the right one. */
        uint32_t af = dec_le32(frame);
        if (af > 0xffff)
            af = dec_be32(frame);
        int family = dec_af_family(af);
        if (!family)
            return DEC_NOT_IP;
        return dec_ip(family, frame, caplen, DEC_NULL_HLEN, pkt);
    }
    case DEC_DLT_LOOP: {
        if (caplen < DEC_NULL_HLEN)
            return DEC_TRUNCATED;
        int family = dec_af_family(dec_be32(frame));
        if (!family)
            return DEC_NOT_IP;
        return dec_ip(family, frame, caplen, DEC_NULL_HLEN, pkt);
    }
    case DEC_DLT_RAW:
    case DEC_DLT_RAW_LT:
        return dec_ip(0, frame, caplen, 0, pkt);
    case DEC_DLT_IPV4:
        return dec_ip(4, frame, caplen, 0, pkt);
    case DEC_DLT_IPV6:
        return dec_ip(6, frame, caplen, 0, pkt);
    default:
        return DEC_UNSUPPORTED_LINK;
    }
}

static const struct {
    int dlt;
    const char *name;
} dec_link_names[] = {
    {DEC_DLT_NULL, "NULL (BSD loopback)"},
    {DEC_DLT_EN10MB, "EN10MB (Ethernet)"},
    {DEC_DLT_RAW, "RAW (raw IP)"},
    {DEC_DLT_RAW_LT, "RAW (raw IP)"},
    {DEC_DLT_LOOP, "LOOP (OpenBSD loopback)"},
    {DEC_DLT_LINUX_SLL, "LINUX_SLL"},
    {DEC_DLT_IPV4, "IPV4 (raw IPv4)"},
    {DEC_DLT_IPV6, "IPV6 (raw IPv6)"},
    {DEC_DLT_LINUX_SLL2, "LINUX_SLL2"},
    {-1, NULL},
};

int
dec_link_supported(int dlt)
{
    for (size_t i = 0; dec_link_names[i].name; i++)
        if (dec_link_names[i].dlt == dlt)
            return 1;
    return 0;
}

const char *
dec_link_name(int dlt, char *buf, size_t buflen)
{
    const char *name = NULL;
    for (size_t i = 0; dec_link_names[i].name; i++)
        if (dec_link_names[i].dlt == dlt)
            name = dec_link_names[i].name;
    if (!buf || buflen == 0)
        return name ? name : "unknown DLT";
    if (name)
        snprintf(buf, buflen, "%s", name);
    else
        snprintf(buf, buflen, "DLT %d", dlt);
    return buf;
}

enum dec_result
dec_tcp(const struct dec_packet *pkt, struct dec_tcp *tcp)
{
    memset(tcp, 0, sizeof *tcp);
    if (!pkt || pkt->proto != 6 || !pkt->l4)
        return DEC_MALFORMED;
    const uint8_t *p = pkt->l4;
    /* The IP length is the sender's claim, the capture length ours: a segment the sender
     * says is shorter than a TCP header is malformed, one we cut short is truncated. */
    if (pkt->l4_len < DEC_TCP_HLEN)
        return DEC_MALFORMED;
    if (pkt->l4_caplen < DEC_TCP_HLEN)
        return DEC_TRUNCATED;
    size_t hl = (size_t)(p[12] >> 4) * 4;
    if (hl < DEC_TCP_HLEN || hl > pkt->l4_len)
        return DEC_MALFORMED;
    if (hl > pkt->l4_caplen)
        return DEC_TRUNCATED;

    tcp->sport = dec_be16(p);
    tcp->dport = dec_be16(p + 2);
    tcp->seq = dec_be32(p + 4);
    tcp->ack = dec_be32(p + 8);
    tcp->flags = p[13];
    tcp->window = dec_be16(p + 14);
    tcp->hdr_len = hl;
    tcp->payload = p + hl;
    tcp->payload_len = pkt->l4_len - hl;
    tcp->payload_caplen = pkt->l4_caplen - hl;
    return DEC_OK;
}
