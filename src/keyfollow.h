/* keyfollow.h - --tls-keylog on a live capture: the key log file is read again as it grows,
 * so that secrets a client or server writes after the capture began (SSLKEYLOGFILE) still
 * decrypt its session. Only what was appended is read, within the bounds of a key log
 * file (KEYLOG_MAX_FILE_BYTES, KEYLOG_MAX_FILE_LINES over the whole run). */
#ifndef SMTPSNIFF_KEYFOLLOW_H
#define SMTPSNIFF_KEYFOLLOW_H

#include <stddef.h>

struct keylog;
struct keyfollow;

/* Reads the file as it is now into kl (a missing file is read once it exists). NULL on
 * allocation failure; *rc then or on a read error is a KEYLOG_E_* (err says why). */
struct keyfollow *keyfollow_create(struct keylog *kl, const char *path, int *rc, char *err,
                                   size_t errlen);
/* Looks at the file (always with force, else at most once a second) and reads what was
 * appended. Returns the number of new secrets. */
int keyfollow_check(struct keyfollow *kf, int force);
/* The same, as a tls_set_keylog_refresh callback. */
int keyfollow_refresh(void *kf, int force);
void keyfollow_destroy(struct keyfollow *kf);

#endif
