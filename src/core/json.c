/* json.c - see json.h. */
#include "core/json.h"

static const char hex[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t n;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int sp_json_str(sp_buf *b, sp_slice s)
{
    const unsigned char *p = (const unsigned char *)s.base;
    int rc = sp_buf_putc(b, '"');
    size_t run = 0; /* start of the pending run of bytes copied verbatim */
    size_t i = 0;
    while (rc == 0 && i < s.len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t seq = c >= 0x80 ? utf8_seq_len(p + i, s.len - i) : 0;
        if (seq > 1) {
            i += seq;
            continue;
        }
        rc = sp_buf_append(b, p + run, i - run);
        if (rc)
            break;
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c >= 0x80) { /* invalid UTF-8 byte */
                rc = sp_buf_append(b, "\\ufffd", 6);
                elen = 0;
            } else {
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
        }
        if (elen)
            rc = sp_buf_append(b, esc, elen);
        i++;
        run = i;
    }
    if (rc == 0)
        rc = sp_buf_append(b, p + run, i - run);
    if (rc == 0)
        rc = sp_buf_putc(b, '"');
    return rc;
}

int sp_json_detail(sp_buf *b, sp_slice msg)
{
    int rc = sp_buf_append(b, "{\"detail\":", 10);
    if (rc == 0)
        rc = sp_json_str(b, msg);
    if (rc == 0)
        rc = sp_buf_putc(b, '}');
    return rc;
}

/* ---- validation: a recursive-descent scanner with an explicit depth ---- */

typedef struct scan {
    const unsigned char *p, *end;
    unsigned depth, max_depth;
    bool plain; /* sp_json_valid_plain's extra refusals */
} scan;

#define PLAIN_MAX_KEYS   16
#define PLAIN_MAX_DEPTH  32
#define PLAIN_MAX_DIGITS 15

static void ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool lit(scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool digits(scan *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > start;
}

static bool number(scan *s)
{
    const unsigned char *start = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        if (s->plain)
            return false; /* range and rounding: the parser's call */
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    if (s->plain && (size_t)(s->p - start) > PLAIN_MAX_DIGITS) { /* then count the digits */
        size_t n = 0;
        for (const unsigned char *q = start; q < s->p; q++)
            n += *q >= '0' && *q <= '9';
        if (n > PLAIN_MAX_DIGITS)
            return false;
    }
    return true;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

static bool hex4(scan *s, unsigned *out)
{
    if (s->end - s->p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (unsigned)h;
    }
    s->p += 4;
    *out = v;
    return true;
}

static bool escape(scan *s)
{
    unsigned char c = *s->p++;
    if (c != 'u')
        return strchr("\"\\/bfnrt", c) != NULL && c != '\0';
    unsigned u;
    if (!hex4(s, &u))
        return false;
    if (u == 0 && s->plain)
        return false; /* the strict parser refuses NUL in strings */
    if (u >= 0xdc00 && u <= 0xdfff)
        return false; /* lone low surrogate */
    if (u >= 0xd800 && u <= 0xdbff) {
        unsigned lo;
        if (!lit(s, "\\u", 2) || !hex4(s, &lo) || lo < 0xdc00 || lo > 0xdfff)
            return false;
    }
    return true;
}

static bool string(scan *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        s->p += sp_json_plain_run(s->p, s->end);
        if (s->p >= s->end)
            break;
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end || !escape(s))
                return false;
            continue;
        }
        if (c < 0x80) {
            s->p++;
            continue;
        }
        size_t n = utf8_seq_len(s->p, (size_t)(s->end - s->p));
        if (n == 0)
            return false;
        s->p += n;
    }
    return false;
}

static bool value(scan *s);

static bool container(scan *s, unsigned char close)
{
    if (++s->depth > s->max_depth)
        return false;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return true;
    }
    sp_slice keys[PLAIN_MAX_KEYS];
    size_t nkeys = 0;
    for (;;) {
        if (close == '}') {
            ws(s);
            const unsigned char *k = s->p;
            if (s->p >= s->end || *s->p != '"' || !string(s))
                return false;
            if (s->plain) { /* no key twice: compared as bytes, so none escaped */
                sp_slice key = sp_slice_make((const char *)k + 1, (size_t)(s->p - k) - 2);
                if (nkeys == PLAIN_MAX_KEYS || memchr(key.base, '\\', key.len))
                    return false;
                for (size_t i = 0; i < nkeys; i++)
                    if (keys[i].len == key.len && memcmp(keys[i].base, key.base, key.len) == 0)
                        return false;
                keys[nkeys++] = key;
            }
            ws(s);
            if (s->p >= s->end || *s->p++ != ':')
                return false;
        }
        if (!value(s))
            return false;
        ws(s);
        if (s->p >= s->end)
            return false;
        unsigned char c = *s->p++;
        if (c == close)
            break;
        if (c != ',')
            return false;
    }
    s->depth--;
    return true;
}

static bool value(scan *s)
{
    ws(s);
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '{': return container(s, '}');
    case '[': return container(s, ']');
    case '"': return string(s);
    case 't': return lit(s, "true", 4);
    case 'f': return lit(s, "false", 5);
    case 'n': return lit(s, "null", 4);
    default: return number(s);
    }
}

static bool valid(sp_slice in, unsigned max_depth, bool plain)
{
    scan s = {(const unsigned char *)in.base, (const unsigned char *)in.base + in.len, 0, max_depth,
              plain};
    if (in.len == 0 || !value(&s))
        return false;
    ws(&s);
    return s.p == s.end;
}

bool sp_json_valid(sp_slice in, unsigned max_depth)
{
    return valid(in, max_depth, false);
}

bool sp_json_valid_plain(sp_slice in, unsigned max_depth)
{
    return valid(in, max_depth < PLAIN_MAX_DEPTH ? max_depth : PLAIN_MAX_DEPTH, true);
}

static long split_array(sp_slice in, unsigned max_depth, bool plain, sp_slice *out, size_t max)
{
    scan s = {(const unsigned char *)in.base, (const unsigned char *)in.base + in.len, 1, max_depth,
              plain};
    ws(&s);
    if (s.p >= s.end || *s.p != '[')
        return -1;
    s.p++;
    size_t n = 0;
    ws(&s);
    if (s.p < s.end && *s.p == ']') {
        s.p++;
    } else {
        for (;;) {
            ws(&s);
            const unsigned char *start = s.p;
            if (!value(&s))
                return -1;
            if (n == max)
                return -2;
            out[n++] = sp_slice_make((const char *)start, (size_t)(s.p - start));
            ws(&s);
            if (s.p >= s.end)
                return -1;
            unsigned char c = *s.p++;
            if (c == ']')
                break;
            if (c != ',')
                return -1;
        }
    }
    ws(&s);
    return s.p == s.end ? (long)n : -1;
}

long sp_json_split_array(sp_slice in, unsigned max_depth, sp_slice *out, size_t max)
{
    return split_array(in, max_depth, false, out, max);
}

long sp_json_split_array_plain(sp_slice in, unsigned max_depth, sp_slice *out, size_t max)
{
    if (max_depth == 0)
        return -1; /* the array itself is one level */
    return split_array(in, max_depth < PLAIN_MAX_DEPTH ? max_depth : PLAIN_MAX_DEPTH, true, out,
                       max);
}
