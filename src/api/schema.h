/* schema.h - strict JSON parsing and JSON Schema validation of produced records.
 *
 * Two halves, both pure functions over bytes and trees:
 *
 *  - sp_json_parse_strict() turns a request body into a jansson tree, or
 *    refuses it with a reason and the character position where it went
 *    wrong. A cheap pre-scan runs before jansson: it enforces the size and
 *    nesting limits (so a megabyte of `[[[[` never recurses), and rejects
 *    NUL bytes, `\u0000`, invalid UTF-8, lone surrogates and the NaN /
 *    Infinity literals with clear messages. jansson then rejects duplicate
 *    keys and trailing garbage. sp_json_parse_ndjson() does the same per
 *    line of an `application/x-ndjson` body, with line and column.
 *
 *  - sp_schema_compile() turns a JSON Schema (a documented subset of draft
 *    2020-12, below) into an opaque, immutable sp_schema that any thread may
 *    use; sp_schema_validate() checks a value against it and writes one
 *    FastAPI/pydantic-shaped entry per violation.
 *
 * Error bodies follow FastAPI 0.100+ / pydantic 2 exactly where pydantic has
 * an equivalent (see docs/internals/VALIDATION.md for the table, and for
 * where and why spate deliberately differs: no lax coercion of "12.5" into a
 * number, duplicate keys refused instead of last-wins).
 *
 * Supported schema subset (anything else is a compile error that names the
 * keyword and its JSON pointer, so a schema never validates less than its
 * author thinks):
 *   type (a name or an array of names: null boolean object array number
 *   integer string; 1.0 is an integer), properties, required,
 *   additionalProperties (boolean or schema), items (one schema), enum,
 *   const, minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers),
 *   minLength, maxLength (in Unicode code points), minItems, maxItems,
 *   pattern (POSIX ERE, unanchored search like ECMA-262; no back-references,
 *   bounded length, repetition counts and expanded size). Boolean schemas true/false are
 *   accepted anywhere a schema is. Annotations accepted and ignored: title,
 *   description, default, examples, $schema, $id, $comment, deprecated,
 *   readOnly, writeOnly. */
#ifndef SP_API_SCHEMA_H
#define SP_API_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

/* ---- strict JSON ---------------------------------------------------------- */

typedef struct sp_json_limits {
    size_t max_bytes;   /* a longer body is refused with -EMSGSIZE */
    size_t max_depth;   /* arrays/objects nested deeper are refused */
    size_t max_records; /* NDJSON only: more non-blank lines are refused */
} sp_json_limits;

#define SP_JSON_DEFAULT_MAX_BYTES   ((size_t)1 << 20)
#define SP_JSON_DEFAULT_MAX_DEPTH   64
#define SP_JSON_DEFAULT_MAX_RECORDS 10000
#define SP_JSON_LIMITS_DEFAULT                                                                     \
    ((sp_json_limits){.max_bytes = SP_JSON_DEFAULT_MAX_BYTES,                                      \
                      .max_depth = SP_JSON_DEFAULT_MAX_DEPTH,                                      \
                      .max_records = SP_JSON_DEFAULT_MAX_RECORDS})

typedef struct sp_json_error {
    int code;         /* the negative errno the parse function returned */
    size_t position;  /* characters (code points) from the start of the body */
    size_t offset;    /* the same place in bytes */
    size_t line;      /* 1-based line of the body */
    size_t column;    /* 1-based column in characters within that line */
    int ndjson;       /* set by sp_json_parse_ndjson: render line/column too */
    char reason[160]; /* a human-readable reason, NUL-terminated */
} sp_json_error;

/* Parses exactly one JSON value (any type, scalars included) from
 * buf[0..len) under `lim` (NULL means SP_JSON_LIMITS_DEFAULT). On success
 * stores a new reference in *out (the caller json_decref()s it) and returns
 * 0. On failure stores nothing in *out, fills *err (when not NULL) and
 * returns -EMSGSIZE when the body is longer than lim->max_bytes, or -EINVAL
 * for everything else: syntax, invalid UTF-8, NUL bytes or `\u0000`, lone
 * surrogates, NaN/Infinity, duplicate object keys, trailing bytes after the
 * value, nesting deeper than lim->max_depth, integers outside int64. */
int sp_json_parse_strict(const char *buf, size_t len, const sp_json_limits *lim, json_t **out,
                         sp_json_error *err);

/* Splits an NDJSON body: stores in *line the next line of *rest (without
 * its "\n" or "\r\n"), advances *rest past it and returns 1; returns 0 once
 * *rest is empty. Lines are returned as they are, blank ones included. */
int sp_json_next_line(sp_slice *rest, sp_slice *line);

/* Parses an `application/x-ndjson` body: one JSON value per line, blank
 * (whitespace-only) lines skipped, each line parsed as strictly as
 * sp_json_parse_strict. On success stores a new array of the values in
 * *out (the caller json_decref()s it) and returns 0; an empty body yields
 * an empty array. Stops at the first bad line: fills *err with the
 * position in the whole body plus the line and column, and returns
 * -EINVAL, or -EMSGSIZE when the body passes lim->max_bytes or has more
 * than lim->max_records records. */
int sp_json_parse_ndjson(const char *buf, size_t len, const sp_json_limits *lim, json_t **out,
                         sp_json_error *err);

/* Appends the FastAPI entry for a decode error, without the surrounding
 * `{"detail":[...]}`:
 * {"type":"json_invalid","loc":["body",<position>],"msg":"JSON decode error",
 *  "input":{},"ctx":{"error":"<reason>"}}  (ctx also has "line" and
 * "column" for NDJSON). Returns 0 or -ENOBUFS (the buffer is unchanged). */
int sp_json_error_render(sp_buf *b, const sp_json_error *err);

/* ---- JSON Schema ---------------------------------------------------------- */

typedef struct sp_schema sp_schema; /* opaque, immutable once compiled */

#define SP_SCHEMA_MAX_DEPTH         32   /* nested subschemas */
#define SP_SCHEMA_MAX_NODES         4096 /* subschemas in one schema */
#define SP_SCHEMA_MAX_PROPERTIES    256  /* properties / required per object */
#define SP_SCHEMA_MAX_ENUM          256  /* enum members */
#define SP_SCHEMA_MAX_PATTERN       256  /* bytes of one pattern */
#define SP_SCHEMA_MAX_REPEAT        100  /* any {m,n} bound in a pattern */
#define SP_SCHEMA_MAX_PATTERN_NODES 1000 /* a pattern with + and {m,n} expanded */

/* The seed articles' Item model (name: str; description: str | None;
 * price: float; tax: float | None) as a JSON Schema, for POST /items. */
extern const char sp_schema_item_json[];

/* Compiles `schema` (not retained: the compiled form copies what it needs).
 * On success stores a new sp_schema in *out and returns 0. On failure
 * returns -EINVAL and writes a message naming the offending keyword and its
 * JSON pointer (e.g. "unknown keyword 'format' at /properties/name") into
 * errbuf (when errlen > 0), or -E2BIG when a limit above is exceeded. */
int sp_schema_compile(const json_t *schema, sp_schema **out, char *errbuf, size_t errlen);

/* Frees a compiled schema; NULL is allowed. */
void sp_schema_free(sp_schema *s);

/* Validates `value` against `s`. Appends one FastAPI-shaped entry per
 * violation to `errors` (which may be NULL to only count):
 *   {"type":...,"loc":["body",...path],"msg":...,"input":...[,"ctx":{...}]}
 * Each entry is preceded by a comma unless `errors` is empty or ends in
 * '[', so a caller can write `{"detail":[`, validate one or more values and
 * close with `]}`. Stops after `max_errors` violations (0 means: stop at the
 * first and append nothing) or when the next entry does not fit the
 * buffer's limit (that entry is dropped whole but still counted, so a
 * too-small buffer never turns an invalid value valid). `value` NULL means "no
 * body" and, like a JSON null the schema does not allow at the root, gives
 * FastAPI's {"type":"missing","loc":["body"],...}. Returns the number of
 * violations found (0: valid). */
int sp_schema_validate(const sp_schema *s, const json_t *value, sp_buf *errors, size_t max_errors);

/* Same, with the loc prefix given as raw JSON array members instead of
 * "\"body\"" (for example "\"body\",3" for the fourth record of a batch).
 * `loc_prefix` must be valid JSON members; it is copied as is. */
int sp_schema_validate_at(const sp_schema *s, const json_t *value, const char *loc_prefix,
                          sp_buf *errors, size_t max_errors);

#endif
