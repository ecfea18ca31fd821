/* test_enhanced.c - RFC 3463 enhanced status codes at the start of a reply's text: the
 * class matches the reply code when one is given, subject and detail are one to three
 * digits, and a space, a tab or the end follows. */
#include <string.h>

#include "check.h"
#include "enhanced.h"

static size_t
len(int code, const char *text)
{
    return enhanced_len(code, (const uint8_t *)text, strlen(text));
}

int
main(void)
{
    CHECK_EQ_INT(len(550, "5.1.1 no such user"), 5);
    CHECK_EQ_INT(len(250, "2.0.0"), 5);
    CHECK_EQ_INT(len(452, "4.123.456\ttoo many"), 9);
    CHECK_EQ_INT(len(0, "5.7.8 bad credentials"), 5);
    CHECK_EQ_INT(len(0, "4.7.0"), 5);
    /* The class is the reply code's first digit. */
    CHECK_EQ_INT(len(250, "5.1.1 x"), 0);
    CHECK_EQ_INT(len(354, "3.0.0 go"), 0);
    CHECK_EQ_INT(len(0, "3.0.0 go"), 0);
    /* At most three digits in each part, at least one. */
    CHECK_EQ_INT(len(550, "5.1234.1 x"), 0);
    CHECK_EQ_INT(len(550, "5..1 x"), 0);
    CHECK_EQ_INT(len(550, "5.1. x"), 0);
    /* Prose right after it is no code. */
    CHECK_EQ_INT(len(550, "5.1.1x"), 0);
    CHECK_EQ_INT(len(550, "5.1"), 0);
    CHECK_EQ_INT(len(550, ""), 0);
    CHECK_DONE();
}
