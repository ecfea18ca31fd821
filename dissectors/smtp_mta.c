/* smtp_mta.c - the server software (and its version) named by an SMTP greeting or EHLO
 * reply. */
#include "smtp_int.h"

struct smtp_soft {
    const char *needle;
    const char *name;
};

/* Names MTAs put in their greeting; the first match wins, so specific ones come first. */
static const struct smtp_soft smtp_softs[] = {
    {"Microsoft Exchange Internet Mail Service", "Microsoft Exchange"},
    {"Microsoft Exchange", "Microsoft Exchange"},
    {"Microsoft ESMTP MAIL Service", "Microsoft ESMTP MAIL Service"},
    {"Zimbra", "Zimbra"},
    {"Postfix", "Postfix"},
    {"Exim", "Exim"},
    {"Sendmail", "Sendmail"},
    {"OpenSMTPD", "OpenSMTPD"},
    {"qmail", "qmail"},
    {"Haraka", "Haraka"},
    {"MDaemon", "MDaemon"},
    {"hMailServer", "hMailServer"},
    {"Courier", "Courier"},
    {"IceWarp", "IceWarp"},
    {"Kerio Connect", "Kerio Connect"},
    {"Kerio", "Kerio Connect"},
    {NULL, NULL},
};

static int
smtp_is_alnum(uint8_t c)
{
    return smtp_is_digit(c) || (smtp_upper(c) >= 'A' && smtp_upper(c) <= 'Z');
}

/* Offset of word (case-insensitive, not inside a longer word on its left) or -1. */
static long
smtp_find_word(const uint8_t *p, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if ((i == 0 || !smtp_is_alnum(p[i - 1])) && smtp_prefix_eq(p + i, n - i, word))
            return (long)i;
    return -1;
}

/* The version right after a product name: "Exim 4.96", "Sendmail 8.9.3/8.9.3",
 * "Haraka/2.8.25", "Service, Version: 6.0.3790.4675". Sets *vl to 0 when there is none. */
static const uint8_t *
smtp_soft_version(const uint8_t *p, size_t n, size_t *vl)
{
    size_t i = 0;
    for (int round = 0; round < 2; round++) {
        while (i < n &&
               (smtp_is_space(p[i]) || p[i] == ',' || p[i] == ':' || p[i] == '/' || p[i] == '('))
            i++;
        if (round == 0 && smtp_prefix_eq(p + i, n - i, "VERSION"))
            i += 7;
    }
    if (i + 1 < n && (p[i] == 'v' || p[i] == 'V') && smtp_is_digit(p[i + 1]))
        i++;
    size_t start = i;
    while (i < n && (smtp_is_digit(p[i]) || p[i] == '.'))
        i++;
    while (i > start && p[i - 1] == '.')
        i--;
    *vl = i > start && smtp_is_digit(p[start]) ? i - start : 0;
    return p + start;
}

/* RFC 5321 4.3.1: the greeting (and the EHLO greeting line) opens with the server's
 * domain; what follows is free text where MTAs name themselves. */
void
smtp_detect_software(struct smtp_session *s, const uint8_t *p, size_t n, const char *source)
{
    if (s->soft_found || !p)
        return;
    size_t skip = smtp_token(p, n);
    p += skip;
    n -= skip;
    for (const struct smtp_soft *e = smtp_softs; e->needle; e++) {
        long at = smtp_find_word(p, n, e->needle);
        if (at < 0)
            continue;
        size_t off = (size_t)at + strlen(e->needle), vl;
        const uint8_t *v = smtp_soft_version(p + off, n - off, &vl);
        s->soft_found = 1;
        s->soft_name = e->name;
        /* Exchange greets as "Microsoft ESMTP MAIL Service"; some banners name it. */
        if (strcmp(e->needle, "Microsoft ESMTP MAIL Service") == 0 &&
            smtp_find_word(p, n, "Exchange") >= 0)
            s->soft_name = "Microsoft Exchange";
        s->soft_source = source;
        if (vl)
            smtp_str_set(s, &s->soft_version, v, vl, 32);
        return;
    }
}
