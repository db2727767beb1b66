/* stream.c - streaming responses (Server-Sent Events and the like).
 *
 * A stream is a request that answered with a head but no end: it stays at
 * the head of its connection's queue, so nothing pipelined after it is
 * answered (input is read only to notice the client leaving). Its body is
 * close-delimited. Writes are copied into the connection's output buffer,
 * bounded by the caller's limit, and flushed explicitly or with the read;
 * the owner hears DRAIN when the output is empty again and CLOSED when the
 * connection goes away, after which the stream must not be touched. */
#include <errno.h>
#include <string.h>

#include "http/http_int.h"

static sp_buf *dest(sp_http_stream *s)
{
    return s->conn->q_head == s ? &s->conn->out : &s->resp;
}

sp_http_stream *sp_http_stream_start(sp_http_req *req, int status, const sp_http_header *headers,
                                     size_t nheaders, sp_http_stream_event_fn fn, void *arg)
{
    sp_http_conn *c = req->conn;
    req->streaming = true;
    req->stream_fn = fn;
    req->stream_arg = arg;
    req->status = status;
    req->close_after = true;
    c->stream = req;
    c->stop_input = true;
    if (!c->failed)
        c->tkind = 0; /* no timeout while streaming */
    sp__http_write_stream_head(c->w, dest(req), req, status, headers, nheaders);
    sp__http_conn_flush(c);
    sp__http_conn_keep_reading(c);
    return req;
}

sp_http_stream *sp_http_upgrade(sp_http_req *req, const sp_http_header *headers, size_t nheaders,
                                sp_http_stream_event_fn fn, sp_http_stream_data_fn data_fn,
                                void *arg)
{
    req->data_fn = data_fn;
    return sp_http_stream_start(req, 101, headers, nheaders, fn, arg);
}

bool sp__http_stream_input(sp_http_conn *c, const char *data, size_t len)
{
    sp_http_req *s = c->stream;
    if (!s || !s->data_fn || c->closing)
        return false;
    if (len)
        s->data_fn(s, data, len, s->stream_arg);
    return true;
}

void sp_http_stream_pause_reading(sp_http_stream *s, bool pause)
{
    sp_http_conn *c = s->conn;
    c->read_paused = pause;
    if (!pause)
        sp__http_conn_keep_reading(c);
    else
        sp__http_conn_stop_reading(c);
}

int sp_http_stream_write(sp_http_stream *s, sp_slice data, size_t limit)
{
    sp_http_conn *c = s->conn;
    if (c->closing || c->close_after_flush || c->failed)
        return -EPIPE;
    size_t queued = sp_http_stream_queued(s);
    if (queued + data.len > limit)
        return -EAGAIN;
    sp_buf_append(dest(s), data.base, data.len);
    return 0;
}

int sp_http_stream_writev(sp_http_stream *s, const sp_slice *parts, size_t n, size_t limit)
{
    sp_http_conn *c = s->conn;
    if (c->closing || c->close_after_flush || c->failed)
        return -EPIPE;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += parts[i].len;
    if (sp_http_stream_queued(s) + total > limit)
        return -EAGAIN;
    sp_buf *b = dest(s);
    if ((!b->base || b->cap - b->len < total) && sp_buf_reserve(b, total) != 0)
        return -EAGAIN; /* one growth for all parts */
    char *p = b->base + b->len;
    for (size_t i = 0; i < n; i++) {
        size_t len = parts[i].len;
        if (len > 16)
            memcpy(p, parts[i].base, len);
        else /* frame headers, id lines: a call costs more than the copy */
            for (size_t k = 0; k < len; k++)
                p[k] = parts[i].base[k];
        p += len;
    }
    b->len += total;
    *p = '\0'; /* as sp_buf_append leaves it */
    return 0;
}

size_t sp_http_stream_queued(const sp_http_stream *s)
{
    const sp_http_conn *c = s->conn;
    if (c->q_head != s)
        return s->resp.len;
    return c->out.len + c->wbuf.len;
}

void sp_http_stream_flush(sp_http_stream *s)
{
    if (!s->conn->in_feed)
        sp__http_conn_flush(s->conn);
}

void sp_http_stream_end(sp_http_stream *s)
{
    sp_http_conn *c = s->conn;
    s->stream_fn = NULL;
    s->responded = true;
    sp__http_req_settled(c, s);
    if (c->stream == s)
        c->stream = NULL;
    sp__http_advance_queue(c);
}

/* Called by the server when the connection closes under a live stream. */
void sp__http_stream_closed(sp_http_conn *c)
{
    sp_http_req *s = c->stream;
    c->stream = NULL;
    if (!s)
        return;
    sp_http_stream_event_fn fn = s->stream_fn;
    s->stream_fn = NULL;
    if (fn)
        fn(s, SP_HTTP_STREAM_CLOSED, s->stream_arg);
    s->responded = true;
    sp__http_advance_queue(c);
}

/* Called by the server when the output buffer emptied. */
void sp__http_stream_drained(sp_http_conn *c)
{
    sp_http_req *s = c->stream;
    if (s && s->stream_fn && c->q_head == s && c->out.len == 0 && !c->writing)
        s->stream_fn(s, SP_HTTP_STREAM_DRAIN, s->stream_arg);
}
