/* run.c - the packet loop (see run.h). */
#include "run.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "reasm.h"

/* For someone waiting on a large file: overwritten in place, at most once a second. */
static void
run_progress_line(struct run_stats *st, int final)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double t = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    if (!final && t - st->last_progress < 1.0)
        return;
    st->last_progress = t;
    if (final)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r%llu packets read...", (unsigned long long)st->frames);
}

static int run_loop(struct cap *cap, uint64_t count, volatile sig_atomic_t *stop,
                    struct run_stats *st, void (*progress)(void *ctx, uint64_t frame), void *pctx,
                    char *err, size_t errlen);

int
run_packets(struct cap *cap, uint64_t count, volatile sig_atomic_t *stop, struct run_stats *st,
            void (*progress)(void *ctx, uint64_t frame), void *pctx, char *err, size_t errlen)
{
    int rc = run_loop(cap, count, stop, st, progress, pctx, err, errlen);
    if (st->progress_line && st->last_progress > 0)
        run_progress_line(st, 1);
    return rc;
}

static int
run_loop(struct cap *cap, uint64_t count, volatile sig_atomic_t *stop, struct run_stats *st,
         void (*progress)(void *ctx, uint64_t frame), void *pctx, char *err, size_t errlen)
{
    struct cap_pkt pkt;
    uint64_t n = 0;
    while (!*stop) {
        int r = cap_next(cap, &pkt, err, errlen);
        if (r == CAP_END)
            return 0;
        if (r == CAP_ERROR)
            return 3;
        uint64_t frame = st->frames + 1;
        if (st->shared_frames) {
            frame = __atomic_add_fetch(st->shared_frames, 1, __ATOMIC_RELAXED);
            if (count && frame > count) {
                cap_uncount(cap, &pkt);
                return 0;
            }
        }
        st->frames++;
        if (!st->first_us)
            st->first_us = pkt.ts_us;
        if (pkt.ts_us > st->last_us)
            st->last_us = pkt.ts_us;
        struct dec_packet dp;
        switch (dec_frame(pkt.dlt, pkt.data, pkt.caplen, &dp)) {
        case DEC_OK:
            if (dp.truncated)
                st->truncated++;
            reasm_packet(&dp, pkt.ts_us, pkt.len, frame);
            break;
        case DEC_NOT_IP:
            st->non_ip++;
            break;
        case DEC_TRUNCATED:
            st->truncated++;
            break;
        case DEC_MALFORMED:
            st->malformed++;
            break;
        case DEC_UNSUPPORTED_LINK: {
            /* cap_open refuses these already; kept so a new source cannot slip through. */
            char name[64];
            st->unsupported++;
            snprintf(err, errlen, "unsupported link type %s",
                     dec_link_name(pkt.dlt, name, sizeof name));
            return 3;
        }
        }
        if (st->frames % RUN_PROGRESS_EVERY == 0) {
            if (progress)
                progress(pctx, st->frames);
            if (st->progress_line && st->frames % (64 * RUN_PROGRESS_EVERY) == 0)
                run_progress_line(st, 0);
        }
        if (count && !st->shared_frames && ++n >= count)
            return 0;
    }
    return 0;
}
