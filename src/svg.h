/* svg.h - the ladder (sequence) diagram of one session, drawn from its report object (the
 * JSON of docs/schema.md as Jansson values): client on the left, server on the right, time
 * downward; every transcript line an arrow at its time, the TCP events (handshake, holes,
 * RST with its TTL, the end) among them, and each anomaly as a band at the step it relates
 * to. Used inline by the HTML report and as files of their own by --svg DIR.
 *
 * Everything from the wire is escaped as XML text (also valid HTML): the markup characters
 * as references, control and invisible format characters as visible \xNN / \uNNNN, so a
 * file stays well-formed XML whatever a peer sent. The lines are the report's, so AUTH data
 * is already redacted unless --show-secrets. */
#ifndef SMTPSNIFF_SVG_H
#define SMTPSNIFF_SVG_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* Steps drawn at most: the first SVG_HEAD_STEPS and the last SVG_TAIL_STEPS, with a
 * "... K more steps" mark between. */
#define SVG_HEAD_STEPS 60
#define SVG_TAIL_STEPS 20

/* The style of the ladder's classes: inside each standalone file, once in the HTML page. */
extern const char svg_css[];

/* Writes s[0..n) escaped for XML/HTML text and attribute values, cut to at most max bytes
 * of input (at a character boundary, "..." added when cut; 0: no limit). */
void svg_esc(FILE *f, const char *s, size_t n, size_t max);
/* The same for a NUL-terminated string; NULL writes nothing. */
void svg_puts(FILE *f, const char *s, size_t max);
/* A duration in ms as "12.345 ms" or "6.836 s" (out: at least 32 bytes). */
const char *svg_fmt_ms(double ms, char *out, size_t outlen);

/* Member of a session object that only `smtpsniff summarize` sets, on the objects it hands
 * the HTML writer when it reads several inputs: the input's number (1..64, command-line
 * order). Sessions of two sensors may have the same id; with it they are named "K-ID". */
#define SVG_INPUT_KEY "summarize_input"
/* Session s's name in file names, anchors and titles: its id, or "K-ID" (above). out: at
 * least 48 bytes. */
const char *svg_session_name(json_t *s, char *out, size_t outlen);

/* Writes the ladder of session s as one <svg> element; standalone: a document of its own
 * (XML declaration, namespace, its own style). Returns 0, -1 when f failed. */
int svg_ladder(FILE *f, json_t *s, int standalone);

/* --svg DIR: opens DIR (it must exist; refused when anyone may write to it without the
 * sticky bit). Returns the descriptor or -1 with the reason in err. */
int svg_dir_open(const char *path, char *err, size_t errlen);
/* Writes DIR/session-<id>.svg, created new (O_EXCL | O_NOFOLLOW, mode 0600): an existing
 * file or symlink is never written through. Returns 0, or -1 with the reason in err. */
int svg_write_file(int dirfd, json_t *s, char *err, size_t errlen);

/* The CSS class of an anomaly's severity: error, warning, notice, else info. */
const char *svg_sev_class(const char *sev);

#endif
