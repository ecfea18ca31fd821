/* b64.h - the base64 alphabet (RFC 4648 section 4), shared by every decoder of it. */
#ifndef SMTPSNIFF_B64_H
#define SMTPSNIFF_B64_H

#include <stdint.h>

/* The 6-bit value of a base64 symbol, or -1 for any other byte ('=' included). */
int b64_value(uint8_t c);

#endif
