/* dump.h - -w: the packets the analysis read, written to a pcap file as they are read (the
 * evidence to attach to an incident), rotated by size (-C) over a ring of files (-W) the
 * way tcpdump names them. */
#ifndef SMTPSNIFF_DUMP_H
#define SMTPSNIFF_DUMP_H

#include <stddef.h>
#include <stdint.h>

struct dump;

struct dump_opts {
    const char *path;
    int dlt;            /* link type of every packet written */
    int snaplen;        /* for the file header */
    uint64_t max_bytes; /* -C: a new file once the current one is larger; 0: one file */
    unsigned max_files; /* -W: names cycle over this many files; 0: no limit */
    int flush_each;     /* live: every packet reaches the file at once */
};

/* Creates the first file (now, with the privileges the process has). NULL with err set. */
struct dump *dump_open(const struct dump_opts *o, char *err, size_t errlen);
/* The name of file number n under these options (FILE, FILE1... or FILE0..FILEn-1). */
void dump_file_name(const struct dump_opts *o, unsigned n, char *buf, size_t buflen);
/* Returns 0, or -1 once writing failed (err says why; later packets are not written). */
int dump_packet(struct dump *d, int64_t ts_us, uint32_t caplen, uint32_t len, const uint8_t *data);
/* Why writing failed (after dump_packet returned -1). */
const char *dump_error(const struct dump *d);
/* Writes out what is buffered (before fork, so that only one process writes it). */
int dump_flush(struct dump *d);
/* Closes the current file. Returns 0, or -1 when any write failed (err says why). */
int dump_close(struct dump *d, char *err, size_t errlen);

#endif
