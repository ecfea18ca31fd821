/* fuzz_smtp.c - fuzz target for the SMTP dialogue model. The first byte picks the
 * configuration; then each chunk is one length byte and that many bytes, directions
 * alternating (client first; 255 is a 16-byte capture gap instead of data); flag 32 starts
 * the model mid-stream. Every input is
 * run twice, as chunked and one byte at a time, and both reports must be identical; the
 * report writer's path (the transcript written from the model at its place in the report)
 * must give the bytes of the whole tree. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonx.h"
#include "mem.h"
#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_GAP 255

static void
fuzz_check_writer(const struct smtp_session *s, json_t *whole)
{
    struct buf a, b;
    buf_init(&a, 64u << 20);
    buf_init(&b, 64u << 20);
    struct jt *core = jt_new();
    if (core && smtp_report_core(s, jt_root(core)) == 0 && !jt_failed(core)) {
        int ra = jx_dump(whole, &a);
        int rb = smtp_dump_report(s, jt_root(core), &b);
        if (ra != rb || (ra == JX_DUMP_OK && (a.len != b.len || memcmp(a.data, b.data, a.len))))
            abort();
    }
    jt_free(core);
    buf_free(&a);
    buf_free(&b);
}

/* The message sink: every byte handed over is read (the sanitizer checks it is there). */
static void *
fuzz_begin(void *ctx, uint64_t txn, const struct imf_envelope *env)
{
    (void)txn;
    /* Every address handed over is read (the sanitizer checks it is there). */
    if (env) {
        volatile uint8_t x = 0;
        for (size_t i = 0; i < env->from.n; i++)
            x ^= env->from.p[i];
        for (size_t k = 0; k < env->nrcpt; k++)
            for (size_t i = 0; i < env->rcpt[k].n; i++)
                x ^= env->rcpt[k].p[i];
        (void)x;
    }
    return ctx;
}

static void
fuzz_bytes(void *msg, const uint8_t *p, size_t n)
{
    volatile uint8_t x = 0;
    for (size_t i = 0; i < n; i++)
        x ^= p[i];
    (void)msg;
    (void)x;
}

static void
fuzz_end(void *msg, int whole)
{
    (void)msg;
    (void)whole;
}

static char *
fuzz_run(const uint8_t *data, size_t size, int bytewise)
{
    const uint8_t flags = data[0];
    struct smtp_config cfg = {0};
    cfg.implicit_tls = (flags & 1) != 0;
    cfg.show_secrets = (flags & 2) != 0;
    cfg.hash_bodies = (flags & 4) != 0;
    static int sink_ctx;
    if (flags & 8)
        cfg.eml = (struct imf_sink){fuzz_begin, fuzz_bytes, fuzz_end, &sink_ctx};
    if (flags & 16) {
        /* Tiny caps reach the overflow paths with short inputs. */
        cfg.max_line = 16;
        cfg.max_inflight = 2;
        cfg.max_transcript = 4;
        cfg.max_transactions = 2;
        cfg.max_rcpts = 2;
    }
    const int64_t t0 = 1700000000000000LL;
    struct smtp_session *s = smtp_create(&cfg, t0, t0 + 100);
    if (!s)
        return NULL;
    if (flags & 32)
        smtp_midstream(s); /* the capture began inside the dialogue */
    size_t off = 1;
    int dir = SMTP_CLIENT;
    int64_t t = t0;
    while (off < size) {
        size_t len = data[off++];
        t += 1000;
        if (len == FUZZ_GAP) {
            smtp_gap(s, (enum smtp_dir)dir, 16, t);
        } else {
            if (len > size - off)
                len = size - off;
            /* An exact-size copy, so a read past the chunk is caught by the sanitizer. */
            uint8_t *chunk = mem_alloc(len ? len : 1);
            if (!chunk)
                break;
            memcpy(chunk, data + off, len);
            if (bytewise) {
                for (size_t i = 0; i < len; i++)
                    smtp_feed(s, (enum smtp_dir)dir, chunk + i, 1, t);
            } else {
                smtp_feed(s, (enum smtp_dir)dir, chunk, len, t);
            }
            mem_free(chunk);
            off += len;
        }
        dir = dir == SMTP_CLIENT ? SMTP_SERVER : SMTP_CLIENT;
    }
    smtp_finish(s, t + 1000);
    json_t *o = json_object();
    char *out = NULL;
    if (o && smtp_report(s, o) == 0) {
        out = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
        if (!bytewise)
            fuzz_check_writer(s, o);
    }
    json_decref(o);
    (void)smtp_encrypted(s);
    smtp_destroy(s);
    return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *a = fuzz_run(data, size, 0);
    char *b = fuzz_run(data, size, 1);
    /* The report may not depend on how the bytes were cut into feeds. */
    if (a && b && strcmp(a, b) != 0)
        abort();
    free(a);
    free(b);
    return 0;
}
