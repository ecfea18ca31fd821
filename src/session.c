/* session.c - per-connection records: reassembly facts, the SMTP model, the report
 * (schema smtpsniff.session/1, documented in docs/schema.md), anomaly rules, the .eml sink. */
#include "session.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "communityid.h"
#include "jsonx.h"
#include "mem.h"

struct sess_mgr {
    struct sess_config cfg;
    sess_emit_fn emit;
    void *ctx;
    struct sess_stats st;
    struct jt *tree; /* the report being built: one at a time, its memory reused */
    struct communityid *cid;
    EVP_MD *sha256; /* lent to every SMTP model's message hashing */
};

/* A wait of the client for the server, kept as a fact of the report (smtp.waits) when it
 * lasted SESS_WAIT_MIN_US or more, or was still going on when the capture stopped. */
#define SESS_MAX_WAITS 16
#define SESS_WAIT_MIN_US INT64_C(5000000)

enum sess_until { SESS_UNTIL_REPLY, SESS_UNTIL_CLIENT, SESS_UNTIL_END, SESS_UNTIL_CAPTURE_END };
static const char *const sess_until_names[] = {"reply", "client", "end", "capture_end"};

struct sess_wait {
    const char *what; /* smtp_awaiting's static text */
    int64_t since_us, waited_us;
    enum sess_until until;
};

struct sess {
    struct sess_mgr *m;
    uint64_t id;
    struct smtp_session *smtp;
    int smtp_failed;
    const struct reasm_facts *f; /* reassembly's, valid while the connection is open */
    json_t *announced;           /* live: anomaly ids already handed out */
    struct eml_file **eml;       /* the files of this session's messages, in begin order */
    size_t neml, aeml;
    /* the wait going on now (smtp_awaiting), and the live thresholds already told */
    int w_on;
    const char *w_what;
    int64_t w_since;
    unsigned w_told;
    int syn_told;
    struct sess_wait waits[SESS_MAX_WAITS];
    size_t nwaits;
    uint64_t waits_dropped;
    int64_t capture_end_us; /* ended by the end of the capture: when that was */
};

static struct jt *sess_build(struct sess *s, const struct reasm_facts *f, enum reasm_end end);
static void sess_wait_track(struct sess *s, int dir, int64_t ts_us);

/* Live capture: an anomaly is told when it can first be seen, not when the session ends. */
static void
sess_live_check(struct sess *s)
{
    struct sess_mgr *m = s->m;
    if (!m->cfg.live_anomaly || !s->f)
        return;
    struct jt *t = sess_build(s, s->f, REASM_END_CAPTURE_END);
    if (!t)
        return;
    struct jt_node *o = jt_root(t);
    rule_apply_open(&m->cfg.rules, o);
    const struct jt_node *an = jt_arr(jt_get(o, "anomalies"));
    for (size_t i = 0; i < jt_size(an); i++) {
        const struct jt_node *a = jt_obj(jt_at(an, i));
        const char *id = jt_str(jt_get(a, "id"));
        if (!id || (s->announced && json_object_get(s->announced, id)))
            continue;
        if (!s->announced)
            s->announced = json_object();
        if (s->announced)
            json_object_set_new(s->announced, id, json_true());
        m->cfg.live_anomaly(m->cfg.live_ctx, o, a);
    }
    jt_reset(t);
}

static void
sess_format_ip(int family, const uint8_t *ip, char *out, size_t outlen)
{
    /* Dotted quads by hand: inet_ntop's were a tenth of building a report's envelope. */
    if (family == 4 && outlen >= 16) {
        char *o = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = ip[i];
            if (v >= 100)
                *o++ = (char)('0' + v / 100);
            if (v >= 10)
                *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            *o++ = i < 3 ? '.' : '\0';
        }
        return;
    }
    if (!inet_ntop(family == 6 ? AF_INET6 : AF_INET, ip, out, (socklen_t)outlen))
        snprintf(out, outlen, "?");
}

static void *
sess_open(void *ctx, const struct reasm_facts *f)
{
    struct sess_mgr *m = ctx;
    struct sess *s = mem_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->m = m;
    /* The frame number of the first SYN: unique, the same however the capture is split
     * across workers, and what Wireshark shows to find the connection. */
    s->id = f->syn_frame;
    s->f = f;
    m->st.opened++;
    return s;
}

/* The SMTP model's message sink: each message of a kept transaction goes to its file. */
static void *
sess_eml_begin(void *ctx, uint64_t txn, const struct imf_envelope *env)
{
    struct sess *s = ctx;
    struct eml *e = s->m->cfg.eml;
    if (s->neml == s->aeml) {
        size_t na = s->aeml ? s->aeml * 2 : 4;
        struct eml_file **v = mem_realloc(s->eml, na * sizeof *v);
        if (!v) {
            eml_lost(e);
            return NULL;
        }
        s->eml = v;
        s->aeml = na;
    }
    struct eml_file *f = eml_begin(e, s->id, txn);
    if (f)
        s->eml[s->neml++] = f;
    if (f && env) {
        const uint8_t *rp[64];
        size_t rl[64], n = 0;
        /* The envelope goes first; beyond 64 recipients, in batches. */
        eml_envelope(f, env->has_from ? (env->from.p ? env->from.p : (const uint8_t *)"") : NULL,
                     env->from.n, NULL, NULL, 0);
        for (size_t i = 0; i < env->nrcpt; i++) {
            rp[n] = env->rcpt[i].p;
            rl[n++] = env->rcpt[i].n;
            if (n == 64 || i + 1 == env->nrcpt) {
                eml_envelope(f, NULL, 0, rp, rl, n);
                n = 0;
            }
        }
    }
    return f;
}

static void
sess_eml_bytes(void *msg, const uint8_t *p, size_t n)
{
    eml_write(msg, p, n);
}

static void
sess_eml_end(void *msg, int whole)
{
    eml_end(msg, whole);
}

/* data.eml_file and data.eml_status of each transaction whose message has a file. */
static void
sess_eml_report(const struct sess *s, struct jt_node *o)
{
    struct jt_node *txns = jt_arr(jt_get(o, "transactions"));
    for (size_t i = 0; i < s->neml; i++) {
        const struct eml_file *f = s->eml[i];
        struct jt_node *t = jt_obj(jt_at(txns, (size_t)eml_file_txn(f)));
        struct jt_node *d = jt_obj(jt_get(t, "data"));
        if (!d)
            continue;
        if (eml_file_name(f)) {
            jt_set_str(d, "eml_file", eml_file_name(f));
            jt_set_int(d, "eml_envelope_bytes", (int64_t)eml_file_envelope_bytes(f));
        }
        if (eml_file_status(f) != EML_OPEN)
            jt_set_lit(d, "eml_status", eml_status_name(eml_file_status(f)));
    }
}

static void
sess_free(struct sess *s)
{
    smtp_destroy(s->smtp);
    for (size_t i = 0; i < s->neml; i++)
        eml_file_free(s->eml[i]);
    mem_free(s->eml);
    mem_free(s);
}

static void
sess_established(void *conn, const struct reasm_facts *f)
{
    struct sess *s = conn;
    if (s->smtp || s->smtp_failed)
        return;
    struct smtp_config sc = s->m->cfg.smtp;
    if (s->m->cfg.implicit_tls_port && f->server_port == s->m->cfg.implicit_tls_port)
        sc.implicit_tls = 1;
    if (s->m->cfg.eml)
        sc.eml = (struct imf_sink){sess_eml_begin, sess_eml_bytes, sess_eml_end, s};
    s->smtp = smtp_create(&sc, f->syn_us, f->established_us);
    if (!s->smtp) {
        s->smtp_failed = 1;
        s->m->st.no_memory++;
    } else if (f->midstream) {
        smtp_midstream(s->smtp);
    }
    /* The greeting is awaited from the handshake on. */
    if (s->smtp)
        sess_wait_track(s, REASM_CLIENT, f->established_us);
}

static void
sess_wait_end(struct sess *s, int64_t end_us, enum sess_until until)
{
    if (!s->w_on)
        return;
    s->w_on = 0;
    int64_t waited = end_us > s->w_since ? end_us - s->w_since : 0;
    if (waited < SESS_WAIT_MIN_US && until != SESS_UNTIL_CAPTURE_END)
        return;
    if (s->nwaits == SESS_MAX_WAITS) {
        s->waits_dropped++;
        return;
    }
    s->waits[s->nwaits++] = (struct sess_wait){s->w_what, s->w_since, waited, until};
}

/* After the model read bytes: the wait it was in ended (a reply, or the client went on), or
 * a new one began. */
static void
sess_wait_track(struct sess *s, int dir, int64_t ts_us)
{
    const char *what = NULL;
    int64_t since = 0;
    int on = smtp_awaiting(s->smtp, &what, &since);
    if (s->w_on && on && since == s->w_since && what == s->w_what)
        return;
    sess_wait_end(s, ts_us, dir == REASM_SERVER ? SESS_UNTIL_REPLY : SESS_UNTIL_CLIENT);
    if (on) {
        s->w_on = 1;
        s->w_what = what;
        s->w_since = since;
        s->w_told = 0;
    }
}

static void
sess_data(void *conn, int dir, const uint8_t *p, size_t n, int64_t ts_us)
{
    struct sess *s = conn;
    if (!s->smtp)
        return;
    enum smtp_dir d = dir == REASM_CLIENT ? SMTP_CLIENT : SMTP_SERVER;
    size_t chunk = s->m->cfg.feed_chunk;
    if (chunk == 0) {
        smtp_feed(s->smtp, d, p, n, ts_us);
    } else {
        for (size_t off = 0; off < n; off += chunk)
            smtp_feed(s->smtp, d, p + off, n - off < chunk ? n - off : chunk, ts_us);
    }
    sess_wait_track(s, dir, ts_us);
    /* Replies are what most anomalies are read from: judged after each piece of them. */
    if (dir == REASM_SERVER)
        sess_live_check(s);
}

static void
sess_gap(void *conn, int dir, uint64_t n, int64_t ts_us)
{
    struct sess *s = conn;
    if (s->smtp)
        smtp_gap(s->smtp, dir == REASM_CLIENT ? SMTP_CLIENT : SMTP_SERVER, n, ts_us);
}

static void
sess_endpoint(struct jt_node *o, const char *ip, uint16_t port)
{
    jt_set_str(o, "ip", ip);
    jt_set_int(o, "port", port);
}

static void
sess_bool_pair(struct jt_node *o, int client, int server)
{
    jt_set_bool(o, "client", client);
    jt_set_bool(o, "server", server);
}

/* A tap or asymmetric routing that shows one direction of a connection that did open (an
 * unanswered SYN is no sign of it). */
static int
sess_one_sided(const struct reasm_facts *f)
{
    return f->established && !f->packets[0] != !f->packets[1];
}

static const char *
sess_side(int dir)
{
    return dir == REASM_SERVER ? "server" : "client";
}

/* Counters per side that only some connections have: present when one is not zero. */
static void
sess_pair_if(struct jt_node *t, const char *key, const uint64_t v[2])
{
    if (!v[0] && !v[1])
        return;
    struct jt_node *o = jt_set_obj(t, key);
    jt_set_int(o, "client", (int64_t)v[0]);
    jt_set_int(o, "server", (int64_t)v[1]);
}

/* What the packets show besides the stream: each side's FIN (when, its TTL), bursts of
 * retransmissions, segments with wrong checksums, and copies of the same bytes that
 * differ. */
static void
sess_tcp_events(struct jt_node *t, const struct reasm_facts *f)
{
    if (f->fin_us[0] || f->fin_us[1]) {
        struct jt_node *a = jt_set_arr(t, "fins");
        int first = f->fin_us[0] && (!f->fin_us[1] || f->fin_us[0] <= f->fin_us[1]) ? 0 : 1;
        for (int k = 0; k < 2; k++) {
            int d = k ? !first : first;
            if (!f->fin_us[d])
                continue;
            struct jt_node *o = jt_push_obj(a);
            jt_set_lit(o, "from", sess_side(d));
            jt_set_ms(o, "t_ms", f->fin_us[d] - f->syn_us);
            jt_set_int(o, "ttl", f->fin_ttl[d]);
        }
    }
    if (f->nbursts) {
        struct jt_node *a = jt_set_arr(t, "retransmission_bursts");
        for (size_t i = 0; i < f->nbursts; i++) {
            const struct reasm_burst *b = &f->bursts[i];
            struct jt_node *o = jt_push_obj(a);
            jt_set_lit(o, "from", sess_side(b->dir));
            jt_set_ms(o, "t_ms", b->first_us - f->syn_us);
            jt_set_ms(o, "last_ms", b->last_us - f->syn_us);
            jt_set_int(o, "segments", b->segments);
            jt_set_int(o, "bytes", (int64_t)b->bytes);
        }
        if (f->bursts_dropped)
            jt_set_int(t, "retransmission_bursts_dropped", (int64_t)f->bursts_dropped);
    }
    sess_pair_if(t, "bad_checksums", f->bad_checksums);
    sess_pair_if(t, "bad_checksums_ignored", f->bad_checksums_ignored);
    sess_pair_if(t, "conflicting_copies", f->conflicting);
    if (f->nconflicts) {
        struct jt_node *a = jt_set_arr(t, "conflicts");
        for (size_t i = 0; i < f->nconflicts; i++) {
            const struct reasm_conflict *k = &f->conflicts[i];
            struct jt_node *o = jt_push_obj(a);
            jt_set_lit(o, "from", sess_side(k->dir));
            jt_set_int(o, "offset", (int64_t)k->offset);
            jt_set_int(o, "len", k->len);
            jt_set_ms(o, "t_ms", k->ts_us - f->syn_us);
        }
    }
}

static void
sess_tcp(struct jt_node *t, const struct reasm_facts *f, enum reasm_end end)
{
    jt_set_lit(t, "end", reasm_end_name(end));
    jt_set_bool(t, "established", f->established);
    if (f->midstream)
        jt_set_bool(t, "midstream", 1);
    if (f->handshake_unseen)
        jt_set_bool(t, "handshake_unseen", 1);
    if (sess_one_sided(f))
        jt_set_lit(t, "one_sided", f->packets[0] ? "client" : "server");
    jt_set_int(t, "syn_count", f->syn_count);
    jt_set_int(t, "synack_count", f->synack_count);
    if (f->synack_count)
        jt_set_ms(t, "synack_ms", f->synack_us - f->syn_us);
    if (f->established)
        jt_set_ms(t, "handshake_rtt_ms", f->established_us - f->syn_us);
    jt_set_int(t, "bytes_client", (int64_t)f->stream_bytes[0]);
    jt_set_int(t, "bytes_server", (int64_t)f->stream_bytes[1]);
    jt_set_int(t, "packets_client", (int64_t)f->packets[0]);
    jt_set_int(t, "packets_server", (int64_t)f->packets[1]);
    jt_set_int(t, "frame_bytes_client", (int64_t)f->frame_bytes[0]);
    jt_set_int(t, "frame_bytes_server", (int64_t)f->frame_bytes[1]);
    sess_bool_pair(jt_set_obj(t, "fin"), f->fin[0], f->fin[1]);
    struct jt_node *ttl = jt_set_obj(t, "ttl");
    for (int d = 0; d < 2; d++)
        if (f->ttl_seen[d])
            jt_set_int(ttl, d ? "server" : "client", f->ttl[d]);
    if (f->ttl_varies[0] || f->ttl_varies[1])
        sess_bool_pair(jt_set_obj(t, "ttl_varies"), f->ttl_varies[0], f->ttl_varies[1]);
    if (f->rst_from >= 0) {
        struct jt_node *r = jt_set_obj(t, "rst");
        jt_set_lit(r, "from", f->rst_from ? "server" : "client");
        jt_set_int(r, "ttl", f->rst_ttl);
        if (f->ttl_seen[f->rst_from])
            jt_set_int(r, "expected_ttl", f->ttl[f->rst_from]);
        jt_set_ms(r, "t_ms", f->rst_us - f->syn_us);
        jt_set_int(r, "count", f->rst_count);
    }
    struct jt_node *gaps = jt_set_arr(t, "gaps");
    for (size_t i = 0; i < f->ngaps; i++) {
        struct jt_node *g = jt_push_obj(gaps);
        jt_set_lit(g, "dir", f->gaps[i].dir ? "server" : "client");
        jt_set_int(g, "offset", (int64_t)f->gaps[i].offset);
        jt_set_int(g, "len", (int64_t)f->gaps[i].len);
        jt_set_ms(g, "t_ms", f->gaps[i].ts_us - f->syn_us);
    }
    if (f->gaps_dropped)
        jt_set_int(t, "gaps_dropped", (int64_t)f->gaps_dropped);
    sess_tcp_events(t, f);
    /* Only once both ISNs are known: an offset without its origin proves nothing. */
    if (f->seq_known[0] && f->seq_known[1]) {
        struct jt_node *sent = jt_set_obj(t, "seq_reached");
        jt_set_int(sent, "client", (int64_t)f->sent_hi[0]);
        jt_set_int(sent, "server", (int64_t)f->sent_hi[1]);
        struct jt_node *acked = jt_set_obj(t, "acked");
        jt_set_int(acked, "client", (int64_t)f->acked[0]);
        jt_set_int(acked, "server", (int64_t)f->acked[1]);
        struct jt_node *rx = jt_set_obj(t, "retransmissions");
        jt_set_int(rx, "client", (int64_t)f->retrans[0]);
        jt_set_int(rx, "server", (int64_t)f->retrans[1]);
    }
    jt_set_int(t, "gap_bytes_client", (int64_t)f->gap_bytes[0]);
    jt_set_int(t, "gap_bytes_server", (int64_t)f->gap_bytes[1]);
    jt_set_int(t, "truncated_packets", (int64_t)f->truncated_packets);
}

/* smtp.waits: only when there is one (most sessions never wait 5 s). */
static void
sess_waits_report(const struct sess *s, const struct reasm_facts *f, struct jt_node *smtp)
{
    if (!smtp || (!s->nwaits && !s->waits_dropped))
        return;
    struct jt_node *arr = jt_set_arr(smtp, "waits");
    for (size_t i = 0; i < s->nwaits; i++) {
        const struct sess_wait *w = &s->waits[i];
        struct jt_node *o = jt_push_obj(arr);
        jt_set_lit(o, "awaiting", w->what);
        jt_set_ms(o, "t_ms", w->since_us - f->syn_us);
        jt_set_ms(o, "waited_ms", w->waited_us);
        jt_set_lit(o, "until", sess_until_names[w->until]);
    }
    if (s->waits_dropped)
        jt_set_int(smtp, "waits_dropped", (int64_t)s->waits_dropped);
}

static struct jt *
sess_build(struct sess *s, const struct reasm_facts *f, enum reasm_end end)
{
    struct jt *t = s->m->tree;
    if (!t)
        return NULL;
    jt_reset(t);
    struct jt_node *o = jt_root(t);
    char cip[INET6_ADDRSTRLEN], sip[INET6_ADDRSTRLEN], cid[64];
    sess_format_ip(f->family, f->client_ip, cip, sizeof cip);
    sess_format_ip(f->family, f->server_ip, sip, sizeof sip);
    jt_set_lit(o, "type", "session");
    jt_set_lit(o, "schema", "smtpsniff.session/1");
    jt_set_int(o, "id", (int64_t)s->id);
    if (communityid_v1(s->m->cid, 0, f->family, f->client_ip, f->server_ip, 6, f->client_port,
                       f->server_port, cid, sizeof cid) == 0)
        jt_set_str(o, "community_id", cid);
    jt_set_time(o, "start", f->syn_us);
    jt_set_time(o, "end", f->last_us);
    jt_set_ms(o, "duration_ms", f->last_us - f->syn_us);
    jt_set_str(o, "src_ip", cip);
    jt_set_int(o, "src_port", f->client_port);
    jt_set_str(o, "dest_ip", sip);
    jt_set_int(o, "dest_port", f->server_port);
    jt_set_lit(o, "proto", "TCP");
    jt_set_int(o, "ip_version", f->family);
    sess_endpoint(jt_set_obj(o, "client"), cip, f->client_port);
    sess_endpoint(jt_set_obj(o, "server"), sip, f->server_port);
    if (f->vlan_count > 0) {
        struct jt_node *v = jt_set_arr(o, "vlan");
        for (int i = 0; i < f->vlan_count && i < 2; i++)
            jt_push_int(v, f->vlan[i]);
    }
    sess_tcp(jt_set_obj(o, "tcp"), f, end);
    /* A record that failed to decrypt in the middle of the dialogue is a hole like one in
     * the capture. */
    int partial = f->ngaps > 0 || f->truncated_packets > 0 || end == REASM_END_EVICTED ||
                  f->midstream || sess_one_sided(f) || s->smtp_failed || smtp_partial(s->smtp);
    if (end == REASM_END_CAPTURE_END && s->capture_end_us)
        jt_set_ms(jt_obj(jt_get(o, "tcp")), "capture_end_ms", s->capture_end_us - f->syn_us);
    if (s->smtp) {
        if (smtp_report_core(s->smtp, o) < 0)
            partial = 1;
        sess_eml_report(s, o);
        sess_waits_report(s, f, jt_obj(jt_get(o, "smtp")));
    } else {
        jt_set_lit(o, "outcome", "none");
    }
    /* A report that could not be built whole says so (the allocation that failed left out
     * what it was for). */
    jt_set_bool(o, "partial", partial || jt_failed(t));
    return t;
}

static void
sess_close(void *conn, const struct reasm_facts *f, enum reasm_end end, int64_t ts_us)
{
    struct sess *s = conn;
    struct sess_mgr *m = s->m;
    json_decref(s->announced);
    if (end == REASM_END_EVICTED && !f->established) {
        m->st.syn_evicted++;
        sess_free(s);
        return;
    }
    if (end == REASM_END_CAPTURE_END) {
        /* Measured to the end of the capture (the last packet read, or the clock at the
         * interruption), not to the session's own last packet. */
        s->capture_end_us = ts_us > f->last_us ? ts_us : f->last_us;
        sess_wait_end(s, s->capture_end_us, SESS_UNTIL_CAPTURE_END);
    } else {
        sess_wait_end(s, f->last_us, SESS_UNTIL_END);
    }
    if (s->smtp && sess_one_sided(f) && f->packets[0])
        smtp_client_only(s->smtp);
    if (s->smtp)
        smtp_finish(s->smtp, ts_us);
    struct jt *t = sess_build(s, f, end);
    if (t) {
        /* How workers' reports are put back in order. */
        const uint64_t order[2] = {f->end_frame, f->last_frame};
        int sev = rule_apply(&m->cfg.rules, jt_root(t));
        m->st.reported++;
        m->emit(m->ctx, jt_root(t), s->smtp, order, sev);
        jt_reset(t);
    }
    sess_free(s);
}

/* Live: the SYN was retried, or left unanswered syn_timeout_us: told now, not at the idle
 * timeout (the session's report still comes when the connection ends). */
static void
sess_syn_check(struct sess *s, const struct reasm_facts *f, int64_t now_us)
{
    struct sess_mgr *m = s->m;
    if (s->syn_told || f->established || f->synack_count || !m->cfg.live_anomaly ||
        (f->syn_count < 2 && now_us - f->syn_us < m->cfg.syn_timeout_us))
        return;
    s->syn_told = 1;
    struct jt *t = sess_build(s, f, REASM_END_SYN_UNANSWERED);
    if (!t)
        return;
    struct jt_node *o = jt_root(t);
    rule_apply(&m->cfg.rules, o);
    const struct jt_node *an = jt_arr(jt_get(o, "anomalies"));
    for (size_t i = 0; i < jt_size(an); i++) {
        const struct jt_node *a = jt_obj(jt_at(an, i));
        const char *id = jt_str(jt_get(a, "id"));
        if (id && strcmp(id, "syn_unanswered") == 0)
            m->cfg.live_anomaly(m->cfg.live_ctx, o, a);
    }
    jt_reset(t);
}

static void
sess_tick(void *conn, const struct reasm_facts *f, int64_t now_us)
{
    struct sess *s = conn;
    struct sess_mgr *m = s->m;
    sess_syn_check(s, f, now_us);
    if (!s->w_on || !m->cfg.live_waiting)
        return;
    int64_t th[3] = {SESS_WAIT_MIN_US, INT64_C(30000000), m->cfg.idle_timeout_us};
    unsigned nth = th[2] > th[1] ? 3 : 2;
    int64_t waited = now_us - s->w_since;
    unsigned passed = s->w_told;
    while (passed < nth && waited >= th[passed])
        passed++;
    if (passed == s->w_told)
        return;
    /* One line for the highest threshold passed (a tick late by several is one event). */
    s->w_told = passed;
    struct jt *t = sess_build(s, f, REASM_END_CAPTURE_END);
    if (!t)
        return;
    m->cfg.live_waiting(m->cfg.live_ctx, jt_root(t), s->w_what, waited, now_us);
    jt_reset(t);
}

struct sess_mgr *
sess_mgr_create(const struct sess_config *cfg, sess_emit_fn emit, void *ctx)
{
    struct sess_mgr *m = mem_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cfg = *cfg;
    m->emit = emit;
    m->ctx = ctx;
    m->tree = jt_new();
    m->cid = communityid_create();
    m->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    m->cfg.smtp.sha256 = m->sha256;
    if (!m->tree || !m->cid || !m->sha256) {
        sess_mgr_destroy(m);
        return NULL;
    }
    return m;
}

void
sess_mgr_destroy(struct sess_mgr *m)
{
    if (!m)
        return;
    jt_free(m->tree);
    communityid_destroy(m->cid);
    EVP_MD_free(m->sha256);
    mem_free(m);
}

void
sess_mgr_ops(struct sess_mgr *m, struct reasm_ops *ops)
{
    memset(ops, 0, sizeof *ops);
    ops->ctx = m;
    ops->open = sess_open;
    ops->established = sess_established;
    ops->data = sess_data;
    ops->gap = sess_gap;
    ops->close = sess_close;
    ops->tick = sess_tick;
}

void
sess_mgr_stats(const struct sess_mgr *m, struct sess_stats *st)
{
    *st = m->st;
    struct eml_stats es;
    eml_get_stats(m->cfg.eml, &es);
    st->eml_written = es.written;
    st->eml_partial = es.partial;
    st->eml_errors = es.errors;
}
