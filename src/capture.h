/* capture.h - the packet source: libpcap live capture or one or more capture files
 * merged in timestamp order. The only module besides reasm that touches libpcap. */
#ifndef SMTPSNIFF_CAPTURE_H
#define SMTPSNIFF_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

struct cap;

struct cap_opts {
    const char *iface;        /* live capture interface, or NULL */
    const char *const *files; /* offline files ("-" = stdin), nfiles of them */
    size_t nfiles;
    const char *filter;    /* BPF expression, NULL for none */
    int snaplen;           /* 0: 262144 */
    int buffer_kib;        /* -B, live only; 0: libpcap default */
    int promisc;           /* live: promiscuous mode (default 1) */
    const uint16_t *ports; /* filter == NULL and nports > 0: each source gets the default
                              mail-port filter written for its own link type (the `vlan`
                              keyword only compiles on Ethernet), see cap_default_filter */
    size_t nports;
    int fanout_group; /* live, Linux: join this PACKET_FANOUT group (1..65535), hashed by
                         flow in both directions, so that several processes share one
                         interface connection by connection; 0: none */
};

struct cap_pkt {
    int64_t ts_us;       /* capture timestamp, microseconds since the epoch */
    uint32_t caplen;     /* bytes present at data */
    uint32_t len;        /* length on the wire */
    int dlt;             /* link type of this packet's source */
    const uint8_t *data; /* borrowed until the next cap_next() */
};

struct cap_stats {
    uint64_t packets;          /* packets returned by cap_next */
    uint64_t bytes;            /* sum of their wire lengths */
    uint64_t received;         /* live: pcap_stats ps_recv (packets the filter let through) */
    uint64_t kernel_drops;     /* live: pcap_stats ps_drop */
    uint64_t iface_drops;      /* live: pcap_stats ps_ifdrop */
    uint64_t unsupported_link; /* pcapng packets of an interface whose link type is not
                                  decoded: skipped */
    int live;
};

enum { CAP_IDLE = 2, CAP_PACKET = 1, CAP_END = 0, CAP_ERROR = -1 };

/* Opens every source and compiles the filter for each. On failure returns -1 and
 * writes a one-line reason naming the file or interface into err. */
int cap_open(struct cap **out, const struct cap_opts *o, char *err, size_t errlen);
/* Drops root privileges to `user` (and its groups), clears the capability bounding set and
 * sets no_new_privs; call right after cap_open and after opening every output file. */
int cap_drop_privileges(const char *user, char *err, size_t errlen);
/* Live, after cap_wake_idle: cap_next returns CAP_IDLE when nothing arrived within a read
 * timeout (a quarter of a second), so that the caller's clock goes on without packets. */
void cap_wake_idle(struct cap *c);
/* Next packet in timestamp order. CAP_ERROR for a live read error (err says why); a file
 * whose next record cannot be read (cut off or damaged) ends there and is reported through
 * cap_damage_get() (and cap_truncated() when cut off), not as an error. */
int cap_next(struct cap *c, struct cap_pkt *pkt, char *err, size_t errlen);
/* Takes a packet cap_next returned back out of the counts: it was read, but the analysis
 * stopped before it (live workers' shared packet count reached). */
void cap_uncount(struct cap *c, const struct cap_pkt *pkt);
/* Makes a blocked live cap_next return CAP_END soon (async-signal-safe). */
void cap_break(struct cap *c);
void cap_get_stats(struct cap *c, struct cap_stats *st);
/* A file read up to a record that could not be read (cut off, or damaged). */
struct cap_damage {
    char *file;
    int64_t offset; /* of the record that could not be read; -1 unknown (stdin) */
    char *reason;
};
/* No warnings on stderr from this handle (workers other than the first). */
void cap_quiet(struct cap *c);
size_t cap_damage_count(const struct cap *c);
const struct cap_damage *cap_damage_get(const struct cap *c, size_t i);
/* Non-zero when a file ended in the middle of a record; names it in buf. */
int cap_truncated(const struct cap *c, char *buf, size_t buflen);
/* The selectable fd of a live capture (-1 offline), for idle-timeout ticks. */
int cap_fd(const struct cap *c);
void cap_close(struct cap *c);

/* The default filter text for a set of mail ports ("tcp port 25 or ..."), written into buf.
 * It also selects non-first IPv4 fragments and, on Ethernet, the same traffic inside one or
 * two VLAN tags, and every frame with three or more (the decoder and the reassembler's port
 * check select those). This is the Ethernet text; returns 0, or -1 when buf is too small. */
int cap_default_filter(const uint16_t *ports, size_t nports, char *buf, size_t buflen);
/* The same for one link type: without the VLAN alternatives where libpcap has no `vlan`. */
int cap_default_filter_dlt(int dlt, const uint16_t *ports, size_t nports, char *buf, size_t buflen);

struct dump;
/* -w: every packet cap_next hands out is written to d as well (borrowed; a failed write
 * makes cap_next return CAP_ERROR with the reason). */
void cap_set_dump(struct cap *c, struct dump *d);
/* The link type every source has, -2 when the files differ, -1 when there is none;
 * *snaplen the largest snapshot length. */
int cap_datalink(const struct cap *c, int *snaplen);

struct cap_source_info {
    const char *name; /* interface, file name or "stdin" */
    int dlt;
    const char *dlt_name;        /* libpcap's: "EN10MB"; NULL unknown */
    const char *dlt_description; /* "Ethernet"; NULL unknown */
    int snaplen;
    const char *filter; /* the filter compiled for it, NULL none */
    int compressed;     /* read through gzip */
};
/* Source i (0..): what the live "listening on" line says. -1 when there is no such one. */
int cap_source_info(const struct cap *c, size_t i, struct cap_source_info *info);
/* Offline: bytes of the input files read so far (compressed bytes for a gzip file), and
 * their total size (0 when one of them has none: a pipe). */
void cap_progress(const struct cap *c, uint64_t *done, uint64_t *total);

#endif
