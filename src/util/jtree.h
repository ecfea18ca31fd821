/* jtree.h - the session report as a JSON tree in one arena: built with the setters below,
 * read by the rules, written by jt_dump exactly as Jansson writes the same tree made by
 * jt_to_json (JX_DUMP_FLAGS; keys in the order of jsonx.h). A report is a few hundred values made
 * and dropped together; Jansson spends a hash table, a key copy and an allocation on each, and a
 * walk to free them.
 *
 * Ownership: every value lives in its tree's arena and goes with jt_free. Keys are not
 * copied: they must outlive the tree (our own literals and name tables), and they are
 * printable ASCII without '"' or '\\', written as they are (asserted in debug builds; keys
 * copied from Jansson by jt_from_json may be anything). Strings are copied.
 * A setter given a NULL container does nothing, so a chain of builders needs no checks; a
 * failed allocation is remembered by the tree (jt_failed) and the value is left out. */
#ifndef SMTPSNIFF_JTREE_H
#define SMTPSNIFF_JTREE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "jsonx.h"

enum jt_type {
    JT_NULL,
    JT_FALSE,
    JT_TRUE,
    JT_INT,
    JT_MS,   /* milliseconds, kept as microseconds: the real jx_ms(us) makes */
    JT_REAL, /* any other real */
    JT_STR,  /* valid UTF-8 (wire bytes already escaped as jx_bytes does), len bytes */
    JT_OBJ,
    JT_ARR
};

struct jt_node;

struct jt_val {
    enum jt_type type;
    uint32_t len; /* JT_STR */
    union {
        int64_t i; /* JT_INT; JT_MS: microseconds */
        double d;  /* JT_REAL */
        const char *s;
        struct jt_node *c; /* JT_OBJ, JT_ARR */
    } u;
};

struct jt;

struct jt *jt_new(void); /* NULL on allocation failure */
void jt_free(struct jt *t);
/* Empties t for the next report, keeping its memory (within a bound): a session manager
 * builds one report at a time. Everything read from t before is gone. */
void jt_reset(struct jt *t);
/* The top-level object. */
struct jt_node *jt_root(struct jt *t);
/* Whether any allocation failed: the tree then lacks what could not be added. */
int jt_failed(const struct jt *t);

/* ---- building ---- */

/* Object members. A key set twice keeps the last value, as json_object_set does. */
void jt_set_null(struct jt_node *o, const char *key);
void jt_set_bool(struct jt_node *o, const char *key, int v);
void jt_set_int(struct jt_node *o, const char *key, int64_t v);
void jt_set_ms(struct jt_node *o, const char *key, int64_t us);
void jt_set_real(struct jt_node *o, const char *key, double v);
/* Wire bytes, as jx_bytes makes them (invalid UTF-8 as \xNN). */
void jt_set_bytes(struct jt_node *o, const char *key, const uint8_t *p, size_t n);
/* Our own NUL-terminated text, as jx_str makes it. */
void jt_set_str(struct jt_node *o, const char *key, const char *s);
/* A string known to be valid UTF-8 that outlives the tree (our names and literals, or a
 * string read from this tree): not copied. */
void jt_set_lit(struct jt_node *o, const char *key, const char *lit);
/* RFC 3339 time, as jx_time makes it. */
void jt_set_time(struct jt_node *o, const char *key, int64_t ts_us);
/* New empty object/array as the member; NULL when o is NULL or memory ran out. */
struct jt_node *jt_set_obj(struct jt_node *o, const char *key);
struct jt_node *jt_set_arr(struct jt_node *o, const char *key);
/* A container of o's tree attached nowhere yet (attach it with jt_set_val/jt_push_val as
 * {JT_OBJ or JT_ARR, .u.c = node}): for what is built before its place is known. */
struct jt_node *jt_new_obj(struct jt_node *o);
struct jt_node *jt_new_arr(struct jt_node *o);
/* A value read from a tree (the same tree or one outliving this one): containers are
 * shared, not copied. */
void jt_set_val(struct jt_node *o, const char *key, const struct jt_val *v);

/* Array elements. */
void jt_push_int(struct jt_node *a, int64_t v);
void jt_push_bytes(struct jt_node *a, const uint8_t *p, size_t n);
void jt_push_str(struct jt_node *a, const char *s);
void jt_push_lit(struct jt_node *a, const char *lit);
void jt_push_val(struct jt_node *a, const struct jt_val *v);
struct jt_node *jt_push_obj(struct jt_node *a);

/* ---- reading ---- */

/* Member by key (the last value set), NULL when absent or o is NULL. */
const struct jt_val *jt_get(const struct jt_node *o, const char *key);
const struct jt_val *jt_getn(const struct jt_node *o, const char *key, size_t klen);
/* Members of an object (each key once, the last value) or elements of an array. */
size_t jt_size(const struct jt_node *c);
/* Element i of an array, NULL past the end. */
const struct jt_val *jt_at(const struct jt_node *a, size_t i);
/* Members of an object as set (a key set twice counts twice). */
size_t jt_members(const struct jt_node *o);

/* Typed views of a value; NULL v is allowed everywhere. */
const char *jt_str(const struct jt_val *v);           /* NULL unless JT_STR */
int64_t jt_int(const struct jt_val *v, int64_t dflt); /* JT_INT, else dflt */
double jt_num(const struct jt_val *v, double dflt);   /* JT_INT, JT_MS, JT_REAL, else dflt */
int jt_is_true(const struct jt_val *v);
int jt_is_false(const struct jt_val *v);
int jt_is_null(const struct jt_val *v);
struct jt_node *jt_obj(const struct jt_val *v); /* NULL unless JT_OBJ */
struct jt_node *jt_arr(const struct jt_val *v); /* NULL unless JT_ARR */

/* ---- writing ---- */

/* Appends object or array c as jx_dump would write the equivalent Jansson tree, with the
 * splices' members (top-level object only) at their places in the key order. JX_DUMP_* codes; on
 * failure b->len is as it was. */
int jt_dump(const struct jt_node *c, const struct jx_splice *sp, size_t nsp, struct buf *b);

/* The same tree as Jansson values (text view, tests, the summary's readers), each object's
 * members set in the written order, so json_dumps(.., JX_DUMP_FLAGS) gives jt_dump's bytes:
 * a new reference, NULL on allocation failure. */
json_t *jt_to_json(const struct jt_node *c);
/* Adds Jansson object src's members to object o (copied; keys too). -1 on failure. */
int jt_from_json(struct jt_node *o, const json_t *src);

#endif
