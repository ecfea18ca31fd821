/* smtp_report.c - the SMTP model written into the report tree
 * (docs/smtp-report-contract.md) and the transcript's own writer. */
#include "smtp_int.h"

/* ---- report (docs/smtp-report-contract.md) ---- */

static const char *const smtp_phase_names[SMTP_PH_COUNT] = {
    "connect", "banner", "helo", "auth", "mail", "rcpt", "data", "data_sent", "bdat", "quit", "tls",
};
static const char *const smtp_end_names[SMTP_END_COUNT] = {
    "open", "data", "rset", "helo", "quit", "mail", "mail_rejected", "no_rcpt", "connection_end",
};

/* Postfix's smtpd counts commands in the order of its command table, and every verb it does
 * not implement as "unknown"; its "disconnect from" line shows accepted/sent per verb. */
static const enum smtp_verb smtp_postfix_order[] = {
    SMTP_V_HELO, SMTP_V_EHLO, SMTP_V_XCLIENT, SMTP_V_XFORWARD, SMTP_V_STARTTLS,
    SMTP_V_AUTH, SMTP_V_MAIL, SMTP_V_RCPT,    SMTP_V_DATA,     SMTP_V_BDAT,
    SMTP_V_RSET, SMTP_V_NOOP, SMTP_V_VRFY,    SMTP_V_ETRN,     SMTP_V_QUIT,
};

static void
smtp_set_t(const struct smtp_session *s, struct jt_node *o, const char *key, int64_t t_us)
{
    jt_set_ms(o, key, t_us - s->start_us);
}

static void
smtp_set_str(struct jt_node *o, const char *key, const struct smtp_str *v)
{
    if (v->p)
        jt_set_bytes(o, key, v->p, v->n);
}

static void
smtp_set_pair(struct jt_node *o, const char *key, uint64_t client, uint64_t server)
{
    struct jt_node *p = jt_set_obj(o, key);
    jt_set_int(p, "client", (int64_t)client);
    jt_set_int(p, "server", (int64_t)server);
}

/* code, enhanced and text of a reply under the given key names. */
static void
smtp_set_reply(struct jt_node *o, const struct smtp_reply_rec *r, const char *kcode,
               const char *kenh, const char *ktext)
{
    if (!r->code)
        return;
    jt_set_int(o, kcode, r->code);
    if (r->enhanced[0])
        jt_set_str(o, kenh, r->enhanced);
    smtp_set_str(o, ktext, &r->text);
}

static int
smtp_is_qid_char(uint8_t c)
{
    return smtp_is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-';
}

/* The queue id in a 2xx final reply's text, in the forms of the common MTAs: Postfix "Ok:
 * queued as 4HxKQv0Wq9z9sLb", Exim "OK id=1tBd2x-0003kQ-2v", Sendmail "2.0.0 4B1AbC12345
 * Message accepted for delivery". 0 when none is found (out is then empty). */
static size_t
smtp_queue_id(const struct smtp_str *t, char *out, size_t outlen)
{
    static const char *const after[] = {"queued as ", "id="};
    static const char sendmail[] = " Message accepted for delivery";
    const uint8_t *p = t->p, *q = NULL;
    size_t n = p ? t->n : 0, start = 0, len = 0;
    out[0] = 0;
    if (!p)
        return 0;
    for (size_t k = 0; !q && k < sizeof after / sizeof after[0]; k++) {
        const uint8_t *h = memmem(p, n, after[k], strlen(after[k]));
        /* "id=" only as a word of its own ("OK id=..."), not inside "msgid=". */
        if (h && (k == 0 || h == p || h[-1] == ' '))
            q = h + strlen(after[k]);
    }
    if (q) {
        start = (size_t)(q - p);
        while (start + len < n && smtp_is_qid_char(p[start + len]))
            len++;
    } else if ((q = memmem(p, n, sendmail, sizeof sendmail - 1)) != NULL) {
        size_t end = (size_t)(q - p);
        start = end;
        while (start > 0 && smtp_is_qid_char(p[start - 1]))
            start--;
        len = end - start;
        /* The word before must be the enhanced code or the start, not more prose. */
        if (start > 0 && p[start - 1] != ' ')
            len = 0;
    }
    if (len == 0 || len >= outlen)
        return 0;
    memcpy(out, p + start, len);
    out[len] = 0;
    return len;
}

static void
smtp_set_queue_id(struct jt_node *o, const struct smtp_reply_rec *r)
{
    char qid[64];
    if (r->code / 100 == 2 && smtp_queue_id(&r->text, qid, sizeof qid))
        jt_set_str(o, "queue_id", qid);
}

static void
smtp_set_params(struct jt_node *parent, const char *key, const struct smtp_str *v,
                const char *const *names, int count)
{
    struct jt_node *o = NULL;
    for (int i = 0; i < count; i++) {
        if (!v[i].p)
            continue;
        if (!o && !(o = jt_set_obj(parent, key)))
            return;
        uint64_t n;
        /* RFC 1870 6: SIZE=n is a number; SMTPUTF8 (RFC 6531 3.4) has no value. */
        if (strcmp(names[i], "SIZE") == 0 && smtp_parse_u64(v[i].p, v[i].n, &n) == 0 &&
            n <= (uint64_t)INT64_MAX)
            jt_set_int(o, names[i], (int64_t)n);
        else if (strcmp(names[i], "SMTPUTF8") == 0 && v[i].n == 0)
            jt_set_bool(o, names[i], 1);
        else
            smtp_set_str(o, names[i], &v[i]);
    }
}

static int
smtp_set_data(const struct smtp_session *s, const struct smtp_txn *t, struct jt_node *d)
{
    jt_set_lit(d, "verb", smtp_verbs[t->data_verb].name);
    if (t->code_354)
        jt_set_int(d, "code_354", t->code_354);
    if (t->without_354)
        jt_set_bool(d, "without_354", 1);
    if (t->data_verb == SMTP_V_BDAT)
        jt_set_int(d, "chunks", (int64_t)t->chunks);
    /* Contract: code is null while no final reply came (died after DATA). */
    if (t->data.code) {
        smtp_set_reply(d, &t->data, "code", "enhanced", "text");
        smtp_set_queue_id(d, &t->data);
    } else
        jt_set_null(d, "code");
    if (t->sent) {
        smtp_set_t(s, d, "sent_t_ms", t->sent_us);
        if (t->sent_off >= 0)
            jt_set_int(d, "end_offset", t->sent_off);
        if (t->data.code && t->reply_us)
            jt_set_ms(d, "reply_ms", t->reply_us - t->sent_us);
    }
    return t->imf ? imf_report(t->imf, d) : 0;
}

static int
smtp_set_txn(const struct smtp_session *s, const struct smtp_txn *t, struct jt_node *o)
{
    smtp_set_t(s, o, "t_ms", t->t_us);
    smtp_set_str(o, "mail_from", &t->mail_from);
    smtp_set_params(o, "mail_params", t->mparam, smtp_mparam_names, SMTP_MP_COUNT);
    smtp_set_reply(o, &t->mail, "mail_code", "mail_enhanced", "mail_text");
    jt_set_bool(o, "authenticated", t->authenticated);
    /* A transaction inside TLS is seen only through decryption. */
    jt_set_bool(o, "tls", t->decrypted);
    if (t->decrypted)
        jt_set_bool(o, "decrypted", 1);
    struct jt_node *arr = jt_set_arr(o, "rcpt");
    for (size_t i = 0; arr && i < t->nrcpt; i++) {
        const struct smtp_rcpt *r = &t->rcpt[i];
        if (r->moved)
            continue;
        struct jt_node *ro = jt_push_obj(arr);
        smtp_set_str(ro, "to", &r->to);
        smtp_set_params(ro, "params", r->param, smtp_rparam_names, SMTP_RP_COUNT);
        smtp_set_reply(ro, &r->reply, "code", "enhanced", "text");
    }
    jt_set_int(o, "rcpt_count", (int64_t)t->rcpt_count);
    jt_set_int(o, "rcpt_accepted", (int64_t)t->rcpt_accepted);
    jt_set_int(o, "rcpt_dropped", (int64_t)t->rcpt_dropped);
    if (t->ended_by != SMTP_END_OPEN)
        jt_set_lit(o, "ended_by", smtp_end_names[t->ended_by]);
    if (t->no_envelope)
        jt_set_bool(o, "no_envelope", 1);
    return t->has_data ? smtp_set_data(s, t, jt_set_obj(o, "data")) : 0;
}

enum smtp_msg_state {
    SMTP_MSG_NONE,
    SMTP_MSG_DELIVERED,
    SMTP_MSG_REJECTED,
    SMTP_MSG_DEFERRED,
    SMTP_MSG_INCOMPLETE,
    SMTP_MSG_COUNT
};

static enum smtp_msg_state
smtp_txn_state(const struct smtp_txn *t)
{
    if (t->data.code / 100 == 2)
        return SMTP_MSG_DELIVERED;
    if (t->ended_by == SMTP_END_OPEN || t->ended_by == SMTP_END_CONNECTION)
        return SMTP_MSG_INCOMPLETE;
    /* RFC 5321 4.2.4: 503 is a bad sequence of commands (a nested MAIL), not a verdict on a
     * message: the client's message, if any, went into the server's open transaction. */
    if (t->ended_by == SMTP_END_MAIL_REJECTED && t->mail.code == 503 && !t->has_data)
        return SMTP_MSG_NONE;
    if (t->fail_code / 100 == 5)
        return SMTP_MSG_REJECTED;
    if (t->fail_code / 100 == 4)
        return SMTP_MSG_DEFERRED;
    return SMTP_MSG_NONE;
}

static void
smtp_set_ehlo(const struct smtp_session *s, struct jt_node *o)
{
    const struct smtp_ehlo *e = &s->ehlo;
    smtp_set_str(o, "greeting", &e->greeting);
    struct jt_node *mechs = jt_set_arr(o, "auth");
    for (size_t i = 0; i < e->nmech; i++)
        if (e->mech[i].p)
            jt_push_bytes(mechs, e->mech[i].p, e->mech[i].n);
    if (e->has_size)
        jt_set_int(o, "size",
                   (int64_t)(e->size > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : e->size));
    jt_set_bool(o, "pipelining", e->pipelining);
    jt_set_bool(o, "chunking", e->chunking);
    jt_set_bool(o, "starttls", e->starttls);
    jt_set_bool(o, "8bitmime", e->eightbit);
    jt_set_bool(o, "smtputf8", e->smtputf8);
    jt_set_bool(o, "dsn", e->dsn);
    jt_set_bool(o, "enhancedstatuscodes", e->enhanced);
    struct jt_node *masked = jt_set_arr(o, "masked");
    for (size_t i = 0; i < e->nmasked; i++)
        if (e->masked[i].p)
            jt_push_bytes(masked, e->masked[i].p, e->masked[i].n);
    if (e->decrypted)
        jt_set_bool(o, "decrypted", 1);
}

static const char *
smtp_starttls_name(const struct smtp_session *s)
{
    switch (s->tls_state) {
    case SMTP_TLS_IMPLICIT:
        return "implicit";
    case SMTP_TLS_ESTABLISHED:
        return "established";
    case SMTP_TLS_REFUSED:
        return "refused";
    case SMTP_TLS_REQUESTED:
        return "requested";
    case SMTP_TLS_NOT_STARTED:
        return "not_started";
    case SMTP_TLS_NONE:
    case SMTP_TLS_COUNT:
        break;
    }
    return s->ehlo.starttls ? "offered" : "not_offered";
}

static int
smtp_report_tls(const struct smtp_session *s, struct jt_node *session)
{
    if (s->tls_state == SMTP_TLS_NONE && !s->ehlo.valid && !s->tls_port_plain)
        return 0;
    struct jt_node *o = jt_set_obj(session, "tls");
    jt_set_lit(o, "starttls", smtp_starttls_name(s));
    /* RFC 8314 3.3: this port is TLS from the first byte; this server spoke in clear. */
    if (s->tls_port_plain)
        jt_set_bool(o, "plaintext_on_tls_port", 1);
    if (s->starttls_plain_cmd)
        jt_set_int(o, "cleartext_after_starttls", (int64_t)s->starttls_plain_cmd);
    if (s->tls_code) {
        jt_set_int(o, "code", s->tls_code);
        smtp_set_str(o, "text", &s->tls_text);
    }
    if (s->tls_state != SMTP_TLS_NONE)
        smtp_set_t(s, o, "t_ms", s->tls_us);
    jt_set_bool(o, "encrypted", s->tls_active);
    if (s->tls_active)
        smtp_set_pair(o, "encrypted_bytes", s->d[SMTP_CLIENT].enc_bytes,
                      s->d[SMTP_SERVER].enc_bytes);
    if (s->decrypted) {
        jt_set_bool(o, "decrypted", 1);
        smtp_set_pair(o, "decrypted_bytes", s->d[SMTP_CLIENT].plain_bytes,
                      s->d[SMTP_SERVER].plain_bytes);
    }
    return o && s->tls ? tls_report(s->tls, o) : 0;
}

static int
smtp_report_auth(const struct smtp_session *s, struct jt_node *session)
{
    int rc = 0;
    if (!s->nauth)
        return 0;
    struct jt_node *arr = jt_set_arr(session, "auth");
    for (size_t i = 0; arr && i < s->nauth; i++) {
        struct jt_node *a = jt_push_obj(arr);
        if (!a || sasl_report(s->auth[i].sasl, s->cfg.show_secrets, a) < 0)
            rc = -1;
        smtp_set_t(s, a, "t_ms", s->auth[i].t_us);
        /* Inside TLS only a key log lets this model see an exchange. */
        jt_set_bool(a, "in_clear", !s->auth[i].decrypted);
        if (s->auth[i].decrypted)
            jt_set_bool(a, "decrypted", 1);
        jt_set_bool(a, "advertised", s->auth[i].advertised);
        if (s->auth[i].unattributed)
            jt_set_bool(a, "unattributed", 1);
    }
    return rc;
}

static void
smtp_report_outcome(const struct smtp_session *s, struct jt_node *session)
{
    uint64_t count[SMTP_MSG_COUNT] = {0};
    enum smtp_msg_state last_fail = SMTP_MSG_NONE;
    const char *outcome;

    for (size_t i = 0; i < s->ntxn; i++) {
        enum smtp_msg_state st = smtp_txn_state(s->txn[i]);
        count[st]++;
        if (st == SMTP_MSG_REJECTED || st == SMTP_MSG_DEFERRED)
            last_fail = st;
    }
    if (count[SMTP_MSG_DELIVERED])
        outcome = "delivered";
    else if (count[SMTP_MSG_INCOMPLETE])
        outcome = "incomplete";
    else if (last_fail == SMTP_MSG_REJECTED)
        outcome = "rejected";
    else if (last_fail == SMTP_MSG_DEFERRED)
        outcome = "deferred";
    else if (s->tls_active && s->tls_before_txn && !s->decrypted &&
             (s->d[SMTP_CLIENT].bytes || s->d[SMTP_SERVER].bytes))
        outcome = "encrypted";
    else if (s->d[SMTP_CLIENT].bytes || s->d[SMTP_SERVER].bytes)
        outcome = "aborted";
    else
        outcome = "none";
    jt_set_lit(session, "outcome", outcome);
    struct jt_node *m = jt_set_obj(session, "messages");
    jt_set_int(m, "delivered", (int64_t)count[SMTP_MSG_DELIVERED]);
    jt_set_int(m, "rejected", (int64_t)count[SMTP_MSG_REJECTED]);
    jt_set_int(m, "deferred", (int64_t)count[SMTP_MSG_DEFERRED]);
    jt_set_int(m, "incomplete", (int64_t)count[SMTP_MSG_INCOMPLETE]);
}

/* " name=ok" or " name=ok/done", as Postfix writes one counter. */
static void
smtp_postfix_counter(struct buf *b, const char *name, uint64_t ok, uint64_t done)
{
    char one[96];
    int w = ok == done ? snprintf(one, sizeof one, "%s%s=%llu", b->len ? " " : "", name,
                                  (unsigned long long)done)
                       : snprintf(one, sizeof one, "%s%s=%llu/%llu", b->len ? " " : "", name,
                                  (unsigned long long)ok, (unsigned long long)done);
    if (w > 0 && (size_t)w < sizeof one)
        buf_append(b, (const uint8_t *)one, (size_t)w);
}

/* The counters of Postfix's "disconnect from" log line ("ehlo=1 mail=1 rcpt=0/1 quit=1
 * commands=3/4") for the commands whose final reply is in the capture, so the report can be
 * laid beside the server's log. */
static void
smtp_report_postfix(const struct smtp_session *s, struct jt_node *o)
{
    uint64_t ok = 0, done = 0, uok = 0, udone = 0;
    struct buf b;

    buf_init(&b, 1024);
    for (size_t i = 0; i < sizeof smtp_postfix_order / sizeof smtp_postfix_order[0]; i++) {
        enum smtp_verb v = smtp_postfix_order[i];
        if (s->cmd_done[v])
            smtp_postfix_counter(&b, smtp_verbs[v].counter, s->cmd_ok[v], s->cmd_done[v]);
        ok += s->cmd_ok[v];
        done += s->cmd_done[v];
    }
    for (int v = 0; v < SMTP_V_COUNT; v++) {
        if (smtp_verbs[v].flags & SMTP_VF_POSTFIX_UNKNOWN) {
            uok += s->cmd_ok[v];
            udone += s->cmd_done[v];
        }
    }
    /* Postfix answers every verb it does not know 502: none of them is accepted. */
    if (udone)
        smtp_postfix_counter(&b, "unknown", uok, udone);
    /* Inside TLS that is not decrypted the server counts what this model cannot see. */
    if (done + udone && !(s->tls_active && !s->decrypted)) {
        smtp_postfix_counter(&b, "commands", ok + uok, done + udone);
        jt_set_bytes(o, "postfix", b.data, b.len);
    }
    buf_free(&b);
}

static void
smtp_report_commands(const struct smtp_session *s, struct jt_node *session)
{
    if (!s->cmd_total)
        return;
    struct jt_node *o = jt_set_obj(session, "commands");
    for (int v = 0; v < SMTP_V_COUNT; v++)
        if (smtp_verbs[v].counter && s->cmd_count[v])
            jt_set_int(o, smtp_verbs[v].counter, (int64_t)s->cmd_count[v]);
    jt_set_int(o, "total", (int64_t)s->cmd_total);
    smtp_report_postfix(s, o);
}

static void
smtp_push_pending(const struct smtp_session *s, struct jt_node *arr, enum smtp_verb v, int64_t t_us)
{
    struct jt_node *p = jt_push_obj(arr);
    jt_set_lit(p, "command", smtp_verbs[v].name);
    smtp_set_t(s, p, "t_ms", t_us);
}

static void
smtp_report_pending(const struct smtp_session *s, struct jt_node *o)
{
    int chunk_open = s->d[SMTP_CLIENT].mode == SMTP_M_CHUNK;
    struct jt_node *arr = jt_set_arr(o, "pending");
    for (size_t i = 0; arr && i < s->qlen && i < SMTP_MAX_PENDING; i++) {
        const struct smtp_inflight *e = &s->q[(s->qhead + i) % s->qcap];
        smtp_push_pending(s, arr, e->verb, e->t_us);
    }
    /* A BDAT whose chunk never fully came is queued only once it has: it is pending too. */
    if (arr && chunk_open && s->qlen < SMTP_MAX_PENDING)
        smtp_push_pending(s, arr, SMTP_V_BDAT, s->chunk_us);
    jt_set_int(o, "pending_count", (int64_t)(smtp_q_outstanding(s) + (uint64_t)chunk_open));
}

static void
smtp_report_errors(const struct smtp_session *s, struct jt_node *o)
{
    struct jt_node *arr = jt_set_arr(o, "error_replies");
    for (size_t i = 0; arr && i < s->nerr; i++) {
        const struct smtp_error *e = &s->err[i];
        struct jt_node *eo = jt_push_obj(arr);
        if (e->has_cmd)
            jt_set_lit(eo, "command", smtp_verbs[e->verb].name);
        jt_set_int(eo, "code", e->code);
        if (e->enhanced[0])
            jt_set_str(eo, "enhanced", e->enhanced);
        smtp_set_str(eo, "text", &e->text);
        smtp_set_t(s, eo, "t_ms", e->t_us);
    }
    jt_set_int(o, "error_replies_dropped", (int64_t)s->err_dropped);
}

static void
smtp_report_unsolicited(const struct smtp_session *s, struct jt_node *o)
{
    struct jt_node *arr = jt_set_arr(o, "unsolicited_replies");
    for (size_t i = 0; arr && i < s->nunsol; i++) {
        const struct smtp_unsolicited *u = &s->unsol[i];
        struct jt_node *uo = jt_push_obj(arr);
        smtp_set_reply(uo, &u->rec, "code", "enhanced", "text");
        smtp_set_queue_id(uo, &u->rec);
        smtp_set_t(s, uo, "t_ms", u->t_us);
    }
    jt_set_int(o, "unsolicited_replies_dropped", (int64_t)s->unsol_dropped);
}

static void
smtp_report_facts(const struct smtp_session *s, struct jt_node *session)
{
    const struct smtp_dirstate *c = &s->d[SMTP_CLIENT], *v = &s->d[SMTP_SERVER];
    struct jt_node *o = jt_set_obj(session, "smtp");
    if (!o)
        return;
    jt_set_lit(o, "phase", smtp_phase_names[s->phase]);
    jt_set_bool(o, "quit_sent", s->quit_sent);
    jt_set_bool(o, "quit_replied", s->quit_replied);
    smtp_report_pending(s, o);
    smtp_set_pair(o, "bare_lf", c->bare_lf, v->bare_lf);
    smtp_set_pair(o, "bare_cr", c->bare_cr, v->bare_cr);
    smtp_set_pair(o, "long_lines", c->long_lines, v->long_lines);
    jt_set_bool(o, "pipelined", s->pipelined);
    jt_set_int(o, "pipelining_violations", (int64_t)s->pipelining_violations);
    jt_set_int(o, "inflight_overflow", (int64_t)s->inflight_overflow);
    jt_set_int(o, "unknown_commands", (int64_t)s->cmd_count[SMTP_V_UNKNOWN]);
    jt_set_int(o, "replies_without_command", (int64_t)s->replies_without_command);
    if (s->slow_set) {
        struct jt_node *sr = jt_set_obj(o, "slowest_reply");
        jt_set_lit(sr, "command", smtp_verbs[s->slow_verb].name);
        jt_set_ms(sr, "ms", s->slow_us);
        smtp_set_t(s, sr, "t_ms", s->slow_t_us);
    }
    if (c->bytes)
        smtp_set_t(s, o, "last_client_t_ms", c->last_us);
    if (v->bytes)
        smtp_set_t(s, o, "last_server_t_ms", v->last_us);
    smtp_set_pair(o, "gaps", c->gap_bytes, v->gap_bytes);
    smtp_report_errors(s, o);
    smtp_report_unsolicited(s, o);
    if (s->txn_dropped)
        jt_set_int(o, "transactions_dropped", (int64_t)s->txn_dropped);
    if (s->bdat_malformed)
        jt_set_int(o, "bdat_malformed", (int64_t)s->bdat_malformed);
    if (s->auth_tail_lines)
        jt_set_int(o, "lines_after_auth", (int64_t)s->auth_tail_lines);
    if (s->data_without_envelope)
        jt_set_int(o, "data_without_envelope", (int64_t)s->data_without_envelope);
    if (s->auth_dropped)
        jt_set_int(o, "auth_dropped", (int64_t)s->auth_dropped);
    if (s->ehlo.ext_dropped)
        jt_set_int(o, "extensions_dropped", (int64_t)s->ehlo.ext_dropped);
}

int
smtp_has_transcript(const struct smtp_session *s)
{
    return s && (s->ntl || s->tl_dropped);
}

/* Building a Jansson transcript only fails for lack of memory; rc collects that. */
static void
smtp_put(json_t *o, const char *key, json_t *v, int *rc)
{
    /* Keys are our own literals: Jansson's UTF-8 check of each one is wasted work. */
    if (!v || json_object_set_new_nocheck(o, key, v) < 0)
        *rc = -1;
}

int
smtp_transcript_add(const struct smtp_session *s, json_t *session)
{
    int rc = 0;
    if (!smtp_has_transcript(s))
        return 0;
    json_t *arr = json_array();
    smtp_put(session, "transcript", arr, &rc);
    for (size_t i = 0; arr && i < s->ntl; i++) {
        const struct smtp_tline *l = &s->tl[i];
        json_t *e = json_object();
        if (!e || json_array_append_new(arr, e) < 0) {
            rc = -1;
            break;
        }
        smtp_put(e, "t_ms", jx_ms(l->t_us - s->start_us), &rc);
        smtp_put(e, "dir", json_string(l->dir == SMTP_CLIENT ? "C" : "S"), &rc);
        smtp_put(e, "line", jx_bytes(l->p, l->n), &rc);
        if (l->flags & SMTP_TL_LATENCY)
            smtp_put(e, "latency_ms", jx_ms(l->latency_us), &rc);
        if (l->flags & SMTP_TL_BODY)
            smtp_put(e, "body", json_true(), &rc);
        if (l->flags & SMTP_TL_INCOMPLETE)
            smtp_put(e, "incomplete", json_true(), &rc);
        if (l->flags & SMTP_TL_CUT)
            smtp_put(e, "cut", json_true(), &rc);
        if (l->flags & SMTP_TL_DECRYPTED)
            smtp_put(e, "decrypted", json_true(), &rc);
    }
    return rc;
}

/* The members of smtp_transcript_add's line objects in the writer's (sorted) order. */
#define SMTP_PUT(lit) jx_put_raw(b, lit, sizeof lit - 1)

static int
smtp_transcript_write(const struct smtp_session *s, struct buf *b)
{
    int rc = JX_DUMP_OK;
    if (!s->ntl)
        return SMTP_PUT("[]");
    for (size_t i = 0; rc == JX_DUMP_OK && i < s->ntl; i++) {
        const struct smtp_tline *l = &s->tl[i];
        rc = i ? SMTP_PUT(",{") : SMTP_PUT("[{");
        if (rc == JX_DUMP_OK && (l->flags & SMTP_TL_BODY))
            rc = SMTP_PUT("\"body\":true,");
        if (rc == JX_DUMP_OK && (l->flags & SMTP_TL_CUT))
            rc = SMTP_PUT("\"cut\":true,");
        if (rc == JX_DUMP_OK && (l->flags & SMTP_TL_DECRYPTED))
            rc = SMTP_PUT("\"decrypted\":true,");
        if (rc == JX_DUMP_OK)
            rc = l->dir == SMTP_CLIENT ? SMTP_PUT("\"dir\":\"C\",") : SMTP_PUT("\"dir\":\"S\",");
        if (rc == JX_DUMP_OK && (l->flags & SMTP_TL_INCOMPLETE))
            rc = SMTP_PUT("\"incomplete\":true,");
        if (rc == JX_DUMP_OK && (l->flags & SMTP_TL_LATENCY)) {
            rc = SMTP_PUT("\"latency_ms\":");
            if (rc == JX_DUMP_OK)
                rc = jx_put_ms(b, l->latency_us);
            if (rc == JX_DUMP_OK)
                rc = SMTP_PUT(",");
        }
        if (rc == JX_DUMP_OK)
            rc = SMTP_PUT("\"line\":");
        if (rc == JX_DUMP_OK)
            rc = jx_put_bytes(b, l->p, l->n);
        if (rc == JX_DUMP_OK)
            rc = SMTP_PUT(",\"t_ms\":");
        if (rc == JX_DUMP_OK)
            rc = jx_put_ms(b, l->t_us - s->start_us);
        if (rc == JX_DUMP_OK)
            rc = SMTP_PUT("}");
    }
    return rc == JX_DUMP_OK ? SMTP_PUT("]") : rc;
}

#undef SMTP_PUT

static int
smtp_transcript_splice(void *ctx, struct buf *b)
{
    return smtp_transcript_write(ctx, b);
}

int
smtp_dump_report(const struct smtp_session *s, const struct jt_node *report, struct buf *b)
{
    if (!smtp_has_transcript(s))
        return jt_dump(report, NULL, 0, b);
    struct jx_splice sp = {"transcript", smtp_transcript_splice, (void *)s};
    return jt_dump(report, &sp, 1, b);
}

size_t
smtp_transcript_count(const struct smtp_session *s)
{
    return s ? s->ntl : 0;
}

int
smtp_transcript_get(const struct smtp_session *s, size_t i, struct smtp_tl_view *v)
{
    if (!s || i >= s->ntl)
        return -1;
    const struct smtp_tline *l = &s->tl[i];
    v->t_us = l->t_us - s->start_us;
    v->client = l->dir == SMTP_CLIENT;
    v->p = l->p;
    v->n = l->n;
    v->latency_us = (l->flags & SMTP_TL_LATENCY) ? l->latency_us : -1;
    v->body = (l->flags & SMTP_TL_BODY) != 0;
    v->decrypted = (l->flags & SMTP_TL_DECRYPTED) != 0;
    return 0;
}

static void
smtp_report_greeting(const struct smtp_session *s, struct jt_node *session)
{
    if (s->banner_seen) {
        struct jt_node *b = jt_set_obj(session, "banner");
        jt_set_int(b, "code", s->banner_code);
        smtp_set_str(b, "text", &s->banner_text);
        jt_set_int(b, "lines", (int64_t)s->banner_lines);
        if (!s->midstream) /* the handshake it is timed from is not in the capture */
            jt_set_ms(b, "delay_ms", s->banner_us - s->established_us);
        smtp_set_t(s, b, "t_ms", s->banner_us);
    }
    if (s->soft_found) {
        struct jt_node *w = jt_set_obj(session, "server_software");
        jt_set_lit(w, "name", s->soft_name);
        smtp_set_str(w, "version", &s->soft_version);
        jt_set_lit(w, "source", s->soft_source);
    }
    if (s->helo_count) {
        struct jt_node *h = jt_set_obj(session, "helo");
        jt_set_lit(h, "verb", smtp_verbs[s->helo_verb].name);
        smtp_set_str(h, "name", &s->helo_name);
        if (s->helo_code)
            jt_set_int(h, "code", s->helo_code);
        jt_set_int(h, "count", (int64_t)s->helo_count);
    }
    if (s->ehlo.valid) {
        struct jt_node *x = jt_set_arr(session, "extensions");
        for (size_t i = 0; x && i < s->ehlo.next; i++)
            if (s->ehlo.ext[i].p)
                jt_push_bytes(x, s->ehlo.ext[i].p, s->ehlo.ext[i].n);
        smtp_set_ehlo(s, jt_set_obj(session, "ehlo"));
    }
}

int
smtp_report(const struct smtp_session *s, json_t *session)
{
    struct jt *t = jt_new();
    int rc = t ? smtp_report_core(s, jt_root(t)) : -1;
    json_t *j = t ? jt_to_json(jt_root(t)) : NULL;
    if (!j || json_object_update(session, j) < 0)
        rc = -1;
    json_decref(j);
    jt_free(t);
    if (s && session && smtp_transcript_add(s, session) < 0)
        rc = -1;
    return rc;
}

int
smtp_report_core(const struct smtp_session *s, struct jt_node *session)
{
    int rc = 0;

    if (!s || !session)
        return -1;
    smtp_report_greeting(s, session);
    if (smtp_report_tls(s, session) < 0 || smtp_report_auth(s, session) < 0)
        rc = -1;
    if (s->ntxn) {
        struct jt_node *arr = jt_set_arr(session, "transactions");
        for (size_t i = 0; arr && i < s->ntxn; i++)
            if (smtp_set_txn(s, s->txn[i], jt_push_obj(arr)) < 0)
                rc = -1;
    }
    smtp_report_commands(s, session);
    smtp_report_outcome(s, session);
    smtp_report_facts(s, session);
    if (smtp_has_transcript(s))
        jt_set_int(session, "transcript_dropped", (int64_t)s->tl_dropped);
    return rc || s->nomem ? -1 : 0;
}

int
smtp_awaiting(const struct smtp_session *s, const char **what, int64_t *since_us)
{
    if (!s || s->finished || (s->tls_active && !s->decrypted) || s->tls_sniff)
        return 0;
    if (!s->banner_seen) {
        /* Mid-stream the greeting went by before the capture began. */
        if (s->midstream || s->qlen)
            return 0;
        *what = "greeting";
        *since_us = s->established_us;
        return 1;
    }
    /* A BDAT chunk still coming: the client is the one sending. */
    if (!s->qlen || s->d[SMTP_CLIENT].mode == SMTP_M_CHUNK)
        return 0;
    const struct smtp_inflight *e = &s->q[s->qhead];
    *what = e->verb == SMTP_V_DATAEND ? "end-of-data" : smtp_verbs[e->verb].name;
    /* Pipelined commands wait from the reply before theirs, not from when they were sent. */
    *since_us = e->t_us > s->reply_us ? e->t_us : s->reply_us;
    return 1;
}
