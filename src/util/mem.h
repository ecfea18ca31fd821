/* mem.h - the one allocation wrapper; tests can make the Nth allocation fail. */
#ifndef SMTPSNIFF_MEM_H
#define SMTPSNIFF_MEM_H

#include <stddef.h>

/* All return NULL on failure (never abort): the caller sheds the work it was doing. */
void *mem_alloc(size_t n);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);
/* Copies len bytes and adds a NUL; caller frees. */
char *mem_strndup(const char *s, size_t len);

/* Torture mode for tests: the allocation after `n` more succeed fails (n < 0: never). */
void mem_fail_after(long n);

#endif
