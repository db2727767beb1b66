/* req.c - request objects: accessors for handlers and memory helpers.
 *
 * A request's memory (head bytes, header table, body, scratch) is reused
 * across requests through the worker's free list; buffers that grew past a
 * few KiB are trimmed on clear so an idle cache stays small. */
#include <stdlib.h>

#include "core/alloc.h"
#include "http/http_int.h"

#define KEEP_BYTES 4096 /* buffer capacity kept when a request is recycled */

void sp__http_req_init(sp_http_req *req, const sp_http_limits *limits)
{
    memset(req, 0, sizeof *req);
    sp_buf_init(&req->head, limits->max_request_line + limits->max_header_bytes);
    sp_buf_init(&req->body, limits->max_body_bytes);
    sp_buf_init(&req->scratch, limits->max_output_bytes);
    sp_buf_init(&req->resp, SP_BUF_UNLIMITED);
}

static void trim(sp_buf *b)
{
    if (b->cap > KEEP_BYTES)
        sp_buf_free(b);
    else
        sp_buf_reset(b);
}

void sp__http_req_clear(sp_http_req *req)
{
    trim(&req->head);
    trim(&req->body);
    trim(&req->scratch);
    trim(&req->resp);
    if (req->cap_headers > 32) {
        free(req->spans);
        free(req->headers);
        req->spans = NULL;
        req->headers = NULL;
        req->cap_headers = 0;
    }
    req->conn = NULL;
    req->next = NULL;
    req->method = SP_HTTP_OTHER;
    req->keepalive = req->expect_continue = req->responded = false;
    req->close_after = req->is_upgrade = req->streaming = req->unsafe_open = false;
    req->stream_fn = NULL;
    req->data_fn = NULL;
    req->stream_arg = NULL;
    req->status = 0;
    req->route_idx = 0;
    req->url_len = 0;
    req->nheaders = 0;
    req->nparams = 0;
    req->path = req->query = req->method_name = req->request_id = SP_SLICE_NULL;
}

void sp__http_req_destroy(sp_http_req *req)
{
    sp_buf_free(&req->head);
    sp_buf_free(&req->body);
    sp_buf_free(&req->scratch);
    sp_buf_free(&req->resp);
    free(req->spans);
    free(req->headers);
    free(req);
}

sp_http_method sp_http_req_method(const sp_http_req *req)
{
    return req->method;
}
sp_slice sp_http_req_method_name(const sp_http_req *req)
{
    return req->method_name;
}
sp_slice sp_http_req_path(const sp_http_req *req)
{
    return req->path;
}
sp_slice sp_http_req_query(const sp_http_req *req)
{
    return req->query;
}
sp_slice sp_http_req_body(const sp_http_req *req)
{
    return sp_buf_slice(&req->body);
}
sp_slice sp_http_req_id(const sp_http_req *req)
{
    return req->request_id;
}
size_t sp_http_req_header_count(const sp_http_req *req)
{
    return req->nheaders;
}
const sp_http_header *sp_http_req_headers(const sp_http_req *req)
{
    return req->headers;
}
sp_buf *sp_http_req_scratch(sp_http_req *req)
{
    return &req->scratch;
}
void sp_http_req_set_close(sp_http_req *req)
{
    req->close_after = true;
}

sp_slice sp_http_req_header(const sp_http_req *req, sp_slice name)
{
    for (uint32_t i = 0; i < req->nheaders; i++)
        if (sp_slice_case_eq(req->headers[i].name, name))
            return req->headers[i].value;
    return SP_SLICE_NULL;
}

sp_slice sp_http_req_param(const sp_http_req *req, const char *name)
{
    sp_slice n = sp_slice_cstr(name);
    for (unsigned i = 0; i < req->nparams; i++)
        if (sp_slice_eq(req->params[i].name, n))
            return req->params[i].value;
    return SP_SLICE_NULL;
}

bool sp_http_req_query_param(const sp_http_req *req, const char *name, sp_slice *value)
{
    size_t nlen = strlen(name);
    const char *p = req->query.base, *end = p + req->query.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            *value = eq ? sp_slice_make(eq + 1, (size_t)(stop - eq - 1)) : SP_SLICE_NULL;
            if (!eq)
                value->base = stop; /* present without a value: empty, non-NULL */
            return true;
        }
        p = amp ? amp + 1 : end;
    }
    return false;
}
