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
        char esc[6] = { '\\', 0, 0, 0, 0, 0 };
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
