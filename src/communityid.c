/* communityid.c - Community ID v1 flow hash (corelight/community-id-spec): SHA-1 over the
 * ordered flow tuple, base64 encoded, "1:" prefixed. */
#include "communityid.h"

#include <string.h>

#include <openssl/evp.h>

#include "mem.h"

/* OpenSSL 3 looks an algorithm up by name on every one-shot digest: for 40 bytes of input
 * that lookup is most of the work, so a caller hashing many flows keeps one context. */
struct communityid {
    EVP_MD *sha1;
    EVP_MD_CTX *ctx;
};

struct communityid *
communityid_create(void)
{
    struct communityid *c = mem_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    c->ctx = EVP_MD_CTX_new();
    if (!c->sha1 || !c->ctx) {
        communityid_destroy(c);
        return NULL;
    }
    return c;
}

void
communityid_destroy(struct communityid *c)
{
    if (!c)
        return;
    EVP_MD_CTX_free(c->ctx);
    EVP_MD_free(c->sha1);
    mem_free(c);
}

static int
cid_sha1(struct communityid *c, const uint8_t *in, size_t n, unsigned char *md, unsigned *mdlen)
{
    if (!c)
        return EVP_Digest(in, n, md, mdlen, EVP_sha1(), NULL) == 1 ? 0 : -1;
    if (EVP_DigestInit_ex2(c->ctx, c->sha1, NULL) != 1 || EVP_DigestUpdate(c->ctx, in, n) != 1 ||
        EVP_DigestFinal_ex(c->ctx, md, mdlen) != 1)
        return -1;
    return 0;
}

#define CID_PROTO_ICMP 1
#define CID_PROTO_TCP 6
#define CID_PROTO_UDP 17
#define CID_PROTO_ICMP6 58
#define CID_PROTO_SCTP 132

/* "1:" + 28 base64 characters for a 20-byte digest + NUL */
#define CID_OUT_MIN 31

/* ICMP messages that have an answer are hashed as a two-way flow (type, counter-type); all
 * others are one-way (type, code) and keep their direction. Zeek's ICMP4_counterpart and
 * ICMP6_counterpart define the pairs, and the spec takes them from there. */
static int
cid_icmp_two_way(uint8_t proto, uint16_t type)
{
    static const uint8_t v4[] = {8, 0, 13, 14, 15, 16, 10, 17, 18};
    static const uint8_t v6[] = {128, 129, 133, 134, 135, 136, 130, 131, 139, 140, 144, 145};
    const uint8_t *t = proto == CID_PROTO_ICMP ? v4 : v6;
    size_t n = proto == CID_PROTO_ICMP ? sizeof v4 : sizeof v6;
    for (size_t i = 0; i < n; i++)
        if (t[i] == type)
            return 1;
    return 0;
}

static int
cid_has_ports(uint8_t proto)
{
    return proto == CID_PROTO_ICMP || proto == CID_PROTO_TCP || proto == CID_PROTO_UDP ||
           proto == CID_PROTO_ICMP6 || proto == CID_PROTO_SCTP;
}

int
communityid_v1(struct communityid *h, uint16_t seed, int family, const uint8_t *saddr,
               const uint8_t *daddr, uint8_t proto, uint16_t sport, uint16_t dport, char *out,
               size_t outlen)
{
    if (!out || outlen < CID_OUT_MIN)
        return -1;
    out[0] = '\0';
    if (!saddr || !daddr || (family != 4 && family != 6))
        return -1;
    size_t alen = family == 4 ? 4 : 16;
    int ports = cid_has_ports(proto);

    /* The smaller (address, port) endpoint goes first so both directions hash alike;
     * addresses compare as network-order bytes, ports as numbers. */
    int swap = 0;
    int c = memcmp(saddr, daddr, alen);
    if (c > 0 || (c == 0 && ports && sport > dport))
        swap = 1;
    if ((proto == CID_PROTO_ICMP || proto == CID_PROTO_ICMP6) && !cid_icmp_two_way(proto, sport))
        swap = 0;
    const uint8_t *a1 = swap ? daddr : saddr, *a2 = swap ? saddr : daddr;
    uint16_t p1 = swap ? dport : sport, p2 = swap ? sport : dport;

    /* seed(2) addr(4|16) addr(4|16) proto(1) pad(1) [sport(2) dport(2)], big-endian */
    uint8_t in[2 + 16 + 16 + 2 + 4];
    size_t n = 0;
    in[n++] = (uint8_t)(seed >> 8);
    in[n++] = (uint8_t)seed;
    memcpy(in + n, a1, alen);
    n += alen;
    memcpy(in + n, a2, alen);
    n += alen;
    in[n++] = proto;
    in[n++] = 0;
    if (ports) {
        in[n++] = (uint8_t)(p1 >> 8);
        in[n++] = (uint8_t)p1;
        in[n++] = (uint8_t)(p2 >> 8);
        in[n++] = (uint8_t)p2;
    }

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (cid_sha1(h, in, n, md, &mdlen) < 0 || mdlen != 20)
        return -1;
    out[0] = '1';
    out[1] = ':';
    /* EVP_EncodeBlock writes 28 characters and a NUL for 20 bytes: room checked above. */
    EVP_EncodeBlock((unsigned char *)out + 2, md, (int)mdlen);
    return 0;
}
