/* test_filter.c - which sessions and live anomalies the print filters select (filter.h). */
#include <jansson.h>

#include "check.h"
#include "filter.h"
#include "jtree.h"

/* A session report built from JSON text, in its own tree. */
static struct jt *
tree(const char *json, struct jt_node **root)
{
    struct jt *t = jt_new();
    json_t *j = json_loads(json, 0, NULL);
    *root = jt_root(t);
    if (!t || !j || jt_from_json(*root, j) < 0)
        CHECK_FAIL("cannot build the tree");
    json_decref(j);
    return t;
}

static const char *const session_json =
    "{\"anomalies\":[{\"id\":\"starttls_not_used\",\"severity\":\"warning\"},"
    "{\"id\":\"mailbox_full\",\"severity\":\"notice\"}],"
    "\"transactions\":[{\"mail_from\":\"Alice@Mail.Example.ORG\","
    "\"rcpt\":[{\"to\":\"bob@example.net\",\"code\":550},{\"to\":\"postmaster\"}]}]}";

static int
sel(struct jt_node *s, enum filter_kind k, const char *v)
{
    struct filter f;
    char err[256];
    filter_init(&f);
    CHECK(filter_add(&f, k, v, err, sizeof err) == 0);
    CHECK(filter_active(&f));
    return filter_session(&f, s);
}

static void
test_session(void)
{
    struct jt_node *s;
    struct jt *t = tree(session_json, &s);
    CHECK(sel(s, FILTER_MIN_SEVERITY, "info"));
    CHECK(sel(s, FILTER_MIN_SEVERITY, "warning"));
    CHECK(!sel(s, FILTER_MIN_SEVERITY, "error"));
    CHECK(sel(s, FILTER_ANOMALY, "mailbox_full"));
    CHECK(!sel(s, FILTER_ANOMALY, "open_relay"));
    CHECK(sel(s, FILTER_ADDRESS, "alice@mail.example.org"));
    CHECK(sel(s, FILTER_ADDRESS, "BOB@EXAMPLE.NET")); /* refused recipients count too */
    CHECK(sel(s, FILTER_ADDRESS, "postmaster"));
    CHECK(!sel(s, FILTER_ADDRESS, "alice@example.org"));
    CHECK(sel(s, FILTER_DOMAIN, "example.org")); /* a subdomain's address */
    CHECK(sel(s, FILTER_DOMAIN, "mail.example.org"));
    CHECK(sel(s, FILTER_DOMAIN, "Example.Net"));
    CHECK(!sel(s, FILTER_DOMAIN, "ample.org")); /* only at a label boundary */
    CHECK(!sel(s, FILTER_DOMAIN, "org.example"));

    /* Kinds combine with AND, values of a kind with OR. */
    struct filter f;
    char err[256];
    filter_init(&f);
    CHECK(!filter_active(&f));
    CHECK(filter_session(&f, s));
    CHECK(filter_add(&f, FILTER_ANOMALY, "open_relay", err, sizeof err) == 0);
    CHECK(!filter_session(&f, s));
    CHECK(filter_add(&f, FILTER_ANOMALY, "mailbox_full", err, sizeof err) == 0);
    CHECK(filter_session(&f, s));
    CHECK(filter_add(&f, FILTER_DOMAIN, "example.com", err, sizeof err) == 0);
    CHECK(!filter_session(&f, s));
    CHECK(filter_add(&f, FILTER_ADDRESS, "bob@example.net", err, sizeof err) == 0);
    CHECK(filter_session(&f, s));
    CHECK(filter_add(&f, FILTER_MIN_SEVERITY, "error", err, sizeof err) == 0);
    CHECK(!filter_session(&f, s));
    jt_free(t);

    /* No anomaly: no severity or anomaly filter selects it. */
    t = tree("{\"transactions\":[]}", &s);
    CHECK(!sel(s, FILTER_MIN_SEVERITY, "info"));
    CHECK(!sel(s, FILTER_DOMAIN, "example.org"));
    jt_free(t);
}

static void
test_live(void)
{
    struct jt_node *s, *a1, *a2;
    struct jt *t = tree(session_json, &s);
    struct jt *ta = tree("{\"id\":\"starttls_not_used\",\"severity\":\"warning\"}", &a1);
    struct jt *tb = tree("{\"id\":\"mailbox_full\",\"severity\":\"notice\"}", &a2);
    struct filter f;
    char err[256];
    filter_init(&f);
    CHECK(filter_live(&f, s, a1));
    CHECK(filter_add(&f, FILTER_MIN_SEVERITY, "warning", err, sizeof err) == 0);
    /* judged on the anomaly itself, not on the session's worst */
    CHECK(filter_live(&f, s, a1));
    CHECK(!filter_live(&f, s, a2));
    filter_init(&f);
    CHECK(filter_add(&f, FILTER_ANOMALY, "mailbox_full", err, sizeof err) == 0);
    CHECK(!filter_live(&f, s, a1));
    CHECK(filter_live(&f, s, a2));
    CHECK(filter_add(&f, FILTER_DOMAIN, "example.com", err, sizeof err) == 0);
    CHECK(!filter_live(&f, s, a2)); /* the envelope so far */
    jt_free(t);
    jt_free(ta);
    jt_free(tb);
}

static void
test_bad_values(void)
{
    struct filter f;
    char err[256];
    filter_init(&f);
    CHECK(filter_add(&f, FILTER_MIN_SEVERITY, "loud", err, sizeof err) < 0);
    CHECK(strchr(err, '\n') == NULL && strstr(err, "loud"));
    CHECK(filter_add(&f, FILTER_ANOMALY, "no_such", err, sizeof err) < 0);
    CHECK(filter_add(&f, FILTER_ADDRESS, "", err, sizeof err) < 0);
    CHECK(filter_add(&f, FILTER_ADDRESS, "<a@b>", err, sizeof err) < 0);
    CHECK(filter_add(&f, FILTER_ADDRESS, "a\tb@c", err, sizeof err) < 0);
    CHECK(filter_add(&f, FILTER_DOMAIN, "", err, sizeof err) < 0);
    CHECK(filter_add(&f, FILTER_DOMAIN, "a@b", err, sizeof err) < 0);
    CHECK(filter_add(&f, FILTER_DOMAIN, "example.org.", err, sizeof err) < 0);
    CHECK(!filter_active(&f));
    for (int i = 0; i < FILTER_MAX_VALUES; i++)
        CHECK(filter_add(&f, FILTER_DOMAIN, "example.org", err, sizeof err) == 0);
    CHECK(filter_add(&f, FILTER_DOMAIN, "example.org", err, sizeof err) < 0);
}

int
main(void)
{
    test_session();
    test_live();
    test_bad_values();
    CHECK_DONE();
}
