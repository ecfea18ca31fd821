/* rules.c - the anomaly catalogue (docs/anomalies.md): one row per anomaly id with its
 * severity and check. Checks read only the session report, so what a rule concludes can
 * always be traced to fields the user also sees. A capture problem is never blamed on a
 * server: rules that need bytes the capture lost stay silent (capture_gap says why). */
#include "rules.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jtree.h"
#include "mem.h"

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

static void
rule_no_banner(struct rule_ctx *x, const struct rule *r)
{
    if (!rule_sbool(x, "tcp.established") || rule_sget(x, "banner") || x->gap_server ||
        x->encrypted || x->midstream)
        return;
    double waited = rule_snum(x, "duration_ms", 0) - rule_snum(x, "tcp.handshake_rtt_ms", 0);
    struct jt_node *ev = rule_new_obj(x);
    jt_set_real(ev, "waited_ms", waited);
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
        if (rule_int(e, "code", 0) == 421) {
            rule_add_val(x, r, r->severity, e, "the server closed the service (421) in reply to %s",
                         rule_str(e, "command") ? rule_str(e, "command") : "a command");
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
        if (!jt_is_true(rule_get(a, "in_clear")))
            continue;
        const char *mech = rule_str(a, "mechanism");
        /* Challenge-response mechanisms do not reveal the password itself. */
        int reveals =
            mech && (strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0 ||
                     strncasecmp(mech, "XOAUTH", 6) == 0 || strcasecmp(mech, "OAUTHBEARER") == 0);
        struct jt_node *ev = rule_new_obj(x);
        rule_set_opt(ev, "mechanism", mech);
        rule_set_opt(ev, "user", rule_str(a, "user"));
        rule_add(x, r, reveals ? RULE_WARNING : RULE_NOTICE, ev,
                 "credentials (AUTH %s) were sent without TLS%s", mech ? mech : "",
                 reveals ? ": the password can be read on the wire" : "");
        return;
    }
}

static int
rule_is_relay_text(const char *text)
{
    return rule_contains(text, "relay");
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
            const char *enh = rule_str(rc, "enhanced");
            if (code >= 400 && (rule_is_relay_text(rule_str(rc, "text")) ||
                                (enh && strcmp(enh, "5.7.1") == 0 &&
                                 !rule_contains(rule_str(rc, "text"), "blocked")))) {
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

/* The server's own name from its greeting ("220 mail.example.org ESMTP ..."). */
static void
rule_server_name(struct rule_ctx *x, char *out, size_t outlen)
{
    const char *t = rule_sstr(x, "banner.text");
    out[0] = 0;
    if (!t)
        return;
    size_t n = 0;
    while (t[n] && t[n] != ' ' && n + 1 < outlen)
        n++;
    memcpy(out, t, n);
    out[n] = 0;
}

/* 1 when domain is name or a parent of it beyond the first label, or the reverse. */
static int
rule_domain_related(const char *domain, const char *host)
{
    if (!domain || !host || !*domain || !*host)
        return 0;
    if (strcasecmp(domain, host) == 0)
        return 1;
    const char *h = strchr(host, '.');
    if (h && strcasecmp(domain, h + 1) == 0)
        return 1;
    size_t dl = strlen(domain), hl = strlen(host);
    if (dl > hl && domain[dl - hl - 1] == '.' && strcasecmp(domain + dl - hl, host) == 0)
        return 1;
    if (h) {
        size_t pl = strlen(h + 1);
        if (dl > pl && domain[dl - pl - 1] == '.' && strcasecmp(domain + dl - pl, h + 1) == 0)
            return 1;
    }
    return 0;
}

static int
rule_domain_local(struct rule_ctx *x, const char *domain)
{
    if (!domain)
        return 1; /* "postmaster" without a domain is always local */
    for (size_t i = 0; i < x->cfg->nlocal_domains; i++)
        if (rule_domain_related(domain, x->cfg->local_domains[i]))
            return 1;
    if (x->cfg->nlocal_domains > 0)
        return 0;
    char name[256];
    rule_server_name(x, name, sizeof name);
    return rule_domain_related(domain, name);
}

static void
rule_open_relay(struct rule_ctx *x, const struct rule *r)
{
    if (rule_auth_succeeded(x))
        return;
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        const struct jt_val *t = jt_at(ts, i);
        if (jt_is_true(rule_get(t, "authenticated")))
            continue;
        const char *from_dom = rule_domain_of(rule_str(t, "mail_from"));
        struct jt_node *rcs = jt_arr(rule_get(t, "rcpt"));
        for (size_t j = 0, m = jt_size(rcs); j < m; j++) {
            const struct jt_val *rc = jt_at(rcs, j);
            long long code = rule_int(rc, "code", 0);
            const char *to = rule_str(rc, "to");
            const char *dom = rule_domain_of(to);
            if (code < 200 || code >= 300 || !dom || rule_domain_local(x, dom))
                continue;
            /* Mail for a domain of the sender's own is ordinary inbound mail. */
            if (from_dom && strcasecmp(from_dom, dom) == 0 && rule_domain_local(x, from_dom))
                continue;
            struct jt_node *ev = rule_new_obj(x);
            jt_set_lit(ev, "rcpt", to); /* not NULL: dom is in it */
            rule_set_opt(ev, "mail_from", rule_str(t, "mail_from"));
            jt_set_int(ev, "code", code);
            rule_add(x, r, r->severity, ev,
                     "an unauthenticated client's mail for the foreign domain %s was accepted: "
                     "the server relays for it (open relay, or the client's network is trusted)",
                     dom);
            return;
        }
    }
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
        for (size_t k = 0; !hit && rule_blocklist_words[k]; k++)
            hit = rule_contains(text, rule_blocklist_words[k]);
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
    /* deferred, mailbox_full and size_exceeded share one pass over the error replies. */
    struct jt_node *es = jt_arr(rule_sget(x, "smtp.error_replies"));
    for (size_t i = 0, n = jt_size(es); i < n; i++) {
        const struct jt_val *e = jt_at(es, i);
        long long code = rule_int(e, "code", 0);
        const char *text = rule_str(e, "text");
        const char *cmd = rule_str(e, "command");
        int full = rule_code_class(e, 0, "4.2.2") || rule_code_class(e, 0, "5.2.2") ||
                   rule_contains(text, "mailbox full") || rule_contains(text, "quota") ||
                   rule_contains(text, "insufficient system storage");
        int size = rule_code_class(e, 0, "5.3.4") || rule_code_class(e, 0, "5.2.3") ||
                   rule_contains(text, "too large") || rule_contains(text, "size limit") ||
                   rule_contains(text, "exceeds");
        if (strcmp(r->id, "mailbox_full") == 0 && full && !size) {
            rule_add_val(x, r, r->severity, e, "the mailbox is full or over quota: %lld %s", code,
                         text ? text : "");
            return;
        }
        if (strcmp(r->id, "size_exceeded") == 0 && size) {
            rule_add_val(x, r, r->severity, e,
                         "the message is larger than the server accepts: %lld %s", code,
                         text ? text : "");
            return;
        }
        if (strcmp(r->id, "deferred") == 0 && code >= 400 && code < 500 && code != 421 && !full &&
            !(cmd && strcasecmp(cmd, "AUTH") == 0) && !(cmd && strcasecmp(cmd, "STARTTLS") == 0)) {
            rule_add_val(x, r, r->severity, e,
                         "the server deferred %s with a temporary failure: %lld %s",
                         cmd ? cmd : "a command", code, text ? text : "");
            return;
        }
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
        double silence = rule_snum(x, "duration_ms", 0) - jt_num(rule_get(d, "sent_t_ms"), 0);
        struct jt_node *ev = rule_how_it_ended(x);
        jt_set_int(ev, "bytes", rule_int(d, "bytes", 0));
        jt_set_real(ev, "silence_ms", silence);
        rule_add(x, r, r->severity, ev,
                 "the message (%lld bytes) was sent but no final reply came before the "
                 "connection %s: the sender cannot know whether it was accepted",
                 rule_int(d, "bytes", 0),
                 !end                              ? "ended"
                 : strcmp(end, "rst_server") == 0  ? "was reset from the server's side"
                 : strcmp(end, "rst_client") == 0  ? "was reset from the client's side"
                 : strcmp(end, "fin") == 0         ? "was closed"
                 : strcmp(end, "timeout") == 0     ? "went silent"
                 : strcmp(end, "capture_end") == 0 ? "was still waiting at the end of the capture"
                                                   : "ended");
        return;
    }
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
        rule_has(x, "no_banner") || rule_has(x, "service_unavailable"))
        return;
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

static void
rule_smuggling(struct rule_ctx *x, const struct rule *r)
{
    struct jt_node *ts = jt_arr(rule_sget(x, "transactions"));
    for (size_t i = 0, n = jt_size(ts); i < n; i++) {
        const struct jt_val *sm = rule_get(jt_at(ts, i), "data.smuggling");
        if (jt_size(jt_arr(sm)) == 0)
            continue;
        struct jt_node *ev = rule_new_obj(x);
        jt_set_val(ev, "sequences", sm);
        rule_add(x, r, r->severity, ev,
                 "the message body holds an end-of-data sequence other than CRLF.CRLF "
                 "(SMTP smuggling: servers that accept it see a second message)");
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
    {"open_relay", RULE_ERROR, rule_open_relay, 0},
    {"blocklisted", RULE_ERROR, rule_blocklisted, 0},
    {"outdated_server", RULE_WARNING, rule_outdated_server, 0},
    {"deferred", RULE_WARNING, rule_limits, 0},
    {"mailbox_full", RULE_ERROR, rule_limits, 0},
    {"size_exceeded", RULE_ERROR, rule_limits, 0},
    {"died_after_data", RULE_ERROR, rule_died_after_data, 1},
    {"died_mid_session", RULE_WARNING, rule_died_mid_session, 1},
    {"rst_injected", RULE_ERROR, rule_rst_injected, 0},
    {"starttls_not_used", RULE_NOTICE, rule_starttls_not_used, 0},
    {"starttls_failed", RULE_ERROR, rule_starttls_failed, 1},
    {"extensions_masked", RULE_WARNING, rule_extensions_masked, 0},
    {"pipelining_unadvertised", RULE_WARNING, rule_pipelining_unadvertised, 0},
    {"line_too_long", RULE_WARNING, rule_line_too_long, 0},
    {"bare_lf", RULE_NOTICE, rule_bare_lf, 0},
    {"smuggling", RULE_ERROR, rule_smuggling, 0},
    {"capture_gap", RULE_NOTICE, rule_capture_gap, 0},
    {"capture_one_sided", RULE_NOTICE, rule_capture_one_sided, 1},
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
