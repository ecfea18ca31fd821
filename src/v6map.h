/* v6map.h - bounded, reference-counted map from IPv6 addresses to synthetic IPv4
 * addresses in 240.0.0.0/4, so libnids (IPv4-only TCP) can reassemble IPv6 streams. */
#ifndef SMTPSNIFF_V6MAP_H
#define SMTPSNIFF_V6MAP_H

#include <stddef.h>
#include <stdint.h>

struct v6map;

/* Holds at most `max_entries` distinct IPv6 addresses at once (capped at 2^28, the size
 * of 240.0.0.0/4 less the network and broadcast addresses). NULL on allocation failure. */
struct v6map *v6map_create(size_t max_entries);
void v6map_destroy(struct v6map *m);

/* Looks up or assigns the synthetic address for addr (16 bytes) and takes a reference.
 * The synthetic address is returned in network byte order in *out.
 * Returns 0, or -1 when the map is full (the caller counts a drop: never a wrong address). */
int v6map_acquire(struct v6map *m, const uint8_t addr[16], uint32_t *out);
/* Same lookup without taking a reference; -1 when addr has no entry. */
int v6map_lookup(const struct v6map *m, const uint8_t addr[16], uint32_t *out);
/* The real IPv6 address behind a synthetic one; -1 when it is not mapped. */
int v6map_reverse(const struct v6map *m, uint32_t synth, uint8_t addr[16]);
/* Drops one reference; the entry is freed (and its address reusable) at zero. */
void v6map_release(struct v6map *m, uint32_t synth);

size_t v6map_count(const struct v6map *m);
/* 1 when a (network order) IPv4 address lies in 240.0.0.0/4. */
int v6map_is_synthetic(uint32_t addr_be);

#endif
