/* mem.c - allocation wrapper with failure injection for tests. */
#include "mem.h"

#include <stdlib.h>
#include <string.h>

static long mem_countdown = -1;

static int
mem_should_fail(void)
{
    if (mem_countdown < 0)
        return 0;
    if (mem_countdown == 0)
        return 1;
    mem_countdown--;
    return 0;
}

void
mem_fail_after(long n)
{
    mem_countdown = n;
}

void *
mem_alloc(size_t n)
{
    if (mem_should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *
mem_calloc(size_t count, size_t size)
{
    if (mem_should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *
mem_realloc(void *p, size_t n)
{
    if (mem_should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void
mem_free(void *p)
{
    free(p);
}

char *
mem_strndup(const char *s, size_t len)
{
    char *d = mem_alloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
