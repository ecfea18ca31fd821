/* imf.c - one message crossing DATA or BDAT: end of data and dot-unstuffing (RFC 5321
 * 4.1.1.4, 4.5.2), the end-of-data variants behind SMTP smuggling, header fields (RFC 5322
 * 2.2, 2.2.3, 3.6), line length (RFC 5321 4.5.3.1.6), size and SHA-256 (OpenSSL EVP).
 *
 * What is hashed and counted ("bytes", "sha256"): the message as the server must store it.
 * DATA: the dot-unstuffed text from the first byte after the 354 reply up to and including
 * the CRLF that precedes the final ".", without the terminating ".CRLF" (so ".\r\n" at once
 * is an empty message: 0 bytes, the SHA-256 of nothing). BDAT: the chunk bytes as sent.
 * Both leave out bytes missing from the capture; with a gap no hash is reported. */
#include "imf.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && !defined(IMF_NO_SIMD)
#include <emmintrin.h>
#endif

#include "buf.h"
#include "jtree.h"
#include "mem.h"
#include "mime.h"

#define IMF_DEFAULT_MAX_HEADER 65536
#define IMF_DEFAULT_MAX_RECEIVED 50
/* Smuggling evidence entries kept; one is enough to raise the anomaly, more show a pattern. */
#define IMF_MAX_EVIDENCE 32

/* Where the DATA reader stands; the line end kind before a pending dot lives in m->eol. */
enum imf_state {
    IMF_S_TEXT,  /* inside a line */
    IMF_S_CR,    /* a CR whose meaning depends on the next byte */
    IMF_S_BOL,   /* at the start of a line */
    IMF_S_DOT,   /* a '.' at the start of a line */
    IMF_S_DOTCR, /* line start, '.', CR */
    IMF_S_COUNT
};

enum imf_eol { IMF_EOL_CRLF, IMF_EOL_LF, IMF_EOL_CR, IMF_EOL_COUNT };

/* A line end, a '.', a line end: every pair but CRLF.CRLF is a form some MTA honours and
 * another does not (the 2023 SMTP smuggling research), indexed [before][after]. */
static const char *const imf_forms[IMF_EOL_COUNT][IMF_EOL_COUNT] = {
    [IMF_EOL_CRLF] = {"crlf.crlf", "crlf.lf", "crlf.cr"},
    [IMF_EOL_LF] = {"lf.crlf", "lf.lf", "lf.cr"},
    [IMF_EOL_CR] = {"cr.crlf", "cr.lf", "cr.cr"},
};

struct imf_evidence {
    uint64_t offset; /* of the '.' in the DATA stream (first byte after 354 is 0) */
    uint8_t before, after;
};

struct imf {
    struct imf_sink sink;
    void *out; /* the sink's handle for this message, NULL: none */
    size_t max_header;
    size_t max_received;
    int hash;

    enum imf_state st;
    enum imf_eol eol;
    int done;     /* CRLF.CRLF seen */
    int complete; /* BDAT: the last chunk came through */
    int finished; /* imf_finish called */
    int data_mode;
    uint64_t fed;     /* DATA stream offset of the next byte, gaps included */
    uint64_t dot_off; /* offset of the pending dot */

    uint64_t bytes;
    uint64_t gap;
    uint64_t bare_lf;
    uint64_t bare_cr;
    uint64_t line_len;
    uint64_t longest_line;
    int raw_prev_cr;

    struct mime *mime; /* the parts; NULL without memory */

    EVP_MD_CTX *md;
    unsigned char digest[32];
    int digest_ok;

    struct buf hdr;
    int hdr_done;
    int hdr_bol;
    int hdr_cr_only;

    /* Allocated at the first evidence: most messages have none, and a session's messages
     * live as long as the session. */
    struct imf_evidence *ev;
    size_t nev;
    uint64_t ev_total;
};

struct imf *
imf_create(const struct imf_config *cfg)
{
    struct imf *m = mem_calloc(1, sizeof *m);

    if (!m)
        return NULL;
    const EVP_MD *sha256 = NULL;
    if (cfg) {
        sha256 = cfg->sha256;
        m->hash = cfg->hash;
        m->sink = cfg->sink;
        m->max_header = cfg->max_header;
        m->max_received = cfg->max_received;
    }
    if (!m->max_header)
        m->max_header = IMF_DEFAULT_MAX_HEADER;
    if (!m->max_received)
        m->max_received = IMF_DEFAULT_MAX_RECEIVED;
    m->st = IMF_S_BOL;
    /* The DATA command line ended with CRLF, so the message starts at a line start:
     * ".\r\n" as the very first line ends an empty message (RFC 5321 4.1.1.4). */
    m->eol = IMF_EOL_CRLF;
    m->hdr_bol = 1;
    buf_init(&m->hdr, m->max_header);
    m->mime = mime_create(&(struct mime_config){.hash = m->hash, .sha = sha256});
    if (m->hash) {
        m->md = EVP_MD_CTX_new();
        if (!m->md || EVP_DigestInit_ex(m->md, sha256 ? sha256 : EVP_sha256(), NULL) != 1) {
            imf_destroy(m);
            return NULL;
        }
    }
    if (m->sink.begin)
        m->out = m->sink.begin(m->sink.ctx, cfg->sink_id, cfg->envelope);
    return m;
}

/* The sink's message ends once: at imf_finish, or at imf_destroy for one never finished. */
static void
imf_sink_end(struct imf *m, int whole)
{
    if (!m->out)
        return;
    m->sink.end(m->out, whole);
    m->out = NULL;
}

void
imf_destroy(struct imf *m)
{
    if (!m)
        return;
    imf_sink_end(m, 0);
    EVP_MD_CTX_free(m->md);
    mime_destroy(m->mime);
    mem_free(m->ev);
    buf_free(&m->hdr);
    mem_free(m);
}

/* Collects the header section: bytes up to the first empty line, at most max_header. Only
 * the bytes opening a line can make it empty; the rest of a line is skipped with memchr. */
static void
imf_header_sink(struct imf *m, const uint8_t *p, size_t n)
{
    size_t k = 0;

    while (k < n) {
        uint8_t c = p[k];
        if (!m->hdr_bol && !m->hdr_cr_only) {
            const uint8_t *lf = memchr(p + k, '\n', n - k);
            if (!lf) {
                k = n;
                break;
            }
            k = (size_t)(lf - p) + 1;
            m->hdr_bol = 1;
        } else if (c == '\n') {
            m->hdr_done = 1;
            break;
        } else if (c == '\r' && m->hdr_bol) {
            m->hdr_bol = 0;
            m->hdr_cr_only = 1;
            k++;
        } else {
            m->hdr_bol = 0;
            m->hdr_cr_only = 0;
            k++;
        }
    }
    if (k && buf_append(&m->hdr, p, k) != BUF_OK)
        m->hdr_done = 1;
}

/* Message bytes as delivered: counted, hashed, handed to the sink, and read for headers. */
static void
imf_sink(struct imf *m, const uint8_t *p, size_t n)
{
    if (!n)
        return;
    m->bytes += n;
    if (m->md && !m->gap && EVP_DigestUpdate(m->md, p, n) != 1) {
        EVP_MD_CTX_free(m->md);
        m->md = NULL;
    }
    if (m->out)
        m->sink.bytes(m->out, p, n);
    mime_feed(m->mime, p, n);
    if (!m->hdr_done)
        imf_header_sink(m, p, n);
}

/* Line statistics over the wire bytes: bare LF and CR, longest line without its end. One
 * byte at a time; the scanners below call it only for bytes next to a lone CR or LF. */
static void
imf_stat_byte(struct imf *m, uint8_t c)
{
    if (c == '\n') {
        uint64_t len = m->line_len;
        if (m->raw_prev_cr)
            len--;
        else
            m->bare_lf++;
        if (len > m->longest_line)
            m->longest_line = len;
        m->line_len = 0;
    } else {
        if (m->raw_prev_cr)
            m->bare_cr++;
        m->line_len++;
    }
    m->raw_prev_cr = c == '\r';
}

/* A line that ended with CRLF, its text free of CR and LF, after a byte that was no CR:
 * what imf_stat_byte would make of it, at once. */
static void
imf_stat_crlf(struct imf *m)
{
    if (m->line_len > m->longest_line)
        m->longest_line = m->line_len;
    m->line_len = 0;
}

/* Index of the first CR or LF in p[i..n), n when there is none. Message text is long lines
 * of neither, so this is where the time goes. With SSE2 (every x86-64) sixteen bytes are
 * compared with both at once; elsewhere memchr finds each, and *lf_at caches where the next
 * LF is (SIZE_MAX: not looked for yet), so a line of many lone CRs is still read once. */
#if defined(__SSE2__) && !defined(IMF_NO_SIMD)
static size_t
imf_plain_end(const uint8_t *p, size_t i, size_t n, size_t *lf_at)
{
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');

    (void)lf_at;
    while (n - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned hit =
            (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (hit)
            return i + (size_t)__builtin_ctz(hit);
        i += 16;
    }
    while (i < n && p[i] != '\r' && p[i] != '\n')
        i++;
    return i;
}
#else
static size_t
imf_plain_end(const uint8_t *p, size_t i, size_t n, size_t *lf_at)
{
    const uint8_t *x;

    if (*lf_at == SIZE_MAX || *lf_at < i) {
        x = memchr(p + i, '\n', n - i);
        *lf_at = x ? (size_t)(x - p) : n;
    }
    x = memchr(p + i, '\r', *lf_at - i);
    return x ? (size_t)(x - p) : *lf_at;
}
#endif

/* imf_stat_byte over p[0..n), a run of plain text and a CRLF line at a time. */
static void
imf_stats(struct imf *m, const uint8_t *p, size_t n)
{
    size_t i = 0, j, lf_at = SIZE_MAX;

    while (i < n) {
        if (!m->raw_prev_cr) {
            j = imf_plain_end(p, i, n, &lf_at);
            m->line_len += j - i;
            i = j;
            if (n - i >= 2 && p[i] == '\r' && p[i + 1] == '\n') {
                imf_stat_crlf(m);
                i += 2;
                continue;
            }
            if (i == n)
                break;
        }
        imf_stat_byte(m, p[i]);
        i++;
    }
}

/* Message bytes on their way to the sinks: most of a DATA feed is passed on as it came, so
 * a run of the input grows until a byte is dropped (a stuffing dot) or the feed ends, and is
 * then hashed and kept in one go. Bytes held over from the previous feed go as literals. */
struct imf_run {
    const uint8_t *p; /* the feed */
    size_t off, len;  /* the run: p[off..off+len) */
};

static void
imf_run_flush(struct imf *m, struct imf_run *r)
{
    if (r->len)
        imf_sink(m, r->p + r->off, r->len);
    r->len = 0;
}

/* Passes on p[off..off+n) of the feed. */
static void
imf_take(struct imf *m, struct imf_run *r, size_t off, size_t n)
{
    if (r->len && r->off + r->len == off) {
        r->len += n;
        return;
    }
    imf_run_flush(m, r);
    r->off = off;
    r->len = n;
}

/* Passes on the k bytes the reader held back while deciding what they were (a CR, a '.',
 * ".\r"): they are the last k bytes read before p[i], so those of them in this feed are taken
 * from it, the others (read in an earlier feed) are the head of `held`. */
static void
imf_held(struct imf *m, struct imf_run *r, size_t i, const char *held, size_t k)
{
    size_t here = i < k ? i : k;

    if (here < k) {
        imf_run_flush(m, r);
        imf_sink(m, (const uint8_t *)held, k - here);
    }
    if (here)
        imf_take(m, r, i - here, here);
}

static void
imf_evidence(struct imf *m, enum imf_eol after)
{
    m->ev_total++;
    if (!m->ev && !(m->ev = mem_calloc(IMF_MAX_EVIDENCE, sizeof *m->ev)))
        return; /* counted in smuggling_dropped */
    if (m->nev < IMF_MAX_EVIDENCE) {
        m->ev[m->nev].offset = m->dot_off;
        m->ev[m->nev].before = (uint8_t)m->eol;
        m->ev[m->nev].after = (uint8_t)after;
        m->nev++;
    }
}

/* One step of the DATA reader's state machine at p[i]; returns the index after the bytes it
 * consumed (i or i + 1). */
static size_t
imf_step(struct imf *m, struct imf_run *r, const uint8_t *p, size_t i)
{
    uint8_t c = p[i];

    switch (m->st) {
    case IMF_S_TEXT:
        if (c == '\r') {
            m->st = IMF_S_CR;
        } else if (c == '\n') {
            imf_take(m, r, i, 1);
            m->eol = IMF_EOL_LF;
            m->st = IMF_S_BOL;
        } else {
            imf_take(m, r, i, 1);
        }
        break;
    case IMF_S_CR:
        /* CRLF, or a bare CR whose next byte opens the next "line" and is looked at again. */
        imf_held(m, r, i, "\r", 1);
        m->st = IMF_S_BOL;
        if (c != '\n') {
            m->eol = IMF_EOL_CR;
            return i;
        }
        imf_take(m, r, i, 1);
        m->eol = IMF_EOL_CRLF;
        break;
    case IMF_S_BOL:
        if (c != '.') {
            m->st = IMF_S_TEXT;
            return i;
        }
        m->dot_off = m->fed + i;
        m->st = IMF_S_DOT;
        break;
    case IMF_S_DOT:
        if (c == '\r') {
            m->st = IMF_S_DOTCR;
            break;
        }
        /* After CRLF the dot opens a CRLF-terminated line of more than "." and is stuffing;
         * after LF or CR it is not at a line start at all. */
        if (m->eol != IMF_EOL_CRLF)
            imf_held(m, r, i, ".", 1);
        if (c == '\n') {
            imf_evidence(m, IMF_EOL_LF);
            imf_take(m, r, i, 1);
            m->eol = IMF_EOL_LF;
            m->st = IMF_S_BOL;
            break;
        }
        m->st = IMF_S_TEXT;
        if (c != '.')
            return i;
        imf_take(m, r, i, 1);
        break;
    case IMF_S_DOTCR:
        if (c == '\n' && m->eol == IMF_EOL_CRLF) {
            m->done = 1;
            break;
        }
        if (c == '\n') {
            imf_evidence(m, IMF_EOL_CRLF);
            imf_held(m, r, i, ".\r", 2);
            imf_take(m, r, i, 1);
            m->eol = IMF_EOL_CRLF;
            m->st = IMF_S_BOL;
            break;
        }
        imf_evidence(m, IMF_EOL_CR);
        if (m->eol == IMF_EOL_CRLF)
            imf_held(m, r, i, "\r", 1);
        else
            imf_held(m, r, i, ".\r", 2);
        m->eol = IMF_EOL_CR;
        m->st = IMF_S_BOL;
        return i;
    case IMF_S_COUNT:
        m->st = IMF_S_TEXT;
        return i;
    }
    imf_stat_byte(m, c);
    return i + 1;
}

/* The DATA reader: a state machine, so a terminator split over any number of feeds needs no
 * buffer. Line ends are CRLF (RFC 5321 2.3.8); a '.' opening a line after CRLF is stuffing and
 * removed (4.5.2), unless the line is "." alone: the end of data. Bare LF and bare CR are kept
 * as message bytes, never taken as line ends, and a dot next to one of them is evidence of
 * smuggling. Inside a line, after a byte that was no CR, text is read a run at a time up to
 * the next CR or LF, and a CRLF right there ends the line at once; everything else is a step
 * of the machine, byte by byte. */
size_t
imf_data_feed(struct imf *m, const uint8_t *p, size_t n, int *done)
{
    struct imf_run r = {p, 0, 0};
    size_t i = 0, j, lf_at = SIZE_MAX;

    *done = 0;
    if (!m)
        return 0;
    if (m->done || m->finished) {
        *done = m->done;
        return 0;
    }
    m->data_mode = 1;
    while (i < n && !m->done) {
        if (m->st == IMF_S_TEXT && !m->raw_prev_cr) {
            /* Most of a body is CRLF lines that do not open with '.': they are read here in
             * one run, with the line statistics in locals. A line end at the feed's last two
             * bytes, or one before a '.', is left to the code below. */
            size_t run = i, crlf = 0;
            uint64_t len = m->line_len, longest = m->longest_line;
            for (;;) {
                j = imf_plain_end(p, i, n, &lf_at);
                len += j - i;
                i = j;
                if (n - i < 3 || p[i] != '\r' || p[i + 1] != '\n' || p[i + 2] == '.')
                    break;
                if (len > longest)
                    longest = len;
                len = 0;
                i += 2;
                crlf = 1;
            }
            if (crlf)
                m->eol = IMF_EOL_CRLF;
            if (i > run)
                imf_take(m, &r, run, i - run);
            m->line_len = len;
            m->longest_line = longest;
            if (n - i >= 2 && p[i] == '\r' && p[i + 1] == '\n') {
                imf_take(m, &r, i, 2);
                imf_stat_crlf(m);
                m->eol = IMF_EOL_CRLF;
                i += 2;
                /* A line start: anything but '.' opens plain text at once (IMF_S_BOL's
                 * step, without going through it). */
                m->st = i < n && p[i] != '.' ? IMF_S_TEXT : IMF_S_BOL;
                continue;
            }
            if (i == n)
                break;
        }
        i = imf_step(m, &r, p, i);
    }
    imf_run_flush(m, &r);
    m->fed += i;
    *done = m->done;
    return i;
}

void
imf_chunk_feed(struct imf *m, const uint8_t *p, size_t n)
{
    if (!m || m->finished || !n)
        return;
    imf_stats(m, p, n);
    m->fed += n;
    imf_sink(m, p, n);
}

void
imf_gap(struct imf *m, uint64_t n)
{
    if (!m || m->finished || !n)
        return;
    m->gap += n;
    m->fed += n;
    mime_gap(m->mime);
    /* Header bytes after a hole would be spliced onto unrelated ones. */
    m->hdr_done = 1;
    m->raw_prev_cr = 0;
    m->line_len = 0;
    /* Clients write whole lines and a hole is most often whole segments, so the likelier
     * guess is a line start; it lets a ".\r\n" right after the hole end the message. */
    if (m->data_mode) {
        m->st = IMF_S_BOL;
        m->eol = IMF_EOL_CRLF;
    }
}

void
imf_complete(struct imf *m)
{
    if (m && !m->finished)
        m->complete = 1;
}

void
imf_finish(struct imf *m)
{
    if (!m || m->finished)
        return;
    if (m->data_mode && !m->done) {
        /* Bytes held back while deciding what they were belong to the cut message. */
        if (m->st == IMF_S_CR)
            imf_sink(m, (const uint8_t *)"\r", 1);
        else if (m->st == IMF_S_DOT)
            imf_sink(m, (const uint8_t *)".", 1);
        else if (m->st == IMF_S_DOTCR)
            imf_sink(m, (const uint8_t *)".\r", 2);
        m->st = IMF_S_TEXT;
    }
    if (m->line_len > m->longest_line)
        m->longest_line = m->line_len;
    if (m->md && !m->gap) {
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(m->md, m->digest, &len) == 1 && len == sizeof m->digest)
            m->digest_ok = 1;
    }
    m->hdr_done = 1;
    m->finished = 1;
    mime_finish(m->mime);
    imf_sink_end(m, (m->data_mode ? m->done : m->complete) && !m->gap);
}

/* SHA-256 as lowercase hex into hex; before imf_finish a copy of the running context is
 * finished, so a report of a message still open is possible. -1 when there is no digest. */
static int
imf_sha256_hex(const struct imf *m, char hex[65])
{
    unsigned char d[32];
    static const char digits[] = "0123456789abcdef";
    size_t i;

    if (m->digest_ok) {
        memcpy(d, m->digest, sizeof d);
    } else {
        EVP_MD_CTX *c;
        unsigned int len = 0;
        int ok;
        if (m->finished || !m->md)
            return -1;
        c = EVP_MD_CTX_new();
        if (!c)
            return -1;
        ok = EVP_MD_CTX_copy_ex(c, m->md) == 1 && EVP_DigestFinal_ex(c, d, &len) == 1 &&
             len == sizeof d;
        EVP_MD_CTX_free(c);
        if (!ok)
            return -1;
    }
    for (i = 0; i < sizeof d; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

static const struct imf_field {
    const char *name; /* as in RFC 5322 3.6, compared without case */
    const char *key;  /* in the report */
} imf_fields[] = {
    {"from", "from"},
    {"to", "to"},
    {"cc", "cc"},
    {"subject", "subject"},
    {"date", "date"},
    {"message-id", "message_id"},
    {"user-agent", "user_agent"},
    {"x-mailer", "x_mailer"},
    {NULL, NULL},
};

/* The field body unfolded (RFC 5322 2.2.3: a line end before white space is removed; a
 * field only spans lines at folds, so every CR and LF inside it goes) and trimmed, as member
 * key of o, or with key NULL appended to array o. -1 without memory. */
static int
imf_field_value(struct jt_node *o, const char *key, const uint8_t *p, size_t n)
{
    uint8_t small[512], *v = small;
    size_t i, len = 0, start = 0;

    /* Most field values fit on the stack: no allocation for a few dozen bytes. */
    if (n > sizeof small && !(v = mem_alloc(n)))
        return -1;
    for (i = 0; i < n; i++)
        if (p[i] != '\r' && p[i] != '\n')
            v[len++] = p[i];
    while (start < len && (v[start] == ' ' || v[start] == '\t'))
        start++;
    while (len > start && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    if (key)
        jt_set_bytes(o, key, v + start, len - start);
    else
        jt_push_bytes(o, v + start, len - start);
    if (v != small)
        mem_free(v);
    return 0;
}

/* Reads the collected header section into a "headers" object. The first occurrence of
 * each single field counts; Received fields are listed in order, at most max_received.
 * "headers" and "received" are left out when empty, so both are attached at the end. */
static int
imf_headers_report(const struct imf *m, struct jt_node *obj)
{
    const uint8_t *p = m->hdr.data;
    size_t n = m->hdr.len, pos = 0, nrecv = 0, dropped = 0, k;
    struct jt_node *h, *recv;
    int rc = 0;

    if (!n)
        return 0;
    h = jt_new_obj(obj);
    recv = jt_new_arr(obj);
    if (!h || !recv)
        return -1;
    while (pos < n && rc == 0) {
        size_t start = pos, end = n, name_end, colon;

        /* A field runs to the line end that is not followed by white space. */
        while (pos < n) {
            const uint8_t *e = memchr(p + pos, '\n', n - pos);
            if (!e) {
                pos = n;
                break;
            }
            pos = (size_t)(e - p) + 1;
            if (pos < n && (p[pos] == ' ' || p[pos] == '\t'))
                continue;
            end = pos;
            break;
        }
        if (pos >= n)
            end = n;
        /* RFC 5322 3.6.8: field-name is printable US-ASCII but ':'; obsolete syntax
         * (4.5) lets white space stand before the colon. */
        name_end = start;
        while (name_end < end && p[name_end] > 32 && p[name_end] < 127 && p[name_end] != ':')
            name_end++;
        colon = name_end;
        while (colon < end && (p[colon] == ' ' || p[colon] == '\t'))
            colon++;
        if (name_end == start || colon >= end || p[colon] != ':') {
            /* Not a header field: the body began without the empty line. */
            break;
        }
        if (mime_name_is(p + start, name_end - start, "received")) {
            if (nrecv < m->max_received) {
                rc |= imf_field_value(recv, NULL, p + colon + 1, end - colon - 1);
                nrecv++;
            } else {
                dropped++;
            }
            continue;
        }
        for (k = 0; imf_fields[k].name; k++) {
            if (mime_name_is(p + start, name_end - start, imf_fields[k].name)) {
                if (!jt_get(h, imf_fields[k].key))
                    rc |= imf_field_value(h, imf_fields[k].key, p + colon + 1, end - colon - 1);
                break;
            }
        }
    }
    if (jt_size(recv))
        jt_set_val(h, "received", &(struct jt_val){.type = JT_ARR, .u.c = recv});
    if (dropped)
        jt_set_int(h, "received_dropped", (int64_t)dropped);
    if (rc == 0 && jt_size(h))
        jt_set_val(obj, "headers", &(struct jt_val){.type = JT_OBJ, .u.c = h});
    return rc;
}

int
imf_report(const struct imf *m, struct jt_node *obj)
{
    char hex[65];
    size_t i;
    int rc;

    if (!m || !obj)
        return -1;
    jt_set_int(obj, "bytes", (int64_t)m->bytes);
    /* Only a failed digest leaves the field out. */
    if (m->hash && !m->gap && imf_sha256_hex(m, hex) == 0)
        jt_set_str(obj, "sha256", hex);
    rc = imf_headers_report(m, obj);
    if (mime_report(m->mime, obj) != 0)
        rc = -1;
    if (m->done)
        jt_set_lit(obj, "end_of_data", "crlf.crlf");
    if (m->ev_total) {
        struct jt_node *arr = jt_set_arr(obj, "smuggling");
        for (i = 0; i < m->nev; i++) {
            struct jt_node *e = jt_push_obj(arr);
            jt_set_lit(e, "form", imf_forms[m->ev[i].before][m->ev[i].after]);
            jt_set_int(e, "offset", (int64_t)m->ev[i].offset);
        }
        if (m->ev_total > m->nev)
            jt_set_int(obj, "smuggling_dropped", (int64_t)(m->ev_total - m->nev));
    }
    jt_set_int(obj, "bare_lf", (int64_t)m->bare_lf);
    jt_set_int(obj, "bare_cr", (int64_t)m->bare_cr);
    jt_set_int(obj, "longest_line", (int64_t)m->longest_line);
    if (m->gap)
        jt_set_int(obj, "gap", (int64_t)m->gap);
    return rc;
}
