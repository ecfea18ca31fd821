/* fuzz_tree.h - what the dissectors' fuzz targets check of every report they make: the
 * report tree's writer gives the bytes Jansson writes for the same tree. */
#ifndef SMTPSNIFF_FUZZ_TREE_H
#define SMTPSNIFF_FUZZ_TREE_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "jsonx.h"
#include "jtree.h"

/* j's text as Jansson writes it (j made from o by jt_to_json), after checking that jt_dump
 * writes the same bytes from o. NULL without memory. */
static inline char *
fuzz_dump(const struct jt_node *o, const json_t *j)
{
    char *s = json_dumps(j, JX_DUMP_FLAGS);
    struct buf b;

    if (!s)
        return NULL;
    buf_init(&b, 64u << 20);
    if (jt_dump(o, NULL, 0, &b) != JX_DUMP_OK || b.len != strlen(s) || memcmp(b.data, s, b.len))
        abort();
    buf_free(&b);
    return s;
}

#endif
