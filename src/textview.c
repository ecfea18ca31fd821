/* textview.c - the parts of a session's text view that put the report's fields into words
 * (see textview.h). */
#include "textview.h"

#include <string.h>

#include "esc.h"

/* Parts listed under a transaction; the JSON has them all. */
#define TV_MAX_PARTS 16

static const char *
tv_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void
tv_put(FILE *f, const char *s)
{
    esc_puts(f, s ? s : "");
}

/* A domain (letters, digits, '-', '.', with a dot) or an address literal "[...]". */
static int
tv_is_name(const char *p, size_t n)
{
    size_t i;
    int dot = 0;

    if (n >= 3 && p[0] == '[' && p[n - 1] == ']')
        return 1;
    if (!n || p[0] == '.' || p[0] == '-')
        return 0;
    for (i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.')
            dot = 1;
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_'))
            return 0;
    }
    return dot;
}

/* An RFC 3463 enhanced status code: digit "." 1-3 digits "." 1-3 digits. */
static int
tv_is_enhanced(const char *p, size_t n)
{
    size_t i, dots = 0;

    if (n < 5 || p[0] < '2' || p[0] > '5')
        return 0;
    for (i = 1; i < n; i++) {
        if (p[i] == '.')
            dots++;
        else if (p[i] < '0' || p[i] > '9')
            return 0;
    }
    return dots == 2;
}

void
tv_server_name(FILE *f, json_t *banner)
{
    const char *t = tv_str(banner, "text");
    size_t n;

    for (int word = 0; t && word < 2; word++) {
        while (*t == ' ')
            t++;
        n = strcspn(t, " ");
        if (word == 0 && tv_is_enhanced(t, n)) {
            t += n;
            continue;
        }
        if (tv_is_name(t, n)) {
            esc_write(f, t, n);
            return;
        }
        break;
    }
    fputs("(no name)", f);
}

static void
tv_certificate(FILE *f, json_t *s, json_t *cert)
{
    const char *after = tv_str(cert, "not_after"), *start = tv_str(s, "start");

    fputs("  tls certificate: subject ", f);
    tv_put(f, tv_str(cert, "subject"));
    if (tv_str(cert, "issuer")) {
        fputs(", issuer ", f);
        tv_put(f, tv_str(cert, "issuer"));
    }
    if (after) {
        fputs(", expires ", f);
        tv_put(f, after);
        /* RFC 3339 UTC times compare as text down to the second. */
        if (start && strlen(after) >= 19 && strlen(start) >= 19 && strncmp(after, start, 19) < 0)
            fputs(" (expired before this session)", f);
    }
    if (tv_str(cert, "not_before") && start && strlen(start) >= 19 &&
        strncmp(tv_str(cert, "not_before"), start, 19) > 0)
        fputs(" (not valid yet)", f);
    fputc('\n', f);
}

static void
tv_alerts(FILE *f, json_t *tls)
{
    json_t *alerts = json_object_get(tls, "alerts"),
           *enc = json_object_get(tls, "alerts_encrypted");
    json_t *a;
    size_t i;

    if (json_array_size(alerts)) {
        fputs("  tls alerts:", f);
        json_array_foreach (alerts, i, a) {
            fputs(i ? ", " : " ", f);
            tv_put(f, tv_str(a, "dir"));
            fputc(' ', f);
            tv_put(f, tv_str(a, "level"));
            fputc(' ', f);
            tv_put(f, tv_str(a, "description"));
        }
        fputc('\n', f);
    }
    if (json_is_object(enc)) {
        fprintf(f, "  tls alerts sent encrypted (not readable): client %lld, server %lld\n",
                (long long)json_integer_value(json_object_get(enc, "client")),
                (long long)json_integer_value(json_object_get(enc, "server")));
    }
}

static const char *
tv_decrypt_why(const char *status)
{
    if (!status)
        return "";
    if (strcmp(status, "no_keys") == 0)
        return "the key log has no secret for this connection";
    if (strcmp(status, "auth_failed") == 0)
        return "the key log's secrets for this connection do not open its records (wrong "
               "secrets)";
    if (strcmp(status, "unsupported") == 0)
        return "this TLS version or cipher suite cannot be decrypted";
    if (strcmp(status, "no_server_hello") == 0)
        return "the capture has no ServerHello to take the cipher suite from";
    return "";
}

void
tv_tls(FILE *f, json_t *s)
{
    json_t *tls = json_object_get(s, "tls"), *dec, *cert;
    const char *st = tv_str(tls, "starttls");

    if (!tls || !st)
        return;
    fputs("  tls: ", f);
    tv_put(f, st);
    if (tv_str(tls, "version")) {
        fputc(' ', f);
        tv_put(f, tv_str(tls, "version"));
    }
    if (tv_str(tls, "cipher")) {
        fputc(' ', f);
        tv_put(f, tv_str(tls, "cipher"));
    }
    if (tv_str(tls, "sni")) {
        fputs(" sni=", f);
        tv_put(f, tv_str(tls, "sni"));
    }
    if (json_is_integer(json_object_get(tls, "code")) && strcmp(st, "established") != 0 &&
        strcmp(st, "implicit") != 0) {
        fprintf(f, " (reply %lld", (long long)json_integer_value(json_object_get(tls, "code")));
        if (tv_str(tls, "text")) {
            fputc(' ', f);
            tv_put(f, tv_str(tls, "text"));
        }
        fputc(')', f);
    }
    if (json_is_false(json_object_get(tls, "handshake_complete")))
        fputs(" (handshake not complete)", f);
    fputc('\n', f);
    cert = json_object_get(tls, "certificate");
    if (json_is_object(cert))
        tv_certificate(f, s, cert);
    tv_alerts(f, tls);
    dec = json_object_get(tls, "decryption");
    if (json_is_object(dec)) {
        const char *ds = tv_str(dec, "status");
        json_t *c = json_object_get(dec, "client"), *v = json_object_get(dec, "server");
        fputs("  tls decryption: ", f);
        tv_put(f, ds ? ds : "?");
        if (ds && strcmp(ds, "ok") != 0) {
            fputs(": ", f);
            fputs(tv_decrypt_why(ds), f);
        }
        fprintf(f, " (records decrypted/failed: client %lld/%lld, server %lld/%lld)\n",
                (long long)json_integer_value(json_object_get(c, "decrypted")),
                (long long)json_integer_value(json_object_get(c, "failed")),
                (long long)json_integer_value(json_object_get(v, "decrypted")),
                (long long)json_integer_value(json_object_get(v, "failed")));
        if (ds && (strcmp(ds, "no_keys") == 0 || strcmp(ds, "auth_failed") == 0))
            fputs("  tls: pass --tls-keylog FILE with this connection's secrets (the client's or "
                  "server's SSLKEYLOGFILE) to read the dialogue\n",
                  f);
    } else if (json_is_true(json_object_get(tls, "encrypted")) &&
               !json_is_true(json_object_get(tls, "decrypted"))) {
        fputs("  tls: the dialogue after the handshake is encrypted and not read: pass "
              "--tls-keylog FILE (the client's or server's SSLKEYLOGFILE) to decrypt it\n",
              f);
    }
}

static void
tv_size(FILE *f, json_t *p)
{
    json_t *dec = json_object_get(p, "decoded_bytes");
    long long bytes = (long long)json_integer_value(json_object_get(p, "bytes"));

    if (json_is_integer(dec))
        fprintf(f, " %lld bytes decoded (%lld encoded)", (long long)json_integer_value(dec), bytes);
    else
        fprintf(f, " %lld bytes", bytes);
}

void
tv_message(FILE *f, json_t *data)
{
    json_t *h = json_object_get(data, "headers"), *mime = json_object_get(data, "mime");
    json_t *parts = json_object_get(mime, "parts"), *p;
    size_t i;

    if (tv_str(h, "user_agent") || tv_str(h, "x_mailer")) {
        fputs("    client software: ", f);
        tv_put(f, tv_str(h, "user_agent") ? tv_str(h, "user_agent") : tv_str(h, "x_mailer"));
        fputs(tv_str(h, "user_agent") ? " (User-Agent)\n" : " (X-Mailer)\n", f);
    }
    json_array_foreach (parts, i, p) {
        long long depth = (long long)json_integer_value(json_object_get(p, "depth"));
        if (i == TV_MAX_PARTS) {
            fprintf(f, "    ... %zu more parts\n", json_array_size(parts) - i);
            break;
        }
        fprintf(f, "    %*spart %zu: ", (int)(depth > 8 ? 16 : 2 * depth), "", i);
        tv_put(f, tv_str(p, "type"));
        if (tv_str(p, "filename") || tv_str(p, "name")) {
            fputs(" \"", f);
            tv_put(f, tv_str(p, "filename") ? tv_str(p, "filename") : tv_str(p, "name"));
            fputc('"', f);
        }
        if (tv_str(p, "disposition") && strcmp(tv_str(p, "disposition"), "attachment") == 0)
            fputs(" attachment", f);
        if (tv_str(p, "transfer_encoding")) {
            fputc(' ', f);
            tv_put(f, tv_str(p, "transfer_encoding"));
        }
        tv_size(f, p);
        if (json_is_true(json_object_get(p, "unclosed")))
            fputs(" (never closed)", f);
        if (json_is_true(json_object_get(p, "no_boundary")))
            fputs(" (no usable boundary)", f);
        if (json_is_true(json_object_get(p, "depth_limit")))
            fputs(" (too deep: not read into)", f);
        if (json_integer_value(json_object_get(p, "decode_errors")) > 0)
            fprintf(f, " (%lld bytes not decodable)",
                    (long long)json_integer_value(json_object_get(p, "decode_errors")));
        fputc('\n', f);
    }
    if (json_integer_value(json_object_get(mime, "parts_dropped")) > 0)
        fprintf(f, "    ... %lld more parts not listed\n",
                (long long)json_integer_value(json_object_get(mime, "parts_dropped")));
    if (json_is_true(json_object_get(mime, "gap")))
        fputs("    (bytes of the message are missing from the capture: parts after the hole are "
              "not known)\n",
              f);
}

void
tv_outcome(FILE *f, json_t *s)
{
    const char *o = tv_str(s, "outcome");

    if (o && strcmp(o, "deferred") == 0)
        fputs("  deferred: the server answered with a temporary failure (4xx); the sending MTA "
              "keeps the message queued and retries, and bounces it only once its queue "
              "lifetime runs out (Postfix maximal_queue_lifetime: 5 days by default)\n",
              f);
}

void
tv_time(FILE *f, double t_ms)
{
    char t[40];

    snprintf(t, sizeof t, "+%.3f", t_ms);
    fprintf(f, "  %11s ms ", t);
}

int
tv_body_line(FILE *f, const char *line, size_t n)
{
    static const char pre[] = "[message: ";
    const char *p = line + sizeof pre - 1;
    size_t k = 0;

    if (n < sizeof pre + 7 || memcmp(line, pre, sizeof pre - 1) != 0)
        return 0;
    while (k + (size_t)(p - line) < n && p[k] >= '0' && p[k] <= '9')
        k++;
    if (!k || n - (sizeof pre - 1) - k != 7 || memcmp(p + k, " bytes]", 7) != 0)
        return 0;
    fputs(pre, f);
    fwrite(p, 1, k, f);
    fputs(" bytes on the wire, the end-of-data \".\" line and stuffing dots included]", f);
    return 1;
}
