/* fuzz_imf.c - fuzz target for the DATA/BDAT message reader and the MIME structure it reads
 * (the corpus has multipart, base64, quoted-printable, RFC 2231 and RFC 2047 seeds). Bytes
 * 0-4 set the options (hash, sink, max_header, max_received, mode, feed step); the rest is the
 * message stream. The stream is read twice, at once and in small pieces: both reports (the
 * MIME parts included) and the bytes the sink was given must be identical, which checks the
 * state machines across every kind of feed boundary. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imf.h"
#include "fuzz_tree.h"
#include "jtree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void *
fuzz_begin(void *ctx, uint64_t id, const struct imf_envelope *env)
{
    (void)id;
    (void)env;
    return ctx;
}

static void
fuzz_bytes(void *msg, const uint8_t *p, size_t n)
{
    if (buf_append(msg, p, n) != BUF_OK)
        abort();
}

static void
fuzz_end(void *msg, int whole)
{
    (void)msg;
    (void)whole;
}

/* Feeds n bytes in pieces of `step`; a gap of 7 bytes after the first piece if asked. */
static char *
fuzz_run(const struct imf_config *cfg0, int bdat, int gap, const uint8_t *p, size_t n, size_t step,
         uint8_t **kept, size_t *kept_len)
{
    struct imf_config cfg = *cfg0;
    struct buf b;
    buf_init(&b, (size_t)1 << 30);
    if (cfg.sink.begin)
        cfg.sink.ctx = &b;
    struct imf *m = imf_create(&cfg);
    size_t used = 0, got;
    int done = 0, first = 1;
    struct jt *t;
    struct jt_node *o;
    json_t *j;
    char *s = NULL;

    *kept = NULL;
    *kept_len = 0;
    if (!m) {
        buf_free(&b);
        return NULL;
    }
    while (used < n) {
        size_t take = n - used < step ? n - used : step;
        if (bdat) {
            imf_chunk_feed(m, p + used, take);
            got = take;
        } else {
            got = imf_data_feed(m, p + used, take, &done);
            if (got > take || (!done && got != take))
                abort();
        }
        used += got;
        if (gap && first)
            imf_gap(m, 7);
        first = 0;
        if (done) {
            /* Once ended, the message takes nothing more. */
            int again = 0;
            if (used < n && imf_data_feed(m, p + used, n - used, &again) != 0)
                abort();
            break;
        }
    }
    imf_finish(m);
    t = jt_new();
    o = jt_root(t);
    if (imf_report(m, o) == 0 && !jt_failed(t)) {
        j = jt_to_json(o);
        s = fuzz_dump(o, j);
        json_decref(j);
    }
    jt_free(t);
    imf_destroy(m);
    *kept_len = b.len;
    if (b.len) {
        *kept = malloc(b.len);
        if (*kept)
            memcpy(*kept, b.data, b.len);
    }
    buf_free(&b);
    return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imf_config cfg = {0};
    uint8_t *k1, *k2;
    size_t l1, l2, step;
    char *a, *b;
    int bdat, gap;

    if (size < 5)
        return 0;
    cfg.hash = data[0] & 1;
    bdat = (data[0] >> 1) & 1;
    gap = (data[0] >> 2) & 1;
    if (data[1] & 1)
        cfg.sink = (struct imf_sink){fuzz_begin, fuzz_bytes, fuzz_end, NULL};
    cfg.max_header = (size_t)data[2] * 2;
    cfg.max_received = data[3] & 7;
    step = (size_t)(data[4] & 15) + 1;
    /* Hashing with a fetched implementation (as sessions do) and with EVP_sha256(). */
    EVP_MD *sha256 = data[0] & 8 ? EVP_MD_fetch(NULL, "SHA256", NULL) : NULL;
    cfg.sha256 = sha256;
    /* The gap comes after the first piece, so both runs need the same first piece. */
    a = fuzz_run(&cfg, bdat, gap, data + 5, size - 5, gap ? step : size, &k1, &l1);
    b = fuzz_run(&cfg, bdat, gap, data + 5, size - 5, step, &k2, &l2);
    if (!gap && a && b && (strcmp(a, b) != 0 || l1 != l2 || (l1 && memcmp(k1, k2, l1) != 0)))
        abort();
    free(a);
    free(b);
    free(k1);
    free(k2);
    EVP_MD_free(sha256);
    return 0;
}
