/* nodecache.h - a free-block cache under Jansson. Every session's report is a tree of a few
 * hundred small blocks built, written and freed before the next one; glibc's per-size caches
 * hold only a handful of blocks each, so most of them went back through its general bins
 * (and their consolidation) every session. Blocks freed here are kept per size class, up to
 * a fixed bound, for the next tree. */
#ifndef SMTPSNIFF_NODECACHE_H
#define SMTPSNIFF_NODECACHE_H

/* Routes Jansson's allocations through the cache (json_set_alloc_funcs is process-wide, so
 * main calls this once, before the first json_t exists; every json_t must be freed by the
 * same functions that made it). A no-op in sanitizer builds. */
void nodecache_install(void);

#endif
