/* smtp.c - SMTP dialogue model from the two byte streams of one connection: RFC 5321
 * (commands 4.1, replies 4.2, line limits 4.5.3), RFC 2920 (PIPELINING), RFC 3030 (CHUNKING),
 * RFC 3207 (STARTTLS, 4.2: the dialogue starts over inside TLS), RFC 8314 3.3 (implicit TLS),
 * RFC 4954 (AUTH), RFC 3463 (enhanced status codes), RFC 1870 (SIZE), RFC 2033 (LHLO).
 * Message bodies go to imf, AUTH exchanges to sasl, TLS records to tls, whose plaintext (with
 * a key log) comes back here and is read like the dialogue in clear. */
#include "smtp.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "enhanced.h"
#include "imf.h"
#include "jsonx.h"
#include "jtree.h"
#include "mem.h"
#include "sasl.h"
#include "tls.h"

#define SMTP_DEFAULT_MAX_LINE 4096
#define SMTP_SKIP_UNLESS_LINE 2
#define SMTP_DEFAULT_MAX_INFLIGHT 1024
#define SMTP_DEFAULT_MAX_TRANSCRIPT 1000
#define SMTP_DEFAULT_MAX_TRANSACTIONS 1000
#define SMTP_DEFAULT_MAX_RCPTS 1000
/* Whatever the configuration says, one line never holds more than this. */
#define SMTP_MAX_LINE_CAP (1u << 20)
/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including the CRLF. */
#define SMTP_TEXT_LINE_LIMIT 1000
/* Reply text kept per reply (continuation lines joined), addresses and parameters. */
#define SMTP_MAX_TEXT 512
#define SMTP_MAX_ADDR 512
#define SMTP_MAX_PARAM 256
/* Client bytes held while DATA or STARTTLS waits for its reply (RFC 2920 3.1: the client
 * must wait, so only a misbehaving client or a lost reply fills this). */
#define SMTP_MAX_HOLD 65536
/* The largest BDAT chunk taken as one: no server accepts a 1 GiB chunk, and a larger size
 * on the wire is either hostile or garbage. */
#define SMTP_MAX_CHUNK ((uint64_t)1 << 30)
#define SMTP_MAX_EXT 64
#define SMTP_MAX_MECHS 32
#define SMTP_MAX_MASKED 16
#define SMTP_MAX_AUTH 16
#define SMTP_MAX_ERRORS 100
#define SMTP_MAX_PENDING 20
/* Replies that answer no command (smtp.unsolicited_replies): a handful tells the story. */
#define SMTP_MAX_UNSOLICITED 16
/* Bytes of strings kept for transactions and recipients: max_transactions times max_rcpts
 * would otherwise allow gigabytes per session. */
#define SMTP_MAX_KEPT (16u << 20)
#define SMTP_INITIAL_QUEUE 16

enum smtp_verb {
    SMTP_V_EHLO,
    SMTP_V_HELO,
    SMTP_V_LHLO,
    SMTP_V_MAIL,
    SMTP_V_RCPT,
    SMTP_V_DATA,
    SMTP_V_BDAT,
    SMTP_V_RSET,
    SMTP_V_NOOP,
    SMTP_V_VRFY,
    SMTP_V_EXPN,
    SMTP_V_HELP,
    SMTP_V_QUIT,
    SMTP_V_STARTTLS,
    SMTP_V_AUTH,
    SMTP_V_XCLIENT,
    SMTP_V_XFORWARD,
    SMTP_V_ETRN,
    SMTP_V_UNKNOWN,
    SMTP_V_DATAEND, /* pseudo: the end of a message sent after 354 */
    SMTP_V_DROPPED, /* pseudo: a command that did not fit the in-flight queue */
    SMTP_V_COUNT
};

enum smtp_phase {
    SMTP_PH_CONNECT,
    SMTP_PH_BANNER,
    SMTP_PH_HELO,
    SMTP_PH_AUTH,
    SMTP_PH_MAIL,
    SMTP_PH_RCPT,
    SMTP_PH_DATA,
    SMTP_PH_DATA_SENT,
    SMTP_PH_BDAT,
    SMTP_PH_QUIT,
    SMTP_PH_TLS,
    SMTP_PH_COUNT
};

static const char *const smtp_phase_names[SMTP_PH_COUNT] = {
    "connect", "banner", "helo", "auth", "mail", "rcpt", "data", "data_sent", "bdat", "quit", "tls",
};

/* How a direction's bytes are read right now. */
enum smtp_mode {
    SMTP_M_LINES, /* commands or replies */
    SMTP_M_HOLD,  /* client: DATA or STARTTLS sent, bytes held until the reply decides */
    SMTP_M_BODY,  /* client: message after 354, until CRLF.CRLF */
    SMTP_M_CHUNK, /* client: BDAT chunk bytes (RFC 3030 2: not lines) */
    SMTP_M_TLS,   /* TLS inside the decrypted TLS (STARTTLS accepted twice): not read */
    SMTP_M_COUNT
};

enum smtp_end {
    SMTP_END_OPEN,
    SMTP_END_DATA,
    SMTP_END_RSET,
    SMTP_END_HELO,
    SMTP_END_QUIT,
    SMTP_END_MAIL,
    SMTP_END_MAIL_REJECTED,
    SMTP_END_NO_RCPT,
    SMTP_END_CONNECTION,
    SMTP_END_COUNT
};

static const char *const smtp_end_names[SMTP_END_COUNT] = {
    "open", "data", "rset", "helo", "quit", "mail", "mail_rejected", "no_rcpt", "connection_end",
};

enum smtp_tls_state {
    SMTP_TLS_NONE,
    SMTP_TLS_REQUESTED,
    SMTP_TLS_REFUSED,
    SMTP_TLS_ESTABLISHED,
    SMTP_TLS_IMPLICIT,
    SMTP_TLS_NOT_STARTED, /* STARTTLS answered 220, then the dialogue went on in clear */
    SMTP_TLS_COUNT
};

/* MAIL and RCPT parameters reported (RFC 1870, 6152, 6531, 4954 5, 3461 4). */
enum smtp_mparam {
    SMTP_MP_SIZE,
    SMTP_MP_BODY,
    SMTP_MP_SMTPUTF8,
    SMTP_MP_AUTH,
    SMTP_MP_RET,
    SMTP_MP_ENVID,
    SMTP_MP_COUNT
};
static const char *const smtp_mparam_names[SMTP_MP_COUNT] = {"SIZE", "BODY", "SMTPUTF8",
                                                             "AUTH", "RET",  "ENVID"};
enum smtp_rparam { SMTP_RP_NOTIFY, SMTP_RP_ORCPT, SMTP_RP_COUNT };
static const char *const smtp_rparam_names[SMTP_RP_COUNT] = {"NOTIFY", "ORCPT"};

/* Owned bytes; p == NULL means absent (an empty string has p != NULL, n == 0). */
struct smtp_str {
    uint8_t *p;
    size_t n;
};

/* A reply as kept for the report; code 0 means none came. */
struct smtp_reply_rec {
    int code;
    char enhanced[16];
    struct smtp_str text;
};

struct smtp_rcpt {
    struct smtp_str to;
    struct smtp_str param[SMTP_RP_COUNT];
    struct smtp_reply_rec reply;
    int moved; /* accepted into another transaction (the server's open one): not reported here */
};

struct smtp_txn {
    int64_t t_us;
    struct smtp_str mail_from;
    struct smtp_str mparam[SMTP_MP_COUNT];
    struct smtp_reply_rec mail;
    int mail_accepted; /* the server answered MAIL with 2xx: this is its open transaction */
    int no_envelope;   /* the server took a message with no accepted MAIL FROM or RCPT TO */
    int authenticated;
    struct smtp_rcpt *rcpt;
    size_t nrcpt, arcpt;
    uint64_t rcpt_count, rcpt_accepted, rcpt_dropped;
    int has_data;
    enum smtp_verb data_verb;
    int code_354;
    int without_354; /* one-sided capture: read as the message with no 354 in the capture */
    uint64_t chunks;
    struct smtp_reply_rec data; /* the final reply to the message */
    int sent;                   /* end of data (or BDAT LAST's chunk) was sent */
    int64_t sent_us;
    /* The client's stream offset at the end of the segment that carried the end of data
     * (in clear only, -1 inside TLS): what the server must have acknowledged to have it. */
    int64_t sent_off;
    int64_t reply_us;
    struct imf *imf;
    enum smtp_end ended_by;
    int fail_code; /* last 4xx/5xx reply in this transaction */
    int decrypted; /* begun inside TLS */
};

/* One command awaiting its reply. dropped_after counts commands right behind it that did
 * not fit the queue: their replies are skipped in order, so pairing stays exact. */
struct smtp_inflight {
    int64_t t_us;
    long txn;  /* index into s->txn, -1 when not kept */
    long rcpt; /* index into that transaction's rcpt, -1 when not kept */
    uint64_t dropped_after;
    enum smtp_verb verb;
    int last;      /* BDAT ... LAST */
    int malformed; /* a BDAT whose arguments break RFC 3030's grammar: no chunk followed */
};

enum {
    SMTP_TL_LATENCY = 1,
    SMTP_TL_BODY = 2,
    SMTP_TL_INCOMPLETE = 4,
    SMTP_TL_CUT = 8,
    SMTP_TL_DECRYPTED = 16,
};

/* Transcript lines are kept until the session ends and written out in order: their bytes
 * are packed into chunks (one allocation for many lines, read back sequentially) rather
 * than allocated one by one. */
struct smtp_tl_chunk {
    struct smtp_tl_chunk *next;
    size_t used, cap;
    uint8_t data[];
};

#define SMTP_TLC_FIRST 128
#define SMTP_TLC_MAX 16384

struct smtp_tline {
    int64_t t_us;
    int64_t latency_us;
    uint8_t *p;
    size_t n;
    int dir;
    int flags;
};

struct smtp_dirstate {
    int tls;             /* the bytes of this direction are TLS records from here on */
    enum smtp_mode mode; /* how the dialogue's bytes are read (decrypted ones once tls) */
    struct buf line;     /* the partial line, at most max_line + 1 bytes */
    uint64_t line_len;   /* bytes of the current line so far, the cut ones included */
    uint64_t line_cr;    /* CRs in it */
    uint8_t last;        /* its last byte */
    int skip;            /* resynchronising after a gap: drop bytes up to the next LF;
                            SMTP_SKIP_UNLESS_LINE: drop the first line unless it opens with
                            a reply code or a command verb */
    int secret;          /* client: the partial line began inside an AUTH exchange */
    uint64_t bytes;
    uint64_t bare_lf, bare_cr, long_lines, gap_bytes, enc_bytes;
    uint64_t plain_bytes; /* decrypted bytes read as the dialogue */
    int64_t last_us;
};

/* The server reply being read (multi-line replies: RFC 5321 4.2.1). */
struct smtp_reply {
    int open;
    int code;
    enum smtp_verb verb;
    int paired;   /* answers a command in the queue (else: greeting or unsolicited) */
    int greeting; /* answers the connection itself */
    int early;    /* answers a message still being sent: that of transaction txn */
    long txn;
    int64_t t_us; /* first line */
    size_t lines;
    char enhanced[16];
    struct buf text;  /* lines joined, capped */
    struct buf first; /* first line text, capped */
};

/* Facts of one EHLO/LHLO reply (RFC 5321 4.1.1.1); staged until the reply is complete. */
struct smtp_ehlo {
    int valid;
    struct smtp_str greeting;
    /* Grown on demand (most sessions never see an EHLO reply, or a short one). */
    struct smtp_str *ext;
    size_t aext;
    size_t next;
    uint64_t ext_dropped;
    struct smtp_str *mech;
    size_t amech;
    size_t nmech;
    int has_size;
    uint64_t size;
    int pipelining, chunking, starttls, eightbit, smtputf8, dsn, enhanced;
    struct smtp_str *masked;
    size_t amasked;
    size_t nmasked;
    int decrypted; /* the reply was read inside TLS */
};

struct smtp_auth {
    struct sasl *sasl;
    int64_t t_us;
    int advertised;
    int decrypted; /* sent inside TLS */
    /* Lines came while several AUTH commands awaited their replies (pipelined, against RFC
     * 4954 4): which exchange a line belongs to is unknown, so none is fed to sasl again,
     * and no line can end up as another exchange's user name. */
    int unattributed;
};

struct smtp_error {
    enum smtp_verb verb;
    int has_cmd;
    int code;
    char enhanced[16];
    struct smtp_str text;
    int64_t t_us;
};

/* A reply that came with no command in flight (RFC 5321 3.8, or a server that read more
 * commands than the client meant: smuggling). */
struct smtp_unsolicited {
    struct smtp_reply_rec rec;
    int64_t t_us;
};

struct smtp_session {
    struct smtp_config cfg;
    int64_t start_us, established_us;
    int finished;
    int midstream;   /* the capture began inside the dialogue (smtp_midstream) */
    int client_only; /* the capture holds the client's side only (smtp_client_only) */
    int ms_unsynced; /* midstream: no client command recognised yet */
    int nomem;
    size_t kept; /* bytes counted against SMTP_MAX_KEPT */
    enum smtp_phase phase;
    struct smtp_dirstate d[2];

    /* client side */
    /* Stream offsets of the client's bytes in clear: of the next byte parsed, after the line
     * being read, after the end of the last message, and of the first byte held. */
    uint64_t c_pos, c_line_end, c_msg_end, hold_off;
    int c_reread; /* a line read again as message data (mid-stream): its offsets are its end */
    struct buf hold;
    uint64_t hold_head; /* client bytes lost before the held ones (a gap) */
    uint64_t hold_tail; /* client bytes lost after them (a gap, or beyond the cap) */
    int64_t hold_us;
    enum smtp_verb hold_verb;
    uint64_t chunk_left; /* BDAT bytes still to come */
    int64_t chunk_us;    /* when that BDAT was sent */
    uint64_t chunk_bytes;
    int chunk_last;
    long chunk_txn;
    struct imf *body;   /* the message being read (owned by its transaction or orphan) */
    struct imf *orphan; /* a message with no transaction kept */
    long body_txn;
    uint64_t body_bytes;
    /* From AUTH until the server's final reply to it, whatever the server said in between
     * or whether it was seen, every client line is part of the exchange: a secret. */
    int auth_secret;
    /* After an AUTH, until a recognised command: an unknown line is a credential sent after
     * the server ended the exchange (504, 535...), or one with junk after it; never shown. */
    int auth_tail;
    uint64_t auth_tail_lines; /* lines redacted so, sent in clear */
    /* The client line being handed over began inside the exchange: secret, however it
     * ends (smtp_dirstate.secret, kept with the partial line it belongs to). */
    int auth_line_secret;
    long auth_cur; /* index into auth, -1 when not kept */

    /* commands in flight */
    struct smtp_inflight *q;
    size_t qcap, qhead, qlen;
    uint64_t qskip;    /* replies still owed to dropped commands before the head */
    uint64_t qdropped; /* dropped commands whose reply has not come */
    struct smtp_reply r;

    /* greeting */
    int banner_seen;
    int banner_code;
    struct smtp_str banner_text;
    size_t banner_lines;
    int64_t banner_us;
    int64_t reply_us; /* when the last reply to a command came (smtp_awaiting) */
    int soft_found;
    const char *soft_name;
    struct smtp_str soft_version;
    const char *soft_source;

    /* HELO / EHLO */
    enum smtp_verb helo_verb;
    struct smtp_str helo_name;
    int helo_code;
    uint64_t helo_count;
    struct smtp_ehlo ehlo;    /* last complete EHLO reply */
    struct smtp_ehlo staging; /* the one being read */
    int ehlo_stale;           /* read in clear, void inside TLS until the next EHLO reply */

    /* TLS */
    enum smtp_tls_state tls_state;
    /* TLS was expected (port 465, STARTTLS's 220) but no byte of it was seen yet: the first
     * byte either side sends decides whether it really is TLS (a record header) or not. */
    int tls_sniff;
    int tls_port_plain;          /* port 465 but the dialogue was in clear */
    uint64_t starttls_plain_cmd; /* client bytes in clear sent after STARTTLS, before its 220 */
    int tls_code;
    struct smtp_str tls_text;
    int64_t tls_us;
    int tls_active;
    int tls_before_txn;
    struct tls_view *tls;
    int decrypted;      /* plaintext came out of tls: the dialogue goes on inside */
    uint64_t dec_holes; /* records that failed to decrypt once plaintext had begun */
    int64_t now_us;     /* time of the bytes being fed (the plaintext callback has none) */

    /* AUTH */
    struct smtp_auth *auth; /* grown on demand: most sessions have one attempt or none */
    size_t nauth, aauth;
    uint64_t auth_dropped;
    int authenticated;

    /* transactions */
    struct smtp_txn **txn;
    size_t ntxn, atxn;
    uint64_t txn_dropped;
    /* The server's open transaction (its MAIL was accepted), -1 none; and the transaction of
     * the client's last MAIL, accepted or not, which its RCPTs and DATA were meant for. They
     * differ when the server refused a MAIL (a nested MAIL, a rejected sender). */
    long cur;
    long ccur;
    int cur_unkept; /* the server's open transaction is one not kept (over the caps) */
    uint64_t data_without_envelope; /* messages the server took with no accepted envelope */
    uint64_t bdat_malformed;        /* BDAT lines that break RFC 3030's grammar */

    /* counters and facts */
    uint64_t cmd_count[SMTP_V_COUNT];
    uint64_t cmd_total;
    /* Commands whose final reply came, and those of them accepted (2xx; DATA: the reply to
     * the message), as Postfix counts them for its "disconnect from" log line. */
    uint64_t cmd_done[SMTP_V_COUNT];
    uint64_t cmd_ok[SMTP_V_COUNT];
    int quit_sent, quit_replied;
    int pipelined;
    uint64_t pipelining_violations, inflight_overflow, replies_without_command;
    int slow_set;
    enum smtp_verb slow_verb;
    int64_t slow_us, slow_t_us;
    struct smtp_error *err; /* grown on demand: most sessions have no error reply */
    size_t nerr, aerr;
    uint64_t err_dropped;
    struct smtp_unsolicited *unsol; /* grown on demand, at most SMTP_MAX_UNSOLICITED */
    size_t nunsol, aunsol;
    uint64_t unsol_dropped;

    /* transcript */
    struct smtp_tline *tl;
    size_t ntl, atl;
    uint64_t tl_dropped;
    struct smtp_tl_chunk *tlc; /* the lines' bytes, newest chunk first */
    size_t tlc_next;           /* size of the next chunk */
};

/* ---- small helpers ---- */

static uint8_t
smtp_upper(uint8_t c)
{
    return c >= 'a' && c <= 'z' ? (uint8_t)(c - 'a' + 'A') : c;
}

static int
smtp_is_space(uint8_t c)
{
    return c == ' ' || c == '\t';
}

static int
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

static int
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
static size_t
smtp_token(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && !smtp_is_space(p[i]))
        i++;
    return i;
}

/* Decimal number of at most 19 digits (no overflow of uint64_t); -1 when not one. */
static int
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

static int
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
static void
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
static void
smtp_tl_bytes(struct smtp_session *s, const char *what, uint64_t bytes, int64_t t_us, int flags)
{
    char line[96];
    int w = snprintf(line, sizeof line, "[%s: %llu bytes]", what, (unsigned long long)bytes);
    if (w > 0 && (size_t)w < sizeof line)
        smtp_tl_add(s, SMTP_CLIENT, (const uint8_t *)line, (size_t)w, t_us, flags);
}

/* ---- the one place the session phase changes ---- */

static void
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
static uint64_t
smtp_q_outstanding(const struct smtp_session *s)
{
    return (uint64_t)s->qlen + s->qdropped;
}

static void smtp_plain(void *arg, enum tls_dir dir, const uint8_t *data, size_t len);
static void smtp_txn_end(struct smtp_session *s, enum smtp_end how);

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

/* ---- line reader (RFC 5321 2.3.8: lines end with CRLF) ---- */

static void smtp_client_line(struct smtp_session *s, const uint8_t *p, size_t n, int cut,
                             int64_t t_us);
static void smtp_server_line(struct smtp_session *s, const uint8_t *p, size_t n, int cut,
                             int64_t t_us);
static void smtp_client_parse(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us);

static int smtp_ms_line_start(const struct smtp_session *s, int dir, const uint8_t *p, size_t n);

static void
smtp_line_reset(struct smtp_dirstate *d)
{
    d->secret = 0;
    d->line_len = 0;
    d->line_cr = 0;
    d->last = 0;
}

/* Reads up to and including the next LF; a complete line is handed to the direction's
 * parser as a borrowed view without its line end, cut to max_line. Returns the bytes used. */
static size_t
smtp_read_line(struct smtp_session *s, int dir, const uint8_t *p, size_t n, int64_t t_us)
{
    struct smtp_dirstate *d = &s->d[dir];
    const uint8_t *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    size_t before = nl ? take - 1 : take;
    if (dir == SMTP_CLIENT)
        s->c_line_end = s->c_pos + take;

    /* Mid-stream, the first line is judged once it is whole (it may come a byte at a time). */
    int undecided = d->skip == SMTP_SKIP_UNLESS_LINE;
    if (d->skip && !undecided) {
        if (nl) {
            d->skip = 0;
            smtp_line_reset(d);
        }
        return take;
    }
    for (size_t i = 0; i < before; i++)
        if (p[i] == '\r')
            d->line_cr++;
    if (!nl) {
        if (dir == SMTP_CLIENT && !d->line_len)
            d->secret = s->auth_secret;
        smtp_buf_add(s, &d->line, p, take);
        d->line_len += take;
        d->last = p[take - 1];
        return take;
    }
    int crlf = before ? p[before - 1] == '\r' : d->line_len && d->last == '\r';
    uint64_t total = d->line_len + take;
    uint64_t content = total - 1 - (uint64_t)crlf;
    if (total > SMTP_TEXT_LINE_LIMIT)
        d->long_lines++;
    if (!crlf)
        d->bare_lf++;
    d->bare_cr += d->line_cr - (uint64_t)crlf;

    const uint8_t *lp;
    size_t ln;
    if (d->line_len == 0) {
        lp = p;
        ln = before - (size_t)crlf;
    } else {
        smtp_buf_add(s, &d->line, p, before);
        lp = d->line.data;
        ln = d->line.len;
        if (crlf && ln == content + 1)
            ln--;
    }
    if (ln > s->cfg.max_line)
        ln = s->cfg.max_line;
    s->auth_line_secret = dir == SMTP_CLIENT && d->secret;
    smtp_line_reset(d);
    if (undecided) {
        d->skip = 0;
        if (!smtp_ms_line_start(s, dir, lp, ln)) {
            buf_reset(&d->line);
            return take;
        }
    }
    if (dir == SMTP_CLIENT)
        smtp_client_line(s, lp, ln, content > s->cfg.max_line, t_us);
    else
        smtp_server_line(s, lp, ln, content > s->cfg.max_line, t_us);
    buf_reset(&d->line);
    return take;
}

/* Bytes missing in line mode: a partial line would be spliced onto unrelated bytes, so it
 * is dropped and reading resumes after the next LF. A hole at a line start is taken to be
 * whole lines (endpoints write whole lines per segment), so nothing more is skipped. */
static void
smtp_lines_gap(struct smtp_dirstate *d)
{
    if (d->line_len || d->skip)
        d->skip = 1;
    smtp_line_reset(d);
    buf_reset(&d->line);
}

/* RFC 8446 5.1, RFC 5246 6.2.1: a TLS record opens with its content type, 20 to 23 (24:
 * heartbeat), a control character that no SMTP line starts with. */
static int
smtp_tls_record_start(uint8_t c)
{
    return c >= 20 && c <= 24;
}

/* TLS was expected (port 465, or STARTTLS's 220) but a side went on in clear: the dialogue
 * is read as SMTP from here, and the report says TLS never started. The phase is set here
 * directly, as smtp_set_phase keeps a session in TLS by design. */
static void
smtp_tls_abandon(struct smtp_session *s)
{
    s->tls_sniff = 0;
    s->tls_active = 0;
    for (int d = 0; d < 2; d++) {
        s->d[d].tls = 0;
        s->d[d].mode = SMTP_M_LINES;
    }
    tls_destroy(s->tls);
    s->tls = NULL;
    if (s->tls_state == SMTP_TLS_IMPLICIT) {
        s->tls_state = SMTP_TLS_NONE;
        s->tls_port_plain = 1;
        s->phase = s->banner_seen ? SMTP_PH_BANNER : SMTP_PH_CONNECT;
    } else {
        s->tls_state = SMTP_TLS_NOT_STARTED;
        s->phase = SMTP_PH_HELO;
        /* Postfix counts a STARTTLS as done only once the handshake succeeded. */
        if (s->cmd_ok[SMTP_V_STARTTLS])
            s->cmd_ok[SMTP_V_STARTTLS]--;
    }
}

static void smtp_server_parse(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us);

/* Wire bytes of a TLS direction; with a key log their plaintext comes back through
 * smtp_plain before this returns. */
static void
smtp_tls_bytes(struct smtp_session *s, int dir, const uint8_t *p, size_t n, int64_t t_us)
{
    if (s->tls_sniff && n) {
        if (!smtp_tls_record_start(p[0])) {
            smtp_tls_abandon(s);
            if (dir == SMTP_CLIENT)
                smtp_client_parse(s, p, n, t_us);
            else
                smtp_server_parse(s, p, n, t_us);
            return;
        }
        s->tls_sniff = 0;
    }
    s->d[dir].enc_bytes += n;
    s->now_us = t_us;
    tls_feed(s->tls, dir == SMTP_CLIENT ? TLS_CLIENT : TLS_SERVER, p, n);
}

/* ---- client byte modes ---- */

static void smtp_body_done(struct smtp_session *s, int64_t t_us);
static void smtp_chunk_done(struct smtp_session *s, int64_t t_us);

static size_t
smtp_body_bytes(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us)
{
    int done = 0;
    size_t k = s->body ? imf_data_feed(s->body, p, n, &done) : n;
    if (k == 0 && !done)
        k = n; /* cannot happen with a live parser; never loop on it */
    s->body_bytes += k;
    if (done) {
        /* A line read again as message data (mid-stream) has no exact offset of its own. */
        s->c_msg_end = s->c_reread ? UINT64_MAX : s->c_pos + k;
        smtp_body_done(s, t_us);
    }
    return k;
}

static size_t
smtp_chunk_bytes(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us)
{
    size_t k = (uint64_t)n < s->chunk_left ? n : (size_t)s->chunk_left;
    if (s->body)
        imf_chunk_feed(s->body, p, k);
    s->chunk_left -= k;
    s->chunk_bytes += k;
    if (!s->chunk_left) {
        s->c_msg_end = s->c_pos + k;
        smtp_chunk_done(s, t_us);
    }
    return k;
}

/* Held bytes keep their order; once the cap is reached everything after is lost (and
 * counted), never the bytes in the middle. */
static void
smtp_hold_bytes(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us)
{
    s->hold_us = t_us;
    if (!s->hold.len && !s->hold_head && !s->hold_tail)
        s->hold_off = s->c_pos;
    if (s->hold_tail) {
        s->hold_tail += n;
        return;
    }
    size_t room = s->hold.max - s->hold.len;
    size_t k = n < room ? n : room;
    if (k && buf_append(&s->hold, p, k) != BUF_OK) {
        s->nomem = 1;
        k = 0;
    }
    s->hold_tail += n - k;
}

static void
smtp_client_gap(struct smtp_session *s, uint64_t len, int64_t t_us)
{
    struct smtp_dirstate *d = &s->d[SMTP_CLIENT];
    if (d->mode == SMTP_M_HOLD && !s->hold.len && !s->hold_head && !s->hold_tail)
        s->hold_off = s->c_pos;
    s->c_pos += len;
    while (len) {
        switch (d->mode) {
        case SMTP_M_TLS:
            return;
        case SMTP_M_HOLD:
            if (s->hold_tail) {
                s->hold_tail += len;
            } else {
                s->hold_head += s->hold.len + len;
                buf_reset(&s->hold);
            }
            return;
        case SMTP_M_BODY:
            imf_gap(s->body, len);
            return;
        case SMTP_M_CHUNK: {
            uint64_t k = len < s->chunk_left ? len : s->chunk_left;
            imf_gap(s->body, k);
            s->chunk_left -= k;
            len -= k;
            if (!s->chunk_left) {
                s->c_msg_end = s->c_pos - len;
                smtp_chunk_done(s, t_us);
            }
            break;
        }
        case SMTP_M_LINES:
        case SMTP_M_COUNT:
            smtp_lines_gap(d);
            return;
        }
    }
}

/* The reply to DATA or STARTTLS came: the held client bytes are read in the new mode, or
 * (to_tls: the STARTTLS that opened TLS) they are the first TLS records. */
static void
smtp_hold_release(struct smtp_session *s, enum smtp_mode next, int to_tls)
{
    struct buf h = s->hold;
    uint64_t head = s->hold_head, tail = s->hold_tail;
    int64_t hus = s->hold_us;

    buf_init(&s->hold, SMTP_MAX_HOLD);
    s->hold_head = s->hold_tail = 0;
    s->c_pos = s->hold_off;
    s->d[SMTP_CLIENT].mode = next;
    if (to_tls && h.len && !head && !smtp_tls_record_start(h.data[0])) {
        /* RFC 3207 4: nothing may follow STARTTLS before the 220. Text in clear there is
         * the command injection that a flawed server runs inside TLS; it is neither TLS nor
         * the dialogue, so it is only counted and shown as bytes. */
        s->starttls_plain_cmd += h.len + tail;
        smtp_tl_bytes(s, "sent in clear before the reply to STARTTLS", h.len + tail, hus,
                      SMTP_TL_INCOMPLETE);
    } else if (to_tls) {
        /* Record boundaries are lost with missing bytes: tls reads nothing after them. */
        if (head)
            tls_gap(s->tls, TLS_CLIENT);
        if (h.len)
            smtp_tls_bytes(s, SMTP_CLIENT, h.data, h.len, hus);
        if (tail)
            tls_gap(s->tls, TLS_CLIENT);
    } else {
        if (head)
            smtp_client_gap(s, head, hus);
        if (h.len)
            smtp_client_parse(s, h.data, h.len, hus);
        if (tail)
            smtp_client_gap(s, tail, hus);
    }
    buf_free(&h);
}

/* The client's dialogue bytes: in clear, or decrypted. */
static void
smtp_client_parse(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us)
{
    while (n) {
        size_t k;
        switch (s->d[SMTP_CLIENT].mode) {
        case SMTP_M_TLS:
            s->c_pos += n;
            return;
        case SMTP_M_HOLD:
            smtp_hold_bytes(s, p, n, t_us);
            s->c_pos += n;
            return;
        case SMTP_M_BODY:
            k = smtp_body_bytes(s, p, n, t_us);
            break;
        case SMTP_M_CHUNK:
            k = smtp_chunk_bytes(s, p, n, t_us);
            break;
        case SMTP_M_LINES:
        case SMTP_M_COUNT:
        default:
            k = smtp_read_line(s, SMTP_CLIENT, p, n, t_us);
            break;
        }
        s->c_pos += k;
        p += k;
        n -= k;
    }
}

/* The server's dialogue bytes: in clear, or decrypted. */
static void
smtp_server_parse(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us)
{
    while (n && s->d[SMTP_SERVER].mode != SMTP_M_TLS) {
        size_t k = smtp_read_line(s, SMTP_SERVER, p, n, t_us);
        p += k;
        n -= k;
    }
}

/* A hole in a direction's dialogue: bytes lost by the capture, or a record that could not be
 * decrypted (its length bounds the plaintext lost). */
static void
smtp_parse_gap(struct smtp_session *s, int dir, uint64_t len, int64_t t_us)
{
    if (dir == SMTP_CLIENT)
        smtp_client_gap(s, len, t_us);
    else if (s->d[SMTP_SERVER].mode != SMTP_M_TLS)
        smtp_lines_gap(&s->d[SMTP_SERVER]);
}

/* ---- the dialogue inside TLS ---- */

/* RFC 3207 4.2: once TLS is up the dialogue starts over as right after the greeting (RFC
 * 8314 3.3, implicit TLS: before it). The client must say EHLO again, and nothing either
 * side learnt in clear holds any more; what happened in clear stays in the report. */
static void
smtp_inner_begin(struct smtp_session *s)
{
    s->decrypted = 1;
    s->ehlo_stale = 1;
    s->authenticated = 0;
    s->auth_secret = 0;
    s->auth_cur = -1;
    smtp_txn_end(s, SMTP_END_RSET);
    s->ccur = -1;
    smtp_set_phase(s, s->banner_seen ? SMTP_PH_BANNER : SMTP_PH_CONNECT);
}

/* tls_plaintext_fn: what a direction said inside TLS, in order. */
static void
smtp_plain(void *arg, enum tls_dir dir, const uint8_t *data, size_t len)
{
    struct smtp_session *s = arg;
    int d = dir == TLS_CLIENT ? SMTP_CLIENT : SMTP_SERVER;

    if (!data) {
        /* Plaintext is missing here: the model treats it as bytes lost by the capture,
         * never as bytes of the dialogue. */
        if (!len)
            return;
        s->dec_holes++;
        s->d[d].gap_bytes += len;
        if (s->decrypted)
            smtp_parse_gap(s, d, len, s->now_us);
        return;
    }
    if (!len)
        return;
    if (!s->decrypted)
        smtp_inner_begin(s);
    s->d[d].plain_bytes += len;
    if (d == SMTP_CLIENT)
        smtp_client_parse(s, data, len, s->now_us);
    else
        smtp_server_parse(s, data, len, s->now_us);
}

void
smtp_feed(struct smtp_session *s, enum smtp_dir dir, const uint8_t *data, size_t len, int64_t ts_us)
{
    if (!s || s->finished || !data || !len)
        return;
    int d = dir == SMTP_CLIENT ? SMTP_CLIENT : SMTP_SERVER;
    s->d[d].bytes += len;
    s->d[d].last_us = ts_us;
    /* A direction turns to TLS only on a server reply, so the client's bytes of one feed
     * are either all TLS or all dialogue; the server's may switch in the middle. */
    if (d == SMTP_CLIENT) {
        if (s->d[d].tls) {
            smtp_tls_bytes(s, d, data, len, ts_us);
        } else {
            s->c_pos = s->d[d].bytes - len + s->d[d].gap_bytes;
            smtp_client_parse(s, data, len, ts_us);
        }
        return;
    }
    while (len && !s->d[d].tls) {
        size_t k = smtp_read_line(s, SMTP_SERVER, data, len, ts_us);
        data += k;
        len -= k;
    }
    if (len)
        smtp_tls_bytes(s, d, data, len, ts_us);
}

void
smtp_midstream(struct smtp_session *s)
{
    if (!s || s->d[SMTP_CLIENT].bytes || s->d[SMTP_SERVER].bytes)
        return;
    s->midstream = 1;
    s->ms_unsynced = 1;
    s->d[SMTP_CLIENT].skip = SMTP_SKIP_UNLESS_LINE;
    s->d[SMTP_SERVER].skip = SMTP_SKIP_UNLESS_LINE;
}

void
smtp_gap(struct smtp_session *s, enum smtp_dir dir, uint64_t len, int64_t ts_us)
{
    if (!s || s->finished || !len)
        return;
    int d = dir == SMTP_CLIENT ? SMTP_CLIENT : SMTP_SERVER;
    if (d == SMTP_CLIENT)
        s->c_pos = s->d[d].bytes + s->d[d].gap_bytes;
    s->d[d].gap_bytes += len;
    if (!s->d[d].tls) {
        smtp_parse_gap(s, d, len, ts_us);
        return;
    }
    tls_gap(s->tls, d == SMTP_CLIENT ? TLS_CLIENT : TLS_SERVER);
    /* No plaintext comes from this direction any more: the dialogue inside has a hole. */
    if (s->decrypted)
        smtp_parse_gap(s, d, len, ts_us);
}

/* ---- verbs ---- */

typedef void smtp_cmd_fn(struct smtp_session *s, enum smtp_verb v, const uint8_t *args, size_t n,
                         int64_t t_us);
typedef void smtp_reply_fn(struct smtp_session *s, const struct smtp_inflight *e, int64_t t_us);

/* Postfix's smtpd does not implement the verb and counts it as "unknown". */
#define SMTP_VF_POSTFIX_UNKNOWN 1u

/* Everything about one verb, in one row: what the client line is called on the wire and in
 * the report, the handler of the command and of its reply, and its Postfix counter. */
struct smtp_verb_info {
    const char *name;        /* as written on the wire; the pseudo verbs' report names */
    smtp_cmd_fn *cmd;        /* the client's command line; NULL for the pseudo verbs */
    smtp_reply_fn *on_reply; /* what the final reply means; NULL: nothing beyond counting */
    /* Postfix's per-command counters (its "ehlo=1 mail=1 ... commands=5" log summary). */
    const char *counter;
    unsigned flags; /* SMTP_VF_* */
};

static const struct smtp_verb_info smtp_verbs[SMTP_V_COUNT];

/* Postfix's smtpd counts commands in the order of its command table, and every verb it does
 * not implement as "unknown"; its "disconnect from" line shows accepted/sent per verb. */
static const enum smtp_verb smtp_postfix_order[] = {
    SMTP_V_HELO, SMTP_V_EHLO, SMTP_V_XCLIENT, SMTP_V_XFORWARD, SMTP_V_STARTTLS,
    SMTP_V_AUTH, SMTP_V_MAIL, SMTP_V_RCPT,    SMTP_V_DATA,     SMTP_V_BDAT,
    SMTP_V_RSET, SMTP_V_NOOP, SMTP_V_VRFY,    SMTP_V_ETRN,     SMTP_V_QUIT,
};

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
static void
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
static int
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

static void
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

static void
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

static void
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

static void
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

/* ---- EHLO reply (RFC 5321 4.1.1.1) and server software ---- */

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

struct smtp_soft {
    const char *needle;
    const char *name;
};

/* Names MTAs put in their greeting; the first match wins, so specific ones come first. */
static const struct smtp_soft smtp_softs[] = {
    {"Microsoft Exchange Internet Mail Service", "Microsoft Exchange"},
    {"Microsoft Exchange", "Microsoft Exchange"},
    {"Microsoft ESMTP MAIL Service", "Microsoft ESMTP MAIL Service"},
    {"Zimbra", "Zimbra"},
    {"Postfix", "Postfix"},
    {"Exim", "Exim"},
    {"Sendmail", "Sendmail"},
    {"OpenSMTPD", "OpenSMTPD"},
    {"qmail", "qmail"},
    {"Haraka", "Haraka"},
    {"MDaemon", "MDaemon"},
    {"hMailServer", "hMailServer"},
    {"Courier", "Courier"},
    {"IceWarp", "IceWarp"},
    {"Kerio Connect", "Kerio Connect"},
    {"Kerio", "Kerio Connect"},
    {NULL, NULL},
};

static int
smtp_is_alnum(uint8_t c)
{
    return smtp_is_digit(c) || (smtp_upper(c) >= 'A' && smtp_upper(c) <= 'Z');
}

/* Offset of word (case-insensitive, not inside a longer word on its left) or -1. */
static long
smtp_find_word(const uint8_t *p, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if ((i == 0 || !smtp_is_alnum(p[i - 1])) && smtp_prefix_eq(p + i, n - i, word))
            return (long)i;
    return -1;
}

/* The version right after a product name: "Exim 4.96", "Sendmail 8.9.3/8.9.3",
 * "Haraka/2.8.25", "Service, Version: 6.0.3790.4675". Sets *vl to 0 when there is none. */
static const uint8_t *
smtp_soft_version(const uint8_t *p, size_t n, size_t *vl)
{
    size_t i = 0;
    for (int round = 0; round < 2; round++) {
        while (i < n &&
               (smtp_is_space(p[i]) || p[i] == ',' || p[i] == ':' || p[i] == '/' || p[i] == '('))
            i++;
        if (round == 0 && smtp_prefix_eq(p + i, n - i, "VERSION"))
            i += 7;
    }
    if (i + 1 < n && (p[i] == 'v' || p[i] == 'V') && smtp_is_digit(p[i + 1]))
        i++;
    size_t start = i;
    while (i < n && (smtp_is_digit(p[i]) || p[i] == '.'))
        i++;
    while (i > start && p[i - 1] == '.')
        i--;
    *vl = i > start && smtp_is_digit(p[start]) ? i - start : 0;
    return p + start;
}

/* RFC 5321 4.3.1: the greeting (and the EHLO greeting line) opens with the server's
 * domain; what follows is free text where MTAs name themselves. */
static void
smtp_detect_software(struct smtp_session *s, const uint8_t *p, size_t n, const char *source)
{
    if (s->soft_found || !p)
        return;
    size_t skip = smtp_token(p, n);
    p += skip;
    n -= skip;
    for (const struct smtp_soft *e = smtp_softs; e->needle; e++) {
        long at = smtp_find_word(p, n, e->needle);
        if (at < 0)
            continue;
        size_t off = (size_t)at + strlen(e->needle), vl;
        const uint8_t *v = smtp_soft_version(p + off, n - off, &vl);
        s->soft_found = 1;
        s->soft_name = e->name;
        /* Exchange greets as "Microsoft ESMTP MAIL Service"; some banners name it. */
        if (strcmp(e->needle, "Microsoft ESMTP MAIL Service") == 0 &&
            smtp_find_word(p, n, "Exchange") >= 0)
            s->soft_name = "Microsoft Exchange";
        s->soft_source = source;
        if (vl)
            smtp_str_set(s, &s->soft_version, v, vl, 32);
        return;
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
static const struct smtp_verb_info smtp_verbs[SMTP_V_COUNT] = {
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

/* ---- report (docs/smtp-report-contract.md) ---- */

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
