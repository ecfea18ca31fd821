/* test_decode.c - link layer and IP decoding: every link type, VLAN stacks, IPv6 extension
 * headers, fragments, and every truncation of valid frames (each decoded from a heap copy of
 * exactly its captured bytes, so the sanitizer build catches any read past the end). */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "decode.h"
#include "mem.h"

/* ---- frame construction ---- */

struct frame {
    uint8_t b[2048];
    size_t n;
};

static void
put8(struct frame *f, unsigned v)
{
    f->b[f->n++] = (uint8_t)v;
}

static void
put16(struct frame *f, unsigned v)
{
    put8(f, (v >> 8) & 0xff);
    put8(f, v & 0xff);
}

static void
put32(struct frame *f, uint32_t v)
{
    put16(f, v >> 16);
    put16(f, v & 0xffff);
}

static void
putmem(struct frame *f, const void *p, size_t n)
{
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void
append(struct frame *f, const struct frame *g)
{
    putmem(f, g->b, g->n);
}

static const uint8_t v4src[4] = {192, 0, 2, 1};
static const uint8_t v4dst[4] = {198, 51, 100, 2};
static const uint8_t v6src[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t v6dst[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
static const char payload[] = "EHLO client.example\r\n";
#define PAYLOAD_LEN (sizeof payload - 1)

/* A TCP segment 40000 -> 25 with doff words of header (options padded with NOPs). */
static void
tcp_segment(struct frame *f, unsigned doff, const char *data, size_t len)
{
    f->n = 0;
    put16(f, 40000);
    put16(f, 25);
    put32(f, 0x01020304);
    put32(f, 0x0a0b0c0d);
    put8(f, doff << 4);
    put8(f, 0x18);
    put16(f, 65535);
    put16(f, 0);
    put16(f, 0);
    for (unsigned i = 5; i < doff; i++)
        put32(f, 0x01010101);
    putmem(f, data, len);
}

/* An IPv4 header (ihl words) around l4, with explicit total length and fragment field. */
static void
ipv4_wrap(struct frame *f, unsigned ihl, unsigned tot, unsigned frag, unsigned proto,
          const struct frame *l4)
{
    f->n = 0;
    put8(f, 0x40 | ihl);
    put8(f, 0);
    put16(f, tot);
    put16(f, 0x1234);
    put16(f, frag);
    put8(f, 57);
    put8(f, proto);
    put16(f, 0);
    putmem(f, v4src, 4);
    putmem(f, v4dst, 4);
    for (unsigned i = 5; i < ihl; i++)
        put32(f, 0x01010101);
    if (l4)
        append(f, l4);
}

static void
ipv4_tcp(struct frame *f)
{
    struct frame t;
    tcp_segment(&t, 5, payload, PAYLOAD_LEN);
    ipv4_wrap(f, 5, (unsigned)(20 + t.n), 0, 6, &t);
}

/* An IPv6 header with a payload length covering `rest`, first next header nh. */
static void
ipv6_wrap(struct frame *f, unsigned nh, const struct frame *rest)
{
    f->n = 0;
    put32(f, 0x60000000);
    put16(f, (unsigned)rest->n);
    put8(f, nh);
    put8(f, 63);
    putmem(f, v6src, 16);
    putmem(f, v6dst, 16);
    append(f, rest);
}

static void
ipv6_tcp(struct frame *f)
{
    struct frame t;
    tcp_segment(&t, 5, payload, PAYLOAD_LEN);
    ipv6_wrap(f, 6, &t);
}

/* An extension header of the generic form (8-octet units), padded with zero options. */
static void
ext_hdr(struct frame *f, unsigned nh, unsigned len8)
{
    put8(f, nh);
    put8(f, len8);
    for (unsigned i = 2; i < (len8 + 1) * 8; i++)
        put8(f, 0);
}

static void
eth_hdr(struct frame *f, unsigned etype)
{
    f->n = 0;
    for (int i = 0; i < 6; i++)
        put8(f, 0x02);
    for (int i = 0; i < 6; i++)
        put8(f, 0x04);
    put16(f, etype);
}

static void
eth_frame(struct frame *f, const unsigned *tpids, const unsigned *vids, size_t ntags,
          unsigned etype, const struct frame *ip)
{
    eth_hdr(f, ntags ? tpids[0] : etype);
    for (size_t i = 0; i < ntags; i++) {
        put16(f, 0x2000 | vids[i]); /* priority 1, DEI 0 */
        put16(f, i + 1 < ntags ? tpids[i + 1] : etype);
    }
    append(f, ip);
}

static void
sll_frame(struct frame *f, unsigned hatype, unsigned proto, const struct frame *ip)
{
    f->n = 0;
    put16(f, 0); /* to us */
    put16(f, hatype);
    put16(f, 6);
    for (int i = 0; i < 8; i++)
        put8(f, i < 6 ? 0x02 : 0);
    put16(f, proto);
    append(f, ip);
}

static void
sll2_frame(struct frame *f, unsigned hatype, unsigned proto, const struct frame *ip)
{
    f->n = 0;
    put16(f, proto);
    put16(f, 0);
    put32(f, 3);
    put16(f, hatype);
    put8(f, 4); /* outgoing */
    put8(f, 6);
    for (int i = 0; i < 8; i++)
        put8(f, i < 6 ? 0x02 : 0);
    append(f, ip);
}

static void
af_frame(struct frame *f, uint32_t af, int big_endian, const struct frame *ip)
{
    f->n = 0;
    if (big_endian)
        put32(f, af);
    else
        for (int i = 0; i < 4; i++)
            put8(f, (af >> (8 * i)) & 0xff);
    append(f, ip);
}

/* ---- decoding from an exact-size copy ---- */

struct dres {
    enum dec_result r;
    struct dec_packet pkt; /* pointers cleared: they pointed into the freed copy */
    size_t ip_off;
    int has_l4;
    size_t l4_off;
    enum dec_result tr;
    struct dec_tcp tcp;
    size_t payload_off;
    uint8_t payload[64];
};

static int
within(const uint8_t *p, size_t n, const uint8_t *lo, size_t lon)
{
    return p >= lo && n <= lon && (size_t)(p - lo) <= lon - n;
}

/* Decodes f truncated to len bytes; checks that every view lies inside what it claims and
 * touches every byte of it. */
static void
run(int dlt, const struct frame *f, size_t len, struct dres *o)
{
    memset(o, 0, sizeof *o);
    uint8_t *copy = mem_alloc(len);
    if (!copy) {
        CHECK(copy != NULL);
        return;
    }
    memcpy(copy, f->b, len);
    o->r = dec_frame(dlt, copy, len, &o->pkt);
    o->tr = DEC_MALFORMED;
    if (o->r == DEC_OK) {
        const struct dec_packet *p = &o->pkt;
        unsigned sum = 0;
        CHECK(p->family == 4 || p->family == 6);
        CHECK(p->ip_caplen <= p->ip_len);
        CHECK(within(p->ip, p->ip_caplen, copy, len));
        CHECK_EQ_INT(p->truncated, p->ip_caplen < p->ip_len);
        for (size_t i = 0; i < p->ip_caplen; i++)
            sum += p->ip[i];
        o->ip_off = (size_t)(p->ip - copy);
        if (p->l4) {
            CHECK(p->l4_caplen <= p->l4_len);
            CHECK(within(p->l4, p->l4_caplen, p->ip, p->ip_caplen));
            CHECK(p->l4_len <= p->ip_len);
            o->has_l4 = 1;
            o->l4_off = (size_t)(p->l4 - copy);
        }
        if (p->proto == 6 && p->l4) {
            o->tr = dec_tcp(p, &o->tcp);
            if (o->tr == DEC_OK) {
                const struct dec_tcp *t = &o->tcp;
                CHECK(t->hdr_len >= 20);
                CHECK(t->payload_caplen <= t->payload_len);
                CHECK(within(t->payload, t->payload_caplen, p->l4, p->l4_caplen));
                CHECK_EQ_INT(t->hdr_len + t->payload_len, p->l4_len);
                for (size_t i = 0; i < t->payload_caplen; i++)
                    sum += t->payload[i];
                o->payload_off = (size_t)(t->payload - copy);
                size_t n =
                    t->payload_caplen < sizeof o->payload ? t->payload_caplen : sizeof o->payload;
                memcpy(o->payload, t->payload, n);
            }
            o->tcp.payload = NULL;
        }
        (void)sum;
    }
    o->pkt.ip = NULL;
    o->pkt.l4 = NULL;
    mem_free(copy);
}

/* The whole frame decodes to TCP 40000 -> 25 carrying the test payload. */
static void
check_tcp_frame(int dlt, const struct frame *f, int family, size_t ip_off)
{
    struct dres o;
    run(dlt, f, f->n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.family, family);
    CHECK_EQ_INT(o.ip_off, ip_off);
    CHECK_EQ_INT(o.pkt.proto, 6);
    CHECK_EQ_INT(o.pkt.truncated, 0);
    CHECK_EQ_INT(o.pkt.fragment, 0);
    CHECK_EQ_INT(o.tr, DEC_OK);
    CHECK_EQ_INT(o.tcp.sport, 40000);
    CHECK_EQ_INT(o.tcp.dport, 25);
    CHECK_EQ_INT(o.tcp.seq, 0x01020304);
    CHECK_EQ_INT(o.tcp.ack, 0x0a0b0c0d);
    CHECK_EQ_INT(o.tcp.flags, DEC_TH_PSH | DEC_TH_ACK);
    CHECK_EQ_INT(o.tcp.window, 65535);
    CHECK_EQ_INT(o.tcp.payload_len, PAYLOAD_LEN);
    CHECK_EQ_INT(o.tcp.payload_caplen, PAYLOAD_LEN);
    CHECK(memcmp(o.payload, payload, PAYLOAD_LEN) == 0);
    if (family == 4) {
        CHECK(memcmp(o.pkt.src, v4src, 4) == 0);
        CHECK(memcmp(o.pkt.dst, v4dst, 4) == 0);
        CHECK_EQ_INT(o.pkt.ttl, 57);
    } else {
        CHECK(memcmp(o.pkt.src, v6src, 16) == 0);
        CHECK(memcmp(o.pkt.dst, v6dst, 16) == 0);
        CHECK_EQ_INT(o.pkt.ttl, 63);
    }
}

/* Every prefix of a valid frame decodes as truncated (or, once the IP header is in, as a
 * truncated packet), never as malformed, and never reads outside the prefix. */
static void
check_all_truncations(int dlt, const struct frame *f)
{
    for (size_t len = 0; len < f->n; len++) {
        struct dres o;
        run(dlt, f, len, &o);
        if (o.r == DEC_OK) {
            CHECK_EQ_INT(o.pkt.truncated, 1);
            if (o.tr != DEC_OK && o.has_l4)
                CHECK_EQ_INT(o.tr, DEC_TRUNCATED);
        } else {
            if (o.r != DEC_TRUNCATED)
                fprintf(stderr, "dlt %d len %zu of %zu: result %d\n", dlt, len, f->n, o.r);
            CHECK_EQ_INT(o.r, DEC_TRUNCATED);
        }
    }
    struct dres o;
    run(dlt, f, f->n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.truncated, 0);
}

/* ---- tests ---- */

static void
test_ethernet(void)
{
    struct frame ip4, ip6, f;
    ipv4_tcp(&ip4);
    ipv6_tcp(&ip6);

    eth_frame(&f, NULL, NULL, 0, 0x0800, &ip4);
    check_tcp_frame(DEC_DLT_EN10MB, &f, 4, 14);
    check_all_truncations(DEC_DLT_EN10MB, &f);
    struct dres o;
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.pkt.vlan_count, 0);
    CHECK_EQ_INT(o.pkt.ip_len, 40 + PAYLOAD_LEN);
    CHECK_EQ_INT(o.l4_off, 34);

    eth_frame(&f, NULL, NULL, 0, 0x86dd, &ip6);
    check_tcp_frame(DEC_DLT_EN10MB, &f, 6, 14);
    check_all_truncations(DEC_DLT_EN10MB, &f);

    /* the ethertype and the version nibble disagree */
    eth_frame(&f, NULL, NULL, 0, 0x0800, &ip6);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);
    eth_frame(&f, NULL, NULL, 0, 0x86dd, &ip4);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);

    /* ARP, and an 802.3 length field, carry no IP */
    struct frame arp = {.n = 28};
    memset(arp.b, 1, arp.n);
    eth_frame(&f, NULL, NULL, 0, 0x0806, &arp);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);
    eth_frame(&f, NULL, NULL, 0, 0x0026, &arp);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);
}

static void
test_padding(void)
{
    /* A bare ACK is 40 bytes of IP in a 60-byte frame: the padding is not IP. */
    struct frame t, ip, f;
    tcp_segment(&t, 5, "", 0);
    ipv4_wrap(&ip, 5, 40, 0, 6, &t);
    eth_frame(&f, NULL, NULL, 0, 0x0800, &ip);
    while (f.n < 60)
        put8(&f, 0xee);
    struct dres o;
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.ip_len, 40);
    CHECK_EQ_INT(o.pkt.ip_caplen, 40);
    CHECK_EQ_INT(o.pkt.truncated, 0);
    CHECK_EQ_INT(o.pkt.l4_len, 20);
    CHECK_EQ_INT(o.pkt.l4_caplen, 20);
    CHECK_EQ_INT(o.tr, DEC_OK);
    CHECK_EQ_INT(o.tcp.payload_len, 0);
    CHECK_EQ_INT(o.tcp.payload_caplen, 0);
}

static void
test_vlan(void)
{
    struct frame ip4, ip6, f;
    struct dres o;
    ipv4_tcp(&ip4);
    ipv6_tcp(&ip6);

    unsigned q[] = {0x8100};
    unsigned v1[] = {100};
    eth_frame(&f, q, v1, 1, 0x0800, &ip4);
    check_tcp_frame(DEC_DLT_EN10MB, &f, 4, 18);
    check_all_truncations(DEC_DLT_EN10MB, &f);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.pkt.vlan_count, 1);
    CHECK_EQ_INT(o.pkt.vlan[0], 100);
    CHECK_EQ_INT(o.pkt.vlan[1], 0);

    unsigned qinq[] = {0x88a8, 0x8100};
    unsigned v2[] = {10, 4094};
    eth_frame(&f, qinq, v2, 2, 0x86dd, &ip6);
    check_tcp_frame(DEC_DLT_EN10MB, &f, 6, 22);
    check_all_truncations(DEC_DLT_EN10MB, &f);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.pkt.vlan_count, 2);
    CHECK_EQ_INT(o.pkt.vlan[0], 10);
    CHECK_EQ_INT(o.pkt.vlan[1], 4094);

    unsigned three[] = {0x9100, 0x88a8, 0x8100};
    unsigned v3[] = {1, 2, 3};
    eth_frame(&f, three, v3, 3, 0x0800, &ip4);
    check_tcp_frame(DEC_DLT_EN10MB, &f, 4, 26);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.pkt.vlan_count, 3);
    CHECK_EQ_INT(o.pkt.vlan[0], 1);
    CHECK_EQ_INT(o.pkt.vlan[1], 2);

    /* eight tags is the limit, nine is a crafted frame */
    unsigned many[9], vids[9];
    for (int i = 0; i < 9; i++) {
        many[i] = 0x8100;
        vids[i] = (unsigned)i + 1;
    }
    eth_frame(&f, many, vids, 8, 0x0800, &ip4);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.vlan_count, 8);
    eth_frame(&f, many, vids, 9, 0x0800, &ip4);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);

    /* a VLAN-tagged ARP is still not IP */
    struct frame arp = {.n = 28};
    memset(arp.b, 1, arp.n);
    eth_frame(&f, q, v1, 1, 0x0806, &arp);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);
    CHECK_EQ_INT(o.pkt.vlan_count, 1);
}

static void
test_cooked(void)
{
    struct frame ip4, ip6, f, tagged;
    struct dres o;
    ipv4_tcp(&ip4);
    ipv6_tcp(&ip6);

    sll_frame(&f, 1, 0x0800, &ip4);
    check_tcp_frame(DEC_DLT_LINUX_SLL, &f, 4, 16);
    check_all_truncations(DEC_DLT_LINUX_SLL, &f);
    sll_frame(&f, 1, 0x86dd, &ip6);
    check_tcp_frame(DEC_DLT_LINUX_SLL, &f, 6, 16);
    /* a tag libpcap put back after the kernel stripped it */
    tagged.n = 0;
    put16(&tagged, 0x0000 | 42);
    put16(&tagged, 0x0800);
    append(&tagged, &ip4);
    sll_frame(&f, 1, 0x8100, &tagged);
    check_tcp_frame(DEC_DLT_LINUX_SLL, &f, 4, 20);
    check_all_truncations(DEC_DLT_LINUX_SLL, &f);
    run(DEC_DLT_LINUX_SLL, &f, f.n, &o);
    CHECK_EQ_INT(o.pkt.vlan_count, 1);
    CHECK_EQ_INT(o.pkt.vlan[0], 42);
    sll_frame(&f, 1, 0x0806, &ip4);
    run(DEC_DLT_LINUX_SLL, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);
    /* netlink: the protocol field is a netlink family, whatever its value */
    sll_frame(&f, 824, 0x0800, &ip4);
    run(DEC_DLT_LINUX_SLL, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);

    sll2_frame(&f, 1, 0x86dd, &ip6);
    check_tcp_frame(DEC_DLT_LINUX_SLL2, &f, 6, 20);
    check_all_truncations(DEC_DLT_LINUX_SLL2, &f);
    sll2_frame(&f, 772, 0x0800, &ip4); /* loopback device */
    check_tcp_frame(DEC_DLT_LINUX_SLL2, &f, 4, 20);
    sll2_frame(&f, 1, 0x8100, &tagged);
    check_tcp_frame(DEC_DLT_LINUX_SLL2, &f, 4, 24);
    sll2_frame(&f, 824, 0x0800, &ip4);
    run(DEC_DLT_LINUX_SLL2, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);
}

static void
test_loopback(void)
{
    struct frame ip4, ip6, f;
    struct dres o;
    ipv4_tcp(&ip4);
    ipv6_tcp(&ip6);

    /* DLT_NULL: host order of the capturing machine, either one */
    af_frame(&f, 2, 0, &ip4);
    check_tcp_frame(DEC_DLT_NULL, &f, 4, 4);
    check_all_truncations(DEC_DLT_NULL, &f);
    af_frame(&f, 2, 1, &ip4);
    check_tcp_frame(DEC_DLT_NULL, &f, 4, 4);
    static const uint32_t v6afs[] = {24, 28, 30};
    for (int i = 0; i < 3; i++) {
        af_frame(&f, v6afs[i], 0, &ip6);
        check_tcp_frame(DEC_DLT_NULL, &f, 6, 4);
        af_frame(&f, v6afs[i], 1, &ip6);
        check_tcp_frame(DEC_DLT_NULL, &f, 6, 4);
    }
    check_all_truncations(DEC_DLT_NULL, &f);
    af_frame(&f, 7, 0, &ip4);
    run(DEC_DLT_NULL, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);
    /* AF_INET6 announced, IPv4 inside */
    af_frame(&f, 30, 0, &ip4);
    run(DEC_DLT_NULL, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);

    /* DLT_LOOP: network order only */
    af_frame(&f, 2, 1, &ip4);
    check_tcp_frame(DEC_DLT_LOOP, &f, 4, 4);
    check_all_truncations(DEC_DLT_LOOP, &f);
    af_frame(&f, 24, 1, &ip6);
    check_tcp_frame(DEC_DLT_LOOP, &f, 6, 4);
    af_frame(&f, 2, 0, &ip4);
    run(DEC_DLT_LOOP, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_NOT_IP);
}

static void
test_raw(void)
{
    struct frame ip4, ip6, f;
    struct dres o;
    ipv4_tcp(&ip4);
    ipv6_tcp(&ip6);

    static const int raw[] = {DEC_DLT_RAW, DEC_DLT_RAW_LT};
    for (int i = 0; i < 2; i++) {
        check_tcp_frame(raw[i], &ip4, 4, 0);
        check_all_truncations(raw[i], &ip4);
        check_tcp_frame(raw[i], &ip6, 6, 0);
        check_all_truncations(raw[i], &ip6);
    }
    check_tcp_frame(DEC_DLT_IPV4, &ip4, 4, 0);
    check_all_truncations(DEC_DLT_IPV4, &ip4);
    check_tcp_frame(DEC_DLT_IPV6, &ip6, 6, 0);
    check_all_truncations(DEC_DLT_IPV6, &ip6);
    run(DEC_DLT_IPV4, &ip6, ip6.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);
    run(DEC_DLT_IPV6, &ip4, ip4.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);
    f = ip4;
    f.b[0] = 0x55;
    run(DEC_DLT_RAW, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);

    /* a NULL frame with no bytes */
    struct dec_packet pkt;
    CHECK_EQ_INT(dec_frame(DEC_DLT_RAW, NULL, 0, &pkt), DEC_TRUNCATED);
    CHECK_EQ_INT(dec_frame(DEC_DLT_EN10MB, NULL, 100, &pkt), DEC_TRUNCATED);
}

static void
test_link_names(void)
{
    char buf[32];
    CHECK_EQ_STR(dec_link_name(1, buf, sizeof buf), "EN10MB (Ethernet)");
    CHECK_EQ_STR(dec_link_name(276, buf, sizeof buf), "LINUX_SLL2");
    CHECK_EQ_STR(dec_link_name(113, buf, sizeof buf), "LINUX_SLL");
    CHECK_EQ_STR(dec_link_name(147, buf, sizeof buf), "DLT 147");
    CHECK_EQ_STR(dec_link_name(-3, buf, sizeof buf), "DLT -3");
    char tiny[4];
    CHECK_EQ_STR(dec_link_name(147, tiny, sizeof tiny), "DLT");
    CHECK(dec_link_name(147, NULL, 0) != NULL);
    static const int ok[] = {0, 1, 12, 101, 108, 113, 228, 229, 276};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CHECK(dec_link_supported(ok[i]));
    CHECK(!dec_link_supported(147));
    CHECK(!dec_link_supported(105));

    struct frame f = {.n = 40};
    memset(f.b, 0x45, f.n);
    struct dres o;
    run(147, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_UNSUPPORTED_LINK);
}

static void
test_ipv4_headers(void)
{
    struct frame t, ip;
    struct dres o;
    tcp_segment(&t, 5, payload, PAYLOAD_LEN);

    /* options: the TCP header starts after them */
    ipv4_wrap(&ip, 7, (unsigned)(28 + t.n), 0, 6, &t);
    check_tcp_frame(DEC_DLT_RAW, &ip, 4, 0);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.l4_off, 28);
    check_all_truncations(DEC_DLT_RAW, &ip);

    /* header length below 20 */
    ipv4_wrap(&ip, 4, (unsigned)(20 + t.n), 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);
    /* total length below the header length */
    ipv4_wrap(&ip, 6, 20, 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);
    /* total length above the capture: a snap-length cut, decoded as truncated */
    ipv4_wrap(&ip, 5, 1500, 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.truncated, 1);
    CHECK_EQ_INT(o.pkt.ip_len, 1500);
    CHECK_EQ_INT(o.pkt.ip_caplen, ip.n);
    CHECK_EQ_INT(o.tr, DEC_OK);
    CHECK_EQ_INT(o.tcp.payload_len, 1460);
    CHECK_EQ_INT(o.tcp.payload_caplen, PAYLOAD_LEN);
    /* zero total length (segmentation offload): the capture is the packet */
    ipv4_wrap(&ip, 5, 0, 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.ip_len, ip.n);
    CHECK_EQ_INT(o.pkt.truncated, 0);
    CHECK_EQ_INT(o.tcp.payload_len, PAYLOAD_LEN);
    /* a total length shorter than the captured bytes: the rest is not IP */
    ipv4_wrap(&ip, 5, 45, 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.ip_caplen, 45);
    CHECK_EQ_INT(o.tcp.payload_len, 5);
    CHECK_EQ_INT(o.tcp.payload_caplen, 5);
}

static void
test_ipv4_fragments(void)
{
    struct frame t, ip, f;
    struct dres o;
    tcp_segment(&t, 5, payload, PAYLOAD_LEN);

    /* first fragment: MF set, offset 0; the TCP header is there */
    ipv4_wrap(&ip, 5, (unsigned)(20 + t.n), 0x2000, 6, &t);
    eth_frame(&f, NULL, NULL, 0, 0x0800, &ip);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.fragment, 1);
    CHECK_EQ_INT(o.has_l4, 1);
    CHECK_EQ_INT(o.tr, DEC_OK);
    CHECK_EQ_INT(o.tcp.dport, 25);

    /* DF alone is not a fragment */
    ipv4_wrap(&ip, 5, (unsigned)(20 + t.n), 0x4000, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.pkt.fragment, 0);
    CHECK_EQ_INT(o.has_l4, 1);

    /* later fragments, with and without MF: no upper-layer header */
    static const unsigned later[] = {0x2000 | 185, 185, 1};
    for (int i = 0; i < 3; i++) {
        ipv4_wrap(&ip, 5, (unsigned)(20 + t.n), later[i], 6, &t);
        run(DEC_DLT_RAW, &ip, ip.n, &o);
        CHECK_EQ_INT(o.r, DEC_OK);
        CHECK_EQ_INT(o.pkt.fragment, 1);
        CHECK_EQ_INT(o.pkt.proto, 6);
        CHECK_EQ_INT(o.has_l4, 0);
        CHECK_EQ_INT(o.pkt.ip_len, 20 + t.n);
        struct dec_packet pkt;
        struct dec_tcp tcp;
        CHECK_EQ_INT(dec_frame(DEC_DLT_RAW, ip.b, ip.n, &pkt), DEC_OK);
        CHECK(pkt.l4 == NULL);
        CHECK_EQ_INT(dec_tcp(&pkt, &tcp), DEC_MALFORMED);
    }
    /* a later fragment too short for a TCP header is still a valid fragment */
    struct frame small = {.n = 8};
    memset(small.b, 0xab, small.n);
    ipv4_wrap(&ip, 5, 28, 3, 6, &small);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.has_l4, 0);
}

static void
test_ipv6_extensions(void)
{
    struct frame t, rest, ip, f;
    struct dres o;
    tcp_segment(&t, 5, payload, PAYLOAD_LEN);

    /* hop-by-hop, destination options, routing, AH, then TCP */
    rest.n = 0;
    ext_hdr(&rest, 60, 0); /* hop-by-hop, 8 bytes */
    ext_hdr(&rest, 43, 1); /* destination options, 16 bytes */
    ext_hdr(&rest, 51, 2); /* routing, 24 bytes */
    put8(&rest, 6);        /* AH: next header, payload length 4 -> (4+2)*4 = 24 bytes */
    put8(&rest, 4);
    for (int i = 2; i < 24; i++)
        put8(&rest, 0);
    append(&rest, &t);
    ipv6_wrap(&ip, 0, &rest);
    eth_frame(&f, NULL, NULL, 0, 0x86dd, &ip);
    check_tcp_frame(DEC_DLT_EN10MB, &f, 6, 14);
    run(DEC_DLT_EN10MB, &f, f.n, &o);
    CHECK_EQ_INT(o.l4_off, 14 + 40 + 8 + 16 + 24 + 24);
    CHECK_EQ_INT(o.pkt.l4_len, t.n);
    check_all_truncations(DEC_DLT_EN10MB, &f);

    /* fragment header, offset 0 with M: first fragment, TCP visible */
    rest.n = 0;
    put8(&rest, 6);
    put8(&rest, 0);
    put16(&rest, 0x0001);
    put32(&rest, 0xdeadbeef);
    append(&rest, &t);
    ipv6_wrap(&ip, 44, &rest);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.fragment, 1);
    CHECK_EQ_INT(o.pkt.proto, 6);
    CHECK_EQ_INT(o.has_l4, 1);
    CHECK_EQ_INT(o.l4_off, 48);
    CHECK_EQ_INT(o.tr, DEC_OK);
    check_all_truncations(DEC_DLT_RAW, &ip);

    /* fragment header with an offset: no upper-layer header */
    ip.b[40 + 2] = 0x05;
    ip.b[40 + 3] = 0xa8; /* offset 181 (x8 bytes), M clear: the last fragment */
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.fragment, 1);
    CHECK_EQ_INT(o.pkt.proto, 6);
    CHECK_EQ_INT(o.has_l4, 0);

    /* ESP stops the walk: its contents are encrypted */
    rest.n = 0;
    put32(&rest, 0x100);
    put32(&rest, 1);
    ipv6_wrap(&ip, 50, &rest);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.proto, 50);
    CHECK_EQ_INT(o.l4_off, 40);
    CHECK_EQ_INT(o.pkt.l4_len, 8);

    /* no next header */
    rest.n = 0;
    ipv6_wrap(&ip, 59, &rest);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.ip_len, 40);
    CHECK_EQ_INT(o.pkt.l4_len, 0);

    /* an extension header longer than the payload length says */
    rest.n = 0;
    ext_hdr(&rest, 6, 3); /* 32 bytes */
    ipv6_wrap(&ip, 0, &rest);
    ip.b[5] = 16; /* payload length 16 */
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);
    /* the same header cut by the capture (the IP length claims all of it) */
    ip.b[5] = 32;
    run(DEC_DLT_RAW, &ip, 40 + 20, &o);
    CHECK_EQ_INT(o.r, DEC_TRUNCATED);
    run(DEC_DLT_RAW, &ip, 40 + 1, &o);
    CHECK_EQ_INT(o.r, DEC_TRUNCATED);

    /* an endless chain of options headers */
    rest.n = 0;
    for (int i = 0; i < 20; i++)
        ext_hdr(&rest, 60, 0);
    append(&rest, &t);
    ipv6_wrap(&ip, 60, &rest);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_MALFORMED);
    rest.n = 0;
    for (int i = 0; i < 15; i++)
        ext_hdr(&rest, i == 14 ? 6 : 60, 0);
    append(&rest, &t);
    ipv6_wrap(&ip, 60, &rest);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.tr, DEC_OK);

    /* zero payload length with a next header: offload or jumbogram, capture length rules */
    ipv6_tcp(&ip);
    ip.b[4] = ip.b[5] = 0;
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.ip_len, ip.n);
    CHECK_EQ_INT(o.tcp.payload_len, PAYLOAD_LEN);

    /* payload length beyond the capture: snap-length cut */
    ipv6_tcp(&ip);
    ip.b[4] = 0x05;
    ip.b[5] = 0xdc;
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.pkt.truncated, 1);
    CHECK_EQ_INT(o.pkt.ip_len, 40 + 1500);
    CHECK_EQ_INT(o.tcp.payload_len, 1500 - 20);
    CHECK_EQ_INT(o.tcp.payload_caplen, PAYLOAD_LEN);
}

static void
test_tcp_header(void)
{
    struct frame t, ip;
    struct dres o;

    /* options: payload after 32 bytes */
    tcp_segment(&t, 8, payload, PAYLOAD_LEN);
    ipv4_wrap(&ip, 5, (unsigned)(20 + t.n), 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.tr, DEC_OK);
    CHECK_EQ_INT(o.tcp.hdr_len, 32);
    CHECK_EQ_INT(o.payload_off, 52);
    CHECK(memcmp(o.payload, payload, PAYLOAD_LEN) == 0);
    /* options cut by the capture */
    run(DEC_DLT_RAW, &ip, 20 + 24, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.tr, DEC_TRUNCATED);
    run(DEC_DLT_RAW, &ip, 20 + 10, &o);
    CHECK_EQ_INT(o.tr, DEC_TRUNCATED);

    /* data offset below 5 */
    tcp_segment(&t, 5, payload, PAYLOAD_LEN);
    t.b[12] = 0x40;
    ipv4_wrap(&ip, 5, (unsigned)(20 + t.n), 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.tr, DEC_MALFORMED);
    /* data offset beyond the segment the IP header describes */
    t.b[12] = 0xf0;
    ipv4_wrap(&ip, 5, (unsigned)(20 + 40), 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.tr, DEC_MALFORMED);
    /* an IP packet too short to hold a TCP header */
    tcp_segment(&t, 5, "", 0);
    ipv4_wrap(&ip, 5, 30, 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.r, DEC_OK);
    CHECK_EQ_INT(o.tr, DEC_MALFORMED);
    /* all flag bits survive */
    tcp_segment(&t, 5, "", 0);
    t.b[13] = 0xff;
    ipv4_wrap(&ip, 5, 40, 0, 6, &t);
    run(DEC_DLT_RAW, &ip, ip.n, &o);
    CHECK_EQ_INT(o.tcp.flags, 0xff);

    /* not TCP */
    struct dec_packet pkt;
    struct dec_tcp tcp;
    ipv4_wrap(&ip, 5, 40, 0, 17, &t);
    CHECK_EQ_INT(dec_frame(DEC_DLT_RAW, ip.b, ip.n, &pkt), DEC_OK);
    CHECK_EQ_INT(dec_tcp(&pkt, &tcp), DEC_MALFORMED);
    CHECK_EQ_INT(dec_tcp(NULL, &tcp), DEC_MALFORMED);
}

/* Deterministic mutations of valid frames: whatever the bytes say, views stay inside the
 * capture (run() checks) and the decoder answers. */
static void
test_mutations(void)
{
    struct frame ip4, ip6, t, rest, frames[6];
    static const int dlts[6] = {DEC_DLT_EN10MB,     DEC_DLT_EN10MB, DEC_DLT_LINUX_SLL,
                                DEC_DLT_LINUX_SLL2, DEC_DLT_NULL,   DEC_DLT_RAW};
    ipv4_tcp(&ip4);
    tcp_segment(&t, 6, payload, PAYLOAD_LEN);
    rest.n = 0;
    ext_hdr(&rest, 44, 0);
    put8(&rest, 6);
    put8(&rest, 0);
    put16(&rest, 0);
    put32(&rest, 7);
    append(&rest, &t);
    ipv6_wrap(&ip6, 0, &rest);
    unsigned qinq[] = {0x88a8, 0x8100}, v2[] = {5, 6};
    eth_frame(&frames[0], NULL, NULL, 0, 0x0800, &ip4);
    eth_frame(&frames[1], qinq, v2, 2, 0x86dd, &ip6);
    sll_frame(&frames[2], 1, 0x86dd, &ip6);
    sll2_frame(&frames[3], 1, 0x0800, &ip4);
    af_frame(&frames[4], 30, 0, &ip6);
    frames[5] = ip6;

    uint32_t rnd = 0x12345678;
    for (int i = 0; i < 20000; i++) {
        int k = i % 6;
        struct frame f = frames[k];
        int nmut = 1 + i % 4;
        for (int m = 0; m < nmut; m++) {
            rnd = rnd * 1664525u + 1013904223u;
            size_t pos = (rnd >> 8) % f.n;
            rnd = rnd * 1664525u + 1013904223u;
            f.b[pos] = (uint8_t)(rnd >> 24);
        }
        rnd = rnd * 1664525u + 1013904223u;
        size_t len = (i & 1) ? f.n : (rnd >> 8) % (f.n + 1);
        struct dres o;
        run(dlts[k], &f, len, &o);
        CHECK(o.r >= DEC_OK && o.r <= DEC_UNSUPPORTED_LINK);
    }
}

int
main(void)
{
    test_ethernet();
    test_padding();
    test_vlan();
    test_cooked();
    test_loopback();
    test_raw();
    test_link_names();
    test_ipv4_headers();
    test_ipv4_fragments();
    test_ipv6_extensions();
    test_tcp_header();
    test_mutations();
    CHECK_DONE();
}
