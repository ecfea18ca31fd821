/* fuzz_secrets.c - a secret planted in any AUTH exchange never reaches any output without
 * show_secrets, whatever the server says around it (or leaves unsaid), however the bytes
 * are cut, and whatever else the client sends before it.
 *
 * The input is a script: each step is an opcode byte and, for the random steps, a length
 * byte and that many bytes. Client and server bytes chosen by the fuzzer have every 'h'
 * replaced: each planted form (the password "hhpwhh", its base64, the base64 of the PLAIN,
 * LOGIN, XOAUTH2 and CRAM-MD5 blobs for user "hhh") holds an 'h', a letter that no escape
 * in any output writes, so any of them found in the output came from a planted step. The
 * JSON report (with its transcript) and the text view are
 * searched for every form. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jtree.h"
#include "mem.h"
#include "report.h"
#include "smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const secret_forms[] = {"hhpwhh",
                                           "aGhwd2ho",
                                           "AGhoaABoaHB3aGg=",
                                           "aGho",
                                           "aGhoAGhocHdoaA==",
                                           "dXNlcj1oaGgBYXV0aD1CZWFyZXIgaGhwd2hoAQE=",
                                           "aGhoIDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"};

/* LOGIN's first answer and CRAM-MD5's answer carry the user name, which the report shows
 * (decoded): the first line planted after those commands is the user's, never a secret's
 * form, so a password shown as a user name is a fault and not the script's doing. */
static const char login_user[] = "aGho\r\n";
static const char cram_user[] = "aGhoIDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw\r\n";
#define NFORMS (sizeof secret_forms / sizeof secret_forms[0])

/* What the client may send inside an exchange: responses, with and without line ends. */
static const char *const secret_lines[] = {
    "aGhwd2ho\r\n", "AGhoaABoaHB3aGg=\r\n", "aGho\r\n", "hhpwhh\r\n",     "aGho\n",
    "aGhwd2ho",     "AGhoaABoaHB3aGg=",     "aGho\r",   " aGhwd2ho \r\n", "aGhoAGhocHdoaA==\r\n",
};
static const char *const auth_cmds[] = {
    "AUTH PLAIN AGhoaABoaHB3aGg=\r\n",
    "AUTH LOGIN aGho\r\n",
    "AUTH LOGIN\r\n",
    "AUTH PLAIN\r\n",
    "auth plain AGhoaABoaHB3aGg=\r\n",
    "AUTH XYZ\r\n",
    "AUTH CRAM-MD5\r\n",
    "AUTH XOAUTH2 AGhoaABoaHB3aGg=\r\n",
    "AUTH PLAIN aGhoAGhocHdoaA==\r\n",
    "AUTH XOAUTH2 dXNlcj1oaGgBYXV0aD1CZWFyZXIgaGhwd2hoAQE=\r\n",
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct fz {
    struct smtp_session *s;
    int64_t t;
    int in_auth;   /* an AUTH was planted and the client sent nothing of the fuzzer's since */
    int client_nl; /* the client's last byte was LF (or nothing was sent) */
    const char *user_line; /* what the next planted line must be (LOGIN, CRAM-MD5) */
};

static void
fz_feed(struct fz *f, int dir, const uint8_t *p, size_t n, int bytewise)
{
    f->t += 1000;
    if (bytewise)
        for (size_t i = 0; i < n; i++)
            smtp_feed(f->s, (enum smtp_dir)dir, p + i, 1, f->t);
    else if (n)
        smtp_feed(f->s, (enum smtp_dir)dir, p, n, f->t);
    if (dir == SMTP_CLIENT && n)
        f->client_nl = p[n - 1] == '\n';
}

static void
fz_plant(struct fz *f, const char *text, int bytewise)
{
    fz_feed(f, SMTP_CLIENT, (const uint8_t *)text, strlen(text), bytewise);
}

static int
found(const char *hay, size_t n)
{
    for (size_t i = 0; i < NFORMS; i++)
        if (memmem(hay, n, secret_forms[i], strlen(secret_forms[i])))
            return 1;
    return 0;
}

static void
check_outputs(const struct smtp_session *s)
{
    struct jt *t = jt_new();
    char *text = NULL;
    size_t tlen = 0;
    FILE *tf = open_memstream(&text, &tlen);
    struct buf b;

    buf_init(&b, 64u << 20);
    if (t && tf && smtp_report_core(s, jt_root(t)) == 0 && !jt_failed(t)) {
        int dumped = smtp_dump_report(s, jt_root(t), &b) == JX_DUMP_OK;
        if (getenv("FUZZ_SHOW"))
            fprintf(stderr, "%.*s\n", (int)b.len, (char *)b.data);
        if (dumped && found((char *)b.data, b.len))
            abort();
        struct report *r = report_create(NULL, tf, 0);
        const uint64_t order[2] = {0, 0};
        if (r) {
            report_session(r, jt_root(t), s, order, -1);
            report_destroy(r);
        }
        fflush(tf);
        if (getenv("FUZZ_SHOW") && text)
            fprintf(stderr, "%.*s\n", (int)tlen, text);
        if (text && found(text, tlen))
            abort();
    }
    if (tf)
        fclose(tf);
    free(text);
    buf_free(&b);
    jt_free(t);
}

static void
fz_run(const uint8_t *data, size_t size, int bytewise)
{
    uint8_t chunk[256];
    struct fz f = {0};
    const int64_t t0 = 1700000000000000LL;

    f.t = t0;
    f.client_nl = 1;
    f.s = smtp_create(NULL, t0, t0 + 100);
    if (!f.s)
        return;
    for (size_t off = 0; off < size;) {
        uint8_t op = data[off++];
        switch (op % 6) {
        case 0:   /* fuzzer's client bytes */
        case 1: { /* fuzzer's server bytes */
            size_t n = off < size ? data[off++] : 0;
            if (n > size - off)
                n = size - off;
            memcpy(chunk, data + off, n);
            off += n;
            for (size_t i = 0; i < n; i++)
                if (chunk[i] == 'h')
                    chunk[i] = 'i';
            if (op % 6 == 0)
                f.in_auth = 0;
            fz_feed(&f, op % 6 == 0 ? SMTP_CLIENT : SMTP_SERVER, chunk, n, bytewise);
            break;
        }
        case 2: /* an AUTH command, at a line start where the client is read as commands */
            if (!f.client_nl)
                fz_plant(&f, "\r\n", bytewise);
            if (smtp_reads_commands(f.s)) {
                const char *cmd = auth_cmds[(op / 6) % N(auth_cmds)];
                fz_plant(&f, cmd, bytewise);
                f.in_auth = 1;
                f.user_line = strcmp(cmd, "AUTH LOGIN\r\n") == 0      ? login_user
                              : strcmp(cmd, "AUTH CRAM-MD5\r\n") == 0 ? cram_user
                                                                      : NULL;
            }
            break;
        case 3: /* a response inside the exchange */
            if (f.in_auth && (f.client_nl || smtp_reads_commands(f.s))) {
                fz_plant(&f, f.user_line ? f.user_line : secret_lines[(op / 6) % N(secret_lines)],
                         bytewise);
                f.user_line = NULL;
            }
            break;
        case 4: /* bytes of the server lost in the capture */
            f.t += 1000;
            smtp_gap(f.s, SMTP_SERVER, 1 + op / 6, f.t);
            break;
        default: { /* a canned server reply */
            static const char *const canned[] = {"334 \r\n", "504 5.5.4 no\r\n", "235 2.7.0 ok\r\n",
                                                 "535 5.7.8 no\r\n"};
            const char *c = canned[(op / 6) % N(canned)];
            fz_feed(&f, SMTP_SERVER, (const uint8_t *)c, strlen(c), bytewise);
            break;
        }
        }
    }
    smtp_finish(f.s, f.t + 1000);
    check_outputs(f.s);
    smtp_destroy(f.s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_run(data, size, 0);
    fz_run(data, size, 1);
    return 0;
}
