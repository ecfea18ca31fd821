/* session.c - per-connection records: reassembly facts, the SMTP model, the report
 * (schema smtpsniff.session/1, documented in docs/schema.md), anomaly rules, .eml files. */
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
};

struct sess {
    struct sess_mgr *m;
    uint64_t id;
    struct smtp_session *smtp;
    int smtp_failed;
    const struct reasm_facts *f; /* reassembly's, valid while the connection is open */
    json_t *announced;           /* live: anomaly ids already handed out */
};

static json_t *sess_build(struct sess *s, const struct reasm_facts *f, enum reasm_end end);

/* Live capture: an anomaly is told when it can first be seen, not when the session ends. */
static void
sess_live_check(struct sess *s)
{
    struct sess_mgr *m = s->m;
    if (!m->cfg.live_anomaly || !s->f)
        return;
    json_t *o = sess_build(s, s->f, REASM_END_CAPTURE_END);
    if (!o)
        return;
    rule_apply_open(&m->cfg.rules, o);
    size_t i;
    json_t *a;
    json_array_foreach (json_object_get(o, "anomalies"), i, a) {
        const char *id = json_string_value(json_object_get(a, "id"));
        if (!id || (s->announced && json_object_get(s->announced, id)))
            continue;
        if (!s->announced)
            s->announced = json_object();
        if (s->announced)
            json_object_set_new(s->announced, id, json_true());
        m->cfg.live_anomaly(m->cfg.live_ctx, o, a);
    }
    json_decref(o);
}

static void
sess_format_ip(int family, const uint8_t *ip, char *out, size_t outlen)
{
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

static void
sess_established(void *conn, const struct reasm_facts *f)
{
    struct sess *s = conn;
    if (s->smtp || s->smtp_failed)
        return;
    struct smtp_config sc = s->m->cfg.smtp;
    if (s->m->cfg.implicit_tls_port && f->server_port == s->m->cfg.implicit_tls_port)
        sc.implicit_tls = 1;
    s->smtp = smtp_create(&sc, f->syn_us, f->established_us);
    if (!s->smtp) {
        s->smtp_failed = 1;
        s->m->st.no_memory++;
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

static json_t *
sess_endpoint(int family, const uint8_t *ip, uint16_t port)
{
    char buf[INET6_ADDRSTRLEN];
    sess_format_ip(family, ip, buf, sizeof buf);
    json_t *o = json_object();
    jx_set(o, "ip", json_string(buf));
    jx_set(o, "port", json_integer(port));
    return o;
}

static json_t *
sess_pair(json_t *client, json_t *server)
{
    json_t *o = json_object();
    jx_set(o, "client", client);
    jx_set(o, "server", server);
    return o;
}

static json_t *
sess_tcp(const struct reasm_facts *f, enum reasm_end end)
{
    json_t *t = json_object();
    jx_set(t, "end", json_string(reasm_end_name(end)));
    jx_set(t, "established", json_boolean(f->established));
    jx_set(t, "syn_count", json_integer(f->syn_count));
    jx_set(t, "synack_count", json_integer(f->synack_count));
    if (f->synack_count)
        jx_set(t, "synack_ms", jx_ms(f->synack_us - f->syn_us));
    if (f->established)
        jx_set(t, "handshake_rtt_ms", jx_ms(f->established_us - f->syn_us));
    jx_set(t, "bytes_client", json_integer((json_int_t)f->stream_bytes[0]));
    jx_set(t, "bytes_server", json_integer((json_int_t)f->stream_bytes[1]));
    jx_set(t, "packets_client", json_integer((json_int_t)f->packets[0]));
    jx_set(t, "packets_server", json_integer((json_int_t)f->packets[1]));
    jx_set(t, "frame_bytes_client", json_integer((json_int_t)f->frame_bytes[0]));
    jx_set(t, "frame_bytes_server", json_integer((json_int_t)f->frame_bytes[1]));
    jx_set(t, "fin", sess_pair(json_boolean(f->fin[0]), json_boolean(f->fin[1])));
    json_t *ttl = json_object();
    for (int d = 0; d < 2; d++)
        if (f->ttl_seen[d])
            jx_set(ttl, d ? "server" : "client", json_integer(f->ttl[d]));
    jx_set(t, "ttl", ttl);
    if (f->ttl_varies[0] || f->ttl_varies[1])
        jx_set(t, "ttl_varies",
               sess_pair(json_boolean(f->ttl_varies[0]), json_boolean(f->ttl_varies[1])));
    if (f->rst_from >= 0) {
        json_t *r = json_object();
        jx_set(r, "from", json_string(f->rst_from ? "server" : "client"));
        jx_set(r, "ttl", json_integer(f->rst_ttl));
        if (f->ttl_seen[f->rst_from])
            jx_set(r, "expected_ttl", json_integer(f->ttl[f->rst_from]));
        jx_set(r, "t_ms", jx_ms(f->rst_us - f->syn_us));
        jx_set(r, "count", json_integer(f->rst_count));
        jx_set(t, "rst", r);
    }
    json_t *gaps = json_array();
    for (size_t i = 0; i < f->ngaps; i++) {
        json_t *g = json_object();
        jx_set(g, "dir", json_string(f->gaps[i].dir ? "server" : "client"));
        jx_set(g, "offset", json_integer((json_int_t)f->gaps[i].offset));
        jx_set(g, "len", json_integer((json_int_t)f->gaps[i].len));
        jx_set(g, "t_ms", jx_ms(f->gaps[i].ts_us - f->syn_us));
        json_array_append_new(gaps, g);
    }
    jx_set(t, "gaps", gaps);
    if (f->gaps_dropped)
        jx_set(t, "gaps_dropped", json_integer((json_int_t)f->gaps_dropped));
    jx_set(t, "gap_bytes_client", json_integer((json_int_t)f->gap_bytes[0]));
    jx_set(t, "gap_bytes_server", json_integer((json_int_t)f->gap_bytes[1]));
    jx_set(t, "truncated_packets", json_integer((json_int_t)f->truncated_packets));
    return t;
}

/* Writes the kept messages as .eml files named after the session and transaction. */
static void
sess_write_eml(struct sess *s)
{
    const char *dir = s->m->cfg.eml_dir;
    if (!dir || !s->smtp)
        return;
    size_t n = smtp_message_count(s->smtp);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *data;
        size_t len, txn;
        if (smtp_message(s->smtp, i, &data, &len, &txn) < 0)
            continue;
        char path[4096];
        int w = snprintf(path, sizeof path, "%s/session-%llu-%zu.eml", dir,
                         (unsigned long long)s->id, txn + 1);
        if (w < 0 || (size_t)w >= sizeof path) {
            s->m->st.eml_errors++;
            continue;
        }
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(data, 1, len, fp) != len || fclose(fp) != 0) {
            if (fp)
                fclose(fp);
            s->m->st.eml_errors++;
            continue;
        }
        s->m->st.eml_written++;
    }
}

static json_t *
sess_build(struct sess *s, const struct reasm_facts *f, enum reasm_end end)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    char cip[INET6_ADDRSTRLEN], sip[INET6_ADDRSTRLEN], cid[64];
    sess_format_ip(f->family, f->client_ip, cip, sizeof cip);
    sess_format_ip(f->family, f->server_ip, sip, sizeof sip);
    jx_set(o, "type", json_string("session"));
    jx_set(o, "schema", json_string("smtpsniff.session/1"));
    jx_set(o, "id", json_integer((json_int_t)s->id));
    if (communityid_v1(0, f->family, f->client_ip, f->server_ip, 6, f->client_port, f->server_port,
                       cid, sizeof cid) == 0)
        jx_set(o, "community_id", json_string(cid));
    jx_set(o, "start", jx_time(f->syn_us));
    jx_set(o, "end", jx_time(f->last_us));
    jx_set(o, "duration_ms", jx_ms(f->last_us - f->syn_us));
    jx_set(o, "src_ip", json_string(cip));
    jx_set(o, "src_port", json_integer(f->client_port));
    jx_set(o, "dest_ip", json_string(sip));
    jx_set(o, "dest_port", json_integer(f->server_port));
    jx_set(o, "proto", json_string("TCP"));
    jx_set(o, "ip_version", json_integer(f->family));
    jx_set(o, "client", sess_endpoint(f->family, f->client_ip, f->client_port));
    jx_set(o, "server", sess_endpoint(f->family, f->server_ip, f->server_port));
    if (f->vlan_count > 0) {
        json_t *v = json_array();
        for (int i = 0; i < f->vlan_count && i < 2; i++)
            json_array_append_new(v, json_integer(f->vlan[i]));
        jx_set(o, "vlan", v);
    }
    jx_set(o, "tcp", sess_tcp(f, end));
    /* A record that failed to decrypt in the middle of the dialogue is a hole like one in
     * the capture. */
    int partial = f->ngaps > 0 || f->truncated_packets > 0 || end == REASM_END_EVICTED ||
                  s->smtp_failed || smtp_partial(s->smtp);
    jx_set(o, "partial", json_boolean(partial));
    if (s->smtp) {
        if (smtp_report_core(s->smtp, o) < 0)
            jx_set(o, "partial", json_true());
    } else {
        jx_set(o, "outcome", json_string("none"));
    }
    return o;
}

static void
sess_close(void *conn, const struct reasm_facts *f, enum reasm_end end, int64_t ts_us)
{
    struct sess *s = conn;
    struct sess_mgr *m = s->m;
    json_decref(s->announced);
    if (end == REASM_END_EVICTED && !f->established) {
        m->st.syn_evicted++;
        smtp_destroy(s->smtp);
        mem_free(s);
        return;
    }
    if (s->smtp)
        smtp_finish(s->smtp, ts_us);
    json_t *o = sess_build(s, f, end);
    if (o) {
        /* Consumed by the report writer: how workers' reports are put back in order. */
        json_t *order = json_array();
        json_array_append_new(order, json_integer((json_int_t)f->end_frame));
        json_array_append_new(order, json_integer((json_int_t)f->last_frame));
        json_object_set_new(o, "_order", order);
        int sev = rule_apply(&m->cfg.rules, o);
        m->st.reported++;
        m->emit(m->ctx, o, s->smtp, sev);
        json_decref(o);
    }
    sess_write_eml(s);
    smtp_destroy(s->smtp);
    mem_free(s);
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
    return m;
}

void
sess_mgr_destroy(struct sess_mgr *m)
{
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
}

void
sess_mgr_stats(const struct sess_mgr *m, struct sess_stats *st)
{
    *st = m->st;
}
