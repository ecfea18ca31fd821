/* test_jtree.c - the report tree: what its setters keep, what its readers give, that its
 * writer gives Jansson's bytes, and the time format the reports use. */
#include <jansson.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "jsonx.h"
#include "jtree.h"
#include "mem.h"

/* jt_dump of c next to json_dumps of the same tree made as Jansson values. */
static void
check_same_bytes(const struct jt_node *c)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    json_t *j = jt_to_json(c);
    char *ref = j ? json_dumps(j, JX_DUMP_FLAGS) : NULL;
    CHECK(ref != NULL);
    CHECK_EQ_INT(jt_dump(c, NULL, 0, &b), JX_DUMP_OK);
    if (ref) {
        CHECK(b.len == strlen(ref) && memcmp(b.data, ref, b.len) == 0);
        if (b.len != strlen(ref) || memcmp(b.data, ref, b.len) != 0)
            fprintf(stderr, "  jansson: %s\n  jt_dump: %.*s\n", ref, (int)b.len, (char *)b.data);
    }
    free(ref);
    json_decref(j);
    buf_free(&b);
}

static void
test_members(void)
{
    struct jt *t = jt_new();
    struct jt_node *o = jt_root(t);
    CHECK(o != NULL);
    jt_set_int(o, "b", 1);
    jt_set_str(o, "a", "x");
    jt_set_int(o, "b", 2); /* set again: the last value counts */
    jt_set_ms(o, "t_ms", 1234567);
    jt_set_real(o, "r", 0.1);
    jt_set_bool(o, "yes", 1);
    jt_set_null(o, "nothing");
    jt_set_bytes(o, "wire", (const uint8_t *)"ok\xff\x00z", 5);
    jt_set_lit(o, "lit", "static");
    jt_set_time(o, "when", INT64_C(1764077438924191));
    struct jt_node *arr = jt_set_arr(o, "list");
    jt_push_int(arr, -5);
    jt_push_lit(arr, "two");
    jt_push_str(arr, "caf\xc3\xa9");
    struct jt_node *inner = jt_push_obj(arr);
    jt_set_int(inner, "deep", 3);
    /* A container built before its place is known, attached afterwards. */
    struct jt_node *late = jt_new_obj(o);
    jt_set_int(late, "k", 9);
    jt_set_val(o, "late", &(struct jt_val){.type = JT_OBJ, .u.c = late});
    /* A NULL container takes nothing and does not fail the tree. */
    jt_set_int(NULL, "x", 1);
    jt_push_int(NULL, 1);
    CHECK(jt_set_obj(NULL, "x") == NULL);
    CHECK(!jt_failed(t));

    CHECK_EQ_INT(jt_int(jt_get(o, "b"), 0), 2);
    CHECK_EQ_INT(jt_size(o), 11);
    CHECK_EQ_INT(jt_members(o), 12);
    CHECK_EQ_STR(jt_str(jt_get(o, "a")), "x");
    CHECK_EQ_STR(jt_str(jt_get(o, "wire")), "ok\\xff\\x00z");
    CHECK_EQ_STR(jt_str(jt_get(o, "when")), "2025-11-25T13:30:38.924191Z");
    CHECK(jt_num(jt_get(o, "t_ms"), 0) == 1234567 / 1000.0);
    CHECK(jt_is_true(jt_get(o, "yes")) && jt_is_null(jt_get(o, "nothing")));
    CHECK(jt_get(o, "absent") == NULL && jt_get(NULL, "a") == NULL);
    CHECK_EQ_INT(jt_int(jt_get(o, "a"), -1), -1); /* a string is not an integer */
    CHECK_EQ_INT(jt_size(jt_arr(jt_get(o, "list"))), 4);
    CHECK_EQ_INT(jt_int(jt_get(jt_obj(jt_at(arr, 3)), "deep"), 0), 3);
    CHECK(jt_at(arr, 4) == NULL);
    check_same_bytes(o);

    /* Copied into a tree from Jansson and back: the same bytes again. */
    json_t *j = jt_to_json(o);
    struct jt *t2 = jt_new();
    CHECK_EQ_INT(jt_from_json(jt_root(t2), j), 0);
    check_same_bytes(jt_root(t2));
    json_decref(j);
    jt_free(t2);

    /* Reset: empty again, and usable for the next report. */
    jt_reset(t);
    CHECK_EQ_INT(jt_members(o), 0);
    jt_set_int(o, "n", 1);
    check_same_bytes(o);
    jt_free(t);
}

/* Members written in Jansson's key order: bytes compared, a prefix first, including keys that
 * share their first eight bytes. */
static void
test_key_order(void)
{
    static const char *const keys[] = {
        "frame_bytes_server", "frame_bytes_client", "frame_byte", "frame_bytes", "a", "", "ab",
        "abcdefgh",           "abcdefghi",          "abcdefgg",   "Z",           "_x"};
    struct jt *t = jt_new();
    struct jt_node *o = jt_root(t);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        jt_set_int(o, keys[i], (int64_t)i);
    check_same_bytes(o);
    /* Keys from Jansson may be anything: non-ASCII, escaped, with a NUL, sharing a prefix. */
    json_t *j = json_pack("{s:i,s:i,s:i,s:i}", "\xc3\xa9t\xc3\xa9", 1, "q\"uote", 2, "tab\t", 3,
                          "frame_bytes_clientX", 4);
    json_object_setn_new(j, "nul\0key", 7, json_integer(5));
    CHECK_EQ_INT(jt_from_json(o, j), 0);
    json_decref(j);
    check_same_bytes(o);
    /* More members than the writer sorts on its stack. */
    static char names[200][8];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], "k%03d", (i * 7919) % 200);
        jt_set_int(o, names[i], i);
    }
    check_same_bytes(o);
    jt_free(t);
}

/* The writer's splice: a member written by a callback, at its sorted place. */
static int
splice_write(void *ctx, struct buf *b)
{
    (void)ctx;
    return jx_put_raw(b, "[1,2]", 5);
}

static void
test_splice(void)
{
    struct jt *t = jt_new();
    struct jt_node *o = jt_root(t);
    jt_set_int(o, "a", 1);
    jt_set_int(o, "z", 2);
    struct jx_splice sp = {"m", splice_write, NULL};
    struct buf b;
    buf_init(&b, 1024);
    CHECK_EQ_INT(jt_dump(o, &sp, 1, &b), JX_DUMP_OK);
    CHECK(b.len == 23 && memcmp(b.data, "{\"a\":1,\"m\":[1,2],\"z\":2}", 23) == 0);
    /* A buffer too small: nothing half-written. */
    struct buf small;
    buf_init(&small, 10);
    CHECK_EQ_INT(jt_dump(o, &sp, 1, &small), JX_DUMP_FULL);
    CHECK_EQ_INT(small.len, 0);
    buf_free(&small);
    buf_free(&b);
    jt_free(t);
}

/* Allocation failures: remembered by the tree, never a crash, never a half-made value. */
static void
test_no_memory(void)
{
    int failed = 0;
    for (long n = 0; n < 12; n++) {
        struct jt *t = jt_new();
        if (!t)
            continue;
        mem_fail_after(n);
        struct jt_node *o = jt_root(t);
        for (int i = 0; i < 300; i++) {
            jt_set_str(o, "s", "some text that is copied");
            struct jt_node *a = jt_set_arr(o, "a");
            jt_push_int(a, i);
        }
        mem_fail_after(-1);
        failed += jt_failed(t);
        check_same_bytes(o);
        jt_free(t);
    }
    CHECK(failed > 0);
}

/* The report's time format against gmtime_r + snprintf, over the years it writes by hand
 * and past them. */
static void
test_time(void)
{
    uint64_t x = 88172645463325252ull;
    long bad = 0;
    for (long i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ts =
            (int64_t)(x % UINT64_C(300000000000000000)) - (i % 5 == 0 ? INT64_C(1) << 50 : 0);
        if (i == 0)
            ts = 0;
        time_t secs = (time_t)(ts / 1000000);
        long usec = (long)(ts % 1000000);
        struct tm tm;
        char want[64], got[64];
        if (usec < 0) {
            usec += 1000000;
            secs--;
        }
        if (!gmtime_r(&secs, &tm))
            continue;
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
        jx_format_time(ts, got, sizeof got);
        if (strcmp(want, got) != 0 && bad++ < 3)
            fprintf(stderr, "  %lld: %s vs %s\n", (long long)ts, want, got);
    }
    CHECK_EQ_INT(bad, 0);
}

int
main(void)
{
    test_members();
    test_key_order();
    test_splice();
    test_no_memory();
    test_time();
    CHECK_DONE();
}
