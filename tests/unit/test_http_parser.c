/* Unit tests for the HTTP request path without sockets: the parser driven
 * through sp__http_parser_feed (the in-memory connection: bytes in,
 * requests out), its limits, the request accessors, and the router.
 *
 * The central property: however a request is split across reads (every
 * single split point, and one byte per read), it parses to exactly the
 * same requests, or fails with exactly the same status. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "http/http_int.h"

/* ---- an in-memory connection ------------------------------------------- */

#define MAX_REQS 16

typedef struct harness {
    sp_http_parser parser;
    sp_http_limits limits;
    sp_http_req *reqs[MAX_REQS];
    unsigned nreqs;
    unsigned begins, heads, bodies;
    bool pause_each;
} harness;

static sp_http_req *h_new_req(sp_http_parser *p)
{
    harness *h = p->owner;
    sp_http_req *req = sp_xmalloc(sizeof *req);
    sp__http_req_init(req, &h->limits);
    return req;
}

static void h_begin(sp_http_parser *p)
{
    ((harness *)p->owner)->begins++;
}

static void h_head(sp_http_parser *p, sp_http_req *req)
{
    (void)req;
    ((harness *)p->owner)->heads++;
}

static void h_body(sp_http_parser *p)
{
    ((harness *)p->owner)->bodies++;
}

static bool h_request(sp_http_parser *p, sp_http_req *req)
{
    harness *h = p->owner;
    assert_true(h->nreqs < MAX_REQS);
    h->reqs[h->nreqs++] = req;
    return h->pause_each;
}

static const sp_http_parser_hooks hooks = {
    .new_req = h_new_req,
    .on_begin = h_begin,
    .on_head = h_head,
    .on_body = h_body,
    .on_request = h_request,
};

static sp_http_limits default_limits(void)
{
    sp_http_options o;
    sp_http_options_default(&o);
    return o.limits;
}

static void h_init(harness *h, const sp_http_limits *limits)
{
    memset(h, 0, sizeof *h);
    h->limits = limits ? *limits : default_limits();
    sp__http_parser_init(&h->parser, &h->limits, &hooks, h);
}

static void h_free(harness *h)
{
    for (unsigned i = 0; i < h->nreqs; i++)
        sp__http_req_destroy(h->reqs[i]);
    h->nreqs = 0;
    sp__http_parser_reset(&h->parser, sp__http_req_destroy);
}

/* Feeds `len` bytes in pieces whose ends are given by cuts[] (ascending),
 * each piece copied into its own heap block so no piece can reach into the
 * next. Returns 0 or the first error status. */
static int feed_pieces(harness *h, const char *raw, size_t len, const size_t *cuts, size_t ncuts)
{
    size_t start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        if (end <= start)
            continue;
        char *piece = malloc(end - start);
        memcpy(piece, raw + start, end - start);
        size_t used = 0;
        int rc = sp__http_parser_feed(&h->parser, piece, end - start, &used);
        free(piece);
        if (rc != SP_HTTP_FEED_OK)
            return rc;
        assert_int_equal(used, end - start);
        start = end;
    }
    return 0;
}

static int feed_all(harness *h, const char *raw, size_t len)
{
    return feed_pieces(h, raw, len, NULL, 0);
}

static char *req_summary(const sp_http_req *r)
{
    sp_buf b;
    sp_buf_init(&b, SP_BUF_UNLIMITED);
    sp_buf_printf(&b, "%.*s|%.*s|%.*s|%u.%u|ka=%d|ec=%d|", (int)r->method_name.len,
                  r->method_name.base, (int)r->path.len, r->path.base, (int)r->query.len,
                  r->query.base, r->http_major, r->http_minor, r->keepalive, r->expect_continue);
    for (size_t i = 0; i < sp_http_req_header_count(r); i++) {
        const sp_http_header *hd = &sp_http_req_headers(r)[i];
        sp_buf_printf(&b, "[%.*s=%.*s]", (int)hd->name.len, hd->name.base, (int)hd->value.len,
                      hd->value.base);
    }
    sp_slice body = sp_http_req_body(r);
    sp_buf_printf(&b, "|body=%zu:", body.len);
    sp_buf_append(&b, body.base, body.len);
    return b.base; /* caller frees */
}

/* Everything the parser produced, as one string. */
static char *summary(harness *h, int status)
{
    sp_buf b;
    sp_buf_init(&b, SP_BUF_UNLIMITED);
    sp_buf_printf(&b, "status=%d n=%u\n", status, h->nreqs);
    for (unsigned i = 0; i < h->nreqs; i++) {
        char *s = req_summary(h->reqs[i]);
        sp_buf_printf(&b, "%s\n", s);
        free(s);
    }
    return b.base;
}

static char *parse_whole(const char *raw, size_t len, const sp_http_limits *lim)
{
    harness h;
    h_init(&h, lim);
    int rc = feed_all(&h, raw, len);
    char *s = summary(&h, rc);
    h_free(&h);
    return s;
}

/* Every split point and one byte per read give the same result as one read. */
static void assert_split_invariant(const char *raw, size_t len, const sp_http_limits *lim)
{
    char *whole = parse_whole(raw, len, lim);
    for (size_t cut = 1; cut < len; cut++) {
        harness h;
        h_init(&h, lim);
        int rc = feed_pieces(&h, raw, len, &cut, 1);
        char *s = summary(&h, rc);
        if (strcmp(s, whole) != 0)
            fail_msg("split at %zu of %zu differs:\n%s\nvs whole:\n%s", cut, len, s, whole);
        free(s);
        h_free(&h);
    }
    size_t *cuts = malloc(len * sizeof *cuts);
    for (size_t i = 0; i < len; i++)
        cuts[i] = i + 1;
    harness h;
    h_init(&h, lim);
    int rc = feed_pieces(&h, raw, len, cuts, len);
    char *s = summary(&h, rc);
    if (strcmp(s, whole) != 0)
        fail_msg("byte by byte differs:\n%s\nvs whole:\n%s", s, whole);
    free(s);
    free(cuts);
    h_free(&h);
    free(whole);
}

#define RAW(s) s, sizeof(s) - 1

/* ---- parsing --------------------------------------------------------------- */

static const char pipelined[] =
    "GET /v1/topics/news?from=10&live HTTP/1.1\r\nHost: example.com\r\nX-Request-Id: abc\r\n"
    "Accept: */*\r\nX-Empty:\r\nX-Spaces:   padded value   \r\n\r\n"
    "POST /v1/topics/news/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Content-Length: 13\r\n\r\n{\"a\":\"hello\"}"
    "PUT /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
    "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    "DELETE /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n"
    "Connection: close\r\n\r\nok";

static void test_parse_pipelined(void **state)
{
    (void)state;
    harness h;
    h_init(&h, NULL);
    assert_int_equal(feed_all(&h, RAW(pipelined)), 0);
    assert_int_equal(h.nreqs, 5);
    assert_int_equal(h.begins, 5);
    assert_int_equal(h.heads, 5);
    assert_false(sp__http_parser_mid_request(&h.parser));

    sp_http_req *r = h.reqs[0];
    assert_int_equal(sp_http_req_method(r), SP_HTTP_GET);
    assert_true(sp_slice_eq_cstr(sp_http_req_method_name(r), "GET"));
    assert_true(sp_slice_eq_cstr(sp_http_req_path(r), "/v1/topics/news"));
    assert_true(sp_slice_eq_cstr(sp_http_req_query(r), "from=10&live"));
    assert_int_equal(sp_http_req_header_count(r), 5);
    assert_true(sp_slice_eq_cstr(sp_http_req_header(r, SP_SLICE_LIT("HOST")), "example.com"));
    assert_true(sp_slice_eq_cstr(sp_http_req_header(r, SP_SLICE_LIT("x-request-id")), "abc"));
    sp_slice empty = sp_http_req_header(r, SP_SLICE_LIT("x-empty"));
    assert_non_null(empty.base);
    assert_int_equal(empty.len, 0);
    assert_null(sp_http_req_header(r, SP_SLICE_LIT("x-missing")).base);
    sp_slice v;
    assert_true(sp_http_req_query_param(r, "from", &v));
    assert_true(sp_slice_eq_cstr(v, "10"));
    assert_true(sp_http_req_query_param(r, "live", &v));
    assert_non_null(v.base);
    assert_int_equal(v.len, 0);
    assert_false(sp_http_req_query_param(r, "fro", &v));
    assert_false(sp_http_req_query_param(r, "10", &v));
    assert_true(r->keepalive);

    r = h.reqs[1];
    assert_int_equal(sp_http_req_method(r), SP_HTTP_POST);
    assert_true(sp_slice_eq_cstr(sp_http_req_body(r), "{\"a\":\"hello\"}"));
    assert_int_equal(sp_http_req_query(r).len, 0);

    r = h.reqs[2];
    assert_int_equal(sp_http_req_method(r), SP_HTTP_PUT);
    assert_true(sp_slice_eq_cstr(sp_http_req_body(r), "hello, world"));

    r = h.reqs[3];
    assert_int_equal(sp_http_req_method(r), SP_HTTP_HEAD);
    assert_int_equal(r->http_minor, 0);
    assert_true(r->keepalive);

    r = h.reqs[4];
    assert_int_equal(sp_http_req_method(r), SP_HTTP_DELETE);
    assert_true(r->expect_continue);
    assert_false(r->keepalive);
    assert_true(sp_slice_eq_cstr(sp_http_req_body(r), "ok"));
    h_free(&h);
}

/* RFC 9110 5.5: a field value excludes leading and trailing whitespace. */
static void test_value_ows_trimmed(void **state)
{
    (void)state;
    harness h;
    h_init(&h, NULL);
    assert_int_equal(
        feed_all(&h, RAW("GET / HTTP/1.1\r\nHost: x\r\nX-Spaces: \t padded value \t \r\n\r\n")), 0);
    sp_slice v = sp_http_req_header(h.reqs[0], SP_SLICE_LIT("x-spaces"));
    assert_int_equal(v.len, 12);
    assert_memory_equal(v.base, "padded value", 12);
    h_free(&h);
}

/* Trailer fields after a chunked body must not touch the request's head:
 * they arrive after finish_head() built the slices. */
static void test_chunked_trailers(void **state)
{
    (void)state;
    char raw[8192];
    int n = snprintf(
        raw, sizeof raw,
        "GET /t?q=1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: keep\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\nX-Trailer: %05000d\r\n\r\n",
        0);
    harness h;
    h_init(&h, NULL);
    assert_int_equal(feed_all(&h, raw, (size_t)n), 0);
    assert_int_equal(h.nreqs, 1);
    sp_http_req *r = h.reqs[0];
    assert_int_equal(sp_http_req_header_count(r), 3); /* trailers are not headers */
    assert_true(sp_slice_eq_cstr(sp_http_req_path(r), "/t"));
    assert_true(sp_slice_eq_cstr(sp_http_req_header(r, SP_SLICE_LIT("x-request-id")), "keep"));
    assert_true(sp_slice_eq_cstr(sp_http_req_body(r), "abc"));
    h_free(&h);
    assert_split_invariant(raw, (size_t)n, NULL);
}

static void test_split_at_every_byte(void **state)
{
    (void)state;
    assert_split_invariant(RAW(pipelined), NULL);
    /* long header values and URLs that cross many reads */
    char big[4096];
    int n =
        snprintf(big, sizeof big,
                 "GET /%0600d?q=%0300d HTTP/1.1\r\nHost: h\r\nX-Long: %01000d\r\n\r\n", 7, 8, 9);
    assert_split_invariant(big, (size_t)n, NULL);
}

static void test_split_errors_identical(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: "
        "chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nExpect: nope\r\n\r\n",
        /* a good request, then a bad one: the first is still delivered */
        "GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_split_invariant(bad[i], strlen(bad[i]), NULL);
}

static int status_of(const char *raw, size_t len, const sp_http_limits *lim, unsigned *nreqs)
{
    harness h;
    h_init(&h, lim);
    int rc = feed_all(&h, raw, len);
    if (nreqs)
        *nreqs = h.nreqs;
    if (rc >= 400)
        assert_non_null(h.parser.error_msg);
    h_free(&h);
    return rc;
}

static void test_statuses(void **state)
{
    (void)state;
    static const struct {
        const char *raw;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
        {"GET / HTTP/1.0\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/3.1\r\nHost: x\r\n\r\n", 505},
        {"GET / http/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: x\r\nExpect: other\r\n\r\n", 417},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: "
         "1\r\n\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n\tb\r\n\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = status_of(cases[i].raw, strlen(cases[i].raw), NULL, NULL);
        if (rc != cases[i].status)
            fail_msg("case %zu: got %d want %d for %s", i, rc, cases[i].status, cases[i].raw);
    }
}

static void test_limits(void **state)
{
    (void)state;
    sp_http_limits lim = default_limits();
    lim.max_request_line = 64;
    lim.max_header_bytes = 128;
    lim.max_headers = 4;
    lim.max_body_bytes = 16;
    char buf[1024];
    int n;

    /* request line: the URL at the limit passes, one more byte is 414 */
    n = snprintf(buf, sizeof buf, "GET /%063d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_int_equal(status_of(buf, (size_t)n, &lim, NULL), 0);
    n = snprintf(buf, sizeof buf, "GET /%064d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    assert_int_equal(status_of(buf, (size_t)n, &lim, NULL), 414);
    assert_split_invariant(buf, (size_t)n, &lim);

    /* header bytes (names + values) */
    n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: x\r\nX: %0130d\r\n\r\n", 0);
    assert_int_equal(status_of(buf, (size_t)n, &lim, NULL), 431);
    assert_split_invariant(buf, (size_t)n, &lim);
    n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: x\r\nX: %0100d\r\n\r\n", 0);
    assert_int_equal(status_of(buf, (size_t)n, &lim, NULL), 0);

    /* header count */
    static const char four[] = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    static const char five[] = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    assert_int_equal(status_of(RAW(four), &lim, NULL), 0);
    assert_int_equal(status_of(RAW(five), &lim, NULL), 431);

    /* body by Content-Length: decided at the head, before any body byte */
    static const char cl_ok[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n";
    static const char cl_big[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n";
    harness h;
    h_init(&h, &lim);
    assert_int_equal(feed_all(&h, RAW(cl_ok)), 0);
    assert_true(sp__http_parser_mid_request(&h.parser));
    h_free(&h);
    assert_int_equal(status_of(RAW(cl_big), &lim, NULL), 413);

    /* chunked: while streaming, at the first byte past the limit */
    static const char chunked[] = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "8\r\n12345678\r\n8\r\n12345678\r\n1\r\nX\r\n0\r\n\r\n";
    assert_int_equal(status_of(RAW(chunked), &lim, NULL), 413);
    assert_split_invariant(RAW(chunked), &lim);
    static const char chunked_ok[] =
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
    unsigned nreqs = 0;
    assert_int_equal(status_of(RAW(chunked_ok), &lim, &nreqs), 0);
    assert_int_equal(nreqs, 1);
}

static void test_pause_and_resume(void **state)
{
    (void)state;
    static const char two[] =
        "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    harness h;
    h_init(&h, NULL);
    h.pause_each = true;
    size_t used = 0;
    int rc = sp__http_parser_feed(&h.parser, RAW(two), &used);
    assert_int_equal(rc, SP_HTTP_FEED_PAUSED);
    assert_int_equal(h.nreqs, 1);
    assert_int_equal(used, strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
    sp__http_parser_resume(&h.parser);
    size_t used2 = 0;
    rc = sp__http_parser_feed(&h.parser, two + used, sizeof two - 1 - used, &used2);
    assert_int_equal(rc, SP_HTTP_FEED_PAUSED);
    assert_int_equal(h.nreqs, 2);
    assert_int_equal(used + used2, sizeof two - 1);
    assert_true(sp_slice_eq_cstr(sp_http_req_path(h.reqs[1]), "/b"));
    h_free(&h);
}

static void test_reset_mid_request(void **state)
{
    (void)state;
    harness h;
    h_init(&h, NULL);
    assert_int_equal(
        feed_all(&h, RAW("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc")), 0);
    assert_true(sp__http_parser_mid_request(&h.parser));
    h_free(&h); /* frees the partial request: ASan proves nothing leaks */
    assert_false(sp__http_parser_mid_request(&h.parser));
}

static void test_req_clear_reuse(void **state)
{
    (void)state;
    harness h;
    h_init(&h, NULL);
    assert_int_equal(feed_all(&h, RAW(pipelined)), 0);
    sp_http_req *r = h.reqs[1];
    sp__http_req_clear(r);
    assert_int_equal(sp_http_req_header_count(r), 0);
    assert_int_equal(sp_http_req_body(r).len, 0);
    assert_null(sp_http_req_path(r).base);
    assert_int_equal(sp_buf_append(sp_http_req_scratch(r), "x", 1), 0);
    h_free(&h);
}

/* ---- router ---------------------------------------------------------------- */

static void dummy(sp_http_req *req, void *udata)
{
    (void)req;
    (void)udata;
}

static sp_http_req *parse_one(harness *h, const char *raw)
{
    h_init(h, NULL);
    assert_int_equal(feed_all(h, raw, strlen(raw)), 0);
    assert_int_equal(h->nreqs, 1);
    return h->reqs[0];
}

static const sp__route *match(const sp_router *r, const char *raw, unsigned *allow, harness *h)
{
    sp_http_req *req = parse_one(h, raw);
    return sp__router_match(r, req, allow);
}

static void test_router(void **state)
{
    (void)state;
    sp_router *r = sp_router_new();
    int a = 1, b = 2;
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/", dummy, NULL), 0);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}", dummy, &a), 0);
    assert_int_equal(sp_router_add(r, SP_HTTP_POST, "/v1/topics/{t}", dummy, &b), 0);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}/records/{off}", dummy, NULL), 0);
    assert_int_equal(sp_router_add(r, SP_HTTP_DELETE, "/v1/admin", dummy, NULL), 0);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}", dummy, NULL), -EEXIST);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "no-slash", dummy, NULL), -EINVAL);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/a//b", dummy, NULL), -EINVAL);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/a/{}", dummy, NULL), -EINVAL);

    harness h;
    unsigned allow;
    const sp__route *rt;

    rt = match(r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &allow, &h);
    assert_non_null(rt);
    assert_string_equal(sp__router_label(r, rt->idx), "/");
    h_free(&h);

    rt = match(r, "GET /v1/topics/news?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", &allow, &h);
    assert_non_null(rt);
    assert_ptr_equal(rt->udata, &a);
    assert_true(sp_slice_eq_cstr(sp_http_req_param(h.reqs[0], "t"), "news"));
    assert_null(sp_http_req_param(h.reqs[0], "off").base);
    h_free(&h);

    rt = match(r, "POST /v1/topics/news HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &allow,
               &h);
    assert_non_null(rt);
    assert_ptr_equal(rt->udata, &b);
    h_free(&h);

    rt = match(r, "GET /v1/topics/a%20b/records/42 HTTP/1.1\r\nHost: x\r\n\r\n", &allow, &h);
    assert_non_null(rt);
    assert_string_equal(sp__router_label(r, rt->idx), "/v1/topics/{t}/records/{off}");
    assert_true(sp_slice_eq_cstr(sp_http_req_param(h.reqs[0], "t"), "a%20b"));
    assert_true(sp_slice_eq_cstr(sp_http_req_param(h.reqs[0], "off"), "42"));
    h_free(&h);

    /* HEAD falls back to GET */
    rt = match(r, "HEAD /v1/topics/news HTTP/1.1\r\nHost: x\r\n\r\n", &allow, &h);
    assert_non_null(rt);
    assert_ptr_equal(rt->udata, &a);
    assert_true(sp_slice_eq_cstr(sp_http_req_param(h.reqs[0], "t"), "news"));
    h_free(&h);

    /* 405: the allow mask names every method of the path, HEAD with GET */
    rt = match(r, "DELETE /v1/topics/news HTTP/1.1\r\nHost: x\r\n\r\n", &allow, &h);
    assert_null(rt);
    assert_int_equal(allow, (1u << SP_HTTP_GET) | (1u << SP_HTTP_HEAD) | (1u << SP_HTTP_POST));
    h_free(&h);
    rt = match(r, "GET /v1/admin HTTP/1.1\r\nHost: x\r\n\r\n", &allow, &h);
    assert_null(rt);
    assert_int_equal(allow, 1u << SP_HTTP_DELETE);
    h_free(&h);
    rt = match(r, "HEAD /v1/admin HTTP/1.1\r\nHost: x\r\n\r\n", &allow, &h);
    assert_null(rt);
    assert_int_equal(allow, 1u << SP_HTTP_DELETE);
    h_free(&h);

    /* 404: no route has the path */
    static const char *const missing[] = {
        "GET /v1 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/topics HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/topics/news/ HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1//news HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET //v1/topics/news HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/topics/news/records HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/topics/news/records/1/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /V1/topics/news HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        rt = match(r, missing[i], &allow, &h);
        if (rt || allow)
            fail_msg("%s: expected 404", missing[i]);
        h_free(&h);
    }
    assert_string_equal(sp__router_label(r, 0), "unmatched");
    assert_string_equal(sp__router_label(r, 999), "unmatched");
    sp_router_free(r);
}

static void test_router_capacity(void **state)
{
    (void)state;
    sp_router *r = sp_router_new();
    char pat[32];
    int rc = 0, added = 0;
    for (int i = 0; i < SP_HTTP_MAX_ROUTES + 5 && rc == 0; i++) {
        snprintf(pat, sizeof pat, "/r%d", i);
        rc = sp_router_add(r, SP_HTTP_GET, pat, dummy, NULL);
        if (rc == 0)
            added++;
    }
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(added, SP_HTTP_MAX_ROUTES - 1); /* index 0 is "unmatched" */
    sp_router_free(r);
}

static void test_status_text(void **state)
{
    (void)state;
    assert_string_equal(sp_http_status_text(413), "Content Too Large");
    assert_string_equal(sp_http_status_text(431), "Request Header Fields Too Large");
    assert_string_equal(sp_http_status_text(505), "HTTP Version Not Supported");
    assert_string_equal(sp_http_status_text(799), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_pipelined),
        cmocka_unit_test(test_value_ows_trimmed),
        cmocka_unit_test(test_chunked_trailers),
        cmocka_unit_test(test_split_at_every_byte),
        cmocka_unit_test(test_split_errors_identical),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_reset_mid_request),
        cmocka_unit_test(test_req_clear_reuse),
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_router_capacity),
        cmocka_unit_test(test_status_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
