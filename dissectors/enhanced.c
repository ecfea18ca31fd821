/* enhanced.c - RFC 3463 enhanced status codes, read the same way for every reply. */
#include "enhanced.h"

size_t
enhanced_len(int code, const uint8_t *p, size_t n)
{
    size_t i, digits;

    if (n < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
        return 0;
    if (code && p[0] != (uint8_t)('0' + code / 100))
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        digits = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 3) {
            i++;
            digits++;
        }
        if (!digits)
            return 0;
        if (part == 0) {
            if (i >= n || p[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < n && p[i] != ' ' && p[i] != '\t')
        return 0;
    return i;
}
