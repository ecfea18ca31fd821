/* test_communityid.c - Community ID v1 against the spec's published baseline
 * (community-id-spec baseline/baseline_deflt.json and baseline_seed1.json). */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "communityid.h"

struct cid_vec {
    uint16_t seed;
    uint8_t proto;
    const char *saddr, *daddr;
    uint16_t sport, dport;
    const char *want;
};

static const struct cid_vec cid_vecs[] = {
    /* TCP over IPv4, both directions must agree */
    {0, 6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {0, 6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
    {1, 6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    {1, 6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
    /* SMTP over IPv6 */
    {0, 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {0, 6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
    {1, 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25,
     "1:eJYTW6AOzFLlSUoESovMjnu7rMw="},
    /* UDP and SCTP (equal ports: the addresses decide) */
    {0, 17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {0, 17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
    {0, 132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    {0, 132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="},
    /* ICMP echo (two-way) and time exceeded (one-way), ports as (type, counter-type/code) */
    {0, 1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {0, 1, "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="},
    {0, 1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="},
    {1, 1, "192.168.0.89", "192.168.0.1", 8, 0, "1:03g6IloqVBdcZlPyX8r0hgoE7kA="},
    /* ICMPv6 neighbour discovery: the same addresses in two roles give two flows */
    {0, 58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136,
     "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {0, 58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135,
     "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="},
    {0, 58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136,
     "1:zavyT/cezQr1fmImYCwYnMXbgck="},
    {0, 58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0,
     "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="},
    {0, 58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="},
    /* RSVP carries no ports: they are left out of the hash whatever the caller passes */
    {0, 46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
    {0, 46, "10.1.12.2", "10.1.12.1", 1234, 80, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="},
    {1, 46, "10.1.12.1", "10.1.12.2", 0, 0, "1:rYir8gphR31noO9iDRQmF/BteEI="},
};

static int
cid_parse(const char *text, uint8_t addr[16])
{
    if (inet_pton(AF_INET, text, addr) == 1)
        return 4;
    if (inet_pton(AF_INET6, text, addr) == 1)
        return 6;
    return 0;
}

int
main(void)
{
    /* Odd vectors through a kept context, even ones one-shot: both must give the spec's ids,
     * and a context reused across flows must not carry anything over. */
    struct communityid *h = communityid_create();
    CHECK(h != NULL);
    for (size_t i = 0; i < sizeof cid_vecs / sizeof cid_vecs[0]; i++) {
        const struct cid_vec *v = &cid_vecs[i];
        uint8_t s[16], d[16];
        int fs = cid_parse(v->saddr, s), fd = cid_parse(v->daddr, d);
        CHECK(fs != 0 && fs == fd);
        char out[32];
        CHECK_EQ_INT(communityid_v1(i % 2 ? h : NULL, v->seed, fs, s, d, v->proto, v->sport,
                                    v->dport, out, sizeof out),
                     0);
        if (strcmp(out, v->want) != 0)
            fprintf(stderr, "vector %zu: %s -> %s\n", i, v->saddr, v->daddr);
        CHECK_EQ_STR(out, v->want);
    }

    /* Equal addresses: the ports decide the order, so both directions agree. */
    uint8_t lo[4] = {127, 0, 0, 1};
    char a[32], b[32];
    CHECK_EQ_INT(communityid_v1(h, 0, 4, lo, lo, 6, 40000, 25, a, sizeof a), 0);
    CHECK_EQ_INT(communityid_v1(h, 0, 4, lo, lo, 6, 25, 40000, b, sizeof b), 0);
    CHECK_EQ_STR(a, b);

    /* Bad arguments fail cleanly and leave no half-written id. */
    char small[30] = "x";
    CHECK_EQ_INT(communityid_v1(h, 0, 4, lo, lo, 6, 1, 2, small, sizeof small), -1);
    CHECK_EQ_INT(communityid_v1(h, 0, 5, lo, lo, 6, 1, 2, a, sizeof a), -1);
    CHECK_EQ_STR(a, "");
    CHECK_EQ_INT(communityid_v1(h, 0, 4, NULL, lo, 6, 1, 2, a, sizeof a), -1);
    communityid_destroy(h);
    CHECK_DONE();
}
