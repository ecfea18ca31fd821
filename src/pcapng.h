/* pcapng.h - what libpcap skips in pcapng files: Decryption Secrets Blocks (pcapng spec,
 * block type 0x0000000A), which carry TLS key logs (`editcap --inject-secrets`). */
#ifndef SMTPSNIFF_PCAPNG_H
#define SMTPSNIFF_PCAPNG_H

#include <stddef.h>

#include "buf.h"

/* Appends the TLS key log secrets (secrets type 0x544c534b) found in the first max_scan
 * bytes of the file at path to out. Returns the number of blocks found, 0 for a file that
 * is not pcapng or has none, -1 when the file cannot be read. Every length is checked. */
int pcapng_tls_secrets(const char *path, struct buf *out, size_t max_scan);

#endif
