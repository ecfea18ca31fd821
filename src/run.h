/* run.h - the packet loop: capture -> decode -> reassembly, until the end of the input,
 * a packet count or a stop request. Shared by the command line and the fuzz targets. */
#ifndef SMTPSNIFF_RUN_H
#define SMTPSNIFF_RUN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "capture.h"

struct run_stats {
    uint64_t frames; /* read so far: the number of the last frame */
    uint64_t non_ip, truncated, malformed, unsupported;
    uint64_t ts_backwards;   /* packets stamped earlier than one read before them */
    uint64_t v4_reserved;    /* IPv4 packets from or to 240.0.0.0/4, not analysed */
    uint64_t frag_dropped;   /* IPv4 fragments dropped: too many incomplete datagrams */
    uint64_t frag_conflicts; /* IPv4 fragments overlapping an earlier one with other bytes */
    int64_t first_us, last_us;
    int progress_line;       /* set by the caller: a progress line on stderr (a terminal) */
    uint64_t *shared_frames; /* set by the caller when live workers share one interface: the
                                frame numbers come from this counter in shared memory, so
                                they stay unique across the workers (session ids are frame
                                numbers); `count` then limits that shared number */
    double last_progress;
    /* Set by the caller for a live capture: the wall clock drives the connections (ends,
     * idle timeouts, what is awaited) every RUN_TICK_US, packets or not. */
    int live_clock;
    int64_t last_tick_us; /* wall clock of the last tick */
    /* The progress line's sessions so far (set by the caller, may be NULL), and its start. */
    uint64_t (*progress_sessions)(void *ctx);
    void *progress_ctx;
    double progress_t0;
};

#define RUN_TICK_US 250000

/* Live: the time the connections are judged at: the wall clock, never behind the last
 * packet's stamp (a clock stepped back must not end connections early or late). */
int64_t run_clock_us(const struct run_stats *st);

/* Reads packets until CAP_END, `count` packets (0: no limit) or *stop. Returns 0, or 3
 * with the reason in err (unreadable input, unsupported link type). The caller ends the
 * open connections (reasm_finish) afterwards. */
/* progress, when given, is called every RUN_PROGRESS_EVERY frames once they are fully
 * processed (workers tell their parent how far they are). */
#define RUN_PROGRESS_EVERY 256
int run_packets(struct cap *cap, uint64_t count, volatile sig_atomic_t *stop, struct run_stats *st,
                void (*progress)(void *ctx, uint64_t frame), void *pctx, char *err, size_t errlen);

#endif
