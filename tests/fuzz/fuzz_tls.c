/* fuzz_tls.c - fuzz target for the TLS reader. Byte 0 picks max_buffer; then segments, each a
 * header byte (top bit: server, low 7 bits: length, 0 meaning a gap in that direction)
 * followed by that many stream bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_tree.h"
#include "jtree.h"
#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_view *t;
    size_t i = 1;
    struct jt *tree;
    struct jt_node *o;
    json_t *j;
    char *s;

    if (size < 1)
        return 0;
    t = tls_create((size_t)data[0] * 8);
    if (!t)
        return 0;
    while (i < size) {
        enum tls_dir dir = (data[i] & 0x80) ? TLS_SERVER : TLS_CLIENT;
        size_t len = data[i] & 0x7f;
        i++;
        if (len == 0) {
            tls_gap(t, dir);
            continue;
        }
        if (len > size - i)
            len = size - i;
        tls_feed(t, dir, data + i, len);
        i += len;
    }
    (void)tls_handshake_complete(t);
    (void)tls_fatal_alerts(t);
    tree = jt_new();
    o = jt_root(tree);
    if (tls_report(t, o) == 0 && !jt_failed(tree)) {
        j = jt_to_json(o);
        s = fuzz_dump(o, j);
        if (!s)
            abort();
        free(s);
        json_decref(j);
    }
    jt_free(tree);
    tls_destroy(t);
    return 0;
}
