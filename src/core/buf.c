/* buf.c - see buf.h. */
#include "core/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/alloc.h"

void sp_buf_init(sp_buf *b, size_t limit)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void sp_buf_free(sp_buf *b)
{
    free(b->base);
    sp_buf_init(b, b->limit);
}

int sp_buf_reserve(sp_buf *b, size_t extra)
{
    if (extra > b->limit - b->len)
        return -ENOBUFS;
    size_t need = b->len + extra;
    if (need <= b->cap && b->base != NULL)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap * 2;
    if (cap > b->limit)
        cap = b->limit;
    b->base = sp_xrealloc(b->base, cap + 1);
    b->cap = cap;
    return 0;
}

int sp_buf_append(sp_buf *b, const void *p, size_t n)
{
    int rc = sp_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->base + b->len, p, n);
    b->len += n;
    b->base[b->len] = '\0';
    return 0;
}

int sp_buf_putc(sp_buf *b, char c)
{
    if (b->len < b->cap && b->base) {
        b->base[b->len++] = c;
        b->base[b->len] = '\0';
        return 0;
    }
    return sp_buf_append(b, &c, 1);
}

int sp_buf_vprintf(sp_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return sp_buf_append(b, small, (size_t)n);
    int rc = sp_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sp_buf_printf(sp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sp_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

size_t sp_u64_to_dec(unsigned long long v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

int sp_buf_append_u64(sp_buf *b, unsigned long long v)
{
    char tmp[20];
    return sp_buf_append(b, tmp, sp_u64_to_dec(v, tmp));
}

int sp_buf_append_i64(sp_buf *b, long long v)
{
    if (v >= 0)
        return sp_buf_append_u64(b, (unsigned long long)v);
    char tmp[21];
    tmp[0] = '-';
    size_t n = sp_u64_to_dec(0ULL - (unsigned long long)v, tmp + 1);
    return sp_buf_append(b, tmp, n + 1);
}

void sp_buf_consume(sp_buf *b, size_t n)
{
    if (n >= b->len) {
        sp_buf_reset(b);
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
    b->base[b->len] = '\0';
}

int sp_slice_to_u64(sp_slice s, unsigned long long max, unsigned long long *out)
{
    if (s.len == 0 || s.len > 20)
        return -1;
    unsigned long long v = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (c < '0' || c > '9')
            return -1;
        unsigned d = c - '0';
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}
