/* sse.c - GET /v1/topics/{t}/stream: Server-Sent Events over a hub
 * subscription (docs/internals/STREAMS.md has the wire format).
 *
 * A stream is an HTTP streaming response plus an sp_hub_sub. Events move
 * from the subscription's queue (references to shared records whose SSE
 * frame is encoded once) into the connection's output only while that
 * holds less than SSE_WINDOW bytes; the rest waits in the hub queue, whose
 * bounds and slow-consumer policy decide what a client that stops reading
 * costs. DRAIN from the connection and "ready" from the hub both run the
 * same pump, which asks for a flush "soon" (core/soon.h) instead of
 * writing: the loop's check phase (right after its I/O callbacks, same
 * turn) flushes every such stream once, so all the batches one loop turn
 * delivered reach a client in one write. Only a full window is written at
 * once.
 *
 * Keep-alive comments come from one timer per loop, created with the
 * loop's first stream and closed with its last, together with the flush
 * list - thread-local, as each I/O loop has its own thread: no
 * handle outlives the streams, so loops close clean. A stream that wrote
 * anything since the last tick, or whose client is not reading, gets no
 * comment. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api_int.h"
#include "core/alloc.h"
#include "core/soon.h"

#define SSE_WINDOW           (64u << 10)
#define DEFAULT_KEEPALIVE_MS 15000
#define DEFAULT_RETRY_MS     3000
#define UNBOUNDED            ((size_t)-1 / 2) /* our window check bounds writes; last words always go */

typedef struct sse_home sse_home;

typedef struct sse_stream {
    sp_http_stream *s; /* NULL once the connection is gone */
    sp_hub_sub *sub;   /* NULL once unsubscribed */
    sse_home *home;
    struct sse_stream *prev, *next;
    sp_soon_node soon; /* in the home's flush list */
    sp_buf scratch;    /* id lines of multi-partition streams, gap events */
    bool single;       /* one partition: the shared frame carries the right id */
    bool busy;         /* inside pump/tick: CLOSED defers the free */
    bool done;         /* ended or closed: free when not busy */
    bool wrote;        /* since the last keep-alive tick */
} sse_stream;

struct sse_home {
    uv_timer_t timer;
    sp_soon *soon; /* flushes the streams that asked, once per loop turn */
    sse_stream *streams;
    unsigned n;
};

static _Thread_local sse_home *tls_home;

/* ---- the per-loop keep-alive timer ----------------------------------------- */

static void release(sse_stream *st);

static void on_tick(uv_timer_t *t)
{
    sse_home *h = t->data;
    for (sse_stream *st = h->streams, *next; st; st = next) {
        next = st->next;
        if (!st->s || st->wrote || sp_http_stream_queued(st->s) > 0) {
            st->wrote = false;
            continue;
        }
        st->busy = true;
        if (sp_http_stream_write(st->s, SP_SLICE_LIT(": keep-alive\n\n"), UNBOUNDED) == 0)
            sp_http_stream_flush(st->s);
        st->busy = false;
        if (st->done)
            release(st);
    }
}

static void on_home_closed(uv_handle_t *hd)
{
    free(hd->data);
}

/* Asks for one write of what the stream has queued, at this turn's check. */
static void flush_soon(sse_stream *st)
{
    if (!st->s)
        return;
    if (!st->home) {
        sp_http_stream_flush(st->s);
        return;
    }
    sp_soon_add(st->home->soon, &st->soon);
}

static void flush_now(sp_soon_node *n)
{
    sse_stream *st = (sse_stream *)((char *)n - offsetof(sse_stream, soon));
    if (!st->s || st->done)
        return;
    st->busy = true;
    sp_http_stream_flush(st->s); /* may close the connection: CLOSED sets done */
    st->busy = false;
    if (st->done)
        release(st);
}

static sse_home *home_new(sp_loop *loop, uint64_t every)
{
    sse_home *h = sp_xcalloc(1, sizeof *h);
    uv_timer_init(&loop->uv, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_tick, every, every);
    uv_unref((uv_handle_t *)&h->timer); /* streams keep the loop alive, not this */
    h->soon = sp_soon_new(&loop->uv, flush_now);
    return h;
}

static void home_join(sse_stream *st, sp_loop *loop, const sp_api *api)
{
    sse_home *h = tls_home;
    if (!h)
        h = tls_home = home_new(loop, api->opts.sse_keepalive_ms ? api->opts.sse_keepalive_ms
                                                                 : DEFAULT_KEEPALIVE_MS);
    st->home = h;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->n++;
}

static void home_leave(sse_stream *st)
{
    sse_home *h = st->home;
    if (!h)
        return;
    sp_soon_remove(h->soon, &st->soon);
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->home = NULL;
    if (--h->n == 0) {
        sp_soon_close(h->soon);
        uv_close((uv_handle_t *)&h->timer, on_home_closed);
        if (tls_home == h)
            tls_home = NULL;
    }
}

/* ---- writing events ------------------------------------------------------- */

static void release(sse_stream *st)
{
    sp_hub_unsubscribe(st->sub);
    st->sub = NULL;
    home_leave(st);
    sp_buf_free(&st->scratch);
    free(st);
}

/* Writes the last event, ends the stream, drops the subscription. */
static void finish(sse_stream *st, sp_slice last)
{
    if (st->done)
        return;
    st->done = true;
    sp_hub_unsubscribe(st->sub);
    st->sub = NULL;
    if (st->s) {
        sp_http_stream_write(st->s, last, UNBOUNDED);
        sp_http_stream_end(st->s);
        st->s = NULL;
    }
}

static void finish_end(sse_stream *st, int reason)
{
    if (reason == SP_HUB_END_SLOW) {
        finish(st, SP_SLICE_LIT("event: error\ndata: {\"detail\":\"slow consumer\"}\n\n"));
    } else if (reason == SP_HUB_END_DELETED) {
        finish(st, SP_SLICE_LIT("event: error\ndata: {\"detail\":\"topic deleted\"}\n\n"));
    } else {
        char msg[160];
        int n =
            snprintf(msg, sizeof msg, "event: error\ndata: {\"detail\":\"read failed: %s\"}\n\n",
                     strerror(-reason));
        finish(st, sp_slice_make(msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1));
    }
}

/* The id line of an event: the record's id for one partition, else the
 * stream's cursor over all of its partitions. */
static void put_id(sse_stream *st, const sp_hub_event *ev)
{
    sp_buf_append_cstr(&st->scratch, "id: ");
    sp_hub_sub_cursor(st->sub, ev, &st->scratch);
    sp_buf_putc(&st->scratch, '\n');
}

static int write_event(sse_stream *st, const sp_hub_event *ev)
{
    if (ev->type == SP_HUB_EV_RECORD && st->single)
        return sp_http_stream_write(st->s, ev->rec->sse, UNBOUNDED);
    sp_buf_reset(&st->scratch);
    if (ev->type == SP_HUB_EV_GAP)
        sp_buf_append_cstr(&st->scratch, "event: gap\n");
    put_id(st, ev);
    if (ev->type == SP_HUB_EV_RECORD) { /* our id line, then the shared data line */
        sp_slice parts[2] = {sp_buf_slice(&st->scratch), ev->rec->sse_data};
        return sp_http_stream_writev(st->s, parts, 2, UNBOUNDED);
    }
    sp_buf_printf(&st->scratch, "data: {\"partition\":%u,\"from\":%llu,\"to\":%llu}\n\n",
                  ev->partition, (unsigned long long)ev->from, (unsigned long long)ev->to);
    return sp_http_stream_write(st->s, sp_buf_slice(&st->scratch), UNBOUNDED);
}

/* Moves events into the connection until its window is full. The end of
 * the subscription is handled even when the window is full: a client that
 * stopped reading must still be let go. Returns true when the window
 * filled with events still queued. */
static bool fill(sse_stream *st)
{
    sp_hub_event ev;
    for (;;) {
        if (!sp_hub_sub_peek(st->sub, &ev))
            return false;
        if (ev.type == SP_HUB_EV_END) {
            finish_end(st, ev.reason);
            return false;
        }
        if (sp_http_stream_queued(st->s) >= SSE_WINDOW)
            return true;
        if (write_event(st, &ev) != 0)
            return false; /* the connection is closing: CLOSED follows */
        sp_hub_sub_pop(st->sub);
        st->wrote = true;
    }
}

static void pump(sse_stream *st)
{
    if (st->busy || st->done)
        return;
    st->busy = true;
    for (;;) {
        bool more = fill(st);
        if (st->done)
            break;
        if (!more) { /* all queued: one write for everything this loop turn brings */
            flush_soon(st);
            break;
        }
        sp_http_stream_flush(st->s); /* a full window goes now; may close: CLOSED sets done */
        if (st->done || sp_http_stream_queued(st->s) > 0)
            break; /* an unwritten window: DRAIN resumes */
    }
    st->busy = false;
    if (st->done)
        release(st);
}

static void on_ready(sp_hub_sub *sub, void *arg)
{
    (void)sub;
    pump(arg);
}

static void on_stream_event(sp_http_stream *s, int event, void *arg)
{
    (void)s;
    sse_stream *st = arg;
    if (event == SP_HTTP_STREAM_DRAIN) {
        pump(st);
        return;
    }
    if (event == SP_HTTP_STREAM_CLOSED) {
        st->s = NULL;
        st->done = true;
    } else if (event == SP_HTTP_STREAM_SHUTDOWN) {
        finish(st,
               SP_SLICE_LIT("event: shutdown\ndata: {\"detail\":\"server shutting down\"}\n\n"));
    }
    if (!st->busy)
        release(st);
}

/* ---- the request ------------------------------------------------------------ */

typedef struct sse_params {
    sp_hub_sub_options o;
    sp_hub_pos *pos; /* heap, for cursors */
} sse_params;

/* Query parameters, then Last-Event-ID (an EventSource reconnecting), which
 * wins over ?from= and ?from_time=; the default start is "latest". */
static bool parse_params(sp_http_req *req, sse_params *p)
{
    if (!sp__api_sub_query(req, &p->o, &p->pos, "an event id"))
        return false;
    sp_slice v = sp_http_req_header(req, SP_SLICE_LIT("last-event-id"));
    if (v.base && v.len) {
        free(p->pos); /* a ?from= cursor, if any: Last-Event-ID replaces it */
        p->pos = NULL;
        if (sp_hub_start_parse(v, &p->o.start, &p->pos) == 0 &&
            p->o.start.kind == SP_HUB_FROM_CURSOR)
            return true;
        sp_http_respond_error(req, 422, "Last-Event-ID must be an event id sent by this stream");
        return false;
    }
    return true;
}

static const sp_http_header sse_headers[] = {
    {{"Content-Type", 12}, {"text/event-stream", 17}},
    {{"Cache-Control", 13}, {"no-cache", 8}},
    {{"X-Accel-Buffering", 17}, {"no", 2}},
};

static void subscribe_failed(sp_http_req *req, const char *topic, int rc)
{
    if (rc == -ENOENT)
        sp__api_errorf(req, 404, "Topic '%s' not found", topic);
    else if (rc == -EINVAL)
        sp__api_errorf(req, 422, "Topic '%s' has no such partition", topic);
    else
        sp__api_errorf(req, 500, "Cannot subscribe: %s", strerror(-rc));
}

static void start_stream(sp_http_req *req, sp_api *api, const char *topic, sse_params *p)
{
    sp_loop *loop = sp_http_req_loop(req);
    sse_stream *st = sp_xcalloc(1, sizeof *st);
    sp_buf_init(&st->scratch, SP_BUF_UNLIMITED);
    int rc = sp_hub_subscribe(api->hub, loop, topic, &p->o, on_ready, st, &st->sub);
    if (rc != 0) {
        free(st);
        subscribe_failed(req, topic, rc);
        return;
    }
    st->single = sp_hub_sub_single(st->sub);
    st->s = sp_http_stream_start(req, 200, sse_headers, 3, on_stream_event, st);
    home_join(st, loop, api);
    char retry[48];
    int n = snprintf(
        retry, sizeof retry, "retry: %llu\n\n",
        (unsigned long long)(api->opts.sse_retry_ms ? api->opts.sse_retry_ms : DEFAULT_RETRY_MS));
    sp_http_stream_write(st->s, sp_slice_make(retry, (size_t)n), UNBOUNDED);
    pump(st);
}

static void handle_stream(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    char topic[SP_API_TOPIC_MAX + 1];
    sse_params p = {0};
    if (!sp__api_topic_param(req, api, topic, true) || !parse_params(req, &p)) {
        free(p.pos);
        return;
    }
    if (sp_http_req_method(req) == SP_HTTP_HEAD)
        sp_http_respond(req, 200, sse_headers, 3, SP_SLICE_NULL);
    else
        start_stream(req, api, topic, &p);
    free(p.pos);
}

int sp__api_register_sse(sp_router *r, sp_api *api)
{
    return sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}/stream", handle_stream, api);
}
