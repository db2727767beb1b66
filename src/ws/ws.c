/* ws.c - a WebSocket on an upgraded HTTP stream, framed by wslay.
 *
 * Input: the stream hands every byte it reads to on_data, which appends
 * them to `in` and runs wslay's receive loop; wslay pulls from `in`
 * through recv_cb (WOULDBLOCK when it is empty or input is paused), checks
 * every frame (masking, RSV bits, opcodes, control-frame rules, close
 * codes, UTF-8, the declared message length against max_message_bytes)
 * and queues the matching close frame itself when something is wrong.
 * wslay stops reading while a control frame waits to be sent, so receive
 * and send alternate until neither makes progress. Once a close frame has
 * gone out the stream is ended: the close is the last thing written.
 *
 * A guard follows the frame headers ahead of wslay, because wslay's verdict
 * on some faults needs payload bytes or comes without a status code: a
 * message whose declared length passes the limit is closed with 1009 as
 * soon as the header arrives (a client claiming 10 MB need not send it),
 * and fragmented or oversized control frames, one-byte close payloads and
 * lengths not in their shortest encoding with 1002. Bytes before the faulty
 * frame still go through wslay. The guard hands wslay whole headers only
 * (a header split over several reads waits in hdr), so its verdict holds
 * however the client's bytes are cut.
 *
 * Output: wslay's send_cb copies control frames into the stream without a
 * limit (they are tiny and always accepted, so wslay never holds a partly
 * sent frame and our own data frames cannot interleave with one). Data
 * frames are written by sp_ws_send_textv: a header, then the caller's
 * payload parts, against the caller's limit. sp_ws_flush_soon defers the
 * write to the loop's check phase (core/soon.h, one list per loop), so
 * every record a loop turn brings reaches a socket in one write.
 *
 * Memory: the wslay context (two 4 KiB buffers inside) exists only while
 * it holds something: it is made when the client sends bytes or we send a
 * control frame, and freed again once wslay has consumed every byte, the
 * guard says they ended on a frame boundary outside a fragmented message,
 * nothing waits to be sent and no close was seen (ctx_settle). A fresh
 * context is then indistinguishable from the old one, so an idle socket
 * costs spate's own structs only.
 *
 * Reentrancy: owner callbacks may call anything here, including
 * sp_ws_close; `busy` counts the frames of this file on the stack and the
 * socket is freed only when it drops to zero. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "core/alloc.h"
#include "core/soon.h"
#include "ws/ws.h"

#define UNBOUNDED           ((size_t)-1 / 2)
#define DEFAULT_MAX_MESSAGE (1u << 20)
#define DEFAULT_PING_MS     30000
#define DEFAULT_PONG_MS     10000

typedef struct ws_home ws_home;

struct sp_ws {
    sp_http_stream *s; /* NULL once ended or gone */
    wslay_event_context_ptr ctx;
    sp_ws_callbacks cb;
    void *arg;
    sp_buf in;
    size_t in_off;
    unsigned busy;
    bool paused;
    bool read_stopped; /* we paused the stream's reading */
    bool in_process;   /* inside process(): wslay is not reentrant */
    bool again;        /* process() was asked for while running */
    bool detached;     /* sp_ws_parse_for_test: no stream, output discarded */
    bool over;         /* no owner callback any more */
    bool freeable;     /* over, and the stream is ended or gone */
    bool starved;      /* wslay's last read found `in` empty: it holds no unread byte */
    bool closing;      /* we queued a close frame: later messages are ignored */
    int close_code;
    size_t messages; /* for sp_ws_parse_for_test */
    size_t max_message;
    /* the frame guard: headers followed ahead of wslay (see guard()) */
    unsigned char hdr[14];
    size_t hlen;      /* header bytes collected */
    uint64_t skip;    /* payload bytes of the current frame still to pass */
    uint64_t msg_len; /* declared bytes of the current data message */
    bool in_message;  /* a data frame without FIN began a message not yet ended */
    int guard_code;   /* violation found: close with this once wslay is done */
    /* keep-alive and deferred flushes */
    ws_home *home;
    sp_ws *prev, *next;
    sp_soon_node soon; /* in the loop's flush list */
    uint64_t last_in_ms, ping_sent_ms;
    uint64_t ping_ms, pong_ms;
};

struct ws_home {
    uv_timer_t timer;
    sp_soon *soon; /* flushes the sockets that asked, once per loop turn */
    sp_ws *socks;
    unsigned n;
};

static _Thread_local ws_home *tls_home;

/* ---- wslay callbacks ------------------------------------------------------ */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    (void)flags;
    sp_ws *ws = user;
    size_t avail = ws->in.len - ws->in_off;
    if (avail == 0 || ws->paused) {
        ws->starved = avail == 0;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = avail < len ? avail : len;
    memcpy(buf, ws->in.base + ws->in_off, n);
    ws->in_off += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    sp_ws *ws = user;
    if (ws->detached)
        return (ssize_t)len;
    if (!ws->s ||
        sp_http_stream_write(ws->s, sp_slice_make((const char *)data, len), UNBOUNDED) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static wslay_event_context_ptr ctx_get(sp_ws *ws);

static void queue_close(sp_ws *ws, int code, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;
    ws->closing = true;
    wslay_event_queue_close(ctx_get(ws), (uint16_t)code, (const uint8_t *)reason,
                            n > 123 ? 123 : n);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                   void *user)
{
    (void)ctx;
    sp_ws *ws = user;
    if (m->opcode == WSLAY_PONG)
        ws->ping_sent_ms = 0;
    if (m->opcode != WSLAY_TEXT_FRAME && m->opcode != WSLAY_BINARY_FRAME)
        return; /* ping answered and close handled by wslay */
    if (ws->over || ws->closing)
        return; /* we are closing: what follows our close is not acted on */
    if (m->opcode == WSLAY_BINARY_FRAME) {
        queue_close(ws, SP_WS_UNSUPPORTED, "text frames only");
        return;
    }
    ws->messages++;
    if (ws->cb.on_text)
        ws->cb.on_text(ws, sp_slice_make((const char *)m->msg, m->msg_length), ws->arg);
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg,
};

/* ---- the wslay context, present only while it holds something ------------- */

/* The socket's wslay context, made on first need with the socket's limit. */
static wslay_event_context_ptr ctx_get(sp_ws *ws)
{
    if (!ws->ctx) {
        if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0)
            abort(); /* out of memory: decided once, as sp_xmalloc does */
        wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->max_message);
        ws->starved = true;
    }
    return ws->ctx;
}

static bool close_sent(const sp_ws *ws)
{
    return ws->ctx && wslay_event_get_close_sent(ws->ctx);
}

static bool want_write(const sp_ws *ws)
{
    return ws->ctx && wslay_event_want_write(ws->ctx);
}

/* Frees the context when a fresh one would behave the same: wslay asked
 * for more after taking every byte we had, those bytes ended on a frame
 * boundary outside a fragmented message (the guard passes whole headers
 * only, and counts payload bytes),
 * nothing waits to be sent and no close was seen or sent. Never while
 * wslay is on the stack (process() running). */
static void ctx_settle(sp_ws *ws)
{
    wslay_event_context_ptr ctx = ws->ctx;
    if (!ctx || ws->in_process || !ws->starved || ws->in.len || ws->skip || ws->in_message ||
        ws->guard_code)
        return; /* (a header still being collected is the guard's, not wslay's) */
    if (wslay_event_want_write(ctx) || wslay_event_get_close_sent(ctx) ||
        wslay_event_get_close_received(ctx) || !wslay_event_get_read_enabled(ctx) ||
        !wslay_event_get_write_enabled(ctx))
        return;
    wslay_event_context_free(ctx);
    ws->ctx = NULL;
}

/* ---- life and death --------------------------------------------------------- */

static void home_leave(sp_ws *ws);

static void ws_free(sp_ws *ws)
{
    home_leave(ws);
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    sp_buf_free(&ws->in);
    free(ws);
}

static void maybe_free(sp_ws *ws)
{
    if (ws->freeable && ws->busy == 0)
        ws_free(ws);
}

/* The socket is over: end the stream (after what is queued, the close
 * frame included) and tell the owner unless it asked for this. */
static void finish(sp_ws *ws, int code, bool notify)
{
    if (ws->over)
        return;
    ws->over = true;
    ws->close_code = code;
    if (ws->s) {
        sp_http_stream_end(ws->s);
        ws->s = NULL;
    }
    ws->freeable = true;
    if (notify && ws->cb.on_close) {
        ws->busy++;
        ws->cb.on_close(ws, code, ws->arg);
        ws->busy--;
    }
}

/* Sends what wslay queued; ends the socket once its close frame is out. */
static void send_queued(sp_ws *ws)
{
    if (ws->over)
        return;
    if (want_write(ws) && wslay_event_send(ws->ctx) != 0) {
        finish(ws, 1006, true);
        return;
    }
    if (close_sent(ws) && !ws->over)
        finish(ws, wslay_event_get_status_code_sent(ws->ctx), true);
}

static void set_reading(sp_ws *ws, bool stop)
{
    if (ws->s && !ws->over && ws->read_stopped != stop) {
        ws->read_stopped = stop;
        sp_http_stream_pause_reading(ws->s, stop);
    }
}

/* One pass of wslay over the buffered input, alternating receive and send
 * (wslay stops receiving while a control frame waits to go out). */
static void receive(sp_ws *ws)
{
    if (ws->in.len == ws->in_off && ws->starved)
        return; /* nothing wslay has not seen: no context needed */
    while (!ws->over && !ws->paused && wslay_event_get_read_enabled(ctx_get(ws))) {
        size_t before = ws->in_off;
        if (wslay_event_recv(ws->ctx) != 0) {
            queue_close(ws, SP_WS_INTERNAL, "internal error");
            send_queued(ws);
            finish(ws, SP_WS_INTERNAL, true);
            return;
        }
        bool had_ctrl = wslay_event_want_write(ws->ctx);
        send_queued(ws);
        if (!had_ctrl && (ws->in_off == before || ws->in_off == ws->in.len))
            return;
    }
}

/* Runs wslay until it needs more bytes; keeps the unread rest (input
 * paused) and stops the socket's reading meanwhile. */
static void process(sp_ws *ws)
{
    if (ws->in_process) {
        ws->again = true;
        return;
    }
    ws->in_process = true;
    ws->busy++;
    do {
        ws->again = false;
        receive(ws);
    } while (ws->again && !ws->over && !ws->paused);
    send_queued(ws);
    if (ws->in_off == ws->in.len) {
        sp_buf_free(&ws->in); /* an idle socket keeps no input buffer */
    } else if (ws->in_off > 0) {
        sp_buf_consume(&ws->in, ws->in_off);
    }
    ws->in_off = 0;
    set_reading(ws, ws->paused || ws->in.len > 0);
    if (ws->s && !ws->over)
        sp_http_stream_flush(ws->s);
    ws->in_process = false;
    ctx_settle(ws);
    ws->busy--;
    maybe_free(ws);
}

/* Size of a frame header from its first two bytes (mask key included:
 * client frames without one are wslay's to refuse). */
static size_t header_size(const unsigned char *h)
{
    size_t n = 2 + ((h[1] & 0x80) ? 4 : 0);
    unsigned len7 = h[1] & 0x7f;
    return n + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
}

/* Checks a complete header; returns a close code or 0. */
static int check_header(sp_ws *ws)
{
    const unsigned char *h = ws->hdr;
    bool fin = h[0] & 0x80;
    unsigned op = h[0] & 0x0f, len7 = h[1] & 0x7f;
    uint64_t len = len7;
    if (len7 == 126)
        len = (uint64_t)h[2] << 8 | h[3];
    else if (len7 == 127)
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    ws->skip = len;
    if ((len7 == 126 && len < 126) || (len7 == 127 && (len <= 0xffff || len >> 63)))
        return SP_WS_PROTOCOL; /* not the shortest length encoding, or the top bit set */
    if (op & 0x8)              /* control */
        return !fin || len > 125 || (op == 0x8 && len == 1) ? SP_WS_PROTOCOL : 0;
    ws->in_message = !fin;
    ws->msg_len = op == 0 ? ws->msg_len + len : len;
    if (len > ws->max_message || ws->msg_len > ws->max_message)
        return SP_WS_TOO_BIG;
    return 0;
}

/* Moves `len` new bytes into `in` for wslay, following frame boundaries:
 * payload bytes go straight through; a header is collected in hdr and
 * passed on only once it is complete and checked, so wslay never sees a
 * piece of a header the guard has not judged (however the client's bytes
 * are split into reads). Stops at a faulty header, leaving its code in
 * guard_code; the bytes before it still go to wslay. */
static void guard(sp_ws *ws, const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len && !ws->guard_code) {
        if (ws->skip) {
            size_t n = len - i < ws->skip ? len - i : (size_t)ws->skip;
            sp_buf_append(&ws->in, p + i, n);
            i += n;
            ws->skip -= n;
            continue;
        }
        size_t need = ws->hlen < 2 ? 2 : header_size(ws->hdr);
        while (ws->hlen < need && i < len) {
            ws->hdr[ws->hlen++] = p[i++];
            if (ws->hlen == 2)
                need = header_size(ws->hdr);
        }
        if (ws->hlen < need)
            return; /* held here until the rest arrives */
        size_t hl = ws->hlen;
        ws->hlen = 0;
        ws->guard_code = check_header(ws);
        if (!ws->guard_code)
            sp_buf_append(&ws->in, ws->hdr, hl);
    }
}

/* New input: through the guard into wslay; a fault the guard saw closes
 * the socket once wslay has had the bytes before it. */
static void feed(sp_ws *ws, const char *data, size_t len)
{
    size_t before = ws->in.len;
    if (!ws->guard_code)
        guard(ws, (const unsigned char *)data, len);
    if (ws->in.len != before)
        ws->starved = false;
    ws->busy++;
    process(ws);
    if (ws->guard_code && !ws->over && !close_sent(ws)) {
        queue_close(ws, ws->guard_code, NULL);
        wslay_event_shutdown_read(ws->ctx);
        send_queued(ws);
        if (ws->s && !ws->over)
            sp_http_stream_flush(ws->s);
    }
    ws->busy--;
    maybe_free(ws);
}

static void on_data(sp_http_stream *s, const char *data, size_t len, void *arg)
{
    (void)s;
    sp_ws *ws = arg;
    if (ws->over)
        return;
    ws->last_in_ms = ws->home ? uv_now(ws->home->timer.loop) : 0;
    ws->ping_sent_ms = 0;
    feed(ws, data, len);
}

static void on_event(sp_http_stream *s, int event, void *arg)
{
    (void)s;
    sp_ws *ws = arg;
    if (event == SP_HTTP_STREAM_DRAIN) {
        if (!ws->over && ws->cb.on_drain) {
            ws->busy++;
            ws->cb.on_drain(ws, ws->arg);
            ws->busy--;
            maybe_free(ws);
        }
        return;
    }
    if (event == SP_HTTP_STREAM_CLOSED) {
        ws->s = NULL;
        finish(ws, 1006, true);
    } else if (event == SP_HTTP_STREAM_SHUTDOWN && !ws->over) {
        ws->busy++;
        queue_close(ws, SP_WS_GOING_AWAY, "server shutting down");
        send_queued(ws);
        finish(ws, SP_WS_GOING_AWAY, true);
        ws->busy--;
    }
    maybe_free(ws);
}

/* ---- keep-alive -------------------------------------------------------------- */

static void ping_or_drop(sp_ws *ws, uint64_t now)
{
    if (ws->ping_sent_ms && now - ws->ping_sent_ms >= ws->pong_ms) {
        queue_close(ws, SP_WS_INTERNAL, "keep-alive ping timeout");
        send_queued(ws);
        finish(ws, SP_WS_INTERNAL, true);
    } else if (!ws->ping_sent_ms && now - ws->last_in_ms >= ws->ping_ms) {
        struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
        wslay_event_queue_msg(ctx_get(ws), &ping);
        ws->ping_sent_ms = now ? now : 1;
        send_queued(ws);
        if (ws->s)
            sp_http_stream_flush(ws->s);
        ctx_settle(ws); /* the ping is out: the pong is a new frame */
    }
}

static void on_tick(uv_timer_t *t)
{
    ws_home *h = t->data;
    uint64_t now = uv_now(t->loop);
    for (sp_ws *ws = h->socks, *next; ws; ws = next) {
        next = ws->next;
        if (ws->over)
            continue;
        ws->busy++;
        ping_or_drop(ws, now);
        ws->busy--;
        next = ws->next; /* the owner may have closed others meanwhile */
        maybe_free(ws);
    }
}

static void on_home_closed(uv_handle_t *hd)
{
    free(hd->data);
}

/* The check phase, right after the loop's I/O callbacks: one write per
 * socket that was asked to flush soon, however many frames it got. */
static void flush_now(sp_soon_node *n)
{
    sp_ws *ws = (sp_ws *)((char *)n - offsetof(sp_ws, soon));
    if (ws->over || !ws->s)
        return;
    ws->busy++;
    sp_http_stream_flush(ws->s);
    ws->busy--;
    maybe_free(ws);
}

static ws_home *home_new(sp_loop *loop, uint64_t tick_ms)
{
    ws_home *h = sp_xcalloc(1, sizeof *h);
    uv_timer_init(&loop->uv, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_tick, tick_ms, tick_ms);
    uv_unref((uv_handle_t *)&h->timer); /* sockets keep the loop alive, not this */
    h->soon = sp_soon_new(&loop->uv, flush_now);
    return h;
}

static void home_join(sp_ws *ws, sp_loop *loop)
{
    ws_home *h = tls_home;
    if (!h) {
        uint64_t every = ws->ping_ms < ws->pong_ms ? ws->ping_ms : ws->pong_ms;
        h = tls_home = home_new(loop, every / 2 > 10 ? every / 2 : 10);
    }
    ws->home = h;
    ws->next = h->socks;
    if (h->socks)
        h->socks->prev = ws;
    h->socks = ws;
    h->n++;
    ws->last_in_ms = uv_now(&loop->uv);
}

static void home_leave(sp_ws *ws)
{
    ws_home *h = ws->home;
    if (!h)
        return;
    sp_soon_remove(h->soon, &ws->soon);
    if (ws->prev)
        ws->prev->next = ws->next;
    else
        h->socks = ws->next;
    if (ws->next)
        ws->next->prev = ws->prev;
    ws->home = NULL;
    if (--h->n == 0) {
        sp_soon_close(h->soon);
        uv_close((uv_handle_t *)&h->timer, on_home_closed);
        if (tls_home == h)
            tls_home = NULL;
    }
}

/* ---- the public calls ---------------------------------------------------------- */

static sp_ws *ws_new(const sp_ws_options *o, const sp_ws_callbacks *cb, void *arg)
{
    sp_ws *ws = sp_xcalloc(1, sizeof *ws);
    if (cb)
        ws->cb = *cb;
    ws->arg = arg;
    sp_buf_init(&ws->in, SP_BUF_UNLIMITED);
    ws->ping_ms = o->ping_interval_ms ? o->ping_interval_ms : DEFAULT_PING_MS;
    ws->pong_ms = o->pong_timeout_ms ? o->pong_timeout_ms : DEFAULT_PONG_MS;
    ws->max_message = o->max_message_bytes ? o->max_message_bytes : DEFAULT_MAX_MESSAGE;
    ws->starved = true; /* no context yet (ctx_get makes one when needed) */
    return ws;
}

sp_ws *sp_ws_accept(sp_http_req *req, const sp_ws_options *o, const char *accept,
                    const sp_ws_callbacks *cb, void *arg)
{
    sp_ws *ws = ws_new(o, cb, arg);
    sp_http_header h[] = {
        {SP_SLICE_LIT("Upgrade"), SP_SLICE_LIT("websocket")},
        {SP_SLICE_LIT("Connection"), SP_SLICE_LIT("Upgrade")},
        {SP_SLICE_LIT("Sec-WebSocket-Accept"), sp_slice_make(accept, SP_WS_ACCEPT_LEN)},
    };
    sp_loop *loop = sp_http_req_loop(req);
    home_join(ws, loop);
    ws->busy++; /* bytes sent behind the handshake arrive inside sp_http_upgrade */
    ws->s = sp_http_upgrade(req, h, 3, on_event, on_data, ws);
    ws->busy--;
    return ws;
}

/* Writes the header of an unmasked, final text frame of `len` payload
 * bytes into hdr; returns its size (2, 4 or 10). */
static size_t text_header(unsigned char hdr[10], uint64_t len)
{
    hdr[0] = 0x81; /* FIN, text */
    if (len < 126) {
        hdr[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        hdr[1] = 126;
        hdr[2] = (unsigned char)(len >> 8);
        hdr[3] = (unsigned char)len;
        return 4;
    }
    hdr[1] = 127;
    for (int i = 0; i < 8; i++)
        hdr[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return 10;
}

int sp_ws_send_textv(sp_ws *ws, const sp_slice *parts, size_t n, size_t limit)
{
    if (ws->over || !ws->s || close_sent(ws))
        return -EPIPE;
    uint64_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    unsigned char hdr[10];
    sp_slice v[4];
    v[0] = sp_slice_make((const char *)hdr, text_header(hdr, len));
    if (n < 4) { /* the usual case: header and payload copied in one call */
        for (size_t i = 0; i < n; i++)
            v[1 + i] = parts[i];
        return sp_http_stream_writev(ws->s, v, n + 1, limit);
    }
    if (sp_http_stream_queued(ws->s) + v[0].len + len > limit)
        return -EAGAIN;
    int rc = sp_http_stream_write(ws->s, v[0], UNBOUNDED);
    return rc ? rc : sp_http_stream_writev(ws->s, parts, n, UNBOUNDED);
}

int sp_ws_send_text(sp_ws *ws, sp_slice payload, size_t limit)
{
    if (ws->over || !ws->s || close_sent(ws))
        return -EPIPE;
    unsigned char hdr[10];
    sp_slice v[2] = {sp_slice_make((const char *)hdr, text_header(hdr, payload.len)), payload};
    return sp_http_stream_writev(ws->s, v, 2, limit);
}

void sp_ws_flush_soon(sp_ws *ws)
{
    if (ws->over || !ws->s)
        return;
    if (!ws->home) {
        sp_ws_flush(ws);
        return;
    }
    sp_soon_add(ws->home->soon, &ws->soon);
}

size_t sp_ws_queued(const sp_ws *ws)
{
    return ws->s ? sp_http_stream_queued(ws->s) : 0;
}

void sp_ws_flush(sp_ws *ws)
{
    if (!ws->s || ws->over)
        return;
    ws->busy++;
    sp_http_stream_flush(ws->s); /* may close the connection: CLOSED finishes */
    ws->busy--;
    maybe_free(ws);
}

void sp_ws_pause_input(sp_ws *ws, bool pause)
{
    if (ws->over || ws->paused == pause)
        return;
    ws->paused = pause;
    if (pause)
        set_reading(ws, true);
    else
        process(ws); /* frames already read (may deliver messages), then reading resumes */
}

void sp_ws_close(sp_ws *ws, int code, const char *reason)
{
    if (ws->over)
        return;
    ws->busy++;
    if (ws->s && !close_sent(ws)) {
        queue_close(ws, code, reason);
        if (want_write(ws))
            wslay_event_send(ws->ctx);
    }
    finish(ws, code, false);
    ws->busy--;
    maybe_free(ws);
}

int sp_ws_parse_for_test(const char *data, size_t len, size_t max_message_bytes, size_t chunk,
                         size_t *messages)
{
    sp_ws_options o = {.max_message_bytes = max_message_bytes};
    sp_ws *ws = ws_new(&o, NULL, NULL);
    ws->detached = true;
    ws->busy++;
    size_t step = chunk ? chunk : len;
    for (size_t off = 0; off < len && !ws->over && !close_sent(ws); off += step)
        feed(ws, data + off, len - off < step ? len - off : step);
    if (len == 0)
        feed(ws, data, 0);
    int code = ws->over         ? ws->close_code
               : close_sent(ws) ? wslay_event_get_status_code_sent(ws->ctx)
                                : 0;
    if (messages)
        *messages = ws->messages;
    ws_free(ws);
    return code;
}
