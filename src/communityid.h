/* communityid.h - Community ID flow hashing, version 1 (corelight/community-id-spec). */
#ifndef SMTPSNIFF_COMMUNITYID_H
#define SMTPSNIFF_COMMUNITYID_H

#include <stddef.h>
#include <stdint.h>

/* Writes "1:<base64 SHA-1>" into out (at least 32 bytes) for a flow. family 4 or 6;
 * addresses are 4 or 16 bytes in network order; ports in host order. Returns 0 or -1. */
int communityid_v1(uint16_t seed, int family, const uint8_t *saddr, const uint8_t *daddr,
                   uint8_t proto, uint16_t sport, uint16_t dport, char *out, size_t outlen);

#endif
