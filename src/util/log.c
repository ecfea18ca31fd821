/* log.c - leveled diagnostics on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

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

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    va_list ap;

    if (!log_enabled(lvl))
        return;
    fprintf(stderr, "smtpsniff: %s: ", names[lvl]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}
