/* json.h - a small JSON writer for hot responses and log lines.
 *
 * Parsing is jansson's job (strict, in src/api later); writing is ours,
 * because responses are built on every request and must not allocate a
 * tree. Every function appends to an sp_buf and returns 0 or -ENOBUFS. */
#ifndef SP_CORE_JSON_H
#define SP_CORE_JSON_H

#include <stdbool.h>

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

/* If `s` is a JSON array, stores the raw span of each element (whitespace
 * trimmed) in out[0..max) and returns the element count; returns -1 when
 * `s` is not a valid array (nesting at most max_depth) and -2 when it has
 * more than `max` elements. Lets a batch keep each record's bytes exactly
 * as the producer sent them. */
long sp_json_split_array(sp_slice s, unsigned max_depth, sp_slice *out, size_t max);

#endif
