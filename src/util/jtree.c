/* jtree.c - see jtree.h. Containers are arrays grown inside the arena (a grown array leaves
 * its old copy behind: reports are small and short-lived, so the arena is not worth a free
 * list). Keys are sorted when written, not when set: most objects are written once; what the
 * sort needs of a key (its rank in the key order, its first bytes) is found when it is set. */
#include "jtree.h"

#include <assert.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"

struct jt_member {
    const char *key;
    uint64_t kpre; /* the key's first 8 bytes, big-endian, zero-padded: most comparisons */
    uint32_t klen;
    uint8_t plain; /* printable ASCII but '"' and '\\': written without escaping */
    uint8_t rank;  /* jx_key_rank */
    struct jt_val v;
};

struct jt_node {
    struct jt *tree;
    int is_obj;
    uint32_t n, cap;
    union {
        struct jt_member *m;
        struct jt_val *v;
    } it;
};

struct jt_chunk {
    struct jt_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

/* First chunk: enough for a typical session report without a second allocation. */
#define JT_CHUNK_FIRST 8192
#define JT_CHUNK_MAX (256 * 1024)
/* Objects deeper than this are written by Jansson (only trees copied from Jansson can be). */
#define JT_MAX_DEPTH 64
#define JT_SORT_STACK 64

struct jt {
    struct jt_chunk *chunk;
    size_t next_cap;
    int failed;
    struct jt_node root;
};

/* ---- the arena ---- */

static void *
jt_alloc(struct jt *t, size_t n)
{
    struct jt_chunk *c = t->chunk;

    n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (!c || c->cap - c->used < n) {
        size_t cap = t->next_cap;
        if (cap < n)
            cap = n;
        c = mem_alloc(sizeof *c + cap);
        if (!c) {
            t->failed = 1;
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = t->chunk;
        t->chunk = c;
        if (t->next_cap < JT_CHUNK_MAX)
            t->next_cap *= 2;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

struct jt *
jt_new(void)
{
    struct jt *t = mem_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->next_cap = JT_CHUNK_FIRST;
    t->root.tree = t;
    t->root.is_obj = 1;
    return t;
}

void
jt_free(struct jt *t)
{
    if (!t)
        return;
    for (struct jt_chunk *c = t->chunk, *next; c; c = next) {
        next = c->next;
        mem_free(c);
    }
    mem_free(t);
}

void
jt_reset(struct jt *t)
{
    if (!t)
        return;
    /* The newest chunk is the largest: kept, unless a huge report made it. */
    struct jt_chunk *keep = t->chunk && t->chunk->cap <= JT_CHUNK_MAX ? t->chunk : NULL;
    for (struct jt_chunk *c = t->chunk, *next; c; c = next) {
        next = c->next;
        if (c != keep)
            mem_free(c);
    }
    t->chunk = keep;
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    t->next_cap = keep && keep->cap * 2 <= JT_CHUNK_MAX ? keep->cap * 2 : JT_CHUNK_FIRST;
    t->failed = 0;
    t->root.n = t->root.cap = 0;
    t->root.it.m = NULL;
}

struct jt_node *
jt_root(struct jt *t)
{
    return t ? &t->root : NULL;
}

int
jt_failed(const struct jt *t)
{
    return !t || t->failed;
}

/* ---- building ---- */

/* Room for one more item in c; the slot, or NULL (the tree remembers the failure). */
static void *
jt_slot(struct jt_node *c)
{
    size_t size = c->is_obj ? sizeof(struct jt_member) : sizeof(struct jt_val);
    if (c->n == c->cap) {
        uint32_t cap = c->cap ? c->cap * 2 : c->is_obj ? 8 : 4;
        if (cap <= c->cap) {
            c->tree->failed = 1;
            return NULL;
        }
        void *p = jt_alloc(c->tree, (size_t)cap * size);
        if (!p)
            return NULL;
        if (c->n)
            memcpy(p, c->is_obj ? (void *)c->it.m : (void *)c->it.v, (size_t)c->n * size);
        if (c->is_obj)
            c->it.m = p;
        else
            c->it.v = p;
        c->cap = cap;
    }
    return c->is_obj ? (void *)&c->it.m[c->n++] : (void *)&c->it.v[c->n++];
}

static int
jt_plain(const char *key, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)key[i] < 0x20 || (uint8_t)key[i] > 0x7e || key[i] == '"' || key[i] == '\\')
            return 0;
    return 1;
}

/* What the writer needs of a key, found once when it is set: its length, its sort prefix
 * and its rank in the key order (jsonx.h). n: the length, or SIZE_MAX for up to the NUL.
 * plain: whether the key is known to need no escaping (our own names), or -1 to find out. */
static void
jt_key_info(struct jt_member *m, const char *key, size_t n, int plain)
{
    if (n == SIZE_MAX)
        n = strlen(key);
    m->key = key;
    m->kpre = jx_key_prefix(key, n);
    m->klen = (uint32_t)n;
    m->plain = (uint8_t)(plain >= 0 ? plain : jt_plain(key, n));
    m->rank = jx_key_rank(key, n, m->kpre);
}

/* The value slot of a new member (keys are taken as they are: see jtree.h). */
static struct jt_val *
jt_member_slot_key(struct jt_node *o, const char *key, size_t n, int plain)
{
    if (!o || !o->is_obj)
        return NULL;
    struct jt_member *m = jt_slot(o);
    if (!m)
        return NULL;
    jt_key_info(m, key, n, plain);
    return &m->v;
}

/* Keys set by the setters are our own names (jtree.h): plain by contract, checked in debug
 * builds. */
static struct jt_val *
jt_member_slot(struct jt_node *o, const char *key)
{
    assert(jt_plain(key, strlen(key)));
    return jt_member_slot_key(o, key, SIZE_MAX, 1);
}

static struct jt_val *
jt_elem_slot(struct jt_node *a)
{
    if (!a || a->is_obj)
        return NULL;
    return jt_slot(a);
}

static struct jt_node *
jt_container(struct jt *t, int is_obj)
{
    struct jt_node *c = jt_alloc(t, sizeof *c);
    if (c) {
        c->tree = t;
        c->is_obj = is_obj;
        c->n = c->cap = 0;
        c->it.m = NULL;
    }
    return c;
}

/* A copy of n bytes of valid UTF-8 in the arena, NUL-terminated. */
static int
jt_copy_text(struct jt *t, struct jt_val *v, const char *s, size_t n)
{
    if (n >= UINT32_MAX) {
        t->failed = 1;
        return -1;
    }
    char *p = jt_alloc(t, n + 1);
    if (!p)
        return -1;
    memcpy(p, s, n);
    p[n] = '\0';
    v->u.s = p;
    v->len = (uint32_t)n;
    return 0;
}

/* The text jx_bytes(p, n) makes, into v (left unset on failure). */
static int
jt_bytes_val(struct jt *t, struct jt_val *v, const uint8_t *p, size_t n)
{
    char small[512], *heap;
    size_t len;
    const char *text = jx_bytes_text(p, n, small, &heap, &len);
    int rc = -1;
    if (!text)
        t->failed = 1;
    else
        rc = jt_copy_text(t, v, text, len);
    mem_free(heap);
    return rc;
}

/* A slot whose value could not be made must not stay: it would be written as what the
 * slot's garbage says. The slot is the container's last one. */
static void
jt_unslot(struct jt_node *c)
{
    c->n--;
}

/* A new member of the given type; its value, if it has one, is for the caller to fill. */
static struct jt_val *
jt_set_typed(struct jt_node *o, const char *key, enum jt_type type)
{
    struct jt_val *v = jt_member_slot(o, key);
    if (v)
        v->type = type;
    return v;
}

void
jt_set_null(struct jt_node *o, const char *key)
{
    jt_set_typed(o, key, JT_NULL);
}

void
jt_set_bool(struct jt_node *o, const char *key, int b)
{
    jt_set_typed(o, key, b ? JT_TRUE : JT_FALSE);
}

void
jt_set_int(struct jt_node *o, const char *key, int64_t i)
{
    struct jt_val *v = jt_set_typed(o, key, JT_INT);
    if (v)
        v->u.i = i;
}

void
jt_set_ms(struct jt_node *o, const char *key, int64_t us)
{
    struct jt_val *v = jt_set_typed(o, key, JT_MS);
    if (v)
        v->u.i = us;
}

void
jt_set_real(struct jt_node *o, const char *key, double d)
{
    struct jt_val *v = jt_set_typed(o, key, JT_REAL);
    if (v)
        v->u.d = d;
}

/* The new slot v of container c (member or element) as a string, value or container:
 * shared by the jt_set_ and jt_push_ functions. */
static void
jt_fill_bytes(struct jt_node *c, struct jt_val *v, const uint8_t *p, size_t n)
{
    if (!v)
        return;
    v->type = JT_STR;
    if (jt_bytes_val(c->tree, v, p, n) < 0)
        jt_unslot(c);
}

static void
jt_fill_lit(struct jt_val *v, const char *lit)
{
    if (v) {
        v->type = JT_STR;
        v->u.s = lit;
        v->len = (uint32_t)strlen(lit);
    }
}

static struct jt_node *
jt_fill_container(struct jt_val *v, struct jt_node *c, int is_obj)
{
    if (!v)
        return NULL;
    v->type = is_obj ? JT_OBJ : JT_ARR;
    v->u.c = c;
    return c;
}

void
jt_set_bytes(struct jt_node *o, const char *key, const uint8_t *p, size_t n)
{
    jt_fill_bytes(o, jt_member_slot(o, key), p, n);
}

void
jt_set_str(struct jt_node *o, const char *key, const char *s)
{
    jt_set_bytes(o, key, (const uint8_t *)s, strlen(s));
}

void
jt_set_lit(struct jt_node *o, const char *key, const char *lit)
{
    jt_fill_lit(jt_member_slot(o, key), lit);
}

void
jt_set_time(struct jt_node *o, const char *key, int64_t ts_us)
{
    char b[40];
    jx_format_time(ts_us, b, sizeof b);
    jt_set_str(o, key, b);
}

static struct jt_node *
jt_set_container(struct jt_node *o, const char *key, int is_obj)
{
    if (!o)
        return NULL;
    struct jt_node *c = jt_container(o->tree, is_obj);
    return jt_fill_container(c ? jt_member_slot(o, key) : NULL, c, is_obj);
}

struct jt_node *
jt_set_obj(struct jt_node *o, const char *key)
{
    return jt_set_container(o, key, 1);
}

struct jt_node *
jt_set_arr(struct jt_node *o, const char *key)
{
    return jt_set_container(o, key, 0);
}

struct jt_node *
jt_new_obj(struct jt_node *o)
{
    return o ? jt_container(o->tree, 1) : NULL;
}

struct jt_node *
jt_new_arr(struct jt_node *o)
{
    return o ? jt_container(o->tree, 0) : NULL;
}

void
jt_set_val(struct jt_node *o, const char *key, const struct jt_val *src)
{
    struct jt_val *v = src ? jt_member_slot(o, key) : NULL;
    if (v)
        *v = *src;
}

void
jt_push_int(struct jt_node *a, int64_t i)
{
    struct jt_val *v = jt_elem_slot(a);
    if (v) {
        v->type = JT_INT;
        v->u.i = i;
    }
}

void
jt_push_bytes(struct jt_node *a, const uint8_t *p, size_t n)
{
    jt_fill_bytes(a, jt_elem_slot(a), p, n);
}

void
jt_push_str(struct jt_node *a, const char *s)
{
    jt_push_bytes(a, (const uint8_t *)s, strlen(s));
}

void
jt_push_lit(struct jt_node *a, const char *lit)
{
    jt_fill_lit(jt_elem_slot(a), lit);
}

void
jt_push_val(struct jt_node *a, const struct jt_val *src)
{
    struct jt_val *v = src ? jt_elem_slot(a) : NULL;
    if (v)
        *v = *src;
}

static struct jt_node *
jt_push_container(struct jt_node *a, int is_obj)
{
    if (!a)
        return NULL;
    struct jt_node *c = jt_container(a->tree, is_obj);
    return jt_fill_container(c ? jt_elem_slot(a) : NULL, c, is_obj);
}

struct jt_node *
jt_push_obj(struct jt_node *a)
{
    return jt_push_container(a, 1);
}

/* ---- reading ---- */

const struct jt_val *
jt_getn(const struct jt_node *o, const char *key, size_t klen)
{
    if (!o || !o->is_obj)
        return NULL;
    uint64_t pre = jx_key_prefix(key, klen);
    /* From the end: a key set twice is its last value. */
    for (uint32_t i = o->n; i-- > 0;) {
        const struct jt_member *m = &o->it.m[i];
        if (m->kpre == pre && m->klen == klen &&
            (klen <= 8 || memcmp(m->key + 8, key + 8, klen - 8) == 0))
            return &m->v;
    }
    return NULL;
}

const struct jt_val *
jt_get(const struct jt_node *o, const char *key)
{
    return jt_getn(o, key, strlen(key));
}

static int
jt_same_key(const struct jt_member *a, const struct jt_member *b)
{
    return a->kpre == b->kpre && a->klen == b->klen &&
           (a->klen <= 8 || memcmp(a->key + 8, b->key + 8, a->klen - 8) == 0);
}

/* Whether member i's key is set again later (then i is not the value written). */
static int
jt_shadowed(const struct jt_node *o, uint32_t i)
{
    for (uint32_t k = i + 1; k < o->n; k++)
        if (jt_same_key(&o->it.m[k], &o->it.m[i]))
            return 1;
    return 0;
}

size_t
jt_size(const struct jt_node *c)
{
    if (!c)
        return 0;
    if (!c->is_obj)
        return c->n;
    size_t n = 0;
    for (uint32_t i = 0; i < c->n; i++)
        n += !jt_shadowed(c, i);
    return n;
}

const struct jt_val *
jt_at(const struct jt_node *a, size_t i)
{
    return a && !a->is_obj && i < a->n ? &a->it.v[i] : NULL;
}

size_t
jt_members(const struct jt_node *o)
{
    return o && o->is_obj ? o->n : 0;
}

const char *
jt_str(const struct jt_val *v)
{
    return v && v->type == JT_STR ? v->u.s : NULL;
}

int64_t
jt_int(const struct jt_val *v, int64_t dflt)
{
    return v && v->type == JT_INT ? v->u.i : dflt;
}

double
jt_num(const struct jt_val *v, double dflt)
{
    if (!v)
        return dflt;
    switch (v->type) {
    case JT_INT:
        return (double)v->u.i;
    case JT_MS:
        return (double)v->u.i / 1000.0;
    case JT_REAL:
        return v->u.d;
    default:
        return dflt;
    }
}

int
jt_is_true(const struct jt_val *v)
{
    return v && v->type == JT_TRUE;
}

int
jt_is_false(const struct jt_val *v)
{
    return v && v->type == JT_FALSE;
}

int
jt_is_null(const struct jt_val *v)
{
    return v && v->type == JT_NULL;
}

struct jt_node *
jt_obj(const struct jt_val *v)
{
    return v && v->type == JT_OBJ ? v->u.c : NULL;
}

struct jt_node *
jt_arr(const struct jt_val *v)
{
    return v && v->type == JT_ARR ? v->u.c : NULL;
}

/* ---- writing ---- */

/* A member to write: from the tree, or a splice. */
struct jt_out {
    uint64_t kpre;
    const struct jt_member *m;
    const struct jx_splice *sp;
    uint32_t order; /* set order: of equal keys the last is written */
    uint8_t rank;
};

/* Splices given to one jt_dump (the writer's callers have one: the transcript). */
#define JT_MAX_SPLICES 4

/* The key order of jx_key_cmp (rank, then bytes compared, a prefix first), then the order
 * they were set. */
static int
jt_out_cmp(const struct jt_out *a, const struct jt_out *b)
{
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->kpre != b->kpre)
        return a->kpre < b->kpre ? -1 : 1;
    uint32_t n = a->m->klen < b->m->klen ? a->m->klen : b->m->klen;
    int c = memcmp(a->m->key, b->m->key, n);
    if (c)
        return c;
    if (a->m->klen != b->m->klen)
        return a->m->klen < b->m->klen ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int
jt_out_qsort_cmp(const void *a, const void *b)
{
    return jt_out_cmp(a, b);
}

static int jt_dump_val(const struct jt_val *v, struct buf *b, int depth);

/* lead, the key in quotes, the colon: in one piece for our own names. */
static int
jt_put_key(struct buf *b, uint8_t lead, const struct jt_member *m)
{
    size_t n = m->klen;
    if (!m->plain)
        return jx_put_key(b, lead, m->key, n);
    if (b->alloc - b->len < n + 4) {
        int rc = buf_ensure(b, n + 4);
        if (rc != BUF_OK)
            return rc == BUF_E_FULL ? JX_DUMP_FULL : JX_DUMP_NOMEM;
    }
    uint8_t *o = b->data + b->len;
    o[0] = lead;
    o[1] = '"';
    memcpy(o + 2, m->key, n);
    o[n + 2] = '"';
    o[n + 3] = ':';
    b->len += n + 4;
    return JX_DUMP_OK;
}

/* The members of o and the splices in the written order, in stack (JT_SORT_STACK) or a heap
 * array the caller frees when it is not stack; spm holds the splices' key facts. NULL
 * without memory. */
static struct jt_out *
jt_sorted(const struct jt_node *o, const struct jx_splice *sp, size_t nsp, struct jt_out *stack,
          struct jt_member *spm)
{
    struct jt_out *m = stack;
    size_t n = (size_t)o->n + nsp, i, x;

    if (n > JT_SORT_STACK) {
        m = mem_calloc(n, sizeof *m);
        if (!m)
            return NULL;
    }
    for (i = 0; i < o->n; i++) {
        m[i].kpre = o->it.m[i].kpre;
        m[i].rank = o->it.m[i].rank;
        m[i].m = &o->it.m[i];
        m[i].sp = NULL;
        m[i].order = (uint32_t)i;
    }
    for (x = 0; x < nsp; x++, i++) {
        jt_key_info(&spm[x], sp[x].key, SIZE_MAX, -1);
        m[i].kpre = spm[x].kpre;
        m[i].rank = spm[x].rank;
        m[i].m = &spm[x];
        m[i].sp = &sp[x];
        m[i].order = (uint32_t)i;
    }
    if (n <= JT_SORT_STACK) {
        for (i = 1; i < n; i++) {
            struct jt_out t = m[i];
            for (x = i; x > 0 && jt_out_cmp(&m[x - 1], &t) > 0; x--)
                m[x] = m[x - 1];
            m[x] = t;
        }
    } else {
        qsort(m, n, sizeof *m, jt_out_qsort_cmp);
    }
    return m;
}

static int
jt_dump_obj(const struct jt_node *o, const struct jx_splice *sp, size_t nsp, struct buf *b,
            int depth)
{
    struct jt_out stack[JT_SORT_STACK], *m;
    struct jt_member spm[JT_MAX_SPLICES];
    size_t n = (size_t)o->n + nsp, i;
    int rc = JX_DUMP_OK;

    if (nsp > JT_MAX_SPLICES)
        return JX_DUMP_UNSUPPORTED;
    if (n == 0)
        return jx_put_raw(b, "{}", 2);
    m = jt_sorted(o, sp, nsp, stack, spm);
    if (!m)
        return JX_DUMP_NOMEM;
    uint8_t lead = '{';
    for (i = 0; i < n && rc == JX_DUMP_OK; i++) {
        if (i + 1 < n && jt_same_key(m[i + 1].m, m[i].m))
            continue; /* set again later */
        rc = jt_put_key(b, lead, m[i].m);
        if (rc == JX_DUMP_OK)
            rc = m[i].sp ? m[i].sp->write(m[i].sp->ctx, b) : jt_dump_val(&m[i].m->v, b, depth + 1);
        lead = ',';
    }
    if (rc == JX_DUMP_OK)
        rc = jx_put_raw(b, "}", 1);
    if (m != stack)
        mem_free(m);
    return rc;
}

static int
jt_dump_val(const struct jt_val *v, struct buf *b, int depth)
{
    switch (v->type) {
    case JT_NULL:
        return jx_put_raw(b, "null", 4);
    case JT_FALSE:
        return jx_put_raw(b, "false", 5);
    case JT_TRUE:
        return jx_put_raw(b, "true", 4);
    case JT_INT:
        return jx_put_int(b, v->u.i);
    case JT_MS:
        return jx_put_ms(b, v->u.i);
    case JT_REAL:
        return jx_put_real(b, v->u.d);
    case JT_STR:
        return jx_put_string(b, v->u.s, v->len);
    case JT_OBJ:
        if (depth >= JT_MAX_DEPTH)
            return JX_DUMP_UNSUPPORTED;
        return jt_dump_obj(v->u.c, NULL, 0, b, depth);
    case JT_ARR: {
        const struct jt_node *a = v->u.c;
        int rc;
        if (depth >= JT_MAX_DEPTH)
            return JX_DUMP_UNSUPPORTED;
        if (a->n == 0)
            return jx_put_raw(b, "[]", 2);
        for (uint32_t i = 0; i < a->n; i++) {
            rc = jx_put_raw(b, i ? "," : "[", 1);
            if (rc == JX_DUMP_OK)
                rc = jt_dump_val(&a->it.v[i], b, depth + 1);
            if (rc != JX_DUMP_OK)
                return rc;
        }
        return jx_put_raw(b, "]", 1);
    }
    }
    return JX_DUMP_UNSUPPORTED;
}

int
jt_dump(const struct jt_node *c, const struct jx_splice *sp, size_t nsp, struct buf *b)
{
    size_t len0 = b->len;
    int rc;

    if (!c || (nsp && !c->is_obj))
        return JX_DUMP_UNSUPPORTED;
    if (c->is_obj) {
        rc = jt_dump_obj(c, sp, nsp, b, 0);
    } else {
        struct jt_val v = {.type = JT_ARR, .u.c = (struct jt_node *)c};
        rc = jt_dump_val(&v, b, 0);
    }
    if (rc != JX_DUMP_OK)
        b->len = len0;
    return rc;
}

/* ---- Jansson ---- */

static json_t *
jt_val_to_json(const struct jt_val *v)
{
    switch (v->type) {
    case JT_NULL:
        return json_null();
    case JT_FALSE:
        return json_false();
    case JT_TRUE:
        return json_true();
    case JT_INT:
        return json_integer((json_int_t)v->u.i);
    case JT_MS:
        return jx_ms(v->u.i);
    case JT_REAL:
        return json_real(v->u.d);
    case JT_STR:
        return json_stringn(v->u.s, v->len);
    case JT_OBJ:
    case JT_ARR:
        return jt_to_json(v->u.c);
    }
    return NULL;
}

/* Objects are made with their members set in the written order (of a key set twice, the
 * last value): Jansson keeps that order when it writes them (JX_DUMP_FLAGS). */
json_t *
jt_to_json(const struct jt_node *c)
{
    if (!c)
        return NULL;
    if (!c->is_obj) {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < c->n; i++)
            if (json_array_append_new(a, jt_val_to_json(&c->it.v[i])) < 0) {
                json_decref(a);
                a = NULL;
            }
        return a;
    }
    struct jt_out stack[JT_SORT_STACK], *m;
    json_t *j = json_object();
    if (!j || !(m = jt_sorted(c, NULL, 0, stack, NULL))) {
        json_decref(j);
        return NULL;
    }
    for (uint32_t i = 0; j && i < c->n; i++) {
        if (i + 1 < c->n && jt_same_key(m[i + 1].m, m[i].m))
            continue;
        if (json_object_setn_new(j, m[i].m->key, m[i].m->klen, jt_val_to_json(&m[i].m->v)) < 0) {
            json_decref(j);
            j = NULL;
        }
    }
    if (m != stack)
        mem_free(m);
    return j;
}

static int jt_fill(struct jt_node *c, const json_t *src);

/* v made from Jansson value src. */
static int
jt_val_from_json(struct jt *t, struct jt_val *v, const json_t *src)
{
    switch (json_typeof(src)) {
    case JSON_NULL:
        v->type = JT_NULL;
        return 0;
    case JSON_TRUE:
        v->type = JT_TRUE;
        return 0;
    case JSON_FALSE:
        v->type = JT_FALSE;
        return 0;
    case JSON_INTEGER:
        v->type = JT_INT;
        v->u.i = (int64_t)json_integer_value(src);
        return 0;
    case JSON_REAL:
        v->type = JT_REAL;
        v->u.d = json_real_value(src);
        return 0;
    case JSON_STRING:
        v->type = JT_STR;
        return jt_copy_text(t, v, json_string_value(src), json_string_length(src));
    case JSON_OBJECT:
    case JSON_ARRAY:
        v->type = json_is_object(src) ? JT_OBJ : JT_ARR;
        v->u.c = jt_container(t, json_is_object(src));
        return v->u.c ? jt_fill(v->u.c, src) : -1;
    }
    return -1;
}

static int
jt_fill(struct jt_node *c, const json_t *src)
{
    struct jt *t = c->tree;
    if (c->is_obj) {
        const char *key;
        json_t *val;
        void *it;
        for (it = json_object_iter((json_t *)src); it;
             it = json_object_iter_next((json_t *)src, it)) {
            key = json_object_iter_key(it);
            val = json_object_iter_value(it);
            struct jt_val k;
            if (jt_copy_text(t, &k, key, json_object_iter_key_len(it)) < 0)
                return -1;
            struct jt_val *v = jt_member_slot_key(c, k.u.s, k.len, -1);
            if (!v)
                return -1;
            if (jt_val_from_json(t, v, val) < 0) {
                jt_unslot(c);
                return -1;
            }
        }
        return 0;
    }
    for (size_t i = 0; i < json_array_size(src); i++) {
        struct jt_val *v = jt_elem_slot(c);
        if (!v)
            return -1;
        if (jt_val_from_json(t, v, json_array_get(src, i)) < 0) {
            jt_unslot(c);
            return -1;
        }
    }
    return 0;
}

int
jt_from_json(struct jt_node *o, const json_t *src)
{
    if (!o || !o->is_obj || !json_is_object(src))
        return -1;
    return jt_fill(o, src);
}
