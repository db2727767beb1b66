/* alloc.c - see alloc.h. */
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n, const char *file, int line)
{
    fprintf(stderr,
            "{\"level\":\"fatal\",\"msg\":\"out of memory\",\"bytes\":%zu,\"at\":\"%s:%d\"}\n", n,
            file, line);
    abort();
}

void *sp__xmalloc(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n, file, line);
    return p;
}

void *sp__xcalloc(size_t count, size_t n, const char *file, int line)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        oom(count * n, file, line);
    return p;
}

void *sp__xrealloc(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n, file, line);
    return q;
}

char *sp__xstrndup(const char *s, size_t n, const char *file, int line)
{
    char *d = sp__xmalloc(n + 1, file, line);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *sp__xstrdup(const char *s, const char *file, int line)
{
    return sp__xstrndup(s, strlen(s), file, line);
}
