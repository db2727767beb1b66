/* fuzz_http.c - libFuzzer target for the HTTP request path, no sockets.
 *
 * Drives what a connection does with the bytes it reads: the socket-free
 * parser (sp__http_parser_feed) with tight limits, requests taken from a
 * one-slot pool the way a worker recycles them (sp__http_req_clear) or
 * fresh (sp__http_req_init), routing against a small table with path
 * parameters (sp__router_match), every public request accessor, and the
 * response serialiser the server uses (sp__http_write_response).
 *
 * Input layout: byte 0 is a control byte, the rest is what the peer sent.
 *   bits 0-6  read size: the input is fed in reads of this many bytes (0:
 *             one read), so every split of a request line, header name,
 *             value, chunk size or body across reads gets exercised;
 *   bit 7     pause the parser after every request and resume it (the
 *             server's backpressure path).
 * Each read is copied into its own exactly-sized heap block that is freed
 * right after the feed, as a kernel read would overwrite it: AddressSanitizer
 * then catches any pointer the parser keeps into an earlier read. A parse
 * error or an Upgrade ends the connection, as it does in the server; any
 * half-parsed request is released at the end (sp__http_parser_reset). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "http/http_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Tight limits so the fuzzer reaches every 413/414/431 edge quickly. */
static const sp_http_limits limits = {
    .max_request_line = 256,
    .max_header_bytes = 1024,
    .max_headers = 12,
    .max_body_bytes = 2048,
    .header_timeout_ms = 1000,
    .body_timeout_ms = 1000,
    .keepalive_timeout_ms = 1000,
    .max_requests_per_conn = 100,
    .max_pipelined = 4,
    .max_connections = 16,
    .max_output_bytes = 8192,
};

static sp_router *router;
static sp_http_worker *worker; /* only its Date cache is used by the serialiser */
static volatile unsigned sink; /* keeps every byte read from being optimised away */

typedef struct fuzz_conn {
    sp_http_parser parser;
    sp_http_req *spare; /* one recycled request, as the worker's free list */
    bool pause_each;
    bool stop_input; /* as the server: nothing is parsed after close or Upgrade */
    unsigned requests;
    sp_buf out;
} fuzz_conn;

static void dummy_handler(sp_http_req *req, void *udata)
{
    (void)req;
    (void)udata;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const struct {
        sp_http_method m;
        const char *pattern;
    } routes[] = {
        {SP_HTTP_GET, "/"},
        {SP_HTTP_GET, "/noop"},
        {SP_HTTP_GET, "/healthz"},
        {SP_HTTP_GET, "/v1/topics/{topic}"},
        {SP_HTTP_DELETE, "/v1/topics/{topic}"},
        {SP_HTTP_POST, "/v1/topics/{topic}/records"},
        {SP_HTTP_GET, "/v1/topics/{topic}/partitions/{p}/records/{offset}"},
        {SP_HTTP_PUT, "/v1/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}"}, /* > SP_HTTP_MAX_PARAMS */
    };
    router = sp_router_new();
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (sp_router_add(router, routes[i].m, routes[i].pattern, dummy_handler, NULL) != 0)
            abort();
    worker = sp_xcalloc(1, sizeof *worker);
    return 0;
}

static void touch(sp_slice s)
{
    unsigned h = sink;
    for (size_t i = 0; i < s.len; i++)
        h = h * 31u + (unsigned char)s.base[i];
    sink = h;
}

static sp_http_req *hook_new_req(sp_http_parser *p)
{
    fuzz_conn *c = p->owner;
    sp_http_req *req = c->spare;
    if (req) {
        c->spare = NULL;
        return req;
    }
    req = sp_xmalloc(sizeof *req);
    sp__http_req_init(req, &limits);
    return req;
}

/* Keeps one request for reuse (exercising sp__http_req_clear), frees the rest. */
static void release(fuzz_conn *c, sp_http_req *req)
{
    if (c->spare == NULL) {
        sp__http_req_clear(req);
        c->spare = req;
    } else {
        sp__http_req_destroy(req);
    }
}

static void release_destroy(sp_http_req *req)
{
    sp__http_req_destroy(req);
}

static void read_request(sp_http_req *req)
{
    touch(sp_http_req_method_name(req));
    touch(sp_http_req_path(req));
    touch(sp_http_req_query(req));
    touch(sp_http_req_body(req));
    touch(sp_http_req_header(req, SP_SLICE_LIT("host")));
    touch(sp_http_req_header(req, SP_SLICE_LIT("Content-Type")));
    touch(sp_http_req_header(req, SP_SLICE_LIT("x-request-id")));
    const sp_http_header *h = sp_http_req_headers(req);
    for (size_t i = 0, n = sp_http_req_header_count(req); i < n; i++) {
        touch(h[i].name);
        touch(h[i].value);
    }
    static const char *const qnames[] = {"offset", "limit", "", "a"};
    for (size_t i = 0; i < sizeof qnames / sizeof qnames[0]; i++) {
        sp_slice v;
        if (sp_http_req_query_param(req, qnames[i], &v))
            touch(v);
    }
    sink += (unsigned)sp_http_req_method(req);
}

static void route_request(sp_http_req *req)
{
    unsigned allow = 0;
    const sp__route *rt = sp__router_match(router, req, &allow);
    if (rt) {
        touch(sp_slice_cstr(sp__router_label(router, rt->idx)));
        touch(sp_http_req_param(req, "topic"));
        touch(sp_http_req_param(req, "offset"));
        touch(sp_http_req_param(req, "i"));
        for (unsigned i = 0; i < req->nparams; i++) {
            touch(req->params[i].name);
            touch(req->params[i].value);
        }
    } else {
        sink += allow;
    }
}

/* Serialises a response the way sp_http_respond does, echoing the
 * client's X-Request-Id (arbitrary bytes within the head limit). */
static void respond(fuzz_conn *c, sp_http_req *req, int status, sp_slice body)
{
    static const sp_http_header ct = {{"Content-Type", 12}, {"application/json", 16}};
    req->request_id = sp_http_req_header(req, SP_SLICE_LIT("x-request-id"));
    sp_buf_reset(&c->out);
    sp__http_write_response(worker, &c->out, req, status, &ct, 1, body, req->keepalive);
    touch(sp_buf_slice(&c->out));
}

static bool hook_request(sp_http_parser *p, sp_http_req *req)
{
    fuzz_conn *c = p->owner;
    c->requests++;
    read_request(req);
    route_request(req);
    respond(c, req, 200, SP_SLICE_LIT("{\"message\":\"ok\"}"));
    if (req->is_upgrade || !req->keepalive)
        c->stop_input = true;
    release(c, req);
    return c->pause_each || c->stop_input;
}

static const sp_http_parser_hooks hooks = {
    .new_req = hook_new_req,
    .on_request = hook_request,
};

/* The error answer the server would send: {"detail": reason}. */
static void respond_error(fuzz_conn *c, int status)
{
    sp_buf b;
    sp_buf_init(&b, 4096);
    sp_json_detail(&b, sp_slice_cstr(c->parser.error_msg ? c->parser.error_msg : "Bad Request"));
    sp_http_req *req = hook_new_req(&c->parser);
    respond(c, req, status, sp_buf_slice(&b));
    release(c, req);
    sp_buf_free(&b);
}

/* Feeds one read, resuming after every pause. Returns false when the
 * connection is over (error or upgrade). */
static bool feed_read(fuzz_conn *c, const uint8_t *bytes, size_t len)
{
    char *rd = sp_xmalloc(len ? len : 1);
    memcpy(rd, bytes, len);
    size_t off = 0;
    bool alive = true;
    while (alive) {
        size_t used = 0;
        int rc = sp__http_parser_feed(&c->parser, rd + off, len - off, &used);
        if (rc == SP_HTTP_FEED_OK)
            break;
        if (rc != SP_HTTP_FEED_PAUSED) {
            respond_error(c, rc);
            alive = false;
            break;
        }
        if (c->parser.upgrade || c->stop_input || used > len - off) {
            alive = false;
            break;
        }
        off += used;
        sp__http_parser_resume(&c->parser);
        if (off == len)
            break;
    }
    free(rd);
    return alive;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    data++;
    size--;
    fuzz_conn c;
    memset(&c, 0, sizeof c);
    c.pause_each = (ctl & 0x80) != 0;
    sp_buf_init(&c.out, SP_BUF_UNLIMITED);
    sp__http_parser_init(&c.parser, &limits, &hooks, &c);

    size_t chunk = ctl & 0x7f;
    if (chunk == 0)
        chunk = size;
    size_t off = 0;
    do {
        size_t n = size - off < chunk ? size - off : chunk;
        if (!feed_read(&c, data + off, n))
            break;
        off += n;
    } while (off < size);

    (void)sp__http_parser_mid_request(&c.parser);
    sp__http_parser_reset(&c.parser, release_destroy);
    if (c.spare)
        sp__http_req_destroy(c.spare);
    sp_buf_free(&c.out);
    return 0;
}
