/* ws.h - WebSocket (RFC 6455) over an upgraded HTTP stream, via wslay.
 *
 * The handshake is checked here (sp_ws_handshake), then sp_ws_accept turns
 * the request into a WebSocket: every input byte goes through wslay's
 * event-based receive path (masking, fragmentation, UTF-8, close codes and
 * the message size limit are enforced there), complete text messages come
 * to the owner's on_text, and control frames (ping, pong, close) are
 * answered through wslay's send queue, which writes straight into the
 * connection's output. Data frames the server sends bypass wslay: a frame
 * header is written in front of a payload the caller may share between
 * many connections (a hub record's JSON), so nothing is copied twice.
 *
 * Keep-alive: one timer per I/O loop pings every socket that has been
 * silent for ping_interval, and closes (1011) one that has not answered
 * within pong_timeout.
 *
 * Lifetime: the sp_ws belongs to this module. on_close fires exactly once
 * when the socket ends for any reason other than the owner's sp_ws_close
 * (peer close, protocol error, keep-alive timeout, server shutdown, the
 * connection dropping); after on_close, or once sp_ws_close returned, the
 * owner must not touch the sp_ws again. All calls happen on the
 * connection's loop. */
#ifndef SP_WS_WS_H
#define SP_WS_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

typedef struct sp_ws sp_ws;

typedef struct sp_ws_options {
    size_t max_message_bytes;  /* a message declaring more is closed with 1009; 0: 1 MiB */
    uint64_t ping_interval_ms; /* silence before a ping; 0: 30 s */
    uint64_t pong_timeout_ms;  /* unanswered ping -> close 1011; 0: 10 s */
    const char *origins;       /* comma-separated allowed Origin values; NULL or "": any */
} sp_ws_options;

/* Close codes spate sends (RFC 6455 section 7.4.1). */
enum sp_ws_code {
    SP_WS_NORMAL = 1000,
    SP_WS_GOING_AWAY = 1001, /* server shutdown */
    SP_WS_PROTOCOL = 1002,
    SP_WS_UNSUPPORTED = 1003, /* a binary message where text is expected */
    SP_WS_BAD_DATA = 1007,    /* invalid UTF-8 in a text message */
    SP_WS_POLICY = 1008,      /* slow consumer */
    SP_WS_TOO_BIG = 1009,
    SP_WS_INTERNAL = 1011, /* internal error, keep-alive timeout */
};

typedef struct sp_ws_callbacks {
    /* A complete, valid UTF-8 text message (borrowed for the call). */
    void (*on_text)(sp_ws *ws, sp_slice msg, void *arg);
    /* Everything queued has been written: send more. */
    void (*on_drain)(sp_ws *ws, void *arg);
    /* The socket is over (see the lifetime rules above); `code` is the
     * close code sent, or 1006 when the connection just went away. */
    void (*on_close)(sp_ws *ws, int code, void *arg);
} sp_ws_callbacks;

/* The length of a Sec-WebSocket-Accept value, without the NUL. */
#define SP_WS_ACCEPT_LEN 28

/* Computes Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key
 * + GUID)). Returns 0, or -EINVAL when `key` is not the base64 encoding of
 * exactly 16 bytes. Pure: no allocation. */
int sp_ws_accept_key(sp_slice key, char out[SP_WS_ACCEPT_LEN + 1]);

/* Returns true when `origin` is allowed by the comma-separated list
 * `origins` (NULL or empty: everything is). Comparison is exact after
 * trimming blanks, case-insensitive (scheme and host are). */
bool sp_ws_origin_allowed(const char *origins, sp_slice origin);

/* Checks a request's WebSocket handshake: GET, Upgrade: websocket,
 * Connection with an "upgrade" token, Sec-WebSocket-Version: 13 (else 426
 * with Sec-WebSocket-Version: 13), a valid Sec-WebSocket-Key (else 400),
 * and Origin against o->origins (else 403). Answers the request itself and
 * returns false on any problem; else stores the accept value and returns
 * true. */
bool sp_ws_handshake(sp_http_req *req, const sp_ws_options *o, char accept[SP_WS_ACCEPT_LEN + 1]);

/* Answers 101 and makes the request a WebSocket. `accept` comes from
 * sp_ws_handshake. The callbacks run on the request's loop until on_close
 * (see above). Returns the socket. */
sp_ws *sp_ws_accept(sp_http_req *req, const sp_ws_options *o, const char *accept,
                    const sp_ws_callbacks *cb, void *arg);

/* Queues one text frame whose payload is the concatenation of parts[0..n)
 * (copied into the connection's output; the parts may be shared). Returns
 * 0; -EAGAIN when the bytes queued plus this frame would pass `limit`
 * (nothing is queued); -EPIPE when the socket is closing. */
int sp_ws_send_textv(sp_ws *ws, const sp_slice *parts, size_t n, size_t limit);
/* sp_ws_send_textv with one part: a shared record's JSON as it is. */
int sp_ws_send_text(sp_ws *ws, sp_slice payload, size_t limit);
/* Bytes queued and not yet written. */
size_t sp_ws_queued(const sp_ws *ws);
/* Writes what is queued now. May end the socket (on_close fires) when the
 * connection fails. */
void sp_ws_flush(sp_ws *ws);
/* Writes what is queued once the loop's current I/O callbacks are done
 * (its check phase, in the same turn): every frame queued meanwhile goes
 * out in the same write. Asking again before then costs nothing. The
 * write may end the socket (on_close fires from the loop). */
void sp_ws_flush_soon(sp_ws *ws);
/* Stops (true) or restarts reading the client's messages: messages already
 * received are still delivered, nothing more is read. */
void sp_ws_pause_input(sp_ws *ws, bool pause);
/* Sends a close frame with `code` and `reason` (at most 123 bytes) after
 * what is queued, then ends the connection. on_close does not fire; the
 * socket is gone once this returns. */
void sp_ws_close(sp_ws *ws, int code, const char *reason);

/* ---- frame parsing without a connection (fuzzing, tests) ----------------- */

/* Feeds `data` to a fresh server-side socket with the same callbacks and
 * limits as a live one, the output discarded: all at once (chunk 0) or
 * `chunk` bytes per read, so that the wslay context is released and made
 * again between reads as on a live socket. Returns the close code the
 * server would send (0: none). */
int sp_ws_parse_for_test(const char *data, size_t len, size_t max_message_bytes, size_t chunk,
                         size_t *messages);

#endif
