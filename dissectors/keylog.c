/* keylog.c - NSS key log reader: "LABEL <ClientHello.random hex> <secret hex>" lines, as
 * written by NSS, OpenSSL (SSL_CTX_set_keylog_callback), BoringSSL and GnuTLS, and carried by
 * pcapng Decryption Secrets Blocks. Labels are those of RFC 8446 7.1's traffic secrets and the
 * TLS 1.2 master secret (RFC 5246 8.1); the rest are counted and skipped. */
#include "keylog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

/* The longest line used here is 31 + 1 + 64 + 1 + 96 bytes; anything much longer is not a
 * key log line, and is cut rather than buffered. */
#define KEYLOG_MAX_LINE 512
#define KEYLOG_MIN_SLOTS 64

struct keylog_entry {
    uint8_t random[KEYLOG_RANDOM_LEN];
    uint8_t present; /* one bit per enum keylog_label */
    uint8_t len[KEYLOG_LABEL_COUNT];
    uint8_t secret[KEYLOG_LABEL_COUNT][KEYLOG_MAX_SECRET];
};

struct keylog {
    size_t max_entries;
    struct keylog_entry *entries; /* in order of first appearance */
    size_t nentries;
    size_t alloc;
    uint32_t *slots; /* open addressing: 0 empty, else index into entries + 1 */
    size_t nslots;   /* a power of two, at least twice nentries */

    uint8_t line[KEYLOG_MAX_LINE];
    size_t line_len;
    int line_cut; /* the current line outgrew the buffer: skip to its end */

    struct keylog_stats st;
};

static const struct keylog_name {
    const char *label;
    size_t min_len, max_len; /* allowed secret lengths in bytes */
} keylog_names[KEYLOG_LABEL_COUNT] = {
    [KEYLOG_CLIENT_RANDOM] = {"CLIENT_RANDOM", 48, 48},
    [KEYLOG_CLIENT_HANDSHAKE] = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", 32, 48},
    [KEYLOG_SERVER_HANDSHAKE] = {"SERVER_HANDSHAKE_TRAFFIC_SECRET", 32, 48},
    [KEYLOG_CLIENT_TRAFFIC_0] = {"CLIENT_TRAFFIC_SECRET_0", 32, 48},
    [KEYLOG_SERVER_TRAFFIC_0] = {"SERVER_TRAFFIC_SECRET_0", 32, 48},
};

const char *
keylog_label_name(enum keylog_label label)
{
    if ((unsigned)label >= KEYLOG_LABEL_COUNT)
        return "unknown";
    return keylog_names[label].label;
}

/* FNV-1a over the whole random: TLS 1.2 clients may put the time in its first four bytes
 * (RFC 5246 7.4.1.2), so no prefix alone is spread well. */
static size_t
keylog_hash(const uint8_t *random)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t i;

    for (i = 0; i < KEYLOG_RANDOM_LEN; i++) {
        h ^= random[i];
        h *= 0x100000001b3ULL;
    }
    return (size_t)(h ^ (h >> 32));
}

static size_t
keylog_slot(const struct keylog *kl, const uint8_t *random)
{
    size_t mask = kl->nslots - 1, i = keylog_hash(random) & mask;

    while (kl->slots[i] &&
           memcmp(kl->entries[kl->slots[i] - 1].random, random, KEYLOG_RANDOM_LEN) != 0)
        i = (i + 1) & mask;
    return i;
}

static int
keylog_rehash(struct keylog *kl, size_t nslots)
{
    uint32_t *old = kl->slots;
    size_t i;

    kl->slots = mem_calloc(nslots, sizeof *kl->slots);
    if (!kl->slots) {
        kl->slots = old;
        return KEYLOG_E_NOMEM;
    }
    kl->nslots = nslots;
    for (i = 0; i < kl->nentries; i++)
        kl->slots[keylog_slot(kl, kl->entries[i].random)] = (uint32_t)(i + 1);
    mem_free(old);
    return KEYLOG_OK;
}

struct keylog *
keylog_create(size_t max_entries)
{
    struct keylog *kl = mem_calloc(1, sizeof *kl);

    if (!kl)
        return NULL;
    kl->max_entries = max_entries ? max_entries : KEYLOG_MAX_CONNECTIONS;
    /* Slot numbers are uint32_t. */
    if (kl->max_entries > 0x7fffffffU)
        kl->max_entries = 0x7fffffffU;
    kl->slots = mem_calloc(KEYLOG_MIN_SLOTS, sizeof *kl->slots);
    if (!kl->slots) {
        mem_free(kl);
        return NULL;
    }
    kl->nslots = KEYLOG_MIN_SLOTS;
    return kl;
}

void
keylog_destroy(struct keylog *kl)
{
    if (!kl)
        return;
    /* Secrets do not outlive the table in freed memory. */
    if (kl->entries)
        memset(kl->entries, 0, kl->alloc * sizeof *kl->entries);
    mem_free(kl->entries);
    mem_free(kl->slots);
    memset(kl, 0, sizeof *kl);
    mem_free(kl);
}

/* The entry of this client random, added when new. NULL when full or out of memory, with
 * *rc saying which. */
static struct keylog_entry *
keylog_entry(struct keylog *kl, const uint8_t *random, int *rc)
{
    struct keylog_entry *e;
    size_t i = keylog_slot(kl, random);

    *rc = KEYLOG_OK;
    if (kl->slots[i])
        return &kl->entries[kl->slots[i] - 1];
    if (kl->nentries >= kl->max_entries)
        return NULL;
    if (kl->nentries == kl->alloc) {
        size_t n = kl->alloc ? kl->alloc * 2 : 64;
        if (n > kl->max_entries)
            n = kl->max_entries;
        e = mem_realloc(kl->entries, n * sizeof *e);
        if (!e) {
            *rc = KEYLOG_E_NOMEM;
            return NULL;
        }
        kl->entries = e;
        kl->alloc = n;
    }
    /* Keep the load at or below one half so probes stay short. */
    if ((kl->nentries + 1) * 2 > kl->nslots) {
        if (keylog_rehash(kl, kl->nslots * 2) != KEYLOG_OK) {
            *rc = KEYLOG_E_NOMEM;
            return NULL;
        }
        i = keylog_slot(kl, random);
    }
    e = &kl->entries[kl->nentries];
    memset(e, 0, sizeof *e);
    memcpy(e->random, random, KEYLOG_RANDOM_LEN);
    kl->slots[i] = (uint32_t)(++kl->nentries);
    return e;
}

static int
keylog_hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes exactly 2 * outlen hex digits. */
static int
keylog_unhex(const uint8_t *p, size_t n, uint8_t *out, size_t outlen)
{
    size_t i;

    if (n != 2 * outlen)
        return -1;
    for (i = 0; i < outlen; i++) {
        int hi = keylog_hexval(p[2 * i]), lo = keylog_hexval(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int
keylog_is_space(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* One line without its end of line. Returns KEYLOG_E_NOMEM only when the table could not
 * grow. */
static int
keylog_line(struct keylog *kl, const uint8_t *p, size_t n)
{
    const uint8_t *field[4];
    size_t flen[4], nf = 0, i = 0, j;
    uint8_t random[KEYLOG_RANDOM_LEN], secret[KEYLOG_MAX_SECRET];
    struct keylog_entry *e;
    int label = -1, rc;

    kl->st.lines++;
    while (n && (p[n - 1] == '\r' || keylog_is_space(p[n - 1])))
        n--;
    while (i < n && keylog_is_space(p[i]))
        i++;
    if (i == n)
        return KEYLOG_OK;
    if (p[i] == '#') {
        kl->st.comments++;
        return KEYLOG_OK;
    }
    while (i < n) {
        if (nf == 4) {
            kl->st.bad++;
            return KEYLOG_OK;
        }
        field[nf] = p + i;
        for (j = i; j < n && !keylog_is_space(p[j]); j++)
            ;
        flen[nf++] = j - i;
        for (i = j; i < n && keylog_is_space(p[i]); i++)
            ;
    }
    if (nf != 3) {
        kl->st.bad++;
        return KEYLOG_OK;
    }
    /* The label is an upper-case token; a line that does not even look like one is bad
     * rather than an unknown label. */
    for (j = 0; j < flen[0]; j++) {
        uint8_t c = field[0][j];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
            kl->st.bad++;
            return KEYLOG_OK;
        }
    }
    for (j = 0; j < KEYLOG_LABEL_COUNT; j++) {
        if (strlen(keylog_names[j].label) == flen[0] &&
            memcmp(keylog_names[j].label, field[0], flen[0]) == 0) {
            label = (int)j;
            break;
        }
    }
    if (label < 0) {
        /* EXPORTER_SECRET, CLIENT_EARLY_TRAFFIC_SECRET, EARLY_EXPORTER_SECRET, RSA, later
         * traffic secrets: nothing here decrypts with them. */
        kl->st.ignored++;
        return KEYLOG_OK;
    }
    if (keylog_unhex(field[1], flen[1], random, sizeof random) < 0 || flen[2] % 2 ||
        flen[2] / 2 < keylog_names[label].min_len || flen[2] / 2 > keylog_names[label].max_len ||
        keylog_unhex(field[2], flen[2], secret, flen[2] / 2) < 0) {
        kl->st.bad++;
        return KEYLOG_OK;
    }
    e = keylog_entry(kl, random, &rc);
    if (!e) {
        kl->st.dropped++;
        memset(secret, 0, sizeof secret);
        return rc;
    }
    if (e->present & (1u << label))
        kl->st.replaced++;
    e->present |= (uint8_t)(1u << label);
    e->len[label] = (uint8_t)(flen[2] / 2);
    memcpy(e->secret[label], secret, flen[2] / 2);
    memset(secret, 0, sizeof secret);
    kl->st.secrets++;
    return KEYLOG_OK;
}

int
keylog_feed(struct keylog *kl, const uint8_t *data, size_t len)
{
    const uint8_t *nl;
    size_t take;
    int rc = KEYLOG_OK;

    if (!kl || (!data && len))
        return KEYLOG_OK;
    while (len) {
        nl = memchr(data, '\n', len);
        take = nl ? (size_t)(nl - data) : len;
        if (kl->line_cut) {
            /* Already counted as bad: drop the rest of the over-long line. */
        } else if (kl->line_len + take > sizeof kl->line) {
            kl->line_cut = 1;
            kl->line_len = 0;
            kl->st.lines++;
            kl->st.bad++;
        } else if (nl && kl->line_len == 0) {
            /* A whole line in the input: parsed where it lies. */
            if (keylog_line(kl, data, take) == KEYLOG_E_NOMEM)
                rc = KEYLOG_E_NOMEM;
        } else {
            memcpy(kl->line + kl->line_len, data, take);
            kl->line_len += take;
            if (nl) {
                if (keylog_line(kl, kl->line, kl->line_len) == KEYLOG_E_NOMEM)
                    rc = KEYLOG_E_NOMEM;
                kl->line_len = 0;
            }
        }
        if (nl) {
            kl->line_cut = 0;
            take++;
        }
        data += take;
        len -= take;
    }
    return rc;
}

void
keylog_finish(struct keylog *kl)
{
    if (!kl)
        return;
    if (kl->line_len && !kl->line_cut)
        keylog_line(kl, kl->line, kl->line_len);
    memset(kl->line, 0, sizeof kl->line);
    kl->line_len = 0;
    kl->line_cut = 0;
}

int
keylog_load_buffer(struct keylog *kl, const uint8_t *data, size_t len)
{
    int rc = keylog_feed(kl, data, len);

    keylog_finish(kl);
    return rc;
}

int
keylog_load_file(struct keylog *kl, const char *path, char *err, size_t errlen)
{
    uint8_t chunk[16384];
    size_t got;
    FILE *f;
    int rc = KEYLOG_OK;

    if (err && errlen)
        err[0] = '\0';
    if (!kl || !path)
        return KEYLOG_E_IO;
    f = fopen(path, "rb");
    if (!f) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return KEYLOG_E_IO;
    }
    uint64_t total = 0, lines0 = kl->st.lines;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        total += got;
        if (total > KEYLOG_MAX_FILE_BYTES || kl->st.lines - lines0 > KEYLOG_MAX_FILE_LINES) {
            if (err && errlen)
                snprintf(err, errlen, "%s: more than %" PRIu64 " %s: not read to its end", path,
                         total > KEYLOG_MAX_FILE_BYTES ? KEYLOG_MAX_FILE_BYTES
                                                       : KEYLOG_MAX_FILE_LINES,
                         total > KEYLOG_MAX_FILE_BYTES ? "bytes" : "lines");
            rc = KEYLOG_E_TOOBIG;
            break;
        }
        if (keylog_feed(kl, chunk, got) == KEYLOG_E_NOMEM)
            rc = KEYLOG_E_NOMEM;
    }
    if (rc != KEYLOG_E_TOOBIG && ferror(f)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: read error", path);
        rc = KEYLOG_E_IO;
    }
    fclose(f);
    keylog_finish(kl);
    memset(chunk, 0, sizeof chunk);
    return rc;
}

int
keylog_find(const struct keylog *kl, const uint8_t client_random[KEYLOG_RANDOM_LEN],
            enum keylog_label label, uint8_t *out, size_t *outlen)
{
    const struct keylog_entry *e;
    size_t i;

    if (!kl || !client_random || (unsigned)label >= KEYLOG_LABEL_COUNT || !out || !outlen)
        return KEYLOG_E_NOTFOUND;
    i = keylog_slot(kl, client_random);
    if (!kl->slots[i])
        return KEYLOG_E_NOTFOUND;
    e = &kl->entries[kl->slots[i] - 1];
    if (!(e->present & (1u << label)))
        return KEYLOG_E_NOTFOUND;
    memcpy(out, e->secret[label], e->len[label]);
    *outlen = e->len[label];
    return KEYLOG_OK;
}

void
keylog_get_stats(const struct keylog *kl, struct keylog_stats *st)
{
    if (!st)
        return;
    if (!kl) {
        memset(st, 0, sizeof *st);
        return;
    }
    *st = kl->st;
    st->connections = kl->nentries;
}
