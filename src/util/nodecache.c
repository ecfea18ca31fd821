/* nodecache.c - recycles the small blocks of Jansson trees (see nodecache.h). */
#include "nodecache.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "mem.h"

/* Sanitizer builds keep Jansson on the plain allocator: a recycled block would hide a use
 * after free from AddressSanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define NC_DISABLED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NC_DISABLED 1
#endif
#endif

/* Each block starts with a header naming its class; 16 bytes keep the payload aligned as
 * malloc's is. Classes step by 16 bytes up to NC_MAX_BLOCK bytes with the header. */
#define NC_HEADER 16
#define NC_STEP 16
#define NC_MAX_BLOCK 512
#define NC_CLASSES (NC_MAX_BLOCK / NC_STEP)
#define NC_LARGE 0xffffu
/* What one class may hold while free: a session's tree is built and freed before the next
 * one, so this covers the largest tree's share of a class and bounds the cache at
 * NC_CLASSES * NC_CLASS_BYTES (4 MiB). */
#define NC_CLASS_BYTES (128u << 10)

#ifndef NC_DISABLED
struct nc_free {
    struct nc_free *next;
};

struct nc_class {
    struct nc_free *head;
    size_t count, max;
};

static struct nc_class nc_classes[NC_CLASSES];

static void *
nc_alloc(size_t n)
{
    if (n > SIZE_MAX - NC_HEADER - NC_STEP)
        return NULL;
    size_t total = (n + NC_HEADER + NC_STEP - 1) / NC_STEP * NC_STEP;
    unsigned cls = total <= NC_MAX_BLOCK ? (unsigned)(total / NC_STEP) - 1 : NC_LARGE;
    uint8_t *b;
    if (cls != NC_LARGE && nc_classes[cls].head) {
        struct nc_class *c = &nc_classes[cls];
        b = (uint8_t *)c->head;
        c->head = c->head->next;
        c->count--;
    } else {
        b = mem_alloc(total);
        if (!b)
            return NULL;
    }
    *(uint32_t *)b = cls;
    return b + NC_HEADER;
}

static void
nc_release(void *p)
{
    if (!p)
        return;
    uint8_t *b = (uint8_t *)p - NC_HEADER;
    uint32_t cls = *(uint32_t *)b;
    if (cls < NC_CLASSES) {
        struct nc_class *c = &nc_classes[cls];
        if (c->count < c->max) {
            struct nc_free *f = (struct nc_free *)b;
            f->next = c->head;
            c->head = f;
            c->count++;
            return;
        }
    }
    mem_free(b);
}

#endif

void
nodecache_install(void)
{
#ifndef NC_DISABLED
    for (unsigned i = 0; i < NC_CLASSES; i++)
        nc_classes[i].max = NC_CLASS_BYTES / ((i + 1) * NC_STEP);
    json_set_alloc_funcs(nc_alloc, nc_release);
#endif
}
