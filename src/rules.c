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

#include "jsonx.h"
#include "mem.h"

/* Paths of the session read by the rules, remembered for one run: most are read by several
 * rules, and each read is a split and a hash lookup per part. */
#define RULE_MEMO 64

struct rule_ctx {
    const struct rule_config *cfg;
    json_t *s; /* the session */
    struct {
        const char *path; /* a literal: compared by address */
        json_t *v;
    } memo[RULE_MEMO];
    size_t nmemo;
    json_t *out;    /* anomalies found */
    int gap_client; /* bytes missing per direction */
    int gap_server;
    int encrypted;
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

/* ---- small JSON readers ---- */

static json_t *
rule_get(json_t *o, const char *path)
{
    for (;;) {
        const char *dot = strchr(path, '.');
        if (!o || !dot)
            return o ? json_object_get(o, path) : NULL;
        o = json_object_getn(o, path, (size_t)(dot - path));
        path = dot + 1;
    }
}

static const char *
rule_str_v(json_t *v)
{
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static long long
rule_int_v(json_t *v, long long dflt)
{
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

static double
rule_num_v(json_t *v, double dflt)
{
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static const char *
rule_str(json_t *o, const char *path)
{
    return rule_str_v(rule_get(o, path));
}

static long long
rule_int(json_t *o, const char *path, long long dflt)
{
    return rule_int_v(rule_get(o, path), dflt);
}

/* rule_get on the session, remembered (the session does not change while rules run). */
static json_t *
rule_sget(struct rule_ctx *x, const char *path)
{
    for (size_t i = 0; i < x->nmemo; i++)
        if (x->memo[i].path == path)
            return x->memo[i].v;
    json_t *v = rule_get(x->s, path);
    if (x->nmemo < RULE_MEMO) {
        x->memo[x->nmemo].path = path;
        x->memo[x->nmemo].v = v;
        x->nmemo++;
    }
    return v;
}

static const char *
rule_sstr(struct rule_ctx *x, const char *path)
{
    return rule_str_v(rule_sget(x, path));
}

static long long
rule_sint(struct rule_ctx *x, const char *path, long long dflt)
{
    return rule_int_v(rule_sget(x, path), dflt);
}

static double
rule_snum(struct rule_ctx *x, const char *path, double dflt)
{
    return rule_num_v(rule_sget(x, path), dflt);
}

static int
rule_sbool(struct rule_ctx *x, const char *path)
{
    return json_is_true(rule_sget(x, path));
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

static void rule_add(struct rule_ctx *x, const struct rule *r, enum rule_severity sev,
                     json_t *evidence, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
rule_add(struct rule_ctx *x, const struct rule *r, enum rule_severity sev, json_t *evidence,
         const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *a = json_object();
    jx_set(a, "id", json_string(r->id));
    jx_set(a, "severity", json_string(rule_severity_name(sev)));
    jx_set(a, "message", jx_str(msg));
    jx_set(a, "evidence", evidence ? evidence : json_object());
    json_array_append_new(x->out, a);
}

static int
rule_is_submission(struct rule_ctx *x)
{
    long long port = rule_sint(x, "server.port", 0);
    return port == 587 || port == 465;
}

/* ---- checks ---- */

static void
rule_syn_unanswered(struct rule_ctx *x, const struct rule *r)
{
    const char *end = rule_sstr(x, "tcp.end");
    if (!end || strcmp(end, "syn_unanswered") != 0)
        return;
    rule_add(x, r, r->severity,
             json_pack("{s:I}", "syn_count", (json_int_t)rule_sint(x, "tcp.syn_count", 0)),
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
    rule_add(x, r, r->severity,
             json_pack("{s:I}", "rst_ttl", (json_int_t)rule_sint(x, "tcp.rst.ttl", -1)),
             "the connection to port %lld was refused (SYN answered by RST): nothing listens "
             "there or a firewall rejects it",
             rule_sint(x, "server.port", 0));
}

static void
rule_no_banner(struct rule_ctx *x, const struct rule *r)
{
    if (!rule_sbool(x, "tcp.established") || rule_sget(x, "banner") || x->gap_server ||
        x->encrypted)
        return;
    double waited = rule_snum(x, "duration_ms", 0) - rule_snum(x, "tcp.handshake_rtt_ms", 0);
    rule_add(x, r, r->severity, json_pack("{s:f}", "waited_ms", waited),
             "the server never sent its greeting (waited %.0f ms after the handshake)", waited);
}

static void
rule_banner_delay(struct rule_ctx *x, const struct rule *r)
{
    double d = rule_snum(x, "banner.delay_ms", -1);
    if (d < 0 || d <= x->cfg->banner_delay_ms)
        return;
    rule_add(x, r, r->severity,
             json_pack("{s:f,s:f}", "delay_ms", d, "threshold_ms", x->cfg->banner_delay_ms),
             "the greeting came %.0f ms after the handshake (threshold %.0f ms)", d,
             x->cfg->banner_delay_ms);
}

static void
rule_service_unavailable(struct rule_ctx *x, const struct rule *r)
{
    long long code = rule_sint(x, "banner.code", 0);
    if (code == 421 || code == 554) {
        rule_add(
            x, r, r->severity,
            json_pack("{s:I,s:s?}", "code", (json_int_t)code, "text", rule_sstr(x, "banner.text")),
            "the server refused service at the greeting: %lld %s", code,
            rule_sstr(x, "banner.text") ? rule_sstr(x, "banner.text") : "");
        return;
    }
    size_t i;
    json_t *e;
    json_array_foreach (rule_sget(x, "smtp.error_replies"), i, e) {
        if (rule_int(e, "code", 0) == 421) {
            rule_add(x, r, r->severity, json_deep_copy(e),
                     "the server closed the service (421) in reply to %s",
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
    rule_add(x, r, r->severity, json_deep_copy(rule_sget(x, "smtp.slowest_reply")),
             "the reply to %s took %.0f ms (threshold %.0f ms)",
             rule_sstr(x, "smtp.slowest_reply.command") ? rule_sstr(x, "smtp.slowest_reply.command")
                                                        : "a command",
             ms, x->cfg->slow_reply_ms);
}

static int
rule_auth_offered(struct rule_ctx *x)
{
    return json_array_size(rule_sget(x, "ehlo.auth")) > 0;
}

static int
rule_auth_succeeded(struct rule_ctx *x)
{
    size_t i;
    json_t *a;
    json_array_foreach (rule_sget(x, "auth"), i, a) {
        const char *res = rule_str(a, "result");
        if (res && strcmp(res, "success") == 0)
            return 1;
    }
    return 0;
}

static void
rule_auth_skipped(struct rule_ctx *x, const struct rule *r)
{
    if (!rule_auth_offered(x) || rule_auth_succeeded(x))
        return;
    size_t i;
    json_t *t;
    json_array_foreach (rule_sget(x, "transactions"), i, t) {
        if (json_is_true(rule_get(t, "authenticated")))
            continue;
        json_t *mechs = json_deep_copy(rule_sget(x, "ehlo.auth"));
        rule_add(x, r, rule_is_submission(x) ? RULE_WARNING : RULE_NOTICE,
                 json_pack("{s:o,s:s?}", "offered", mechs, "mail_from", rule_str(t, "mail_from")),
                 "the server offered AUTH but the client sent MAIL FROM without "
                 "authenticating");
        return;
    }
}

static void
rule_auth_failed(struct rule_ctx *x, const struct rule *r)
{
    size_t i;
    json_t *a;
    json_array_foreach (rule_sget(x, "auth"), i, a) {
        const char *res = rule_str(a, "result");
        if (!res || strcmp(res, "failure") != 0)
            continue;
        rule_add(x, r, r->severity,
                 json_pack("{s:s?,s:s?,s:I,s:s?}", "mechanism", rule_str(a, "mechanism"), "user",
                           rule_str(a, "user"), "code", (json_int_t)rule_int(a, "code", 0), "text",
                           rule_str(a, "text")),
                 "AUTH %s%s%s failed: %lld %s",
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
    size_t i;
    json_t *a;
    json_array_foreach (rule_sget(x, "auth"), i, a) {
        json_t *adv = json_object_get(a, "advertised");
        if (json_is_false(adv)) {
            rule_add(x, r, r->severity,
                     json_pack("{s:s?,s:O}", "mechanism", rule_str(a, "mechanism"), "offered",
                               rule_sget(x, "ehlo.auth") ? rule_sget(x, "ehlo.auth") : json_null()),
                     "the client used AUTH %s, which the server's EHLO reply did not offer",
                     rule_str(a, "mechanism") ? rule_str(a, "mechanism") : "");
            return;
        }
    }
}

static void
rule_auth_in_clear(struct rule_ctx *x, const struct rule *r)
{
    size_t i;
    json_t *a;
    json_array_foreach (rule_sget(x, "auth"), i, a) {
        if (!json_is_true(rule_get(a, "in_clear")))
            continue;
        const char *mech = rule_str(a, "mechanism");
        /* Challenge-response mechanisms do not reveal the password itself. */
        int reveals =
            mech && (strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0 ||
                     strncasecmp(mech, "XOAUTH", 6) == 0 || strcasecmp(mech, "OAUTHBEARER") == 0);
        rule_add(x, r, reveals ? RULE_WARNING : RULE_NOTICE,
                 json_pack("{s:s?,s:s?}", "mechanism", mech, "user", rule_str(a, "user")),
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
    size_t i, j;
    json_t *t, *rc;
    json_array_foreach (rule_sget(x, "transactions"), i, t) {
        json_array_foreach (json_object_get(t, "rcpt"), j, rc) {
            long long code = rule_int(rc, "code", 0);
            const char *enh = rule_str(rc, "enhanced");
            if (code >= 400 && (rule_is_relay_text(rule_str(rc, "text")) ||
                                (enh && strcmp(enh, "5.7.1") == 0 &&
                                 !rule_contains(rule_str(rc, "text"), "blocked")))) {
                rule_add(x, r, r->severity, json_deep_copy(rc),
                         "relaying to %s was refused: %lld %s",
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
    size_t i, j;
    json_t *t, *rc;
    json_array_foreach (rule_sget(x, "transactions"), i, t) {
        if (json_is_true(rule_get(t, "authenticated")))
            continue;
        const char *from_dom = rule_domain_of(rule_str(t, "mail_from"));
        json_array_foreach (json_object_get(t, "rcpt"), j, rc) {
            long long code = rule_int(rc, "code", 0);
            const char *dom = rule_domain_of(rule_str(rc, "to"));
            if (code < 200 || code >= 300 || !dom || rule_domain_local(x, dom))
                continue;
            /* Mail for a domain of the sender's own is ordinary inbound mail. */
            if (from_dom && strcasecmp(from_dom, dom) == 0 && rule_domain_local(x, from_dom))
                continue;
            rule_add(x, r, r->severity,
                     json_pack("{s:s,s:s?,s:I}", "rcpt", rule_str(rc, "to"), "mail_from",
                               rule_str(t, "mail_from"), "code", (json_int_t)code),
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
    size_t i;
    json_t *e;
    json_array_foreach (rule_sget(x, "smtp.error_replies"), i, e) {
        const char *text = rule_str(e, "text");
        int hit = rule_contains(text, " rbl") || rule_contains(text, "rbl.");
        for (size_t k = 0; !hit && rule_blocklist_words[k]; k++)
            hit = rule_contains(text, rule_blocklist_words[k]);
        if (hit) {
            rule_add(x, r, r->severity, json_deep_copy(e),
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
        if (major < o->major || (major == o->major && minor < o->minor))
            rule_add(x, r, r->severity, json_pack("{s:s,s:s}", "software", name, "version", ver),
                     "the greeting names %s %s, a release no longer maintained", name, ver);
        return;
    }
}

static int
rule_code_class(json_t *e, int code, const char *enh_prefix)
{
    const char *enh = rule_str(e, "enhanced");
    return rule_int(e, "code", 0) == code ||
           (enh && enh_prefix && strncmp(enh, enh_prefix, strlen(enh_prefix)) == 0);
}

static void
rule_limits(struct rule_ctx *x, const struct rule *r)
{
    /* deferred, mailbox_full and size_exceeded share one pass over the error replies. */
    size_t i;
    json_t *e;
    json_array_foreach (rule_sget(x, "smtp.error_replies"), i, e) {
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
            rule_add(x, r, r->severity, json_deep_copy(e),
                     "the mailbox is full or over quota: %lld %s", code, text ? text : "");
            return;
        }
        if (strcmp(r->id, "size_exceeded") == 0 && size) {
            rule_add(x, r, r->severity, json_deep_copy(e),
                     "the message is larger than the server accepts: %lld %s", code,
                     text ? text : "");
            return;
        }
        if (strcmp(r->id, "deferred") == 0 && code >= 400 && code < 500 && code != 421 && !full &&
            !(cmd && strcasecmp(cmd, "AUTH") == 0) && !(cmd && strcasecmp(cmd, "STARTTLS") == 0)) {
            rule_add(x, r, r->severity, json_deep_copy(e),
                     "the server deferred %s with a temporary failure: %lld %s",
                     cmd ? cmd : "a command", code, text ? text : "");
            return;
        }
    }
}

static json_t *
rule_how_it_ended(struct rule_ctx *x)
{
    json_t *ev = json_object();
    jx_set(ev, "tcp_end",
           json_string(rule_sstr(x, "tcp.end") ? rule_sstr(x, "tcp.end") : "unknown"));
    json_t *rst = rule_sget(x, "tcp.rst");
    if (rst)
        jx_set(ev, "rst", json_deep_copy(rst));
    return ev;
}

static void
rule_died_after_data(struct rule_ctx *x, const struct rule *r)
{
    if (x->gap_server)
        return;
    size_t i;
    json_t *t;
    json_array_foreach (rule_sget(x, "transactions"), i, t) {
        json_t *d = json_object_get(t, "data");
        if (!d || !rule_get(d, "sent_t_ms") || !json_is_null(json_object_get(d, "code")))
            continue;
        const char *end = rule_sstr(x, "tcp.end");
        double silence = rule_snum(x, "duration_ms", 0) - rule_num_v(rule_get(d, "sent_t_ms"), 0);
        json_t *ev = rule_how_it_ended(x);
        jx_set(ev, "bytes", json_integer(rule_int(d, "bytes", 0)));
        jx_set(ev, "silence_ms", json_real(silence));
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
    size_t i;
    json_t *a;
    json_array_foreach (x->out, i, a) {
        const char *aid = rule_str(a, "id");
        if (aid && strcmp(aid, id) == 0)
            return 1;
    }
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
    json_t *ev = rule_how_it_ended(x);
    jx_set(ev, "phase", json_string(phase));
    rule_add(x, r, r->severity, ev, "the session ended without QUIT during the %s phase (%s)",
             phase, end);
}

static void
rule_rst_injected(struct rule_ctx *x, const struct rule *r)
{
    json_t *rst = rule_sget(x, "tcp.rst");
    if (!rst || !rule_get(rst, "expected_ttl"))
        return;
    const char *from = rule_str(rst, "from");
    long long ttl = rule_int(rst, "ttl", -1), exp = rule_int(rst, "expected_ttl", -1);
    char path[64];
    snprintf(path, sizeof path, "tcp.ttl_varies.%s", from ? from : "");
    if (ttl == exp || rule_sbool(x, path))
        return;
    rule_add(x, r, r->severity, json_deep_copy(rst),
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
        rule_add(x, r, r->severity,
                 json_pack("{s:I,s:s?}", "code", (json_int_t)rule_sint(x, "tls.code", 0), "text",
                           rule_sstr(x, "tls.text")),
                 "the server refused STARTTLS: %lld %s", rule_sint(x, "tls.code", 0),
                 rule_sstr(x, "tls.text") ? rule_sstr(x, "tls.text") : "");
        return;
    }
    json_t *hc = rule_sget(x, "tls.handshake_complete");
    if ((strcmp(st, "established") == 0 || strcmp(st, "implicit") == 0) && json_is_false(hc) &&
        !x->gap_client && !x->gap_server &&
        (json_array_size(rule_sget(x, "tls.alerts")) > 0 ||
         strcmp(rule_sstr(x, "tcp.end") ? rule_sstr(x, "tcp.end") : "", "capture_end") != 0))
        rule_add(x, r, r->severity, json_deep_copy(rule_sget(x, "tls.alerts")),
                 "the TLS handshake did not complete");
}

static void
rule_extensions_masked(struct rule_ctx *x, const struct rule *r)
{
    json_t *m = rule_sget(x, "ehlo.masked");
    if (json_array_size(m) == 0)
        return;
    rule_add(x, r, r->severity, json_pack("{s:O}", "lines", m),
             "the EHLO reply contains masked extensions: a middlebox (e.g. an SMTP inspection "
             "feature of a firewall) rewrites the dialogue");
}

static void
rule_pipelining_unadvertised(struct rule_ctx *x, const struct rule *r)
{
    long long n = rule_sint(x, "smtp.pipelining_violations", 0);
    if (n <= 0)
        return;
    rule_add(x, r, r->severity, json_pack("{s:I}", "commands", (json_int_t)n),
             "the client pipelined %lld command(s) although the server did not offer "
             "PIPELINING",
             n);
}

/* Sums a per-direction count of the command lines (smtp.<what>) and, for the client, of
 * the message bodies (transactions[].data.<body_field>). */
static void
rule_line_counts(struct rule_ctx *x, const char *what, const char *body_field, long long *client,
                 long long *server)
{
    char pc[64], ps[64];
    snprintf(pc, sizeof pc, "smtp.%s.client", what);
    snprintf(ps, sizeof ps, "smtp.%s.server", what);
    *client = rule_sint(x, pc, 0);
    *server = rule_sint(x, ps, 0);
    size_t i;
    json_t *t;
    json_array_foreach (rule_sget(x, "transactions"), i, t) {
        long long v = rule_int(json_object_get(t, "data"), body_field, 0);
        if (v > 0)
            *client += v;
    }
}

static void
rule_line_too_long(struct rule_ctx *x, const struct rule *r)
{
    long long c, s;
    rule_line_counts(x, "long_lines", "long_lines", &c, &s);
    long long longest = 0;
    size_t i;
    json_t *t;
    json_array_foreach (rule_sget(x, "transactions"), i, t) {
        long long v = rule_int(json_object_get(t, "data"), "longest_line", 0);
        if (v > longest)
            longest = v;
    }
    /* RFC 5321 4.5.3.1.6: 1000 octets including the CRLF. */
    if (longest > 998 && c == 0)
        c = 1;
    if (c <= 0 && s <= 0)
        return;
    rule_add(x, r, r->severity,
             json_pack("{s:I,s:I,s:I}", "client", (json_int_t)c, "server", (json_int_t)s,
                       "longest_body_line", (json_int_t)longest),
             "lines longer than the 1000 bytes RFC 5321 allows were sent (client %lld, server "
             "%lld)",
             c, s);
}

static void
rule_bare_lf(struct rule_ctx *x, const struct rule *r)
{
    long long c, s;
    rule_line_counts(x, "bare_lf", "bare_lf", &c, &s);
    if (c <= 0 && s <= 0)
        return;
    rule_add(x, r, r->severity,
             json_pack("{s:I,s:I}", "client", (json_int_t)c, "server", (json_int_t)s),
             "lines ended by a bare LF instead of CRLF (client %lld, server %lld)", c, s);
}

static void
rule_smuggling(struct rule_ctx *x, const struct rule *r)
{
    size_t i;
    json_t *t;
    json_array_foreach (rule_sget(x, "transactions"), i, t) {
        json_t *sm = rule_get(t, "data.smuggling");
        if (json_array_size(sm) == 0)
            continue;
        rule_add(x, r, r->severity, json_pack("{s:O}", "sequences", sm),
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
    rule_add(x, r, r->severity,
             json_pack("{s:I,s:I,s:I}", "client_bytes_missing",
                       (json_int_t)rule_sint(x, "tcp.gap_bytes_client", 0), "server_bytes_missing",
                       (json_int_t)rule_sint(x, "tcp.gap_bytes_server", 0), "truncated_packets",
                       (json_int_t)trunc),
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
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int sx = rule_severity_parse(rule_str(x, "severity"));
    int sy = rule_severity_parse(rule_str(y, "severity"));
    if (sx != sy)
        return sy - sx;
    return strcmp(rule_str(x, "id"), rule_str(y, "id"));
}

static int rule_run(const struct rule_config *cfg, json_t *session, int open);

int
rule_apply(const struct rule_config *cfg, json_t *session)
{
    return rule_run(cfg, session, 0);
}

int
rule_apply_open(const struct rule_config *cfg, json_t *session)
{
    return rule_run(cfg, session, 1);
}

static int
rule_run(const struct rule_config *cfg, json_t *session, int open)
{
    struct rule_ctx x = {.cfg = cfg, .s = session, .out = json_array()};
    if (!x.out)
        return -1;
    x.gap_client = rule_sint(&x, "tcp.gap_bytes_client", 0) > 0 ||
                   rule_sint(&x, "tcp.truncated_packets", 0) > 0;
    x.gap_server = rule_sint(&x, "tcp.gap_bytes_server", 0) > 0 ||
                   rule_sint(&x, "tcp.truncated_packets", 0) > 0;
    /* Encrypted and not decrypted: the dialogue after STARTTLS is out of sight. */
    x.encrypted = rule_sbool(&x, "tls.encrypted") && !rule_sbool(&x, "tls.decrypted");
    /* Holes inside TLS (records that failed to decrypt) blind the rules like capture holes. */
    if (rule_sint(&x, "smtp.gaps.client", 0) > 0)
        x.gap_client = 1;
    if (rule_sint(&x, "smtp.gaps.server", 0) > 0)
        x.gap_server = 1;
    for (size_t i = 0; i < RULE_COUNT; i++)
        if (!open || !rule_table[i].at_end)
            rule_table[i].check(&x, &rule_table[i]);
    /* Stable order: most severe first, then by id. */
    size_t n = json_array_size(x.out);
    json_t *sorted = json_array();
    if (n > 0) {
        json_t **v = mem_alloc(n * sizeof *v);
        if (v) {
            for (size_t i = 0; i < n; i++)
                v[i] = json_array_get(x.out, i);
            qsort(v, n, sizeof *v, rule_cmp);
            for (size_t i = 0; i < n; i++)
                json_array_append(sorted, v[i]);
            mem_free(v);
        }
    }
    int max = -1;
    size_t i;
    json_t *a;
    json_array_foreach (sorted, i, a) {
        int sv = rule_severity_parse(rule_str(a, "severity"));
        if (sv > max)
            max = sv;
    }
    json_decref(x.out);
    json_object_set_new(session, "anomalies", sorted);
    return max;
}
