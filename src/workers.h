/* workers.h - the analysis in several processes (--workers N): libnids keeps its state in
 * globals, so parallelism means processes. On capture files each worker reads the whole
 * capture and owns the connections of one shard of the symmetric flow hash; the parent
 * merges their framed reports back into the order one process would have written them.
 * Live, the kernel shares the interface out by flow (packet fanout, see capture.h). */
#ifndef SMTPSNIFF_WORKERS_H
#define SMTPSNIFF_WORKERS_H

#include <jansson.h>
#include <stdio.h>

#include "report.h"

#include <signal.h>

/* Sent to live workers when another one ended (its packet count reached, or an error): the
 * worker finishes as on SIGINT, but was not interrupted. */
#define WRK_SIG_PEER_ENDED SIGUSR1

/* Runs in the child: analyses shard `index` of `count`, writing framed records to out.
 * Its return value is the child's exit status. */
typedef int (*wrk_child_fn)(void *ctx, unsigned index, unsigned count, FILE *out);

/* Forks `count` workers and merges what they write into rep. Returns the merged summary
 * (new reference; NULL when no worker delivered one) and, in *status, the worst exit
 * status of the workers (3 when one died). Every worker is reaped before it returns; when
 * writing to rep fails, the workers are killed at once, NULL is returned, *status is 3 and
 * *write_errno the write's error (0 otherwise). Workers die with the parent. live: the workers
 * share a live interface, each seeing its own connections: records are written as they come, the
 * summaries' packet counts are summed, and when one worker stops all are stopped. */
json_t *wrk_run(unsigned count, wrk_child_fn child, void *ctx, struct report *rep, int live,
                int *status, int *write_errno);

#endif
