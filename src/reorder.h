/* reorder.h - an offline analysis' reports in the order the sessions began. Sessions are
 * reported as they end (that is what lets a live capture print them at once); reading a
 * file, the reports are written to temporary files first and copied out here sorted by
 * session id, the frame number of the session's first packet, so they come in start order.
 * Only an index (offset, length, id per record) is held in memory. */
#ifndef SMTPSNIFF_REORDER_H
#define SMTPSNIFF_REORDER_H

#include <stdio.h>

enum reorder_kind {
    REORDER_NDJSON, /* one object per line; session records carry "id" */
    REORDER_TEXT,   /* the text view: a session's block starts with "session N" */
    REORDER_TSV,    /* --lines TSV: '#' header lines, rows whose second field is the id */
    REORDER_ALIGNED /* --lines on a terminal: a header row, rows, then a blank line */
};

/* Copies what was written to tmp (rewound here) to out, the session records in id order
 * (records of the same session keep their order), everything else where it was: the lines
 * before the first session and after the last one stay put. 0, or -1 with errno set. */
int reorder_copy(FILE *tmp, FILE *out, enum reorder_kind kind);

#endif
