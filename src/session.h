/* session.h - one record per TCP connection: the facts from reassembly, the SMTP model
 * fed with each direction's bytes, and the finished report handed to the writer. */
#ifndef SMTPSNIFF_SESSION_H
#define SMTPSNIFF_SESSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "eml.h"
#include "jtree.h"
#include "reasm.h"
#include "rules.h"
#include "smtp.h"

struct sess_config {
    struct smtp_config smtp;
    struct rule_config rules;
    size_t feed_chunk;          /* > 0: hand bytes to the dissector in pieces this small (tests) */
    struct eml *eml;            /* write each message there as it is read; NULL: not written */
    uint16_t implicit_tls_port; /* 465 */
    /* Live capture: while a session is open its model is judged after each piece of a
     * reply, and each anomaly that does not depend on the session's end is handed here the
     * first time it appears (the session object is a snapshot, borrowed). */
    void (*live_anomaly)(void *ctx, const struct jt_node *session, const struct jt_node *anomaly);
    void *live_ctx;
    /* Live capture (the clock ticks, reasm_tick): an open session whose client has waited
     * for the server past a threshold (5 s, 30 s, then idle_timeout_us) is handed here once
     * per threshold; awaiting is "greeting", "end-of-data" or a command's verb. */
    void (*live_waiting)(void *ctx, const struct jt_node *session, const char *awaiting,
                         int64_t waited_us, int64_t now_us);
    int64_t idle_timeout_us;
    /* Live: a SYN without SYN-ACK is told (as the syn_unanswered anomaly, through
     * live_anomaly) at its first retransmission or after this long, whichever comes first. */
    int64_t syn_timeout_us;
};

/* Called with each finished report; the callee takes nothing (the tree is freed after).
 * The report has no "transcript" array: smtp (NULL when the connection carried no SMTP
 * model) still holds it, for the writer to write with smtp_dump_report. order: the key
 * workers' reports are merged by (the connection's end frame, its last frame). */
typedef void (*sess_emit_fn)(void *ctx, const struct jt_node *report,
                             const struct smtp_session *smtp, const uint64_t order[2],
                             int max_severity);

struct sess_stats {
    uint64_t opened;
    uint64_t reported;
    uint64_t syn_evicted; /* unanswered SYNs dropped under table pressure, not reported */
    uint64_t eml_written; /* see struct eml_stats */
    uint64_t eml_partial;
    uint64_t eml_errors;
    uint64_t no_memory; /* sessions whose SMTP model could not be allocated */
};

struct sess_mgr;

struct sess_mgr *sess_mgr_create(const struct sess_config *cfg, sess_emit_fn emit, void *ctx);
void sess_mgr_destroy(struct sess_mgr *m);
/* The callbacks reasm drives. */
void sess_mgr_ops(struct sess_mgr *m, struct reasm_ops *ops);
void sess_mgr_stats(const struct sess_mgr *m, struct sess_stats *st);

#endif
