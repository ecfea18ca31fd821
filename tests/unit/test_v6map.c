/* test_v6map.c - the IPv6 to synthetic IPv4 map: uniqueness, references, reuse, bounds. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mem.h"
#include "v6map.h"

static void
v6_addr(uint8_t a[16], uint32_t n)
{
    memset(a, 0, 16);
    a[0] = 0x20;
    a[1] = 0x01;
    a[2] = 0x0d;
    a[3] = 0xb8;
    a[12] = (uint8_t)(n >> 24);
    a[13] = (uint8_t)(n >> 16);
    a[14] = (uint8_t)(n >> 8);
    a[15] = (uint8_t)n;
}

static void
test_basic(void)
{
    struct v6map *m = v6map_create(16);
    CHECK(m != NULL);
    uint8_t a[16], b[16], back[16];
    uint32_t sa, sb, s2;
    v6_addr(a, 1);
    v6_addr(b, 2);

    CHECK_EQ_INT(v6map_lookup(m, a, &sa), -1);
    CHECK_EQ_INT(v6map_acquire(m, a, &sa), 0);
    CHECK_EQ_INT(v6map_acquire(m, b, &sb), 0);
    CHECK(sa != sb);
    CHECK(v6map_is_synthetic(sa));
    CHECK(v6map_is_synthetic(sb));
    /* network order: the first byte on the wire is in 240..255 and never .0 or .255.255.255 */
    const uint8_t *pa = (const uint8_t *)&sa;
    CHECK(pa[0] >= 240);
    CHECK(ntohl(sa) != 0xf0000000u && ntohl(sa) != 0xffffffffu);
    CHECK_EQ_INT(v6map_count(m), 2);

    CHECK_EQ_INT(v6map_acquire(m, a, &s2), 0);
    CHECK_EQ_INT(s2, sa);
    CHECK_EQ_INT(v6map_count(m), 2);
    CHECK_EQ_INT(v6map_lookup(m, a, &s2), 0);
    CHECK_EQ_INT(s2, sa);
    CHECK_EQ_INT(v6map_reverse(m, sa, back), 0);
    CHECK(memcmp(back, a, 16) == 0);
    CHECK_EQ_INT(v6map_reverse(m, sb, back), 0);
    CHECK(memcmp(back, b, 16) == 0);

    /* two references: the first release keeps the entry */
    v6map_release(m, sa);
    CHECK_EQ_INT(v6map_reverse(m, sa, back), 0);
    CHECK_EQ_INT(v6map_count(m), 2);
    v6map_release(m, sa);
    CHECK_EQ_INT(v6map_reverse(m, sa, back), -1);
    CHECK_EQ_INT(v6map_lookup(m, a, &s2), -1);
    CHECK_EQ_INT(v6map_count(m), 1);
    /* releasing what is not mapped is harmless */
    v6map_release(m, sa);
    v6map_release(m, htonl(0x0a000001u));
    v6map_release(m, htonl(0xfffffff0u));
    CHECK_EQ_INT(v6map_count(m), 1);
    CHECK_EQ_INT(v6map_reverse(m, htonl(0x0a000001u), back), -1);
    CHECK_EQ_INT(v6map_reverse(m, htonl(0xffffffffu), back), -1);

    CHECK(!v6map_is_synthetic(htonl(0xc0a80001u)));
    CHECK(!v6map_is_synthetic(htonl(0xefffffffu)));
    CHECK(v6map_is_synthetic(htonl(0xf0000000u)));
    v6map_destroy(m);
    v6map_destroy(NULL);
}

static void
test_full_and_reuse(void)
{
    enum { N = 100 };
    struct v6map *m = v6map_create(N);
    uint32_t s[N + 1];
    uint8_t a[16], back[16];
    for (uint32_t i = 0; i < N; i++) {
        v6_addr(a, i);
        CHECK_EQ_INT(v6map_acquire(m, a, &s[i]), 0);
    }
    CHECK_EQ_INT(v6map_count(m), N);
    /* all distinct, all reversible */
    for (uint32_t i = 0; i < N; i++) {
        for (uint32_t j = i + 1; j < N; j++)
            CHECK(s[i] != s[j]);
        v6_addr(a, i);
        CHECK_EQ_INT(v6map_reverse(m, s[i], back), 0);
        CHECK(memcmp(back, a, 16) == 0);
    }
    /* full: a new address is refused rather than given a shared value */
    v6_addr(a, 1000);
    CHECK_EQ_INT(v6map_acquire(m, a, &s[N]), -1);
    /* an existing one still gets its reference */
    uint32_t x;
    v6_addr(a, 7);
    CHECK_EQ_INT(v6map_acquire(m, a, &x), 0);
    CHECK_EQ_INT(x, s[7]);
    v6map_release(m, x);

    /* free two; the new addresses take exactly those values, oldest freed first */
    v6map_release(m, s[10]);
    v6map_release(m, s[20]);
    CHECK_EQ_INT(v6map_count(m), N - 2);
    uint32_t n1, n2;
    v6_addr(a, 1001);
    CHECK_EQ_INT(v6map_acquire(m, a, &n1), 0);
    CHECK_EQ_INT(n1, s[10]);
    v6_addr(a, 1002);
    CHECK_EQ_INT(v6map_acquire(m, a, &n2), 0);
    CHECK_EQ_INT(n2, s[20]);
    CHECK_EQ_INT(v6map_reverse(m, n1, back), 0);
    v6_addr(a, 1001);
    CHECK(memcmp(back, a, 16) == 0);
    /* the released addresses are gone */
    v6_addr(a, 10);
    CHECK_EQ_INT(v6map_lookup(m, a, &x), -1);
    v6_addr(a, 1003);
    CHECK_EQ_INT(v6map_acquire(m, a, &x), -1);
    v6map_destroy(m);
}

/* Many entries with churn across table growth: every live address keeps its value, and
 * the map's answer always agrees with a plain array of what should be there. */
static void
test_churn(void)
{
    enum { N = 5000 };
    struct v6map *m = v6map_create(N);
    static uint32_t synth[N];
    static uint8_t live[N];
    uint8_t a[16], back[16];
    uint32_t x;
    size_t nlive = 0;
    uint32_t rnd = 12345;
    for (int step = 0; step < 60000; step++) {
        rnd = rnd * 1103515245u + 12345u;
        uint32_t i = (rnd >> 8) % N;
        v6_addr(a, i * 2654435761u);
        if (!live[i]) {
            CHECK_EQ_INT(v6map_acquire(m, a, &synth[i]), 0);
            live[i] = 1;
            nlive++;
        } else {
            CHECK_EQ_INT(v6map_lookup(m, a, &x), 0);
            CHECK_EQ_INT(x, synth[i]);
            v6map_release(m, synth[i]);
            live[i] = 0;
            nlive--;
        }
    }
    CHECK_EQ_INT(v6map_count(m), nlive);
    for (uint32_t i = 0; i < N; i++) {
        v6_addr(a, i * 2654435761u);
        if (live[i]) {
            CHECK_EQ_INT(v6map_reverse(m, synth[i], back), 0);
            CHECK(memcmp(back, a, 16) == 0);
            for (uint32_t j = i + 1; j < N; j += 97)
                if (live[j])
                    CHECK(synth[j] != synth[i]);
        } else {
            CHECK_EQ_INT(v6map_lookup(m, a, &x), -1);
        }
    }
    v6map_destroy(m);
}

static void
test_limits(void)
{
    uint8_t a[16];
    uint32_t x;
    v6_addr(a, 1);
    /* a zero-sized map maps nothing */
    struct v6map *m = v6map_create(0);
    CHECK(m != NULL);
    CHECK_EQ_INT(v6map_acquire(m, a, &x), -1);
    v6map_destroy(m);
    /* a huge limit allocates by use, not up front */
    m = v6map_create(SIZE_MAX);
    CHECK(m != NULL);
    CHECK_EQ_INT(v6map_acquire(m, a, &x), 0);
    CHECK_EQ_INT(ntohl(x), 0xf0000001u);
    v6map_destroy(m);

    /* allocation failure: creation returns NULL, a failed growth is a refusal */
    mem_fail_after(0);
    CHECK(v6map_create(10) == NULL);
    mem_fail_after(-1);
    m = v6map_create(10);
    mem_fail_after(0);
    CHECK_EQ_INT(v6map_acquire(m, a, &x), -1);
    mem_fail_after(1); /* the entry array succeeds, the buckets fail */
    CHECK_EQ_INT(v6map_acquire(m, a, &x), -1);
    mem_fail_after(-1);
    CHECK_EQ_INT(v6map_acquire(m, a, &x), 0);
    CHECK_EQ_INT(v6map_count(m), 1);
    v6map_destroy(m);
}

int
main(void)
{
    test_basic();
    test_full_and_reuse();
    test_churn();
    test_limits();
    CHECK_DONE();
}
