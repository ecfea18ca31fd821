/* communityid.h - Community ID flow hashing, version 1 (corelight/community-id-spec). */
#ifndef SMTPSNIFF_COMMUNITYID_H
#define SMTPSNIFF_COMMUNITYID_H

#include <stddef.h>
#include <stdint.h>

/* A hashing context kept across flows (cheaper than one-shot hashing); NULL without memory. */
struct communityid;
struct communityid *communityid_create(void);
void communityid_destroy(struct communityid *c);

/* Writes "1:<base64 SHA-1>" into out (at least 32 bytes) for a flow. family 4 or 6;
 * addresses are 4 or 16 bytes in network order; ports in host order. h: a context from
 * communityid_create, or NULL to hash without one. Returns 0 or -1. */
int communityid_v1(struct communityid *h, uint16_t seed, int family, const uint8_t *saddr,
                   const uint8_t *daddr, uint8_t proto, uint16_t sport, uint16_t dport, char *out,
                   size_t outlen);

#endif
