/* fragbound.h - a bound on the IPv4 fragments handed to libnids. libnids keeps every
 * incomplete datagram until a wall-clock timer fires, which reading a file outruns, and
 * bounds memory per destination only: fragments to many destinations grew without limit.
 * Here at most a fixed number of datagrams may be incomplete at once, each for at most
 * FB_LIFETIME_US of capture time; fragments of a further datagram are dropped. */
#ifndef SMTPSNIFF_FRAGBOUND_H
#define SMTPSNIFF_FRAGBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"

/* Linux's ipfrag_time: how long a datagram may wait for its missing fragments. */
#define FB_LIFETIME_US INT64_C(30000000)
#define FB_DEFAULT_MAX 4096

struct fragbound;

/* NULL on allocation failure. */
struct fragbound *fb_create(size_t max_datagrams);
void fb_destroy(struct fragbound *fb);
/* For an IPv4 fragment (pkt->fragment): 1 when it may go on to reassembly, 0 when it is
 * to be dropped (too many incomplete datagrams). Packets that are not IPv4 fragments
 * always return 1. */
int fb_admit(struct fragbound *fb, const struct dec_packet *pkt, int64_t ts_us);
/* Fragments that overlapped one already received with other bytes. */
uint64_t fb_conflicts(const struct fragbound *fb);

#endif
