/* test_esc.c - wire text escaped for a terminal: control bytes, invalid UTF-8, C1 and bidi
 * code points, the backslash, and cutting at the output's end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "esc.h"

static const char *
esc(const char *s, size_t n)
{
    static char out[512];
    esc_str(s, n, out, sizeof out);
    return out;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

static void
test_bytes(void)
{
    CHECK_EQ_STR(ESC("plain text: 1 < 2"), "plain text: 1 < 2");
    CHECK_EQ_STR(ESC("\x1b]0;t\x07"), "\\x1b]0;t\\x07");
    CHECK_EQ_STR(ESC("a\r\n\tb\b\x7f"), "a\\x0d\\x0a\\x09b\\x08\\x7f");
    CHECK_EQ_STR(ESC("nul\0x"), "nul\\x00x");
    /* the literal text \x1b is not an escaped ESC */
    CHECK_EQ_STR(ESC("\\x1b"), "\\\\x1b");
    /* lone C1 byte, truncated and overlong UTF-8, a surrogate: bytes */
    CHECK_EQ_STR(ESC("\x9b"
                     "1m"),
                 "\\x9b1m");
    CHECK_EQ_STR(ESC("\xc3"), "\\xc3");
    CHECK_EQ_STR(ESC("\xc0\xaf"), "\\xc0\\xaf");
    CHECK_EQ_STR(ESC("\xed\xa0\x80"), "\\xed\\xa0\\x80");
    CHECK_EQ_STR(ESC("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
}

static void
test_code_points(void)
{
    /* valid UTF-8 passes, except C1 controls and bidi/invisible format characters */
    CHECK_EQ_STR(ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7"),
                 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xa7");
    CHECK_EQ_STR(ESC("\xc2\x9b"), "\\u009b");
    CHECK_EQ_STR(ESC("\xc2\x85"), "\\u0085");
    CHECK_EQ_STR(ESC("a\xe2\x80\xae"
                     "b"),
                 "a\\u202eb");
    CHECK_EQ_STR(ESC("\xe2\x81\xa6\xef\xbb\xbf\xe2\x80\x8b"), "\\u2066\\ufeff\\u200b");
}

static void
test_cut(void)
{
    char out[8];
    /* an escape is never cut in half, nor a UTF-8 sequence */
    CHECK_EQ_INT(esc_str("abcde\x1b", 6, out, sizeof out), 5);
    CHECK_EQ_STR(out, "abcde");
    CHECK_EQ_INT(esc_str("abcdef\xc3\xa9", 8, out, sizeof out), 6);
    CHECK_EQ_STR(out, "abcdef");
    CHECK_EQ_INT(esc_str("x", 1, out, 1), 0);
    CHECK_EQ_STR(out, "");
}

static void
test_stream(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    esc_puts(f, "EHLO \x1b[2K\\");
    esc_puts(f, NULL);
    esc_write(f, "\r\xff", 2);
    fclose(f);
    CHECK_EQ_STR(buf, "EHLO \\x1b[2K\\\\\\x0d\\xff");
    free(buf);
}

int
main(void)
{
    test_bytes();
    test_code_points();
    test_cut();
    test_stream();
    CHECK_DONE();
}
