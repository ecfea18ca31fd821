/* summarize.h - `smtpsniff summarize FILE...`: the closing summary of NDJSON reports read
 * back (one sensor per file), the same session seen by two sensors counted once. */
#ifndef SMTPSNIFF_SUMMARIZE_H
#define SMTPSNIFF_SUMMARIZE_H

/* argv[0] is "summarize". Returns the exit status (0, 2 usage, 3 unreadable input or
 * output). */
int summarize_main(int argc, char **argv);

#endif
