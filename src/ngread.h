/* ngread.h - a pcapng reader for what libpcap's cannot read: a file whose interfaces have
 * different link types (dumpcap on several interfaces, mergecap of unlike captures).
 * libpcap's reader stops at the first interface whose link type differs from the first
 * one's; capture.c then reads the file again with this one, which gives each packet its
 * own interface's link type and timestamp resolution (pcapng spec, draft-ietf-opsawg-pcapng:
 * blocks SHB, IDB, EPB, SPB and the obsolete PB; every other block is skipped). */
#ifndef SMTPSNIFF_NGREAD_H
#define SMTPSNIFF_NGREAD_H

#include <stdint.h>
#include <stdio.h>

struct ngr;

struct ngr_pkt {
    int64_t ts_us; /* microseconds since the epoch (0 when before it) */
    uint32_t caplen, len;
    int dlt;             /* the link type of the packet's interface */
    const uint8_t *data; /* borrowed until the next ngr_next */
    int64_t offset;      /* file offset of the packet's block */
};

enum { NGR_PACKET = 1, NGR_END = 0, NGR_DAMAGED = -1 };

/* Reads from f (positioned at the file's first byte; not closed by ngr_close). Packets in
 * blocks that start before skip_before are not returned (libpcap handed them out already).
 * NULL when out of memory. */
struct ngr *ngr_open(FILE *f, int64_t skip_before);
/* The next packet; NGR_DAMAGED with the reason in ngr_error() (and ngr_truncated() when
 * the file ends inside a block); ngr_offset() is then the damaged block's offset. */
int ngr_next(struct ngr *r, struct ngr_pkt *p);
const char *ngr_error(const struct ngr *r);
int ngr_truncated(const struct ngr *r);
int64_t ngr_offset(const struct ngr *r);
void ngr_close(struct ngr *r);

#endif
