/* log.h - diagnostics to stderr, never mixed with reports; escaped for a terminal (esc.h). */
#ifndef SMTPSNIFF_LOG_H
#define SMTPSNIFF_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
int log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "smtpsniff: MESSAGE" on stderr, whatever the level: for errors that end the run. */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
