/* test_eml.c - the --eml writer's envelope lines: Return-Path and one X-Smtpsniff-Rcpt-To per
 * recipient before the message, and no address from the wire can end its line early. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "eml.h"

static void
test_envelope(void)
{
    char dir[] = "/tmp/test_eml.XXXXXX", err[256], path[512], got[1024];
    static const uint8_t from[] = "evil@example.org>\r\nX-Injected: 1\r\n<x";
    static const uint8_t r1[] = "bob@example.net", r2[] = "carol\n@example.net";
    const uint8_t *rcpt[] = {r1, r2};
    size_t rlen[] = {sizeof r1 - 1, sizeof r2 - 1};
    static const char want[] = "Return-Path: <evil@example.org>??X-Injected: 1?"
                               "?<x>\r\n"
                               "X-Smtpsniff-Rcpt-To: <bob@example.net>\r\n"
                               "X-Smtpsniff-Rcpt-To: <carol?@example.net>\r\n"
                               "Subject: s\r\n\r\nbody\r\n";
    ssize_t n;
    int fd;

    CHECK(mkdtemp(dir) != NULL);
    fd = eml_dir_open(dir, err, sizeof err);
    CHECK(fd >= 0);
    struct eml *e = eml_create(fd, dir);
    struct eml_file *f = eml_begin(e, 5, 0);
    CHECK(f != NULL);
    eml_envelope(f, from, sizeof from - 1, rcpt, rlen, 2);
    CHECK_EQ_INT(eml_file_envelope_bytes(f),
                 sizeof want - 1 - strlen("Subject: s\r\n\r\nbody\r\n"));
    eml_write(f, (const uint8_t *)"Subject: s\r\n\r\nbody\r\n",
              strlen("Subject: s\r\n\r\nbody\r\n"));
    eml_end(f, 1);
    snprintf(path, sizeof path, "%s/%s", dir, eml_file_name(f));
    int rd = open(path, O_RDONLY);
    CHECK(rd >= 0);
    n = read(rd, got, sizeof got);
    close(rd);
    CHECK_EQ_INT(n, sizeof want - 1);
    CHECK(n == (ssize_t)sizeof want - 1 && memcmp(got, want, sizeof want - 1) == 0);

    /* The null reverse path is "<>"; no MAIL FROM seen: no Return-Path line at all. */
    struct eml_file *g = eml_begin(e, 5, 1);
    eml_envelope(g, (const uint8_t *)"", 0, NULL, NULL, 0);
    CHECK_EQ_INT(eml_file_envelope_bytes(g), strlen("Return-Path: <>\r\n"));
    eml_end(g, 1);
    struct eml_file *h = eml_begin(e, 5, 2);
    eml_envelope(h, NULL, 0, NULL, NULL, 0);
    CHECK_EQ_INT(eml_file_envelope_bytes(h), 0);
    eml_end(h, 1);

    unlink(path);
    snprintf(path, sizeof path, "%s/%s", dir, eml_file_name(g));
    unlink(path);
    snprintf(path, sizeof path, "%s/%s", dir, eml_file_name(h));
    unlink(path);
    eml_file_free(f);
    eml_file_free(g);
    eml_file_free(h);
    eml_destroy(e);
    close(fd);
    rmdir(dir);
}

int
main(void)
{
    test_envelope();
    CHECK_DONE();
}
