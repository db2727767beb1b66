/* json.h - a small JSON writer for hot responses and log lines.
 *
 * Parsing into a tree is jansson's job (strict, src/api/schema.c); writing
 * is ours, because responses are built on every request and must not
 * allocate a tree, and so are the allocation-free checks below. Every
 * writer appends to an sp_buf and returns 0 or -ENOBUFS. */
#ifndef SP_CORE_JSON_H
#define SP_CORE_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"

/* Appends `s` as a JSON string literal, quotes included. Control bytes are
 * escaped; bytes >= 0x80 pass through unchanged when they form valid UTF-8
 * and are replaced by U+FFFD when they do not, so the output is always
 * valid JSON. */
int sp_json_str(sp_buf *b, sp_slice s);
static inline int sp_json_cstr(sp_buf *b, const char *s)
{
    return sp_json_str(b, sp_slice_cstr(s));
}
/* Appends `{"detail":"<msg>"}`, the shape of every spate error body. */
int sp_json_detail(sp_buf *b, sp_slice msg);

/* Returns true when `s` is exactly one syntactically valid JSON value
 * (RFC 8259, surrounding whitespace allowed, valid UTF-8 in strings,
 * nesting at most max_depth). Allocates nothing; linear time. Used where a
 * stored value is embedded raw in an envelope and must not break it. */
bool sp_json_valid(sp_slice s, unsigned max_depth);

/* Like sp_json_valid, but true only for values that every strict JSON
 * parser spate uses accepts as well (src/api/schema.c: duplicate keys,
 * NaN, \u0000, lone surrogates and big numbers refused), so the caller may
 * skip building a tree: no object has a key twice (objects of at most 16
 * keys, none escaped), no \u0000, numbers without an exponent and with at
 * most 15 digits, nesting at most min(max_depth, 32). false means "not
 * known": parse it fully, which accepts it or says what is wrong. */
bool sp_json_valid_plain(sp_slice s, unsigned max_depth);

/* Bytes at the start of [p, end) that can stand in a JSON string as they
 * are (0x20..0x7f but '"' and '\\'), counted eight at a time; the bytes
 * after the returned run still need a look one by one. */
static inline size_t sp_json_plain_run(const unsigned char *p, const unsigned char *end)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    const unsigned char *q = p;
    while (end - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        uint64_t quote = w ^ (ones * '"'), bslash = w ^ (ones * '\\');
        uint64_t special = (w | ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) |
                            ((bslash - ones) & ~bslash)) &
                           highs; /* a byte >= 0x80, < 0x20, '"' or '\\' */
        if (special)
            break;
        q += 8;
    }
    return (size_t)(q - p);
}

/* If `s` is a JSON array, stores the raw span of each element (whitespace
 * trimmed) in out[0..max) and returns the element count; returns -1 when
 * `s` is not a valid array (nesting at most max_depth) and -2 when it has
 * more than `max` elements. Lets a batch keep each record's bytes exactly
 * as the producer sent them. */
long sp_json_split_array(sp_slice s, unsigned max_depth, sp_slice *out, size_t max);
/* The same, with sp_json_valid_plain's rules: a count > 0 vouches for the
 * whole array (nesting counted from the array itself, as
 * sp_json_valid_plain(s, max_depth) counts it); -1 means "not known". */
long sp_json_split_array_plain(sp_slice s, unsigned max_depth, sp_slice *out, size_t max);

#endif
