/* test_fragbound.c - the bound on incomplete IPv4 datagrams: count, completion, expiry. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "decode.h"
#include "fragbound.h"

/* A fragment of `len` payload bytes at byte offset `off` of datagram `id` to host `dst`. */
static void
frag(struct dec_packet *p, uint8_t ip[20], uint32_t dst, uint16_t id, unsigned off, size_t len,
     int more)
{
    memset(p, 0, sizeof *p);
    memset(ip, 0, 20);
    ip[0] = 0x45;
    ip[4] = (uint8_t)(id >> 8);
    ip[5] = (uint8_t)id;
    uint16_t fo = (uint16_t)((off / 8) | (more ? 0x2000 : 0));
    ip[6] = (uint8_t)(fo >> 8);
    ip[7] = (uint8_t)fo;
    p->family = 4;
    p->ip = ip;
    p->ip_caplen = 20;
    p->ip_len = 20 + len;
    p->proto = 6;
    p->fragment = 1;
    p->src[0] = 192;
    p->src[3] = 1;
    memcpy(p->dst, &dst, 4);
}

int
main(void)
{
    struct fragbound *fb = fb_create(4);
    struct dec_packet p;
    uint8_t ip[20];
    CHECK(fb != NULL);
    /* Four incomplete datagrams fill the table; a fifth is dropped, more of the four not. */
    for (uint32_t d = 1; d <= 4; d++) {
        frag(&p, ip, d, 7, 0, 24, 1);
        CHECK_EQ_INT(fb_admit(fb, &p, 1000), 1);
    }
    frag(&p, ip, 5, 7, 0, 24, 1);
    CHECK_EQ_INT(fb_admit(fb, &p, 1000), 0);
    frag(&p, ip, 2, 7, 24, 16, 1);
    CHECK_EQ_INT(fb_admit(fb, &p, 1001), 1);
    /* Completing one makes room. */
    frag(&p, ip, 1, 7, 24, 8, 0);
    CHECK_EQ_INT(fb_admit(fb, &p, 1002), 1);
    frag(&p, ip, 5, 7, 0, 24, 1);
    CHECK_EQ_INT(fb_admit(fb, &p, 1003), 1);
    frag(&p, ip, 6, 7, 0, 24, 1);
    CHECK_EQ_INT(fb_admit(fb, &p, 1004), 0);
    /* After the lifetime the old ones are forgotten. */
    CHECK_EQ_INT(fb_admit(fb, &p, 1004 + FB_LIFETIME_US + 1), 1);
    /* Whole packets are never held back. */
    p.fragment = 0;
    CHECK_EQ_INT(fb_admit(fb, &p, 1005 + FB_LIFETIME_US), 1);
    fb_destroy(fb);
    CHECK_DONE();
}
