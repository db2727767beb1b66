/* server.c - listeners, connections, timeouts, backpressure, shutdown.
 *
 * One worker per I/O loop. The main thread binds every listener (one
 * SO_REUSEPORT socket per worker, so the kernel spreads connections and
 * bind errors surface before any thread starts); each worker then accepts
 * on its own socket and owns those connections until they close.
 *
 * Input: libuv reads into the worker's one 64 KiB buffer; the parser
 * copies what a request keeps, so nothing is retained between reads except
 * when the parser is paused for backpressure (too many requests in flight,
 * or too much output queued): then the unparsed rest is saved in
 * conn->pending and reading stops until responses drain.
 *
 * Output: responses are appended to conn->out and written once per read
 * (uv_try_write first; uv_write for the remainder), so pipelined requests
 * share one syscall.
 *
 * Timeouts: one uv timer per connection, armed lazily. Each phase (head,
 * body, keep-alive, lingering close) just moves conn->deadline; the timer
 * re-arms itself when it fires early, so the hot path touches no heap.
 *
 * Lifetime: conn->refs counts the socket plus every request a handler
 * still holds. Closing drops the socket's reference after both handles
 * closed; a handler answering a request on a closed connection is fine,
 * its response is discarded, and the last reference frees the memory. */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "http/http_int.h"

/* T_FLUSH: the last response is queued but the peer is slow to take it;
 * T_LINGER: written and half-closed, discarding input until EOF. */
enum { T_NONE = 0, T_HEADER, T_BODY, T_KEEPALIVE, T_FLUSH, T_LINGER, T_DEAD };

#define LINGER_MS      2000
#define LISTEN_BACKLOG 4096

void sp_http_options_default(sp_http_options *o)
{
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8000;
    o->threads = 0;
    o->limits = (sp_http_limits){
        .max_request_line = 8192,
        .max_header_bytes = 16384,
        .max_headers = 100,
        .max_body_bytes = 1 << 20,
        .header_timeout_ms = 10000,
        .body_timeout_ms = 10000,
        .keepalive_timeout_ms = 30000,
        .max_requests_per_conn = 10000,
        .max_pipelined = 32,
        .max_connections = 10000,
        .max_output_bytes = 4 << 20,
    };
    o->slow_handler_ms = 50;
    o->loop_lag_interval_ms = 100;
    o->shutdown_timeout_ms = 10000;
}

static void worker_stop(sp_http_worker *w);
static void start_reading(sp_http_conn *c);
static void on_relisten(uv_timer_t *t);
static int bind_listener(const struct sockaddr_storage *ss, int *port_io);
static void stop_reading(sp_http_conn *c);

/* ---- requests: pooled per worker ---------------------------------------- */

static sp_http_req *req_get(sp_http_worker *w)
{
    sp_http_req *req = w->free_reqs;
    if (req) {
        w->free_reqs = req->next;
        w->nfree_reqs--;
        req->next = NULL;
        return req;
    }
    req = sp_xmalloc(sizeof *req);
    sp__http_req_init(req, &w->srv->opts.limits);
    return req;
}

void sp__http_req_release(sp_http_worker *w, sp_http_req *req)
{
    /* After worker_stop emptied the pool, requests still finishing (a late
     * acknowledgement) must not be cached where nobody frees them. */
    if (w->nfree_reqs >= SP_HTTP_REQ_CACHE || w->stopped) {
        sp__http_req_destroy(req);
        return;
    }
    sp__http_req_clear(req);
    req->next = w->free_reqs;
    w->free_reqs = req;
    w->nfree_reqs++;
}

/* ---- timers ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static void set_deadline(sp_http_conn *c, uint8_t kind, uint64_t ms)
{
    if (c->failed)
        return; /* T_DEAD stays: the close is already due */
    c->tkind = kind;
    if (kind == T_NONE || c->closing)
        return;
    uint64_t now = uv_now(&c->w->loop->uv);
    c->deadline = now + ms;
    if (c->timer_due == 0 || c->deadline < c->timer_due) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, ms, 0);
    }
}

/* ---- closing ------------------------------------------------------------ */

static void conn_free(sp_http_conn *c)
{
    sp_http_worker *w = c->w;
    sp_buf_free(&c->out);
    sp_buf_free(&c->wbuf);
    sp_buf_free(&c->pending);
    free(c);
    if (w->draining && w->nconns == 0 && w->pending_closes == 0 && !w->stopped) {
        /* the last connection of a draining worker */
        worker_stop(w);
    }
}

void sp__http_conn_unref(sp_http_conn *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

/* libuv runs close callbacks in no promised order (LIFO today): the
 * socket's reference goes only when both handles are closed. */
static void on_handle_closed(uv_handle_t *h)
{
    sp_http_conn *c = h->data;
    if (--c->open_handles == 0) {
        c->w->pending_closes--;
        sp__http_conn_unref(c);
    }
}

void sp__http_conn_close(sp_http_conn *c)
{
    if (c->closing)
        return;
    sp_http_worker *w = c->w;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->srv->nconns, 1);
    if (c->stream)
        sp__http_stream_closed(c);
    if (c->parser.cur) {
        sp__http_req_release(w, c->parser.cur);
        c->parser.cur = NULL;
    }
    if (c->held) { /* never started: it leaves the queue when its turn comes */
        c->held->responded = true;
        c->held = NULL;
        if (c->q_head && c->q_head->responded)
            sp__http_advance_queue(c);
    }
    w->pending_closes++;
    c->open_handles = 2;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    sp_http_conn *c = sr->data;
    free(sr);
    if (status < 0 || c->eof)
        sp__http_conn_close(c);
    sp__http_conn_unref(c);
}

/* A failed write or shutdown: the connection is dead, but a parser
 * callback or a handler may be on the stack, so closing now would free what
 * they still hold. Mark it, stop its input, and let its timer close it at
 * the top of the next loop turn (redis freeClientAsync). */
static void conn_fail(sp_http_conn *c)
{
    if (c->closing || c->failed)
        return;
    c->failed = true;
    c->stop_input = true;
    c->tkind = T_DEAD;
    c->deadline = c->timer_due = uv_now(&c->w->loop->uv);
    uv_timer_start(&c->timer, on_timer, 0, 0);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Half-closes and keeps reading (discarding) briefly, so the peer gets our
 * last response instead of a reset caused by its unread pipelined bytes. */
static void linger_close(sp_http_conn *c)
{
    if (c->closing || c->tkind == T_LINGER)
        return;
    set_deadline(c, T_LINGER, LINGER_MS);
    uv_shutdown_t *sr = sp_xmalloc(sizeof *sr);
    sr->data = c;
    c->refs++;
    if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(sr);
        c->refs--;
        conn_fail(c);
        return;
    }
    if (!c->reading && !c->eof)
        start_reading(c);
}

/* ---- writing -------------------------------------------------------------- */

/* After a read or a write: write what is queued, take more input if the
 * backlog allows, and tell a stream that its output drained. */
static void after_io(sp_http_conn *c)
{
    if (c->closing || c->failed)
        return;
    sp__http_conn_flush(c);
    sp__http_conn_maybe_resume(c);
    if (c->stream && !c->writing && c->out.len == 0)
        sp__http_stream_drained(c);
}

static void on_write(uv_write_t *wr, int status)
{
    sp_http_conn *c = wr->data;
    c->writing = false;
    if (status == 0)
        SP_STAT_ADD(c->w->stats.bytes_out, c->wbuf.len);
    sp_buf_reset(&c->wbuf);
    if (status < 0 && !c->closing)
        sp__http_conn_close(c);
    after_io(c);
    sp__http_conn_unref(c);
}

void sp__http_conn_flush(sp_http_conn *c)
{
    if (c->closing || c->writing || c->failed)
        return;
    if (c->out.len == 0) {
        if (c->close_after_flush)
            linger_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(c->out.base, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0) {
        conn_fail(c);
        return;
    }
    SP_STAT_ADD(c->w->stats.bytes_out, (uint64_t)n);
    if ((size_t)n == c->out.len) {
        if (c->out.cap > 64 * 1024)
            sp_buf_free(&c->out);
        else
            sp_buf_reset(&c->out);
        if (c->close_after_flush)
            linger_close(c);
        return;
    }
    sp_buf_consume(&c->out, (size_t)n);
    sp_buf tmp = c->wbuf; /* empty: no write is in progress */
    c->wbuf = c->out;
    c->out = tmp;
    b = uv_buf_init(c->wbuf.base, (unsigned)c->wbuf.len);
    c->wreq.data = c;
    c->refs++;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        c->refs--;
        conn_fail(c);
        return;
    }
    c->writing = true;
}

/* ---- reading ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sp_http_conn *c = h->data;
    buf->base = c->w->readbuf;
    buf->len = sizeof c->w->readbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void start_reading(sp_http_conn *c)
{
    if (c->reading || c->closing || c->eof)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

/* A stream keeps reading (and discarding) to notice the client leaving. */
void sp__http_conn_keep_reading(sp_http_conn *c)
{
    if (!c->read_paused)
        start_reading(c);
}

void sp__http_conn_stop_reading(sp_http_conn *c)
{
    stop_reading(c);
}

static void stop_reading(sp_http_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Queues a final error response after whatever is in flight, then closes. */
static void fail_request(sp_http_conn *c, int status, const char *msg)
{
    sp_http_worker *w = c->w;
    sp_http_req *req = c->parser.cur;
    c->parser.cur = NULL;
    if (req == NULL)
        req = req_get(w);
    req->conn = c;
    req->start_ns = uv_hrtime();
    req->close_after = true;
    req->keepalive = false;
    if (req->method_name.len == 0)
        req->method_name = SP_SLICE_LIT("-");
    c->refs++;
    c->inflight++;
    if (c->q_tail)
        c->q_tail->next = req;
    else
        c->q_head = req;
    c->q_tail = req;
    c->stop_input = true;
    stop_reading(c);
    SP_STAT_ADD(w->stats.parse_errors, 1);
    sp_http_respond_error(req, status, msg);
}

static bool can_take_more(const sp_http_conn *c)
{
    const sp_http_limits *lim = &c->w->srv->opts.limits;
    return c->inflight < lim->max_pipelined && c->out.len < lim->max_output_bytes && !c->held &&
           !c->stop_input && !c->closing && !c->close_after_flush;
}

/* Feeds bytes to the parser; returns how many were used (the rest must be
 * kept by the caller when the parser paused). */
static size_t feed(sp_http_conn *c, const char *data, size_t len)
{
    size_t used = 0;
    c->in_feed = true;
    int rc = sp__http_parser_feed(&c->parser, data, len, &used);
    c->in_feed = false;
    if (rc == SP_HTTP_FEED_OK)
        return len;
    if (rc == SP_HTTP_FEED_PAUSED) {
        if (c->stream && c->stream->data_fn) { /* upgraded: the rest is the new protocol's */
            c->stop_input = true;
            sp__http_stream_input(c, data + used, len - used);
            return len;
        }
        if (c->parser.upgrade) { /* nothing after an Upgrade head is HTTP */
            c->stop_input = true;
            return len;
        }
        return used;
    }
    fail_request(c, rc, c->parser.error_msg ? c->parser.error_msg : "Bad Request");
    return len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sp_http_conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        c->eof = true;
        stop_reading(c);
        if (nread != UV_EOF || c->tkind == T_LINGER || c->q_head == NULL || c->stream) {
            sp__http_conn_close(c);
            return;
        }
        /* Peer half-closed with requests in flight: answer, then close. */
        c->stop_input = true;
        return;
    }
    SP_STAT_ADD(c->w->stats.bytes_in, (uint64_t)nread);
    if (c->failed)
        return;
    if (c->stream && c->stream->data_fn && c->tkind != T_LINGER) {
        c->refs++;
        sp__http_stream_input(c, buf->base, (size_t)nread);
        if (!c->closing)
            sp__http_conn_flush(c);
        sp__http_conn_unref(c);
        return;
    }
    if (c->tkind == T_LINGER || c->stop_input)
        return; /* discard */
    c->refs++;  /* a handler may close the connection under us */
    size_t used = feed(c, buf->base, (size_t)nread);
    if (used < (size_t)nread && !c->closing) {
        sp_buf_append(&c->pending, buf->base + used, (size_t)nread - used);
        stop_reading(c);
    }
    after_io(c);
    sp__http_conn_unref(c);
}

static void start(sp_http_conn *c, sp_http_req *req, uint64_t t0);

void sp__http_conn_maybe_resume(sp_http_conn *c)
{
    if (c->in_feed || c->closing)
        return;
    if (c->held && c->unsafe_open == 0) {
        /* what held it back is answered: start it, as if just parsed */
        sp_http_req *req = c->held;
        c->held = NULL;
        c->in_feed = true; /* its answers wait for the flush below, as in a read */
        start(c, req, uv_hrtime());
        c->in_feed = false;
        if (c->closing)
            return;
    }
    while (c->parser.paused && can_take_more(c)) {
        sp__http_parser_resume(&c->parser);
        size_t used = feed(c, c->pending.base, c->pending.len);
        if (c->closing)
            return;
        sp_buf_consume(&c->pending, used);
    }
    if (!c->parser.paused && c->pending.len == 0 && !c->stop_input && !c->close_after_flush &&
        !(c->draining && !sp__http_parser_mid_request(&c->parser)))
        start_reading(c);
    sp__http_conn_flush(c);
}

void sp__http_conn_after_response(sp_http_conn *c)
{
    if (c->closing) {
        if (c->refs == 0)
            conn_free(c);
        return;
    }
    if (c->q_head == NULL && (c->eof || !sp__http_parser_mid_request(&c->parser))) {
        if ((c->draining || c->eof) && !c->close_after_flush)
            c->close_after_flush = true;
        if (!c->close_after_flush)
            set_deadline(c, T_KEEPALIVE, c->w->srv->opts.limits.keepalive_timeout_ms);
        else if (c->tkind != T_LINGER) /* a peer that stops reading cannot hold it open */
            set_deadline(c, T_FLUSH, c->w->srv->opts.limits.header_timeout_ms);
    }
    if (!c->in_feed) {
        sp__http_conn_flush(c);
        sp__http_conn_maybe_resume(c);
    }
}

static void on_timer(uv_timer_t *t)
{
    sp_http_conn *c = t->data;
    uint64_t now = uv_now(&c->w->loop->uv);
    c->timer_due = 0;
    if (c->closing || c->tkind == T_NONE)
        return;
    if (now < c->deadline) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    switch (c->tkind) {
    case T_HEADER:
    case T_BODY: {
        bool body = c->tkind == T_BODY;
        SP_STAT_ADD(c->w->stats.timeouts, 1);
        c->tkind = T_NONE;
        if (sp__http_parser_mid_request(&c->parser) || c->q_head == NULL)
            fail_request(c, 408,
                         body ? "Timed out reading the request body"
                              : "Timed out reading the request head");
        else
            sp__http_conn_close(c);
        break;
    }
    default: sp__http_conn_close(c); break;
    }
}

/* ---- parser hooks --------------------------------------------------------- */

static sp_http_req *hook_new_req(sp_http_parser *p)
{
    sp_http_conn *c = p->owner;
    return req_get(c->w);
}

static void hook_begin(sp_http_parser *p)
{
    sp_http_conn *c = p->owner;
    if (c->tkind == T_KEEPALIVE || c->tkind == T_NONE)
        set_deadline(c, T_HEADER, c->w->srv->opts.limits.header_timeout_ms);
}

static void hook_head(sp_http_parser *p, sp_http_req *req)
{
    sp_http_conn *c = p->owner;
    llhttp_t *ll = &p->ll;
    bool body = (ll->flags & F_CHUNKED) || ((ll->flags & F_CONTENT_LENGTH) && ll->content_length);
    set_deadline(c, body ? T_BODY : T_NONE, c->w->srv->opts.limits.body_timeout_ms);
    /* 100 Continue only when it cannot overtake an earlier response. */
    if (req->expect_continue && body && c->q_head == NULL && c->out.len == 0 && !c->writing) {
        sp_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        sp__http_conn_flush(c);
    }
}

static void hook_body(sp_http_parser *p)
{
    sp_http_conn *c = p->owner;
    set_deadline(c, T_BODY, c->w->srv->opts.limits.body_timeout_ms);
}

static bool valid_request_id(sp_slice v)
{
    if (v.len == 0 || v.len > 128)
        return false;
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.base[i] <= 0x20 || (unsigned char)v.base[i] >= 0x7f)
            return false;
    return true;
}

static void assign_request_id(sp_http_worker *w, sp_http_req *req)
{
    sp_slice given = sp_http_req_header(req, SP_SLICE_LIT("x-request-id"));
    if (valid_request_id(given)) {
        req->request_id = given;
        return;
    }
    static const char hex[] = "0123456789abcdef";
    uint64_t v = ((uint64_t)w->id_prefix << 32) | (uint32_t)++w->req_counter;
    for (int i = 15; i >= 0; i--) {
        req->request_id_buf[i] = hex[v & 15];
        v >>= 4;
    }
    req->request_id = sp_slice_make(req->request_id_buf, 16);
}

static void allow_header(unsigned allow, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int m = SP_HTTP_GET; m < SP_HTTP_METHOD_COUNT; m++) {
        if (!(allow & (1u << m)))
            continue;
        int k = snprintf(out + n, cap - n, "%s%s", n ? ", " : "",
                         sp__http_method_str((sp_http_method)m));
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
}

/* t0: when the handler starts (hook_request's clock for a request started
 * as it is parsed; a fresh one for a request that was held). */
static void run_handler(sp_http_worker *w, const sp__route *rt, sp_http_req *req, uint64_t t0)
{
    rt->fn(req, rt->udata); /* req may be gone when this returns */
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    if (ms >= w->srv->opts.slow_handler_ms) {
        SP_STAT_ADD(w->stats.slow_handlers[rt->idx], 1);
        SP_LOG_WARN("slow handler blocked the event loop",
                    SP_LF_STR("route", rt->pattern) SP_LF_INT("ms", ms)
                        SP_LF_INT("threshold_ms", w->srv->opts.slow_handler_ms)
                            SP_LF_INT("loop", w->loop->index));
    }
}

static bool method_is_safe(sp_http_method m)
{
    return m == SP_HTTP_GET || m == SP_HTTP_HEAD || m == SP_HTTP_OPTIONS;
}

void sp__http_req_settled(sp_http_conn *c, sp_http_req *req)
{
    if (!req->unsafe_open)
        return;
    req->unsafe_open = false;
    c->unsafe_open--;
}

/* Starts req's handler, or holds req in c->held (which pauses the parser)
 * while unsafe requests before it are unanswered and it may not overtake
 * them (SP_ROUTE_ORDERED). */
static void start(sp_http_conn *c, sp_http_req *req, uint64_t t0)
{
    sp_http_worker *w = c->w;
    unsigned allow = 0;
    const sp__route *rt = sp__router_match(w->srv->router, req, &allow);
    bool ordered = rt && (rt->flags & SP_ROUTE_ORDERED);
    if (c->unsafe_open && !(ordered && c->unsafe_ordered)) {
        c->held = req;
        return;
    }
    if (rt) {
        req->route_idx = rt->idx;
        if (!method_is_safe(req->method)) {
            /* open until answered; an answer given inside the handler
             * settles it at once (the request may be recycled by then) */
            c->unsafe_ordered = (c->unsafe_open == 0 || c->unsafe_ordered) && ordered;
            req->unsafe_open = true;
            c->unsafe_open++;
        }
        run_handler(w, rt, req, t0);
        return;
    }
    if (allow == 0) {
        sp_http_respond_error(req, 404, "Not Found");
        return;
    }
    char allowed[96];
    allow_header(allow, allowed, sizeof allowed);
    sp_http_header h[2] = {
        {SP_SLICE_LIT("Allow"), sp_slice_cstr(allowed)},
        {SP_SLICE_LIT("Content-Type"), SP_SLICE_LIT("application/json")},
    };
    sp_http_respond(req, 405, h, 2, SP_SLICE_LIT("{\"detail\":\"Method Not Allowed\"}"));
}

static bool hook_request(sp_http_parser *p, sp_http_req *req)
{
    sp_http_conn *c = p->owner;
    req->conn = c;
    req->start_ns = uv_hrtime();
    c->refs++;
    c->inflight++;
    if (++c->nrequests >= c->w->srv->opts.limits.max_requests_per_conn) {
        req->close_after = true; /* the last one this connection carries */
        c->stop_input = true;
    }
    if (c->q_tail)
        c->q_tail->next = req;
    else
        c->q_head = req;
    c->q_tail = req;
    if (!c->failed)
        c->tkind = T_NONE;
    if (req->is_upgrade || !req->keepalive)
        c->stop_input = true;
    assign_request_id(c->w, req);
    start(c, req, req->start_ns);
    return !can_take_more(c) || (c->draining && !c->closing);
}

static const sp_http_parser_hooks conn_hooks = {
    .new_req = hook_new_req,
    .on_begin = hook_begin,
    .on_head = hook_head,
    .on_body = hook_body,
    .on_request = hook_request,
};

/* ---- accepting ------------------------------------------------------------ */

static void on_rejected_closed(uv_handle_t *h)
{
    free(h);
}

/* Over http.max_connections: accept, answer 503 in one best-effort write,
 * close. The connection never enters the worker's books. */
static void reject_busy(sp_http_worker *w)
{
    static const char body[] = "{\"detail\":\"Too many open connections\"}";
    uv_tcp_t *t = sp_xmalloc(sizeof *t);
    uv_tcp_init(&w->loop->uv, t);
    if (uv_accept((uv_stream_t *)&w->listener, (uv_stream_t *)t) == 0) {
        char buf[512];
        sp__http_worker_update_date(w);
        int n =
            snprintf(buf, sizeof buf,
                     "HTTP/1.1 503 Service Unavailable\r\nDate: %s\r\nServer: spate\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\nRetry-After: 1\r\n"
                     "Connection: close\r\n\r\n%s",
                     w->date, sizeof body - 1, body);
        uv_buf_t b = uv_buf_init(buf, (unsigned)n);
        uv_try_write((uv_stream_t *)t, &b, 1);
    }
    SP_STAT_ADD(w->stats.conns_rejected, 1);
    uv_close((uv_handle_t *)t, on_rejected_closed);
}

/* Out of descriptors, libuv calls us again and again while a connection
 * waits in the backlog (its own spare-fd trick is one fd per process, which
 * another worker may hold). Each worker keeps a spare fd: give it up,
 * accept the waiting connection and close it at once, take the spare back.
 * So every call drains the backlog by one and libuv's accept loop ends. */
static bool shed_pending(sp_http_worker *w)
{
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    int fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd >= 0)
        close(fd);
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0 || errno == EAGAIN;
}

/* ---- listener pause: the way out of an accept storm ---------------------- */

#define RELISTEN_MS       100
#define SHED_FAILURES_MAX 8

static void on_connection(uv_stream_t *server, int status);

static void on_listener_closed(uv_handle_t *h)
{
    sp_http_worker *w = h->data;
    w->listener_closed = true;
}

/* Another worker can take the descriptor our spare freed, so shedding can
 * fail and libuv would call us again forever. Closing the listener is the
 * only way out of its accept loop; the kernel sends new connections to the
 * other workers' sockets meanwhile, and a timer opens ours again. */
static void pause_listener(sp_http_worker *w)
{
    SP_LOG_ERROR("out of file descriptors: this worker stops accepting for a moment",
                 SP_LF_INT("loop", w->loop->index) SP_LF_INT("retry_ms", RELISTEN_MS));
    w->listening = false;
    w->listen_fd = -1; /* closed with the handle */
    uv_close((uv_handle_t *)&w->listener, on_listener_closed);
    uv_timer_start(&w->relisten_timer, on_relisten, RELISTEN_MS, 0);
}

static void on_relisten(uv_timer_t *t)
{
    sp_http_worker *w = t->data;
    if (w->draining || w->stopped)
        return;
    int port = w->srv->port;
    int fd = w->listener_closed ? bind_listener(&w->srv->addr, &port) : -EAGAIN;
    if (fd < 0) {
        uv_timer_start(&w->relisten_timer, on_relisten, RELISTEN_MS, 0);
        return;
    }
    w->listen_fd = fd;
    w->listener_closed = false;
    uv_tcp_init(&w->loop->uv, &w->listener);
    w->listener.data = w;
    if (uv_tcp_open(&w->listener, fd) != 0 ||
        uv_listen((uv_stream_t *)&w->listener, LISTEN_BACKLOG, on_connection) != 0) {
        pause_listener(w);
        return;
    }
    w->listening = true;
    w->shed_failures = 0;
    SP_LOG_INFO("accepting again", SP_LF_INT("loop", w->loop->index));
}

static void on_connection(uv_stream_t *server, int status)
{
    sp_http_worker *w = server->data;
    if (status < 0) {
        /* EMFILE/ENFILE/ENOMEM: libuv keeps a spare fd to shed the pending
         * connection; we count, log at most once a second, and carry on. */
        SP_STAT_ADD(w->stats.accept_errors, 1);
        if (status == UV_EMFILE || status == UV_ENFILE) {
            w->shed_failures = shed_pending(w) ? 0 : w->shed_failures + 1;
            if (w->shed_failures >= SHED_FAILURES_MAX && w->listening) {
                pause_listener(w);
                return;
            }
        }
        uint64_t now = uv_now(&w->loop->uv);
        w->accept_errors_unlogged++;
        if (now - w->accept_error_logged_at >= 1000 || w->accept_error_logged_at == 0) {
            SP_LOG_ERROR("accept failed",
                         SP_LF_STR("error", uv_strerror(status)) SP_LF_INT("loop", w->loop->index)
                             SP_LF_INT("count", w->accept_errors_unlogged));
            w->accept_error_logged_at = now;
            w->accept_errors_unlogged = 0;
        }
        return;
    }
    if (w->draining)
        return;
    sp_http_server *srv = w->srv;
    if (atomic_fetch_add(&srv->nconns, 1) >= srv->opts.limits.max_connections) {
        atomic_fetch_sub(&srv->nconns, 1);
        reject_busy(w);
        return;
    }
    sp_http_conn *c = sp_xcalloc(1, sizeof *c);
    c->w = w;
    c->refs = 1;
    uv_tcp_init(&w->loop->uv, &c->tcp);
    uv_timer_init(&w->loop->uv, &c->timer);
    c->tcp.data = c->timer.data = c;
    sp_buf_init(&c->out, SP_BUF_UNLIMITED);
    sp_buf_init(&c->wbuf, SP_BUF_UNLIMITED);
    sp_buf_init(&c->pending, 2 * SP_HTTP_READ_BUF);
    sp__http_parser_init(&c->parser, &srv->opts.limits, &conn_hooks, c);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        sp__http_conn_close(c);
        return;
    }
    SP_STAT_ADD(w->stats.conns_accepted, 1);
    uv_tcp_nodelay(&c->tcp, 1);
    set_deadline(c, T_HEADER, srv->opts.limits.header_timeout_ms);
    start_reading(c);
}

/* ---- workers ------------------------------------------------------------- */

static void on_lag_timer(uv_timer_t *t)
{
    sp_http_worker *w = t->data;
    uint64_t now = uv_hrtime();
    uint64_t lag = now > w->lag_expect_ns ? now - w->lag_expect_ns : 0;
    w->lag_expect_ns = now + w->srv->opts.loop_lag_interval_ms * 1000000u;
    SP_STAT_SET(w->stats.loop_lag_last_ns, lag);
    SP_STAT_ADD(w->stats.loop_lag_sum_ns, lag);
    SP_STAT_ADD(w->stats.loop_lag_count, 1);
    if (lag > SP_STAT_GET(w->stats.loop_lag_max_ns))
        SP_STAT_SET(w->stats.loop_lag_max_ns, lag);
    if (lag / 1000000 >= w->srv->opts.slow_handler_ms)
        SP_LOG_WARN("event loop lag",
                    SP_LF_INT("loop", w->loop->index) SP_LF_DBL("lag_ms", (double)lag / 1e6));
}

static void worker_init(sp_loop *loop, void *arg)
{
    sp_http_worker *w = arg;
    w->loop = loop;
    loop->udata = w;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uv_tcp_init(&loop->uv, &w->listener);
    w->listener.data = w;
    int rc = uv_tcp_open(&w->listener, w->listen_fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&w->listener, LISTEN_BACKLOG, on_connection);
    if (rc != 0)
        SP_LOG_ERROR("listen failed", SP_LF_STR("error", uv_strerror(rc)));
    w->listening = rc == 0;
    uv_timer_init(&loop->uv, &w->lag_timer);
    w->lag_timer.data = w;
    uint64_t iv = w->srv->opts.loop_lag_interval_ms;
    w->lag_expect_ns = uv_hrtime() + iv * 1000000u;
    uv_timer_start(&w->lag_timer, on_lag_timer, iv, iv);
    uv_unref((uv_handle_t *)&w->lag_timer);
    uv_timer_init(&loop->uv, &w->drain_timer);
    w->drain_timer.data = w;
    uv_timer_init(&loop->uv, &w->relisten_timer);
    w->relisten_timer.data = w;
}

static void worker_stop(sp_http_worker *w)
{
    if (w->stopped)
        return;
    w->stopped = true;
    if (!uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->lag_timer, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_close((uv_handle_t *)&w->relisten_timer, NULL);
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    w->spare_fd = -1;
    while (w->free_reqs) {
        sp_http_req *r = w->free_reqs;
        w->free_reqs = r->next;
        sp__http_req_destroy(r);
    }
    w->nfree_reqs = 0;
    sp_loop_close_inbox(w->loop);
}

static void on_drain_timeout(uv_timer_t *t)
{
    sp_http_worker *w = t->data;
    if (w->nconns)
        SP_LOG_WARN("shutdown timeout: closing busy connections",
                    SP_LF_INT("loop", w->loop->index) SP_LF_INT("connections", w->nconns));
    while (w->conns)
        sp__http_conn_close(w->conns);
    if (w->pending_closes == 0)
        worker_stop(w);
}

static void worker_drain(sp_loop *loop, void *arg)
{
    sp_http_worker *w = arg;
    if (loop == NULL || w->draining)
        return;
    w->draining = true;
    if (!uv_is_closing((uv_handle_t *)&w->listener))
        uv_close((uv_handle_t *)&w->listener, NULL);
    sp_http_conn *c = w->conns;
    while (c) {
        sp_http_conn *next = c->next;
        c->draining = true;
        if (c->stream && c->stream->stream_fn) {
            c->stream->stream_fn(c->stream, SP_HTTP_STREAM_SHUTDOWN, c->stream->stream_arg);
            c = next;
            continue;
        }
        if (c->q_head == NULL && !sp__http_parser_mid_request(&c->parser) && !c->writing &&
            c->out.len == 0)
            sp__http_conn_close(c);
        else if (c->q_head == NULL && !sp__http_parser_mid_request(&c->parser))
            c->close_after_flush = true;
        c = next;
    }
    if (w->nconns == 0 && w->pending_closes == 0) {
        worker_stop(w);
        return;
    }
    uv_timer_start(&w->drain_timer, on_drain_timeout, w->srv->opts.shutdown_timeout_ms, 0);
}

/* ---- the server ----------------------------------------------------------- */

static int resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

static int bind_listener(const struct sockaddr_storage *ss, int *port_io)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_storage a = *ss;
    ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)*port_io); /* same offset for v6 */
    socklen_t len =
        a.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (struct sockaddr *)&a, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (*port_io == 0) {
        getsockname(fd, (struct sockaddr *)&a, &len);
        *port_io = ntohs(((struct sockaddr_in *)&a)->sin_port);
    }
    return fd;
}

/* Each connection costs a descriptor: keep http.max_connections below the
 * process's limit (with room for listeners, the log's files and spares),
 * so the limit answers 503 instead of accept() failing with EMFILE. */
static void clamp_connections(sp_http_options *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    unsigned reserve = 64 + 2 * (o->threads ? o->threads : 1);
    if (rl.rlim_cur <= reserve + 1)
        return;
    unsigned cap = (unsigned)(rl.rlim_cur - reserve);
    if (o->limits.max_connections > cap) {
        SP_LOG_WARN("http.max_connections lowered to fit the open-file limit",
                    SP_LF_INT("configured", o->limits.max_connections) SP_LF_INT("now", cap)
                        SP_LF_INT("nofile", (long long)rl.rlim_cur));
        o->limits.max_connections = cap;
    }
}

int sp_http_server_new(const sp_http_options *opts, sp_router *router, sp_http_server **out)
{
    struct sockaddr_storage ss;
    if (resolve(opts->host, opts->port, &ss) != 0)
        return -EINVAL;
    sp_http_server *srv = sp_xcalloc(1, sizeof *srv);
    srv->addr = ss;
    srv->opts = *opts;
    clamp_connections(&srv->opts);
    srv->host = sp_xstrdup(opts->host);
    srv->opts.host = srv->host;
    srv->router = router;
    srv->nworkers = opts->threads ? opts->threads : 1;
    srv->port = opts->port;
    srv->loops = sp_xcalloc(srv->nworkers, sizeof *srv->loops);
    srv->workers = sp_xcalloc(srv->nworkers, sizeof *srv->workers);
    int err = 0;
    unsigned i;
    for (i = 0; i < srv->nworkers; i++) {
        sp_http_worker *w = &srv->workers[i];
        w->srv = srv;
        w->id_prefix = (uint32_t)(((uint64_t)getpid() * 2654435761u) ^ (i * 40503u) ^ uv_hrtime());
        int fd = bind_listener(&ss, &srv->port);
        if (fd < 0) {
            err = fd;
            break;
        }
        w->listen_fd = fd;
    }
    for (unsigned j = 0; err == 0 && j < srv->nworkers; j++) {
        err = sp_loop_init(&srv->loops[j], (int)j);
        if (err) {
            while (j-- > 0) {
                sp_loop_join(&srv->loops[j]);
                sp_loop_destroy(&srv->loops[j]);
            }
        }
    }
    if (err) {
        while (i-- > 0)
            close(srv->workers[i].listen_fd);
        free(srv->workers);
        free(srv->loops);
        free(srv->host);
        free(srv);
        return err;
    }
    *out = srv;
    return 0;
}

int sp_http_server_port(const sp_http_server *srv)
{
    return srv->port;
}

int sp_http_server_start(sp_http_server *srv)
{
    srv->started = true;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        int rc = sp_loop_start(&srv->loops[i], worker_init, &srv->workers[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

sp_loop *sp_http_server_loops(sp_http_server *srv, unsigned *n)
{
    *n = srv->nworkers;
    return srv->loops;
}

void sp_http_server_shutdown(sp_http_server *srv)
{
    if (atomic_exchange(&srv->draining, true))
        return;
    for (unsigned i = 0; i < srv->nworkers; i++)
        sp_loop_post(&srv->loops[i], worker_drain, &srv->workers[i]);
}

int sp_http_server_wait(sp_http_server *srv)
{
    int rc = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (sp_loop_join(&srv->loops[i]) != 0)
            rc = UV_EBUSY;
    return rc;
}

void sp_http_server_free(sp_http_server *srv)
{
    if (!srv)
        return;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (!srv->started) {
            sp_loop_join(&srv->loops[i]);
            if (srv->workers[i].listen_fd >= 0)
                close(srv->workers[i].listen_fd);
        }
        sp_loop_destroy(&srv->loops[i]);
    }
    free(srv->workers);
    free(srv->loops);
    free(srv->host);
    free(srv);
}

unsigned sp_http_server_connections(const sp_http_server *srv)
{
    return atomic_load(&srv->nconns);
}

bool sp_http_server_is_draining(const sp_http_server *srv)
{
    return atomic_load(&srv->draining);
}

sp_loop *sp_http_req_loop(const sp_http_req *req)
{
    return req->conn->w->loop;
}

sp_http_server *sp_http_req_server(const sp_http_req *req)
{
    return req->conn->w->srv;
}
