/* slice.h - a pointer and a length, the unit every layer passes bytes in.
 *
 * A slice never owns its bytes; whoever made it says how long they live.
 * Write paths take arrays of slices and never join them just to write. */
#ifndef SP_CORE_SLICE_H
#define SP_CORE_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct sp_slice {
    const char *base;
    size_t len;
} sp_slice;

#define SP_SLICE_LIT(s) ((sp_slice){"" s, sizeof(s) - 1})
#define SP_SLICE_NULL   ((sp_slice){NULL, 0})

static inline sp_slice sp_slice_make(const char *base, size_t len)
{
    return (sp_slice){base, len};
}

static inline sp_slice sp_slice_cstr(const char *s)
{
    return (sp_slice){s, s ? strlen(s) : 0};
}

static inline bool sp_slice_eq(sp_slice a, sp_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

/* ASCII case-insensitive comparison, for header names and tokens. */
static inline bool sp_slice_case_eq(sp_slice a, sp_slice b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.base, b.base, a.len) == 0);
}

static inline bool sp_slice_eq_cstr(sp_slice a, const char *s)
{
    return sp_slice_eq(a, sp_slice_cstr(s));
}

/* Parses an unsigned decimal with no sign, spaces or leading '+'. Returns 0
 * and stores the value, or -1 when the slice is empty, has another byte, or
 * exceeds `max`. */
int sp_slice_to_u64(sp_slice s, unsigned long long max, unsigned long long *out);

#endif
