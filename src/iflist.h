/* iflist.h - -D: the interfaces libpcap can capture on, listed as tcpdump -D lists them. */
#ifndef SMTPSNIFF_IFLIST_H
#define SMTPSNIFF_IFLIST_H

#include <stddef.h>
#include <stdio.h>

/* "1.eth0 [Up, Running, Connected]" lines, with the description in parentheses where
 * libpcap has one. Returns 0, or -1 with err set when the list cannot be had. */
int iflist_print(FILE *out, char *err, size_t errlen);

#endif
