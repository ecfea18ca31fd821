/* enhanced.h - RFC 3463 enhanced mail system status codes ("5.1.1") at the start of a
 * reply's text. Pure: no allocation, no state. */
#ifndef SMTPSNIFF_ENHANCED_H
#define SMTPSNIFF_ENHANCED_H

#include <stddef.h>
#include <stdint.h>

/* The length of the "class.subject.detail" opening p[0..n), followed by a space, a tab or
 * the end; 0 when there is none. The class is 2, 4 or 5 (RFC 3463 3.1) and, when code is
 * not 0, the first digit of the reply code it came with (RFC 3463 2). Subject and detail
 * are one to three digits. */
size_t enhanced_len(int code, const uint8_t *p, size_t n);

#endif
