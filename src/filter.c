/* filter.c - which sessions are printed (see filter.h). */
#include "filter.h"

#include <stdio.h>
#include <string.h>

#include "jtree.h"
#include "rules.h"

void
filter_init(struct filter *f)
{
    memset(f, 0, sizeof *f);
    f->min_severity = -1;
}

/* Envelope addresses and domains are compared without regard to ASCII case: domains are
 * case-insensitive (RFC 5321 2.4) and, in practice, local parts too. */
static int
filter_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
filter_eq_nocase(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (filter_lower((unsigned char)a[i]) != filter_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Printable ASCII or UTF-8, no space: what an envelope address or domain is made of. */
static int
filter_word_ok(const char *s)
{
    if (!*s)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

int
filter_add(struct filter *f, enum filter_kind kind, const char *v, char *err, size_t errlen)
{
    switch (kind) {
    case FILTER_MIN_SEVERITY:
        f->min_severity = rule_severity_parse(v);
        if (f->min_severity < 0) {
            snprintf(err, errlen, "invalid --min-severity '%s' (info, notice, warning, error)", v);
            return -1;
        }
        return 0;
    case FILTER_ANOMALY: {
        size_t i = 0;
        while (i < rule_count() && strcmp(rule_id(i), v) != 0)
            i++;
        if (i == rule_count()) {
            snprintf(err, errlen, "unknown anomaly id '%s' (see docs/anomalies.md)", v);
            return -1;
        }
        if (f->nanomalies == FILTER_MAX_VALUES) {
            snprintf(err, errlen, "too many --anomaly options (at most %d)", FILTER_MAX_VALUES);
            return -1;
        }
        f->anomalies[f->nanomalies++] = v;
        return 0;
    }
    case FILTER_ADDRESS:
        if (!filter_word_ok(v) || v[0] == '<') {
            snprintf(err, errlen,
                     "invalid --address '%s' (an envelope address such as user@example.org, "
                     "without <>)",
                     v);
            return -1;
        }
        if (f->naddresses == FILTER_MAX_VALUES) {
            snprintf(err, errlen, "too many --address options (at most %d)", FILTER_MAX_VALUES);
            return -1;
        }
        f->addresses[f->naddresses++] = v;
        return 0;
    case FILTER_DOMAIN:
        if (!filter_word_ok(v) || strchr(v, '@') || v[0] == '.' || v[strlen(v) - 1] == '.') {
            snprintf(err, errlen, "invalid --domain '%s' (a domain such as example.org)", v);
            return -1;
        }
        if (f->ndomains == FILTER_MAX_VALUES) {
            snprintf(err, errlen, "too many --domain options (at most %d)", FILTER_MAX_VALUES);
            return -1;
        }
        f->domains[f->ndomains++] = v;
        return 0;
    }
    return -1;
}

int
filter_active(const struct filter *f)
{
    return f->min_severity >= 0 || f->nanomalies || f->naddresses || f->ndomains;
}

/* One anomaly against --min-severity and --anomaly. */
static int
filter_anomaly_sev(const struct filter *f, const struct jt_node *a)
{
    const char *sev = jt_str(jt_get(a, "severity"));
    return f->min_severity < 0 || (sev && rule_severity_parse(sev) >= f->min_severity);
}

static int
filter_anomaly_id(const struct filter *f, const struct jt_node *a)
{
    const char *id = jt_str(jt_get(a, "id"));
    if (!f->nanomalies)
        return 1;
    for (size_t i = 0; id && i < f->nanomalies; i++)
        if (strcmp(id, f->anomalies[i]) == 0)
            return 1;
    return 0;
}

/* The domain of an address (after its last '@'), or NULL when it has none. */
static const char *
filter_domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : NULL;
}

/* A domain matches itself and its subdomains: --domain example.org selects
 * mail.example.org too, at a label boundary (not badexample.org). */
static int
filter_domain_match(const char *dom, const char *want)
{
    size_t dn = strlen(dom), wn = strlen(want);
    if (dn == wn)
        return filter_eq_nocase(dom, dn, want, wn);
    return dn > wn && dom[dn - wn - 1] == '.' && filter_eq_nocase(dom + dn - wn, wn, want, wn);
}

static int
filter_envelope_one(const struct filter *f, const char *addr)
{
    if (!addr)
        return 0;
    for (size_t i = 0; i < f->naddresses; i++)
        if (filter_eq_nocase(addr, strlen(addr), f->addresses[i], strlen(f->addresses[i])))
            return 1;
    const char *dom = filter_domain_of(addr);
    for (size_t i = 0; dom && i < f->ndomains; i++)
        if (filter_domain_match(dom, f->domains[i]))
            return 1;
    return 0;
}

/* Any MAIL FROM or RCPT TO of any transaction, whatever the server replied to it. */
static int
filter_envelope(const struct filter *f, const struct jt_node *s)
{
    if (!f->naddresses && !f->ndomains)
        return 1;
    const struct jt_node *txns = jt_arr(jt_get(s, "transactions"));
    for (size_t i = 0; i < jt_size(txns); i++) {
        const struct jt_node *t = jt_obj(jt_at(txns, i));
        if (filter_envelope_one(f, jt_str(jt_get(t, "mail_from"))))
            return 1;
        const struct jt_node *rcpt = jt_arr(jt_get(t, "rcpt"));
        for (size_t k = 0; k < jt_size(rcpt); k++)
            if (filter_envelope_one(f, jt_str(jt_get(jt_obj(jt_at(rcpt, k)), "to"))))
                return 1;
    }
    return 0;
}

int
filter_session(const struct filter *f, const struct jt_node *s)
{
    if (!filter_envelope(f, s))
        return 0;
    if (f->min_severity < 0 && !f->nanomalies)
        return 1;
    /* The two anomaly criteria are separate conditions: some anomaly at or above the level,
     * and some anomaly with one of the ids (not necessarily the same one). */
    const struct jt_node *an = jt_arr(jt_get(s, "anomalies"));
    int sev_ok = f->min_severity < 0, id_ok = !f->nanomalies;
    for (size_t i = 0; i < jt_size(an); i++) {
        const struct jt_node *a = jt_obj(jt_at(an, i));
        sev_ok = sev_ok || filter_anomaly_sev(f, a);
        id_ok = id_ok || filter_anomaly_id(f, a);
    }
    return sev_ok && id_ok;
}

int
filter_live(const struct filter *f, const struct jt_node *s, const struct jt_node *a)
{
    return filter_envelope(f, s) && filter_anomaly_sev(f, a) && filter_anomaly_id(f, a);
}
