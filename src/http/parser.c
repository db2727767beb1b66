/* parser.c - HTTP/1.1 request parsing: llhttp in, sp_http_req out.
 *
 * llhttp (compiled in strict mode, no lenient flag ever set) validates the
 * syntax: request line, header tokens, CL/TE conflicts, chunk sizes. This
 * file adds what llhttp leaves to its user: copying the head into the
 * request (URL and headers may arrive split across reads), every size
 * limit checked before the bytes are stored, Host for HTTP/1.1, versions,
 * and pausing after a request when the owner asks for backpressure.
 *
 * No sockets here: a parser is driven by sp__http_parser_feed, which is
 * what the server, the unit tests and the fuzz target all call. */
#include <errno.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "http/http_int.h"

enum { SCAN_REQLINE = 0, SCAN_HEADERS, SCAN_OFF };
enum { RL_START = 0, RL_START_LF, RL_METHOD, RL_TARGET, RL_VERSION, RL_LF };
enum { H_START = 0, H_LINE, H_LF, H_END_LF };

static sp_http_parser *P(llhttp_t *ll)
{
    return sp_container_of(ll, sp_http_parser, ll);
}

/* Records a limit failure; returning -1 makes llhttp stop with HPE_USER. */
static int fail(sp_http_parser *p, int status, const char *msg)
{
    p->error_status = status;
    p->error_msg = msg;
    return -1;
}

static int on_message_begin(llhttp_t *ll)
{
    sp_http_parser *p = P(ll);
    p->cur = p->hooks->new_req(p);
    p->in_value = false;
    p->head_done = false;
    p->body_expected = false;
    p->ext_bytes = 0;
    p->trailer_bytes = 0;
    if (p->hooks->on_begin)
        p->hooks->on_begin(p);
    return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
    sp_http_parser *p = P(ll);
    sp_http_req *req = p->cur;
    if (len > p->limits->max_request_line - req->url_len)
        return fail(p, 414, "Request-URI Too Long");
    sp_buf_append(&req->head, at, len); /* cannot fail: head limit covers the URL */
    req->url_len += (uint32_t)len;
    return 0;
}

static int add_span(sp_http_parser *p, sp_http_req *req)
{
    if (req->nheaders >= p->limits->max_headers)
        return fail(p, 431, "Too many request headers");
    if (req->nheaders == req->cap_headers) {
        uint32_t cap = req->cap_headers ? req->cap_headers * 2 : 16;
        if (cap > p->limits->max_headers)
            cap = (uint32_t)p->limits->max_headers;
        req->spans = sp_xrealloc(req->spans, cap * sizeof *req->spans);
        req->headers = sp_xrealloc(req->headers, cap * sizeof *req->headers);
        req->cap_headers = cap;
    }
    sp__hdr_span *s = &req->spans[req->nheaders++];
    s->name_off = (uint32_t)req->head.len;
    s->name_len = s->val_off = s->val_len = 0;
    return 0;
}

static int append_head(sp_http_parser *p, sp_http_req *req, const char *at, size_t len)
{
    if (len > p->limits->max_header_bytes - (req->head.len - req->url_len))
        return fail(p, 431, "Request Header Fields Too Large");
    sp_buf_append(&req->head, at, len);
    return 0;
}

/* Trailer fields (after a chunked body) are counted against the header
 * limit and dropped: the head is final once handlers may see it. */
static int trailer_bytes(sp_http_parser *p, size_t len)
{
    p->trailer_bytes += len;
    if (p->trailer_bytes > p->limits->max_header_bytes)
        return fail(p, 431, "Request trailer fields too large");
    return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    sp_http_parser *p = P(ll);
    sp_http_req *req = p->cur;
    if (p->head_done)
        return trailer_bytes(p, len);
    if (req->nheaders == 0 || p->in_value) {
        if (add_span(p, req))
            return -1;
        p->in_value = false;
    }
    if (append_head(p, req, at, len))
        return -1;
    req->spans[req->nheaders - 1].name_len += (uint32_t)len;
    return 0;
}

/* llhttp 8 accepts obs-fold even in strict mode: it reports the folded
 * line as a second piece of the same value, skipping the CRLF. A second
 * piece is legitimate only when it continues the first byte for byte, in
 * the same read or at the start of the next one after the first ended its
 * read; anything else is a fold, which RFC 9112 lets us reject. */
static bool contiguous(const sp_http_parser *p, const char *at)
{
    if (p->val_gen == p->feed_gen)
        return at == p->val_end;
    return p->val_end == p->val_feed_end && at == p->feed_start;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    sp_http_parser *p = P(ll);
    sp_http_req *req = p->cur;
    if (p->head_done)
        return trailer_bytes(p, len);
    sp__hdr_span *s = &req->spans[req->nheaders - 1];
    if (!p->in_value) {
        p->in_value = true;
        s->val_off = (uint32_t)req->head.len;
    }
    if (s->val_len && !contiguous(p, at))
        return fail(p, 400, "Obsolete line folding is not allowed in header values");
    p->val_end = at + len;
    p->val_feed_end = p->feed_end;
    p->val_gen = p->feed_gen;
    if (append_head(p, req, at, len))
        return -1;
    s->val_len += (uint32_t)len;
    return 0;
}

/* An empty header value produces no on_header_value call. */
static int on_header_value_complete(llhttp_t *ll)
{
    sp_http_parser *p = P(ll);
    if (p->head_done)
        return 0;
    if (!p->in_value) {
        sp__hdr_span *s = &p->cur->spans[p->cur->nheaders - 1];
        s->val_off = (uint32_t)p->cur->head.len;
        p->in_value = true;
    }
    return 0;
}

static sp_http_method map_method(uint8_t m)
{
    switch (m) {
    case HTTP_GET: return SP_HTTP_GET;
    case HTTP_HEAD: return SP_HTTP_HEAD;
    case HTTP_POST: return SP_HTTP_POST;
    case HTTP_PUT: return SP_HTTP_PUT;
    case HTTP_DELETE: return SP_HTTP_DELETE;
    case HTTP_PATCH: return SP_HTTP_PATCH;
    case HTTP_OPTIONS: return SP_HTTP_OPTIONS;
    default: return SP_HTTP_OTHER;
    }
}

/* Turns offsets into slices now that the head buffer stops growing. */
static void finish_head(sp_http_req *req)
{
    const char *base = req->head.base;
    for (uint32_t i = 0; i < req->nheaders; i++) {
        sp__hdr_span *s = &req->spans[i];
        uint32_t vlen = s->val_len; /* llhttp strips leading OWS; we strip trailing */
        while (vlen && (base[s->val_off + vlen - 1] == ' ' || base[s->val_off + vlen - 1] == '\t'))
            vlen--;
        req->headers[i].name = sp_slice_make(base + s->name_off, s->name_len);
        req->headers[i].value = sp_slice_make(base + s->val_off, vlen);
    }
    const char *q = memchr(base, '?', req->url_len);
    if (q) {
        req->path = sp_slice_make(base, (size_t)(q - base));
        req->query = sp_slice_make(q + 1, req->url_len - (size_t)(q - base) - 1);
    } else {
        req->path = sp_slice_make(base, req->url_len);
        req->query = sp_slice_make(base + req->url_len, 0);
    }
}

static int check_head(sp_http_parser *p, sp_http_req *req)
{
    llhttp_t *ll = &p->ll;
    if (ll->http_major != 1 || ll->http_minor > 1)
        return fail(p, 505, "HTTP Version Not Supported");
    if (req->url_len == 0 || req->head.base[0] != '/') {
        /* absolute-form and asterisk-form are for proxies and OPTIONS *; we
         * are an origin server. */
        return fail(p, 400, "Request target must be an absolute path");
    }
    sp_slice host = sp_http_req_header(req, SP_SLICE_LIT("host"));
    if (ll->http_minor == 1 && host.base == NULL)
        return fail(p, 400, "Missing Host header");
    unsigned hosts = 0;
    for (uint32_t i = 0; i < req->nheaders; i++)
        hosts += sp_slice_case_eq(req->headers[i].name, SP_SLICE_LIT("host"));
    if (hosts > 1)
        return fail(p, 400, "Duplicate Host header");
    sp_slice te = sp_http_req_header(req, SP_SLICE_LIT("transfer-encoding"));
    if (te.base && ll->http_minor == 0)
        return fail(p, 400, "Transfer-Encoding is not allowed in HTTP/1.0"); /* RFC 9112 6.1 */
    if (te.base && te.len == 0)
        return fail(p, 400, "Empty Transfer-Encoding header");
    if ((ll->flags & F_CONTENT_LENGTH) && ll->content_length > p->limits->max_body_bytes)
        return fail(p, 413, "Request body too large");
    return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
    sp_http_parser *p = P(ll);
    sp_http_req *req = p->cur;
    finish_head(req);
    req->method = map_method(ll->method);
    req->method_name = sp_slice_cstr(llhttp_method_name((llhttp_method_t)ll->method));
    req->http_major = ll->http_major;
    req->http_minor = ll->http_minor;
    req->keepalive = llhttp_should_keep_alive(ll) != 0;
    p->head_done = true;
    p->body_expected =
        (ll->flags & F_CHUNKED) || ((ll->flags & F_CONTENT_LENGTH) && ll->content_length);
    if (check_head(p, req))
        return -1;
    sp_slice expect = sp_http_req_header(req, SP_SLICE_LIT("expect"));
    if (expect.base) {
        if (!sp_slice_case_eq(expect, SP_SLICE_LIT("100-continue")))
            return fail(p, 417, "Unsupported Expect value");
        req->expect_continue = ll->http_minor == 1;
    }
    /* Reserve what a declared body needs, but at most 64 KiB before bytes
     * arrive: a peer cannot make us hold memory it never sends. */
    if (ll->flags & F_CONTENT_LENGTH)
        sp_buf_reserve(&req->body, ll->content_length < 65536 ? (size_t)ll->content_length : 65536);
    if (ll->upgrade) {
        /* Upgrade/CONNECT: no body; the owner decides (WebSocket later). */
        req->is_upgrade = true;
    }
    if (p->hooks->on_head)
        p->hooks->on_head(p, req);
    return 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
    sp_http_parser *p = P(ll);
    if (sp_buf_append(&p->cur->body, at, len))
        return fail(p, 413, "Request body too large");
    if (p->hooks->on_body)
        p->hooks->on_body(p);
    return 0;
}

/* Bounds chunk extensions (llhttp parses them, nothing limits them) and a
 * declared chunk size, both against the body limit, before bytes arrive. */
static int on_chunk_ext(llhttp_t *ll, const char *at, size_t len)
{
    (void)at;
    sp_http_parser *p = P(ll);
    p->ext_bytes += len + 1; /* with its ';' or '=' */
    if (p->ext_bytes > p->limits->max_body_bytes - p->cur->body.len)
        return fail(p, 413, "Chunk extensions too large");
    return 0;
}

static int on_chunk_header(llhttp_t *ll)
{
    sp_http_parser *p = P(ll);
    if (ll->content_length > p->limits->max_body_bytes - p->cur->body.len) {
        fail(p, 413, "Request body too large");
        return -1;
    }
    if (ll->content_length == 0) { /* last chunk: the trailer section follows */
        p->scan = SCAN_HEADERS;
        p->scan_sub = 0;
        p->scan_pause = 1;
        return HPE_PAUSED;
    }
    return 0;
}

static int on_message_complete(llhttp_t *ll)
{
    sp_http_parser *p = P(ll);
    sp_http_req *req = p->cur;
    bool body_mode = p->body_expected && p->scan == SCAN_OFF;
    p->cur = NULL;
    p->scan = SCAN_REQLINE; /* the next byte starts a request */
    p->scan_sub = 0;
    bool pause = p->hooks->on_request(p, req);
    if (pause) {
        p->paused = true;
        return HPE_PAUSED;
    }
    if (body_mode) { /* stop exactly here so the scanner sees the next head */
        p->scan_pause = 1;
        return HPE_PAUSED;
    }
    return 0;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
    .on_chunk_extension_name = on_chunk_ext,
    .on_chunk_extension_value = on_chunk_ext,
};

void sp__http_parser_init(sp_http_parser *p, const sp_http_limits *limits,
                          const sp_http_parser_hooks *hooks, void *owner)
{
    memset(p, 0, sizeof *p);
    llhttp_init(&p->ll, HTTP_REQUEST, &settings);
    p->limits = limits;
    p->hooks = hooks;
    p->owner = owner;
}

/* ---- the strict head scanner ------------------------------------------------
 *
 * llhttp 8, even in strict mode, accepts some things RFC 9112 does not:
 * bare LF line endings, several spaces between request-line parts, obs-fold
 * after an empty first line, a field line with an empty name. Rather than
 * patch each, every byte of a request head (and of a chunked trailer
 * section) passes this scanner before llhttp sees it. It checks the line
 * grammar only: CRLF endings, `token SP target SP HTTP/d.d CRLF`, field
 * lines that start with a name; llhttp still checks tokens and semantics.
 * Bodies go straight to llhttp, which pauses at the end of each message so
 * the scanner picks up exactly where the next head starts. */

static bool tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int scan_fail(sp_http_parser *p, int status, const char *msg)
{
    p->error_status = status;
    p->error_msg = msg;
    return status;
}

static int check_version(sp_http_parser *p)
{
    const char *v = p->version;
    if (p->scan_len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return scan_fail(p, 400, "Invalid HTTP version");
    if (v[5] != '1' || v[7] > '1')
        return scan_fail(p, 505, "HTTP Version Not Supported");
    return 0;
}

static int scan_reqline(sp_http_parser *p, unsigned char c)
{
    switch (p->scan_sub) {
    case RL_START: /* RFC 9112 2.2: empty lines before a request are ignored */
        if (c == '\r') {
            p->scan_sub = RL_START_LF;
            return 0;
        }
        if (!tchar(c))
            return scan_fail(p, 400, "Invalid method");
        p->scan_sub = RL_METHOD;
        return 0;
    case RL_START_LF:
        if (c != '\n')
            return scan_fail(p, 400, "Bare CR before the request line");
        p->scan_sub = RL_START;
        return 0;
    case RL_METHOD:
        if (c == ' ') {
            p->scan_sub = RL_TARGET;
            p->scan_len = 0;
        } else if (!tchar(c)) {
            return scan_fail(p, 400, "Invalid method");
        }
        return 0;
    case RL_TARGET:
        if (c == ' ') {
            if (p->scan_len == 0)
                return scan_fail(p, 400, "Empty request target or extra space in the request line");
            p->scan_sub = RL_VERSION;
            p->scan_len = 0;
        } else if (c == '#') {
            return scan_fail(p, 400, "A fragment is not allowed in the request target");
        } else if (c <= 0x20 || c >= 0x7f) {
            return scan_fail(p, 400,
                             c == '\r' || c == '\n' ? "Missing HTTP version"
                                                    : "Invalid character in the request target");
        } else {
            p->scan_len++;
        }
        return 0;
    case RL_VERSION:
        if (c == '\r') {
            p->scan_sub = RL_LF;
            return check_version(p);
        }
        if (p->scan_len >= sizeof p->version)
            return scan_fail(p, 400, "Invalid HTTP version");
        p->version[p->scan_len++] = (char)c;
        return 0;
    default: /* RL_LF */
        if (c != '\n')
            return scan_fail(p, 400, "Expected LF after CR");
        p->scan = SCAN_HEADERS;
        p->scan_sub = H_START;
        return 0;
    }
}

/* Returns 0, 1 when the header block just ended, or an error status. */
static int scan_field(sp_http_parser *p, unsigned char c)
{
    switch (p->scan_sub) {
    case H_START:
        if (c == '\r')
            p->scan_sub = H_END_LF;
        else if (c == ' ' || c == '\t')
            return scan_fail(p, 400, "Obsolete line folding is not allowed");
        else if (c == ':')
            return scan_fail(p, 400, "Empty header field name");
        else if (c == '\n')
            return scan_fail(p, 400, "Bare LF line ending");
        else
            p->scan_sub = H_LINE;
        return 0;
    case H_LINE:
        if (c == '\r')
            p->scan_sub = H_LF;
        else if (c == '\n')
            return scan_fail(p, 400, "Bare LF line ending");
        return 0;
    case H_LF:
        if (c != '\n')
            return scan_fail(p, 400, "Bare CR in a header line");
        p->scan_sub = H_START;
        return 0;
    default: /* H_END_LF */
        if (c != '\n')
            return scan_fail(p, 400, "Bare CR at the end of the header block");
        return 1;
    }
}

/* Validates head bytes. Returns 0 with *n = len (the head goes on), 1 with
 * *n = bytes up to and including the head's last LF, or an error status. */
static int scan_head(sp_http_parser *p, const unsigned char *d, size_t len, size_t *n)
{
    for (size_t i = 0; i < len; i++) {
        if (p->scan == SCAN_HEADERS && p->scan_sub == H_LINE) {
            /* Inside a header line only CR and LF matter: find them with
             * memchr (vectorised) instead of a call per byte. */
            const unsigned char *cr = memchr(d + i, '\r', len - i);
            size_t end = cr ? (size_t)(cr - d) : len;
            if (memchr(d + i, '\n', end - i))
                return scan_fail(p, 400, "Bare LF line ending");
            if (cr == NULL) {
                *n = len;
                return 0;
            }
            i = end; /* the CR goes through scan_field below */
        }
        int rc = p->scan == SCAN_REQLINE ? scan_reqline(p, d[i]) : scan_field(p, d[i]);
        if (rc == 1) {
            *n = i + 1;
            p->scan = SCAN_OFF;
            return 1;
        }
        if (rc)
            return rc;
    }
    *n = len;
    return 0;
}

int sp__http_parser_feed(sp_http_parser *p, const char *data, size_t len, size_t *consumed)
{
    p->feed_gen++;
    p->feed_start = data;
    p->feed_end = data + len;
    size_t pos = 0;
    while (pos < len) {
        size_t upto = len;
        if (p->scan != SCAN_OFF) {
            size_t n;
            int st = scan_head(p, (const unsigned char *)data + pos, len - pos, &n);
            if (st >= 400) {
                *consumed = len;
                return st;
            }
            upto = pos + n;
        }
        llhttp_errno_t err = llhttp_execute(&p->ll, data + pos, upto - pos);
        if (err == HPE_OK) {
            pos = upto;
            continue;
        }
        const char *ep = llhttp_get_error_pos(&p->ll);
        size_t at = ep ? (size_t)(ep - data) : upto;
        if (err == HPE_PAUSED && p->scan_pause) { /* scanner checkpoint */
            p->scan_pause = 0;
            llhttp_resume(&p->ll);
            pos = at;
            continue;
        }
        *consumed = at;
        if (err == HPE_PAUSED)
            return SP_HTTP_FEED_PAUSED;
        if (err == HPE_PAUSED_UPGRADE) {
            p->upgrade = true;
            return SP_HTTP_FEED_PAUSED;
        }
        *consumed = len;
        if (p->error_status)
            return p->error_status;
        p->error_msg = llhttp_get_error_reason(&p->ll);
        if (p->error_msg == NULL)
            p->error_msg = llhttp_errno_name(err);
        p->error_status = 400;
        return p->error_status;
    }
    *consumed = len;
    return SP_HTTP_FEED_OK;
}

void sp__http_parser_resume(sp_http_parser *p)
{
    if (p->paused) {
        p->paused = false;
        llhttp_resume(&p->ll);
    }
}

bool sp__http_parser_mid_request(const sp_http_parser *p)
{
    return p->cur != NULL;
}

void sp__http_parser_reset(sp_http_parser *p, void (*release)(sp_http_req *))
{
    if (p->cur) {
        release(p->cur);
        p->cur = NULL;
    }
}
