/* dump.c - see dump.h. Written with libpcap's own writer (pcap_dump) behind a handle that
 * only carries the link type and snapshot length. */
#include "dump.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <pcap/pcap.h>

#include "mem.h"

struct dump {
    struct dump_opts o;
    char *path;
    pcap_t *dead;
    pcap_dumper_t *d;
    unsigned index;   /* number of the current file */
    uint64_t written; /* packets in the current file */
    int failed;
    char err[4096 + 512]; /* the file name may be as long as a path */
};

void
dump_file_name(const struct dump_opts *o, unsigned n, char *buf, size_t buflen)
{
    if (o->max_files > 0) {
        /* As many digits as the largest number needs, so that names sort in order. */
        int width = 1;
        for (unsigned m = o->max_files - 1; m >= 10; m /= 10)
            width++;
        snprintf(buf, buflen, "%s%0*u", o->path, width, n);
    } else if (n == 0) {
        snprintf(buf, buflen, "%s", o->path);
    } else {
        snprintf(buf, buflen, "%s%u", o->path, n);
    }
}

static int
dump_start(struct dump *d)
{
    char name[4096];
    dump_file_name(&d->o, d->index, name, sizeof name);
    d->d = pcap_dump_open(d->dead, name);
    if (!d->d) {
        snprintf(d->err, sizeof d->err, "cannot write %s: %s", name, pcap_geterr(d->dead));
        d->failed = 1;
        return -1;
    }
    d->written = 0;
    return 0;
}

struct dump *
dump_open(const struct dump_opts *o, char *err, size_t errlen)
{
    struct dump *d = mem_calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->o = *o;
    d->path = mem_strndup(o->path, strlen(o->path));
    d->dead = pcap_open_dead_with_tstamp_precision(o->dlt, o->snaplen > 0 ? o->snaplen : 262144,
                                                   PCAP_TSTAMP_PRECISION_MICRO);
    if (!d->path || !d->dead) {
        snprintf(err, errlen, "out of memory");
        dump_close(d, NULL, 0);
        return NULL;
    }
    d->o.path = d->path;
    if (dump_start(d) != 0) {
        snprintf(err, errlen, "%s", d->err);
        dump_close(d, NULL, 0);
        return NULL;
    }
    return d;
}

static int
dump_check(struct dump *d)
{
    FILE *f = pcap_dump_file(d->d);
    if (f && ferror(f)) {
        char name[4096];
        dump_file_name(&d->o, d->index, name, sizeof name);
        snprintf(d->err, sizeof d->err, "cannot write %s: %s", name, strerror(errno ? errno : EIO));
        d->failed = 1;
        return -1;
    }
    return 0;
}

int
dump_packet(struct dump *d, int64_t ts_us, uint32_t caplen, uint32_t len, const uint8_t *data)
{
    if (!d || d->failed)
        return d ? -1 : 0;
    /* As tcpdump: before a packet, a file already past the size starts the next one. */
    if (d->o.max_bytes && d->written > 0 && (uint64_t)pcap_dump_ftell64(d->d) > d->o.max_bytes) {
        int rc = pcap_dump_flush(d->d);
        if (dump_check(d) != 0 || rc != 0) {
            d->failed = 1;
            return -1;
        }
        pcap_dump_close(d->d);
        d->d = NULL;
        d->index++;
        if (d->o.max_files && d->index >= d->o.max_files)
            d->index = 0;
        if (dump_start(d) != 0)
            return -1;
    }
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)(ts_us / 1000000);
    h.ts.tv_usec = (suseconds_t)(ts_us % 1000000);
    h.caplen = caplen;
    h.len = len;
    pcap_dump((u_char *)d->d, &h, data);
    d->written++;
    if (d->o.flush_each && pcap_dump_flush(d->d) != 0) {
        dump_check(d);
        d->failed = 1;
        return -1;
    }
    return 0;
}

const char *
dump_error(const struct dump *d)
{
    return d && d->err[0] ? d->err : "cannot write the -w file";
}

int
dump_flush(struct dump *d)
{
    if (!d || !d->d)
        return 0;
    return pcap_dump_flush(d->d) == 0 ? 0 : -1;
}

int
dump_close(struct dump *d, char *err, size_t errlen)
{
    if (!d)
        return 0;
    int rc = 0;
    if (d->d) {
        if (pcap_dump_flush(d->d) != 0 || dump_check(d) != 0) {
            if (!d->failed) {
                snprintf(d->err, sizeof d->err, "cannot write %s: %s", d->path,
                         strerror(errno ? errno : EIO));
                d->failed = 1;
            }
        }
        FILE *f = pcap_dump_file(d->d);
        /* pcap_dump_close does not say whether the last write reached the file. */
        if (f && fflush(f) != 0 && !d->failed) {
            snprintf(d->err, sizeof d->err, "cannot write %s: %s", d->path, strerror(errno));
            d->failed = 1;
        }
        pcap_dump_close(d->d);
    }
    if (d->failed) {
        rc = -1;
        if (err && errlen)
            snprintf(err, errlen, "%s", d->err);
    }
    if (d->dead)
        pcap_close(d->dead);
    mem_free(d->path);
    mem_free(d);
    return rc;
}
