/* keyfollow.c - see keyfollow.h. */
#include "keyfollow.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "keylog.h"
#include "log.h"
#include "mem.h"

#define KEYFOLLOW_INTERVAL 1.0 /* seconds between looks that nothing forces */

struct keyfollow {
    struct keylog *kl;
    char *path;
    dev_t dev;
    ino_t ino;
    off_t off; /* read up to here */
    int have_file;
    double last_look;
    uint64_t bytes, lines0; /* over the whole run, for the bounds */
    int stopped;            /* past a bound: the file is followed no further */
};

static double
keyfollow_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads [kf->off, size) of the file. Returns KEYLOG_OK or a KEYLOG_E_* with err set. */
static int
keyfollow_read(struct keyfollow *kf, const struct stat *sb, char *err, size_t errlen)
{
    FILE *f = fopen(kf->path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", kf->path, strerror(errno));
        return KEYLOG_E_IO;
    }
    int rc = KEYLOG_OK;
    if (kf->off > 0 && fseeko(f, kf->off, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: %s", kf->path, strerror(errno));
        fclose(f);
        return KEYLOG_E_IO;
    }
    uint8_t chunk[16384];
    off_t want = sb->st_size - kf->off;
    while (want > 0) {
        size_t n = fread(chunk, 1, (size_t)want < sizeof chunk ? (size_t)want : sizeof chunk, f);
        if (n == 0)
            break;
        want -= (off_t)n;
        kf->off += (off_t)n;
        kf->bytes += n;
        struct keylog_stats st;
        keylog_get_stats(kf->kl, &st);
        if (kf->bytes > KEYLOG_MAX_FILE_BYTES || st.lines - kf->lines0 > KEYLOG_MAX_FILE_LINES) {
            snprintf(err, errlen, "%s: more than %" PRIu64 " %s: not read to its end", kf->path,
                     kf->bytes > KEYLOG_MAX_FILE_BYTES ? KEYLOG_MAX_FILE_BYTES
                                                       : KEYLOG_MAX_FILE_LINES,
                     kf->bytes > KEYLOG_MAX_FILE_BYTES ? "bytes" : "lines");
            rc = KEYLOG_E_TOOBIG;
            break;
        }
        /* A line still being written waits in the key log for its end (no finish). */
        if (keylog_feed(kf->kl, chunk, n) == KEYLOG_E_NOMEM)
            rc = KEYLOG_E_NOMEM;
    }
    memset(chunk, 0, sizeof chunk);
    if (rc == KEYLOG_OK && ferror(f)) {
        snprintf(err, errlen, "%s: read error", kf->path);
        rc = KEYLOG_E_IO;
    }
    fclose(f);
    return rc;
}

/* Returns KEYLOG_OK (also for a file that does not exist yet) or a KEYLOG_E_*. */
static int
keyfollow_look(struct keyfollow *kf, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(kf->path, &sb) != 0) {
        if (errno == ENOENT)
            return KEYLOG_OK;
        snprintf(err, errlen, "%s: %s", kf->path, strerror(errno));
        return KEYLOG_E_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file, cannot be followed", kf->path);
        return KEYLOG_E_IO;
    }
    /* Another file under the name, or one cut shorter: read from its start again (secrets
     * already held stay; one given again replaces the same one). */
    if (kf->have_file && (sb.st_dev != kf->dev || sb.st_ino != kf->ino || sb.st_size < kf->off))
        kf->off = 0;
    kf->have_file = 1;
    kf->dev = sb.st_dev;
    kf->ino = sb.st_ino;
    if (sb.st_size == kf->off)
        return KEYLOG_OK;
    return keyfollow_read(kf, &sb, err, errlen);
}

struct keyfollow *
keyfollow_create(struct keylog *kl, const char *path, int *rc, char *err, size_t errlen)
{
    *rc = KEYLOG_E_NOMEM;
    if (err && errlen)
        err[0] = '\0';
    struct keyfollow *kf = mem_calloc(1, sizeof *kf);
    if (!kf)
        return NULL;
    kf->kl = kl;
    kf->path = mem_strndup(path, strlen(path));
    if (!kf->path) {
        mem_free(kf);
        return NULL;
    }
    struct keylog_stats st;
    keylog_get_stats(kl, &st);
    kf->lines0 = st.lines;
    kf->last_look = keyfollow_now();
    *rc = keyfollow_look(kf, err, errlen);
    if (*rc != KEYLOG_OK) {
        keyfollow_destroy(kf);
        return NULL;
    }
    return kf;
}

int
keyfollow_check(struct keyfollow *kf, int force)
{
    if (!kf || kf->stopped)
        return 0;
    double now = keyfollow_now();
    if (!force && now - kf->last_look < KEYFOLLOW_INTERVAL)
        return 0;
    kf->last_look = now;
    struct keylog_stats before, after;
    keylog_get_stats(kf->kl, &before);
    char err[512] = "";
    int rc = keyfollow_look(kf, err, sizeof err);
    if (rc == KEYLOG_E_TOOBIG) {
        kf->stopped = 1;
        log_msg(LOG_LVL_WARN, "TLS key log %s; no longer followed", err);
    } else if (rc == KEYLOG_E_NOMEM) {
        log_msg(LOG_LVL_WARN, "out of memory reading the TLS key log %s", kf->path);
    }
    /* A passing read error (the file replaced between stat and open) is tried again. */
    keylog_get_stats(kf->kl, &after);
    uint64_t n = after.secrets - before.secrets;
    return n > INT32_MAX ? INT32_MAX : (int)n;
}

int
keyfollow_refresh(void *kf, int force)
{
    return keyfollow_check(kf, force);
}

void
keyfollow_destroy(struct keyfollow *kf)
{
    if (!kf)
        return;
    mem_free(kf->path);
    mem_free(kf);
}
