/* http.h - spate's HTTP/1.1 server: requests, responses, handlers.
 *
 * A server runs one worker per I/O loop (sp_loop); each worker has its own
 * SO_REUSEPORT listener and owns its connections for their whole life.
 * Requests are parsed by llhttp in strict mode (no lenient flags) with
 * every limit in sp_http_limits enforced before anything is allocated.
 *
 * Handlers run on the connection's loop. A handler answers with one of the
 * sp_http_respond* calls, either before it returns or later on the same
 * loop (for example when a durable append completes). Pipelined requests
 * are answered strictly in order: a response produced early is held until
 * every earlier response has been written. Once a response is given the
 * request object belongs to the server again and must not be touched. */
#ifndef SP_HTTP_HTTP_H
#define SP_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "core/slice.h"

typedef struct sp_http_server sp_http_server;
typedef struct sp_http_req sp_http_req;
typedef struct sp_router sp_router;

typedef enum sp_http_method {
    SP_HTTP_OTHER = 0,
    SP_HTTP_GET,
    SP_HTTP_HEAD,
    SP_HTTP_POST,
    SP_HTTP_PUT,
    SP_HTTP_DELETE,
    SP_HTTP_PATCH,
    SP_HTTP_OPTIONS,
    SP_HTTP_METHOD_COUNT
} sp_http_method;

typedef struct sp_http_header {
    sp_slice name;
    sp_slice value;
} sp_http_header;

typedef struct sp_http_limits {
    size_t max_request_line;       /* URL bytes; over it -> 414 */
    size_t max_header_bytes;       /* all header names+values; over it -> 431 */
    size_t max_headers;            /* header count; over it -> 431 */
    size_t max_body_bytes;         /* declared or streamed body; over it -> 413 */
    uint64_t header_timeout_ms;    /* first byte to end of headers -> 408 */
    uint64_t body_timeout_ms;      /* idle gap while reading a body -> 408 */
    uint64_t keepalive_timeout_ms; /* idle between requests -> close */
    unsigned max_requests_per_conn;
    unsigned max_pipelined;   /* requests in flight per connection; reading pauses past it */
    unsigned max_connections; /* per process; over it -> 503 and close */
    size_t max_output_bytes;  /* queued response bytes per connection; reading pauses past it */
} sp_http_limits;

typedef struct sp_http_options {
    const char *host;
    int port; /* 0: any free port (see sp_http_server_port) */
    unsigned threads;
    sp_http_limits limits;
    bool access_log;
    uint64_t slow_handler_ms; /* handler running longer is logged with its route */
    uint64_t loop_lag_interval_ms;
    uint64_t shutdown_timeout_ms;
} sp_http_options;

/* Fills opts with the built-in defaults (the same as config.h's). */
void sp_http_options_default(sp_http_options *opts);

/* ---- handlers ------------------------------------------------------------ */

typedef void (*sp_http_handler_fn)(sp_http_req *req, void *udata);

/* What a handler may read. Every slice points into memory owned by the
 * request and lives until the response is given. */
sp_http_method sp_http_req_method(const sp_http_req *req);
sp_slice sp_http_req_method_name(const sp_http_req *req);
sp_slice sp_http_req_path(const sp_http_req *req);  /* without the query */
sp_slice sp_http_req_query(const sp_http_req *req); /* after '?', may be empty */
sp_slice sp_http_req_body(const sp_http_req *req);
/* The first header with this name (case-insensitive), or a NULL slice. */
sp_slice sp_http_req_header(const sp_http_req *req, sp_slice name);
size_t sp_http_req_header_count(const sp_http_req *req);
const sp_http_header *sp_http_req_headers(const sp_http_req *req);
/* A path parameter ("{t}" in "/v1/topics/{t}") by name, or a NULL slice. */
sp_slice sp_http_req_param(const sp_http_req *req, const char *name);
/* Looks up `name` in the query string; stores the raw (still %-encoded)
 * value and returns true when present. */
bool sp_http_req_query_param(const sp_http_req *req, const char *name, sp_slice *value);
sp_slice sp_http_req_id(const sp_http_req *req);
/* The loop the request lives on (post completions back to it). */
sp_loop *sp_http_req_loop(const sp_http_req *req);
sp_http_server *sp_http_req_server(const sp_http_req *req);

/* ---- responses ----------------------------------------------------------- */

/* Sends a complete response. `headers` are extra headers (Content-Type,
 * Allow, Retry-After, ...); the server adds Date, Server, Content-Length,
 * X-Request-Id and Connection itself. The body is copied. For HEAD the body
 * is not sent but Content-Length is. After this call `req` is gone. */
void sp_http_respond(sp_http_req *req, int status, const sp_http_header *headers, size_t nheaders,
                     sp_slice body);
/* Sends `json` with Content-Type: application/json. */
void sp_http_respond_json(sp_http_req *req, int status, sp_slice json);
/* Sends {"detail": msg} with the given status. */
void sp_http_respond_error(sp_http_req *req, int status, const char *msg);
/* Asks for the connection to close after this request's response. */
void sp_http_req_set_close(sp_http_req *req);

/* A scratch buffer for building a response body; valid until the response
 * is given. Its limit is max_output_bytes. */
sp_buf *sp_http_req_scratch(sp_http_req *req);

const char *sp_http_status_text(int status);

/* ---- streaming responses (SSE, long polls) -------------------------------- */

/* A response whose body is written over time: the connection is the
 * stream's for the rest of its life (close-delimited body, no keep-alive,
 * nothing after it is parsed). A stream is the request object itself. */
typedef sp_http_req sp_http_stream;

enum sp_http_stream_event {
    SP_HTTP_STREAM_DRAIN = 1,    /* queued bytes all written: write more. Fires only when
                                  * a write had to wait for the socket: a flush that
                                  * writes everything at once does not announce it */
    SP_HTTP_STREAM_CLOSED = 2,   /* the client left or the server closed it:
                                  * the stream is gone once the callback returns */
    SP_HTTP_STREAM_SHUTDOWN = 3, /* the server is draining: say goodbye and end
                                  * the stream (it is closed at shutdown_timeout) */
};
typedef void (*sp_http_stream_event_fn)(sp_http_stream *s, int event, void *arg);

/* Sends the status line and headers (plus the server's usual ones and
 * Connection: close) and turns the request into a stream. `fn` receives
 * the stream's events. Returns the stream. */
sp_http_stream *sp_http_stream_start(sp_http_req *req, int status, const sp_http_header *headers,
                                     size_t nheaders, sp_http_stream_event_fn fn, void *arg);
/* Switches protocols (WebSocket): sends `101 Switching Protocols` with
 * `headers` (the caller supplies Upgrade, Connection and the handshake
 * headers) and turns the request into a stream whose input is handed to
 * `data_fn` as it arrives, including bytes the client sent right after its
 * handshake. Writes, flush, end and the events are those of a stream; no
 * HTTP timeout applies any more (the protocol keeps its own). Only for a
 * request whose Upgrade header the caller has checked. */
typedef void (*sp_http_stream_data_fn)(sp_http_stream *s, const char *data, size_t len, void *arg);
sp_http_stream *sp_http_upgrade(sp_http_req *req, const sp_http_header *headers, size_t nheaders,
                                sp_http_stream_event_fn fn, sp_http_stream_data_fn data_fn,
                                void *arg);
/* Stops (true) or restarts reading an upgraded stream's input: a producer
 * that outruns the backend is paused, not buffered. */
void sp_http_stream_pause_reading(sp_http_stream *s, bool pause);

/* Queues bytes (copied). Returns 0; -EAGAIN when the bytes already queued
 * plus these would pass `limit` (nothing is queued: the caller applies its
 * slow-client policy); -EPIPE when the connection is closing. */
int sp_http_stream_write(sp_http_stream *s, sp_slice data, size_t limit);
/* Queues the concatenation of parts[0..n) (copied; the parts may be shared
 * between streams), all or nothing, as sp_http_stream_write does: a frame
 * header and a shared payload go in one call. */
int sp_http_stream_writev(sp_http_stream *s, const sp_slice *parts, size_t n, size_t limit);
/* Bytes queued and not yet written. */
size_t sp_http_stream_queued(const sp_http_stream *s);
/* Writes what is queued now (writes are otherwise coalesced per read). */
void sp_http_stream_flush(sp_http_stream *s);
/* Ends the stream: what is queued is written (within http.header_timeout,
 * however slow the peer), then the connection closes. No event fires after
 * this; the stream is gone. */
void sp_http_stream_end(sp_http_stream *s);

/* ---- router -------------------------------------------------------------- */

/* Creates an empty router. Routes are added before the server starts and
 * never change afterwards, so every loop reads it without a lock. */
sp_router *sp_router_new(void);
void sp_router_free(sp_router *r);
/* Adds a route. `pattern` is a path whose segments are literals or
 * "{name}" parameters ("/v1/topics/{t}/records"); it is also the route's
 * label in metrics and logs. GET routes answer HEAD too. Returns 0,
 * -EEXIST for a duplicate, -EINVAL for a bad pattern, -ENOSPC past the
 * route limit. */
int sp_router_add(sp_router *r, sp_http_method method, const char *pattern, sp_http_handler_fn fn,
                  void *udata);

/* Pipelined requests and side effects (RFC 9112 section 9.3.2: only safe
 * requests may be processed in parallel). While a request with an unsafe
 * method (anything but GET, HEAD, OPTIONS) awaits its answer, the requests
 * after it on the same connection are read but not started, so a GET
 * pipelined after a POST sees what the POST did. SP_ROUTE_ORDERED relaxes
 * this for handlers whose effects cannot tell whether they ran one after
 * the other (appends: one partition's records go through one FIFO, the
 * log's queue or that partition's producer, and different partitions'
 * commute): an ordered request may start while only ordered requests are
 * pending, so pipelined produces still share a group commit. A held
 * request counts against http.max_pipelined like any other. */
enum { SP_ROUTE_ORDERED = 1u << 0 };
/* sp_router_add with flags (SP_ROUTE_*). */
int sp_router_add_flags(sp_router *r, sp_http_method method, const char *pattern,
                        sp_http_handler_fn fn, void *udata, unsigned flags);

/* Calls fn for every route in the order they were added (for generated
 * documentation such as OpenAPI). */
void sp_router_each(const sp_router *r,
                    void (*fn)(sp_http_method method, const char *pattern, void *udata),
                    void *udata);
const char *sp_http_method_name(sp_http_method m);

/* ---- server -------------------------------------------------------------- */

/* Creates the server: binds one SO_REUSEPORT listener per thread on the
 * calling thread (so EADDRINUSE and friends are reported here) and
 * initializes one sp_loop per thread, but starts no thread: the caller may
 * post to the loops (sp_http_server_loops) before sp_http_server_start. The router must outlive the
 * server. Returns 0 or a negative errno; *out is set only on success. */
int sp_http_server_new(const sp_http_options *opts, sp_router *router, sp_http_server **out);
/* The I/O loops, indexed by sp_loop.index; *n receives their count. */
sp_loop *sp_http_server_loops(sp_http_server *srv, unsigned *n);
/* The port actually bound (useful with port 0). */
int sp_http_server_port(const sp_http_server *srv);
/* Starts the I/O threads. Returns 0 or a negative errno. */
int sp_http_server_start(sp_http_server *srv);
/* Graceful stop, callable from any thread: stop accepting, finish
 * in-flight requests, close idle connections; connections still busy after
 * shutdown_timeout are closed. Returns at once; sp_http_server_wait()
 * blocks until the workers are gone. */
void sp_http_server_shutdown(sp_http_server *srv);
/* Joins every worker. Returns 0, or UV_EBUSY if a loop leaked a handle. */
int sp_http_server_wait(sp_http_server *srv);
void sp_http_server_free(sp_http_server *srv);

/* Appends the Prometheus text exposition of the HTTP metrics (summed over
 * every worker) to out. Safe on any worker's loop while others run. */
void sp_http_server_metrics(sp_http_server *srv, sp_buf *out);
/* Open connections in the whole process. */
unsigned sp_http_server_connections(const sp_http_server *srv);
bool sp_http_server_is_draining(const sp_http_server *srv);

#endif
