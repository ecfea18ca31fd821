/* gzin.h - a gzip-compressed capture read as a stdio stream (glibc fopencookie over zlib's
 * inflate), so that libpcap reads .pcap.gz and .pcapng.gz like any capture. */
#ifndef SMTPSNIFF_GZIN_H
#define SMTPSNIFF_GZIN_H

#include <stdint.h>
#include <stdio.h>

struct gzin;

/* A stream of the decompressed bytes of `in`, whose first two bytes (the gzip magic, already
 * read) are given back in magic. Closing the stream closes `in` too unless it is stdin.
 * ftello on the stream gives the offset in the decompressed data. NULL on allocation
 * failure. *state stays valid until gzin_free, after the stream is closed. */
FILE *gzin_open(FILE *in, const unsigned char magic[2], struct gzin **state);
/* Non-zero once reading stopped at bad compressed data; *cut_off is set when the
 * compressed data simply ended early. */
int gzin_failed(const struct gzin *g, const char **reason, int *cut_off);
/* Compressed bytes consumed so far (for progress). */
uint64_t gzin_in_bytes(const struct gzin *g);
void gzin_free(struct gzin *g);

#endif
