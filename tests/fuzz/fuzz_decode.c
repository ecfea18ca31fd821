/* fuzz_decode.c - fuzz target for dec_frame and dec_tcp: the first byte picks the link type,
 * the rest is the captured frame. Views must stay inside the frame; every byte they cover
 * is read so the sanitizers see any that do not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int fuzz_dlts[] = {
    DEC_DLT_NULL,   DEC_DLT_EN10MB, DEC_DLT_RAW,  DEC_DLT_LOOP,       DEC_DLT_LINUX_SLL,
    DEC_DLT_RAW_LT, DEC_DLT_IPV4,   DEC_DLT_IPV6, DEC_DLT_LINUX_SLL2,
};

static int
fuzz_inside(const uint8_t *p, size_t n, const uint8_t *lo, size_t lon)
{
    return p >= lo && n <= lon && (size_t)(p - lo) <= lon - n;
}

static unsigned
fuzz_touch(const uint8_t *p, size_t n)
{
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += p[i];
    return sum;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int dlt = fuzz_dlts[data[0] % (sizeof fuzz_dlts / sizeof fuzz_dlts[0])];
    size_t len = size - 1;
    /* An exact-size copy: the replay driver's buffer is larger than the input, which would
     * hide a read past the frame from the address sanitizer. */
    uint8_t *frame = mem_alloc(len);
    if (!frame)
        return 0;
    if (len)
        memcpy(frame, data + 1, len);

    struct dec_packet pkt;
    volatile unsigned sink = 0;
    if (dec_frame(dlt, frame, len, &pkt) == DEC_OK) {
        if (!fuzz_inside(pkt.ip, pkt.ip_caplen, frame, len) || pkt.ip_caplen > pkt.ip_len)
            abort();
        sink += fuzz_touch(pkt.ip, pkt.ip_caplen);
        if (pkt.l4) {
            if (!fuzz_inside(pkt.l4, pkt.l4_caplen, pkt.ip, pkt.ip_caplen) ||
                pkt.l4_caplen > pkt.l4_len)
                abort();
            sink += fuzz_touch(pkt.l4, pkt.l4_caplen);
        }
        struct dec_tcp tcp;
        if (pkt.proto == 6 && pkt.l4 && dec_tcp(&pkt, &tcp) == DEC_OK) {
            if (!fuzz_inside(tcp.payload, tcp.payload_caplen, pkt.l4, pkt.l4_caplen) ||
                tcp.payload_caplen > tcp.payload_len || tcp.hdr_len < 20)
                abort();
            sink += fuzz_touch(tcp.payload, tcp.payload_caplen);
        }
    }
    (void)sink;
    mem_free(frame);
    return 0;
}
