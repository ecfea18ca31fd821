/* pcapng.c - Decryption Secrets Blocks (see pcapng.h). */
#include "pcapng.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_DSB 0x0000000Au
#define PCAPNG_TLS_KEYLOG 0x544c534bu
#define PCAPNG_MAX_BLOCK (16u << 20)

static uint32_t
pcapng_u32(const uint8_t *p, int swap)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return swap ? __builtin_bswap32(v) : v;
}

int
pcapng_tls_secrets(const char *path, struct buf *out, size_t max_scan)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int found = 0, swap = 0;
    size_t scanned = 0;
    uint8_t hdr[12];
    uint8_t *body = NULL;
    while (scanned < max_scan && fread(hdr, 1, 8, f) == 8) {
        uint32_t type = pcapng_u32(hdr, swap);
        if (type == PCAPNG_SHB || (scanned == 0 && type != PCAPNG_SHB)) {
            if (type != PCAPNG_SHB)
                break; /* not pcapng */
            /* The byte-order magic decides how every later length is read. */
            if (fread(hdr + 8, 1, 4, f) != 4)
                break;
            uint32_t magic;
            memcpy(&magic, hdr + 8, 4);
            if (magic == 0x1A2B3C4Du)
                swap = 0;
            else if (magic == 0x4D3C2B1Au)
                swap = 1;
            else
                break;
            uint32_t total = pcapng_u32(hdr + 4, swap);
            if (total < 28 || total % 4 || total > PCAPNG_MAX_BLOCK ||
                fseek(f, (long)total - 12, SEEK_CUR) != 0)
                break;
            scanned += total;
            continue;
        }
        uint32_t total = pcapng_u32(hdr + 4, swap);
        if (total < 12 || total % 4 || total > PCAPNG_MAX_BLOCK)
            break;
        if (type == PCAPNG_DSB) {
            size_t n = total - 8;
            body = mem_alloc(n);
            if (!body || fread(body, 1, n, f) != n)
                break;
            uint32_t stype = n >= 12 ? pcapng_u32(body, swap) : 0;
            uint32_t slen = n >= 12 ? pcapng_u32(body + 4, swap) : 0;
            if (n >= 12 && stype == PCAPNG_TLS_KEYLOG && slen <= n - 12) {
                buf_append(out, body + 8, slen);
                buf_append_byte(out, '\n');
                found++;
            }
            mem_free(body);
            body = NULL;
        } else if (fseek(f, (long)total - 8, SEEK_CUR) != 0) {
            break;
        }
        scanned += total;
    }
    mem_free(body);
    fclose(f);
    return found;
}
