/* smtp_frame.c - SMTP framing: each direction's bytes to lines (RFC 5321 2.3.8, 4.5.3),
 * the client's holds, message bodies and BDAT chunks (RFC 3030), and the dialogue inside
 * TLS, whose plaintext is read like the dialogue in clear. */
#include "smtp_int.h"

/* ---- line reader (RFC 5321 2.3.8: lines end with CRLF) ---- */

static void smtp_client_parse(struct smtp_session *s, const uint8_t *p, size_t n, int64_t t_us);

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
void
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

size_t
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
void
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
void
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
void
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
