/* rules.c - the anomaly catalogue (docs/anomalies.md): one row per anomaly id with its
 * severity and check. Checks read only the session report, so what a rule concludes can
 * always be traced to fields the user also sees. A capture problem is never blamed on a
 * server: rules that need bytes the capture lost stay silent (capture_gap says why). */
#include "rules.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libpsl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jtree.h"
#include "mem.h"
#include "sasl.h"

/* Paths of the session read by the rules, remembered for one run: most are read by several
 * rules, and each read is a split and a lookup per part. A table hashed by the literal's
 * address; a path that finds it full is looked up each time. */
#define RULE_MEMO 128

/* An anomaly found, kept aside until all are found: they are attached in sorted order. */
struct rule_found {
    struct jt_node *a;
    const char *id;
    enum rule_severity sev;
};

struct rule_ctx {
    const struct rule_config *cfg;
    struct jt_val s; /* the session, as a value: read like the values inside it */
    struct {
        const char *path; /* a literal: compared by address */
        const struct jt_val *v;
    } memo[RULE_MEMO];
    struct rule_found *found;
    size_t nfound, capfound;
    int gap_client; /* bytes missing per direction */
    int gap_server;
    int encrypted;
    int midstream; /* the capture lacks the start of the session */
};

struct rule {
    const char *id;
    enum rule_severity severity;
    void (*check)(struct rule_ctx *x, const struct rule *r);
    int at_end; /* needs the session's end (what did not happen): not judged while open */
};

static const char *const rule_sev_names[RULE_SEVERITY_COUNT] = {"info", "notice", "warning",
                                                                "error"};

const char *
rule_severity_name(enum rule_severity s)
{
    return (unsigned)s < RULE_SEVERITY_COUNT ? rule_sev_names[s] : "?";
}

int
rule_severity_parse(const char *name)
{
    for (int i = 0; i < RULE_SEVERITY_COUNT; i++)
        if (strcmp(name, rule_sev_names[i]) == 0)
            return i;
    return -1;
}

/* ---- small tree readers ---- */

/* NULL unless o is an object with every part of the dotted path. */
static const struct jt_val *
rule_get(const struct jt_val *o, const char *path)
{
    const struct jt_node *c = jt_obj(o);
    const char *dot;
    while (c && (dot = strchr(path, '.'))) {
        c = jt_obj(jt_getn(c, path, (size_t)(dot - path)));
        path = dot + 1;
    }
    return jt_get(c, path);
}

static const char *
rule_str(const struct jt_val *o, const char *path)
{
    return jt_str(rule_get(o, path));
}

static long long
rule_int(const struct jt_val *o, const char *path, long long dflt)
{
    return jt_int(rule_get(o, path), dflt);
}

/* rule_get on the session, remembered (the session does not change while rules run). A path
 * built at run time would be a stack address that another path may reuse: those go to
 * rule_get on &x->s. */
static const struct jt_val *
rule_sget(struct rule_ctx *x, const char *path)
{
    size_t h = ((uintptr_t)path >> 3) % RULE_MEMO;
    for (size_t k = 0; k < 8; k++, h = (h + 1) % RULE_MEMO) {
        if (x->memo[h].path == path)
            return x->memo[h].v;
        if (!x->memo[h].path) {
            x->memo[h].path = path;
            return x->memo[h].v = rule_get(&x->s, path);
        }
    }
    return rule_get(&x->s, path);
}

static const char *
rule_sstr(struct rule_ctx *x, const char *path)
{
    return jt_str(rule_sget(x, path));
}

static long long
rule_sint(struct rule_ctx *x, const char *path, long long dflt)
{
    return jt_int(rule_sget(x, path), dflt);
}

static double
rule_snum(struct rule_ctx *x, const char *path, double dflt)
{
    return jt_num(rule_sget(x, path), dflt);
}

static int
rule_sbool(struct rule_ctx *x, const char *path)
{
    return jt_is_true(rule_sget(x, path));
}

/* Case-insensitive substring search in text we produced from wire bytes. */
static int
rule_contains(const char *hay, const char *needle)
{
    if (!hay)
        return 0;
    size_t n = strlen(needle);
    if (n == 0)
        return 1;
    /* The first byte is matched inline: a call per position of the text was most of it. */
    char lo = (char)tolower((unsigned char)needle[0]), up = (char)toupper((unsigned char)needle[0]);
    for (const char *p = hay; *p; p++)
        if ((*p == lo || *p == up) && strncasecmp(p + 1, needle + 1, n - 1) == 0)
            return 1;
    return 0;
}

/* An object in the session's tree attached nowhere yet: evidence or an anomaly, placed
 * once the anomalies are sorted. */
static struct jt_node *
rule_new_obj(struct rule_ctx *x)
{
    return jt_new_obj(jt_obj(&x->s));
}

/* A missing string is a null member: the evidence has always shown it so. */
static void
rule_set_opt(struct jt_node *o, const char *key, const char *s)
{
    if (s)
        jt_set_lit(o, key, s);
    else
        jt_set_null(o, key);
}

static void rule_vadd(struct rule_ctx *x, const struct rule *r, enum rule_severity sev,
                      const struct jt_val *ev, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* ev is shared, not copied: the session does not change once the rules have run. Without
 * evidence the member is an empty object. */
static void
rule_vadd(struct rule_ctx *x, const struct rule *r, enum rule_severity sev, const struct jt_val *ev,
          const char *fmt, va_list ap)
{
    if (x->nfound == x->capfound) {
        size_t cap = x->capfound ? 2 * x->capfound : 8;
        struct rule_found *f = mem_realloc(x->found, cap * sizeof *f);
        if (!f)
            return;
        x->found = f;
        x->capfound = cap;
    }
    struct jt_node *a = rule_new_obj(x);
    if (!a)
        return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    jt_set_lit(a, "id", r->id);
    jt_set_lit(a, "severity", rule_severity_name(sev));
    jt_set_str(a, "message", msg);
    if (ev)
        jt_set_val(a, "evidence", ev);
    else
        jt_set_obj(a, "evidence");
    x->found[x->nfound++] = (struct rule_found){.a = a, .id = r->id, .sev = sev};
}

static void rule_add(struct rule_ctx *x, const struct rule *r, enum rule_severity sev,
                     struct jt_node *ev, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void rule_add_val(struct rule_ctx *x, const struct rule *r, enum rule_severity sev,
                         const struct jt_val *ev, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Evidence built for this anomaly with rule_new_obj, or NULL for none. */
static void
rule_add(struct rule_ctx *x, const struct rule *r, enum rule_severity sev, struct jt_node *ev,
         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rule_vadd(x, r, sev, ev ? &(struct jt_val){.type = JT_OBJ, .u.c = ev} : NULL, fmt, ap);
    va_end(ap);
}

/* Evidence that is a value of the session as it is (NULL when absent: none). */
static void
rule_add_val(struct rule_ctx *x, const struct rule *r, enum rule_severity sev,
             const struct jt_val *ev, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rule_vadd(x, r, sev, ev, fmt, ap);
    va_end(ap);
}

static int
rule_is_submission(struct rule_ctx *x)
{
    long long port = rule_sint(x, "server.port", 0);
    return port == 587 || port == 465;
}

/* ---- checks ---- */

/* The capture shows one direction of a connection that did open (a tap on one link of
 * asymmetric routing): said once, so a missing side is never read as a silent peer. Only at
 * the end: while the connection is open the other side may still come. */
static void
rule_capture_one_sided(struct rule_ctx *x, const struct rule *r)
{
    const char *side = rule_sstr(x, "tcp.one_sided");
    if (!side)
        return;
    int client = strcmp(side, "client") == 0;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_lit(ev, "present", client ? "client" : "server");
    jt_set_bool(ev, "handshake_unseen", rule_sbool(x, "tcp.handshake_unseen"));
    rule_add(x, r, r->severity, ev,
             "the capture holds only the %s's packets although the connection was open: the "
             "%s's side was not captured (asymmetric routing or a one-way tap), and rules that "
             "need it stayed silent",
             client ? "client" : "server", client ? "server" : "client");
}

static void
rule_syn_unanswered(struct rule_ctx *x, const struct rule *r)
{
    const char *end = rule_sstr(x, "tcp.end");
    if (!end || strcmp(end, "syn_unanswered") != 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "syn_count", rule_sint(x, "tcp.syn_count", 0));
    rule_add(x, r, r->severity, ev,
             "%lld SYN(s) to %s port %lld got no answer: the server is down, filtered or "
             "overloaded",
             rule_sint(x, "tcp.syn_count", 0), rule_sstr(x, "server.ip"),
             rule_sint(x, "server.port", 0));
}

static void
rule_connection_refused(struct rule_ctx *x, const struct rule *r)
{
    const char *end = rule_sstr(x, "tcp.end");
    if (!end || strcmp(end, "refused") != 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "rst_ttl", rule_sint(x, "tcp.rst.ttl", -1));
    rule_add(x, r, r->severity, ev,
             "the connection to port %lld was refused (SYN answered by RST): nothing listens "
             "there or a firewall rejects it",
             rule_sint(x, "server.port", 0));
}

/* RFC 5321 4.5.3.2: how long a client waits for the greeting (5 minutes) and for the final
 * reply to a message (10 minutes). A capture that stopped sooner, while neither side had
 * given up (no FIN, no QUIT), did not see the server fail to answer: it stopped looking. */
#define RULE_GREETING_WAIT_MS 300000.0
#define RULE_DATA_WAIT_MS 600000.0

static int
rule_capture_stopped(struct rule_ctx *x, double waited_ms, double limit_ms)
{
    const char *end = rule_sstr(x, "tcp.end");
    return end && strcmp(end, "capture_end") == 0 && waited_ms < limit_ms &&
           !rule_sbool(x, "tcp.fin.client") && !rule_sbool(x, "tcp.fin.server") &&
           !rule_sbool(x, "smtp.quit_sent");
}

static void
rule_no_banner(struct rule_ctx *x, const struct rule *r)
{
    if (!rule_sbool(x, "tcp.established") || rule_sget(x, "banner") || x->gap_server ||
        x->encrypted || x->midstream)
        return;
    double waited = rule_snum(x, "tcp.capture_end_ms", rule_snum(x, "duration_ms", 0)) -
                    rule_snum(x, "tcp.handshake_rtt_ms", 0);
    struct jt_node *ev = rule_new_obj(x);
    jt_set_real(ev, "waited_ms", waited);
    rule_set_opt(ev, "tcp_end", rule_sstr(x, "tcp.end"));
    if (rule_capture_stopped(x, waited, RULE_GREETING_WAIT_MS))
        rule_add(x, r, RULE_NOTICE, ev,
                 "no greeting yet when the capture ended, %.0f ms after the handshake (RFC 5321 "
                 "lets a client wait 5 minutes): a longer capture would tell",
                 waited);
    else
        rule_add(x, r, r->severity, ev,
                 "the server never sent its greeting (waited %.0f ms after the handshake)", waited);
}

static void
rule_banner_delay(struct rule_ctx *x, const struct rule *r)
{
    double d = rule_snum(x, "banner.delay_ms", -1);
    if (d < 0 || d <= x->cfg->banner_delay_ms || x->midstream)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_real(ev, "delay_ms", d);
    jt_set_real(ev, "threshold_ms", x->cfg->banner_delay_ms);
    rule_add(x, r, r->severity, ev,
             "the greeting came %.0f ms after the handshake (threshold %.0f ms)", d,
             x->cfg->banner_delay_ms);
}

static void
rule_service_unavailable(struct rule_ctx *x, const struct rule *r)
{
    long long code = rule_sint(x, "banner.code", 0);
    if (code == 421 || code == 554) {
        struct jt_node *ev = rule_new_obj(x);
        jt_set_int(ev, "code", code);
        rule_set_opt(ev, "text", rule_sstr(x, "banner.text"));
        rule_add(x, r, r->severity, ev, "the server refused service at the greeting: %lld %s", code,
                 rule_sstr(x, "banner.text") ? rule_sstr(x, "banner.text") : "");
        return;
    }
    struct jt_node *es = jt_arr(rule_sget(x, "smtp.error_replies"));
    for (size_t i = 0, n = jt_size(es); i < n; i++) {
        const struct jt_val *e = jt_at(es, i);
        /* Without a command it answers nothing: server_closed_idle tells that one. */
        if (rule_int(e, "code", 0) == 421 && rule_str(e, "command")) {
            rule_add_val(x, r, r->severity, e, "the server closed the service (421) in reply to %s",
                         rule_str(e, "command"));
            return;
        }
    }
}

static void
rule_slow_reply(struct rule_ctx *x, const struct rule *r)
{
    double ms = rule_snum(x, "smtp.slowest_reply.ms", -1);
    if (ms < 0 || ms <= x->cfg->slow_reply_ms)
        return;
    rule_add_val(x, r, r->severity, rule_sget(x, "smtp.slowest_reply"),
                 "the reply to %s took %.0f ms (threshold %.0f ms)",
                 rule_sstr(x, "smtp.slowest_reply.command")
                     ? rule_sstr(x, "smtp.slowest_reply.command")
                     : "a command",
                 ms, x->cfg->slow_reply_ms);
}

static int
rule_auth_offered(struct rule_ctx *x)
{
    return jt_size(jt_arr(rule_sget(x, "ehlo.auth"))) > 0;
}

static int
rule_auth_succeeded(struct rule_ctx *x)
{
    struct jt_node *as = jt_arr(rule_sget(x, "auth"));
    for (size_t i = 0, n = jt_size(as); i < n; i++) {
        const char *res = rule_str(jt_at(as, i), "result");
        if (res && strcmp(res, "success") == 0)
            return 1;
    }
    return 0;
}

static void
rule_auth_skipped(struct rule_ctx *x, const struct rule *r)
{
    if (!rule_auth_offered(x) || rule_auth_succeeded(x) || x->midstream)
        return;
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        const struct jt_val *t = jt_at(ts, i);
        if (jt_is_true(rule_get(t, "authenticated")))
            continue;
        struct jt_node *ev = rule_new_obj(x);
        jt_set_val(ev, "offered", rule_sget(x, "ehlo.auth"));
        rule_set_opt(ev, "mail_from", rule_str(t, "mail_from"));
        rule_add(x, r, rule_is_submission(x) ? RULE_WARNING : RULE_NOTICE, ev,
                 "the server offered AUTH but the client sent MAIL FROM without "
                 "authenticating");
        return;
    }
}

static void
rule_auth_failed(struct rule_ctx *x, const struct rule *r)
{
    struct jt_node *as = jt_arr(rule_sget(x, "auth"));
    for (size_t i = 0, n = jt_size(as); i < n; i++) {
        const struct jt_val *a = jt_at(as, i);
        const char *res = rule_str(a, "result");
        if (!res || strcmp(res, "failure") != 0)
            continue;
        struct jt_node *ev = rule_new_obj(x);
        rule_set_opt(ev, "mechanism", rule_str(a, "mechanism"));
        rule_set_opt(ev, "user", rule_str(a, "user"));
        jt_set_int(ev, "code", rule_int(a, "code", 0));
        rule_set_opt(ev, "text", rule_str(a, "text"));
        rule_add(x, r, r->severity, ev, "AUTH %s%s%s failed: %lld %s",
                 rule_str(a, "mechanism") ? rule_str(a, "mechanism") : "",
                 rule_str(a, "user") ? " for " : "", rule_str(a, "user") ? rule_str(a, "user") : "",
                 rule_int(a, "code", 0), rule_str(a, "text") ? rule_str(a, "text") : "");
    }
}

static void
rule_auth_not_offered(struct rule_ctx *x, const struct rule *r)
{
    if (!rule_sget(x, "extensions"))
        return; /* no EHLO reply seen: nothing to compare with */
    struct jt_node *as = jt_arr(rule_sget(x, "auth"));
    for (size_t i = 0, n = jt_size(as); i < n; i++) {
        const struct jt_val *a = jt_at(as, i);
        if (jt_is_false(rule_get(a, "advertised"))) {
            struct jt_node *ev = rule_new_obj(x);
            rule_set_opt(ev, "mechanism", rule_str(a, "mechanism"));
            if (rule_sget(x, "ehlo.auth"))
                jt_set_val(ev, "offered", rule_sget(x, "ehlo.auth"));
            else
                jt_set_null(ev, "offered");
            rule_add(x, r, r->severity, ev,
                     "the client used AUTH %s, which the server's EHLO reply did not offer",
                     rule_str(a, "mechanism") ? rule_str(a, "mechanism") : "");
            return;
        }
    }
}

static void
rule_auth_in_clear(struct rule_ctx *x, const struct rule *r)
{
    struct jt_node *as = jt_arr(rule_sget(x, "auth"));
    for (size_t i = 0, n = jt_size(as); i < n; i++) {
        const struct jt_val *a = jt_at(as, i);
        /* A refusal before the client's first response (504, 538 encryption required) let
         * nothing out: only a response that carried data is a credential on the wire. */
        if (!jt_is_true(rule_get(a, "in_clear")) || rule_int(a, "responses_sent", 0) <= 0)
            continue;
        const char *mech = rule_str(a, "mechanism");
        /* Challenge-response mechanisms do not reveal the password itself. */
        enum sasl_secret secret = sasl_mech_secret(mech);
        int reveals = secret == SASL_SECRET_PASSWORD || secret == SASL_SECRET_TOKEN;
        struct jt_node *ev = rule_new_obj(x);
        rule_set_opt(ev, "mechanism", mech);
        rule_set_opt(ev, "user", rule_str(a, "user"));
        jt_set_int(ev, "responses_sent", rule_int(a, "responses_sent", 0));
        rule_set_opt(ev, "result", rule_str(a, "result"));
        rule_add(x, r, reveals ? RULE_WARNING : RULE_NOTICE, ev,
                 "the client sent %lld AUTH %s response(s) without TLS%s",
                 rule_int(a, "responses_sent", 0), mech ? mech : "",
                 reveals ? ": the password can be read on the wire" : "");
        return;
    }
    /* Lines the client went on sending in clear after the server ended an exchange (504,
     * 535): redacted as credentials, and on the wire all the same. */
    long long after = rule_sint(x, "smtp.lines_after_auth", 0);
    if (after > 0 && jt_size(as) > 0) {
        struct jt_node *ev = rule_new_obj(x);
        jt_set_int(ev, "lines_after_auth", after);
        rule_add(x, r, RULE_WARNING, ev,
                 "after the server ended the AUTH exchange the client sent %lld more line(s) "
                 "without TLS, no known command: most likely its credentials, readable on the "
                 "wire (redacted here)",
                 after);
    }
}

/* The refusal must say it is about relaying: 5.7.1 alone is any policy refusal ("Sender
 * address rejected: Access denied", "Client host rejected"). qmail names its relay list. */
static int
rule_is_relay_text(const char *text)
{
    return rule_contains(text, "relay") || rule_contains(text, "rcpthosts");
}

static void
rule_relay_denied(struct rule_ctx *x, const struct rule *r)
{
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        struct jt_node *rcs = jt_arr(rule_get(jt_at(ts, i), "rcpt"));
        for (size_t j = 0, m = jt_size(rcs); j < m; j++) {
            const struct jt_val *rc = jt_at(rcs, j);
            long long code = rule_int(rc, "code", 0);
            if (code >= 400 && rule_is_relay_text(rule_str(rc, "text"))) {
                rule_add_val(x, r, r->severity, rc, "relaying to %s was refused: %lld %s",
                             rule_str(rc, "to") ? rule_str(rc, "to") : "", code,
                             rule_str(rc, "text") ? rule_str(rc, "text") : "");
                return;
            }
        }
    }
}

static const char *
rule_domain_of(const char *addr)
{
    const char *at = addr ? strrchr(addr, '@') : NULL;
    return at ? at + 1 : NULL;
}

/* The Public Suffix List, loaded once: the newer of libpsl's built-in copy and the system's
 * (Debian's publicsuffix package). NULL when neither is there. */
static const psl_ctx_t *rule_psl_ctx;
static pthread_once_t rule_psl_once = PTHREAD_ONCE_INIT;

static void
rule_psl_load(void)
{
    rule_psl_ctx = psl_latest(NULL);
    if (!rule_psl_ctx)
        rule_psl_ctx = psl_builtin();
}

/* The registrable domain of name ("mx.google.com" -> "google.com", "a.b.co.uk" ->
 * "b.co.uk"), lowercased into out. Without the list, or for a name that is a public suffix
 * or an address literal, the whole name: that only makes domains look less related. */
static void
rule_registrable(const char *name, char *out, size_t outlen)
{
    size_t n = 0;
    for (; name[n] && n + 1 < outlen; n++)
        out[n] = (char)tolower((unsigned char)name[n]);
    while (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = 0;
    pthread_once(&rule_psl_once, rule_psl_load);
    const char *reg = rule_psl_ctx ? psl_registrable_domain(rule_psl_ctx, out) : NULL;
    if (reg && reg != out)
        memmove(out, reg, strlen(reg) + 1);
}

/* The first word of a greeting or EHLO reply: the name the server gives itself. */
static void
rule_first_word(const char *t, char *out, size_t outlen)
{
    size_t n = 0;
    while (t && t[n] && t[n] != ' ' && n + 1 < outlen)
        n++;
    if (t)
        memcpy(out, t, n);
    out[n] = 0;
}

/* domain is d or below it, at a label boundary. */
static int
rule_domain_under(const char *domain, const char *d)
{
    size_t dl = strlen(domain), l = strlen(d);
    while (l > 0 && d[l - 1] == '.')
        l--;
    if (l == 0 || dl < l || strncasecmp(domain + dl - l, d, l) != 0)
        return 0;
    return dl == l || domain[dl - l - 1] == '.';
}

/* A recipient domain the server is final for: under a --local-domain when some were given,
 * else in the registrable domain of the name in its greeting or EHLO reply. */
static int
rule_domain_local(struct rule_ctx *x, const char *domain)
{
    if (!domain)
        return 1; /* "postmaster" without a domain is always local */
    if (x->cfg->nlocal_domains > 0) {
        for (size_t i = 0; i < x->cfg->nlocal_domains; i++)
            if (rule_domain_under(domain, x->cfg->local_domains[i]))
                return 1;
        return 0;
    }
    char reg[256], own[256], name[256];
    rule_registrable(domain, reg, sizeof reg);
    const char *names[] = {rule_sstr(x, "banner.text"), rule_sstr(x, "ehlo.greeting")};
    for (size_t i = 0; i < 2; i++) {
        rule_first_word(names[i], name, sizeof name);
        if (!name[0])
            continue;
        rule_registrable(name, own, sizeof own);
        if (strcmp(reg, own) == 0)
            return 1;
    }
    return 0;
}

int
rule_net_parse(const char *s, struct rule_net *out)
{
    char a[INET6_ADDRSTRLEN + 8];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof a)
        return -1;
    memcpy(a, s, n);
    a[n] = 0;
    memset(out, 0, sizeof *out);
    out->family = strchr(a, ':') ? 6 : 4;
    if (inet_pton(out->family == 6 ? AF_INET6 : AF_INET, a, out->addr) != 1)
        return -1;
    unsigned max = out->family == 6 ? 128 : 32;
    out->prefix = max;
    if (slash) {
        char *end;
        unsigned long p = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || p > max)
            return -1;
        out->prefix = (unsigned)p;
    }
    return 0;
}

static int
rule_net_has(const struct rule_net *net, int family, const uint8_t *addr)
{
    if (net->family != family)
        return 0;
    unsigned full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->addr, addr, full) != 0)
        return 0;
    return rest == 0 || ((net->addr[full] ^ addr[full]) & (0xff00u >> rest) & 0xffu) == 0;
}

/* Where a passive observer cannot tell a server's own trusted networks (Postfix mynetworks,
 * Exim relay_from_hosts) from strangers: RFC 1918, link-local (RFC 3927, RFC 4291) and unique
 * local (RFC 4193). --trusted-net replaces them; loopback, the host itself, always counts. */
static const struct rule_net rule_private_nets[] = {
    {4, {10}, 8},        {4, {172, 16}, 12}, {4, {192, 168}, 16},
    {4, {169, 254}, 16}, {6, {0xfc}, 7},     {6, {0xfe, 0x80}, 10},
};
static const struct rule_net rule_loopback_nets[] = {
    {4, {127}, 8},
    {6, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},
};

/* 1 when the client may be in the networks the server relays for (or its address is not
 * readable: no accusation then). */
static int
rule_client_trusted(struct rule_ctx *x)
{
    const char *ip = rule_sstr(x, "client.ip");
    uint8_t a[16];
    int family = 4;
    if (!ip)
        return 1;
    if (inet_pton(AF_INET, ip, a) != 1) {
        if (inet_pton(AF_INET6, ip, a) != 1)
            return 1;
        family = 6;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof mapped) == 0) {
            memmove(a, a + 12, 4);
            family = 4;
        }
    }
    for (size_t i = 0; i < sizeof rule_loopback_nets / sizeof rule_loopback_nets[0]; i++)
        if (rule_net_has(&rule_loopback_nets[i], family, a))
            return 1;
    const struct rule_net *nets = x->cfg->trusted_nets;
    size_t n = x->cfg->ntrusted_nets;
    if (n == 0) {
        nets = rule_private_nets;
        n = sizeof rule_private_nets / sizeof rule_private_nets[0];
    }
    for (size_t i = 0; i < n; i++)
        if (rule_net_has(&nets[i], family, a))
            return 1;
    return 0;
}

/* Distinct registrable domains an open relay is told by (the spam-relay pattern): several
 * unrelated ones, none the server's own, accepted in one session from a stranger. */
#define RULE_RELAY_DOMAINS 3
#define RULE_RELAY_KEEP 8

struct rule_relay {
    char dom[RULE_RELAY_KEEP][256]; /* registrable domains of accepted foreign recipients */
    size_t ndom;
    struct jt_node *rcpts; /* evidence: the accepted foreign RCPTs (shared) */
    const char *first;     /* the first of their domains, as written */
};

static void
rule_relay_collect(struct rule_ctx *x, struct rule_relay *rl)
{
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        const struct jt_val *t = jt_at(ts, i);
        if (jt_is_true(rule_get(t, "authenticated")))
            continue;
        struct jt_node *rcs = jt_arr(rule_get(t, "rcpt"));
        for (size_t j = 0, m = jt_size(rcs); j < m; j++) {
            const struct jt_val *rc = jt_at(rcs, j);
            long long code = rule_int(rc, "code", 0);
            const char *dom = rule_domain_of(rule_str(rc, "to"));
            if (code < 200 || code >= 300 || !dom || !*dom || rule_domain_local(x, dom))
                continue;
            if (!rl->rcpts)
                rl->rcpts = jt_new_arr(jt_obj(&x->s));
            if (jt_size(rl->rcpts) < RULE_RELAY_KEEP)
                jt_push_val(rl->rcpts, rc);
            if (!rl->first)
                rl->first = dom;
            char reg[256];
            rule_registrable(dom, reg, sizeof reg);
            size_t k = 0;
            while (k < rl->ndom && strcmp(rl->dom[k], reg) != 0)
                k++;
            if (k == rl->ndom && rl->ndom < RULE_RELAY_KEEP)
                memcpy(rl->dom[rl->ndom++], reg, sizeof reg);
        }
    }
}

/* open_relay and relay_accepted share one reading of the session: the first when the packets
 * prove relaying for a stranger, the second for what a trusted network or an MX would also
 * do. */
static void
rule_relay(struct rule_ctx *x, const struct rule *r)
{
    if (rule_auth_succeeded(x))
        return;
    struct rule_relay rl = {.ndom = 0};
    rule_relay_collect(x, &rl);
    if (rl.ndom == 0)
        return;
    int trusted = rule_client_trusted(x);
    int given = x->cfg->nlocal_domains > 0;
    int open = !trusted && (given || rl.ndom >= RULE_RELAY_DOMAINS);
    if (open != (strcmp(r->id, "open_relay") == 0))
        return;
    char list[512] = "";
    struct jt_node *ev = rule_new_obj(x);
    struct jt_node *doms = jt_set_arr(ev, "domains");
    for (size_t k = 0; k < rl.ndom; k++) {
        jt_push_str(doms, rl.dom[k]);
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", rl.dom[k]);
    }
    if (rl.rcpts)
        jt_set_val(ev, "rcpt", &(struct jt_val){.type = JT_ARR, .u.c = rl.rcpts});
    rule_set_opt(ev, "client_ip", rule_sstr(x, "client.ip"));
    jt_set_bool(ev, "client_trusted", trusted);
    jt_set_lit(ev, "trusted_nets", x->cfg->ntrusted_nets ? "given" : "private_ranges");
    jt_set_bool(ev, "local_domains_given", given);
    const char *ip = rule_sstr(x, "client.ip") ? rule_sstr(x, "client.ip") : "?";
    if (open && given)
        rule_add(x, r, r->severity, ev,
                 "the server accepted mail for %s, outside the --local-domain list, from the "
                 "unauthenticated client %s outside its trusted networks: it relays for "
                 "strangers (open relay)",
                 rl.first, ip);
    else if (open)
        rule_add(x, r, r->severity, ev,
                 "the server accepted recipients in %zu unrelated domains (%s), none of them "
                 "its own, from the unauthenticated client %s outside its trusted networks: it "
                 "relays for strangers (open relay)",
                 rl.ndom, list, ip);
    else
        rule_add(x, r, r->severity, ev,
                 "the server accepted mail for %s from the unauthenticated client %s%s: an MX "
                 "for that domain or relaying for a trusted network; --local-domain (the "
                 "domains it is final for) and --trusted-net (the networks it relays for) "
                 "decide whether it is an open relay",
                 list, ip, trusted ? " (a private or trusted address)" : "");
}

/* Words of block-list rejections. "listed" alone is not enough: "greylisted" is a deferral. */
static const char *const rule_blocklist_words[] = {
    "blocked using", "block list", "blocklist", "blacklist", "dnsbl",     "spamhaus",  "spamcop",
    "barracuda",     "sorbs",      "listed in", "listed on", "listed at", "listed by", NULL};

static void
rule_blocklisted(struct rule_ctx *x, const struct rule *r)
{
    struct jt_node *es = jt_arr(rule_sget(x, "smtp.error_replies"));
    for (size_t i = 0, n = jt_size(es); i < n; i++) {
        const struct jt_val *e = jt_at(es, i);
        const char *text = rule_str(e, "text");
        int hit = rule_contains(text, " rbl") || rule_contains(text, "rbl.");
        /* "Recipient not listed in the directory" is about an address, not the client. */
        int negated = rule_contains(text, "not listed") || rule_contains(text, "unlisted");
        for (size_t k = 0; !hit && rule_blocklist_words[k]; k++)
            hit = (!negated || strncmp(rule_blocklist_words[k], "listed", 6) != 0) &&
                  rule_contains(text, rule_blocklist_words[k]);
        if (hit) {
            rule_add_val(x, r, r->severity, e,
                         "the server rejected the client citing a block list: %lld %s",
                         rule_int(e, "code", 0), text);
            return;
        }
    }
}

struct rule_obsolete {
    const char *name;
    int major, minor; /* versions below this are obsolete */
};

/* Releases whose support ended (vendors' published lifecycles). */
static const struct rule_obsolete rule_obsolete_table[] = {
    {"Sendmail", 8, 15},
    {"Postfix", 3, 6},
    {"Exim", 4, 96},
    {"Microsoft Exchange", 15, 1},
    {"Microsoft ESMTP MAIL Service", 8, 0},
    {NULL, 0, 0},
};

static void
rule_outdated_server(struct rule_ctx *x, const struct rule *r)
{
    const char *name = rule_sstr(x, "server_software.name");
    const char *ver = rule_sstr(x, "server_software.version");
    if (!name || !ver)
        return;
    int major = 0, minor = 0;
    if (sscanf(ver, "%d.%d", &major, &minor) < 1)
        return;
    for (const struct rule_obsolete *o = rule_obsolete_table; o->name; o++) {
        if (strcasecmp(o->name, name) != 0)
            continue;
        if (major < o->major || (major == o->major && minor < o->minor)) {
            struct jt_node *ev = rule_new_obj(x);
            jt_set_lit(ev, "software", name);
            jt_set_lit(ev, "version", ver);
            rule_add(x, r, r->severity, ev,
                     "the greeting names %s %s, a release no longer maintained", name, ver);
        }
        return;
    }
}

static int
rule_code_class(const struct jt_val *e, int code, const char *enh_prefix)
{
    const char *enh = rule_str(e, "enhanced");
    return rule_int(e, "code", 0) == code ||
           (enh && enh_prefix && strncmp(enh, enh_prefix, strlen(enh_prefix)) == 0);
}

static void
rule_limits(struct rule_ctx *x, const struct rule *r)
{
    /* deferred, mailbox_full and size_exceeded share one pass over the error replies. Each
     * is about the reply to a command: one with no command in flight defers no message
     * (server_closed_idle), and one whose command was not kept is not known to. */
    struct jt_node *es = jt_arr(rule_sget(x, "smtp.error_replies"));
    for (size_t i = 0, n = jt_size(es); i < n; i++) {
        const struct jt_val *e = jt_at(es, i);
        long long code = rule_int(e, "code", 0);
        const char *text = rule_str(e, "text");
        const char *cmd = rule_str(e, "command");
        if (!cmd)
            continue;
        int full = rule_code_class(e, 0, "4.2.2") || rule_code_class(e, 0, "5.2.2") ||
                   rule_contains(text, "mailbox full") || rule_contains(text, "quota") ||
                   rule_contains(text, "insufficient system storage");
        int size = rule_code_class(e, 0, "5.3.4") || rule_code_class(e, 0, "4.3.4") ||
                   rule_code_class(e, 0, "5.2.3") || rule_code_class(e, 0, "4.2.3") ||
                   rule_contains(text, "too large") || rule_contains(text, "size limit") ||
                   rule_contains(text, "exceeds");
        /* RFC 5321 4.2.1: a 4xx is transient (the sender retries), a 5xx permanent. */
        int temp = code >= 400 && code < 500;
        enum rule_severity sev = temp ? RULE_WARNING : RULE_ERROR;
        const char *then = temp ? "temporary: the sender will retry"
                                : "permanent: the message "
                                  "bounces";
        if (strcmp(r->id, "mailbox_full") == 0 && full && !size) {
            rule_add_val(x, r, sev, e,
                         "the server answered %s that the mailbox is full or over "
                         "quota (%s): %lld %s",
                         cmd, then, code, text ? text : "");
            return;
        }
        if (strcmp(r->id, "size_exceeded") == 0 && size) {
            rule_add_val(x, r, sev, e,
                         "the server answered %s that the message is larger than it "
                         "accepts (%s): %lld %s",
                         cmd, then, code, text ? text : "");
            return;
        }
        if (strcmp(r->id, "deferred") == 0 && temp && code != 421 && !full && !size &&
            strcasecmp(cmd, "AUTH") != 0 && strcasecmp(cmd, "STARTTLS") != 0) {
            rule_add_val(x, r, r->severity, e,
                         "the server deferred %s with a temporary failure (the sender will "
                         "retry): %lld %s",
                         cmd, code, text ? text : "");
            return;
        }
    }
}

/* A 4xx or 5xx with no command in flight (RFC 5321 3.8): the server ending a session on
 * its own, most often an idle timeout. */
static void
rule_server_closed_idle(struct rule_ctx *x, const struct rule *r)
{
    struct jt_node *us = jt_arr(rule_sget(x, "smtp.unsolicited_replies"));
    for (size_t i = 0, n = jt_size(us); i < n; i++) {
        const struct jt_val *u = jt_at(us, i);
        long long code = rule_int(u, "code", 0);
        if (code < 400 || code >= 600)
            continue;
        const char *end = rule_sstr(x, "tcp.end");
        int closed = rule_sbool(x, "tcp.fin.server") || (end && strcmp(end, "rst_server") == 0);
        struct jt_node *ev = rule_new_obj(x);
        jt_set_val(ev, "reply", u);
        rule_set_opt(ev, "phase", rule_sstr(x, "smtp.phase"));
        rule_set_opt(ev, "tcp_end", end);
        rule_add(x, r, r->severity, ev,
                 "with no command in flight the server sent %lld %s%s: it ended an idle "
                 "session (the server's timeout or shutdown, not the deferral of a message)",
                 code, rule_str(u, "text") ? rule_str(u, "text") : "",
                 closed ? " and closed the connection" : "");
        return;
    }
}

static struct jt_node *
rule_how_it_ended(struct rule_ctx *x)
{
    struct jt_node *ev = rule_new_obj(x);
    jt_set_lit(ev, "tcp_end", rule_sstr(x, "tcp.end") ? rule_sstr(x, "tcp.end") : "unknown");
    const struct jt_val *rst = rule_sget(x, "tcp.rst");
    if (rst)
        jt_set_val(ev, "rst", rst);
    return ev;
}

/* What the TCP numbers prove about a message with no final reply (the "connected but
 * connection died" incident): whether the server had it all, and whether it answered. */
static int
rule_died_proof(struct rule_ctx *x, const struct rule *r, const struct jt_val *d,
                struct jt_node *ev)
{
    long long end = rule_int(d, "end_offset", -1);
    long long acked = rule_sint(x, "tcp.acked.client", -1);
    long long reached = rule_sint(x, "tcp.seq_reached.server", -1);
    long long retx = rule_sint(x, "tcp.retransmissions.client", 0);
    if (end < 0 || acked < 0 || reached < 0)
        return 0;
    /* Server bytes its sequence numbers show it sent that no captured packet holds (its
     * FIN takes one number of its own). */
    long long unseen = reached - rule_sint(x, "tcp.bytes_server", 0) -
                       rule_sint(x, "tcp.gap_bytes_server", 0) -
                       (rule_sbool(x, "tcp.fin.server") ? 1 : 0);
    jt_set_int(ev, "end_offset", end);
    jt_set_int(ev, "acked_by_server", acked);
    jt_set_int(ev, "server_bytes_unseen", unseen > 0 ? unseen : 0);
    jt_set_int(ev, "client_retransmissions", retx);
    const struct jt_val *rst = rule_sget(x, "tcp.rst");
    long long rttl = rule_int(rst, "ttl", -1), ettl = rule_int(rst, "expected_ttl", -1);
    const char *from = rule_str(rst, "from");
    if (acked >= end && unseen > 0) {
        rule_add(x, r, r->severity, ev,
                 "the server acknowledged the whole message (%lld bytes of the client's stream) "
                 "and its sequence numbers went %lld bytes past what the capture holds: it very "
                 "probably sent its final reply, which never arrived; a retry will likely "
                 "deliver the message twice",
                 acked, unseen);
        return 1;
    }
    if (acked < end && from && strcmp(from, "server") == 0 && rttl >= 0 && ettl >= 0 &&
        rttl != ettl) {
        rule_add(x, r, r->severity, ev,
                 "an RST with TTL %lld (the server's own packets: %lld), likely injected by a "
                 "middlebox, cut the client off after the server acknowledged %lld of the "
                 "%lld bytes: the real server may have gone on; whether it accepted is not in "
                 "the capture",
                 rttl, ettl, acked, end);
        return 1;
    }
    if (acked < end && retx > 0) {
        rule_add(x, r, r->severity, ev,
                 "the server acknowledged only %lld of the %lld bytes up to the end of data and "
                 "the client retransmitted %lld time(s): the message did not arrive whole, so "
                 "the server cannot have accepted it and a retry is safe",
                 acked, end, retx);
        return 1;
    }
    return 0;
}

static void
rule_died_after_data(struct rule_ctx *x, const struct rule *r)
{
    if (x->gap_server)
        return;
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        const struct jt_val *d = rule_get(jt_at(ts, i), "data");
        if (!d || !rule_get(d, "sent_t_ms") || !jt_is_null(rule_get(d, "code")))
            continue;
        const char *end = rule_sstr(x, "tcp.end");
        /* Until the end of the capture when the session was still open then (a last packet
         * long before the capture stopped is no measure of how long the client waited). */
        double silence = rule_snum(x, "tcp.capture_end_ms", rule_snum(x, "duration_ms", 0)) -
                         jt_num(rule_get(d, "sent_t_ms"), 0);
        struct jt_node *ev = rule_how_it_ended(x);
        jt_set_int(ev, "bytes", rule_int(d, "bytes", 0));
        jt_set_real(ev, "silence_ms", silence);
        /* Still open when the capture stopped, within RFC 5321's 10 minutes: nothing went
         * wrong yet, still_waiting tells how it stood. */
        if (rule_capture_stopped(x, silence, RULE_DATA_WAIT_MS))
            return;
        if (rule_died_proof(x, r, d, ev))
            return;
        rule_add(x, r, r->severity, ev,
                 "the message (%lld bytes) was sent but no final reply came before the "
                 "connection %s: the sender cannot know whether it was accepted",
                 rule_int(d, "bytes", 0),
                 !end                             ? "ended"
                 : strcmp(end, "rst_server") == 0 ? "was reset from the server's side"
                 : strcmp(end, "rst_client") == 0 ? "was reset from the client's side"
                 : strcmp(end, "fin") == 0        ? "was closed"
                 : strcmp(end, "timeout") == 0    ? "went silent"
                 : strcmp(end, "capture_end") == 0
                     ? "was still open when the capture stopped, more than 10 minutes later (RFC "
                       "5321's limit)"
                     : "ended");
        return;
    }
}

static int rule_has(struct rule_ctx *x, const char *id);

/* A session still open when the capture stopped, its client waiting for the server: not a
 * failure (the capture stopped looking), told with how long it had waited by then. */
static void
rule_still_waiting(struct rule_ctx *x, const struct rule *r)
{
    const char *end = rule_sstr(x, "tcp.end");
    struct jt_node *ws = jt_arr(rule_sget(x, "smtp.waits"));
    size_t n = jt_size(ws);
    if (!end || strcmp(end, "capture_end") != 0 || n == 0 || rule_has(x, "died_after_data") ||
        rule_has(x, "no_banner"))
        return;
    const struct jt_val *w = jt_at(ws, n - 1);
    const char *until = rule_str(w, "until"), *what = rule_str(w, "awaiting");
    if (!until || strcmp(until, "capture_end") != 0 || !what)
        return;
    double waited = jt_num(rule_get(w, "waited_ms"), 0);
    int greeting = strcmp(what, "greeting") == 0;
    if (strcmp(what, "end-of-data") == 0 && !x->gap_server) {
        /* The path may show why no reply came yet: the body is not getting through. */
        struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
        const struct jt_val *d = rule_get(jt_at(ts, jt_size(ts) ? jt_size(ts) - 1 : 0), "data");
        long long end_off = rule_int(d, "end_offset", -1);
        long long acked = rule_sint(x, "tcp.acked.client", -1);
        long long retx = rule_sint(x, "tcp.retransmissions.client", 0);
        if (end_off >= 0 && acked >= 0 && acked < end_off && retx > 0) {
            struct jt_node *ev = rule_new_obj(x);
            jt_set_val(ev, "wait", w);
            jt_set_int(ev, "end_offset", end_off);
            jt_set_int(ev, "acked_by_server", acked);
            jt_set_int(ev, "client_retransmissions", retx);
            rule_add(x, r, RULE_WARNING, ev,
                     "still waiting %.1f s for the reply to end-of-data when the capture "
                     "stopped; the server had acknowledged only %lld of the %lld bytes up to the "
                     "end of the message and the client retransmitted %lld time(s): so far it is "
                     "not getting through (a later capture would tell whether it ever did)",
                     waited / 1000.0, acked, end_off, retx);
            return;
        }
    }
    rule_add_val(x, r, r->severity, w,
                 "still waiting %.1f s for %s%s when the capture stopped: the session was open, "
                 "nothing is known yet of how it ended",
                 waited / 1000.0, greeting ? "the greeting" : "the reply to ",
                 greeting ? "" : what);
}

static int
rule_has(struct rule_ctx *x, const char *id)
{
    for (size_t i = 0; i < x->nfound; i++)
        if (strcmp(x->found[i].id, id) == 0)
            return 1;
    return 0;
}

static void
rule_died_mid_session(struct rule_ctx *x, const struct rule *r)
{
    const char *end = rule_sstr(x, "tcp.end");
    const char *phase = rule_sstr(x, "smtp.phase");
    if (!end || !phase || !rule_sbool(x, "tcp.established") || x->encrypted || x->gap_server ||
        x->gap_client)
        return;
    if (rule_sbool(x, "smtp.quit_sent") || rule_has(x, "died_after_data") ||
        rule_has(x, "no_banner") || rule_has(x, "service_unavailable") ||
        rule_has(x, "server_closed_idle"))
        return; /* the session's end is explained already */
    if (strcmp(end, "capture_end") == 0)
        return; /* still open when the capture stopped: nothing was lost yet */
    struct jt_node *ev = rule_how_it_ended(x);
    jt_set_lit(ev, "phase", phase);
    rule_add(x, r, r->severity, ev, "the session ended without QUIT during the %s phase (%s)",
             phase, end);
}

static void
rule_rst_injected(struct rule_ctx *x, const struct rule *r)
{
    const struct jt_val *rst = rule_sget(x, "tcp.rst");
    if (!rst || !rule_get(rst, "expected_ttl"))
        return;
    const char *from = rule_str(rst, "from");
    long long ttl = rule_int(rst, "ttl", -1), exp = rule_int(rst, "expected_ttl", -1);
    char path[64];
    snprintf(path, sizeof path, "tcp.ttl_varies.%s", from ? from : "");
    if (ttl == exp || jt_is_true(rule_get(&x->s, path)))
        return;
    rule_add_val(x, r, r->severity, rst,
                 "an RST claiming to come from the %s has TTL %lld while the %s's packets have "
                 "TTL %lld: it was most likely injected by a middlebox (firewall, IPS)",
                 from ? from : "?", ttl, from ? from : "?", exp);
}

static void
rule_starttls_not_used(struct rule_ctx *x, const struct rule *r)
{
    const char *st = rule_sstr(x, "tls.starttls");
    /* Only when something worth protecting followed: a message or credentials. */
    if (!st || strcmp(st, "offered") != 0 ||
        (!rule_sget(x, "transactions") && !rule_sget(x, "auth")))
        return;
    rule_add(x, r, rule_is_submission(x) ? RULE_WARNING : RULE_NOTICE, NULL,
             "the server offered STARTTLS but the client went on in clear text");
}

static void
rule_starttls_failed(struct rule_ctx *x, const struct rule *r)
{
    const char *st = rule_sstr(x, "tls.starttls");
    if (!st)
        return;
    if (strcmp(st, "refused") == 0) {
        struct jt_node *ev = rule_new_obj(x);
        jt_set_int(ev, "code", rule_sint(x, "tls.code", 0));
        rule_set_opt(ev, "text", rule_sstr(x, "tls.text"));
        rule_add(x, r, r->severity, ev, "the server refused STARTTLS: %lld %s",
                 rule_sint(x, "tls.code", 0),
                 rule_sstr(x, "tls.text") ? rule_sstr(x, "tls.text") : "");
        return;
    }
    if (strcmp(st, "not_started") == 0) {
        struct jt_node *ev = rule_new_obj(x);
        jt_set_int(ev, "code", rule_sint(x, "tls.code", 0));
        rule_add(x, r, r->severity, ev,
                 "the server accepted STARTTLS (%lld) but the next bytes were SMTP in clear, not a "
                 "TLS handshake: no TLS was negotiated",
                 rule_sint(x, "tls.code", 0));
        return;
    }
    const struct jt_val *hc = rule_sget(x, "tls.handshake_complete");
    if ((strcmp(st, "established") == 0 || strcmp(st, "implicit") == 0) && jt_is_false(hc) &&
        !x->gap_client && !x->gap_server &&
        (jt_size(jt_arr(rule_sget(x, "tls.alerts"))) > 0 ||
         strcmp(rule_sstr(x, "tcp.end") ? rule_sstr(x, "tcp.end") : "", "capture_end") != 0))
        rule_add_val(x, r, r->severity, rule_sget(x, "tls.alerts"),
                     "the TLS handshake did not complete");
}

static void
rule_extensions_masked(struct rule_ctx *x, const struct rule *r)
{
    const struct jt_val *m = rule_sget(x, "ehlo.masked");
    if (jt_size(jt_arr(m)) == 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_val(ev, "lines", m);
    rule_add(x, r, r->severity, ev,
             "the EHLO reply contains masked extensions: a middlebox (e.g. an SMTP inspection "
             "feature of a firewall) rewrites the dialogue");
}

static void
rule_pipelining_unadvertised(struct rule_ctx *x, const struct rule *r)
{
    long long n = rule_sint(x, "smtp.pipelining_violations", 0);
    if (n <= 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "commands", n);
    rule_add(x, r, r->severity, ev,
             "the client pipelined %lld command(s) although the server did not offer "
             "PIPELINING",
             n);
}

/* Sums a per-direction count of the command lines (smtp.<what>) and, for the client, of
 * the message bodies (transactions[].data.<body_field>). */
static void
rule_line_counts(struct rule_ctx *x, const char *client_path, const char *server_path,
                 const char *body_field, long long *client, long long *server)
{
    *client = jt_int(rule_sget(x, client_path), 0);
    *server = jt_int(rule_sget(x, server_path), 0);
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        long long v = rule_int(rule_get(jt_at(ts, i), "data"), body_field, 0);
        if (v > 0)
            *client += v;
    }
}

static void
rule_line_too_long(struct rule_ctx *x, const struct rule *r)
{
    long long c, s;
    rule_line_counts(x, "smtp.long_lines.client", "smtp.long_lines.server", "long_lines", &c, &s);
    long long longest = 0;
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        long long v = rule_int(jt_at(ts, i), "data.longest_line", 0);
        if (v > longest)
            longest = v;
    }
    /* RFC 5321 4.5.3.1.6: 1000 octets including the CRLF. */
    if (longest > 998 && c == 0)
        c = 1;
    if (c <= 0 && s <= 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "client", c);
    jt_set_int(ev, "server", s);
    jt_set_int(ev, "longest_body_line", longest);
    rule_add(x, r, r->severity, ev,
             "lines longer than the 1000 bytes RFC 5321 allows were sent (client %lld, server "
             "%lld)",
             c, s);
}

static void
rule_bare_lf(struct rule_ctx *x, const struct rule *r)
{
    long long c, s;
    rule_line_counts(x, "smtp.bare_lf.client", "smtp.bare_lf.server", "bare_lf", &c, &s);
    if (c <= 0 && s <= 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "client", c);
    jt_set_int(ev, "server", s);
    rule_add(x, r, r->severity, ev,
             "lines ended by a bare LF instead of CRLF (client %lld, server %lld)", c, s);
}

/* Replies with no command in flight after a message's final reply and before the next
 * transaction: a server that read an end of data inside the body answers the commands it
 * found behind it (RFC 5321 4.1.1.4; the 2023 SMTP smuggling research). */
static size_t
rule_extra_replies(struct rule_ctx *x, const struct jt_val *d, double until, struct jt_node *out,
                   struct jt_node *qids)
{
    const char *own = rule_str(d, "queue_id");
    double from = jt_num(rule_get(d, "sent_t_ms"), -1);
    struct jt_node *us = jt_arr(rule_sget(x, "smtp.unsolicited_replies"));
    size_t split = 0;
    for (size_t i = 0, n = jt_size(us); from >= 0 && i < n; i++) {
        const struct jt_val *u = jt_at(us, i);
        double t = jt_num(rule_get(u, "t_ms"), -1);
        if (t < from || (until >= 0 && t > until))
            continue;
        jt_push_val(out, u);
        const char *q = rule_str(u, "queue_id");
        /* A second queue id, or a 354 that answers a DATA the client never sent as one. */
        if (q && (!own || strcmp(q, own) != 0)) {
            jt_push_str(qids, q);
            split++;
        } else if (rule_int(u, "code", 0) == 354) {
            split++;
        }
    }
    return split;
}

static void
rule_smuggling(struct rule_ctx *x, const struct rule *r)
{
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        const struct jt_val *d = rule_get(jt_at(ts, i), "data");
        const struct jt_val *sm = rule_get(d, "smuggling");
        if (jt_size(jt_arr(sm)) == 0)
            continue;
        double until = i + 1 < n ? jt_num(rule_get(jt_at(ts, i + 1), "t_ms"), -1) : -1;
        const struct jt_val *first = jt_at(jt_arr(sm), 0);
        const char *form = rule_str(first, "form") ? rule_str(first, "form") : "?";
        long long code = jt_int(rule_get(d, "code"), 0);
        const char *qid = rule_str(d, "queue_id");
        struct jt_node *ev = rule_new_obj(x);
        jt_set_val(ev, "sequences", sm);
        jt_set_int(ev, "transaction", (long long)i);
        if (code)
            jt_set_int(ev, "final_code", code);
        rule_set_opt(ev, "queue_id", qid);
        struct jt_node *extra = jt_set_arr(ev, "unsolicited_replies");
        struct jt_node *qids = jt_set_arr(ev, "other_queue_ids");
        size_t split = code / 100 == 2 ? rule_extra_replies(x, d, until, extra, qids) : 0;
        if (split > 0)
            rule_add(x, r, RULE_ERROR, ev,
                     "the server split one DATA into several messages: the body holds a %s end "
                     "of data, and after its final reply (%lld%s%s) the server sent %zu more "
                     "with no command in flight%s, answering the transaction hidden behind it "
                     "(SMTP smuggling: this server is vulnerable)",
                     form, code, qid ? ", queued as " : "", qid ? qid : "", jt_size(extra),
                     jt_size(qids) ? ", with another queue id" : "");
        else if (!code || x->gap_server)
            rule_add(x, r, RULE_NOTICE, ev,
                     "the body holds a %s end of data (attempted SMTP smuggling), but the "
                     "capture lacks the server's replies that would tell whether it split the "
                     "message",
                     form);
        else if (code / 100 != 2)
            rule_add(x, r, RULE_WARNING, ev,
                     "the client attempted SMTP smuggling (a %s end of data inside the body) and "
                     "this server was not fooled: it refused the message (%lld %s)",
                     form, code, rule_str(d, "text") ? rule_str(d, "text") : "");
        else
            rule_add(x, r, RULE_WARNING, ev,
                     "the client attempted SMTP smuggling (a %s end of data inside the body) and "
                     "this server was not fooled: one final reply (%lld%s%s) and no reply to a "
                     "hidden transaction",
                     form, code, qid ? ", queued as " : "", qid ? qid : "");
        return;
    }
}

static void
rule_capture_gap(struct rule_ctx *x, const struct rule *r)
{
    long long trunc = rule_sint(x, "tcp.truncated_packets", 0);
    if (!x->gap_client && !x->gap_server && trunc == 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "client_bytes_missing", rule_sint(x, "tcp.gap_bytes_client", 0));
    jt_set_int(ev, "server_bytes_missing", rule_sint(x, "tcp.gap_bytes_server", 0));
    jt_set_int(ev, "truncated_packets", trunc);
    rule_add(x, r, r->severity, ev,
             "the capture missed part of this connection: what follows the hole is partial, and "
             "rules that need the missing bytes stayed silent");
}

/* ---- the server's and client's departures from the protocol, as the bytes show them ---- */

static void
rule_data_without_envelope(struct rule_ctx *x, const struct rule *r)
{
    long long n = rule_sint(x, "smtp.data_without_envelope", 0);
    if (n <= 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "messages", n);
    rule_add(x, r, r->severity, ev,
             "the server took %lld message(s) with no accepted MAIL FROM or RCPT TO, where RFC "
             "5321 4.1.1.4 requires it to refuse the data (503/554): its transaction state "
             "cannot be trusted",
             n);
}

static void
rule_plaintext_on_tls_port(struct rule_ctx *x, const struct rule *r)
{
    if (!rule_sbool(x, "tls.plaintext_on_tls_port"))
        return;
    rule_add(x, r, r->severity, rule_new_obj(x),
             "port %lld is TLS from the first byte (RFC 8314 3.3), but this dialogue went in clear "
             "text: what crossed it, credentials included, was readable on the wire",
             rule_sint(x, "server.port", 0));
}

static void
rule_starttls_injection(struct rule_ctx *x, const struct rule *r)
{
    long long n = rule_sint(x, "tls.cleartext_after_starttls", 0);
    if (n <= 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "bytes", n);
    rule_add(x, r, r->severity, ev,
             "the client sent %lld bytes in clear after STARTTLS, before the server's 220: a "
             "server with the STARTTLS command injection flaw runs them as commands inside TLS "
             "(whether this one did is not visible without decryption)",
             n);
}

static void
rule_conflicting_copies(struct rule_ctx *x, const struct rule *r)
{
    long long c = rule_sint(x, "tcp.conflicting_copies.client", 0);
    long long s = rule_sint(x, "tcp.conflicting_copies.server", 0);
    if (c + s <= 0)
        return;
    struct jt_node *ev = rule_new_obj(x);
    jt_set_int(ev, "client", c);
    jt_set_int(ev, "server", s);
    const struct jt_val *where = rule_sget(x, "tcp.conflicts");
    if (where)
        jt_set_val(ev, "conflicts", where);
    rule_add(x, r, r->severity, ev,
             "%lld segment(s) were sent again at the same place with different bytes (client "
             "%lld, server %lld): an attempt to show an observer other data than the receiver "
             "keeps, or a broken middlebox; the report uses the first copy, which the "
             "receiving stack keeps",
             c + s, c, s);
}

/* Order matters only where a rule looks at what earlier ones found (died_mid_session). */
static const struct rule rule_table[] = {
    {"syn_unanswered", RULE_ERROR, rule_syn_unanswered, 1},
    {"connection_refused", RULE_ERROR, rule_connection_refused, 1},
    {"no_banner", RULE_ERROR, rule_no_banner, 1},
    {"banner_delay", RULE_WARNING, rule_banner_delay, 0},
    {"service_unavailable", RULE_ERROR, rule_service_unavailable, 0},
    {"slow_reply", RULE_WARNING, rule_slow_reply, 0},
    {"auth_skipped", RULE_WARNING, rule_auth_skipped, 0},
    {"auth_failed", RULE_ERROR, rule_auth_failed, 0},
    {"auth_not_offered", RULE_WARNING, rule_auth_not_offered, 0},
    {"auth_in_clear", RULE_WARNING, rule_auth_in_clear, 0},
    {"relay_denied", RULE_ERROR, rule_relay_denied, 0},
    {"open_relay", RULE_ERROR, rule_relay, 0},
    {"relay_accepted", RULE_NOTICE, rule_relay, 0},
    {"blocklisted", RULE_ERROR, rule_blocklisted, 0},
    {"outdated_server", RULE_WARNING, rule_outdated_server, 0},
    {"deferred", RULE_WARNING, rule_limits, 0},
    {"mailbox_full", RULE_ERROR, rule_limits, 0},
    {"size_exceeded", RULE_ERROR, rule_limits, 0},
    {"server_closed_idle", RULE_NOTICE, rule_server_closed_idle, 0},
    {"died_after_data", RULE_ERROR, rule_died_after_data, 1},
    {"died_mid_session", RULE_WARNING, rule_died_mid_session, 1},
    {"still_waiting", RULE_NOTICE, rule_still_waiting, 1},
    {"rst_injected", RULE_ERROR, rule_rst_injected, 0},
    {"starttls_not_used", RULE_NOTICE, rule_starttls_not_used, 0},
    {"starttls_failed", RULE_ERROR, rule_starttls_failed, 1},
    {"extensions_masked", RULE_WARNING, rule_extensions_masked, 0},
    {"pipelining_unadvertised", RULE_WARNING, rule_pipelining_unadvertised, 0},
    {"line_too_long", RULE_WARNING, rule_line_too_long, 0},
    {"bare_lf", RULE_NOTICE, rule_bare_lf, 0},
    {"smuggling", RULE_ERROR, rule_smuggling, 0},
    {"capture_gap", RULE_NOTICE, rule_capture_gap, 0},
    {"data_without_envelope", RULE_WARNING, rule_data_without_envelope, 0},
    {"plaintext_on_tls_port", RULE_WARNING, rule_plaintext_on_tls_port, 0},
    {"starttls_injection", RULE_WARNING, rule_starttls_injection, 0},
    {"capture_one_sided", RULE_NOTICE, rule_capture_one_sided, 1},
    {"conflicting_copies", RULE_WARNING, rule_conflicting_copies, 0},
};

#define RULE_COUNT (sizeof rule_table / sizeof rule_table[0])

size_t
rule_count(void)
{
    return RULE_COUNT;
}

const char *
rule_id(size_t i)
{
    return i < RULE_COUNT ? rule_table[i].id : NULL;
}

static int
rule_cmp(const void *a, const void *b)
{
    const struct rule_found *x = a, *y = b;
    if (x->sev != y->sev)
        return (int)y->sev - (int)x->sev;
    return strcmp(x->id, y->id);
}

static int rule_run(const struct rule_config *cfg, struct jt_node *session, int open);

int
rule_apply(const struct rule_config *cfg, struct jt_node *session)
{
    return rule_run(cfg, session, 0);
}

int
rule_apply_open(const struct rule_config *cfg, struct jt_node *session)
{
    return rule_run(cfg, session, 1);
}

int
rule_apply_json(const struct rule_config *cfg, json_t *session)
{
    struct jt *t = jt_new();
    if (!t)
        return -1;
    int max = -1;
    if (jt_from_json(jt_root(t), session) == 0) {
        max = rule_apply(cfg, jt_root(t));
        jx_set(session, "anomalies", jt_to_json(jt_arr(jt_get(jt_root(t), "anomalies"))));
    }
    jt_free(t);
    return max;
}

static int
rule_run(const struct rule_config *cfg, struct jt_node *session, int open)
{
    struct rule_ctx x = {.cfg = cfg, .s = {.type = JT_OBJ, .u.c = session}};
    x.gap_client = rule_sint(&x, "tcp.gap_bytes_client", 0) > 0 ||
                   rule_sint(&x, "tcp.truncated_packets", 0) > 0;
    x.gap_server = rule_sint(&x, "tcp.gap_bytes_server", 0) > 0 ||
                   rule_sint(&x, "tcp.truncated_packets", 0) > 0;
    /* Encrypted and not decrypted: the dialogue after STARTTLS is out of sight. */
    x.encrypted = rule_sbool(&x, "tls.encrypted") && !rule_sbool(&x, "tls.decrypted");
    /* One direction missing from the capture: the rules see it as a hole in that direction. */
    const char *one_sided = rule_sstr(&x, "tcp.one_sided");
    if (one_sided)
        *(strcmp(one_sided, "client") == 0 ? &x.gap_server : &x.gap_client) = 1;
    x.midstream = rule_sbool(&x, "tcp.midstream");
    /* Holes inside TLS (records that failed to decrypt) blind the rules like capture holes. */
    if (rule_sint(&x, "smtp.gaps.client", 0) > 0)
        x.gap_client = 1;
    if (rule_sint(&x, "smtp.gaps.server", 0) > 0)
        x.gap_server = 1;
    for (size_t i = 0; i < RULE_COUNT; i++)
        if (!open || !rule_table[i].at_end)
            rule_table[i].check(&x, &rule_table[i]);
    /* Stable order: most severe first, then by id. */
    if (x.nfound > 0)
        qsort(x.found, x.nfound, sizeof *x.found, rule_cmp);
    struct jt_node *arr = jt_set_arr(session, "anomalies");
    for (size_t i = 0; i < x.nfound; i++)
        jt_push_val(arr, &(struct jt_val){.type = JT_OBJ, .u.c = x.found[i].a});
    int max = x.nfound > 0 ? (int)x.found[0].sev : -1;
    mem_free(x.found);
    return max;
}
