/* response.c - turning answers into bytes, in request order.
 *
 * Each connection keeps its dispatched requests in a FIFO. A response for
 * the request at the head is serialised straight into the connection's
 * output buffer; one for a later request (a pipelined request whose
 * handler finished first) is held in that request's own buffer until every
 * earlier response is out. Responses produced in one read are coalesced
 * into one write (see server.c's flush). */
#include <time.h>

#include "core/json.h"
#include "core/log.h"
#include "core/time.h"
#include "http/http_int.h"

const char *sp_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

void sp__http_worker_update_date(sp_http_worker *w)
{
    time_t now = time(NULL);
    if ((uint64_t)now != w->date_sec) {
        w->date_sec = (uint64_t)now;
        sp_time_http_date((int64_t)now, w->date);
    }
}

static void put_request_id(sp_buf *b, const sp_http_req *req)
{
    if (req->request_id.len) {
        sp_buf_append(b, "X-Request-Id: ", 14);
        sp_buf_append_slice(b, req->request_id);
        sp_buf_append(b, "\r\n", 2);
    }
}

/* The caller's headers and the blank line that ends the head. */
static void put_headers_end(sp_buf *b, const sp_http_header *headers, size_t nheaders)
{
    for (size_t i = 0; i < nheaders; i++) {
        sp_buf_append_slice(b, headers[i].name);
        sp_buf_append(b, ": ", 2);
        sp_buf_append_slice(b, headers[i].value);
        sp_buf_append(b, "\r\n", 2);
    }
    sp_buf_append(b, "\r\n", 2);
}

static bool status_has_body(int status)
{
    return !(status == 204 || status == 304 || (status >= 100 && status < 200));
}

/* Appends n bytes at *p; the caller reserved room for all of them. */
static inline void put(char **p, const void *src, size_t n)
{
    if (n) { /* memcpy from a NULL base is undefined even for 0 bytes */
        memcpy(*p, src, n);
        *p += n;
    }
}

/* The hot path: one reservation for the whole response, then plain copies
 * (the callers' buffers are unlimited, so the reservation cannot fail). */
void sp__http_write_response(sp_http_worker *w, sp_buf *b, sp_http_req *req, int status,
                             const sp_http_header *headers, size_t nheaders, sp_slice body,
                             bool keepalive)
{
    char num[24];
    sp__http_worker_update_date(w);
    bool with_body = status_has_body(status);
    bool send_body = with_body && req->method != SP_HTTP_HEAD;
    const char *text = sp_http_status_text(status);
    size_t text_len = strlen(text);
    size_t clen = with_body ? sp_u64_to_dec(body.len, num) : 0;
    size_t need = 9 + 4 + text_len + 8 + 29 + 17 + (with_body ? 16 + clen + 2 : 0) +
                  (req->request_id.len ? 14 + req->request_id.len + 2 : 0) + 24 + 2 +
                  (send_body ? body.len : 0);
    for (size_t i = 0; i < nheaders; i++)
        need += headers[i].name.len + headers[i].value.len + 4;
    if (sp_buf_reserve(b, need) != 0)
        return;
    char *p = b->base + b->len;
    char code[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), ' '};
    put(&p, "HTTP/1.1 ", 9);
    put(&p, code, 4);
    put(&p, text, text_len);
    put(&p, "\r\nDate: ", 8);
    put(&p, w->date, 29);
    put(&p, "\r\nServer: spate\r\n", 17);
    if (with_body) {
        put(&p, "Content-Length: ", 16);
        put(&p, num, clen);
        put(&p, "\r\n", 2);
    }
    if (req->request_id.len) {
        put(&p, "X-Request-Id: ", 14);
        put(&p, req->request_id.base, req->request_id.len);
        put(&p, "\r\n", 2);
    }
    if (!keepalive)
        put(&p, "Connection: close\r\n", 19);
    else if (req->http_minor == 0)
        put(&p, "Connection: keep-alive\r\n", 24);
    for (size_t i = 0; i < nheaders; i++) {
        put(&p, headers[i].name.base, headers[i].name.len);
        put(&p, ": ", 2);
        put(&p, headers[i].value.base, headers[i].value.len);
        put(&p, "\r\n", 2);
    }
    put(&p, "\r\n", 2);
    if (send_body)
        put(&p, body.base, body.len);
    b->len = (size_t)(p - b->base);
    b->base[b->len] = '\0';
}

void sp__http_write_stream_head(sp_http_worker *w, sp_buf *b, sp_http_req *req, int status,
                                const sp_http_header *headers, size_t nheaders)
{
    sp__http_worker_update_date(w);
    sp_buf_printf(b, "HTTP/1.1 %d %s\r\nDate: ", status, sp_http_status_text(status));
    sp_buf_append(b, w->date, 29);
    sp_buf_append_cstr(b, status == 101 ? "\r\nServer: spate\r\n"
                                        : "\r\nServer: spate\r\nConnection: close\r\n");
    put_request_id(b, req);
    put_headers_end(b, headers, nheaders);
}

/* Whether this response may leave the connection open. Connection-wide
 * reasons to close (peer half-closed, server draining) apply only to the
 * last request the connection will carry: earlier pipelined requests are
 * still answered normally, so none of them is executed and then left
 * without its response. (The per-connection request limit is decided when
 * the request is parsed: see hook_request.) */
static bool keep_alive(const sp_http_conn *c, const sp_http_req *req)
{
    /* After EOF a half-received request can never complete: it does not count. */
    bool last = req == c->q_tail && (c->eof || !sp__http_parser_mid_request(&c->parser));
    return req->keepalive && !req->close_after && !req->is_upgrade && !c->close_after_flush &&
           !((c->eof || c->draining) && last);
}

void sp_http_respond(sp_http_req *req, int status, const sp_http_header *headers, size_t nheaders,
                     sp_slice body)
{
    sp_http_conn *c = req->conn;
    req->status = status;
    req->responded = true;
    sp__http_req_settled(c, req);
    if (!c->closing) {
        bool keep = keep_alive(c, req);
        if (!keep)
            req->close_after = true;
        sp_buf *dst = c->q_head == req ? &c->out : &req->resp;
        sp__http_write_response(c->w, dst, req, status, headers, nheaders, body, keep);
    }
    sp__http_advance_queue(c);
}

void sp_http_respond_json(sp_http_req *req, int status, sp_slice json)
{
    static const sp_http_header ct = {{"Content-Type", 12}, {"application/json", 16}};
    sp_http_respond(req, status, &ct, 1, json);
}

void sp_http_respond_error(sp_http_req *req, int status, const char *msg)
{
    char storage[512];
    sp_buf b = {storage, 0, sizeof storage - 1, sizeof storage - 1};
    sp_json_detail(&b, sp_slice_cstr(msg));
    sp_http_respond_json(req, status, sp_buf_slice(&b));
}

static void access_log(sp_http_conn *c, sp_http_req *req, uint64_t dur_ns)
{
    SP_LOG_INFO("request",
                SP_LF_SLICE("method", req->method_name) SP_LF_SLICE("path", req->path)
                    SP_LF_INT("status", req->status) SP_LF_SLICE("request_id", req->request_id)
                        SP_LF_STR("route", sp__router_label(c->w->srv->router, req->route_idx))
                            SP_LF_DBL("ms", (double)dur_ns / 1e6));
}

void sp__http_advance_queue(sp_http_conn *c)
{
    sp_http_worker *w = c->w;
    sp_http_req *req;
    while ((req = c->q_head) != NULL && req->responded) {
        c->q_head = req->next;
        if (c->q_head == NULL)
            c->q_tail = NULL;
        c->inflight--;
        if (!c->closing && !c->close_after_flush && req->resp.len)
            sp_buf_append(&c->out, req->resp.base, req->resp.len);
        if (req->close_after)
            c->close_after_flush = true;
        uint64_t dur = uv_hrtime() - req->start_ns;
        if (req->status) { /* 0: held, never started, dropped with its connection */
            sp__http_stats_request(&w->stats, req->route_idx, req->method, req->status, dur);
            if (w->srv->opts.access_log)
                access_log(c, req, dur);
        }
        sp__http_req_release(w, req);
        c->refs--;
    }
    /* A stream that just reached the head: what it wrote meanwhile goes out. */
    if (req && req->streaming && req->resp.len && !c->closing) {
        sp_buf_append(&c->out, req->resp.base, req->resp.len);
        sp_buf_reset(&req->resp);
    }
    sp__http_conn_after_response(c);
}
