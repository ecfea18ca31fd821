/* writer.c - what every writer does the same way (see writer.h). */
#include "writer.h"

#include <errno.h>

int
writer_flush(FILE *f)
{
    int rc = fflush(f) != 0 ? -1 : 0;
    if (ferror(f)) {
        if (!errno)
            errno = EIO;
        rc = -1;
    }
    return rc;
}
