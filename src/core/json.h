/* json.h - a small JSON writer for hot responses and log lines.
 *
 * Parsing is jansson's job (strict, in src/api later); writing is ours,
 * because responses are built on every request and must not allocate a
 * tree. Every function appends to an sp_buf and returns 0 or -ENOBUFS. */
#ifndef SP_CORE_JSON_H
#define SP_CORE_JSON_H

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

#endif
