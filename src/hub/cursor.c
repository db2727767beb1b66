/* cursor.c - resume points as text: "P-O", or "P-O,P-O,..." for a stream
 * over several partitions. A record's public id is "<partition>-<offset>";
 * as a resume point it means "everything after this record", so it parses
 * to next = offset + 1. Pure functions over bytes (fuzzable, unit-tested). */
#include <errno.h>

#include <string.h>

#include "core/alloc.h"
#include "hub/hub_int.h"

#define MAX_PARTITION 1023u /* the store's partition limit minus one */

/* Parses decimal digits at *p (at least one, no sign, no leading '+'),
 * up to `max`. Returns 0 and advances *p, or -EINVAL. */
static int digits(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (max - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
        s++;
    }
    if (s == *p)
        return -EINVAL;
    *p = s;
    *out = v;
    return 0;
}

static bool seen(const sp_hub_pos *out, size_t n, uint32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (out[i].partition == partition)
            return true;
    return false;
}

int sp_hub_cursor_parse(sp_slice text, sp_hub_pos *out, size_t cap)
{
    const char *p = text.base, *end = text.base + text.len;
    size_t n = 0;
    if (text.len == 0 || text.base == NULL)
        return -EINVAL;
    for (;;) {
        uint64_t part, off;
        if (digits(&p, end, MAX_PARTITION, &part) || p == end || *p++ != '-' ||
            digits(&p, end, UINT64_MAX - 1, &off))
            return -EINVAL;
        if (n == cap || seen(out, n, (uint32_t)part))
            return -EINVAL;
        out[n++] = (sp_hub_pos){(uint32_t)part, off + 1};
        if (p == end)
            return (int)n;
        if (*p++ != ',' || p == end)
            return -EINVAL;
    }
}

int sp_hub_start_parse(sp_slice v, sp_hub_start *st, sp_hub_pos **pos)
{
    unsigned long long n;
    if (sp_slice_eq_cstr(v, "earliest")) {
        st->kind = SP_HUB_FROM_EARLIEST;
    } else if (sp_slice_eq_cstr(v, "latest")) {
        st->kind = SP_HUB_FROM_LATEST;
    } else if (v.len > 5 && memcmp(v.base, "time:", 5) == 0) {
        if (sp_slice_to_u64(sp_slice_make(v.base + 5, v.len - 5), 1ull << 52, &n) != 0)
            return -EINVAL;
        st->kind = SP_HUB_FROM_TIME;
        st->time_ms = (int64_t)n;
    } else if (sp_slice_to_u64(v, ~0ull >> 1, &n) == 0) {
        st->kind = SP_HUB_FROM_OFFSET;
        st->offset = n;
    } else {
        size_t cap = 1; /* one position per comma-separated part, bounded */
        for (size_t i = 0; i < v.len; i++)
            cap += v.base[i] == ',';
        if (cap > SP_HUB_CURSOR_MAX)
            return -EINVAL;
        *pos = sp_xmalloc(cap * sizeof **pos);
        int k = sp_hub_cursor_parse(v, *pos, cap);
        if (k < 0)
            return -EINVAL;
        st->kind = SP_HUB_FROM_CURSOR;
        st->pos = *pos;
        st->npos = (size_t)k;
    }
    return 0;
}
