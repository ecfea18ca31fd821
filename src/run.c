/* run.c - the packet loop (see run.h). */
#include "run.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "decode.h"
#include "fragbound.h"
#include "reasm.h"
#include "v6map.h"

static double
run_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* "12.3 MB": decimal units, as the file sizes people compare with. */
static void
run_size(char *buf, size_t len, double b)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    unsigned u = 0;
    while (b >= 1000 && u + 1 < sizeof units / sizeof units[0]) {
        b /= 1000;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

/* For someone waiting on a large file: overwritten in place, at most once a second. Bytes
 * of the input read (of their total when the files have sizes), sessions so far, the rate
 * and the time left at that rate. */
static void
run_progress_line(struct run_stats *st, const struct cap *cap, int final)
{
    double t = run_now();
    if (!final && t - st->last_progress < 1.0)
        return;
    st->last_progress = t;
    if (final) {
        fputs("\r\033[K", stderr);
        return;
    }
    uint64_t done, total;
    cap_progress(cap, &done, &total);
    char sd[32], tot[32], rate[32];
    double el = t - st->progress_t0;
    double bps = el > 0 ? (double)done / el : 0;
    run_size(sd, sizeof sd, (double)done);
    run_size(rate, sizeof rate, bps);
    unsigned long long sess = st->progress_sessions ? st->progress_sessions(st->progress_ctx) : 0;
    if (total > 0) {
        run_size(tot, sizeof tot, (double)total);
        double left = bps > 0 && total > done ? (double)(total - done) / bps : 0;
        unsigned long long l = (unsigned long long)left;
        fprintf(
            stderr,
            "\r%s of %s (%.0f%%), %llu packets, %llu sessions, %s/s, %llu:%02llu:%02llu left\033[K",
            sd, tot, 100.0 * (double)done / (double)total, (unsigned long long)st->frames, sess,
            rate, l / 3600, l / 60 % 60, l % 60);
    } else {
        fprintf(stderr, "\r%s read, %llu packets, %llu sessions, %s/s\033[K", sd,
                (unsigned long long)st->frames, sess, rate);
    }
}

/* IPv6 connections are reassembled under synthetic IPv4 addresses in 240.0.0.0/4 (see
 * v6map.h). An IPv4 packet really addressed from or to that reserved block (RFC 1112
 * section 4) could otherwise be taken for part of an IPv6 session, forged data or an RST
 * included: the families must never mix, so such packets are only counted. */
static int
run_reserved_v4(const struct dec_packet *dp)
{
    uint32_t s, d;
    if (dp->family != 4)
        return 0;
    memcpy(&s, dp->src, 4);
    memcpy(&d, dp->dst, 4);
    return v6map_is_synthetic(s) || v6map_is_synthetic(d);
}

int64_t
run_clock_us(const struct run_stats *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    return us > st->last_us ? us : st->last_us;
}

/* Live: at most every RUN_TICK_US of wall time, whether packets come or not. */
static void
run_tick(struct run_stats *st)
{
    if (!st->live_clock)
        return;
    int64_t now = run_clock_us(st);
    if (now - st->last_tick_us < RUN_TICK_US)
        return;
    st->last_tick_us = now;
    reasm_tick(now);
}

static int run_loop(struct cap *cap, uint64_t count, volatile sig_atomic_t *stop,
                    struct run_stats *st, struct fragbound *fb,
                    void (*progress)(void *ctx, uint64_t frame), void *pctx, char *err,
                    size_t errlen);

int
run_packets(struct cap *cap, uint64_t count, volatile sig_atomic_t *stop, struct run_stats *st,
            void (*progress)(void *ctx, uint64_t frame), void *pctx, char *err, size_t errlen)
{
    struct fragbound *fb = fb_create(FB_DEFAULT_MAX);
    if (!fb) {
        snprintf(err, errlen, "out of memory");
        return 3;
    }
    if (st->live_clock)
        cap_wake_idle(cap);
    if (st->progress_line)
        st->progress_t0 = st->last_progress = run_now();
    int rc = run_loop(cap, count, stop, st, fb, progress, pctx, err, errlen);
    st->frag_conflicts = fb_conflicts(fb);
    fb_destroy(fb);
    if (st->progress_line && st->last_progress > st->progress_t0)
        run_progress_line(st, cap, 1);
    return rc;
}

static int
run_loop(struct cap *cap, uint64_t count, volatile sig_atomic_t *stop, struct run_stats *st,
         struct fragbound *fb, void (*progress)(void *ctx, uint64_t frame), void *pctx, char *err,
         size_t errlen)
{
    struct cap_pkt pkt;
    uint64_t n = 0;
    while (!*stop) {
        int r = cap_next(cap, &pkt, err, errlen);
        if (r == CAP_END)
            return 0;
        if (r == CAP_ERROR)
            return 3;
        if (r == CAP_IDLE) {
            run_tick(st);
            continue;
        }
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
        /* A clock stepped back (or files merged from hosts whose clocks disagree) would
         * give negative durations, delays and RTTs downstream: such a packet is counted
         * and analysed as if it came at the latest time already seen. */
        if (pkt.ts_us < st->last_us) {
            st->ts_backwards++;
            pkt.ts_us = st->last_us;
        }
        if (pkt.ts_us > st->last_us)
            st->last_us = pkt.ts_us;
        struct dec_packet dp;
        switch (dec_frame(pkt.dlt, pkt.data, pkt.caplen, &dp)) {
        case DEC_OK:
            if (dp.truncated)
                st->truncated++;
            if (run_reserved_v4(&dp)) {
                st->v4_reserved++;
                break;
            }
            if (!fb_admit(fb, &dp, pkt.ts_us)) {
                st->frag_dropped++;
                break;
            }
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
                run_progress_line(st, cap, 0);
        }
        run_tick(st);
        if (count && !st->shared_frames && ++n >= count)
            return 0;
    }
    return 0;
}
