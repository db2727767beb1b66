/* schema.c - strict JSON parsing and a JSON Schema subset; see schema.h.
 *
 * Parsing: prescan() walks the bytes once, tracking only "inside a string"
 * and the nesting depth, and refuses what jansson would either accept
 * (nothing, with the flags below) or refuse with a vague message: NUL,
 * invalid UTF-8, `\u0000`, lone surrogates, NaN/Infinity, too deep. jansson
 * then builds the tree with JSON_REJECT_DUPLICATES and its end-of-input
 * check; its byte position is turned back into a character position.
 *
 * Validation: compile() turns the schema into a tree of `node`s with every
 * keyword decoded (numbers, lengths, regex_t, rendered enum text), so
 * validate() does no allocation besides appending to the error buffer. A
 * path stack (bounded by the schema depth) gives each error its loc. Error
 * texts mirror pydantic 2 (captured from the real thing, see
 * tests/schema/oracle/). */
#define _GNU_SOURCE
#include "api/schema.h"

#include <errno.h>
#include <math.h> /* signbit, a macro: no libm needed */
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/json.h"

/* ============================================================ strict JSON */

/* Length of the valid UTF-8 sequence at p (2..4 bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
    static const unsigned min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
    if (p[0] < 0xc2 || p[0] > 0xf4 || avail < n)
        return 0;
    unsigned cp = p[0] & (0x7fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3fu);
    }
    if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Characters (code points) in p[0..n); p is valid UTF-8 up to n. */
static size_t count_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xc0) != 0x80;
    return c;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The \uXXXX value at p (p points at the backslash), or -1. */
static long u_escape(const char *p, size_t avail)
{
    if (avail < 6 || p[0] != '\\' || p[1] != 'u')
        return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static int set_error(sp_json_error *err, const char *buf, size_t off, int code, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static int set_error(sp_json_error *err, const char *buf, size_t off, int code, const char *fmt,
                     ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
    err->code = code;
    err->offset = off;
    err->position = count_chars(buf, off);
    size_t line_start = 0;
    err->line = 1;
    for (size_t i = 0; i < off; i++) {
        if (buf[i] == '\n') {
            err->line++;
            line_start = i + 1;
        }
    }
    err->column = count_chars(buf + line_start, off - line_start) + 1;
    return code;
}

/* Checks one string escape at buf[i] (a backslash). Returns the bytes it
 * spans, or 0 after filling *err. Malformed escapes are left to jansson. */
static size_t scan_escape(const char *buf, size_t len, size_t i, sp_json_error *err)
{
    long u = u_escape(buf + i, len - i);
    if (u < 0)
        return 2;
    if (u == 0) {
        set_error(err, buf, i, -EINVAL, "\\u0000 (NUL) is not allowed in strings");
        return 0;
    }
    if (u >= 0xdc00 && u <= 0xdfff) {
        set_error(err, buf, i, -EINVAL, "lone surrogate \\u%04lx", (unsigned long)u);
        return 0;
    }
    if (u >= 0xd800 && u <= 0xdbff) {
        long lo = u_escape(buf + i + 6, len - i - 6);
        if (lo < 0xdc00 || lo > 0xdfff) {
            set_error(err, buf, i, -EINVAL, "lone surrogate \\u%04lx", (unsigned long)u);
            return 0;
        }
        return 12;
    }
    return 6;
}

/* NaN, Infinity and -Infinity are what non-strict encoders emit; name them. */
static bool is_nonfinite_word(const char *p, size_t avail)
{
    static const char *const words[] = {"NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"};
    for (size_t w = 0; w < SP_ARRAY_LEN(words); w++) {
        size_t n = strlen(words[w]);
        if (avail >= n && memcmp(p, words[w], n) == 0)
            return true;
    }
    return false;
}

static int prescan(const char *buf, size_t len, size_t max_depth, sp_json_error *err)
{
    size_t depth = 0;
    bool in_str = false;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        if (c == 0)
            return set_error(err, buf, i, -EINVAL, "NUL byte");
        if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)buf + i, len - i);
            if (!n)
                return set_error(err, buf, i, -EINVAL, "invalid UTF-8 byte 0x%02x", c);
            i += n;
            continue;
        }
        if (in_str) {
            if (c == '\\') {
                size_t n = scan_escape(buf, len, i, err);
                if (!n)
                    return -EINVAL;
                i += n;
                continue;
            }
            in_str = c != '"';
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return set_error(err, buf, i, -EINVAL, "nesting deeper than %zu", max_depth);
        } else if (c == ']' || c == '}') {
            depth -= depth > 0;
        } else if ((c == 'N' || c == 'I' || c == 'n' || c == 'i' || c == '-') &&
                   is_nonfinite_word(buf + i, len - i)) {
            return set_error(err, buf, i, -EINVAL, "NaN and Infinity are not valid JSON");
        }
        i++;
    }
    return 0;
}

/* jansson reports the byte just past the token it choked on and quotes the
 * token ("... near 'x'"); step back to the token's start when they agree. */
static size_t jansson_error_offset(const char *buf, size_t len, const json_error_t *je)
{
    size_t pos = je->position > 0 ? (size_t)je->position : 0;
    if (pos > len)
        pos = len;
    const char *near = strstr(je->text, " near '");
    if (near) {
        near += 7;
        size_t n = strlen(near);
        if (n > 0 && near[n - 1] == '\'')
            n--;
        if (n <= pos && memcmp(buf + pos - n, near, n) == 0)
            pos -= n;
    }
    return pos;
}

/* ---- the fast path ----------------------------------------------------------
 *
 * Most bodies are small, plain and valid. fast_value() parses those in one
 * pass, building the same jansson tree json_loadb would (same types, same
 * member order, same numbers), without jansson's character-at-a-time lexer.
 * It never reports an error: on anything it does not handle exactly like
 * the full path (escaped surrogates, long numbers, any syntax error,
 * duplicate keys, control characters, invalid UTF-8, a value nested past
 * the limit) it gives up, frees what it built, and the full path (prescan +
 * jansson) parses the body again and words the error. So the fast path can
 * only make a body cheaper, never change what is accepted or how. */

#define FAST_MAX_DEPTH  256 /* recursion bound of the fast path (the limit may be higher) */
#define FAST_NUMBER_MAX 64  /* longer numbers take the full path */

typedef struct fast {
    const char *p, *end;
    size_t depth, max_depth;
    char *tmp; /* decoded escaped strings; grown on demand */
    size_t tmp_cap;
} fast;

static void fast_ws(fast *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\n' || *f->p == '\r' || *f->p == '\t'))
        f->p++;
}

static json_t *fast_value(fast *f);

/* Exact powers of ten as doubles (10^22 is the largest exactly representable). */
static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A real from its digits: exact (one rounding, like strtod) when the
 * significand fits 2^53 and the power of ten is exact (Clinger's fast
 * path); otherwise strtod on a NUL-terminated copy. Returns false when the
 * value overflows (the full path reports it). */
static bool fast_real(const char *s, size_t n, uint64_t mant, int ndig, int exp10, bool neg,
                      double *out)
{
    if (ndig <= 15 && exp10 >= -22 && exp10 <= 22) {
        double d = (double)mant;
        d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
        *out = neg ? -d : d;
        return true;
    }
    char copy[FAST_NUMBER_MAX + 1];
    memcpy(copy, s, n);
    copy[n] = '\0';
    errno = 0;
    double d = strtod(copy, NULL);
    if (errno == ERANGE && d != 0)
        return false; /* jansson: "real number overflow" */
    *out = d;
    return true;
}

/* The JSON number grammar; integers of at most 18 digits become integers,
 * anything with a fraction or exponent a real (jansson's rule). */
static json_t *fast_number(fast *f)
{
    const char *s = f->p, *p = s, *end = f->end;
    bool neg = p < end && *p == '-';
    p += neg;
    if (p == end || *p < '0' || *p > '9' ||
        (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9'))
        return NULL;
    uint64_t mant = 0;
    int ndig = 0, exp10 = 0; /* significant digits kept in mant */
    bool real = false;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        if (ndig || *p != '0') {
            if (ndig < 19)
                mant = mant * 10 + (uint64_t)(*p - '0');
            else
                exp10++;
            ndig++;
        }
    int int_digits = ndig;
    if (p < end && *p == '.') {
        real = true;
        if (++p == end || *p < '0' || *p > '9')
            return NULL;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (ndig || *p != '0') {
                if (ndig < 19) {
                    mant = mant * 10 + (uint64_t)(*p - '0');
                    exp10--;
                }
                ndig++;
            } else {
                exp10--;
            }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = true;
        p++;
        bool eneg = p < end && *p == '-';
        p += p < end && (*p == '-' || *p == '+');
        if (p == end || *p < '0' || *p > '9')
            return NULL;
        int e = 0;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (e < 10000)
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    size_t n = (size_t)(p - s);
    if (n > FAST_NUMBER_MAX)
        return NULL;
    f->p = p;
    if (!real) {
        if (int_digits > 18)
            return NULL; /* may not fit int64: the full path decides */
        return json_integer(neg ? -(json_int_t)mant : (json_int_t)mant);
    }
    double d;
    if (!fast_real(s, n, mant, ndig, exp10, neg, &d))
        return NULL;
    return json_real(d);
}

/* Decodes the escapes of s[0..n) (which fast_string checked) into f->tmp. */
static size_t fast_unescape(fast *f, const char *s, size_t n)
{
    if (f->tmp_cap < n) {
        free(f->tmp);
        f->tmp_cap = n < 256 ? 256 : n;
        f->tmp = sp_xmalloc(f->tmp_cap);
    }
    char *o = f->tmp;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            *o++ = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'u') {
            long u = u_escape(s + i - 1, n - i + 1);
            i += 4;
            if (u < 0x80) {
                *o++ = (char)u;
            } else if (u < 0x800) {
                *o++ = (char)(0xc0 | u >> 6);
                *o++ = (char)(0x80 | (u & 0x3f));
            } else {
                *o++ = (char)(0xe0 | u >> 12);
                *o++ = (char)(0x80 | (u >> 6 & 0x3f));
                *o++ = (char)(0x80 | (u & 0x3f));
            }
            continue;
        }
        *o++ = c == 'b'   ? '\b'
               : c == 'f' ? '\f'
               : c == 'n' ? '\n'
               : c == 'r' ? '\r'
               : c == 't' ? '\t'
                          : c;
    }
    return (size_t)(o - f->tmp);
}

/* Checks the string at f->p (its opening quote) and stores its raw span.
 * Gives up on control characters, invalid UTF-8, \u0000, surrogate
 * escapes and unknown escapes. *escaped tells whether decoding is needed. */
static bool fast_string_span(fast *f, sp_slice *raw, bool *escaped)
{
    const unsigned char *p = (const unsigned char *)f->p + 1, *end = (const unsigned char *)f->end;
    const unsigned char *start = p;
    *escaped = false;
    for (;;) {
        p += sp_json_plain_run(p, end);
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p == end || *p < 0x20)
            return false;
        if (*p == '"')
            break;
        if (*p == '\\') {
            *escaped = true;
            if (p + 1 == end)
                return false;
            unsigned char c = p[1];
            if (c == 'u') {
                long u = u_escape((const char *)p, (size_t)(end - p));
                if (u <= 0 || (u >= 0xd800 && u <= 0xdfff))
                    return false;
                p += 6;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                p += 2;
            } else {
                return false;
            }
            continue;
        }
        size_t n = utf8_len(p, (size_t)(end - p)); /* *p >= 0x80 */
        if (!n)
            return false;
        p += n;
    }
    *raw = sp_slice_make((const char *)start, (size_t)(p - start));
    f->p = (const char *)p + 1;
    return true;
}

/* A string value, or NULL to give up. Keys go through fast_string_span. */
static json_t *fast_string(fast *f)
{
    sp_slice raw;
    bool escaped;
    if (!fast_string_span(f, &raw, &escaped))
        return NULL;
    if (!escaped)
        return json_stringn_nocheck(raw.base, raw.len);
    size_t n = fast_unescape(f, raw.base, raw.len);
    return json_stringn_nocheck(f->tmp, n);
}

/* The keys of one object so far, for the duplicate check: plain (unescaped)
 * keys are compared as bytes while there are few of them, which is much
 * cheaper than jansson's hashed lookup; otherwise the object is asked. */
#define FAST_SEEN_KEYS 16

typedef struct fast_key {
    char buf[256]; /* an escaped key, decoded (longer ones are allocated) */
    char *base;    /* the key's bytes: in the body, in buf, or allocated */
    size_t len;
    bool owned; /* base was allocated */
} fast_key;

typedef struct fast_seen {
    sp_slice keys[FAST_SEEN_KEYS];
    size_t n;
    bool complete; /* keys[] holds every key of the object */
} fast_seen;

static void fast_key_free(fast_key *k)
{
    if (k->owned)
        free(k->base);
}

static bool fast_is_dup(json_t *obj, fast_seen *seen, const fast_key *k, bool plain)
{
    if (!seen->complete || !plain)
        return json_object_getn(obj, k->base, k->len) != NULL;
    for (size_t i = 0; i < seen->n; i++)
        if (seen->keys[i].len == k->len && memcmp(seen->keys[i].base, k->base, k->len) == 0)
            return true;
    return false;
}

static void fast_remember(fast_seen *seen, const fast_key *k, bool plain)
{
    if (seen->complete && plain && seen->n < FAST_SEEN_KEYS)
        seen->keys[seen->n++] = sp_slice_make(k->base, k->len);
    else
        seen->complete = false;
}

/* Reads `"key"` at f->p into k. An escaped key is decoded into tmp, which
 * the member's value may reuse: it is copied into k until it is set. */
static bool fast_read_key(fast *f, fast_key *k, bool *plain)
{
    sp_slice raw;
    bool escaped;
    if (f->p == f->end || *f->p != '"' || !fast_string_span(f, &raw, &escaped))
        return false;
    *plain = !escaped;
    k->base = (char *)raw.base;
    k->len = raw.len;
    k->owned = false;
    if (escaped) {
        k->len = fast_unescape(f, raw.base, raw.len);
        k->owned = k->len > sizeof k->buf;
        k->base = k->owned ? sp_xmalloc(k->len) : k->buf;
        memcpy(k->base, f->tmp, k->len);
    }
    return true;
}

/* One `"key": value` into obj; false to give up. */
static bool fast_member(fast *f, json_t *obj, fast_seen *seen)
{
    fast_key k;
    bool plain;
    if (!fast_read_key(f, &k, &plain))
        return false;
    bool ok = !fast_is_dup(obj, seen, &k, plain); /* a duplicate: the full path words it */
    if (ok) {
        fast_remember(seen, &k, plain);
        fast_ws(f);
        ok = f->p < f->end && *f->p == ':';
    }
    json_t *v = NULL;
    if (ok) {
        f->p++;
        fast_ws(f);
        v = fast_value(f);
    }
    ok = v && json_object_setn_new_nocheck(obj, k.base, k.len, v) == 0;
    fast_key_free(&k);
    return ok;
}

static json_t *fast_object(fast *f)
{
    json_t *obj = json_object();
    fast_seen seen = {.complete = true};
    f->p++;
    fast_ws(f);
    if (f->p < f->end && *f->p == '}') {
        f->p++;
        return obj;
    }
    while (fast_member(f, obj, &seen)) {
        fast_ws(f);
        if (f->p < f->end && *f->p == ',') {
            f->p++;
            fast_ws(f);
            continue;
        }
        if (f->p < f->end && *f->p == '}') {
            f->p++;
            return obj;
        }
        break;
    }
    json_decref(obj);
    return NULL;
}

static json_t *fast_array(fast *f)
{
    json_t *arr = json_array();
    f->p++;
    fast_ws(f);
    if (f->p < f->end && *f->p == ']') {
        f->p++;
        return arr;
    }
    for (;;) {
        json_t *v = fast_value(f);
        if (!v || json_array_append_new(arr, v))
            break;
        fast_ws(f);
        if (f->p < f->end && *f->p == ',') {
            f->p++;
            fast_ws(f);
            continue;
        }
        if (f->p < f->end && *f->p == ']') {
            f->p++;
            return arr;
        }
        break;
    }
    json_decref(arr);
    return NULL;
}

static json_t *fast_word(fast *f, const char *word, size_t n, json_t *v)
{
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n) != 0)
        return NULL;
    f->p += n;
    return v;
}

static json_t *fast_value(fast *f)
{
    if (f->p == f->end)
        return NULL;
    switch (*f->p) {
    case '{':
    case '[': {
        if (++f->depth > f->max_depth)
            return NULL;
        json_t *v = *f->p == '{' ? fast_object(f) : fast_array(f);
        f->depth--;
        return v;
    }
    case '"': return fast_string(f);
    case 't': return fast_word(f, "true", 4, json_true());
    case 'f': return fast_word(f, "false", 5, json_false());
    case 'n': return fast_word(f, "null", 4, json_null());
    default: return fast_number(f);
    }
}

/* One whole value in buf[0..len) with only whitespace around it, or NULL. */
static json_t *fast_parse(const char *buf, size_t len, size_t max_depth)
{
    fast f = {buf, buf + len, 0, max_depth < FAST_MAX_DEPTH ? max_depth : FAST_MAX_DEPTH, NULL, 0};
    fast_ws(&f);
    json_t *v = fast_value(&f);
    fast_ws(&f);
    if (v && f.p != f.end) {
        json_decref(v);
        v = NULL;
    }
    free(f.tmp);
    return v;
}

static int parse_one(const char *buf, size_t len, const sp_json_limits *lim, json_t **out,
                     sp_json_error *err)
{
    json_t *v = fast_parse(buf, len, lim->max_depth);
    if (v) {
        *out = v;
        return 0;
    }
    int rc = prescan(buf, len, lim->max_depth, err);
    if (rc)
        return rc;
    json_error_t je;
    v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!v) {
        size_t off = jansson_error_offset(buf, len, &je);
        return set_error(err, buf, off, -EINVAL, "%s", je.text);
    }
    *out = v;
    return 0;
}

int sp_json_parse_strict(const char *buf, size_t len, const sp_json_limits *lim, json_t **out,
                         sp_json_error *err)
{
    sp_json_limits dflt = SP_JSON_LIMITS_DEFAULT;
    if (!lim)
        lim = &dflt;
    *out = NULL;
    if (err)
        memset(err, 0, sizeof(*err));
    if (len > lim->max_bytes)
        return set_error(err, buf, 0, -EMSGSIZE, "body larger than %zu bytes", lim->max_bytes);
    return parse_one(buf, len, lim, out, err);
}

int sp_json_next_line(sp_slice *rest, sp_slice *line)
{
    if (rest->len == 0)
        return 0;
    const char *nl = memchr(rest->base, '\n', rest->len);
    size_t n = nl ? (size_t)(nl - rest->base) : rest->len;
    *line = sp_slice_make(rest->base, n);
    if (n > 0 && line->base[n - 1] == '\r')
        line->len--;
    size_t skip = nl ? n + 1 : n;
    rest->base += skip;
    rest->len -= skip;
    return 1;
}

static bool is_blank(sp_slice s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.base[i] != ' ' && s.base[i] != '\t' && s.base[i] != '\r')
            return false;
    return true;
}

int sp_json_parse_ndjson(const char *buf, size_t len, const sp_json_limits *lim, json_t **out,
                         sp_json_error *err)
{
    sp_json_limits dflt = SP_JSON_LIMITS_DEFAULT;
    if (!lim)
        lim = &dflt;
    *out = NULL;
    if (err)
        memset(err, 0, sizeof(*err));
    if (len > lim->max_bytes)
        return set_error(err, buf, 0, -EMSGSIZE, "body larger than %zu bytes", lim->max_bytes);
    json_t *arr = json_array();
    sp_slice rest = sp_slice_make(buf, len), line;
    int rc = 0;
    while (rc == 0 && sp_json_next_line(&rest, &line)) {
        if (is_blank(line))
            continue;
        size_t base = (size_t)(line.base - buf);
        if (json_array_size(arr) >= lim->max_records) {
            rc = set_error(err, buf, base, -EMSGSIZE, "more than %zu records", lim->max_records);
            break;
        }
        json_t *v = NULL;
        sp_json_error lerr;
        rc = parse_one(line.base, line.len, lim, &v, &lerr);
        if (rc)
            set_error(err, buf, base + lerr.offset, rc, "%s", lerr.reason);
        else
            json_array_append_new(arr, v);
    }
    if (err && rc)
        err->ndjson = 1;
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* Appends several pieces, or none: on -ENOBUFS the buffer is rolled back. */
static int rollback(sp_buf *b, size_t mark, int rc)
{
    if (rc && b->len > mark) {
        b->len = mark;
        b->base[mark] = '\0';
    }
    return rc;
}

int sp_json_error_render(sp_buf *b, const sp_json_error *err)
{
    size_t mark = b->len;
    int rc = sp_buf_printf(b,
                           "{\"type\":\"json_invalid\",\"loc\":[\"body\",%zu],"
                           "\"msg\":\"JSON decode error\",\"input\":{},\"ctx\":{\"error\":",
                           err->position);
    if (!rc)
        rc = sp_json_cstr(b, err->reason);
    if (!rc && err->ndjson)
        rc = sp_buf_printf(b, ",\"line\":%zu,\"column\":%zu", err->line, err->column);
    if (!rc)
        rc = sp_buf_append_cstr(b, "}}");
    return rollback(b, mark, rc);
}

/* ======================================================= value rendering */

/* Python's repr() of a float: the shortest digits that read back the same,
 * positional for exponents -4..15, else d.ddde+XX. */
static void py_float(double d, char out[40])
{
    if (d == 0) {
        strcpy(out, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    char digits[24] = {0};
    size_t nd = 0;
    const char *p = tmp;
    char *o = out;
    if (*p == '-')
        *o++ = *p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.')
            digits[nd++] = *p;
    int exp = atoi(p + 1);
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            o += sprintf(o, "0.");
            for (int z = -1; z > exp; z--)
                *o++ = '0';
            memcpy(o, digits, nd);
            o += nd;
        } else {
            for (int k = 0; k <= exp; k++)
                *o++ = (size_t)k < nd ? digits[k] : '0';
            *o++ = '.';
            if ((size_t)exp + 1 < nd) {
                memcpy(o, digits + exp + 1, nd - (size_t)exp - 1);
                o += nd - (size_t)exp - 1;
            } else {
                *o++ = '0';
            }
        }
        *o = '\0';
        return;
    }
    *o++ = digits[0];
    if (nd > 1) {
        *o++ = '.';
        memcpy(o, digits + 1, nd - 1);
        o += nd - 1;
    }
    sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

#define RENDER_MAX_DEPTH 256

/* Appends v as compact JSON, the way FastAPI's response would print it. */
static int write_json(sp_buf *b, const json_t *v, int depth)
{
    if (depth > RENDER_MAX_DEPTH)
        return sp_buf_append_cstr(b, "null");
    char num[40];
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        bool first = true;
        rc = sp_buf_putc(b, '{');
        json_object_foreach((json_t *)v, k, m)
        {
            if (!rc && !first)
                rc = sp_buf_putc(b, ',');
            first = false;
            if (!rc)
                rc = sp_json_str(b, sp_slice_cstr(k));
            if (!rc)
                rc = sp_buf_putc(b, ':');
            if (!rc)
                rc = write_json(b, m, depth + 1);
        }
        return rc ? rc : sp_buf_putc(b, '}');
    }
    case JSON_ARRAY:
        rc = sp_buf_putc(b, '[');
        for (size_t i = 0; !rc && i < json_array_size(v); i++) {
            if (i)
                rc = sp_buf_putc(b, ',');
            if (!rc)
                rc = write_json(b, json_array_get(v, i), depth + 1);
        }
        return rc ? rc : sp_buf_putc(b, ']');
    case JSON_STRING:
        return sp_json_str(b, sp_slice_make(json_string_value(v), json_string_length(v)));
    case JSON_INTEGER: return sp_buf_append_i64(b, (long long)json_integer_value(v));
    case JSON_REAL: py_float(json_real_value(v), num); return sp_buf_append_cstr(b, num);
    case JSON_TRUE: return sp_buf_append_cstr(b, "true");
    case JSON_FALSE: return sp_buf_append_cstr(b, "false");
    default: return sp_buf_append_cstr(b, "null");
    }
}

/* Python's repr() of a str: single quotes unless the text has a single
 * quote and no double quote. */
static int py_repr_str(sp_buf *b, const char *s, size_t n)
{
    char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
    int rc = sp_buf_putc(b, q);
    for (size_t i = 0; !rc && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == (unsigned char)q)
            rc = sp_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rc = sp_buf_append_cstr(b, "\\n");
        else if (c == '\r')
            rc = sp_buf_append_cstr(b, "\\r");
        else if (c == '\t')
            rc = sp_buf_append_cstr(b, "\\t");
        else if (c < 0x20 || c == 0x7f)
            rc = sp_buf_printf(b, "\\x%02x", c);
        else
            rc = sp_buf_putc(b, (char)c);
    }
    return rc ? rc : sp_buf_putc(b, q);
}

/* Python's repr() of the value json.loads() would give. */
static int py_repr(sp_buf *b, const json_t *v, int depth)
{
    if (depth > RENDER_MAX_DEPTH)
        return sp_buf_append_cstr(b, "...");
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        bool first = true;
        rc = sp_buf_putc(b, '{');
        json_object_foreach((json_t *)v, k, m)
        {
            if (!rc && !first)
                rc = sp_buf_append_cstr(b, ", ");
            first = false;
            if (!rc)
                rc = py_repr_str(b, k, strlen(k));
            if (!rc)
                rc = sp_buf_append_cstr(b, ": ");
            if (!rc)
                rc = py_repr(b, m, depth + 1);
        }
        return rc ? rc : sp_buf_putc(b, '}');
    }
    case JSON_ARRAY:
        rc = sp_buf_putc(b, '[');
        for (size_t i = 0; !rc && i < json_array_size(v); i++) {
            if (i)
                rc = sp_buf_append_cstr(b, ", ");
            if (!rc)
                rc = py_repr(b, json_array_get(v, i), depth + 1);
        }
        return rc ? rc : sp_buf_putc(b, ']');
    case JSON_STRING: return py_repr_str(b, json_string_value(v), json_string_length(v));
    case JSON_TRUE: return sp_buf_append_cstr(b, "True");
    case JSON_FALSE: return sp_buf_append_cstr(b, "False");
    case JSON_NULL: return sp_buf_append_cstr(b, "None");
    default: return write_json(b, v, depth);
    }
}

/* JSON Schema equality: 1 == 1.0, objects regardless of key order. */
static bool values_equal(const json_t *a, const json_t *b, int depth)
{
    if (depth > RENDER_MAX_DEPTH)
        return false;
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!values_equal(json_array_get(a, i), json_array_get(b, i), depth + 1))
                return false;
        return true;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)a, k, m)
        {
            json_t *o = json_object_get(b, k);
            if (!o || !values_equal(m, o, depth + 1))
                return false;
        }
        return true;
    }
    return true; /* true, false, null */
}

/* -1, 0 or 1; integers compared exactly, otherwise as long double. */
static int num_cmp(const json_t *a, const json_t *b)
{
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return (x > y) - (x < y);
    }
    long double x = json_is_integer(a) ? (long double)json_integer_value(a) : json_real_value(a);
    long double y = json_is_integer(b) ? (long double)json_integer_value(b) : json_real_value(b);
    return (x > y) - (x < y);
}

/* Without libm: every double of magnitude >= 2^52 is an integer. */
static bool is_integral(double d)
{
    if (d >= 4503599627370496.0 || d <= -4503599627370496.0)
        return true;
    return d == (double)(long long)d;
}

/* ============================================================ compilation */

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_INTEGER = 1 << 5,
    T_STRING = 1 << 6,
};
static const struct {
    const char *name;
    unsigned bit;
} type_names[] = {
    {"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT}, {"array", T_ARRAY},
    {"number", T_NUMBER}, {"integer", T_INTEGER}, {"string", T_STRING},
};

enum { BOUND_GT, BOUND_GE, BOUND_LT, BOUND_LE, BOUND_N };

typedef struct node node;
typedef struct prop {
    char *name;
    size_t name_len;
    node *schema; /* NULL: no subschema, only required */
    bool required;
} prop;

struct node {
    bool never;             /* the `false` schema */
    unsigned types;         /* 0: any type */
    unsigned char order[8]; /* type bits in the schema's order, for union locs */
    size_t ntypes;
    prop *props;
    size_t nprops;
    bool forbid_extra;
    node *extra; /* additionalProperties schema */
    node *items;
    json_t *enum_vals; /* array (const is a one-member enum); owned */
    char *expected;    /* enum rendered the pydantic way */
    json_t *bound[BOUND_N];
    bool has_min_len, has_max_len, has_min_items, has_max_items;
    size_t min_len, max_len, min_items, max_items;
    char *pattern;
    regex_t re;
    node *next_alloc; /* every node, for free */
};

struct sp_schema {
    node *root;
    node *all;
    size_t nnodes;
};

typedef struct compiler {
    sp_schema *s;
    char *errbuf;
    size_t errlen;
    char ptr[512]; /* JSON pointer of the keyword being compiled */
    size_t ptr_len;
} compiler;

static int cerr(compiler *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cerr(compiler *c, int code, const char *fmt, ...)
{
    if (c->errlen == 0)
        return code;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->errbuf, c->errlen, "%s at %s", msg, c->ptr_len ? c->ptr : "the root");
    return code;
}

/* Pushes one JSON pointer token (escaped: ~ -> ~0, / -> ~1); returns the
 * old length for ptr_pop. A pointer too long to keep is cut with "...". */
static size_t ptr_push(compiler *c, const char *tok)
{
    size_t old = c->ptr_len;
    size_t cap = sizeof(c->ptr) - 4;
    if (c->ptr_len < cap)
        c->ptr[c->ptr_len++] = '/';
    for (const char *p = tok; *p && c->ptr_len < cap; p++) {
        if (*p == '~' || *p == '/') {
            c->ptr[c->ptr_len++] = '~';
            c->ptr[c->ptr_len++] = *p == '~' ? '0' : '1';
        } else {
            c->ptr[c->ptr_len++] = *p;
        }
    }
    if (c->ptr_len >= cap)
        strcpy(c->ptr + cap, "...");
    else
        c->ptr[c->ptr_len] = '\0';
    return old;
}

static void ptr_pop(compiler *c, size_t old)
{
    c->ptr_len = old;
    c->ptr[old] = '\0';
}

static int compile_node(compiler *c, const json_t *js, int depth, node **out);

static int compile_sub(compiler *c, const char *tok, const json_t *js, int depth, node **out)
{
    size_t old = ptr_push(c, tok);
    int rc = compile_node(c, js, depth + 1, out);
    if (rc == 0)
        ptr_pop(c, old);
    return rc;
}

static int kw_type(compiler *c, node *n, const json_t *v)
{
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    if (!json_is_string(v) && !(json_is_array(v) && count > 0))
        return cerr(c, -EINVAL, "'type' must be a type name or a non-empty array of them");
    for (size_t i = 0; i < count; i++) {
        const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
        unsigned bit = 0;
        for (size_t k = 0; json_is_string(t) && k < SP_ARRAY_LEN(type_names); k++)
            if (strcmp(json_string_value(t), type_names[k].name) == 0)
                bit = type_names[k].bit;
        if (!bit)
            return cerr(c, -EINVAL, "'type' has an unknown or non-string type name");
        if (n->types & bit)
            return cerr(c, -EINVAL, "'type' names a type twice");
        n->types |= bit;
        n->order[n->ntypes++] = (unsigned char)bit;
    }
    return 0;
}

static prop *find_prop(node *n, const char *name, size_t len)
{
    for (size_t i = 0; i < n->nprops; i++)
        if (n->props[i].name_len == len && memcmp(n->props[i].name, name, len) == 0)
            return &n->props[i];
    return NULL;
}

static prop *add_prop(node *n, const char *name, size_t len)
{
    n->props = sp_xrealloc(n->props, (n->nprops + 1) * sizeof(*n->props));
    prop *p = &n->props[n->nprops++];
    *p = (prop){.name = sp_xstrndup(name, len), .name_len = len};
    return p;
}

static int kw_properties(compiler *c, node *n, const json_t *v, int depth)
{
    if (!json_is_object(v))
        return cerr(c, -EINVAL, "'properties' must be an object");
    if (json_object_size(v) + n->nprops > SP_SCHEMA_MAX_PROPERTIES)
        return cerr(c, -E2BIG, "more than %d properties", SP_SCHEMA_MAX_PROPERTIES);
    const char *k;
    json_t *sub;
    json_object_foreach((json_t *)v, k, sub)
    {
        size_t klen = strlen(k);
        prop *p = find_prop(n, k, klen);
        if (!p)
            p = add_prop(n, k, klen);
        int rc = compile_sub(c, k, sub, depth, &p->schema);
        if (rc)
            return rc;
    }
    return 0;
}

static int kw_required(compiler *c, node *n, const json_t *v)
{
    if (!json_is_array(v))
        return cerr(c, -EINVAL, "'required' must be an array of strings");
    if (json_array_size(v) + n->nprops > SP_SCHEMA_MAX_PROPERTIES)
        return cerr(c, -E2BIG, "more than %d properties", SP_SCHEMA_MAX_PROPERTIES);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *name = json_array_get(v, i);
        if (!json_is_string(name))
            return cerr(c, -EINVAL, "'required' must be an array of strings");
        const char *s = json_string_value(name);
        size_t len = json_string_length(name);
        prop *p = find_prop(n, s, len);
        if (p && p->required)
            return cerr(c, -EINVAL, "'required' names a property twice");
        if (!p)
            p = add_prop(n, s, len);
        p->required = true;
    }
    return 0;
}

/* Reads a non-negative integer keyword (2.0 counts as 2). */
static int kw_count(compiler *c, const char *kw, const json_t *v, size_t *out, bool *has)
{
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || d < 0 || !is_integral(d) || d > 1e15)
        return cerr(c, -EINVAL, "'%s' must be a non-negative integer", kw);
    *out = (size_t)d;
    *has = true;
    return 0;
}

static int kw_enum(compiler *c, node *n, const json_t *v, bool is_const)
{
    if (n->enum_vals)
        return cerr(c, -EINVAL, "'enum' and 'const' cannot be combined");
    if (!is_const && (!json_is_array(v) || json_array_size(v) == 0))
        return cerr(c, -EINVAL, "'enum' must be a non-empty array");
    if (!is_const && json_array_size(v) > SP_SCHEMA_MAX_ENUM)
        return cerr(c, -E2BIG, "'enum' has more than %d members", SP_SCHEMA_MAX_ENUM);
    if (is_const) {
        n->enum_vals = json_array();
        json_array_append_new(n->enum_vals, json_deep_copy(v));
    } else {
        n->enum_vals = json_deep_copy(v);
    }
    /* pydantic: 'a', 'b' or 'c'. The text is bounded; a huge enum is cut. */
    sp_buf b;
    sp_buf_init(&b, 1024);
    size_t count = json_array_size(n->enum_vals);
    int rc = 0;
    for (size_t i = 0; !rc && i < count; i++) {
        if (i)
            rc = sp_buf_append_cstr(&b, i + 1 == count ? " or " : ", ");
        if (!rc)
            rc = py_repr(&b, json_array_get(n->enum_vals, i), 0);
    }
    if (rc)
        sp_buf_append_cstr(&b, "...");
    n->expected = sp_xstrndup(b.base ? b.base : "", b.len);
    sp_buf_free(&b);
    return 0;
}

/* Index just past the bracket expression that starts at p[i] == '['. */
static size_t skip_bracket(const char *p, size_t len, size_t i)
{
    i++;
    if (i < len && p[i] == '^')
        i++;
    if (i < len && p[i] == ']') /* a leading ']' is a literal */
        i++;
    while (i < len && p[i] != ']') {
        if (p[i] == '[' && i + 1 < len && (p[i + 1] == ':' || p[i + 1] == '.' || p[i + 1] == '=')) {
            char close = p[i + 1];
            for (i += 2; i + 1 < len && !(p[i] == close && p[i + 1] == ']'); i++)
                ;
            i++;
        }
        i++;
    }
    return i + 1;
}

/* Reads "{m}", "{m,}" or "{m,n}" at p[i]; returns the copies regcomp makes
 * of the repeated element, or 0 when it is not a bound (regcomp decides). */
static unsigned long bound_copies(const char *p, size_t len, size_t *i)
{
    char tmp[32];
    size_t n = 0;
    for (size_t k = *i + 1; k < len && p[k] != '}' && n + 1 < sizeof(tmp); k++)
        tmp[n++] = p[k];
    tmp[n] = '\0';
    char *end;
    unsigned long lo = strtoul(tmp, &end, 10), hi = lo;
    if (end == tmp)
        return 0;
    if (*end == ',')
        hi = end[1] == '\0' ? lo + 1 : strtoul(end + 1, &end, 10);
    *i += n + 1;
    return lo > hi ? lo : hi;
}

/* Refuses what would make regcomp/regexec expensive: back-references
 * (exponential matching) and repetitions whose expansion explodes. glibc
 * builds `x+` as `xx*` and `x{m,n}` as n copies of x, so stacked or nested
 * repetitions multiply: `((c+)+)+` doubles per level. We estimate the node
 * count of the expanded pattern, level by level, and bound it. */
static int check_pattern(compiler *c, const char *p, size_t len)
{
    if (len > SP_SCHEMA_MAX_PATTERN)
        return cerr(c, -E2BIG, "'pattern' longer than %d bytes", SP_SCHEMA_MAX_PATTERN);
    if (strlen(p) != len)
        return cerr(c, -EINVAL, "'pattern' contains a NUL character");
    unsigned long cur[SP_SCHEMA_MAX_PATTERN + 1], last[SP_SCHEMA_MAX_PATTERN + 1];
    size_t depth = 0;
    cur[0] = last[0] = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned long copies = 1;
        if (p[i] == '\\' && i + 1 < len && p[i + 1] >= '1' && p[i + 1] <= '9')
            return cerr(c, -EINVAL, "'pattern' back-references are not supported");
        if (p[i] == '(') {
            depth++;
            cur[depth] = last[depth] = 0;
            continue;
        } else if (p[i] == ')' && depth > 0) {
            unsigned long g = cur[depth--] + 1;
            cur[depth] += g;
            last[depth] = g;
        } else if (p[i] == '|') {
            last[depth] = 0;
        } else if (p[i] == '+') {
            copies = 2;
        } else if (p[i] == '{') {
            copies = bound_copies(p, len, &i);
            if (copies > SP_SCHEMA_MAX_REPEAT)
                return cerr(c, -E2BIG, "'pattern' repetition count above %d", SP_SCHEMA_MAX_REPEAT);
            copies = copies ? copies : 1;
        } else if (p[i] != '*' && p[i] != '?') {
            if (p[i] == '[')
                i = skip_bracket(p, len, i) - 1;
            else if (p[i] == '\\')
                i++;
            cur[depth] += 1;
            last[depth] = 1;
        }
        if (copies > 1) {
            cur[depth] += last[depth] * (copies - 1);
            last[depth] *= copies;
        }
        if (cur[depth] > SP_SCHEMA_MAX_PATTERN_NODES || last[depth] > SP_SCHEMA_MAX_PATTERN_NODES)
            return cerr(c, -E2BIG, "'pattern' expands to more than %d regex nodes",
                        SP_SCHEMA_MAX_PATTERN_NODES);
    }
    return 0;
}

static int kw_pattern(compiler *c, node *n, const json_t *v)
{
    if (!json_is_string(v))
        return cerr(c, -EINVAL, "'pattern' must be a string");
    int rc = check_pattern(c, json_string_value(v), json_string_length(v));
    if (rc)
        return rc;
    int rr = regcomp(&n->re, json_string_value(v), REG_EXTENDED | REG_NOSUB);
    if (rr) {
        char msg[128];
        regerror(rr, &n->re, msg, sizeof(msg));
        regfree(&n->re);
        return cerr(c, -EINVAL, "'pattern' is not a valid POSIX extended regex (%s)", msg);
    }
    n->pattern = sp_xstrdup(json_string_value(v));
    return 0;
}

static int kw_bound(compiler *c, node *n, int which, const char *kw, const json_t *v)
{
    if (!json_is_number(v))
        return cerr(c, -EINVAL, "'%s' must be a number", kw);
    n->bound[which] = json_deep_copy(v);
    return 0;
}

static bool is_annotation(const char *k)
{
    static const char *const names[] = {"title",    "description", "default",  "examples",
                                        "$schema",  "$id",         "$comment", "deprecated",
                                        "readOnly", "writeOnly"};
    for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
        if (strcmp(k, names[i]) == 0)
            return true;
    return false;
}

static int compile_keyword(compiler *c, node *n, const char *k, const json_t *v, int depth)
{
    if (strcmp(k, "type") == 0)
        return kw_type(c, n, v);
    if (strcmp(k, "properties") == 0)
        return kw_properties(c, n, v, depth);
    if (strcmp(k, "required") == 0)
        return kw_required(c, n, v);
    if (strcmp(k, "additionalProperties") == 0) {
        if (json_is_false(v)) {
            n->forbid_extra = true;
            return 0;
        }
        return compile_node(c, v, depth + 1, &n->extra); /* pointer already pushed */
    }
    if (strcmp(k, "items") == 0) {
        if (json_is_array(v))
            return cerr(c, -EINVAL, "'items' must be a schema (the array form is not supported)");
        return compile_node(c, v, depth + 1, &n->items);
    }
    if (strcmp(k, "enum") == 0 || strcmp(k, "const") == 0)
        return kw_enum(c, n, v, k[0] == 'c');
    if (strcmp(k, "minimum") == 0)
        return kw_bound(c, n, BOUND_GE, k, v);
    if (strcmp(k, "maximum") == 0)
        return kw_bound(c, n, BOUND_LE, k, v);
    if (strcmp(k, "exclusiveMinimum") == 0)
        return kw_bound(c, n, BOUND_GT, k, v);
    if (strcmp(k, "exclusiveMaximum") == 0)
        return kw_bound(c, n, BOUND_LT, k, v);
    if (strcmp(k, "minLength") == 0)
        return kw_count(c, k, v, &n->min_len, &n->has_min_len);
    if (strcmp(k, "maxLength") == 0)
        return kw_count(c, k, v, &n->max_len, &n->has_max_len);
    if (strcmp(k, "minItems") == 0)
        return kw_count(c, k, v, &n->min_items, &n->has_min_items);
    if (strcmp(k, "maxItems") == 0)
        return kw_count(c, k, v, &n->max_items, &n->has_max_items);
    if (strcmp(k, "pattern") == 0)
        return kw_pattern(c, n, v);
    if (is_annotation(k))
        return 0;
    return cerr(c, -EINVAL, "unknown keyword '%s'", k);
}

static int compile_node(compiler *c, const json_t *js, int depth, node **out)
{
    if (depth > SP_SCHEMA_MAX_DEPTH)
        return cerr(c, -E2BIG, "schema nested deeper than %d", SP_SCHEMA_MAX_DEPTH);
    if (++c->s->nnodes > SP_SCHEMA_MAX_NODES)
        return cerr(c, -E2BIG, "more than %d subschemas", SP_SCHEMA_MAX_NODES);
    node *n = sp_xcalloc(1, sizeof(*n));
    n->next_alloc = c->s->all;
    c->s->all = n;
    *out = n;
    if (json_is_boolean(js)) {
        n->never = json_is_false(js);
        return 0;
    }
    if (!json_is_object(js))
        return cerr(c, -EINVAL, "a schema must be an object or a boolean");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)js, k, v)
    {
        size_t old = ptr_push(c, k);
        int rc = compile_keyword(c, n, k, v, depth);
        if (rc)
            return rc;
        ptr_pop(c, old);
    }
    return 0;
}

static void free_node(node *n)
{
    for (size_t i = 0; i < n->nprops; i++)
        free(n->props[i].name);
    free(n->props);
    json_decref(n->enum_vals);
    free(n->expected);
    for (int i = 0; i < BOUND_N; i++)
        json_decref(n->bound[i]);
    if (n->pattern) {
        regfree(&n->re);
        free(n->pattern);
    }
    free(n);
}

void sp_schema_free(sp_schema *s)
{
    if (!s)
        return;
    node *n = s->all;
    while (n) {
        node *next = n->next_alloc;
        free_node(n);
        n = next;
    }
    free(s);
}

int sp_schema_compile(const json_t *schema, sp_schema **out, char *errbuf, size_t errlen)
{
    compiler c = {.errbuf = errbuf, .errlen = errlen};
    if (errlen)
        errbuf[0] = '\0';
    *out = NULL;
    c.s = sp_xcalloc(1, sizeof(*c.s));
    int rc = schema ? compile_node(&c, schema, 0, &c.s->root) : cerr(&c, -EINVAL, "no schema");
    if (rc) {
        sp_schema_free(c.s);
        return rc;
    }
    *out = c.s;
    return 0;
}

const char sp_schema_item_json[] =
    "{\"title\":\"Item\",\"type\":\"object\","
    "\"properties\":{"
    "\"name\":{\"title\":\"Name\",\"type\":\"string\"},"
    "\"description\":{\"title\":\"Description\",\"type\":[\"string\",\"null\"],\"default\":null},"
    "\"price\":{\"title\":\"Price\",\"type\":\"number\"},"
    "\"tax\":{\"title\":\"Tax\",\"type\":[\"number\",\"null\"],\"default\":null}},"
    "\"required\":[\"name\",\"price\"]}";

/* ============================================================= validation */

typedef struct seg {
    const char *key; /* NULL: index */
    size_t key_len;
    size_t index;
} seg;

#define PATH_MAX_SEGS (SP_SCHEMA_MAX_DEPTH + 4)

typedef struct vctx {
    sp_buf *out;
    const char *loc_prefix;
    size_t max_errors;
    size_t count;
    bool stop;
    seg path[PATH_MAX_SEGS];
    size_t depth;
} vctx;

typedef struct verr {
    const char *type;
    const char *msg;     /* printf-free: already final */
    const json_t *input; /* NULL: JSON null */
    const char *tag;     /* extra loc segment (union member), or NULL */
    const char *ctx;     /* raw JSON object members, or NULL */
} verr;

static int write_entry(vctx *v, const verr *e)
{
    sp_buf *b = v->out;
    int rc = 0;
    if (b->len > 0 && b->base[b->len - 1] != '[')
        rc = sp_buf_putc(b, ',');
    if (!rc)
        rc = sp_buf_printf(b, "{\"type\":\"%s\",\"loc\":[%s", e->type, v->loc_prefix);
    for (size_t i = 0; !rc && i < v->depth; i++) {
        rc = sp_buf_putc(b, ',');
        if (!rc && v->path[i].key)
            rc = sp_json_str(b, sp_slice_make(v->path[i].key, v->path[i].key_len));
        else if (!rc)
            rc = sp_buf_append_u64(b, v->path[i].index);
    }
    if (!rc && e->tag)
        rc = sp_buf_printf(b, ",\"%s\"", e->tag);
    if (!rc)
        rc = sp_buf_append_cstr(b, "],\"msg\":");
    if (!rc)
        rc = sp_json_cstr(b, e->msg);
    if (!rc)
        rc = sp_buf_append_cstr(b, ",\"input\":");
    if (!rc)
        rc = e->input ? write_json(b, e->input, 0) : sp_buf_append_cstr(b, "null");
    if (!rc && e->ctx)
        rc = sp_buf_printf(b, ",\"ctx\":{%s}", e->ctx);
    if (!rc)
        rc = sp_buf_putc(b, '}');
    return rc;
}

static void report(vctx *v, const verr *e)
{
    if (v->stop)
        return;
    if (v->max_errors == 0 || !v->out) {
        v->count++;
        v->stop = v->max_errors == 0 || v->count >= v->max_errors;
        return;
    }
    size_t mark = v->out->len;
    v->count++; /* counted even when its entry does not fit: never "valid" */
    if (rollback(v->out, mark, write_entry(v, e))) {
        v->stop = true;
        return;
    }
    v->stop = v->count >= v->max_errors;
}

static void report_simple(vctx *v, const char *type, const char *msg, const json_t *input)
{
    report(v, &(verr){.type = type, .msg = msg, .input = input});
}

/* ---- type checks ------------------------------------------------------- */

static bool has_fraction(const json_t *x)
{
    return json_is_real(x) && !is_integral(json_real_value(x));
}

static bool type_matches(unsigned bit, const json_t *x)
{
    switch (bit) {
    case T_NULL: return json_is_null(x);
    case T_BOOLEAN: return json_is_boolean(x);
    case T_OBJECT: return json_is_object(x);
    case T_ARRAY: return json_is_array(x);
    case T_NUMBER: return json_is_number(x);
    case T_INTEGER: return json_is_integer(x) || (json_is_real(x) && !has_fraction(x));
    case T_STRING: return json_is_string(x);
    default: return false;
    }
}

/* Does the string look like what lax pydantic would have converted? That
 * decides between pydantic's *_type and *_parsing messages (we convert
 * neither way; see VALIDATION.md). */
static bool looks_numeric(const json_t *x, bool integer)
{
    const char *s = json_string_value(x);
    size_t n = json_string_length(x), i = 0;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        n--;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
        i++;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (integer)
        return digits > 0 && i == n;
    if (i < n && s[i] == '.')
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    if (digits > 0 && i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        if (i == n || s[i] < '0' || s[i] > '9')
            return false;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return digits > 0 && i == n;
}

/* The strings lax pydantic reads as booleans. */
static bool looks_boolean(const json_t *x)
{
    static const char *const words[] = {"0",  "1",  "f",   "t",   "n",    "y",
                                        "no", "on", "off", "yes", "true", "false"};
    for (size_t i = 0; i < SP_ARRAY_LEN(words); i++)
        if (strcasecmp(json_string_value(x), words[i]) == 0)
            return true;
    return false;
}

/* The pydantic error for `x` not being of type `bit`. */
static verr type_error(unsigned bit, const json_t *x)
{
    verr e = {.input = x};
    switch (bit) {
    case T_NULL: e.type = "none_required", e.msg = "Input should be None"; break;
    case T_BOOLEAN:
        if (json_is_string(x) && !looks_boolean(x))
            e.type = "bool_parsing",
            e.msg = "Input should be a valid boolean, unable to interpret input";
        else
            e.type = "bool_type", e.msg = "Input should be a valid boolean";
        break;
    case T_OBJECT: e.type = "dict_type", e.msg = "Input should be a valid dictionary"; break;
    case T_ARRAY: e.type = "list_type", e.msg = "Input should be a valid list"; break;
    case T_NUMBER:
        if (json_is_string(x) && !looks_numeric(x, false))
            e.type = "float_parsing",
            e.msg = "Input should be a valid number, unable to parse string as a number";
        else
            e.type = "float_type", e.msg = "Input should be a valid number";
        break;
    case T_INTEGER:
        if (has_fraction(x))
            e.type = "int_from_float",
            e.msg = "Input should be a valid integer, got a number with a fractional part";
        else if (json_is_string(x) && !looks_numeric(x, true))
            e.type = "int_parsing",
            e.msg = "Input should be a valid integer, unable to parse string as an integer";
        else
            e.type = "int_type", e.msg = "Input should be a valid integer";
        break;
    default: e.type = "string_type", e.msg = "Input should be a valid string"; break;
    }
    return e;
}

static const char *union_tag(unsigned bit)
{
    switch (bit) {
    case T_NULL: return "none";
    case T_BOOLEAN: return "bool";
    case T_OBJECT: return "dict[str,any]";
    case T_ARRAY: return "list[any]";
    case T_NUMBER: return "float";
    case T_INTEGER: return "int";
    default: return "str";
    }
}

/* Returns true when x has one of n's types; otherwise reports the way
 * pydantic does: T | None is one error, a wider union one per member. */
static bool check_type(vctx *v, const node *n, const json_t *x)
{
    if (!n->types)
        return true;
    for (size_t i = 0; i < n->ntypes; i++)
        if (type_matches(n->order[i], x))
            return true;
    unsigned others = n->types & ~(unsigned)T_NULL;
    size_t nothers = (size_t)__builtin_popcount(others);
    if (v->depth == 0 && n->types == T_OBJECT && n->nprops > 0) {
        /* FastAPI validates the body model with from_attributes=True */
        report_simple(v, "model_attributes_type",
                      "Input should be a valid dictionary or object to extract fields from", x);
        return false;
    }
    for (size_t i = 0; i < n->ntypes; i++) {
        unsigned bit = n->order[i];
        if (nothers > 0 && bit == T_NULL)
            continue;
        verr e = type_error(bit, x);
        e.tag = nothers > 1 ? union_tag(bit) : NULL;
        report(v, &e);
    }
    return false;
}

/* ---- keyword checks ---------------------------------------------------- */

/* A bound rendered for ctx: pydantic's float fields turn `gt=0` into 0.0. */
static void bound_text(const node *n, const json_t *bnd, bool for_ctx, char out[40])
{
    bool as_float = for_ctx && (n->types & ~(unsigned)T_NULL) == T_NUMBER;
    if (json_is_integer(bnd) && as_float)
        py_float((double)json_integer_value(bnd), out);
    else if (json_is_integer(bnd))
        snprintf(out, 40, "%lld", (long long)json_integer_value(bnd));
    else
        py_float(json_real_value(bnd), out);
}

static void check_bounds(vctx *v, const node *n, const json_t *x)
{
    static const struct {
        const char *type, *words, *ctx;
        int fail_when; /* num_cmp(x, bound) result that fails */
        int fail_also;
    } spec[BOUND_N] = {
        [BOUND_GT] = {"greater_than", "greater than", "gt", -1, 0},
        [BOUND_GE] = {"greater_than_equal", "greater than or equal to", "ge", -1, -1},
        [BOUND_LT] = {"less_than", "less than", "lt", 1, 0},
        [BOUND_LE] = {"less_than_equal", "less than or equal to", "le", 1, 1},
    };
    for (int i = 0; i < BOUND_N; i++) {
        if (!n->bound[i])
            continue;
        int cmp = num_cmp(x, n->bound[i]);
        if (cmp != spec[i].fail_when && cmp != spec[i].fail_also)
            continue;
        char txt[40], ctxnum[40], msg[96], ctx[64];
        bound_text(n, n->bound[i], false, txt);
        bound_text(n, n->bound[i], true, ctxnum);
        snprintf(msg, sizeof(msg), "Input should be %s %s", spec[i].words, txt);
        snprintf(ctx, sizeof(ctx), "\"%s\":%s", spec[i].ctx, ctxnum);
        report(v, &(verr){.type = spec[i].type, .msg = msg, .input = x, .ctx = ctx});
        return; /* pydantic stops at the first failed constraint */
    }
}

static void check_string(vctx *v, const node *n, const json_t *x)
{
    const char *s = json_string_value(x);
    size_t len = json_string_length(x);
    size_t chars = count_chars(s, len);
    char msg[128], ctx[64];
    if (n->has_min_len && chars < n->min_len) {
        snprintf(msg, sizeof(msg), "String should have at least %zu character%s", n->min_len,
                 n->min_len == 1 ? "" : "s");
        snprintf(ctx, sizeof(ctx), "\"min_length\":%zu", n->min_len);
        report(v, &(verr){.type = "string_too_short", .msg = msg, .input = x, .ctx = ctx});
        return;
    }
    if (n->has_max_len && chars > n->max_len) {
        snprintf(msg, sizeof(msg), "String should have at most %zu character%s", n->max_len,
                 n->max_len == 1 ? "" : "s");
        snprintf(ctx, sizeof(ctx), "\"max_length\":%zu", n->max_len);
        report(v, &(verr){.type = "string_too_long", .msg = msg, .input = x, .ctx = ctx});
        return;
    }
    if (n->pattern) {
        regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)len};
        if (len <= INT32_MAX && regexec(&n->re, s, 1, &m, REG_STARTEND) == 0)
            return;
        sp_buf pm, pc;
        sp_buf_init(&pm, 1024);
        sp_buf_init(&pc, 1024);
        int rc = sp_buf_printf(&pm, "String should match pattern '%s'", n->pattern);
        if (!rc)
            rc = sp_buf_append_cstr(&pc, "\"pattern\":");
        if (!rc)
            rc = sp_json_cstr(&pc, n->pattern);
        if (!rc)
            report(v, &(verr){.type = "string_pattern_mismatch",
                              .msg = pm.base,
                              .input = x,
                              .ctx = pc.base});
        sp_buf_free(&pm);
        sp_buf_free(&pc);
    }
}

static void check_node(vctx *v, const node *n, const json_t *x);

static void push_index(vctx *v, size_t i)
{
    v->path[v->depth++] = (seg){.index = i};
}

static void push_key(vctx *v, const char *k, size_t len)
{
    v->path[v->depth++] = (seg){.key = k, .key_len = len};
}

static void check_array(vctx *v, const node *n, const json_t *x)
{
    size_t count = json_array_size(x);
    char msg[128], ctx[128];
    if (n->has_max_items && count > n->max_items) {
        snprintf(msg, sizeof(msg), "List should have at most %zu item%s after validation, not %zu",
                 n->max_items, n->max_items == 1 ? "" : "s", count);
        snprintf(ctx, sizeof(ctx),
                 "\"field_type\":\"List\",\"max_length\":%zu,\"actual_length\":%zu", n->max_items,
                 count);
        report(v, &(verr){.type = "too_long", .msg = msg, .input = x, .ctx = ctx});
        return;
    }
    for (size_t i = 0; n->items && !v->stop && i < count; i++) {
        push_index(v, i);
        check_node(v, n->items, json_array_get(x, i));
        v->depth--;
    }
    if (n->has_min_items && count < n->min_items) {
        snprintf(msg, sizeof(msg), "List should have at least %zu item%s after validation, not %zu",
                 n->min_items, n->min_items == 1 ? "" : "s", count);
        snprintf(ctx, sizeof(ctx),
                 "\"field_type\":\"List\",\"min_length\":%zu,\"actual_length\":%zu", n->min_items,
                 count);
        report(v, &(verr){.type = "too_short", .msg = msg, .input = x, .ctx = ctx});
    }
}

/* pydantic order: declared fields (missing or invalid) first, extras after. */
static void check_object(vctx *v, const node *n, const json_t *x)
{
    for (size_t i = 0; i < n->nprops && !v->stop; i++) {
        const prop *p = &n->props[i];
        const json_t *m = json_object_getn(x, p->name, p->name_len);
        push_key(v, p->name, p->name_len);
        if (m && p->schema)
            check_node(v, p->schema, m);
        else if (!m && p->required)
            report_simple(v, "missing", "Field required", x);
        v->depth--;
    }
    if (!n->forbid_extra && !n->extra)
        return;
    const char *k;
    size_t klen;
    json_t *m;
    json_object_keylen_foreach((json_t *)x, k, klen, m)
    {
        if (v->stop)
            break;
        const prop *p = find_prop((node *)n, k, klen);
        if (p && p->schema)
            continue;
        push_key(v, k, klen);
        if (n->forbid_extra)
            report_simple(v, "extra_forbidden", "Extra inputs are not permitted", m);
        else
            check_node(v, n->extra, m);
        v->depth--;
    }
}

static bool check_enum(vctx *v, const node *n, const json_t *x)
{
    for (size_t i = 0; i < json_array_size(n->enum_vals); i++)
        if (values_equal(x, json_array_get(n->enum_vals, i), 0))
            return true;
    sp_buf msg, ctx;
    sp_buf_init(&msg, 2048);
    sp_buf_init(&ctx, 2048);
    int rc = sp_buf_printf(&msg, "Input should be %s", n->expected);
    if (!rc)
        rc = sp_buf_append_cstr(&ctx, "\"expected\":");
    if (!rc)
        rc = sp_json_cstr(&ctx, n->expected);
    if (!rc)
        report(v, &(verr){.type = "literal_error", .msg = msg.base, .input = x, .ctx = ctx.base});
    sp_buf_free(&msg);
    sp_buf_free(&ctx);
    return false;
}

static void check_node(vctx *v, const node *n, const json_t *x)
{
    if (v->stop)
        return;
    if (n->never) {
        report_simple(v, "value_error", "Value error, no value is allowed here", x);
        return;
    }
    if (!check_type(v, n, x))
        return;
    if (n->enum_vals && !check_enum(v, n, x))
        return; /* like pydantic's Literal: no further checks on a wrong value */
    if (json_is_number(x))
        check_bounds(v, n, x);
    else if (json_is_string(x))
        check_string(v, n, x);
    else if (json_is_array(x))
        check_array(v, n, x);
    else if (json_is_object(x))
        check_object(v, n, x);
}

int sp_schema_validate_at(const sp_schema *s, const json_t *value, const char *loc_prefix,
                          sp_buf *errors, size_t max_errors)
{
    vctx v = {.out = errors, .loc_prefix = loc_prefix, .max_errors = max_errors};
    const node *root = s->root;
    bool null_ok = !root->types || (root->types & T_NULL) || root->never;
    if (!value || (json_is_null(value) && !null_ok && !root->enum_vals)) {
        /* FastAPI: an absent or null body is a missing body */
        report_simple(&v, "missing", "Field required", NULL);
        return (int)v.count;
    }
    check_node(&v, root, value);
    return (int)v.count;
}

int sp_schema_validate(const sp_schema *s, const json_t *value, sp_buf *errors, size_t max_errors)
{
    return sp_schema_validate_at(s, value, "\"body\"", errors, max_errors);
}
