/* capture.c - the packet source over libpcap: a live interface, or pcap/pcapng files read
 * as one capture in timestamp order (a k-way merge holding one pending packet per file). */
#include "capture.h"

#include <errno.h>
#include <poll.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <pcap/pcap.h>
#ifdef __linux__
#include <linux/if_packet.h>
#include <sys/socket.h>
#endif

#include "decode.h"
#include "dump.h"
#include "gzin.h"
#include "log.h"
#include "mem.h"
#include "ngread.h"

#define CAP_SNAPLEN_DEFAULT 262144
/* How long a live read waits before looking at the stop flag again; pcap_breakloop wakes
 * it sooner, the timeout only covers a break that raced the wait. */
#define CAP_LIVE_TIMEOUT_MS 250
#define CAP_FILTER_MAX 4096
#define CAP_FILE_BUFFER (1 << 20)

enum cap_src_state {
    CAP_SRC_EMPTY,   /* needs its next packet read */
    CAP_SRC_PENDING, /* holds a packet not yet handed out */
    CAP_SRC_DONE,
};

struct cap_src {
    pcap_t *p;
    char *name; /* for messages: the file name, "stdin" or the interface */
    int dlt;
    enum cap_src_state state;
    int64_t ts_us;
    uint32_t caplen, len;
    const uint8_t *data; /* libpcap's buffer, or copy when several sources are merged */
    uint8_t *copy;
    size_t copy_alloc;
    char *iobuf;     /* the file stream's buffer: freed after pcap_close closed the stream */
    int64_t rec_off; /* file offset of the next record; -1 when unknown (a pipe) */
    int counted;     /* classic pcap: rec_off follows from the record lengths */
    struct gzin *gz; /* a gzip-compressed file: the decompressing stream's state */
    FILE *raw;       /* the file as opened (under gz's stream), for progress */
    int64_t size;    /* a regular file's size, for progress; 0 unknown */
    char *filter;    /* the filter compiled for this source, NULL for none */
    /* A pcapng file whose interfaces have different link types, read again by ngread
     * (libpcap's reader stops at the first interface unlike the first one). */
    char *path;
    FILE *ngf;
    struct ngr *ng;
    struct cap_dlt_filter *filters; /* the filter compiled for each link type met */
    size_t nfilters;
};

struct cap_dlt_filter {
    int dlt;
    int ok; /* compiled; else the link type's packets are not read (counted) */
    struct bpf_program prog;
};

struct cap {
    struct cap_src *src;
    size_t nsrc;
    int live;
    int copy;
    int wake_idle; /* live: a read timeout returns CAP_IDLE */
    volatile sig_atomic_t stop;
    uint64_t packets, bytes;
    size_t ntrunc;
    char *trunc_name;          /* the first file that ended mid-record */
    struct cap_damage *damage; /* one per file whose reading stopped at a bad record */
    size_t ndamage;
    int quiet;            /* another process reading the same files gives the warnings */
    uint64_t unsupported; /* packets of pcapng interfaces whose link type is not decoded */
    char *filter;         /* the user's filter text, for link types met only inside a pcapng file */
    uint16_t *ports;
    size_t nports;
    struct dump *dump; /* -w: every packet handed out is written there too */
};

static void cap_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cap_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* libpcap's own message often starts with the file name already ("x.pcap: No such file");
 * strip it so ours reads "x.pcap: reason" once. */
static const char *
cap_strip_name(const char *msg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(msg, name, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

static const char *
cap_reason(pcap_t *p, int rc)
{
    const char *e = pcap_geterr(p);
    return e && *e ? e : pcap_statustostr(rc);
}

static int cap_join_fanout(struct cap_src *s, const struct cap_opts *o, char *err, size_t errlen);
static void cap_begin_offsets(struct cap_src *s);

static int
cap_open_live(struct cap_src *s, const struct cap_opts *o, char *err, size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    s->p = pcap_create(o->iface, errbuf);
    if (!s->p) {
        cap_seterr(err, errlen, "%s: %s", o->iface, errbuf);
        return -1;
    }
    int snaplen = o->snaplen > 0 ? o->snaplen : CAP_SNAPLEN_DEFAULT;
    if (o->buffer_kib < 0 || o->buffer_kib > INT_MAX / 1024) {
        cap_seterr(err, errlen, "%s: buffer size of %d KiB is out of range", o->iface,
                   o->buffer_kib);
        return -1;
    }
    /* Immediate mode: a mail session's few small packets must not wait for a kernel
     * buffer to fill before the live report sees them. */
    if (pcap_set_snaplen(s->p, snaplen) != 0 || pcap_set_promisc(s->p, o->promisc ? 1 : 0) != 0 ||
        pcap_set_immediate_mode(s->p, 1) != 0 || pcap_set_timeout(s->p, CAP_LIVE_TIMEOUT_MS) != 0 ||
        (o->buffer_kib > 0 && pcap_set_buffer_size(s->p, o->buffer_kib * 1024) != 0)) {
        cap_seterr(err, errlen, "%s: cannot set capture options: %s", o->iface, pcap_geterr(s->p));
        return -1;
    }
    int rc = pcap_activate(s->p);
    if (rc < 0) {
        const char *why = cap_reason(s->p, rc);
        switch (rc) {
        case PCAP_ERROR_NO_SUCH_DEVICE:
            cap_seterr(err, errlen, "%s: no such capture interface (%s)", o->iface, why);
            break;
        case PCAP_ERROR_PERM_DENIED:
            cap_seterr(err, errlen,
                       "%s: permission denied: capturing needs root or CAP_NET_RAW (%s)", o->iface,
                       why);
            break;
        case PCAP_ERROR_PROMISC_PERM_DENIED:
            cap_seterr(err, errlen, "%s: not permitted to enable promiscuous mode (%s)", o->iface,
                       why);
            break;
        case PCAP_ERROR_IFACE_NOT_UP:
            cap_seterr(err, errlen, "%s: interface is down", o->iface);
            break;
        default:
            cap_seterr(err, errlen, "%s: cannot start capture: %s", o->iface, why);
            break;
        }
        return -1;
    }
    if (rc > 0) {
        /* Warnings leave a working capture; say what it will miss and carry on. */
        const char *why = cap_reason(s->p, rc);
        if (rc == PCAP_WARNING_PROMISC_NOTSUP)
            log_msg(LOG_LVL_WARN,
                    "%s: promiscuous mode not supported, seeing only this "
                    "host's traffic (%s)",
                    o->iface, why);
        else
            log_msg(LOG_LVL_WARN, "%s: %s", o->iface, why);
    }
    if (o->fanout_group > 0)
        return cap_join_fanout(s, o, err, errlen);
    return 0;
}

/* The kernel's fanout hash (PACKET_FANOUT_HASH) is the symmetric flow hash, so both
 * directions of a connection reach the same member; DEFRAG hashes IPv4 fragments by their
 * whole datagram. Joined right after activation, before the filter is set. */
static int
cap_join_fanout(struct cap_src *s, const struct cap_opts *o, char *err, size_t errlen)
{
#if defined(__linux__) && defined(PACKET_FANOUT)
    /* Group id in the low 16 bits, mode and flags in the high ones (DEFRAG is bit 31). */
    uint32_t arg = ((uint32_t)o->fanout_group & 0xffffu) |
                   ((uint32_t)(PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
    if (setsockopt(pcap_fileno(s->p), SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) {
        cap_seterr(err, errlen,
                   "%s: cannot share the interface between workers (packet fanout "
                   "group %d): %s",
                   o->iface, o->fanout_group, strerror(errno));
        return -1;
    }
    return 0;
#else
    (void)s;
    cap_seterr(err, errlen,
               "%s: sharing a live interface between workers needs Linux packet "
               "fanout",
               o->iface);
    return -1;
#endif
}

/* A gzip stream (magic 1f 8b, whatever the file is called) is read through gzin's
 * decompressing stream; anything else goes to libpcap as it is. The magic is read through
 * the stream and given back, so that a pipe works as well as a file. Returns the stream
 * libpcap is to read, or NULL (out of memory). */
static FILE *
cap_maybe_gunzip(struct cap_src *s, FILE *f)
{
    int c1 = getc(f);
    if (c1 != 0x1f) {
        if (c1 != EOF)
            ungetc(c1, f);
        return f;
    }
    int c2 = getc(f);
    if (c2 != 0x8b) {
        /* No capture format starts with 0x1f: libpcap says it knows no such format. */
        if (c2 != EOF)
            ungetc(c2, f);
        return f;
    }
    const unsigned char magic[2] = {0x1f, 0x8b};
    FILE *z = gzin_open(f, magic, &s->gz);
    if (!z)
        return NULL;
    __fsetlocking(z, FSETLOCKING_BYCALLER);
    return z;
}

static int
cap_open_file(struct cap_src *s, const char *file, char *err, size_t errlen)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "";
    int is_stdin = strcmp(file, "-") == 0;
    /* Our own stream, so that it reads in large blocks: libpcap reads record by record, and
     * stdio's default block made one system call per few packets. */
    FILE *f = is_stdin ? stdin : fopen(file, "rb");
    if (!f) {
        cap_seterr(err, errlen, "%s: %s", s->name, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode))
        s->size = (int64_t)sb.st_size;
    /* glibc ignores the size unless it is given the buffer too. */
    s->iobuf = mem_alloc(CAP_FILE_BUFFER);
    if (s->iobuf)
        setvbuf(f, s->iobuf, _IOFBF, CAP_FILE_BUFFER);
    /* One thread reads the stream: libpcap's two freads per packet need not take and
     * release its lock each time. */
    __fsetlocking(f, FSETLOCKING_BYCALLER);
    s->raw = f;
    FILE *in = cap_maybe_gunzip(s, f);
    if (!in) {
        if (!is_stdin)
            fclose(f);
        cap_seterr(err, errlen, "%s: out of memory", s->name);
        return -1;
    }
    /* Microsecond precision: libpcap scales nanosecond pcap and pcapng stamps for us. */
    s->p = pcap_fopen_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    if (!s->p) {
        /* pcap_close closes the stream otherwise (never stdin); gzin's closes the file. */
        if (in != stdin)
            fclose(in);
        const char *why = NULL;
        int cut = 0;
        if (gzin_failed(s->gz, &why, &cut))
            cap_seterr(err, errlen, "%s: %s", s->name, why);
        else
            cap_seterr(err, errlen, "%s: %s", s->name, cap_strip_name(errbuf, file));
        return -1;
    }
    return 0;
}

static int
cap_set_filter(struct cap_src *s, const struct cap_opts *o, char *err, size_t errlen)
{
    char deflt[CAP_FILTER_MAX];
    const char *text = o->filter;
    if (!text && o->ports && o->nports > 0) {
        if (cap_default_filter_dlt(s->dlt, o->ports, o->nports, deflt, sizeof deflt) != 0) {
            cap_seterr(err, errlen, "%s: too many ports for the default filter", s->name);
            return -1;
        }
        text = deflt;
    }
    if (!text)
        return 0;
    struct bpf_program prog;
    if (pcap_compile(s->p, &prog, text, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        cap_seterr(err, errlen, "%s: bad filter expression '%s': %s", s->name, text,
                   pcap_geterr(s->p));
        return -1;
    }
    int rc = pcap_setfilter(s->p, &prog);
    pcap_freecode(&prog);
    s->filter = mem_strndup(text, strlen(text));
    if (rc != 0) {
        cap_seterr(err, errlen, "%s: cannot apply filter '%s': %s", s->name, text,
                   pcap_geterr(s->p));
        return -1;
    }
    return 0;
}

int
cap_open(struct cap **out, const struct cap_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    int live = o->iface != NULL;
    if (live == (o->nfiles > 0)) {
        cap_seterr(err, errlen, "%s",
                   live ? "both an interface and capture files given"
                        : "no interface or capture file given");
        return -1;
    }
    struct cap *c = mem_calloc(1, sizeof *c);
    if (!c)
        goto nomem;
    c->live = live;
    if (o->filter && !(c->filter = mem_strndup(o->filter, strlen(o->filter))))
        goto nomem;
    if (o->ports && o->nports) {
        if (!(c->ports = mem_calloc(o->nports, sizeof *c->ports)))
            goto nomem;
        memcpy(c->ports, o->ports, o->nports * sizeof *c->ports);
        c->nports = o->nports;
    }
    c->nsrc = live ? 1 : o->nfiles;
    c->copy = c->nsrc > 1;
    c->src = mem_calloc(c->nsrc, sizeof *c->src);
    if (!c->src)
        goto nomem;

    int stdin_used = 0;
    for (size_t i = 0; i < c->nsrc; i++) {
        struct cap_src *s = &c->src[i];
        const char *name = live ? o->iface : o->files[i];
        if (!name) {
            cap_seterr(err, errlen, "capture file %zu has no name", i + 1);
            goto fail;
        }
        int is_stdin = !live && strcmp(name, "-") == 0;
        if (is_stdin && stdin_used++) {
            cap_seterr(err, errlen, "stdin: given more than once");
            goto fail;
        }
        const char *shown = is_stdin ? "stdin" : name;
        s->name = mem_strndup(shown, strlen(shown));
        if (!s->name)
            goto nomem;
        if (!live && !is_stdin && !(s->path = mem_strndup(name, strlen(name))))
            goto nomem;
        if ((live ? cap_open_live(s, o, err, errlen) : cap_open_file(s, name, err, errlen)) != 0)
            goto fail;
        s->dlt = pcap_datalink(s->p);
        if (!dec_link_supported(s->dlt)) {
            char lname[64];
            const char *pname = pcap_datalink_val_to_name(s->dlt);
            cap_seterr(err, errlen, "%s: link type %s (%s) is not supported", s->name,
                       dec_link_name(s->dlt, lname, sizeof lname), pname ? pname : "unknown");
            goto fail;
        }
        if (cap_set_filter(s, o, err, errlen) != 0)
            goto fail;
        if (!live)
            cap_begin_offsets(s);
        s->state = CAP_SRC_EMPTY;
    }
    *out = c;
    return 0;

nomem:
    cap_seterr(err, errlen, "out of memory opening the capture");
fail:
    cap_close(c);
    return -1;
}

/* A file whose next record cannot be read: what came before it is analysed, the file is
 * read no further, and the summary says where and why (one warning here, none later). */
static void
cap_note_damage(struct cap *c, const struct cap_src *s, const char *reason, int truncated)
{
    if (truncated && c->ntrunc++ == 0)
        c->trunc_name = mem_strndup(s->name, strlen(s->name));
    struct cap_damage *d = mem_realloc(c->damage, (c->ndamage + 1) * sizeof *d);
    if (d) {
        c->damage = d;
        d += c->ndamage;
        d->file = mem_strndup(s->name, strlen(s->name));
        d->reason = mem_strndup(reason, strlen(reason));
        d->offset = s->rec_off;
        if (d->file && d->reason) {
            c->ndamage++;
        } else {
            mem_free(d->file);
            mem_free(d->reason);
        }
    }
    if (c->quiet)
        return;
    if (s->rec_off >= 0)
        log_msg(LOG_LVL_WARN, "%s: %s at byte %lld: analysed up to there", s->name, reason,
                (long long)s->rec_off);
    else
        log_msg(LOG_LVL_WARN, "%s: %s: analysed up to there", s->name, reason);
}

static int64_t
cap_tell(const struct cap_src *s)
{
    FILE *f = pcap_file(s->p);
    off_t off = f ? ftello(f) : -1;
    return off >= 0 ? (int64_t)off : -1;
}

/* The offset of the next record, for the damage report. Asking the stream costs a system
 * call, so a classic pcap file's offsets are added up from the record lengths; only where
 * libpcap may have cut a record to the snapshot length (and skipped the rest) is the
 * stream asked. */
static void
cap_begin_offsets(struct cap_src *s)
{
    s->counted = pcap_major_version(s->p) == 2;
    s->rec_off = cap_tell(s);
}

static void
cap_advance_offset(struct cap_src *s, uint32_t caplen)
{
    if (!s->counted)
        return;
    if (s->rec_off < 0 || caplen >= (uint32_t)pcap_snapshot(s->p))
        s->rec_off = cap_tell(s);
    else
        s->rec_off += 16 + (int64_t)caplen;
}

/* Reads the next packet of one source into its pending slot. Returns 0 (PENDING, or DONE at
 * its end), 1 when a live read timed out (wake_idle; still EMPTY) or -1 with err set. */
#define CAP_MAX_SECONDS INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

/* The source's pending packet (s->caplen bytes at d) copied into its own buffer. */
static int
cap_keep_copy(struct cap_src *s, const uint8_t *d, char *err, size_t errlen)
{
    if (s->copy_alloc < s->caplen) {
        uint8_t *n = mem_realloc(s->copy, s->caplen);
        if (!n) {
            s->state = CAP_SRC_DONE;
            cap_seterr(err, errlen, "%s: out of memory", s->name);
            return -1;
        }
        s->copy = n;
        s->copy_alloc = s->caplen;
    }
    if (s->caplen)
        memcpy(s->copy, d, s->caplen);
    s->data = s->copy;
    return 0;
}

static int cap_fill_ng(struct cap *c, struct cap_src *s, char *err, size_t errlen);
static int cap_switch_ngread(struct cap *c, struct cap_src *s);

static int
cap_fill(struct cap *c, struct cap_src *s, char *err, size_t errlen)
{
    if (s->ng)
        return cap_fill_ng(c, s, err, errlen);
    for (;;) {
        struct pcap_pkthdr *h;
        const u_char *d;
        int rc = pcap_next_ex(s->p, &h, &d);
        if (rc == 1) {
            if (!c->live)
                cap_advance_offset(s, h->caplen);
            /* pcapng stores 64-bit timestamps in any resolution: a hostile file can name a
             * second no calendar reaches. Kept within years 1970..9999. */
            int64_t sec = (int64_t)h->ts.tv_sec, usec = (int64_t)h->ts.tv_usec;
            if (sec < 0)
                sec = 0;
            if (sec > CAP_MAX_SECONDS)
                sec = CAP_MAX_SECONDS;
            if (usec < 0 || usec > 999999)
                usec = 0;
            s->ts_us = sec * 1000000 + usec;
            s->caplen = h->caplen;
            s->len = h->len;
            s->data = d;
            /* libpcap reuses its buffer on the handle's next read; a merged source's
             * packet may wait while other files are read, so it gets its own copy. */
            if (c->copy && cap_keep_copy(s, d, err, errlen) != 0)
                return -1;
            s->state = CAP_SRC_PENDING;
            return 0;
        }
        if (rc == 0) {
            /* live read timeout: nothing arrived */
            if (c->stop) {
                s->state = CAP_SRC_DONE;
                return 0;
            }
            if (c->wake_idle) {
                /* Non-blocking (cap_wake_idle): the buffer is empty, so wait on the socket
                 * ourselves, for at most the read timeout. A signal cuts the wait short. */
                struct pollfd pfd = {.fd = pcap_get_selectable_fd(s->p), .events = POLLIN};
                int pr = pfd.fd >= 0 ? poll(&pfd, 1, CAP_LIVE_TIMEOUT_MS) : 0;
                if (pr == 0 || (pr < 0 && errno == EINTR))
                    return 1; /* still CAP_SRC_EMPTY */
            }
            continue;
        }
        s->state = CAP_SRC_DONE;
        if (rc == PCAP_ERROR_BREAK)
            return 0; /* end of file, or cap_break */
        /* A signal that stops the analysis interrupts a read from a FIFO or a terminal
         * (EINTR, no SA_RESTART): the capture ends there, as it does between two packets of
         * a regular file. */
        if (c->stop)
            return 0;
        const char *msg = pcap_geterr(s->p);
        /* A capture still being written, or copied while it was, ends inside a record
         * (libpcap: "truncated dump file"); a damaged one holds a record libpcap refuses.
         * Either way what came before it is good data and the analysis goes on. */
        if (!c->live && msg && strstr(msg, "different from the type of the first interface") &&
            cap_switch_ngread(c, s) == 0)
            return cap_fill_ng(c, s, err, errlen);
        if (!c->live) {
            int cut = msg && strstr(msg, "truncated") != NULL;
            const char *why = cut ? "file ends in the middle of a packet record"
                                  : (msg && *msg ? msg : "unreadable record");
            /* Compressed: the gzip layer knows better than libpcap what went wrong (it only
             * saw a failed read); offsets are in the decompressed data. */
            int gz_cut = 0;
            const char *gz_why = NULL;
            if (gzin_failed(s->gz, &gz_why, &gz_cut)) {
                why = gz_why;
                cut = gz_cut;
            }
            if (!s->counted)
                s->rec_off = cap_tell(s); /* pcapng: where libpcap stopped reading */
            cap_note_damage(c, s, why, cut);
            return 0;
        }
        cap_seterr(err, errlen, "%s: %s", s->name, msg && *msg ? msg : "read error");
        return -1;
    }
}

/* libpcap stopped at an interface whose link type differs from the first one's. The file
 * is read again from its start by ngread, which skips the packets libpcap already handed
 * out (those in blocks before where it stopped). A file that cannot be reopened (stdin)
 * ends there as a damaged one does. */
static int
cap_switch_ngread(struct cap *c, struct cap_src *s)
{
    /* A gzip stream cannot be read again from its start; one pcap file (-w) holds one link
     * type: both end at the unlike interface, as a damaged file does. */
    if (!s->path || s->gz || c->dump)
        return -1;
    int64_t resume = cap_tell(s);
    if (resume < 0)
        return -1;
    FILE *f = fopen(s->path, "rb");
    if (!f)
        return -1;
    struct ngr *ng = ngr_open(f, resume);
    if (!ng) {
        fclose(f);
        return -1;
    }
    if (s->iobuf)
        setvbuf(f, NULL, _IOFBF, CAP_FILE_BUFFER);
    __fsetlocking(f, FSETLOCKING_BYCALLER);
    pcap_close(s->p);
    s->p = NULL;
    s->ngf = f;
    s->ng = ng;
    return 0;
}

/* The filter for one link type of a multi-link-type file, compiled the first time the
 * type is met: the user's expression, or the default mail-port filter for that type. */
static const struct cap_dlt_filter *
cap_dlt_filter(struct cap *c, struct cap_src *s, int dlt)
{
    for (size_t i = 0; i < s->nfilters; i++)
        if (s->filters[i].dlt == dlt)
            return &s->filters[i];
    struct cap_dlt_filter *nf = mem_realloc(s->filters, (s->nfilters + 1) * sizeof *nf);
    if (!nf)
        return NULL;
    s->filters = nf;
    struct cap_dlt_filter *f = &nf[s->nfilters++];
    memset(f, 0, sizeof *f);
    f->dlt = dlt;
    char deflt[CAP_FILTER_MAX];
    const char *text = c->filter;
    if (!text && c->nports &&
        cap_default_filter_dlt(dlt, c->ports, c->nports, deflt, sizeof deflt) == 0)
        text = deflt;
    if (!text || !dec_link_supported(dlt)) {
        f->ok = dec_link_supported(dlt) ? 2 : 0; /* 2: no filter, every packet */
        return f;
    }
    /* pcapng names link types by their LINKTYPE_ value; libpcap compiles for a DLT_ one.
     * They differ only for raw IP among the types decoded. */
    pcap_t *dead = pcap_open_dead(dlt == DEC_DLT_RAW_LT ? DLT_RAW : dlt, CAP_SNAPLEN_DEFAULT);
    if (dead && pcap_compile(dead, &f->prog, text, 1, PCAP_NETMASK_UNKNOWN) == 0) {
        f->ok = 1;
    } else if (!c->quiet) {
        char lname[64];
        log_msg(LOG_LVL_WARN,
                "%s: filter does not compile for link type %s: its packets are "
                "not read",
                s->name, dec_link_name(dlt, lname, sizeof lname));
    }
    if (dead)
        pcap_close(dead);
    return f;
}

static int
cap_fill_ng(struct cap *c, struct cap_src *s, char *err, size_t errlen)
{
    for (;;) {
        struct ngr_pkt p;
        int rc = ngr_next(s->ng, &p);
        if (rc == NGR_END) {
            s->state = CAP_SRC_DONE;
            return 0;
        }
        if (rc == NGR_DAMAGED) {
            s->state = CAP_SRC_DONE;
            s->rec_off = ngr_offset(s->ng);
            cap_note_damage(c, s, ngr_error(s->ng), ngr_truncated(s->ng));
            return 0;
        }
        const struct cap_dlt_filter *f = cap_dlt_filter(c, s, p.dlt);
        if (!f) {
            s->state = CAP_SRC_DONE;
            cap_seterr(err, errlen, "%s: out of memory", s->name);
            return -1;
        }
        if (!f->ok) {
            c->unsupported++; /* an interface of a link type not decoded, or unfiltered */
            continue;
        }
        struct pcap_pkthdr h = {.caplen = p.caplen, .len = p.len};
        if (f->ok == 1 && !pcap_offline_filter(&f->prog, &h, p.data))
            continue;
        /* A Simple Packet Block has no time: it comes at the previous packet's. */
        if (p.ts_us >= 0)
            s->ts_us = p.ts_us;
        s->caplen = p.caplen;
        s->len = p.len;
        s->dlt = p.dlt;
        /* ngread reuses its block buffer, and the packet may wait while others are read. */
        if (cap_keep_copy(s, p.data, err, errlen) != 0)
            return -1;
        s->state = CAP_SRC_PENDING;
        return 0;
    }
}

int
cap_next(struct cap *c, struct cap_pkt *pkt, char *err, size_t errlen)
{
    memset(pkt, 0, sizeof *pkt);
    if (c->stop)
        return CAP_END;
    for (size_t i = 0; i < c->nsrc; i++) {
        if (c->src[i].state == CAP_SRC_EMPTY) {
            int rc = cap_fill(c, &c->src[i], err, errlen);
            if (rc < 0)
                return CAP_ERROR;
            if (rc > 0)
                return CAP_IDLE;
        }
        if (c->stop)
            return CAP_END;
    }
    /* Earliest pending packet; on equal stamps the earlier file on the command line wins,
     * so the merge is deterministic. */
    struct cap_src *best = NULL;
    for (size_t i = 0; i < c->nsrc; i++) {
        struct cap_src *s = &c->src[i];
        if (s->state == CAP_SRC_PENDING && (!best || s->ts_us < best->ts_us))
            best = s;
    }
    if (!best)
        return CAP_END;
    pkt->ts_us = best->ts_us;
    pkt->caplen = best->caplen;
    pkt->len = best->len;
    pkt->dlt = best->dlt;
    pkt->data = best->data;
    /* Refilled on the next call, which is what keeps data valid until then. */
    best->state = CAP_SRC_EMPTY;
    c->packets++;
    c->bytes += best->len;
    if (c->dump && dump_packet(c->dump, pkt->ts_us, pkt->caplen, pkt->len, pkt->data) != 0) {
        cap_seterr(err, errlen, "%s", dump_error(c->dump));
        c->dump = NULL;
        return CAP_ERROR;
    }
    return CAP_PACKET;
}

void
cap_uncount(struct cap *c, const struct cap_pkt *pkt)
{
    if (c->packets > 0) {
        c->packets--;
        c->bytes -= pkt->len <= c->bytes ? pkt->len : c->bytes;
    }
}

void
cap_wake_idle(struct cap *c)
{
    /* libpcap's own read timeout does not end a wait in immediate mode on every kernel and
     * libpcap version (TPACKET_V3 may block until a packet comes): the read is made
     * non-blocking and cap_fill polls the socket with a timeout of its own. */
    char eb[PCAP_ERRBUF_SIZE];
    if (c && c->live && c->src[0].p && pcap_get_selectable_fd(c->src[0].p) >= 0 &&
        pcap_setnonblock(c->src[0].p, 1, eb) == 0)
        c->wake_idle = 1;
}

void
cap_break(struct cap *c)
{
    if (!c)
        return;
    c->stop = 1;
    for (size_t i = 0; i < c->nsrc; i++)
        if (c->src[i].p)
            pcap_breakloop(c->src[i].p);
}

void
cap_get_stats(struct cap *c, struct cap_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!c)
        return;
    st->packets = c->packets;
    st->bytes = c->bytes;
    st->live = c->live;
    st->unsupported_link = c->unsupported;
    if (c->live && c->src[0].p) {
        struct pcap_stat ps;
        if (pcap_stats(c->src[0].p, &ps) == 0) {
            st->received = ps.ps_recv;
            st->kernel_drops = ps.ps_drop;
            st->iface_drops = ps.ps_ifdrop;
        }
    }
}

int
cap_truncated(const struct cap *c, char *buf, size_t buflen)
{
    if (buf && buflen)
        buf[0] = '\0';
    if (!c || c->ntrunc == 0)
        return 0;
    if (buf && buflen) {
        const char *name = c->trunc_name ? c->trunc_name : "a capture file";
        if (c->ntrunc == 1)
            snprintf(buf, buflen, "%s", name);
        else
            snprintf(buf, buflen, "%s and %zu more", name, c->ntrunc - 1);
    }
    return c->ntrunc > INT_MAX ? INT_MAX : (int)c->ntrunc;
}

void
cap_quiet(struct cap *c)
{
    if (c)
        c->quiet = 1;
}

size_t
cap_damage_count(const struct cap *c)
{
    return c ? c->ndamage : 0;
}

const struct cap_damage *
cap_damage_get(const struct cap *c, size_t i)
{
    return c && i < c->ndamage ? &c->damage[i] : NULL;
}

int
cap_fd(const struct cap *c)
{
    if (!c || !c->live || !c->src[0].p)
        return -1;
    return pcap_get_selectable_fd(c->src[0].p);
}

void
cap_close(struct cap *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->src && i < c->nsrc; i++) {
        if (c->src[i].p)
            pcap_close(c->src[i].p);
        gzin_free(c->src[i].gz);
        mem_free(c->src[i].filter);
        mem_free(c->src[i].iobuf);
        mem_free(c->src[i].name);
        mem_free(c->src[i].copy);
        mem_free(c->src[i].path);
        ngr_close(c->src[i].ng);
        if (c->src[i].ngf)
            fclose(c->src[i].ngf);
        for (size_t k = 0; k < c->src[i].nfilters; k++)
            if (c->src[i].filters[k].ok)
                pcap_freecode(&c->src[i].filters[k].prog);
        mem_free(c->src[i].filters);
    }
    mem_free(c->src);
    mem_free(c->filter);
    mem_free(c->ports);
    mem_free(c->trunc_name);
    for (size_t i = 0; i < c->ndamage; i++) {
        mem_free(c->damage[i].file);
        mem_free(c->damage[i].reason);
    }
    mem_free(c->damage);
    mem_free(c);
}

/* Every capability out of the bounding set; the kernel's list may be longer than this
 * build's headers know, so the loop goes on until the kernel says there is no such one. */
static int
cap_clear_bounding_set(char *err, size_t errlen)
{
#ifdef PR_CAPBSET_DROP
    for (unsigned long cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
            break; /* EINVAL: past the last capability this kernel has */
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            cap_seterr(err, errlen, "cannot clear capability %lu from the bounding set: %s", cap,
                       strerror(errno));
            return -1;
        }
    }
#else
    (void)err;
    (void)errlen;
#endif
    return 0;
}

/* No execve can raise the privileges again (set-user-ID programs, file capabilities). */
static int
cap_no_new_privs(char *err, size_t errlen)
{
#ifdef PR_SET_NO_NEW_PRIVS
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        cap_seterr(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
#else
    (void)err;
    (void)errlen;
#endif
    return 0;
}

int
cap_drop_privileges(const char *user, char *err, size_t errlen)
{
    if (!user || !*user) {
        cap_seterr(err, errlen, "no user name to switch to");
        return -1;
    }
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        if (errno)
            cap_seterr(err, errlen, "cannot look up user '%s': %s", user, strerror(errno));
        else
            cap_seterr(err, errlen, "unknown user '%s'", user);
        return -1;
    }
    /* getpwnam's record is static and initgroups may overwrite it: keep what we need. */
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (geteuid() != 0) {
        if (getuid() == uid && geteuid() == uid)
            return cap_no_new_privs(err, errlen);
        cap_seterr(err, errlen, "cannot switch to user '%s': not running as root", user);
        return -1;
    }
    /* The bounding set while still root (dropping from it takes CAP_SETPCAP, which the
     * switch of user clears): no program this process could ever run gains a capability. */
    if (cap_clear_bounding_set(err, errlen) != 0)
        return -1;
    /* Groups first: once the uid is gone we could no longer shed root's groups. */
    if (initgroups(user, gid) != 0) {
        cap_seterr(err, errlen, "cannot set the groups of user '%s': %s", user, strerror(errno));
        return -1;
    }
    if (setgid(gid) != 0) {
        cap_seterr(err, errlen, "cannot switch to group %lu of user '%s': %s", (unsigned long)gid,
                   user, strerror(errno));
        return -1;
    }
    if (setuid(uid) != 0) {
        cap_seterr(err, errlen, "cannot switch to user '%s' (uid %lu): %s", user,
                   (unsigned long)uid, strerror(errno));
        return -1;
    }
    /* Some systems let a process regain root through a saved set-user-ID; prove it can't. */
    if (uid != 0 && setuid(0) == 0) {
        cap_seterr(err, errlen, "switched to user '%s' but root privileges could be regained",
                   user);
        return -1;
    }
    return cap_no_new_privs(err, errlen);
}

/* Appends formatted text at *off; the overflow flag makes one check at the end enough. */
static void cap_append(char *buf, size_t buflen, size_t *off, int *over, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
cap_append(char *buf, size_t buflen, size_t *off, int *over, const char *fmt, ...)
{
    if (*over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, buflen - *off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= buflen - *off) {
        *over = 1;
        return;
    }
    *off += (size_t)n;
}

/* One alternative: TCP on a mail port, or an IPv4 fragment after the first, which carries
 * no ports but belongs to a segment the first fragment may have selected. */
static void
cap_filter_core(char *buf, size_t buflen, size_t *off, int *over, const uint16_t *ports,
                size_t nports)
{
    cap_append(buf, buflen, off, over, "(tcp and (");
    for (size_t i = 0; i < nports; i++)
        cap_append(buf, buflen, off, over, "%sport %u", i ? " or " : "", (unsigned)ports[i]);
    /* BPF's `tcp` sees IPv6 TCP only right behind the fixed header; packets with extension
     * headers (or IPv6 fragments) are let through and the decoder, which walks the chain,
     * applies the port selection. */
    cap_append(buf, buflen, off, over, ")) or (ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] != 6)");
}

int
cap_default_filter_dlt(int dlt, const uint16_t *ports, size_t nports, char *buf, size_t buflen)
{
    if (!buf || buflen == 0)
        return -1;
    buf[0] = '\0';
    if (!ports || nports == 0)
        return -1;
    size_t off = 0;
    int over = 0;
    cap_filter_core(buf, buflen, &off, &over, ports, nports);
    if (dlt == DEC_DLT_EN10MB) {
        /* libpcap's `vlan` shifts every later offset by one tag, so the tagged variants
         * come last, the doubly tagged (QinQ) one nested inside the singly tagged. A third
         * tag (the decoder follows up to eight) is let through whole: the decoder finds
         * the IP header and the reassembler applies the port selection. */
        cap_append(buf, buflen, &off, &over, " or (vlan and (");
        cap_filter_core(buf, buflen, &off, &over, ports, nports);
        cap_append(buf, buflen, &off, &over, " or (vlan and (");
        cap_filter_core(buf, buflen, &off, &over, ports, nports);
        cap_append(buf, buflen, &off, &over, " or vlan))))");
    }
    if (over) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

int
cap_default_filter(const uint16_t *ports, size_t nports, char *buf, size_t buflen)
{
    return cap_default_filter_dlt(DEC_DLT_EN10MB, ports, nports, buf, buflen);
}

void
cap_set_dump(struct cap *c, struct dump *d)
{
    if (c)
        c->dump = d;
}

int
cap_datalink(const struct cap *c, int *snaplen)
{
    int dlt = -1, snap = 0;
    for (size_t i = 0; c && i < c->nsrc; i++) {
        const struct cap_src *s = &c->src[i];
        if (i > 0 && s->dlt != dlt)
            return -2;
        dlt = s->dlt;
        int sn = s->p ? pcap_snapshot(s->p) : 0;
        if (sn > snap)
            snap = sn;
    }
    if (snaplen)
        *snaplen = snap;
    return dlt;
}

int
cap_source_info(const struct cap *c, size_t i, struct cap_source_info *info)
{
    memset(info, 0, sizeof *info);
    if (!c || i >= c->nsrc || !c->src[i].p)
        return -1;
    const struct cap_src *s = &c->src[i];
    info->name = s->name;
    info->dlt = s->dlt;
    info->dlt_name = pcap_datalink_val_to_name(s->dlt);
    info->dlt_description = pcap_datalink_val_to_description(s->dlt);
    info->snaplen = pcap_snapshot(s->p);
    info->filter = s->filter;
    info->compressed = s->gz != NULL;
    return 0;
}

void
cap_progress(const struct cap *c, uint64_t *done, uint64_t *total)
{
    uint64_t d = 0, t = 0;
    int unknown = 0;
    for (size_t i = 0; c && i < c->nsrc; i++) {
        const struct cap_src *s = &c->src[i];
        if (s->size <= 0) {
            unknown = 1;
        } else {
            t += (uint64_t)s->size;
        }
        if (s->state == CAP_SRC_DONE && s->size > 0) {
            d += (uint64_t)s->size;
        } else if (s->gz) {
            d += gzin_in_bytes(s->gz);
        } else if (s->raw) {
            off_t off = ftello(s->raw);
            if (off > 0)
                d += (uint64_t)off;
        }
    }
    *done = d;
    *total = unknown ? 0 : t;
}
