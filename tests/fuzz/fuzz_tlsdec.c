/* fuzz_tlsdec.c - fuzz target for the key log reader and TLS record decryption. Input: byte 0
 * (bit 0: TLS 1.3, else TLS 1.2; bit 1: through the TLS reader of tls.h instead), bytes 1-2
 * the cipher suite, 3-34 the server random, 35-36 the length of the key log text that
 * follows; then records, each a direction byte (bit 0: server) and a 5-byte header followed
 * by as many body bytes as the header says or as remain. Straight to tlsdec, the client
 * random is the one on the key log's first line, so that the decryptor gets built, and the
 * records are those after the hellos; through the reader, the hellos come first and name
 * the connection themselves. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_tree.h"
#include "jtree.h"
#include "keylog.h"
#include "tls.h"
#include "tlsdec.h"

#define FZ_HEAD 37

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
fz_hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 64 hex digits after the first space of the text, if there are. */
static void
fz_first_random(const uint8_t *p, size_t n, uint8_t *random)
{
    const uint8_t *sp = memchr(p, ' ', n);
    size_t i, at;

    memset(random, 0, KEYLOG_RANDOM_LEN);
    if (!sp)
        return;
    at = (size_t)(sp - p) + 1;
    if (n - at < 2 * KEYLOG_RANDOM_LEN)
        return;
    for (i = 0; i < KEYLOG_RANDOM_LEN; i++) {
        int hi = fz_hex(p[at + 2 * i]), lo = fz_hex(p[at + 2 * i + 1]);
        if (hi < 0 || lo < 0)
            return;
        random[i] = (uint8_t)(hi << 4 | lo);
    }
}

static void
fz_sink(void *arg, enum tls_dir dir, const uint8_t *data, size_t len)
{
    size_t *total = arg;

    (void)dir;
    if (data && len)
        *total += data[0] + data[len - 1];
}

/* The records as two byte streams through tls_feed, plaintext to fz_sink. */
static void
fz_view(const struct keylog *kl, const uint8_t *data, size_t size)
{
    struct tls_view *t = tls_create(0);
    size_t i = 0, len, total = 0;
    struct jt *tree;
    struct jt_node *o;
    json_t *j;
    char *text;

    if (!t)
        return;
    tls_set_keylog(t, kl, fz_sink, &total);
    while (i + 6 <= size) {
        enum tls_dir dir = (data[i] & 1) ? TLS_SERVER : TLS_CLIENT;
        len = (size_t)data[i + 4] << 8 | data[i + 5];
        tls_feed(t, dir, data + i + 1, 5);
        i += 6;
        if (len > size - i)
            len = size - i;
        tls_feed(t, dir, data + i, len);
        i += len;
    }
    (void)tls_decrypting(t);
    tree = jt_new();
    o = jt_root(tree);
    if (tls_report(t, o) == 0 && !jt_failed(tree)) {
        j = jt_to_json(o);
        text = fuzz_dump(o, j);
        if (!text)
            abort();
        free(text);
        json_decref(j);
    }
    jt_free(tree);
    tls_destroy(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[TLSDEC_MAX_RECORD + 5];
    uint8_t cr[KEYLOG_RANDOM_LEN], sr[KEYLOG_RANDOM_LEN], type;
    struct tlsdec_counters c;
    struct keylog_stats st;
    struct keylog *kl;
    struct tlsdec *d;
    uint16_t version, suite;
    size_t klen, i, half, len, outlen;
    uint8_t flags;
    int why;

    if (size < FZ_HEAD)
        return 0;
    flags = data[0];
    version = (flags & 1) ? TLSDEC_TLS13 : TLSDEC_TLS12;
    suite = (uint16_t)(data[1] << 8 | data[2]);
    memcpy(sr, data + 3, sizeof sr);
    klen = (size_t)data[35] << 8 | data[36];
    if (klen > size - FZ_HEAD)
        klen = size - FZ_HEAD;
    data += FZ_HEAD;
    size -= FZ_HEAD;
    kl = keylog_create(64);
    if (!kl)
        return 0;
    /* In two pieces, so lines cut between calls are exercised. */
    half = klen / 2;
    keylog_feed(kl, data, half);
    keylog_feed(kl, data + half, klen - half);
    keylog_finish(kl);
    keylog_get_stats(kl, &st);
    if (flags & 2) {
        fz_view(kl, data + klen, size - klen);
        keylog_destroy(kl);
        return 0;
    }
    fz_first_random(data, klen, cr);
    d = tlsdec_create(version, suite, cr, sr, kl, &why);
    if (!d && why == TLSDEC_OK)
        abort();
    keylog_destroy(kl);
    i = klen;
    while (d && i + 6 <= size) {
        enum tls_dir dir = (data[i] & 1) ? TLS_SERVER : TLS_CLIENT;
        const uint8_t *hdr = data + i + 1;
        int rc;
        len = (size_t)hdr[3] << 8 | hdr[4];
        i += 6;
        if (len > size - i)
            len = size - i;
        outlen = sizeof out;
        rc = tlsdec_record(d, dir, hdr, data + i, len, out, &outlen, &type);
        if (rc == TLSDEC_OK && outlen > len)
            abort();
        if (rc != TLSDEC_OK && rc != TLSDEC_E_ARG && outlen != 0)
            abort();
        (void)tlsdec_error_name(rc);
        i += len;
    }
    tlsdec_get_counters(d, TLS_CLIENT, &c);
    (void)tlsdec_epoch(d, TLS_SERVER);
    tlsdec_destroy(d);
    return 0;
}
