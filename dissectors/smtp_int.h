/* smtp_int.h - the SMTP session shared by the files of the SMTP dissector (smtp.c,
 * smtp_frame.c, smtp_mta.c, smtp_report.c); private to them: smtp.h is the public API. */
#ifndef SMTPSNIFF_SMTP_INT_H
#define SMTPSNIFF_SMTP_INT_H

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
extern const char *const smtp_mparam_names[SMTP_MP_COUNT];
enum smtp_rparam { SMTP_RP_NOTIFY, SMTP_RP_ORCPT, SMTP_RP_COUNT };
extern const char *const smtp_rparam_names[SMTP_RP_COUNT];

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

/* ---- verbs (the table is in smtp.c) ---- */

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

extern const struct smtp_verb_info smtp_verbs[SMTP_V_COUNT];

/* smtp.c: small helpers, the transcript, and what framing hands its lines and bodies to */
uint8_t smtp_upper(uint8_t c);
int smtp_is_space(uint8_t c);
int smtp_is_digit(uint8_t c);
int smtp_prefix_eq(const uint8_t *p, size_t n, const char *w);
size_t smtp_token(const uint8_t *p, size_t n);
int smtp_parse_u64(const uint8_t *p, size_t n, uint64_t *out);
int smtp_str_set(struct smtp_session *s, struct smtp_str *d, const uint8_t *p, size_t n,
                 size_t max);
void smtp_buf_add(struct smtp_session *s, struct buf *b, const uint8_t *p, size_t n);
void smtp_tl_bytes(struct smtp_session *s, const char *what, uint64_t bytes, int64_t t_us,
                   int flags);
void smtp_set_phase(struct smtp_session *s, enum smtp_phase ph);
uint64_t smtp_q_outstanding(const struct smtp_session *s);
void smtp_txn_end(struct smtp_session *s, enum smtp_end how);
int smtp_ms_line_start(const struct smtp_session *s, int dir, const uint8_t *p, size_t n);
void smtp_client_line(struct smtp_session *s, const uint8_t *p, size_t n, int cut, int64_t t_us);
void smtp_body_done(struct smtp_session *s, int64_t t_us);
void smtp_chunk_done(struct smtp_session *s, int64_t t_us);
void smtp_server_line(struct smtp_session *s, const uint8_t *p, size_t n, int cut, int64_t t_us);

/* smtp_frame.c: what the model asks of the framing (STARTTLS, holds, message bytes) */
void smtp_lines_gap(struct smtp_dirstate *d);
size_t smtp_body_bytes(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us);
void smtp_hold_release(struct smtp_session *s, enum smtp_mode next, int to_tls);
void smtp_inner_begin(struct smtp_session *s);
void smtp_plain(void *arg, enum tls_dir dir, const uint8_t *data, size_t len);

/* smtp_mta.c: server_software from a greeting or EHLO reply line */
void smtp_detect_software(struct smtp_session *s, const uint8_t *p, size_t n, const char *source);

#endif
