/* esc.h - wire text made safe for a terminal. Whatever a peer sent may reach the text view
 * or stderr; a terminal obeys the control sequences in it (erase a line, move the cursor,
 * set the window title), so none may pass. Escaped:
 *   - C0 controls (LF, CR and TAB included) and DEL, as \xNN;
 *   - the backslash, as \\ (so the text "\x1b" on the wire stays told apart from ESC);
 *   - bytes that are not part of valid UTF-8 (C1 bytes 0x80-0x9F among them), as \xNN;
 *   - code points a terminal or a reader may act on though encoded as valid UTF-8: the C1
 *     controls U+0080-U+009F, the bidirectional and invisible format characters (U+061C,
 *     U+200B-U+200F, U+2028-U+202E, U+2060-U+2069, U+FEFF), as \uNNNN.
 * Other valid UTF-8 is written as it is. */
#ifndef SMTPSNIFF_ESC_H
#define SMTPSNIFF_ESC_H

#include <stddef.h>
#include <stdio.h>

/* Writes p[0..n) escaped to f. */
void esc_write(FILE *f, const char *p, size_t n);
/* The same for a NUL-terminated string; NULL writes nothing. */
void esc_puts(FILE *f, const char *s);
/* Escapes p[0..n) into out (outlen bytes, NUL-terminated, cut at a whole escape when it
 * does not fit). Returns the length written. */
size_t esc_str(const char *p, size_t n, char *out, size_t outlen);

#endif
