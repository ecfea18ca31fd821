/* sasl.c - SMTP AUTH exchanges (RFC 4954) and the SASL mechanisms inside them: PLAIN
 * (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2, OAUTHBEARER (RFC 7628), SCRAM (RFC 5802,
 * 7677), EXTERNAL (RFC 4422 appendix A); base64 as in RFC 4648 section 4. */
#include "sasl.h"

#include <string.h>
#include <strings.h>

#include "b64.h"
#include "buf.h"
#include "enhanced.h"
#include "jtree.h"
#include "mem.h"

#define SASL_DEFAULT_MAX_BLOB 16384
/* RFC 4422 3.1 limits names to 20 characters; anything longer is kept cut and flagged. */
#define SASL_MAX_MECH 64
/* Client lines kept for show_secrets; an exchange with more is odd, the rest is counted. */
#define SASL_MAX_RESPONSES 16
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; keep a little more. */
#define SASL_MAX_TEXT 1024

enum sasl_mech {
    SASL_MECH_UNKNOWN,
    SASL_MECH_PLAIN,
    SASL_MECH_LOGIN,
    SASL_MECH_CRAM_MD5,
    SASL_MECH_XOAUTH2,
    SASL_MECH_OAUTHBEARER,
    SASL_MECH_SCRAM,
    SASL_MECH_EXTERNAL,
    SASL_MECH_COUNT
};

/* What the next LOGIN response carries; the server's prompt can override the order. */
enum sasl_login { SASL_LOGIN_USER, SASL_LOGIN_PASSWORD, SASL_LOGIN_DONE };

struct sasl {
    enum sasl_mech mech;
    uint8_t mech_name[SASL_MAX_MECH];
    size_t mech_len;
    size_t max_blob;
    enum sasl_result result;
    enum sasl_login login_next;

    struct buf user;
    struct buf authzid;
    struct buf password;
    struct buf token;
    struct buf server_error;
    struct buf text;
    int has_user, has_authzid, has_password, has_token, has_server_error;

    struct buf responses[SASL_MAX_RESPONSES];
    size_t nresponses;      /* kept in responses[] */
    size_t responses_total; /* every client response, the initial one included */
    size_t responses_sent;  /* of which carried data: neither "*" nor empty ("=") */
    size_t msgs;            /* client messages the mechanism has interpreted */
    unsigned steps;         /* 334 challenges */

    int code;
    char enhanced[16];
    int open;
    int cancelled;
    int malformed;
    int truncated;
};

/* Every mechanism this program knows, with the parser that reads it and what its client
 * responses put on the wire: read by sasl_begin and by sasl_mech_secret. A mechanism with
 * no parser of its own (SASL_MECH_UNKNOWN) is still named here for what it reveals. */
static const struct sasl_mech_name {
    const char *name;
    enum sasl_mech mech;
    enum sasl_secret secret;
} sasl_mech_names[] = {
    /* RFC 4616: user and password in one base64 response. */
    {"PLAIN", SASL_MECH_PLAIN, SASL_SECRET_PASSWORD},
    /* User, then password, each in base64. */
    {"LOGIN", SASL_MECH_LOGIN, SASL_SECRET_PASSWORD},
    /* Challenge-response: a keyed digest of the challenge, never the password. */
    {"CRAM-MD5", SASL_MECH_CRAM_MD5, SASL_SECRET_NONE},
    {"DIGEST-MD5", SASL_MECH_UNKNOWN, SASL_SECRET_NONE},
    /* A bearer token: whoever reads it can use it until it expires. */
    {"XOAUTH2", SASL_MECH_XOAUTH2, SASL_SECRET_TOKEN},
    {"XOAUTH", SASL_MECH_UNKNOWN, SASL_SECRET_TOKEN},
    {"OAUTHBEARER", SASL_MECH_OAUTHBEARER, SASL_SECRET_TOKEN},
    /* RFC 5802: proofs over a salted password, never the password. */
    {"SCRAM-SHA-1", SASL_MECH_SCRAM, SASL_SECRET_NONE},
    {"SCRAM-SHA-1-PLUS", SASL_MECH_SCRAM, SASL_SECRET_NONE},
    {"SCRAM-SHA-256", SASL_MECH_SCRAM, SASL_SECRET_NONE},
    {"SCRAM-SHA-256-PLUS", SASL_MECH_SCRAM, SASL_SECRET_NONE},
    {"SCRAM-SHA-512", SASL_MECH_SCRAM, SASL_SECRET_NONE},
    {"SCRAM-SHA-512-PLUS", SASL_MECH_SCRAM, SASL_SECRET_NONE},
    /* RFC 4422 appendix A: the identity comes from outside SASL (a TLS certificate). */
    {"EXTERNAL", SASL_MECH_EXTERNAL, SASL_SECRET_NONE},
    {NULL, SASL_MECH_UNKNOWN, SASL_SECRET_UNKNOWN},
};

enum sasl_secret
sasl_mech_secret(const char *name)
{
    if (!name)
        return SASL_SECRET_UNKNOWN;
    for (size_t k = 0; sasl_mech_names[k].name; k++)
        if (strcasecmp(sasl_mech_names[k].name, name) == 0)
            return sasl_mech_names[k].secret;
    return SASL_SECRET_UNKNOWN;
}

/* Why an AUTH failed, from the reply code (RFC 4954 section 6, RFC 5248). */
static const struct sasl_reason {
    int code;
    const char *reason;
} sasl_reasons[] = {
    {432, "password_transition_needed"},
    {454, "temporary_failure"},
    {500, "line_too_long"},
    {501, "cannot_decode"},
    {503, "bad_sequence"},
    {504, "mechanism_unsupported"},
    {534, "mechanism_too_weak"},
    {535, "invalid_credentials"},
    {538, "encryption_required"},
    {0, NULL},
};

static const char *const sasl_result_names[] = {
    [SASL_PENDING] = "pending", [SASL_SUCCESS] = "success",       [SASL_FAILURE] = "failure",
    [SASL_ABORTED] = "aborted", [SASL_INCOMPLETE] = "incomplete",
};

static uint8_t
sasl_upper(uint8_t c)
{
    return (c >= 'a' && c <= 'z') ? (uint8_t)(c - 'a' + 'A') : c;
}

static int
sasl_is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Drops surrounding white space and a line end the caller may have left on. */
static void
sasl_trim(const uint8_t **p, size_t *n)
{
    while (*n && sasl_is_space((*p)[0])) {
        (*p)++;
        (*n)--;
    }
    while (*n && sasl_is_space((*p)[*n - 1]))
        (*n)--;
}

/* Case-insensitive search for an ASCII word, used on server prompts. */
static int
sasl_contains(const uint8_t *p, size_t n, const char *word)
{
    size_t w = strlen(word), i, j;

    for (i = 0; i + w <= n; i++) {
        for (j = 0; j < w; j++)
            if (sasl_upper(p[i + j]) != sasl_upper((uint8_t)word[j]))
                break;
        if (j == w)
            return 1;
    }
    return 0;
}

static int
sasl_prefix(const uint8_t *p, size_t n, const char *pre)
{
    size_t w = strlen(pre), i;

    if (n < w)
        return 0;
    for (i = 0; i < w; i++)
        if (sasl_upper(p[i]) != sasl_upper((uint8_t)pre[i]))
            return 0;
    return 1;
}

/* Replaces the contents of b, flagging the exchange when the cap (or memory) cut it. */
static void
sasl_keep(struct sasl *a, struct buf *b, const uint8_t *p, size_t n)
{
    buf_reset(b);
    if (n && buf_append(b, p, n) != BUF_OK)
        a->truncated = 1;
}

/* Decodes base64 (RFC 4648 section 4) into out, which keeps at most its cap; the rest is
 * still checked but not stored, so a megabyte line costs no more memory than the cap.
 * Padding may be left off (some clients do), but nothing may follow it. Returns 0, or -1
 * when the text is not base64. *cut is set when out could not hold everything. */
static int
sasl_b64_decode(const uint8_t *in, size_t n, struct buf *out, int *cut)
{
    uint8_t stage[768];
    size_t staged = 0, i;
    uint32_t acc = 0;
    unsigned quad = 0, pad = 0;

    *cut = 0;
    for (i = 0; i < n; i++) {
        int v = in[i] == '=' ? -2 : b64_value(in[i]);
        if (v == -1)
            return -1;
        if (v == -2) {
            /* '=' only completes a group that holds two or three characters. */
            if (quad + pad < 2)
                return -1;
            pad++;
            if (quad + pad > 4)
                return -1;
            continue;
        }
        if (pad)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        if (++quad == 4) {
            stage[staged++] = (uint8_t)(acc >> 16);
            stage[staged++] = (uint8_t)(acc >> 8);
            stage[staged++] = (uint8_t)acc;
            acc = 0;
            quad = 0;
        }
        if (staged + 3 > sizeof stage) {
            if (!*cut && buf_append(out, stage, staged) != BUF_OK)
                *cut = 1;
            staged = 0;
        }
    }
    if (quad == 1 || (pad && quad + pad != 4))
        return -1;
    if (quad == 2) {
        stage[staged++] = (uint8_t)(acc >> 4);
    } else if (quad == 3) {
        stage[staged++] = (uint8_t)(acc >> 10);
        stage[staged++] = (uint8_t)(acc >> 2);
    }
    if (staged && !*cut && buf_append(out, stage, staged) != BUF_OK)
        *cut = 1;
    return 0;
}

/* Decodes a saslname (RFC 5802 section 5.1: "=2C" is ',' and "=3D" is '=') into b. */
static void
sasl_keep_saslname(struct sasl *a, struct buf *b, const uint8_t *p, size_t n)
{
    size_t i;

    buf_reset(b);
    for (i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '=') {
            if (i + 2 < n && p[i + 1] == '2' && sasl_upper(p[i + 2]) == 'C') {
                c = ',';
            } else if (i + 2 < n && p[i + 1] == '3' && sasl_upper(p[i + 2]) == 'D') {
                c = '=';
            } else {
                a->malformed = 1;
                continue;
            }
            i += 2;
        }
        if (buf_append_byte(b, c) != BUF_OK) {
            a->truncated = 1;
            return;
        }
    }
}

/* The GS2 header that opens OAUTHBEARER and SCRAM messages (RFC 5801 section 4):
 * ["F,"] ("n" / "y" / "p=" cb-name) "," ["a=" saslname] ",". Sets *end to the offset after
 * it and the authzid view (empty when absent). Returns 0, or -1 when there is none. */
static int
sasl_gs2_header(const uint8_t *p, size_t n, size_t *end, const uint8_t **az, size_t *azlen)
{
    size_t i = 0;
    const uint8_t *c1, *c2;

    if (n >= 2 && p[0] == 'F' && p[1] == ',')
        i = 2;
    if (i >= n)
        return -1;
    if (p[i] == 'p') {
        if (i + 1 >= n || p[i + 1] != '=')
            return -1;
    } else if (p[i] != 'n' && p[i] != 'y') {
        return -1;
    }
    c1 = memchr(p + i, ',', n - i);
    if (!c1)
        return -1;
    i = (size_t)(c1 - p) + 1;
    c2 = i < n ? memchr(p + i, ',', n - i) : NULL;
    if (!c2)
        return -1;
    *az = p + i;
    *azlen = (size_t)(c2 - (p + i));
    if (*azlen) {
        if (*azlen < 2 || (*az)[0] != 'a' || (*az)[1] != '=')
            return -1;
        *az += 2;
        *azlen -= 2;
    }
    *end = (size_t)(c2 - p) + 1;
    return 0;
}

/* Finds "key=" among sep-separated attributes of p; the value runs to the next sep. */
static int
sasl_attr(const uint8_t *p, size_t n, uint8_t sep, const char *key, const uint8_t **v, size_t *vlen)
{
    size_t klen = strlen(key), i = 0;

    while (i < n) {
        const uint8_t *e = memchr(p + i, sep, n - i);
        size_t len = e ? (size_t)(e - (p + i)) : n - i;
        if (len > klen && memcmp(p + i, key, klen) == 0 && p[i + klen] == '=') {
            *v = p + i + klen + 1;
            *vlen = len - klen - 1;
            return 0;
        }
        i += len + 1;
    }
    return -1;
}

/* RFC 6750 2.1 credentials: the token is what follows "Bearer ". */
static void
sasl_keep_bearer(struct sasl *a, const uint8_t *v, size_t vlen)
{
    if (sasl_prefix(v, vlen, "Bearer ")) {
        v += 7;
        vlen -= 7;
    }
    sasl_keep(a, &a->token, v, vlen);
    a->has_token = 1;
}

/* RFC 4616 section 2: [authzid] NUL authcid NUL passwd. */
static void
sasl_parse_plain(struct sasl *a, const uint8_t *p, size_t n, int cut)
{
    const uint8_t *nul1, *nul2, *user;
    size_t ulen;

    nul1 = n ? memchr(p, 0, n) : NULL;
    if (!nul1) {
        if (!cut)
            a->malformed = 1;
        return;
    }
    user = nul1 + 1;
    ulen = n - (size_t)(user - p);
    nul2 = ulen ? memchr(user, 0, ulen) : NULL;
    if (!nul2) {
        /* One NUL: a client that left out the authorization identity sent "user NUL
         * password" (or the message was cut after the user). What follows the NUL is
         * taken as the password, never reported as a user name. */
        if (nul1 > p) {
            sasl_keep(a, &a->user, p, (size_t)(nul1 - p));
            a->has_user = 1;
        }
        sasl_keep(a, &a->password, user, ulen);
        a->has_password = ulen > 0;
        if (!cut)
            a->malformed = 1;
        return;
    }
    if (nul1 > p) {
        sasl_keep(a, &a->authzid, p, (size_t)(nul1 - p));
        a->has_authzid = 1;
    }
    sasl_keep(a, &a->user, user, (size_t)(nul2 - user));
    a->has_user = 1;
    sasl_keep(a, &a->password, nul2 + 1, n - (size_t)(nul2 + 1 - p));
    a->has_password = 1;
    /* The password may not contain NUL, nor may the user name be empty. */
    if (memchr(nul2 + 1, 0, n - (size_t)(nul2 + 1 - p)) || nul2 == user)
        a->malformed = 1;
}

/* RFC 2195 section 2: the response is the user name, a space, and 32 lowercase hex digits. */
static void
sasl_parse_cram(struct sasl *a, const uint8_t *p, size_t n, int cut)
{
    size_t sp = n, i;

    while (sp > 0 && p[sp - 1] != ' ')
        sp--;
    if (sp == 0) {
        if (!cut)
            a->malformed = 1;
        return;
    }
    sasl_keep(a, &a->user, p, sp - 1);
    a->has_user = 1;
    sasl_keep(a, &a->token, p + sp, n - sp);
    a->has_token = 1;
    if (n - sp != 32)
        a->malformed = 1;
    for (i = sp; i < n; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            a->malformed = 1;
}

/* Google's XOAUTH2: "user=" user ^A "auth=Bearer " token ^A ^A. */
static void
sasl_parse_xoauth2(struct sasl *a, const uint8_t *p, size_t n, int cut)
{
    const uint8_t *v;
    size_t vlen;

    if (sasl_attr(p, n, 0x01, "user", &v, &vlen) == 0) {
        sasl_keep(a, &a->user, v, vlen);
        a->has_user = 1;
    } else if (!cut) {
        a->malformed = 1;
    }
    if (sasl_attr(p, n, 0x01, "auth", &v, &vlen) == 0)
        sasl_keep_bearer(a, v, vlen);
    else if (!cut)
        a->malformed = 1;
}

/* The GS2 header both OAUTHBEARER and SCRAM start with: its authzid is kept in *field (the
 * user for OAUTHBEARER, the authorisation identity for SCRAM). Returns -1 when there is
 * none, counting that as malformed unless the blob was cut. */
static int
sasl_gs2_keep(struct sasl *a, const uint8_t *p, size_t n, int cut, struct buf *field, int *has,
              size_t *end)
{
    const uint8_t *az;
    size_t azlen;
    if (sasl_gs2_header(p, n, end, &az, &azlen) < 0) {
        if (!cut)
            a->malformed = 1;
        return -1;
    }
    if (azlen) {
        sasl_keep_saslname(a, field, az, azlen);
        *has = 1;
    }
    return 0;
}

/* RFC 7628 3.1: gs2-header ^A *(key "=" value ^A) ^A; the user is the gs2 authzid. */
static void
sasl_parse_oauthbearer(struct sasl *a, const uint8_t *p, size_t n, int cut)
{
    const uint8_t *v;
    size_t end, vlen;

    if (sasl_gs2_keep(a, p, n, cut, &a->user, &a->has_user, &end) < 0)
        return;
    if (sasl_attr(p + end, n - end, 0x01, "auth", &v, &vlen) == 0)
        sasl_keep_bearer(a, v, vlen);
    else if (!cut)
        a->malformed = 1;
}

/* RFC 5802 section 7: client-first-message = gs2-header "n=" saslname ",r=" nonce ... */
static void
sasl_parse_scram_first(struct sasl *a, const uint8_t *p, size_t n, int cut)
{
    const uint8_t *v;
    size_t end, vlen;

    if (sasl_gs2_keep(a, p, n, cut, &a->authzid, &a->has_authzid, &end) < 0)
        return;
    if (sasl_attr(p + end, n - end, ',', "n", &v, &vlen) == 0) {
        sasl_keep_saslname(a, &a->user, v, vlen);
        a->has_user = 1;
    } else if (!cut) {
        a->malformed = 1;
    }
}

/* client-final-message = channel-binding "," nonce ["," extensions] ",p=" proof: the
 * proof is kept as the secret, it proves knowledge of the salted password. */
static void
sasl_parse_scram_final(struct sasl *a, const uint8_t *p, size_t n, int cut)
{
    const uint8_t *v;
    size_t vlen;

    if (sasl_attr(p, n, ',', "p", &v, &vlen) == 0) {
        sasl_keep(a, &a->token, v, vlen);
        a->has_token = 1;
    } else if (!cut) {
        a->malformed = 1;
    }
}

/* One decoded client message, interpreted by what the mechanism expects at this point. */
static void
sasl_interpret(struct sasl *a, const uint8_t *p, size_t n, int cut)
{
    switch (a->mech) {
    case SASL_MECH_PLAIN:
        if (a->msgs == 0)
            sasl_parse_plain(a, p, n, cut);
        break;
    case SASL_MECH_LOGIN:
        if (a->login_next == SASL_LOGIN_USER && n && memchr(p, 0, n)) {
            /* A user name holds no NUL: this is a PLAIN message sent to LOGIN, password
             * and all; it is not shown as a user. */
            a->malformed = 1;
            a->login_next = SASL_LOGIN_PASSWORD;
        } else if (a->login_next == SASL_LOGIN_USER) {
            sasl_keep(a, &a->user, p, n);
            a->has_user = 1;
            a->login_next = SASL_LOGIN_PASSWORD;
        } else if (a->login_next == SASL_LOGIN_PASSWORD) {
            sasl_keep(a, &a->password, p, n);
            a->has_password = 1;
            a->login_next = SASL_LOGIN_DONE;
        }
        break;
    case SASL_MECH_CRAM_MD5:
        if (a->msgs == 0)
            sasl_parse_cram(a, p, n, cut);
        break;
    case SASL_MECH_XOAUTH2:
        /* Later messages only acknowledge an error challenge. */
        if (a->msgs == 0)
            sasl_parse_xoauth2(a, p, n, cut);
        break;
    case SASL_MECH_OAUTHBEARER:
        if (a->msgs == 0)
            sasl_parse_oauthbearer(a, p, n, cut);
        break;
    case SASL_MECH_SCRAM:
        if (a->msgs == 0)
            sasl_parse_scram_first(a, p, n, cut);
        else if (a->msgs == 1)
            sasl_parse_scram_final(a, p, n, cut);
        break;
    case SASL_MECH_EXTERNAL:
        /* RFC 4422 appendix A.1: the message is the requested authorization identity. */
        if (a->msgs == 0 && n) {
            sasl_keep(a, &a->authzid, p, n);
            a->has_authzid = 1;
        }
        break;
    case SASL_MECH_UNKNOWN:
    case SASL_MECH_COUNT:
        break;
    }
    a->msgs++;
}

/* A client response (initial or after 334), trimmed, "*" already handled. */
static void
sasl_response(struct sasl *a, const uint8_t *p, size_t n)
{
    struct buf dec;
    int cut = 0;

    buf_init(&dec, a->max_blob);
    /* RFC 4954 section 4: "=" is an empty initial response; accept it later too. */
    if (n == 1 && p[0] == '=')
        n = 0;
    if (sasl_b64_decode(p, n, &dec, &cut) < 0) {
        a->malformed = 1;
        a->msgs++;
    } else {
        if (cut)
            a->truncated = 1;
        sasl_interpret(a, dec.data, dec.len, cut);
    }
    buf_free(&dec);
}

static void
sasl_record_response(struct sasl *a, const uint8_t *p, size_t n)
{
    a->responses_total++;
    if (a->nresponses >= SASL_MAX_RESPONSES)
        return;
    sasl_keep(a, &a->responses[a->nresponses], p, n);
    a->nresponses++;
}

struct sasl *
sasl_begin(const uint8_t *args, size_t len, size_t max_blob)
{
    struct sasl *a;
    size_t i = 0, k;

    a = mem_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->max_blob = max_blob ? max_blob : SASL_DEFAULT_MAX_BLOB;
    a->result = SASL_PENDING;
    buf_init(&a->user, a->max_blob);
    buf_init(&a->authzid, a->max_blob);
    buf_init(&a->password, a->max_blob);
    buf_init(&a->token, a->max_blob);
    buf_init(&a->server_error, a->max_blob);
    buf_init(&a->text, SASL_MAX_TEXT);
    for (k = 0; k < SASL_MAX_RESPONSES; k++)
        buf_init(&a->responses[k], a->max_blob);

    sasl_trim(&args, &len);
    while (i < len && args[i] != ' ' && args[i] != '\t') {
        if (a->mech_len < SASL_MAX_MECH)
            a->mech_name[a->mech_len++] = sasl_upper(args[i]);
        else
            a->truncated = 1;
        i++;
    }
    if (i == 0)
        a->malformed = 1;
    for (k = 0; sasl_mech_names[k].name; k++) {
        const char *nm = sasl_mech_names[k].name;
        if (strlen(nm) == i && memcmp(nm, a->mech_name, i) == 0) {
            a->mech = sasl_mech_names[k].mech;
            break;
        }
    }
    while (i < len && (args[i] == ' ' || args[i] == '\t'))
        i++;
    /* RFC 4954 section 4: an initial response saves one round trip. */
    if (i < len) {
        if (!(len - i == 1 && args[i] == '='))
            a->responses_sent++;
        sasl_record_response(a, args + i, len - i);
        sasl_response(a, args + i, len - i);
    }
    return a;
}

void
sasl_destroy(struct sasl *a)
{
    size_t k;

    if (!a)
        return;
    buf_free(&a->user);
    buf_free(&a->authzid);
    buf_free(&a->password);
    buf_free(&a->token);
    buf_free(&a->server_error);
    buf_free(&a->text);
    for (k = 0; k < SASL_MAX_RESPONSES; k++)
        buf_free(&a->responses[k]);
    mem_free(a);
}

void
sasl_client_line(struct sasl *a, const uint8_t *line, size_t len)
{
    if (!a || a->result != SASL_PENDING)
        return;
    a->open = 0;
    sasl_trim(&line, &len);
    sasl_record_response(a, line, len);
    /* RFC 4954 section 4: "*" cancels; the server then answers 501. */
    if (len == 1 && line[0] == '*') {
        a->cancelled = 1;
        return;
    }
    if (len && !(len == 1 && line[0] == '='))
        a->responses_sent++;
    sasl_response(a, line, len);
}

void
sasl_challenge(struct sasl *a, const uint8_t *text, size_t len)
{
    struct buf dec;
    const uint8_t *p;
    size_t n;
    int cut = 0, ok;

    if (!a || a->result != SASL_PENDING)
        return;
    a->open = 1;
    a->steps++;
    sasl_trim(&text, &len);
    buf_init(&dec, a->max_blob);
    ok = sasl_b64_decode(text, len, &dec, &cut) == 0;
    /* A challenge that is not base64 is the server's fault, not the client's, so it does
     * not mark the exchange malformed; LOGIN prompts are still looked at in clear. */
    p = ok ? dec.data : text;
    n = ok ? dec.len : len;
    switch (a->mech) {
    case SASL_MECH_LOGIN:
        if (n && sasl_contains(p, n, "pass"))
            a->login_next = SASL_LOGIN_PASSWORD;
        else if (n && sasl_contains(p, n, "user") && !a->has_user)
            /* Only the first answer can be the user name: a second "Username:" prompt
             * must not make the password that follows a user name in the report. */
            a->login_next = SASL_LOGIN_USER;
        break;
    case SASL_MECH_XOAUTH2:
    case SASL_MECH_OAUTHBEARER:
        /* After the credentials, a challenge is the JSON error status (RFC 7628 3.2.2). */
        if (a->msgs > 0 && ok && n) {
            sasl_keep(a, &a->server_error, p, n);
            a->has_server_error = 1;
        }
        break;
    case SASL_MECH_SCRAM:
        /* RFC 5802 section 7: server-final-message = "e=" server-error-value / "v=" ... */
        if (a->msgs >= 2 && ok && n >= 2 && p[0] == 'e' && p[1] == '=') {
            sasl_keep(a, &a->server_error, p + 2, n - 2);
            a->has_server_error = 1;
        }
        break;
    default:
        break;
    }
    buf_free(&dec);
}

void
sasl_final(struct sasl *a, int code, const uint8_t *text, size_t len)
{
    size_t el;

    if (!a || a->result != SASL_PENDING)
        return;
    a->open = 0;
    a->code = code;
    sasl_trim(&text, &len);
    /* Accept the whole reply line as well as the text after the code. */
    if (len >= 3 && code >= 100 && code <= 999 && text[0] == '0' + code / 100 &&
        text[1] == '0' + code / 10 % 10 && text[2] == '0' + code % 10 &&
        (len == 3 || text[3] == ' ' || text[3] == '-')) {
        text += 3;
        len -= 3;
        if (len) {
            text++;
            len--;
        }
    }
    el = enhanced_len(0, text, len);
    if (el && el < sizeof a->enhanced) {
        memcpy(a->enhanced, text, el);
        a->enhanced[el] = '\0';
    }
    sasl_keep(a, &a->text, text, len);
    if (code >= 200 && code < 300)
        a->result = SASL_SUCCESS;
    else if (a->cancelled)
        a->result = SASL_ABORTED;
    else
        a->result = SASL_FAILURE;
}

void
sasl_incomplete(struct sasl *a)
{
    if (!a || a->result != SASL_PENDING)
        return;
    a->open = 0;
    a->result = SASL_INCOMPLETE;
}

enum sasl_result
sasl_result(const struct sasl *a)
{
    return a ? a->result : SASL_INCOMPLETE;
}

int
sasl_open(const struct sasl *a)
{
    return a && a->open && a->result == SASL_PENDING;
}

static void
sasl_set_buf(struct jt_node *o, const char *key, const struct buf *b)
{
    jt_set_bytes(o, key, b->data, b->len);
}

int
sasl_report(const struct sasl *a, int show_secrets, struct jt_node *o)
{
    struct jt_node *arr;
    size_t k;

    if (!a || !o)
        return -1;
    jt_set_bytes(o, "mechanism", a->mech_name, a->mech_len);
    if (a->has_user)
        sasl_set_buf(o, "user", &a->user);
    if (a->has_authzid && a->authzid.len)
        sasl_set_buf(o, "authzid", &a->authzid);
    jt_set_lit(o, "result", sasl_result_names[a->result]);
    if (a->result == SASL_SUCCESS || a->result == SASL_FAILURE || a->result == SASL_ABORTED) {
        jt_set_int(o, "code", a->code);
        /* Digits and dots only (enhanced_len). */
        if (a->enhanced[0])
            jt_set_str(o, "enhanced", a->enhanced);
        sasl_set_buf(o, "text", &a->text);
    }
    if (a->result == SASL_FAILURE) {
        for (k = 0; sasl_reasons[k].reason; k++)
            if (sasl_reasons[k].code == a->code)
                jt_set_lit(o, "reason", sasl_reasons[k].reason);
    }
    jt_set_int(o, "steps", a->steps);
    /* Whether a credential crossed the wire at all: a refusal before any is no leak. */
    jt_set_int(o, "responses_sent", (int64_t)a->responses_sent);
    jt_set_bool(o, "malformed", a->malformed);
    if (a->truncated)
        jt_set_bool(o, "truncated", 1);
    if (a->has_server_error)
        sasl_set_buf(o, "server_error", &a->server_error);
    if (show_secrets) {
        if (a->has_password)
            sasl_set_buf(o, "password", &a->password);
        if (a->has_token)
            sasl_set_buf(o, "token", &a->token);
        arr = jt_set_arr(o, "responses");
        for (k = 0; k < a->nresponses; k++)
            jt_push_bytes(arr, a->responses[k].data, a->responses[k].len);
        if (a->responses_total > a->nresponses)
            jt_set_int(o, "responses_dropped", (int64_t)(a->responses_total - a->nresponses));
    }
    return 0;
}
