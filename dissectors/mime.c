/* mime.c - the MIME structure of a message, read as it streams by.
 *
 * Lines are the unit: a part ends at a delimiter line "--boundary" or "--boundary--" (RFC 2046
 * 5.1.1), and the line end before that line belongs to the delimiter, not to the part. So the
 * line end of every body line is held back until the next line shows it is no delimiter. A
 * delimiter line is at most 2 + 70 + 2 bytes plus blanks: only the first MIME_PREFIX bytes of
 * a line are kept; the rest of a longer line goes straight to the decoder.
 *
 * Entities nest: the message is entity 0 at depth 0; the parts of a multipart are one deeper,
 * and so is the message inside a message/rfc822 part. A delimiter of an outer multipart ends
 * every entity inside it, closed or not. What is kept per part is bounded (MIME_MAX_FIELD
 * bytes of a Content-* field, MIME_MAX_TEXT of a name), and so are the parts listed and the
 * depth read into. */
#include "mime.h"

#include <string.h>

#include "b64.h"
#include "buf.h"
#include "jtree.h"
#include "mem.h"

#define MIME_DEFAULT_MAX_PARTS 64
#define MIME_DEFAULT_MAX_DEPTH 8
#define MIME_DEPTH_CAP 32    /* the stacks below; max_depth is kept under it */
#define MIME_MAX_BOUNDARY 70 /* RFC 2046 5.1.1 */
#define MIME_PREFIX 96       /* "--" 70 "--" and transport padding */
#define MIME_MAX_FIELD 4096  /* a header line and a field unfolded, kept up to this */
#define MIME_MAX_TEXT 255    /* a decoded name or a type, kept up to this */
#define MIME_MAX_SECTIONS 16 /* RFC 2231 continuations of one parameter */

enum mime_state { MS_HEADER, MS_BODY, MS_IGNORE, MS_DEAD };

enum mime_cte { CTE_IDENTITY, CTE_BASE64, CTE_QP, CTE_OTHER };

struct mime_str {
    uint8_t *p;
    size_t n;
};

struct mime_part {
    uint64_t start, end; /* the body: offsets in the message */
    uint64_t decoded;    /* bytes out of the decoder (base64, quoted-printable) */
    uint64_t bad;        /* bytes the decoder could not read */
    long parent;         /* index in parts, -1: none or not listed */
    unsigned depth;
    enum mime_cte cte;
    struct mime_str type, charset, name, filename, disposition, cte_name;
    unsigned type_given : 1, body : 1, ended : 1, unclosed : 1, depth_limit : 1, no_boundary : 1,
        sha_ok : 1, decoding : 1;
    unsigned char sha[32];
};

struct mime_level { /* an open multipart */
    long part;      /* its index, -1: not listed */
    unsigned depth; /* of the multipart entity */
    int digest;     /* multipart/digest: parts default to message/rfc822 */
    size_t blen;
    uint8_t b[MIME_MAX_BOUNDARY];
};

struct mime {
    int hash;
    const EVP_MD *sha;
    size_t max_parts, max_depth;

    enum mime_state st;
    int finished, gap;
    uint64_t off; /* offset of the next byte */
    uint64_t ls;  /* offset of the current line's first byte */
    unsigned pe;  /* length of the held line end before the current line (0, 1 or 2) */
    uint8_t lp[MIME_PREFIX];
    size_t lplen;
    int over;    /* the line is longer than the prefix: no delimiter, streamed */
    int held_cr; /* streamed: a CR ended the last piece, maybe the line end's */
    struct buf ln, fld;

    struct mime_part *parts;
    size_t nparts, aparts;
    struct mime_part scratch; /* the entity being read once the list is full */
    struct mime_part *cur;
    long cur_idx;
    int32_t open[MIME_DEPTH_CAP + 2]; /* the open entity at each depth (index in parts) */
    size_t nopen;
    /* Allocated at the first multipart, freed when the message ends: a session keeps its
     * messages' reports, and most messages are no multipart. */
    struct mime_level *lv;
    size_t nlv;
    size_t blen; /* the boundary parameter of the entity being read */
    uint8_t b[MIME_MAX_BOUNDARY];
    int bad_boundary;
    int parent_digest;
    uint64_t dropped, depth_limited;

    /* The decoder of the current leaf part. */
    EVP_MD_CTX *md;
    int md_on;
    uint32_t q; /* base64 quantum */
    unsigned qn;
    int qp_eq; /* quoted-printable: 0, 1 after '=', 2 after "=X", 3 after "=\r" */
    uint8_t qp_hi;
    uint8_t qp_ws[64];
    size_t qp_wsn;
    uint8_t out[128];
    size_t outn;
};

static void
mime_str_free(struct mime_str *s)
{
    mem_free(s->p);
    s->p = NULL;
    s->n = 0;
}

static void
mime_str_set(struct mime_str *s, const uint8_t *p, size_t n, int lower)
{
    size_t i;

    mime_str_free(s);
    if (n > MIME_MAX_TEXT)
        n = MIME_MAX_TEXT;
    if (!n || !(s->p = mem_alloc(n)))
        return;
    for (i = 0; i < n; i++) {
        uint8_t c = p[i];
        s->p[i] = lower && c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
    }
    s->n = n;
}

static void
mime_part_free(struct mime_part *p)
{
    mime_str_free(&p->type);
    mime_str_free(&p->charset);
    mime_str_free(&p->name);
    mime_str_free(&p->filename);
    mime_str_free(&p->disposition);
    mime_str_free(&p->cte_name);
}

struct mime *
mime_create(const struct mime_config *cfg)
{
    struct mime *m = mem_calloc(1, sizeof *m);

    if (!m)
        return NULL;
    if (cfg) {
        m->hash = cfg->hash;
        m->sha = cfg->sha;
        m->max_parts = cfg->max_parts;
        m->max_depth = cfg->max_depth;
    }
    if (!m->max_parts)
        m->max_parts = MIME_DEFAULT_MAX_PARTS;
    if (!m->max_depth)
        m->max_depth = MIME_DEFAULT_MAX_DEPTH;
    if (m->max_depth > MIME_DEPTH_CAP)
        m->max_depth = MIME_DEPTH_CAP;
    buf_init(&m->ln, MIME_MAX_FIELD);
    buf_init(&m->fld, MIME_MAX_FIELD);
    m->cur = &m->scratch;
    m->cur_idx = -1;
    return m;
}

void
mime_destroy(struct mime *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->nparts; i++)
        mime_part_free(&m->parts[i]);
    mime_part_free(&m->scratch);
    mem_free(m->parts);
    mem_free(m->lv);
    buf_free(&m->ln);
    buf_free(&m->fld);
    EVP_MD_CTX_free(m->md);
    mem_free(m);
}

/* ---- the decoder of a leaf part ---- */

static void
mime_out_flush(struct mime *m)
{
    if (!m->outn)
        return;
    m->cur->decoded += m->outn;
    if (m->md_on && EVP_DigestUpdate(m->md, m->out, m->outn) != 1)
        m->md_on = 0;
    m->outn = 0;
}

static void
mime_out(struct mime *m, uint8_t c)
{
    m->out[m->outn++] = c;
    if (m->outn == sizeof m->out)
        mime_out_flush(m);
}

static int
mime_hex(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* What an incomplete base64 quantum holds: 2 or 3 symbols give 1 or 2 bytes, 1 gives none. */
static void
mime_b64_tail(struct mime *m)
{
    if (m->qn == 1)
        m->cur->bad++;
    if (m->qn >= 2)
        mime_out(m, (uint8_t)(m->q >> (6 * m->qn - 8)));
    if (m->qn == 3)
        mime_out(m, (uint8_t)(m->q >> 2));
    m->qn = 0;
    m->q = 0;
}

static void
mime_base64(struct mime *m, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int v = b64_value(p[i]);
        if (v < 0) {
            if (p[i] == '=')
                mime_b64_tail(m);
            else if (p[i] != '\r' && p[i] != '\n' && p[i] != ' ' && p[i] != '\t')
                m->cur->bad++;
            continue;
        }
        m->q = (m->q << 6) | (uint32_t)v;
        if (++m->qn == 4) {
            mime_out(m, (uint8_t)(m->q >> 16));
            mime_out(m, (uint8_t)(m->q >> 8));
            mime_out(m, (uint8_t)m->q);
            m->qn = 0;
            m->q = 0;
        }
    }
}

static void
mime_qp_ws_flush(struct mime *m)
{
    size_t i;

    for (i = 0; i < m->qp_wsn; i++)
        mime_out(m, m->qp_ws[i]);
    m->qp_wsn = 0;
}

/* RFC 2045 6.7: "=XX" is a byte, "=" at a line end a soft break; blanks ending a line are
 * transport padding and go. Anything else after '=' is kept as it stands, and counted. */
static void
mime_qp(struct mime *m, const uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint8_t c = p[i];
        int h;
        switch (m->qp_eq) {
        case 1:
            if (c == '\r') {
                m->qp_eq = 3;
                continue;
            }
            if (c == '\n') {
                m->qp_eq = 0;
                continue;
            }
            if ((h = mime_hex(c)) >= 0) {
                m->qp_hi = (uint8_t)h;
                m->qp_eq = 2;
                continue;
            }
            m->qp_eq = 0;
            m->cur->bad++;
            mime_out(m, '=');
            break; /* c read below */
        case 2:
            m->qp_eq = 0;
            if ((h = mime_hex(c)) >= 0) {
                mime_out(m, (uint8_t)(m->qp_hi << 4 | h));
                continue;
            }
            m->cur->bad++;
            mime_out(m, '=');
            mime_out(m, "0123456789ABCDEF"[m->qp_hi]);
            break;
        case 3:
            m->qp_eq = 0;
            if (c == '\n')
                continue;
            break; /* "=\r" then text: a soft break before a bare CR's line */
        default:
            break;
        }
        if (c == '=') {
            mime_qp_ws_flush(m);
            m->qp_eq = 1;
        } else if (c == ' ' || c == '\t') {
            if (m->qp_wsn == sizeof m->qp_ws)
                mime_qp_ws_flush(m);
            m->qp_ws[m->qp_wsn++] = c;
        } else if (c == '\r' || c == '\n') {
            m->qp_wsn = 0;
            mime_out(m, c);
        } else {
            mime_qp_ws_flush(m);
            mime_out(m, c);
        }
    }
}

/* Content bytes of the current leaf part. */
static void
mime_dec(struct mime *m, const uint8_t *p, size_t n)
{
    if (!m->cur->decoding || !n)
        return;
    switch (m->cur->cte) {
    case CTE_BASE64:
        mime_base64(m, p, n);
        break;
    case CTE_QP:
        mime_qp(m, p, n);
        break;
    default:
        m->cur->decoded += n;
        if (m->md_on && EVP_DigestUpdate(m->md, p, n) != 1)
            m->md_on = 0;
        break;
    }
}

static void
mime_dec_eol(struct mime *m, unsigned pe)
{
    if (pe)
        mime_dec(m, (const uint8_t *)"\r\n" + (2 - pe), pe);
}

static void
mime_leaf_begin(struct mime *m)
{
    if (m->cur_idx < 0)
        return; /* not listed: nothing of it is reported */
    m->cur->decoding = 1;
    m->q = 0;
    m->qn = 0;
    m->qp_eq = 0;
    m->qp_wsn = 0;
    m->outn = 0;
    m->md_on = 0;
    /* A message that is one plain part: data.sha256 already covers its body, and a second
     * SHA-256 over every byte of ordinary mail costs a quarter of the run. */
    if (m->hash && !(m->cur->depth == 0 && m->cur->cte == CTE_IDENTITY)) {
        if (!m->md)
            m->md = EVP_MD_CTX_new();
        m->md_on = m->md && EVP_DigestInit_ex(m->md, m->sha ? m->sha : EVP_sha256(), NULL) == 1;
    }
}

static void
mime_leaf_end(struct mime *m, struct mime_part *p)
{
    unsigned int len = 0;

    if (!p->decoding)
        return;
    if (p->cte == CTE_BASE64)
        mime_b64_tail(m);
    if (p->cte == CTE_QP) {
        /* A soft break ending the content is common ("=" before the delimiter's CRLF). */
        if (m->qp_eq == 2)
            p->bad++;
        m->qp_wsn = 0; /* blanks ending the last line are padding too */
    }
    mime_out_flush(m);
    if (m->md_on && EVP_DigestFinal_ex(m->md, p->sha, &len) == 1 && len == sizeof p->sha)
        p->sha_ok = 1;
    m->md_on = 0;
    p->decoding = 0;
}

/* ---- entities ---- */

static struct mime_part *
mime_part_at(struct mime *m, long idx)
{
    return idx >= 0 && (size_t)idx < m->nparts ? &m->parts[idx] : NULL;
}

/* A new entity at depth, whose header comes next. */
static void
mime_entity(struct mime *m, unsigned depth, long parent, int digest)
{
    struct mime_part *p = &m->scratch;
    long idx = -1;

    if (m->nparts < m->max_parts) {
        if (m->nparts == m->aparts) {
            size_t na = m->aparts ? m->aparts * 2 : 1; /* most messages are one part */
            struct mime_part *np;
            if (na > m->max_parts)
                na = m->max_parts;
            np = mem_realloc(m->parts, na * sizeof *np);
            if (np) {
                m->parts = np;
                m->aparts = na;
            }
        }
        if (m->nparts < m->aparts) {
            idx = (long)m->nparts++;
            p = &m->parts[idx];
            memset(p, 0, sizeof *p);
        }
    }
    if (idx < 0) {
        m->dropped++;
        mime_part_free(p);
        memset(p, 0, sizeof *p);
    }
    p->depth = depth;
    p->parent = parent;
    m->cur = p;
    m->cur_idx = idx;
    m->open[depth] = (int32_t)idx;
    m->nopen = depth + 1;
    m->blen = 0;
    m->bad_boundary = 0;
    m->parent_digest = digest;
    m->st = MS_HEADER;
    buf_reset(&m->fld);
}

/* Ends the open entities at depth >= from, their bodies ending at end. */
static void
mime_close_from(struct mime *m, size_t from, uint64_t end)
{
    while (m->nopen > from) {
        struct mime_part *p;
        m->nopen--;
        p = mime_part_at(m, m->open[m->nopen]);
        if (!p)
            continue;
        mime_leaf_end(m, p);
        if (!p->body)
            p->start = end;
        p->end = end;
        p->ended = 1;
    }
}

static int
mime_is(const struct mime_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->n == n && memcmp(s->p, lit, n) == 0;
}

static int
mime_starts(const struct mime_str *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->n >= n && memcmp(s->p, lit, n) == 0;
}

/* The empty line after an entity's header: what its body is. */
static void
mime_header_end(struct mime *m)
{
    struct mime_part *p = m->cur;

    /* Header lines are collected again at the next part's header, if any: a message kept
     * with its session holds no buffer for them. */
    buf_free(&m->ln);
    buf_free(&m->fld);
    unsigned depth = p->depth;
    int nested = depth + 1 <= m->max_depth && m->nlv < m->max_depth;

    p->body = 1;
    p->start = m->off;
    if (!p->type_given) {
        mime_str_set(&p->type,
                     (const uint8_t *)(m->parent_digest ? "message/rfc822" : "text/plain"),
                     m->parent_digest ? 14 : 10, 0);
    }
    /* RFC 2046 5.1: a multipart's body is 7bit, 8bit or binary; an encoded one is read as
     * the leaf it then is. */
    if (mime_starts(&p->type, "multipart/") && p->cte == CTE_IDENTITY) {
        if (!m->blen || m->bad_boundary) {
            p->no_boundary = 1;
        } else if (!nested) {
            p->depth_limit = 1;
            m->depth_limited++;
        } else if (!m->lv && !(m->lv = mem_calloc(m->max_depth + 1, sizeof *m->lv))) {
            p->no_boundary = 1; /* without memory its parts cannot be told apart */
        } else {
            struct mime_level *l = &m->lv[m->nlv++];
            l->part = m->cur_idx;
            l->depth = depth;
            l->digest = mime_is(&p->type, "multipart/digest");
            l->blen = m->blen;
            memcpy(l->b, m->b, m->blen);
            m->st = MS_IGNORE; /* the preamble */
            m->pe = 0;
            return;
        }
    } else if ((mime_is(&p->type, "message/rfc822") || mime_is(&p->type, "message/global")) &&
               p->cte == CTE_IDENTITY) {
        if (nested) {
            mime_entity(m, depth + 1, m->cur_idx, 0);
            m->pe = 0;
            return;
        }
        p->depth_limit = 1;
        m->depth_limited++;
    }
    m->st = MS_BODY;
    m->pe = 0;
    mime_leaf_begin(m);
}

/* ---- header fields ---- */

static int
mime_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 2045 5.1 tspecials, blanks and controls end a token. */
static int
mime_tok(uint8_t c)
{
    return c > 32 && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* Skips blanks and (nested) comments. */
static size_t
mime_skip(const uint8_t *p, size_t i, size_t n)
{
    int depth = 0;

    while (i < n) {
        if (depth && p[i] == '\\' && i + 1 < n) {
            i += 2;
            continue;
        }
        if (p[i] == '(')
            depth++;
        else if (p[i] == ')' && depth)
            depth--;
        else if (!depth && !mime_ws(p[i]))
            break;
        i++;
    }
    return i;
}

int
mime_name_is(const uint8_t *p, size_t n, const char *name)
{
    size_t i;

    if (strlen(name) != n)
        return 0;
    for (i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)name[i])
            return 0;
    }
    return 1;
}

struct mime_out {
    uint8_t *p;
    size_t n, cap;
};

static void
mime_put(struct mime_out *o, uint8_t c)
{
    if (o->n < o->cap)
        o->p[o->n++] = c;
}

/* Bytes in charset cs as UTF-8 where that is known (ISO-8859-1 is each byte's code point);
 * other charsets are passed as they are and the report escapes what is not UTF-8. */
static void
mime_put_cs(struct mime_out *o, const uint8_t *cs, size_t csn, const uint8_t *p, size_t n)
{
    int latin1 = mime_name_is(cs, csn, "iso-8859-1") || mime_name_is(cs, csn, "latin1") ||
                 mime_name_is(cs, csn, "us-ascii");
    size_t i;

    for (i = 0; i < n; i++) {
        if (latin1 && p[i] >= 0x80) {
            mime_put(o, (uint8_t)(0xc0 | p[i] >> 6));
            mime_put(o, (uint8_t)(0x80 | (p[i] & 0x3f)));
        } else {
            mime_put(o, p[i]);
        }
    }
}

/* One RFC 2047 encoded word at p[0..n) ("=?cs?B?text?=" or Q); its length, 0 when p is none. */
static size_t
mime_ew(struct mime_out *o, const uint8_t *p, size_t n)
{
    uint8_t tmp[MIME_MAX_TEXT + 1];
    size_t i = 2, cs, csn, tn = 0;
    uint8_t enc;

    if (n < 8 || p[0] != '=' || p[1] != '?')
        return 0;
    cs = i;
    while (i < n && p[i] != '?' && mime_tok(p[i]))
        i++;
    if (i + 3 >= n || p[i] != '?' || i == cs || p[i + 2] != '?')
        return 0;
    csn = i - cs;
    /* RFC 2231 5: a language after '*' in the charset. */
    for (size_t k = cs; k < i; k++)
        if (p[k] == '*') {
            csn = k - cs;
            break;
        }
    enc = p[i + 1];
    if (enc == 'b')
        enc = 'B';
    if (enc == 'q')
        enc = 'Q';
    if (enc != 'B' && enc != 'Q')
        return 0;
    i += 3;
    size_t t = i;
    while (i + 1 < n && !(p[i] == '?' && p[i + 1] == '='))
        i++;
    if (i + 1 >= n)
        return 0;
    if (enc == 'Q') {
        for (size_t k = t; k < i && tn < sizeof tmp; k++) {
            int h1, h2;
            if (p[k] == '_') {
                tmp[tn++] = ' ';
            } else if (p[k] == '=' && k + 2 < i && (h1 = mime_hex(p[k + 1])) >= 0 &&
                       (h2 = mime_hex(p[k + 2])) >= 0) {
                tmp[tn++] = (uint8_t)(h1 << 4 | h2);
                k += 2;
            } else {
                tmp[tn++] = p[k];
            }
        }
    } else {
        uint32_t q = 0;
        unsigned qn = 0;
        for (size_t k = t; k < i; k++) {
            int v = b64_value(p[k]);
            if (v < 0)
                continue;
            q = q << 6 | (uint32_t)v;
            if (++qn == 4) {
                for (int s = 16; s >= 0; s -= 8)
                    if (tn < sizeof tmp)
                        tmp[tn++] = (uint8_t)(q >> s);
                q = 0;
                qn = 0;
            }
        }
        if (qn >= 2 && tn < sizeof tmp)
            tmp[tn++] = (uint8_t)(q >> (6 * qn - 8));
        if (qn == 3 && tn < sizeof tmp)
            tmp[tn++] = (uint8_t)(q >> 2);
    }
    mime_put_cs(o, p + cs, csn, tmp, tn);
    return i + 2;
}

/* Text with RFC 2047 encoded words decoded; blanks between two encoded words go (6.2). */
static void
mime_2047(struct mime_out *o, const uint8_t *p, size_t n)
{
    size_t i = 0, ew_end = 0;
    int after_ew = 0;

    while (i < n) {
        size_t mark = o->n, k;
        if (p[i] == '=' && (k = mime_ew(o, p + i, n - i)) > 0) {
            if (after_ew) {
                /* drop the blanks written since the last word */
                size_t len = o->n - mark;
                memmove(o->p + ew_end, o->p + mark, len);
                o->n = ew_end + len;
            }
            i += k;
            after_ew = 1;
            ew_end = o->n;
            continue;
        }
        if (p[i] != ' ' && p[i] != '\t')
            after_ew = 0;
        mime_put(o, p[i]);
        i++;
    }
}

/* One parameter's value: a quoted-string (without its quotes and escapes) or a token. */
static size_t
mime_value(const uint8_t *p, size_t i, size_t n, struct mime_out *o)
{
    if (i < n && p[i] == '"') {
        i++;
        while (i < n && p[i] != '"') {
            if (p[i] == '\\' && i + 1 < n)
                i++;
            if (p[i] != '\r' && p[i] != '\n')
                mime_put(o, p[i]);
            i++;
        }
        return i < n ? i + 1 : i;
    }
    while (i < n && p[i] != ';' && !mime_ws(p[i]))
        mime_put(o, p[i++]);
    return i;
}

struct mime_section {
    unsigned num;
    int ext;
    uint8_t v[MIME_MAX_TEXT + 1];
    size_t n;
};

/* The parameters of a Content-Type or Content-Disposition value from p[i..n): boundary and
 * charset (Content-Type), the file name (name, filename), with RFC 2231 continuations and
 * charsets, and RFC 2047 words in a plain value (against the RFCs, but common). */
static void
mime_params(struct mime *m, const uint8_t *p, size_t i, size_t n, int ctype)
{
    struct mime_section *sec;
    size_t nsec = 0, k;
    uint8_t plain[MIME_MAX_TEXT + 1];
    size_t plainn = 0;
    int have_plain = 0;
    const char *want = ctype ? "name" : "filename";

    sec = mem_calloc(MIME_MAX_SECTIONS, sizeof *sec);
    if (!sec)
        return;
    while (i < n) {
        size_t a, an, base;
        uint8_t v[MIME_MAX_TEXT + 1];
        struct mime_out o = {v, 0, sizeof v};
        i = mime_skip(p, i, n);
        if (i < n && p[i] != ';') {
            /* junk: skip to the next parameter */
            while (i < n && p[i] != ';')
                i++;
        }
        if (i >= n)
            break;
        i = mime_skip(p, i + 1, n);
        a = i;
        while (i < n && mime_tok(p[i]))
            i++;
        an = i - a;
        i = mime_skip(p, i, n);
        if (!an || i >= n || p[i] != '=')
            continue;
        i = mime_value(p, mime_skip(p, i + 1, n), n, &o);
        /* attribute[*section][*] */
        for (base = 0; base < an && p[a + base] != '*'; base++)
            ;
        if (ctype && mime_name_is(p + a, an, "boundary")) {
            if (!m->blen && !m->bad_boundary) {
                /* RFC 2046 5.1.1: 1 to 70 characters. */
                if (o.n == 0 || o.n > MIME_MAX_BOUNDARY) {
                    m->bad_boundary = 1;
                } else {
                    memcpy(m->b, v, o.n);
                    m->blen = o.n;
                }
            }
        } else if (ctype && mime_name_is(p + a, an, "charset")) {
            if (!m->cur->charset.n)
                mime_str_set(&m->cur->charset, v, o.n, 1);
        } else if (mime_name_is(p + a, base, want)) {
            if (base == an) {
                if (!have_plain) {
                    memcpy(plain, v, o.n);
                    plainn = o.n;
                    have_plain = 1;
                }
            } else if (nsec < MIME_MAX_SECTIONS) {
                unsigned num = 0;
                size_t j = base + 1;
                int digits = 0;
                while (j < an && p[a + j] >= '0' && p[a + j] <= '9' && num < 1000) {
                    num = num * 10 + (unsigned)(p[a + j] - '0');
                    j++;
                    digits = 1;
                }
                sec[nsec].num = digits ? num : 0;
                sec[nsec].ext = !digits || (j < an && p[a + j] == '*');
                memcpy(sec[nsec].v, v, o.n);
                sec[nsec].n = o.n;
                nsec++;
            }
        }
    }
    uint8_t res[MIME_MAX_TEXT + 1];
    struct mime_out r = {res, 0, sizeof res};
    if (nsec) {
        /* RFC 2231 3 and 4: sections in order from 0; the first extended one opens with
         * charset'language'; extended values are %XX-encoded. */
        const uint8_t *cs = NULL;
        size_t csn = 0;
        unsigned want_num = 0;
        for (;;) {
            struct mime_section *s = NULL;
            for (k = 0; k < nsec; k++)
                if (sec[k].num == want_num) {
                    s = &sec[k];
                    break;
                }
            if (!s)
                break;
            size_t j = 0;
            if (s->ext && want_num == 0) {
                const uint8_t *q1 = memchr(s->v, '\'', s->n), *q2;
                if (q1 && (q2 = memchr(q1 + 1, '\'', s->n - (size_t)(q1 + 1 - s->v)))) {
                    cs = s->v;
                    csn = (size_t)(q1 - s->v);
                    j = (size_t)(q2 + 1 - s->v);
                }
            }
            uint8_t raw[MIME_MAX_TEXT + 1];
            size_t rn = 0;
            for (; j < s->n && rn < sizeof raw; j++) {
                int h1, h2;
                if (s->ext && s->v[j] == '%' && j + 2 < s->n && (h1 = mime_hex(s->v[j + 1])) >= 0 &&
                    (h2 = mime_hex(s->v[j + 2])) >= 0) {
                    raw[rn++] = (uint8_t)(h1 << 4 | h2);
                    j += 2;
                } else {
                    raw[rn++] = s->v[j];
                }
            }
            if (cs)
                mime_put_cs(&r, cs, csn, raw, rn);
            else
                for (j = 0; j < rn; j++)
                    mime_put(&r, raw[j]);
            want_num++;
        }
    }
    if (!r.n && have_plain)
        mime_2047(&r, plain, plainn);
    if (r.n) {
        struct mime_str *dst = ctype ? &m->cur->name : &m->cur->filename;
        if (!dst->n)
            mime_str_set(dst, res, r.n, 0);
    }
    mem_free(sec);
}

/* The field collected in fld, unfolded: only the Content-* fields matter here. */
static void
mime_field(struct mime *m)
{
    const uint8_t *p = m->fld.data;
    size_t n = m->fld.len, i = 0, name_end, t;
    struct mime_part *part = m->cur;

    if (!n)
        return;
    while (i < n && p[i] != ':' && p[i] > 32 && p[i] < 127)
        i++;
    name_end = i;
    i = mime_skip(p, i, n);
    if (i >= n || p[i] != ':' || !name_end)
        return;
    i = mime_skip(p, i + 1, n);
    if (mime_name_is(p, name_end, "content-type")) {
        if (part->type_given)
            return; /* the first one counts */
        t = i;
        while (i < n && mime_tok(p[i]))
            i++;
        if (i < n && p[i] == '/') {
            i++;
            while (i < n && mime_tok(p[i]))
                i++;
        }
        if (i > t) {
            mime_str_set(&part->type, p + t, i - t, 1);
            part->type_given = 1;
        }
        mime_params(m, p, i, n, 1);
    } else if (mime_name_is(p, name_end, "content-disposition")) {
        if (part->disposition.n)
            return;
        t = i;
        while (i < n && mime_tok(p[i]))
            i++;
        mime_str_set(&part->disposition, p + t, i - t, 1);
        mime_params(m, p, i, n, 0);
    } else if (mime_name_is(p, name_end, "content-transfer-encoding")) {
        if (part->cte_name.n)
            return;
        t = i;
        while (i < n && mime_tok(p[i]))
            i++;
        mime_str_set(&part->cte_name, p + t, i - t, 1);
        if (mime_is(&part->cte_name, "base64"))
            part->cte = CTE_BASE64;
        else if (mime_is(&part->cte_name, "quoted-printable"))
            part->cte = CTE_QP;
        else if (!part->cte_name.n || mime_is(&part->cte_name, "7bit") ||
                 mime_is(&part->cte_name, "8bit") || mime_is(&part->cte_name, "binary"))
            part->cte = CTE_IDENTITY;
        else
            part->cte = CTE_OTHER;
    }
}

/* A header line without its line end. */
static void
mime_header_line(struct mime *m, const uint8_t *l, size_t n)
{
    if (n == 0) {
        mime_field(m);
        buf_reset(&m->fld);
        mime_header_end(m);
        return;
    }
    if (l[0] == ' ' || l[0] == '\t') {
        (void)buf_append(&m->fld, l, n); /* cut at the cap */
        return;
    }
    mime_field(m);
    buf_reset(&m->fld);
    (void)buf_append(&m->fld, l, n);
}

/* ---- lines ---- */

/* The open multipart whose delimiter l is, innermost first; -1: none. */
static long
mime_delim(const struct mime *m, const uint8_t *l, size_t n, int *close)
{
    size_t k;

    while (n && (l[n - 1] == ' ' || l[n - 1] == '\t'))
        n--;
    if (n < 3 || l[0] != '-' || l[1] != '-')
        return -1;
    for (k = m->nlv; k-- > 0;) {
        const struct mime_level *v = &m->lv[k];
        if (n < 2 + v->blen || memcmp(l + 2, v->b, v->blen) != 0)
            continue;
        if (n == 2 + v->blen) {
            *close = 0;
            return (long)k;
        }
        if (n == 4 + v->blen && l[2 + v->blen] == '-' && l[3 + v->blen] == '-') {
            *close = 1;
            return (long)k;
        }
    }
    return -1;
}

static void
mime_delimiter(struct mime *m, size_t k, int close)
{
    struct mime_level *v = &m->lv[k];
    size_t j;

    mime_close_from(m, v->depth + 1, m->ls - m->pe);
    /* Multiparts inside this one that never saw their close delimiter. */
    for (j = k + 1; j < m->nlv; j++) {
        struct mime_part *p = mime_part_at(m, m->lv[j].part);
        if (p)
            p->unclosed = 1;
    }
    m->pe = 0;
    if (close) {
        m->nlv = k;
        m->st = MS_IGNORE;    /* the epilogue */
        m->cur = &m->scratch; /* no part is read until the next delimiter */
        m->cur_idx = -1;
        return;
    }
    m->nlv = k + 1;
    mime_entity(m, v->depth + 1, v->part, v->digest);
}

/* The line in lp (or streamed, when over) ended with its LF; eol: 1 or 2 bytes of line end. */
static void
mime_line_end(struct mime *m, unsigned eol)
{
    if (!m->over) {
        const uint8_t *l = m->st == MS_HEADER ? m->ln.data : m->lp;
        size_t n = m->st == MS_HEADER ? m->ln.len : m->lplen;
        size_t pn = m->lplen;
        /* In a header the line is kept in ln; lp may hold only its start. */
        int whole = m->st != MS_HEADER || m->ln.len == m->lplen;
        long k;
        int close = 0;
        if (n && l[n - 1] == '\r')
            n--;
        if (pn && m->lp[pn - 1] == '\r')
            pn--;
        if (whole && (k = mime_delim(m, m->lp, pn, &close)) >= 0) {
            mime_delimiter(m, (size_t)k, close);
        } else if (m->st == MS_HEADER) {
            mime_header_line(m, l, n);
        } else if (m->st == MS_BODY) {
            mime_dec_eol(m, m->pe);
            mime_dec(m, m->lp, n);
            m->pe = eol;
        } else {
            m->pe = eol;
        }
    } else {
        m->pe = eol;
    }
    m->ls = m->off;
    m->lplen = 0;
    m->over = 0;
    m->held_cr = 0;
    buf_reset(&m->ln);
}

void
mime_feed(struct mime *m, const uint8_t *p, size_t n)
{
    size_t i = 0;

    if (!m || m->st == MS_DEAD || m->finished)
        return;
    if (!m->off && !m->nopen)
        mime_entity(m, 0, -1, 0);
    while (i < n) {
        if (m->st == MS_BODY && !m->nlv) {
            /* No multipart is open: no line can end this part, so the rest of the message
             * is its content as it comes (most mail is read here, at memcpy speed). */
            if (m->over && m->held_cr)
                mime_dec(m, (const uint8_t *)"\r", 1);
            mime_dec_eol(m, m->pe);
            mime_dec(m, m->lp, m->lplen);
            m->pe = 0;
            m->lplen = 0;
            m->over = 0;
            m->held_cr = 0;
            mime_dec(m, p + i, n - i);
            m->off += n - i;
            return;
        }
        const uint8_t *lf = memchr(p + i, '\n', n - i);
        size_t e = lf ? (size_t)(lf - p) : n;
        if (m->over) {
            /* The rest of a long line: content, but for a CR that may be the line end's. */
            size_t ce = e;
            int cr_end = 0;
            if (m->held_cr && !(lf && e == i)) {
                if (m->st == MS_BODY)
                    mime_dec(m, (const uint8_t *)"\r", 1);
                m->held_cr = 0;
            }
            if (ce > i && p[ce - 1] == '\r') {
                ce--;
                cr_end = 1;
            }
            if (m->st == MS_BODY)
                mime_dec(m, p + i, ce - i);
            if (lf) {
                unsigned eol = m->held_cr || cr_end ? 2 : 1;
                m->off += e + 1 - i;
                i = e + 1;
                mime_line_end(m, eol);
            } else {
                m->held_cr = cr_end;
                m->off += n - i;
                i = n;
            }
            continue;
        }
        size_t take = e - i, room = MIME_PREFIX - m->lplen;
        if (m->st == MS_HEADER) {
            (void)buf_append(&m->ln, p + i, take); /* cut at the cap */
            size_t c = take < room ? take : room;
            memcpy(m->lp + m->lplen, p + i, c);
            m->lplen += c;
        } else if (take <= room) {
            memcpy(m->lp + m->lplen, p + i, take);
            m->lplen += take;
        } else {
            /* Longer than any delimiter line: what was held is content, the rest streams. */
            if (m->st == MS_BODY) {
                mime_dec_eol(m, m->pe);
                mime_dec(m, m->lp, m->lplen);
            }
            m->pe = 0;
            m->lplen = 0;
            m->over = 1;
            continue;
        }
        m->off += take;
        i = e;
        if (lf) {
            m->off++;
            i++;
            size_t ln = m->lplen;
            mime_line_end(m, ln && m->lp[ln - 1] == '\r' ? 2 : 1);
        }
    }
}

void
mime_gap(struct mime *m)
{
    if (!m || m->finished)
        return;
    if (m->cur->decoding) {
        m->cur->decoding = 0; /* no hash of a part with a hole */
        m->md_on = 0;
    }
    m->gap = 1;
    m->st = MS_DEAD;
}

void
mime_finish(struct mime *m)
{
    size_t j;

    if (!m || m->finished)
        return;
    if (!m->nopen && !m->gap)
        mime_entity(m, 0, -1, 0);
    if (m->st == MS_HEADER) {
        /* A message that is only a header, or a last line without its end. */
        if (m->ln.len) {
            mime_field(m);
            buf_reset(&m->fld);
            (void)buf_append(&m->fld, m->ln.data, m->ln.len);
        }
        mime_field(m);
        buf_reset(&m->fld);
        if (!m->cur->type_given)
            mime_str_set(&m->cur->type,
                         (const uint8_t *)(m->parent_digest ? "message/rfc822" : "text/plain"),
                         m->parent_digest ? 14 : 10, 0);
    } else if (m->st == MS_BODY) {
        /* The message's last line end is the last part's. */
        mime_dec_eol(m, m->pe);
        if (!m->over)
            mime_dec(m, m->lp, m->lplen);
        else if (m->held_cr)
            mime_dec(m, (const uint8_t *)"\r", 1);
    }
    mime_close_from(m, 0, m->off);
    for (j = 0; j < m->nlv; j++) {
        struct mime_part *p = mime_part_at(m, m->lv[j].part);
        if (p)
            p->unclosed = 1;
    }
    m->nlv = 0;
    m->finished = 1;
    /* What the report needs is in parts; the reading state goes. */
    mem_free(m->lv);
    m->lv = NULL;
    buf_free(&m->ln);
    buf_free(&m->fld);
    EVP_MD_CTX_free(m->md);
    m->md = NULL;
}

static void
mime_put_str(struct jt_node *o, const char *key, const struct mime_str *s)
{
    if (s->n)
        jt_set_bytes(o, key, s->p, s->n);
}

int
mime_report(const struct mime *m, struct jt_node *obj)
{
    static const char digits[] = "0123456789abcdef";
    struct jt_node *mo, *arr;
    size_t i, k;

    if (!obj)
        return -1;
    if (!m || (!m->nparts && !m->dropped))
        return 0;
    if (!(mo = jt_set_obj(obj, "mime")) || !(arr = jt_set_arr(mo, "parts")))
        return -1;
    for (i = 0; i < m->nparts; i++) {
        const struct mime_part *p = &m->parts[i];
        struct jt_node *o = jt_push_obj(arr);
        uint64_t end = p->ended ? p->end : m->off;
        if (!o)
            return -1;
        jt_set_int(o, "depth", (int64_t)p->depth);
        if (p->parent >= 0)
            jt_set_int(o, "parent", (int64_t)p->parent);
        mime_put_str(o, "type", &p->type);
        if (!p->type_given)
            jt_set_bool(o, "type_given", 0);
        mime_put_str(o, "charset", &p->charset);
        mime_put_str(o, "disposition", &p->disposition);
        mime_put_str(o, "name", &p->name);
        mime_put_str(o, "filename", &p->filename);
        mime_put_str(o, "transfer_encoding", &p->cte_name);
        jt_set_int(o, "bytes", (int64_t)(p->body && end > p->start ? end - p->start : 0));
        if (p->cte == CTE_BASE64 || p->cte == CTE_QP) {
            if (p->decoded || p->ended)
                jt_set_int(o, "decoded_bytes", (int64_t)p->decoded);
            if (p->bad)
                jt_set_int(o, "decode_errors", (int64_t)p->bad);
        }
        if (p->sha_ok) {
            char hex[65];
            for (k = 0; k < sizeof p->sha; k++) {
                hex[2 * k] = digits[p->sha[k] >> 4];
                hex[2 * k + 1] = digits[p->sha[k] & 15];
            }
            hex[64] = '\0';
            jt_set_str(o, "sha256", hex);
        }
        if (p->unclosed)
            jt_set_bool(o, "unclosed", 1);
        if (p->no_boundary)
            jt_set_bool(o, "no_boundary", 1);
        if (p->depth_limit)
            jt_set_bool(o, "depth_limit", 1);
    }
    if (m->dropped)
        jt_set_int(mo, "parts_dropped", (int64_t)m->dropped);
    if (m->depth_limited)
        jt_set_int(mo, "depth_limited", (int64_t)m->depth_limited);
    if (m->gap)
        jt_set_bool(mo, "gap", 1);
    return 0;
}
