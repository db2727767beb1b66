/* alloc.h - allocation that never returns NULL.
 *
 * Out-of-memory is decided once, here (redis zmalloc, h2o): every sp_x*
 * function aborts the process with the caller's file and line when the
 * allocator fails. Sizes that a peer controls must be checked against a
 * configured limit before they reach these functions. */
#ifndef SP_CORE_ALLOC_H
#define SP_CORE_ALLOC_H

#include <stddef.h>

void *sp__xmalloc(size_t n, const char *file, int line);
void *sp__xcalloc(size_t count, size_t n, const char *file, int line);
void *sp__xrealloc(void *p, size_t n, const char *file, int line);
char *sp__xstrdup(const char *s, const char *file, int line);
char *sp__xstrndup(const char *s, size_t n, const char *file, int line);

#define sp_xmalloc(n)     sp__xmalloc((n), __FILE__, __LINE__)
#define sp_xcalloc(c, n)  sp__xcalloc((c), (n), __FILE__, __LINE__)
#define sp_xrealloc(p, n) sp__xrealloc((p), (n), __FILE__, __LINE__)
#define sp_xstrdup(s)     sp__xstrdup((s), __FILE__, __LINE__)
#define sp_xstrndup(s, n) sp__xstrndup((s), (n), __FILE__, __LINE__)

/* Returns the struct of type `type` whose member `member` is at `ptr`. */
#define sp_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define SP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
