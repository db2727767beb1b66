/* buf.h - a growable byte buffer with a hard limit (curl's dynbuf).
 *
 * Every buffer a peer can grow has a limit fixed at init; an append that
 * would pass it fails with -ENOBUFS and leaves the buffer as it was, so the
 * caller can answer 413/431 or apply its slow-client policy. Growth is
 * geometric; `base` is always NUL-terminated past `len` for convenience. */
#ifndef SP_CORE_BUF_H
#define SP_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/slice.h"

typedef struct sp_buf {
    char *base;
    size_t len;
    size_t cap;   /* allocated bytes, excluding the terminating NUL */
    size_t limit; /* len may never exceed this */
} sp_buf;

#define SP_BUF_UNLIMITED ((size_t)-1 / 2)

/* Initializes an empty buffer that may grow to `limit` bytes. Allocates
 * nothing until the first append. */
void sp_buf_init(sp_buf *b, size_t limit);
/* Frees the storage; the buffer may be initialized again. */
void sp_buf_free(sp_buf *b);
/* Keeps the storage, forgets the contents. */
static inline void sp_buf_reset(sp_buf *b)
{
    b->len = 0;
    if (b->base)
        b->base[0] = '\0';
}
/* Ensures room for `extra` more bytes. Returns 0 or -ENOBUFS. */
int sp_buf_reserve(sp_buf *b, size_t extra);
/* Appends bytes. Returns 0, or -ENOBUFS (the buffer is unchanged). */
int sp_buf_append(sp_buf *b, const void *p, size_t n);
static inline int sp_buf_append_slice(sp_buf *b, sp_slice s)
{
    return sp_buf_append(b, s.base, s.len);
}
static inline int sp_buf_append_cstr(sp_buf *b, const char *s)
{
    return sp_buf_append(b, s, strlen(s));
}
int sp_buf_putc(sp_buf *b, char c);
/* printf-style append. Returns 0 or -ENOBUFS (the buffer is unchanged). */
int sp_buf_printf(sp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sp_buf_vprintf(sp_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends a decimal integer (faster than printf on hot paths). */
int sp_buf_append_u64(sp_buf *b, unsigned long long v);
int sp_buf_append_i64(sp_buf *b, long long v);
/* Removes the first n bytes. */
void sp_buf_consume(sp_buf *b, size_t n);

static inline sp_slice sp_buf_slice(const sp_buf *b)
{
    return (sp_slice){b->base, b->len};
}

/* Writes the decimal digits of v into out (>= 20 bytes); returns the length. */
size_t sp_u64_to_dec(unsigned long long v, char *out);

#endif
