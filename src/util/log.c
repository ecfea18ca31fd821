/* log.c - leveled diagnostics on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

#include "esc.h"

static enum log_level log_level_now = LOG_LVL_WARN;

void
log_set_level(enum log_level lvl)
{
    log_level_now = lvl;
}

int
log_enabled(enum log_level lvl)
{
    return lvl <= log_level_now;
}

/* A message can quote file names, interface names and the capture's own bytes: escaped
 * (esc.h) so that none of it acts on the terminal. Cut at 2 KiB. */
static void log_vwrite(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
log_vwrite(const char *prefix, const char *fmt, va_list ap)
{
    char msg[2048];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    fputs("smtpsniff: ", stderr);
    if (prefix)
        fprintf(stderr, "%s: ", prefix);
    esc_write(stderr, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    fputc('\n', stderr);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    va_list ap;

    if (!log_enabled(lvl))
        return;
    va_start(ap, fmt);
    log_vwrite(names[lvl], fmt, ap);
    va_end(ap);
}

void
log_plain(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(NULL, fmt, ap);
    va_end(ap);
}
