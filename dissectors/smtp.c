/* smtp.c - SMTP dialogue model from the two byte streams of one connection: RFC 5321
 * (commands 4.1, replies 4.2, line limits 4.5.3), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING),
 * RFC 3207 (STARTTLS, 4.2: the dialogue starts over inside TLS), RFC 8314 3.3 (implicit TLS),
 * RFC 4954 (AUTH), RFC 3463 (enhanced status codes), RFC 1870 (SIZE), RFC 2033 (LHLO).
 * Message bodies go to imf, AUTH exchanges to sasl, TLS records to tls, whose plaintext (with
 * a key log) comes back here and is read like the dialogue in clear.
 * The dissector's other files: smtp_frame.c (bytes to lines, holds, bodies, TLS),
 * smtp_mta.c (server software), smtp_report.c (the report tree); smtp_int.h is the session
 * they share. */
#include "smtp_int.h"

/* ---- names of the parameters kept (RFC 1870, 6152, 6531, 3461) ---- */

const char *const smtp_mparam_names[SMTP_MP_COUNT] = {"SIZE", "BODY", "SMTPUTF8",
                                                      "AUTH", "RET",  "ENVID"};
const char *const smtp_rparam_names[SMTP_RP_COUNT] = {"NOTIFY", "ORCPT"};

/* ---- small helpers ---- */

uint8_t
smtp_upper(uint8_t c)
{
    return c >= 'a' && c <= 'z' ? (uint8_t)(c - 'a' + 'A') : c;
}

int
smtp_is_space(uint8_t c)
{
    return c == ' ' || c == '\t';
}

int
smtp_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Case-insensitive equality of wire bytes with an ASCII word. */
static int
smtp_word_eq(const uint8_t *p, size_t n, const char *w)
{
    size_t wl = strlen(w);
    if (n != wl)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (smtp_upper(p[i]) != smtp_upper((uint8_t)w[i]))
            return 0;
    return 1;
}

int
smtp_prefix_eq(const uint8_t *p, size_t n, const char *w)
{
    size_t wl = strlen(w);
    return n >= wl && smtp_word_eq(p, wl, w);
}

static void
smtp_trim(const uint8_t **p, size_t *n)
{
    while (*n && smtp_is_space((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n && smtp_is_space((*p)[*n - 1]))
        (*n)--;
}

/* Length of the token at p (up to a space or tab). */
size_t
smtp_token(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && !smtp_is_space(p[i]))
        i++;
    return i;
}

/* Decimal number of at most 19 digits (no overflow of uint64_t); -1 when not one. */
int
smtp_parse_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!smtp_is_digit(p[i]))
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return 0;
}

int
smtp_str_set(struct smtp_session *s, struct smtp_str *d, const uint8_t *p, size_t n, size_t max)
{
    if (n > max)
        n = max;
    if (s->kept + n + 1 > SMTP_MAX_KEPT + (d->p ? d->n + 1 : 0))
        return -1;
    uint8_t *c = mem_alloc(n ? n : 1);
    if (!c) {
        s->nomem = 1;
        return -1;
    }
    if (n)
        memcpy(c, p, n);
    if (d->p)
        s->kept -= d->n + 1;
    mem_free(d->p);
    d->p = c;
    d->n = n;
    s->kept += n + 1;
    return 0;
}

/* Frees a string kept during the session and gives its bytes back to the budget. */
static void
smtp_str_release(struct smtp_session *s, struct smtp_str *d)
{
    if (d->p)
        s->kept -= d->n + 1;
    mem_free(d->p);
    d->p = NULL;
    d->n = 0;
}

static void
smtp_str_free(struct smtp_str *d)
{
    mem_free(d->p);
    d->p = NULL;
    d->n = 0;
}

/* Appends below the buffer's cap; reaching the cap is intended, a failed allocation is not. */
void
smtp_buf_add(struct smtp_session *s, struct buf *b, const uint8_t *p, size_t n)
{
    if (buf_append(b, p, n) == BUF_E_NOMEM)
        s->nomem = 1;
}

static void
smtp_reply_rec_free(struct smtp_reply_rec *r)
{
    smtp_str_free(&r->text);
}

/* ---- transcript ---- */

/* Returns the entry added, NULL when the transcript is full (counted) or memory ran out. */
/* Room for n bytes of a line in the newest chunk, or in a new one. */
static uint8_t *
smtp_tl_bytes_room(struct smtp_session *s, size_t n)
{
    struct smtp_tl_chunk *c = s->tlc;
    if (!c || c->cap - c->used < n) {
        size_t cap = s->tlc_next ? s->tlc_next : SMTP_TLC_FIRST;
        if (cap < n)
            cap = n;
        c = mem_alloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = s->tlc;
        s->tlc = c;
        s->tlc_next = cap < SMTP_TLC_MAX ? cap * 2 : SMTP_TLC_MAX;
    }
    uint8_t *p = c->data + c->used;
    c->used += n;
    return p;
}

static struct smtp_tline *
smtp_tl_add(struct smtp_session *s, int dir, const uint8_t *p, size_t n, int64_t t_us, int flags)
{
    if (s->ntl >= s->cfg.max_transcript) {
        s->tl_dropped++;
        return NULL;
    }
    if (s->ntl == s->atl) {
        size_t na = s->atl ? s->atl * 2 : 4;
        if (na > s->cfg.max_transcript)
            na = s->cfg.max_transcript;
        struct smtp_tline *v = mem_realloc(s->tl, na * sizeof *v);
        if (!v) {
            s->nomem = 1;
            s->tl_dropped++;
            return NULL;
        }
        s->tl = v;
        s->atl = na;
    }
    uint8_t *c = smtp_tl_bytes_room(s, n);
    if (!c) {
        s->nomem = 1;
        s->tl_dropped++;
        return NULL;
    }
    if (n)
        memcpy(c, p, n);
    /* Once a direction is TLS, whatever it says here came out of the decryption. */
    if (s->d[dir].tls)
        flags |= SMTP_TL_DECRYPTED;
    struct smtp_tline *e = &s->tl[s->ntl++];
    e->t_us = t_us;
    e->latency_us = 0;
    e->p = c;
    e->n = n;
    e->dir = dir;
    e->flags = flags;
    return e;
}

/* Bytes that are not lines (a message, a chunk, held bytes) stand in the transcript as one
 * line "[what: N bytes]". */
void
smtp_tl_bytes(struct smtp_session *s, const char *what, uint64_t bytes, int64_t t_us, int flags)
{
    char line[96];
    int w = snprintf(line, sizeof line, "[%s: %llu bytes]", what, (unsigned long long)bytes);
    if (w > 0 && (size_t)w < sizeof line)
        smtp_tl_add(s, SMTP_CLIENT, (const uint8_t *)line, (size_t)w, t_us, flags);
}

/* ---- the one place the session phase changes ---- */

void
smtp_set_phase(struct smtp_session *s, enum smtp_phase ph)
{
    /* After QUIT or the switch to TLS, nothing said in clear moves the dialogue on; the
     * dialogue decrypted inside TLS starts over (smtp_inner_begin) and moves it on. */
    if (s->phase == SMTP_PH_TLS && !s->decrypted)
        return;
    if (s->phase == SMTP_PH_QUIT && ph != SMTP_PH_TLS)
        return;
    s->phase = ph;
}

/* ---- commands in flight (RFC 2920 3: replies come in command order) ---- */

static struct smtp_inflight *
smtp_q_at(struct smtp_session *s, size_t i)
{
    return &s->q[(s->qhead + i) % s->qcap];
}

static int
smtp_q_grow(struct smtp_session *s)
{
    size_t na = s->qcap ? s->qcap * 2 : SMTP_INITIAL_QUEUE;
    if (na > s->cfg.max_inflight)
        na = s->cfg.max_inflight;
    if (na <= s->qcap)
        return -1;
    struct smtp_inflight *v = mem_alloc(na * sizeof *v);
    if (!v) {
        s->nomem = 1;
        return -1;
    }
    for (size_t i = 0; i < s->qlen; i++)
        v[i] = *smtp_q_at(s, i);
    mem_free(s->q);
    s->q = v;
    s->qcap = na;
    s->qhead = 0;
    return 0;
}

/* Queues a command; returns 0, or -1 when the queue is full (the command is then only
 * counted, and its reply skipped when it comes). */
static int
smtp_q_push(struct smtp_session *s, enum smtp_verb verb, int64_t t_us, long txn, long rcpt,
            int last)
{
    if (s->qlen == s->qcap && smtp_q_grow(s) < 0) {
        s->inflight_overflow++;
        s->qdropped++;
        if (s->qlen)
            smtp_q_at(s, s->qlen - 1)->dropped_after++;
        else
            s->qskip++;
        return -1;
    }
    struct smtp_inflight *e = smtp_q_at(s, s->qlen++);
    e->t_us = t_us;
    e->txn = txn;
    e->rcpt = rcpt;
    e->dropped_after = 0;
    e->verb = verb;
    e->last = last;
    e->malformed = 0;
    return 0;
}

static void
smtp_q_pop(struct smtp_session *s)
{
    if (!s->qlen)
        return;
    s->qskip += smtp_q_at(s, 0)->dropped_after;
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
}

/* Commands whose reply has not come, dropped ones included. */
uint64_t
smtp_q_outstanding(const struct smtp_session *s)
{
    return (uint64_t)s->qlen + s->qdropped;
}

/* ---- create / destroy ---- */

static void
smtp_txn_free(struct smtp_txn *t)
{
    if (!t)
        return;
    smtp_str_free(&t->mail_from);
    for (int i = 0; i < SMTP_MP_COUNT; i++)
        smtp_str_free(&t->mparam[i]);
    smtp_reply_rec_free(&t->mail);
    for (size_t i = 0; i < t->nrcpt; i++) {
        smtp_str_free(&t->rcpt[i].to);
        for (int k = 0; k < SMTP_RP_COUNT; k++)
            smtp_str_free(&t->rcpt[i].param[k]);
        smtp_reply_rec_free(&t->rcpt[i].reply);
    }
    mem_free(t->rcpt);
    smtp_reply_rec_free(&t->data);
    imf_destroy(t->imf);
    mem_free(t);
}

static void
smtp_ehlo_free(struct smtp_session *s, struct smtp_ehlo *e)
{
    smtp_str_release(s, &e->greeting);
    for (size_t i = 0; i < e->next; i++)
        smtp_str_release(s, &e->ext[i]);
    for (size_t i = 0; i < e->nmech; i++)
        smtp_str_release(s, &e->mech[i]);
    for (size_t i = 0; i < e->nmasked; i++)
        smtp_str_release(s, &e->masked[i]);
    mem_free(e->ext);
    mem_free(e->mech);
    mem_free(e->masked);
    memset(e, 0, sizeof *e);
}

/* Slot i of a grown string table (zeroed when new), or NULL at the cap or without memory. */
static struct smtp_str *
smtp_str_slot(struct smtp_str **arr, size_t *alloc, size_t i, size_t max)
{
    if (i >= max)
        return NULL;
    if (i >= *alloc) {
        size_t na = *alloc ? *alloc * 2 : 8;
        if (na > max)
            na = max;
        struct smtp_str *grown = mem_realloc(*arr, na * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + *alloc, 0, (na - *alloc) * sizeof *grown);
        *arr = grown;
        *alloc = na;
    }
    return &(*arr)[i];
}

struct smtp_session *
smtp_create(const struct smtp_config *cfg, int64_t start_us, int64_t established_us)
{
    struct smtp_session *s = mem_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (cfg)
        s->cfg = *cfg;
    if (!s->cfg.max_line)
        s->cfg.max_line = SMTP_DEFAULT_MAX_LINE;
    if (s->cfg.max_line > SMTP_MAX_LINE_CAP)
        s->cfg.max_line = SMTP_MAX_LINE_CAP;
    if (!s->cfg.max_inflight)
        s->cfg.max_inflight = SMTP_DEFAULT_MAX_INFLIGHT;
    if (!s->cfg.max_transcript)
        s->cfg.max_transcript = SMTP_DEFAULT_MAX_TRANSCRIPT;
    if (!s->cfg.max_transactions)
        s->cfg.max_transactions = SMTP_DEFAULT_MAX_TRANSACTIONS;
    if (!s->cfg.max_rcpts)
        s->cfg.max_rcpts = SMTP_DEFAULT_MAX_RCPTS;
    s->start_us = start_us;
    s->established_us = established_us;
    /* The phase starts as SMTP_PH_CONNECT (zero); only smtp_set_phase changes it. */
    for (int d = 0; d < 2; d++) {
        /* One byte more than max_line so a CR right before the cut is still seen. */
        buf_init(&s->d[d].line, s->cfg.max_line + 1);
        s->d[d].mode = SMTP_M_LINES;
    }
    buf_init(&s->hold, SMTP_MAX_HOLD);
    buf_init(&s->r.text, SMTP_MAX_TEXT);
    buf_init(&s->r.first, SMTP_MAX_TEXT);
    s->cur = -1;
    s->ccur = -1;
    s->body_txn = -1;
    s->chunk_txn = -1;
    s->auth_cur = -1;
    if (s->cfg.implicit_tls) {
        /* RFC 8314 3.3: on the submissions port TLS starts with the connection. */
        s->tls = tls_create(0);
        if (!s->tls) {
            smtp_destroy(s);
            return NULL;
        }
        if (s->cfg.keylog) {
            tls_set_keylog(s->tls, s->cfg.keylog, smtp_plain, s);
            tls_set_keylog_refresh(s->tls, s->cfg.keylog_refresh, s->cfg.keylog_refresh_arg);
        }
        s->tls_state = SMTP_TLS_IMPLICIT;
        s->tls_active = 1;
        s->tls_sniff = 1;
        s->tls_before_txn = 1;
        s->tls_us = established_us;
        s->d[SMTP_CLIENT].tls = 1;
        s->d[SMTP_SERVER].tls = 1;
        smtp_set_phase(s, SMTP_PH_TLS);
    }
    return s;
}

void
smtp_destroy(struct smtp_session *s)
{
    if (!s)
        return;
    for (int d = 0; d < 2; d++)
        buf_free(&s->d[d].line);
    buf_free(&s->hold);
    buf_free(&s->r.text);
    buf_free(&s->r.first);
    imf_destroy(s->orphan);
    mem_free(s->q);
    smtp_str_free(&s->banner_text);
    smtp_str_free(&s->soft_version);
    smtp_str_free(&s->helo_name);
    smtp_ehlo_free(s, &s->ehlo);
    smtp_ehlo_free(s, &s->staging);
    smtp_str_free(&s->tls_text);
    tls_destroy(s->tls);
    for (size_t i = 0; i < s->nauth; i++)
        sasl_destroy(s->auth[i].sasl);
    mem_free(s->auth);
    for (size_t i = 0; i < s->ntxn; i++)
        smtp_txn_free(s->txn[i]);
    mem_free(s->txn);
    for (size_t i = 0; i < s->nerr; i++)
        smtp_str_free(&s->err[i].text);
    mem_free(s->err);
    for (size_t i = 0; i < s->nunsol; i++)
        smtp_str_free(&s->unsol[i].rec.text);
    mem_free(s->unsol);
    for (struct smtp_tl_chunk *c = s->tlc, *next; c; c = next) {
        next = c->next;
        mem_free(c);
    }
    mem_free(s->tl);
    mem_free(s);
}

int
smtp_encrypted(const struct smtp_session *s)
{
    return s && s->tls_active;
}

int
smtp_decrypted(const struct smtp_session *s)
{
    return s && s->decrypted;
}

int
smtp_reads_commands(const struct smtp_session *s)
{
    const struct smtp_dirstate *c = &s->d[SMTP_CLIENT];
    return s && !c->tls && c->mode == SMTP_M_LINES && !c->skip && !c->line_len;
}

int
smtp_partial(const struct smtp_session *s)
{
    return s && s->dec_holes > 0;
}

/* ---- transactions (RFC 5321 3.3: MAIL, RCPT..., DATA) ---- */

static struct smtp_txn *
smtp_txn_at(const struct smtp_session *s, long i)
{
    return i >= 0 && (size_t)i < s->ntxn ? s->txn[i] : NULL;
}

static int
smtp_txn_open(const struct smtp_txn *t)
{
    /* A message already sent waits for its final reply, whatever the client says next
     * (RFC 2920 lets it pipeline QUIT right behind the "."). */
    return t && t->ended_by == SMTP_END_OPEN && !t->sent;
}

/* The client moved on: the current transaction ends (if still open) and none is current. */
void
smtp_txn_end(struct smtp_session *s, enum smtp_end how)
{
    struct smtp_txn *t = smtp_txn_at(s, s->cur);
    if (smtp_txn_open(t))
        t->ended_by = how;
    s->cur = -1;
    s->cur_unkept = 0;
}

/* A new transaction; its index, or -1 when over max_transactions (counted). */
static long
smtp_txn_new(struct smtp_session *s, int64_t t_us)
{
    if (s->ntxn >= s->cfg.max_transactions || s->kept + sizeof(struct smtp_txn) > SMTP_MAX_KEPT) {
        s->txn_dropped++;
        return -1;
    }
    if (s->ntxn == s->atxn) {
        size_t na = s->atxn ? s->atxn * 2 : 4;
        if (na > s->cfg.max_transactions)
            na = s->cfg.max_transactions;
        struct smtp_txn **v = mem_realloc(s->txn, na * sizeof *v);
        if (!v) {
            s->nomem = 1;
            s->txn_dropped++;
            return -1;
        }
        s->txn = v;
        s->atxn = na;
    }
    struct smtp_txn *t = mem_calloc(1, sizeof *t);
    if (!t) {
        s->nomem = 1;
        s->txn_dropped++;
        return -1;
    }
    t->t_us = t_us;
    t->authenticated = s->authenticated;
    t->decrypted = s->d[SMTP_CLIENT].tls;
    t->ended_by = SMTP_END_OPEN;
    s->kept += sizeof *t;
    s->txn[s->ntxn] = t;
    return (long)s->ntxn++;
}

static long
smtp_rcpt_new(struct smtp_session *s, struct smtp_txn *t)
{
    t->rcpt_count++;
    if (t->nrcpt >= s->cfg.max_rcpts || s->kept + sizeof(struct smtp_rcpt) > SMTP_MAX_KEPT) {
        t->rcpt_dropped++;
        return -1;
    }
    if (t->nrcpt == t->arcpt) {
        size_t na = t->arcpt ? t->arcpt * 2 : 4;
        if (na > s->cfg.max_rcpts)
            na = s->cfg.max_rcpts;
        struct smtp_rcpt *v = mem_realloc(t->rcpt, na * sizeof *v);
        if (!v) {
            s->nomem = 1;
            t->rcpt_dropped++;
            return -1;
        }
        t->rcpt = v;
        t->arcpt = na;
    }
    memset(&t->rcpt[t->nrcpt], 0, sizeof t->rcpt[0]);
    s->kept += sizeof(struct smtp_rcpt);
    return (long)t->nrcpt++;
}

/* The path of "FROM:<path> params" / "TO:<path> params" (RFC 5321 4.1.2): sets the address
 * view (without the brackets and any source route) and the parameter text after it.
 * Returns -1 when the keyword is missing. */
static int
smtp_parse_path(const uint8_t *p, size_t n, const char *kw, const uint8_t **addr, size_t *alen,
                const uint8_t **rest, size_t *rlen)
{
    size_t kl = strlen(kw), i, end;

    smtp_trim(&p, &n);
    if (!smtp_prefix_eq(p, n, kw))
        return -1;
    p += kl;
    n -= kl;
    /* "MAIL FROM: <a@b>" is common enough from real clients to accept. */
    while (n && smtp_is_space(p[0])) {
        p++;
        n--;
    }
    if (n && p[0] == '<') {
        int quoted = 0;
        for (end = 1; end < n; end++) {
            if (p[end] == '\\' && end + 1 < n)
                end++;
            else if (p[end] == '"')
                quoted = !quoted;
            else if (p[end] == '>' && !quoted)
                break;
        }
        *addr = p + 1;
        *alen = end - 1;
        i = end < n ? end + 1 : n;
    } else {
        end = smtp_token(p, n);
        *addr = p;
        *alen = end;
        i = end;
    }
    /* A source route "@a,@b:user@c" (RFC 5321 4.1.2, obsolete) names relays, not the
     * mailbox. */
    if (*alen && (*addr)[0] == '@') {
        const uint8_t *colon = memchr(*addr, ':', *alen);
        if (colon) {
            *alen -= (size_t)(colon + 1 - *addr);
            *addr = colon + 1;
        }
    }
    *rest = p + i;
    *rlen = n - i;
    return 0;
}

/* Calls fn for each "KEY[=VALUE]" of an ESMTP parameter list (RFC 5321 4.1.2). */
static void
smtp_params(const uint8_t *p, size_t n,
            void (*fn)(void *, const uint8_t *, size_t, const uint8_t *, size_t), void *ctx)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && smtp_is_space(p[i]))
            i++;
        size_t start = i;
        while (i < n && !smtp_is_space(p[i]))
            i++;
        if (i == start)
            break;
        const uint8_t *eq = memchr(p + start, '=', i - start);
        size_t kl = eq ? (size_t)(eq - (p + start)) : i - start;
        const uint8_t *v = eq ? eq + 1 : p + i;
        size_t vl = eq ? i - start - kl - 1 : 0;
        fn(ctx, p + start, kl, v, vl);
    }
}

struct smtp_param_ctx {
    struct smtp_session *s;
    struct smtp_str *dst;
    const char *const *names;
    int count;
};

static void
smtp_param_keep(void *ctx, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    struct smtp_param_ctx *c = ctx;
    for (int i = 0; i < c->count; i++)
        if (smtp_word_eq(k, kl, c->names[i]))
            smtp_str_set(c->s, &c->dst[i], v, vl, SMTP_MAX_PARAM);
}

/* The transaction the client's next RCPT, DATA or BDAT is for: that of its last MAIL, unless
 * the server refused that MAIL while its own transaction is still open (a nested MAIL): the
 * server then puts what follows into the open one. */
static long
smtp_client_txn(const struct smtp_session *s)
{
    const struct smtp_txn *c = smtp_txn_at(s, s->ccur);
    if (c && c->mail.code && !c->mail_accepted && smtp_txn_open(smtp_txn_at(s, s->cur)))
        return s->cur;
    return s->ccur;
}

/* ---- client commands (RFC 5321 4.1.1), one handler per verb ---- */

static void
smtp_cmd_helo(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    /* RFC 5321 4.1.4: EHLO or HELO resets the session like RSET, but only once the server
     * accepts it (smtp_on_helo); the client means to start over either way. */
    s->ccur = -1;
    s->helo_verb = v;
    smtp_trim(&args, &n);
    smtp_str_set(s, &s->helo_name, args, n, SMTP_MAX_ADDR);
    s->helo_code = 0;
    s->helo_count++;
    smtp_q_push(s, v, t_us, -1, -1, 0);
    smtp_set_phase(s, SMTP_PH_HELO);
}

static void
smtp_cmd_mail(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    const uint8_t *addr = NULL, *rest = NULL;
    size_t alen = 0, rlen = 0;

    /* The transaction the client means to open; it becomes the server's open one only when
     * the server accepts the MAIL (smtp_on_mail). */
    long idx = smtp_txn_new(s, t_us);
    struct smtp_txn *t = smtp_txn_at(s, idx);
    if (t && smtp_parse_path(args, n, "FROM:", &addr, &alen, &rest, &rlen) == 0) {
        smtp_str_set(s, &t->mail_from, addr, alen, SMTP_MAX_ADDR);
        struct smtp_param_ctx c = {s, t->mparam, smtp_mparam_names, SMTP_MP_COUNT};
        smtp_params(rest, rlen, smtp_param_keep, &c);
    }
    s->ccur = idx;
    smtp_q_push(s, v, t_us, idx, -1, 0);
    smtp_set_phase(s, SMTP_PH_MAIL);
}

static void
smtp_cmd_rcpt(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    const uint8_t *addr = NULL, *rest = NULL;
    size_t alen = 0, rlen = 0;
    long ridx = -1;
    /* Kept with the MAIL it follows; smtp_on_rcpt moves it where the server put it. */
    long idx = smtp_client_txn(s);
    struct smtp_txn *t = smtp_txn_at(s, idx);

    if (t) {
        ridx = smtp_rcpt_new(s, t);
        if (ridx >= 0 && smtp_parse_path(args, n, "TO:", &addr, &alen, &rest, &rlen) == 0) {
            struct smtp_rcpt *r = &t->rcpt[ridx];
            smtp_str_set(s, &r->to, addr, alen, SMTP_MAX_ADDR);
            struct smtp_param_ctx c = {s, r->param, smtp_rparam_names, SMTP_RP_COUNT};
            smtp_params(rest, rlen, smtp_param_keep, &c);
        }
    }
    smtp_q_push(s, v, t_us, t ? idx : -1, ridx, 0);
    smtp_set_phase(s, SMTP_PH_RCPT);
}

static void
smtp_cmd_data(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    (void)args;
    (void)n;
    /* Which transaction the message belongs to is the server's to say (smtp_on_data). RFC
     * 2920 3.1: the client waits for 354 before the message, so what it sends before the
     * reply is read only once the reply says what it is. */
    if (smtp_q_push(s, v, t_us, smtp_client_txn(s), -1, 0) == 0) {
        s->d[SMTP_CLIENT].mode = SMTP_M_HOLD;
        s->hold_verb = v;
    }
    smtp_set_phase(s, SMTP_PH_DATA);
}

/* The message parser for the next body bytes: the transaction's, or an orphan one when the
 * transaction is not kept (the end of the data must still be found). */
static struct imf *
smtp_body_parser(struct smtp_session *s, long txn)
{
    struct imf_config ic = {.hash = s->cfg.hash_bodies, .sha256 = s->cfg.sha256};
    struct smtp_txn *t = smtp_txn_at(s, txn);
    struct imf **slot = t ? &t->imf : &s->orphan;
    struct imf_envelope env = {0};
    struct imf_bytes *rcpt = NULL;
    if (t) {
        ic.sink = s->cfg.eml;
        ic.sink_id = (uint64_t)txn;
    }
    if (!*slot) {
        if (t && ic.sink.begin) {
            /* What a delivering MTA records: the reverse path and the recipients the server
             * took (or had not answered yet: BDAT may run ahead of the replies). */
            env.has_from = t->mail_from.p != NULL;
            env.from = (struct imf_bytes){t->mail_from.p, t->mail_from.n};
            if (t->nrcpt && (rcpt = mem_calloc(t->nrcpt, sizeof *rcpt))) {
                for (size_t i = 0; i < t->nrcpt; i++) {
                    const struct smtp_rcpt *r = &t->rcpt[i];
                    if (r->moved || !r->to.p || (r->reply.code && r->reply.code / 100 != 2))
                        continue;
                    rcpt[env.nrcpt++] = (struct imf_bytes){r->to.p, r->to.n};
                }
            }
            env.rcpt = rcpt;
            ic.envelope = &env;
        }
        *slot = imf_create(&ic);
        mem_free(rcpt);
        if (!*slot)
            s->nomem = 1;
    }
    return *slot;
}

/* RFC 3030 2: "BDAT" SP chunk-size [SP "LAST"], chunk-size 1*DIGIT. Runs of blanks between
 * the words and after them are taken as real servers take them; anything else (a sign, a
 * second word, an overflowing or absurd size) is a malformed command whose following bytes
 * are not a chunk: framing them would swallow the rest of the dialogue. */
static int
smtp_bdat_args(const uint8_t *args, size_t n, uint64_t *size, int *last)
{
    size_t dl = 0;

    if (!n || !smtp_is_space(args[0]))
        return -1;
    smtp_trim(&args, &n);
    while (dl < n && smtp_is_digit(args[dl]))
        dl++;
    if (smtp_parse_u64(args, dl, size) < 0 || *size > SMTP_MAX_CHUNK)
        return -1;
    const uint8_t *rest = args + dl;
    size_t rl = n - dl;
    *last = 0;
    if (!rl)
        return 0;
    if (!smtp_is_space(rest[0]))
        return -1;
    smtp_trim(&rest, &rl);
    if (!smtp_word_eq(rest, rl, "LAST"))
        return -1;
    *last = 1;
    return 0;
}

static void
smtp_cmd_bdat(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    uint64_t size;
    int last;

    if (smtp_bdat_args(args, n, &size, &last) < 0) {
        /* No chunk follows; the server's reply (501) says so too. */
        s->bdat_malformed++;
        if (smtp_q_push(s, v, t_us, -1, -1, 0) == 0)
            smtp_q_at(s, s->qlen - 1)->malformed = 1;
        return;
    }
    long idx = smtp_client_txn(s);
    struct smtp_txn *t = smtp_txn_at(s, idx);
    if (t) {
        if (!t->has_data) {
            t->has_data = 1;
            t->data_verb = SMTP_V_BDAT;
        }
        t->chunks++;
    }
    s->body = smtp_body_parser(s, t ? idx : -1);
    s->chunk_left = size;
    s->chunk_us = t_us;
    s->chunk_bytes = 0;
    s->chunk_last = last;
    s->chunk_txn = t ? idx : -1;
    smtp_set_phase(s, SMTP_PH_BDAT);
    /* RFC 3030 2: exactly size octets follow the command line, whatever they are. */
    if (size) {
        s->d[SMTP_CLIENT].mode = SMTP_M_CHUNK;
    } else {
        s->c_msg_end = s->c_line_end;
        smtp_chunk_done(s, t_us);
    }
}

static void
smtp_cmd_rset(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    (void)args;
    (void)n;
    /* The server's transaction ends on its 250 (smtp_on_rset); the client's right away. */
    s->ccur = -1;
    smtp_q_push(s, v, t_us, -1, -1, 0);
    if (s->phase > SMTP_PH_HELO)
        smtp_set_phase(s, SMTP_PH_HELO);
}

static void
smtp_cmd_quit(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    (void)args;
    (void)n;
    s->quit_sent = 1;
    smtp_txn_end(s, SMTP_END_QUIT);
    smtp_q_push(s, v, t_us, -1, -1, 0);
    smtp_set_phase(s, SMTP_PH_QUIT);
}

static void
smtp_cmd_starttls(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n,
                  int64_t t_us)
{
    (void)args;
    (void)n;
    if (!s->tls_active) {
        s->tls_state = SMTP_TLS_REQUESTED;
        s->tls_us = t_us;
        s->tls_code = 0;
        smtp_str_free(&s->tls_text);
    }
    /* RFC 3207 4: the client sends nothing until the 220; bytes it sends anyway are held,
     * then read as TLS (220) or as commands (refused). Plain text read as commands after
     * a 220 is the STARTTLS injection flaw, so it is never done here. */
    if (smtp_q_push(s, v, t_us, -1, -1, 0) == 0) {
        s->d[SMTP_CLIENT].mode = SMTP_M_HOLD;
        s->hold_verb = v;
    }
}

static int
smtp_mech_advertised(const struct smtp_session *s, const uint8_t *m, size_t ml)
{
    for (size_t i = 0; i < s->ehlo.nmech; i++)
        if (s->ehlo.mech[i].n == ml) {
            size_t k = 0;
            while (k < ml && smtp_upper(m[k]) == smtp_upper(s->ehlo.mech[i].p[k]))
                k++;
            if (k == ml)
                return 1;
        }
    return 0;
}

static void
smtp_cmd_auth(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n, int64_t t_us)
{
    smtp_trim(&args, &n);
    s->auth_cur = -1;
    if (s->nauth < SMTP_MAX_AUTH && s->nauth == s->aauth) {
        size_t na = s->aauth ? s->aauth * 2 : 2;
        if (na > SMTP_MAX_AUTH)
            na = SMTP_MAX_AUTH;
        struct smtp_auth *grown = mem_realloc(s->auth, na * sizeof *grown);
        if (grown) {
            s->auth = grown;
            s->aauth = na;
        } else {
            s->nomem = 1;
        }
    }
    if (s->nauth < s->aauth) {
        struct smtp_auth *a = &s->auth[s->nauth];
        memset(a, 0, sizeof *a);
        a->sasl = sasl_begin(args, n, 0);
        if (a->sasl) {
            a->t_us = t_us;
            a->advertised = smtp_mech_advertised(s, args, smtp_token(args, n));
            a->decrypted = s->d[SMTP_CLIENT].tls;
            s->auth_cur = (long)s->nauth++;
        } else {
            s->nomem = 1;
        }
    } else if (s->nauth >= SMTP_MAX_AUTH) {
        s->auth_dropped++;
    }
    s->auth_secret = 1;
    s->auth_tail = 1;
    smtp_q_push(s, v, t_us, s->auth_cur, -1, 0);
    smtp_set_phase(s, SMTP_PH_AUTH);
}

static void
smtp_cmd_other(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n,
               int64_t t_us)
{
    (void)args;
    (void)n;
    smtp_q_push(s, v, t_us, -1, -1, 0);
}

/* The verb a command line opens with; SMTP_V_UNKNOWN for any other word. The verbs from
 * the wire come first in enum smtp_verb, ending at SMTP_V_UNKNOWN. */
static enum smtp_verb
smtp_cmd_lookup(const uint8_t *p, size_t n)
{
    int v = 0;
    while (v < SMTP_V_UNKNOWN && !smtp_word_eq(p, n, smtp_verbs[v].name))
        v++;
    return (enum smtp_verb)v;
}

/* Mid-stream, whether the first line of a direction is whole: it opens with a reply code or
 * a command verb; anything else is the tail of a line cut by the start of the capture. */
int
smtp_ms_line_start(const struct smtp_session *s, int dir, const uint8_t *p, size_t n)
{
    (void)s;
    if (dir == SMTP_SERVER)
        return n >= 3 && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
               p[2] <= '9' &&
               (n == 3 || p[3] == ' ' || p[3] == '-' || p[3] == '\r' || p[3] == '\n');
    return smtp_cmd_lookup(p, smtp_token(p, n)) != SMTP_V_UNKNOWN;
}

/* An AUTH continuation line (RFC 4954 4): a response to the 334 before it, or "*". */
static void
smtp_auth_continuation(struct smtp_session *s, const uint8_t *p, size_t n, int cut, int64_t t_us)
{
    static const uint8_t redacted[] = "<redacted>";
    int cancel = n == 1 && p[0] == '*';

    size_t open = 0;
    for (size_t i = 0; i < s->qlen; i++)
        open += smtp_q_at(s, i)->verb == SMTP_V_AUTH;
    for (size_t i = 0; open > 1 && i < s->qlen; i++) {
        const struct smtp_inflight *e = smtp_q_at(s, i);
        if (e->verb == SMTP_V_AUTH && e->txn >= 0 && (size_t)e->txn < s->nauth)
            s->auth[e->txn].unattributed = 1;
    }
    if (open <= 1 && s->auth_cur >= 0 && !s->auth[s->auth_cur].unattributed)
        sasl_client_line(s->auth[s->auth_cur].sasl, p, n);
    if (s->cfg.show_secrets || cancel)
        smtp_tl_add(s, SMTP_CLIENT, p, n, t_us, cut ? SMTP_TL_CUT : 0);
    else
        smtp_tl_add(s, SMTP_CLIENT, redacted, sizeof redacted - 1, t_us, 0);
    /* The next reply answers this line: time it from here. */
    if (s->qlen && smtp_q_at(s, 0)->verb == SMTP_V_AUTH)
        smtp_q_at(s, 0)->t_us = t_us;
}

/* "AUTH PLAIN <redacted>": the mechanism stays, an initial response does not. */
static void
smtp_tl_auth(struct smtp_session *s, const uint8_t *p, size_t n, size_t vl, int64_t t_us)
{
    static const uint8_t tail[] = " <redacted>";
    uint8_t line[128];
    const uint8_t *a = p + vl;
    size_t an = n - vl;

    smtp_trim(&a, &an);
    size_t ml = smtp_token(a, an);
    if (vl + 1 + ml + sizeof tail > sizeof line)
        ml = sizeof line - sizeof tail - vl - 1;
    size_t o = 0;
    memcpy(line, p, vl);
    o += vl;
    if (ml) {
        line[o++] = ' ';
        memcpy(line + o, a, ml);
        o += ml;
    }
    if (an > smtp_token(a, an)) {
        memcpy(line + o, tail, sizeof tail - 1);
        o += sizeof tail - 1;
    }
    smtp_tl_add(s, SMTP_CLIENT, line, o, t_us, 0);
}

/* RFC 4954 4: a SASL response is base64 (or "*"); blanks around it are taken as sasl takes
 * them. */
static int
smtp_b64_line(const uint8_t *p, size_t n)
{
    smtp_trim(&p, &n);
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || smtp_is_digit(c) || c == '+' ||
              c == '/' || c == '='))
            return 0;
    }
    return 1;
}

/* While an AUTH exchange is open, a line that no SASL response can be (a known verb with
 * text outside base64 after it, "MAIL FROM:<...>") shows the final reply was lost, or never
 * sent: the exchange is over for the client, and the line is a command. */
static int
smtp_ends_auth(const uint8_t *p, size_t n, enum smtp_verb v)
{
    return v != SMTP_V_UNKNOWN && !smtp_b64_line(p, n) && n > smtp_token(p, n);
}

/* Mid-stream, client lines before the first command are taken to be the tail of a message
 * (the capture began inside DATA): read as message data, so its final "." is found and the
 * server's reply to it pairs with the end of data, not with a line of the message. */
static int
smtp_ms_body_tail(struct smtp_session *s, enum smtp_verb v, const uint8_t *p, size_t n,
                  int64_t t_us)
{
    s->ms_unsynced = 0;
    if (v != SMTP_V_UNKNOWN)
        return 0;
    /* A transaction of its own (its envelope is not in the capture), so the reply to its
     * end is read as the message's fate. */
    long ti = smtp_txn_new(s, t_us);
    struct smtp_txn *t = smtp_txn_at(s, ti);
    if (t) {
        t->has_data = 1;
        t->data_verb = SMTP_V_DATA;
    }
    imf_destroy(s->orphan);
    s->orphan = NULL;
    s->body = smtp_body_parser(s, ti);
    s->body_txn = ti;
    s->cur = ti;
    s->body_bytes = 0;
    s->d[SMTP_CLIENT].mode = SMTP_M_BODY;
    /* The line's bytes again as message data (its line end was taken off). */
    s->c_reread = 1;
    size_t k = smtp_body_bytes(s, p, n, t_us);
    if (k == n && s->d[SMTP_CLIENT].mode == SMTP_M_BODY)
        smtp_body_bytes(s, (const uint8_t *)"\r\n", 2, t_us);
    s->c_reread = 0;
    return 1;
}

void
smtp_client_line(struct smtp_session *s, const uint8_t *p, size_t n, int cut, int64_t t_us)
{
    static const uint8_t redacted[] = "<redacted>";
    size_t vl = smtp_token(p, n);
    enum smtp_verb v = smtp_cmd_lookup(p, vl);

    int began_secret = s->auth_line_secret;
    s->auth_line_secret = 0;
    if ((s->auth_secret || began_secret) && !smtp_ends_auth(p, n, v)) {
        smtp_auth_continuation(s, p, n, cut, t_us);
        return;
    }
    s->auth_secret = 0;
    if (v != SMTP_V_UNKNOWN)
        s->auth_tail = 0;
    if (s->ms_unsynced && smtp_ms_body_tail(s, v, p, n, t_us))
        return;
    if (v == SMTP_V_AUTH && !s->cfg.show_secrets)
        smtp_tl_auth(s, p, n, vl, t_us);
    else if (s->auth_tail && !s->cfg.show_secrets)
        smtp_tl_add(s, SMTP_CLIENT, redacted, sizeof redacted - 1, t_us, 0);
    else
        smtp_tl_add(s, SMTP_CLIENT, p, n, t_us, cut ? SMTP_TL_CUT : 0);
    if (s->auth_tail && !s->d[SMTP_CLIENT].tls)
        s->auth_tail_lines++;
    s->cmd_count[v]++;
    s->cmd_total++;
    /* RFC 2920 3.1: only a server that advertised PIPELINING lets the client send a
     * command before the previous reply came. */
    if (smtp_q_outstanding(s)) {
        s->pipelined = 1;
        if (s->ehlo.valid && !s->ehlo_stale && !s->ehlo.pipelining)
            s->pipelining_violations++;
    }
    smtp_verbs[v].cmd(s, v, p + vl, n - vl, t_us);
}

/* ---- end of a message (DATA: RFC 5321 4.1.1.4; BDAT: RFC 3030 2) ---- */

/* The client's stream offset right after the end of the message just read (the bytes
 * missing from the capture included); -1 once its bytes are TLS, whose offsets are not the
 * dialogue's. */
static int64_t
smtp_client_off(const struct smtp_session *s)
{
    /* After a hole the model resynchronises at a line boundary: offsets past it are not
     * exact, so none is given. */
    const struct smtp_dirstate *c = &s->d[SMTP_CLIENT];
    return c->tls || c->gap_bytes || s->c_msg_end > (uint64_t)INT64_MAX ? -1
                                                                        : (int64_t)s->c_msg_end;
}

void
smtp_body_done(struct smtp_session *s, int64_t t_us)
{
    struct smtp_txn *t = smtp_txn_at(s, s->body_txn);

    s->d[SMTP_CLIENT].mode = SMTP_M_LINES;
    smtp_tl_bytes(s, "message", s->body_bytes, t_us, SMTP_TL_BODY);
    imf_finish(s->body);
    if (t) {
        t->sent = 1;
        t->sent_us = t_us;
        t->sent_off = smtp_client_off(s);
    }
    if (s->body && s->body == s->orphan) {
        imf_destroy(s->orphan);
        s->orphan = NULL;
    }
    s->body = NULL;
    /* The final reply answers the end of the data, so it is timed from here; unless the
     * server answered early, in the middle of the message. */
    if (!t || !t->data.code)
        smtp_q_push(s, SMTP_V_DATAEND, t_us, s->body_txn, -1, 0);
    s->body_txn = -1;
    s->cur = -1;
    s->ccur = -1;
    smtp_set_phase(s, SMTP_PH_DATA_SENT);
}

void
smtp_chunk_done(struct smtp_session *s, int64_t t_us)
{
    struct smtp_txn *t = smtp_txn_at(s, s->chunk_txn);

    s->d[SMTP_CLIENT].mode = SMTP_M_LINES;
    smtp_tl_bytes(s, "chunk", s->chunk_bytes, t_us, SMTP_TL_BODY);
    /* Queued once its data is through: the reply can only come after the chunk. */
    smtp_q_push(s, SMTP_V_BDAT, t_us, s->chunk_txn, -1, s->chunk_last);
    if (s->chunk_last) {
        imf_complete(s->body);
        imf_finish(s->body);
        if (t) {
            t->sent = 1;
            t->sent_us = t_us;
            t->sent_off = smtp_client_off(s);
        }
        if (s->body && s->body == s->orphan) {
            imf_destroy(s->orphan);
            s->orphan = NULL;
        }
        /* The server's transaction ends with its reply to this chunk (smtp_on_bdat): with
         * pipelining, the replies to the MAIL and RCPTs before it may not have come yet. */
        s->ccur = -1;
        smtp_set_phase(s, SMTP_PH_DATA_SENT);
    }
    s->body = NULL;
    s->chunk_txn = -1;
    s->chunk_last = 0;
}

/* ---- server replies (RFC 5321 4.2) ---- */

static void smtp_ehlo_line(struct smtp_session *s, size_t idx, const uint8_t *p, size_t n);
static void smtp_on_greeting(struct smtp_session *s);
static void smtp_data_final(struct smtp_session *s, struct smtp_txn *t);
static void smtp_message_over(struct smtp_session *s, const struct smtp_txn *t);

static int
smtp_is_error(int code)
{
    return code >= 400 && code < 600;
}

/* Copies the reply being read into a record kept for the report. */
static void
smtp_rec_set(struct smtp_session *s, struct smtp_reply_rec *rec)
{
    rec->code = s->r.code;
    memcpy(rec->enhanced, s->r.enhanced, sizeof rec->enhanced);
    smtp_str_set(s, &rec->text, s->r.text.data, s->r.text.len, SMTP_MAX_TEXT);
}

static void
smtp_error_add(struct smtp_session *s, int has_cmd, enum smtp_verb v)
{
    if (!smtp_is_error(s->r.code))
        return;
    if (s->nerr >= SMTP_MAX_ERRORS) {
        s->err_dropped++;
        return;
    }
    if (s->nerr == s->aerr) {
        size_t na = s->aerr ? s->aerr * 2 : 4;
        if (na > SMTP_MAX_ERRORS)
            na = SMTP_MAX_ERRORS;
        struct smtp_error *grown = mem_realloc(s->err, na * sizeof *grown);
        if (!grown) {
            s->err_dropped++;
            return;
        }
        s->err = grown;
        s->aerr = na;
    }
    struct smtp_error *e = &s->err[s->nerr++];
    memset(e, 0, sizeof *e);
    e->verb = v;
    e->has_cmd = has_cmd;
    e->code = s->r.code;
    memcpy(e->enhanced, s->r.enhanced, sizeof e->enhanced);
    e->t_us = s->r.t_us;
    smtp_str_set(s, &e->text, s->r.text.data, s->r.text.len, SMTP_MAX_TEXT);
}

/* Kept for the report: the rules tell an idle timeout or a split message by them. */
static void
smtp_unsolicited_add(struct smtp_session *s)
{
    if (s->nunsol == s->aunsol) {
        size_t na = s->aunsol ? s->aunsol * 2 : 2;
        if (na > SMTP_MAX_UNSOLICITED)
            na = SMTP_MAX_UNSOLICITED;
        struct smtp_unsolicited *grown =
            na > s->aunsol ? mem_realloc(s->unsol, na * sizeof *grown) : NULL;
        if (!grown) {
            s->unsol_dropped++;
            return;
        }
        s->unsol = grown;
        s->aunsol = na;
    }
    struct smtp_unsolicited *u = &s->unsol[s->nunsol++];
    memset(u, 0, sizeof *u);
    smtp_rec_set(s, &u->rec);
    u->t_us = s->r.t_us;
}

/* Mid-stream, a 220 or 554 before the client said anything is the greeting: the capture
 * began between the handshake and the banner. */
static int
smtp_ms_greeting(const struct smtp_session *s, int code)
{
    return (code == 220 || code == 554) && s->d[SMTP_CLIENT].bytes == 0;
}

static void
smtp_reply_begin(struct smtp_session *s, int code, const uint8_t *text, size_t tn, int64_t t_us,
                 struct smtp_tline *tl)
{
    struct smtp_reply *r = &s->r;
    size_t el = enhanced_len(code, text, tn);

    r->open = 1;
    r->code = code;
    r->t_us = t_us;
    r->lines = 0;
    r->paired = 0;
    r->early = 0;
    r->greeting = 0;
    r->verb = SMTP_V_UNKNOWN;
    memset(r->enhanced, 0, sizeof r->enhanced);
    if (el && el < sizeof r->enhanced)
        memcpy(r->enhanced, text, el);
    buf_reset(&r->text);
    buf_reset(&r->first);
    if (!s->banner_seen && (!s->midstream || smtp_ms_greeting(s, code))) {
        /* RFC 5321 3.1: the first reply is the greeting, even if the client spoke early. */
        r->greeting = 1;
    } else if (s->qskip) {
        r->verb = SMTP_V_DROPPED;
    } else if (s->qlen) {
        const struct smtp_inflight *e = smtp_q_at(s, 0);
        r->paired = 1;
        r->verb = e->verb;
        if (tl) {
            tl->flags |= SMTP_TL_LATENCY;
            tl->latency_us = t_us - e->t_us;
        }
        if (e->verb == SMTP_V_EHLO || e->verb == SMTP_V_LHLO)
            smtp_ehlo_free(s, &s->staging);
    } else if (s->d[SMTP_CLIENT].mode == SMTP_M_BODY && smtp_txn_at(s, s->body_txn) &&
               !smtp_txn_at(s, s->body_txn)->data.code) {
        /* A server that gives up during the message (421 timeout, 552 too big) answers
         * before the end of data: that is the message's final reply. */
        r->verb = SMTP_V_DATAEND;
        r->early = 1;
        r->txn = s->body_txn;
    }
}

static void
smtp_reply_line(struct smtp_session *s, const uint8_t *text, size_t tn)
{
    struct smtp_reply *r = &s->r;
    const uint8_t *t = text;
    size_t n = tn;

    if (r->lines == 0) {
        smtp_buf_add(s, &r->first, t, n);
    } else {
        /* Continuation lines usually repeat the enhanced code: join the text without it. */
        size_t el = enhanced_len(r->code, t, n);
        if (el && el == strlen(r->enhanced) && memcmp(t, r->enhanced, el) == 0) {
            t += el;
            n -= el;
            smtp_trim(&t, &n);
        }
        if (n && r->text.len)
            smtp_buf_add(s, &r->text, (const uint8_t *)" ", 1);
    }
    smtp_buf_add(s, &r->text, t, n);
    if (r->paired && (r->verb == SMTP_V_EHLO || r->verb == SMTP_V_LHLO) && r->code / 100 == 2)
        smtp_ehlo_line(s, r->lines, text, tn);
    r->lines++;
}

/* A reply to a command, counted as Postfix counts it: once the command is done (not at an
 * AUTH 334 or a DATA 354), accepted when 2xx. DATA is done with the reply to the message. */
static void
smtp_count_reply(struct smtp_session *s, enum smtp_verb v, int code)
{
    if ((v == SMTP_V_AUTH && code == 334) || (v == SMTP_V_DATA && code == 354))
        return;
    if (v == SMTP_V_DATAEND)
        v = SMTP_V_DATA;
    if (v >= SMTP_V_DATAEND)
        return;
    s->cmd_done[v]++;
    if (code / 100 == 2)
        s->cmd_ok[v]++;
}

static void
smtp_reply_done(struct smtp_session *s, int64_t t_us)
{
    struct smtp_reply *r = &s->r;

    r->open = 0;
    if (r->greeting) {
        smtp_on_greeting(s);
        return;
    }
    if (r->verb == SMTP_V_DROPPED) {
        s->qskip--;
        s->qdropped--;
        smtp_error_add(s, 0, r->verb);
        return;
    }
    if (r->early) {
        struct smtp_txn *t = smtp_txn_at(s, r->txn);
        smtp_count_reply(s, SMTP_V_DATAEND, r->code);
        smtp_error_add(s, 1, r->verb);
        if (!t)
            return;
        smtp_data_final(s, t);
        smtp_message_over(s, t);
        /* Accepted: the server took an end of data other than CRLF.CRLF (imf records the
         * form as smuggling evidence) and the client meant it too, so what the client
         * sends from here is commands. A refusal leaves the rest of the message data. */
        if (r->code / 100 == 2 && s->d[SMTP_CLIENT].mode == SMTP_M_BODY && s->body_txn == r->txn) {
            /* The end of this message is not on the wire: no offset to prove anything by. */
            s->c_msg_end = UINT64_MAX;
            smtp_body_done(s, s->d[SMTP_CLIENT].last_us);
            t->reply_us = r->t_us;
            if (s->phase == SMTP_PH_DATA_SENT)
                smtp_set_phase(s, SMTP_PH_HELO);
        }
        return;
    }
    if (!r->paired) {
        /* RFC 5321 3.8: a 421 may come at any time; anything else is out of step. */
        s->replies_without_command++;
        smtp_error_add(s, 0, r->verb);
        smtp_unsolicited_add(s);
        return;
    }
    struct smtp_inflight e = *smtp_q_at(s, 0);
    s->reply_us = r->t_us;
    /* RFC 4954 4: a 334 asks for another line; the AUTH command is still in flight. */
    if (!(e.verb == SMTP_V_AUTH && r->code == 334))
        smtp_q_pop(s);
    smtp_count_reply(s, e.verb, r->code);
    int64_t ms = r->t_us - e.t_us;
    if (!s->slow_set || ms > s->slow_us) {
        s->slow_set = 1;
        s->slow_us = ms;
        s->slow_verb = e.verb;
        s->slow_t_us = e.t_us;
    }
    smtp_error_add(s, 1, e.verb);
    if (smtp_verbs[e.verb].on_reply)
        smtp_verbs[e.verb].on_reply(s, &e, t_us);
}

void
smtp_server_line(struct smtp_session *s, const uint8_t *p, size_t n, int cut, int64_t t_us)
{
    struct smtp_tline *tl = smtp_tl_add(s, SMTP_SERVER, p, n, t_us, cut ? SMTP_TL_CUT : 0);
    int valid = n >= 3 && p[0] >= '1' && p[0] <= '5' && smtp_is_digit(p[1]) &&
                smtp_is_digit(p[2]) && (n == 3 || p[3] == ' ' || p[3] == '-');
    const uint8_t *text = n > 4 ? p + 4 : p + n;
    size_t tn = n > 4 ? n - 4 : 0;
    int more = valid && n > 3 && p[3] == '-';

    if (!valid) {
        /* Not a reply line: inside a multi-line reply it is taken as one more line of it,
         * elsewhere it stays in the transcript only. */
        if (!s->r.open)
            return;
        text = p;
        tn = n;
        more = 1;
    }
    if (!s->r.open) {
        int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        smtp_reply_begin(s, code, text, tn, t_us, tl);
    }
    smtp_reply_line(s, text, tn);
    if (!more)
        smtp_reply_done(s, t_us);
}

/* ---- EHLO reply (RFC 5321 4.1.1.1); the server software is read in smtp_mta.c ---- */

/* A line masked by a middlebox's SMTP inspection ("XXXXXXXA"): mostly 'X'. */
static int
smtp_masked(const uint8_t *p, size_t n)
{
    size_t x = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] == 'X')
            x++;
    return n >= 4 && x >= 3 && x * 4 >= n * 3;
}

static void
smtp_ehlo_mechs(struct smtp_session *s, struct smtp_ehlo *e, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (smtp_is_space(p[i]) || p[i] == '='))
            i++;
        size_t start = i;
        while (i < n && !smtp_is_space(p[i]))
            i++;
        if (i == start)
            break;
        size_t ml = i - start, k;
        for (k = 0; k < e->nmech; k++) {
            size_t j = 0;
            if (e->mech[k].n != ml)
                continue;
            while (j < ml && smtp_upper(p[start + j]) == smtp_upper(e->mech[k].p[j]))
                j++;
            if (j == ml)
                break;
        }
        struct smtp_str *slot =
            k == e->nmech ? smtp_str_slot(&e->mech, &e->amech, e->nmech, SMTP_MAX_MECHS) : NULL;
        if (slot && smtp_str_set(s, slot, p + start, ml, SMTP_MAX_PARAM) == 0) {
            for (size_t j = 0; j < e->mech[e->nmech].n; j++)
                e->mech[e->nmech].p[j] = smtp_upper(e->mech[e->nmech].p[j]);
            e->nmech++;
        }
    }
}

static void
smtp_ehlo_line(struct smtp_session *s, size_t idx, const uint8_t *p, size_t n)
{
    struct smtp_ehlo *e = &s->staging;
    size_t kl = 0;

    if (idx == 0) {
        smtp_str_set(s, &e->greeting, p, n, SMTP_MAX_TEXT);
        return;
    }
    struct smtp_str *slot = smtp_str_slot(&e->ext, &e->aext, e->next, SMTP_MAX_EXT);
    if (slot) {
        smtp_str_set(s, slot, p, n, SMTP_MAX_TEXT);
        e->next++;
    } else {
        e->ext_dropped++;
    }
    struct smtp_str *mslot =
        smtp_masked(p, n) ? smtp_str_slot(&e->masked, &e->amasked, e->nmasked, SMTP_MAX_MASKED)
                          : NULL;
    if (mslot && smtp_str_set(s, mslot, p, n, SMTP_MAX_TEXT) == 0)
        e->nmasked++;
    while (kl < n && !smtp_is_space(p[kl]) && p[kl] != '=')
        kl++;
    const uint8_t *arg = p + kl;
    size_t al = n - kl;
    if (smtp_word_eq(p, kl, "PIPELINING"))
        e->pipelining = 1;
    else if (smtp_word_eq(p, kl, "CHUNKING"))
        e->chunking = 1;
    else if (smtp_word_eq(p, kl, "STARTTLS"))
        e->starttls = 1;
    else if (smtp_word_eq(p, kl, "8BITMIME"))
        e->eightbit = 1;
    else if (smtp_word_eq(p, kl, "SMTPUTF8"))
        e->smtputf8 = 1;
    else if (smtp_word_eq(p, kl, "DSN"))
        e->dsn = 1;
    else if (smtp_word_eq(p, kl, "ENHANCEDSTATUSCODES"))
        e->enhanced = 1;
    else if (smtp_word_eq(p, kl, "AUTH")) /* also the pre-RFC "AUTH=LOGIN PLAIN" form */
        smtp_ehlo_mechs(s, e, arg, al);
    else if (smtp_word_eq(p, kl, "SIZE")) {
        /* RFC 1870 4: "SIZE" alone or with the fixed maximum. */
        smtp_trim(&arg, &al);
        e->has_size = smtp_parse_u64(arg, smtp_token(arg, al), &e->size) == 0;
    }
}

static void
smtp_on_greeting(struct smtp_session *s)
{
    struct smtp_reply *r = &s->r;
    s->banner_seen = 1;
    s->banner_code = r->code;
    smtp_str_set(s, &s->banner_text, r->first.data, r->first.len, SMTP_MAX_TEXT);
    s->banner_lines = r->lines;
    s->banner_us = r->t_us;
    if (s->phase == SMTP_PH_CONNECT)
        smtp_set_phase(s, SMTP_PH_BANNER);
    smtp_detect_software(s, r->first.data, r->first.len, "banner");
}

static void
smtp_on_helo(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    (void)t_us;
    s->helo_code = s->r.code;
    /* RFC 5321 4.1.4: only an accepted EHLO/HELO resets the transaction. */
    if (s->r.code / 100 == 2)
        smtp_txn_end(s, SMTP_END_HELO);
    if ((e->verb == SMTP_V_EHLO || e->verb == SMTP_V_LHLO) && s->r.code / 100 == 2) {
        smtp_ehlo_free(s, &s->ehlo);
        s->ehlo = s->staging;
        memset(&s->staging, 0, sizeof s->staging);
        s->ehlo.valid = 1;
        s->ehlo.decrypted = s->d[SMTP_SERVER].tls;
        s->ehlo_stale = 0;
        smtp_detect_software(s, s->ehlo.greeting.p, s->ehlo.greeting.n, "ehlo");
    }
}

/* ---- what each reply means for the command it answers ---- */

static void
smtp_on_mail(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    struct smtp_txn *t = smtp_txn_at(s, e->txn);
    (void)t_us;
    if (s->r.code / 100 == 2) {
        /* The server's transaction is this one now. A server that accepts MAIL while its
         * own transaction is open (RFC 5321 4.1.4 says 503) has dropped that one. */
        if (s->cur != e->txn)
            smtp_txn_end(s, SMTP_END_MAIL);
        s->cur = t ? e->txn : -1;
        s->cur_unkept = !t;
    }
    if (!t)
        return;
    smtp_rec_set(s, &t->mail);
    if (s->r.code / 100 == 2) {
        t->mail_accepted = 1;
        t->authenticated = s->authenticated;
    } else {
        if (smtp_is_error(s->r.code))
            t->fail_code = s->r.code;
        /* Refused: this transaction never existed for the server, even if the client sent
         * its message already (pipelined BDAT). */
        if (t->ended_by == SMTP_END_OPEN)
            t->ended_by = SMTP_END_MAIL_REJECTED;
    }
}

/* Moves recipient ridx of from into to (the server's open transaction, where the server
 * accepted it); returns its index there, -1 when it is not kept. */
static long
smtp_rcpt_move(struct smtp_session *s, struct smtp_txn *from, long ridx, struct smtp_txn *to)
{
    from->rcpt_count--;
    long nidx = smtp_rcpt_new(s, to);
    if (ridx < 0 || (size_t)ridx >= from->nrcpt)
        return -1;
    struct smtp_rcpt *r = &from->rcpt[ridx];
    r->moved = 1;
    if (nidx < 0) {
        smtp_str_release(s, &r->to);
        for (int k = 0; k < SMTP_RP_COUNT; k++)
            smtp_str_release(s, &r->param[k]);
        return -1;
    }
    to->rcpt[nidx] = *r;
    to->rcpt[nidx].moved = 0;
    memset(&r->to, 0, sizeof r->to);
    memset(r->param, 0, sizeof r->param);
    return nidx;
}

static void
smtp_on_rcpt(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    struct smtp_txn *t = smtp_txn_at(s, e->txn);
    struct smtp_txn *open = smtp_txn_at(s, s->cur);
    long ridx = e->rcpt;
    (void)t_us;
    /* Accepted while the client's MAIL was refused and the server's own transaction is
     * open: the server added the recipient to that one. */
    if (s->r.code / 100 == 2 && t && !t->mail_accepted && open && open != t &&
        smtp_txn_open(open)) {
        ridx = smtp_rcpt_move(s, t, ridx, open);
        t = open;
    }
    if (!t)
        return;
    if (s->r.code / 100 == 2)
        t->rcpt_accepted++;
    else if (smtp_is_error(s->r.code))
        t->fail_code = s->r.code;
    if (ridx >= 0 && (size_t)ridx < t->nrcpt)
        smtp_rec_set(s, &t->rcpt[ridx].reply);
}

/* The final reply of a message: DATA refused, the reply after the end of data, or BDAT. */
static void
smtp_data_final(struct smtp_session *s, struct smtp_txn *t)
{
    smtp_rec_set(s, &t->data);
    if (t->sent)
        t->reply_us = s->r.t_us;
    if (smtp_is_error(s->r.code))
        t->fail_code = s->r.code;
    if (t->ended_by == SMTP_END_OPEN)
        t->ended_by =
            smtp_is_error(s->r.code) && t->rcpt_accepted == 0 ? SMTP_END_NO_RCPT : SMTP_END_DATA;
    /* An early reply leaves the message still being read: its end must still be found. */
    if (t->imf != s->body)
        imf_finish(t->imf);
}

/* The transaction a message goes into once the server answered DATA with 354: its open
 * one. A server that takes a message with no accepted MAIL FROM, or no accepted RCPT TO,
 * breaks RFC 5321 4.1.1.4 (503/554 are due); the message is real all the same, so it gets
 * a transaction marked as having no accepted envelope. -1: none is kept. */
static long
smtp_data_target(struct smtp_session *s)
{
    struct smtp_txn *open = smtp_txn_at(s, s->cur);
    long idx = s->cur;

    if (s->cur_unkept)
        return -1;
    if (!smtp_txn_open(open)) {
        idx = smtp_txn_new(s, s->r.t_us);
        open = smtp_txn_at(s, idx);
        s->cur = idx;
    }
    if (open && (!open->mail_accepted || !open->rcpt_accepted)) {
        open->no_envelope = 1;
        s->data_without_envelope++;
    }
    return idx;
}

static void
smtp_on_data(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    struct smtp_txn *t = smtp_txn_at(s, e->txn);
    struct smtp_dirstate *c = &s->d[SMTP_CLIENT];
    (void)t_us;

    if (s->r.code == 354) {
        long idx = smtp_data_target(s);
        t = smtp_txn_at(s, idx);
        /* RFC 5321 4.1.1.4: the message follows. A transaction that already has a parser
         * (BDAT mixed with DATA) gets a fresh orphan one, so its end is still found. */
        if (t && !t->imf) {
            s->body = smtp_body_parser(s, idx);
        } else {
            imf_destroy(s->orphan);
            s->orphan = NULL;
            s->body = smtp_body_parser(s, -1);
        }
        s->body_txn = t ? idx : -1;
        if (t) {
            if (!t->has_data) {
                t->has_data = 1;
                t->data_verb = SMTP_V_DATA;
            }
            t->code_354 = 354;
        }
        s->body_bytes = 0;
        if (c->mode == SMTP_M_HOLD && s->hold_verb == SMTP_V_DATA) {
            smtp_hold_release(s, SMTP_M_BODY, 0);
        } else if (c->mode == SMTP_M_LINES) {
            smtp_lines_gap(c);
            c->skip = 0;
            c->mode = SMTP_M_BODY;
        }
        return;
    }
    if (t) {
        if (!t->has_data) {
            t->has_data = 1;
            t->data_verb = SMTP_V_DATA;
        }
        smtp_data_final(s, t);
    }
    if (c->mode == SMTP_M_HOLD && s->hold_verb == SMTP_V_DATA)
        smtp_hold_release(s, SMTP_M_LINES, 0);
    if (s->phase == SMTP_PH_DATA)
        smtp_set_phase(s, SMTP_PH_HELO);
}

/* RFC 5321 4.1.1.4: the reply to a message ends the server's transaction, whatever it says. */
static void
smtp_message_over(struct smtp_session *s, const struct smtp_txn *t)
{
    if (t && smtp_txn_at(s, s->cur) == t)
        s->cur = -1;
}

/* A message the client framed (BDAT) for the transaction of a MAIL that the server then
 * refused, taken by the server into its open one: the message is that one's. */
static struct smtp_txn *
smtp_txn_adopt(struct smtp_session *s, struct smtp_txn *from)
{
    struct smtp_txn *to = smtp_txn_at(s, s->cur);
    if (!from || from->mail_accepted || !to || to == from || !smtp_txn_open(to) || to->has_data)
        return from;
    to->has_data = from->has_data;
    to->data_verb = from->data_verb;
    to->chunks = from->chunks;
    to->sent = from->sent;
    to->sent_us = from->sent_us;
    to->imf = from->imf;
    from->imf = NULL;
    from->has_data = 0;
    from->chunks = 0;
    from->sent = 0;
    return to;
}

static void
smtp_on_dataend(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    struct smtp_txn *t = smtp_txn_at(s, e->txn);
    (void)t_us;
    if (t)
        smtp_data_final(s, t);
    smtp_message_over(s, t);
    if (s->phase == SMTP_PH_DATA_SENT)
        smtp_set_phase(s, SMTP_PH_HELO);
}

static void
smtp_on_bdat(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    struct smtp_txn *t = smtp_txn_at(s, e->txn);
    (void)t_us;
    if (e->malformed)
        return;
    if (s->r.code / 100 == 2)
        t = smtp_txn_adopt(s, t);
    /* A last chunk the server queued with no accepted envelope: the message is real. */
    if (e->last && s->r.code / 100 == 2 && (!t || !t->mail_accepted || !t->rcpt_accepted)) {
        if (!t && !s->cur_unkept)
            t = smtp_txn_at(s, smtp_txn_new(s, s->r.t_us));
        if (t && !t->no_envelope) {
            t->no_envelope = 1;
            s->data_without_envelope++;
            if (!t->has_data) {
                t->has_data = 1;
                t->data_verb = SMTP_V_BDAT;
            }
        }
    }
    if (t) {
        if (e->last) {
            smtp_data_final(s, t);
        } else if (smtp_is_error(s->r.code)) {
            /* RFC 3030 2: a failed chunk is discarded; the transaction waits for RSET. */
            smtp_rec_set(s, &t->data);
            t->fail_code = s->r.code;
        }
    }
    if (e->last)
        smtp_message_over(s, t);
    if (e->last && s->phase == SMTP_PH_DATA_SENT)
        smtp_set_phase(s, SMTP_PH_HELO);
}

static void
smtp_on_rset(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    (void)e;
    (void)t_us;
    if (s->r.code / 100 == 2)
        smtp_txn_end(s, SMTP_END_RSET);
}

static void
smtp_on_quit(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    (void)e;
    (void)t_us;
    s->quit_replied = 1;
}

/* RFC 3207 4.2: after 220 both sides start the TLS handshake; nothing after it is SMTP
 * in clear. The dialogue read from here on is what decryption yields (smtp_plain). */
static void
smtp_tls_begin(struct smtp_session *s)
{
    struct smtp_dirstate *c = &s->d[SMTP_CLIENT], *v = &s->d[SMTP_SERVER];

    s->tls = tls_create(0);
    if (!s->tls)
        s->nomem = 1;
    else if (s->cfg.keylog) {
        tls_set_keylog(s->tls, s->cfg.keylog, smtp_plain, s);
        tls_set_keylog_refresh(s->tls, s->cfg.keylog_refresh, s->cfg.keylog_refresh_arg);
    }
    s->tls_active = 1;
    s->tls_sniff = 1;
    s->tls_before_txn = s->ntxn == 0 && s->txn_dropped == 0;
    s->auth_secret = 0;
    v->tls = 1;
    smtp_lines_gap(v);
    v->skip = 0;
    smtp_set_phase(s, SMTP_PH_TLS);
    c->tls = 1;
    if (c->mode == SMTP_M_HOLD) {
        smtp_hold_release(s, SMTP_M_LINES, 1);
    } else {
        smtp_lines_gap(c);
        c->skip = 0;
        c->mode = SMTP_M_LINES;
    }
}

/* STARTTLS accepted inside the decrypted TLS: a second layer, whose records are not read
 * as SMTP. (RFC 3207 4.2: a server no longer offers STARTTLS once TLS is up, and refuses it.) */
static void
smtp_tls_nested(struct smtp_session *s)
{
    struct smtp_dirstate *c = &s->d[SMTP_CLIENT];

    s->d[SMTP_SERVER].mode = SMTP_M_TLS;
    s->auth_secret = 0;
    if (c->mode == SMTP_M_HOLD) {
        smtp_hold_release(s, SMTP_M_TLS, 0);
    } else {
        smtp_lines_gap(c);
        c->skip = 0;
        c->mode = SMTP_M_TLS;
    }
    smtp_set_phase(s, SMTP_PH_TLS);
}

static void
smtp_on_starttls(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    (void)e;
    (void)t_us;
    if (s->tls_active) {
        /* The "tls" section describes the STARTTLS that opened TLS, not this one. */
        if (s->r.code == 220)
            smtp_tls_nested(s);
        else if (s->d[SMTP_CLIENT].mode == SMTP_M_HOLD && s->hold_verb == SMTP_V_STARTTLS)
            smtp_hold_release(s, SMTP_M_LINES, 0);
        return;
    }
    s->tls_code = s->r.code;
    smtp_str_set(s, &s->tls_text, s->r.text.data, s->r.text.len, SMTP_MAX_TEXT);
    if (s->r.code == 220) {
        s->tls_state = SMTP_TLS_ESTABLISHED;
        smtp_tls_begin(s);
        return;
    }
    s->tls_state = SMTP_TLS_REFUSED;
    if (s->d[SMTP_CLIENT].mode == SMTP_M_HOLD && s->hold_verb == SMTP_V_STARTTLS)
        smtp_hold_release(s, SMTP_M_LINES, 0);
}

static void
smtp_on_auth(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us)
{
    struct sasl *a = e->txn >= 0 && (size_t)e->txn < s->nauth ? s->auth[e->txn].sasl : NULL;
    (void)t_us;
    s->auth_cur = a ? e->txn : -1;
    if (s->r.code == 334) {
        sasl_challenge(a, s->r.first.data, s->r.first.len);
        return;
    }
    sasl_final(a, s->r.code, s->r.first.data, s->r.first.len);
    /* A pipelined AUTH behind this one has its own exchange still open: the client's next
     * lines are its. */
    s->auth_secret = 0;
    s->auth_cur = -1;
    for (size_t i = 0; i < s->qlen && !s->auth_secret; i++)
        if (smtp_q_at(s, i)->verb == SMTP_V_AUTH) {
            s->auth_secret = 1;
            s->auth_cur = smtp_q_at(s, i)->txn;
        }
    /* RFC 4954 6: 235 means the client is now authenticated. */
    if (s->r.code / 100 == 2)
        s->authenticated = 1;
    if (s->phase == SMTP_PH_AUTH)
        smtp_set_phase(s, SMTP_PH_HELO);
}

#define SMTP_PF_UNK SMTP_VF_POSTFIX_UNKNOWN
const struct smtp_verb_info smtp_verbs[SMTP_V_COUNT] = {
    [SMTP_V_EHLO] = {"EHLO", smtp_cmd_helo, smtp_on_helo, "ehlo", 0},
    [SMTP_V_HELO] = {"HELO", smtp_cmd_helo, smtp_on_helo, "helo", 0},
    [SMTP_V_LHLO] = {"LHLO", smtp_cmd_helo, smtp_on_helo, "lhlo", SMTP_PF_UNK},
    [SMTP_V_MAIL] = {"MAIL", smtp_cmd_mail, smtp_on_mail, "mail", 0},
    [SMTP_V_RCPT] = {"RCPT", smtp_cmd_rcpt, smtp_on_rcpt, "rcpt", 0},
    [SMTP_V_DATA] = {"DATA", smtp_cmd_data, smtp_on_data, "data", 0},
    [SMTP_V_BDAT] = {"BDAT", smtp_cmd_bdat, smtp_on_bdat, "bdat", 0},
    [SMTP_V_RSET] = {"RSET", smtp_cmd_rset, smtp_on_rset, "rset", 0},
    [SMTP_V_NOOP] = {"NOOP", smtp_cmd_other, NULL, "noop", 0},
    [SMTP_V_VRFY] = {"VRFY", smtp_cmd_other, NULL, "vrfy", 0},
    [SMTP_V_EXPN] = {"EXPN", smtp_cmd_other, NULL, "expn", SMTP_PF_UNK},
    [SMTP_V_HELP] = {"HELP", smtp_cmd_other, NULL, "help", SMTP_PF_UNK},
    [SMTP_V_QUIT] = {"QUIT", smtp_cmd_quit, smtp_on_quit, "quit", 0},
    [SMTP_V_STARTTLS] = {"STARTTLS", smtp_cmd_starttls, smtp_on_starttls, "starttls", 0},
    [SMTP_V_AUTH] = {"AUTH", smtp_cmd_auth, smtp_on_auth, "auth", 0},
    [SMTP_V_XCLIENT] = {"XCLIENT", smtp_cmd_other, NULL, "xclient", 0},
    [SMTP_V_XFORWARD] = {"XFORWARD", smtp_cmd_other, NULL, "xforward", 0},
    [SMTP_V_ETRN] = {"ETRN", smtp_cmd_other, NULL, "etrn", 0},
    /* Any other word: counted, answered, and not understood. */
    [SMTP_V_UNKNOWN] = {"UNKNOWN", smtp_cmd_other, NULL, "unknown", SMTP_PF_UNK},
    [SMTP_V_DATAEND] = {"DATA-END", NULL, smtp_on_dataend, NULL, 0},
    [SMTP_V_DROPPED] = {"DROPPED", NULL, NULL, NULL, 0},
};
#undef SMTP_PF_UNK

/* ---- end of the connection ---- */

/* A partial line is worth a transcript entry when it holds more than white space. */
static int
smtp_worth(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!smtp_is_space(p[i]) && p[i] != '\r')
            return 1;
    return 0;
}

static void
smtp_flush_partial(struct smtp_session *s, int dir, int64_t t_us)
{
    static const uint8_t redacted[] = "<redacted>";
    struct smtp_dirstate *d = &s->d[dir];
    const uint8_t *p = d->line.data;
    size_t n = d->line.len;

    if (d->mode != SMTP_M_LINES || d->skip || !d->line_len)
        return;
    if (d->line_len > SMTP_TEXT_LINE_LIMIT)
        d->long_lines++;
    if (!smtp_worth(p, n))
        return;
    if (n > s->cfg.max_line)
        n = s->cfg.max_line;
    if (n && p[n - 1] == '\r')
        n--;
    int flags = SMTP_TL_INCOMPLETE | (d->line_len > s->cfg.max_line ? SMTP_TL_CUT : 0);
    /* Never parsed: a line without its end was not acted on by the peer either. */
    if (dir == SMTP_CLIENT && !s->cfg.show_secrets &&
        (s->auth_secret || d->secret ||
         (s->auth_tail && smtp_cmd_lookup(p, smtp_token(p, n)) == SMTP_V_UNKNOWN)))
        smtp_tl_add(s, dir, redacted, sizeof redacted - 1, t_us, SMTP_TL_INCOMPLETE);
    else
        smtp_tl_add(s, dir, p, n, t_us, flags);
}

/* The transcript in time order. Lines are added when the model reads them, which is later
 * than they were sent for bytes held until a reply said what they are, or delivered late by
 * reassembly; a stable sort keeps the order of lines with the same time. Nearly sorted, so
 * insertion sort. */
static void
smtp_tl_sort(struct smtp_session *s)
{
    for (size_t i = 1; i < s->ntl; i++) {
        struct smtp_tline l = s->tl[i];
        size_t j = i;
        while (j > 0 && s->tl[j - 1].t_us > l.t_us) {
            s->tl[j] = s->tl[j - 1];
            j--;
        }
        s->tl[j] = l;
    }
}

void
smtp_client_only(struct smtp_session *s)
{
    if (s)
        s->client_only = 1;
}

/* A capture of the client's side only holds no 354: what the client sent after DATA is read
 * as the message it meant to send (RFC 5321 4.1.1.4), in the client's transaction. Nothing
 * says the server took it: no code, and without_354 says how it was read. */
static void
smtp_client_only_body(struct smtp_session *s, int64_t t_us)
{
    long idx = smtp_client_txn(s);
    struct smtp_txn *t = smtp_txn_at(s, idx);
    if (t && t->imf)
        return; /* a message already began in it: nothing is guessed */
    imf_destroy(s->orphan);
    s->orphan = NULL;
    s->body = smtp_body_parser(s, t ? idx : -1);
    s->body_txn = t ? idx : -1;
    if (t) {
        t->has_data = 1;
        t->data_verb = SMTP_V_DATA;
        t->without_354 = 1;
    }
    s->body_bytes = 0;
    smtp_hold_release(s, SMTP_M_BODY, 0);
    (void)t_us;
}

void
smtp_finish(struct smtp_session *s, int64_t ts_us)
{
    if (!s || s->finished)
        return;
    struct smtp_dirstate *c = &s->d[SMTP_CLIENT];
    int64_t ct = c->last_us ? c->last_us : ts_us;

    if (s->client_only && c->mode == SMTP_M_HOLD && s->hold_verb == SMTP_V_DATA && s->hold.len &&
        !s->hold_head)
        smtp_client_only_body(s, ct);

    switch (c->mode) {
    case SMTP_M_HOLD:
        /* The reply that would say what these bytes are never came: not interpreted. */
        if (s->hold.len || s->hold_head || s->hold_tail)
            smtp_tl_bytes(s, "unanswered", s->hold.len + s->hold_head + s->hold_tail, ct,
                          SMTP_TL_INCOMPLETE);
        break;
    case SMTP_M_BODY:
        smtp_tl_bytes(s, "message", s->body_bytes, ct, SMTP_TL_BODY | SMTP_TL_INCOMPLETE);
        imf_finish(s->body);
        break;
    case SMTP_M_CHUNK:
        smtp_tl_bytes(s, "chunk", s->chunk_bytes, ct, SMTP_TL_BODY | SMTP_TL_INCOMPLETE);
        imf_finish(s->body);
        break;
    case SMTP_M_LINES:
    case SMTP_M_TLS:
    case SMTP_M_COUNT:
        break;
    }
    smtp_flush_partial(s, SMTP_CLIENT, ct);
    smtp_flush_partial(s, SMTP_SERVER,
                       s->d[SMTP_SERVER].last_us ? s->d[SMTP_SERVER].last_us : ts_us);
    /* A server waiting for the client's answer to its 334 fails the AUTH when the client
     * goes (Postfix counts it auth=0/1, "lost connection after AUTH"). */
    if (s->qlen && smtp_q_at(s, 0)->verb == SMTP_V_AUTH && smtp_q_at(s, 0)->txn >= 0 &&
        (size_t)smtp_q_at(s, 0)->txn < s->nauth && sasl_open(s->auth[smtp_q_at(s, 0)->txn].sasl))
        s->cmd_done[SMTP_V_AUTH]++;
    for (size_t i = 0; i < s->nauth; i++)
        sasl_incomplete(s->auth[i].sasl);
    for (size_t i = 0; i < s->ntxn; i++) {
        struct smtp_txn *t = s->txn[i];
        if (t->ended_by == SMTP_END_OPEN)
            t->ended_by = SMTP_END_CONNECTION;
        imf_finish(t->imf);
    }
    smtp_tl_sort(s);
    s->finished = 1;
}
