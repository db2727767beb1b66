/* http_int.h - structures shared by the files of src/http (sp__ tier).
 *
 * Reading order: parser.c (bytes -> sp_http_req, limits), router.c,
 * response.c (sp_http_req -> bytes, pipelining order), server.c (sockets,
 * timers, backpressure, shutdown), metrics.c (counters, Prometheus). */
#ifndef SP_HTTP_INT_H
#define SP_HTTP_INT_H

#include <llhttp.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "http/http.h"

#define SP_HTTP_MAX_PARAMS 8
#define SP_HTTP_MAX_ROUTES 64 /* route index 0 is "unmatched" in metrics */
#define SP_HTTP_READ_BUF   (64 * 1024)
#define SP_HTTP_REQ_CACHE  256 /* released requests kept per worker for reuse */

typedef struct sp_http_conn sp_http_conn;
typedef struct sp_http_worker sp_http_worker;

typedef struct sp__hdr_span {
    uint32_t name_off, name_len, val_off, val_len;
} sp__hdr_span;

struct sp_http_req {
    sp_http_conn *conn; /* NULL for requests parsed outside a server (tests, fuzz) */
    sp_http_req *next;  /* in-flight queue, or free list */
    sp_http_method method;
    uint8_t http_major, http_minor;
    bool keepalive; /* llhttp_should_keep_alive at headers end */
    bool expect_continue;
    bool responded;   /* response bytes produced (maybe held in `resp`) */
    bool close_after; /* Connection: close on the response */
    bool is_upgrade;
    bool streaming;   /* turned into a stream: stays at the queue head until it ends */
    bool unsafe_open; /* an unsafe request started and not answered: holds later ones */
    sp_http_stream_event_fn stream_fn;
    sp_http_stream_data_fn data_fn; /* upgraded: input goes here */
    void *stream_arg;
    int status;
    unsigned route_idx;
    uint64_t start_ns;

    /* Head bytes: URL then header names and values, appended as llhttp
     * hands them over; spans are offsets so growth never invalidates them. */
    sp_buf head;
    uint32_t url_len;
    sp__hdr_span *spans;
    sp_http_header *headers; /* built from spans once the head is complete */
    uint32_t nheaders, cap_headers;
    sp_slice path, query, method_name, request_id;
    char request_id_buf[24];

    sp_buf body;
    sp_buf scratch; /* handler's workspace, see sp_http_req_scratch */
    sp_buf resp;    /* response held until earlier ones are written */

    struct {
        sp_slice name, value;
    } params[SP_HTTP_MAX_PARAMS];
    unsigned nparams;
};

/* ---- parser: bytes in, requests out; no sockets (fuzz/unit testable) ---- */

typedef struct sp_http_parser sp_http_parser;
typedef struct sp_http_parser_hooks {
    /* A new request object to fill (pool or fresh). Never NULL. */
    sp_http_req *(*new_req)(sp_http_parser *p);
    /* First byte of a request seen. */
    void (*on_begin)(sp_http_parser *p);
    /* Head complete and within limits. */
    void (*on_head)(sp_http_parser *p, sp_http_req *req);
    /* Body bytes arrived (for the idle timer). */
    void (*on_body)(sp_http_parser *p);
    /* Request complete; ownership passes to the hook. Return true to pause
     * the parser after this request (backpressure). */
    bool (*on_request)(sp_http_parser *p, sp_http_req *req);
} sp_http_parser_hooks;

struct sp_http_parser {
    llhttp_t ll;
    const sp_http_limits *limits;
    const sp_http_parser_hooks *hooks;
    void *owner;
    sp_http_req *cur;
    int error_status; /* set by a limit check inside a callback */
    const char *error_msg;
    bool in_value; /* last header callback was a value */
    bool paused;
    bool upgrade; /* llhttp stopped after an Upgrade/CONNECT head */
    /* obs-fold detection (see parser.c contiguous()) */
    unsigned feed_gen, val_gen;
    const char *feed_start, *feed_end, *val_end, *val_feed_end;
    /* The strict head scanner (parser.c scan_head): where it is in the
     * request line or header block, or off while llhttp reads a body. */
    uint8_t scan;       /* SCAN_* */
    uint8_t scan_sub;   /* position inside the current element */
    uint8_t scan_pause; /* llhttp paused for the scanner, not for backpressure */
    char version[8];    /* "HTTP/x.y" being collected */
    size_t ext_bytes;   /* chunk-extension bytes of the current request */
    bool head_done;     /* header block complete: later header callbacks are trailers */
    bool body_expected; /* the current request has a body llhttp is reading */
    size_t scan_len;
    size_t trailer_bytes;
};

/* Parser outcome for one feed call. */
enum { SP_HTTP_FEED_OK = 0, SP_HTTP_FEED_PAUSED = 1 };

void sp__http_parser_init(sp_http_parser *p, const sp_http_limits *limits,
                          const sp_http_parser_hooks *hooks, void *owner);
/* Feeds bytes. Returns SP_HTTP_FEED_OK (all consumed), SP_HTTP_FEED_PAUSED
 * (*consumed bytes used; call sp__http_parser_resume and feed the rest
 * later), or an HTTP error status (400, 413, 414, 431, 505...) with
 * p->error_msg set: the connection must answer it and close. */
int sp__http_parser_feed(sp_http_parser *p, const char *data, size_t len, size_t *consumed);
void sp__http_parser_resume(sp_http_parser *p);
/* True between a request's first byte and its completion. */
bool sp__http_parser_mid_request(const sp_http_parser *p);
/* Releases a partially parsed request, if any. */
void sp__http_parser_reset(sp_http_parser *p, void (*release)(sp_http_req *));

/* Request memory helpers (req.c). */
void sp__http_req_init(sp_http_req *req, const sp_http_limits *limits);
void sp__http_req_clear(sp_http_req *req); /* keep capacity, forget content */
void sp__http_req_destroy(sp_http_req *req);

/* ---- router -------------------------------------------------------------- */

typedef struct sp__route {
    sp_http_method method;
    char *pattern;
    sp_slice segs[16];
    bool is_param[16];
    unsigned nsegs;
    sp_http_handler_fn fn;
    void *udata;
    unsigned flags; /* SP_ROUTE_* */
    unsigned idx;   /* 1..SP_HTTP_MAX_ROUTES-1 */
} sp__route;

struct sp_router {
    sp__route routes[SP_HTTP_MAX_ROUTES];
    unsigned n;
};

/* Matches req's method and path. Returns the route (params filled in req),
 * or NULL with *allow set to a bitmask of methods that would match the path
 * (0: no route has this path -> 404; else 405). */
const sp__route *sp__router_match(const sp_router *r, sp_http_req *req, unsigned *allow);
const char *sp__router_label(const sp_router *r, unsigned idx);
const char *sp__http_method_str(sp_http_method m);

/* ---- metrics ------------------------------------------------------------- */

#define SP_HTTP_STATUS_SLOTS 32
#define SP_HTTP_LAT_BUCKETS  14

typedef struct sp__http_stats {
    uint64_t requests[SP_HTTP_MAX_ROUTES][SP_HTTP_METHOD_COUNT][SP_HTTP_STATUS_SLOTS];
    uint64_t lat_bucket[SP_HTTP_MAX_ROUTES][SP_HTTP_LAT_BUCKETS];
    uint64_t lat_sum_ns[SP_HTTP_MAX_ROUTES];
    uint64_t lat_count[SP_HTTP_MAX_ROUTES];
    uint64_t slow_handlers[SP_HTTP_MAX_ROUTES];
    uint64_t conns_accepted, conns_rejected, accept_errors;
    uint64_t bytes_in, bytes_out;
    uint64_t parse_errors, timeouts;
    uint64_t loop_lag_last_ns, loop_lag_max_ns, loop_lag_sum_ns, loop_lag_count;
} sp__http_stats;

/* Single-writer counters: the owning loop updates, scrapes read racily. */
#define SP_STAT_ADD(field, n)                                                                      \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define SP_STAT_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define SP_STAT_GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)

void sp__http_stats_request(sp__http_stats *st, unsigned route, sp_http_method m, int status,
                            uint64_t dur_ns);

/* ---- server side ----------------------------------------------------------- */

struct sp_http_conn {
    uv_tcp_t tcp; /* first: the uv handle's address is the conn's */
    uv_timer_t timer;
    uv_write_t wreq;
    sp_http_worker *w;
    sp_http_parser parser;
    sp_http_conn *prev, *next;    /* worker's connection list */
    sp_http_req *q_head, *q_tail; /* parsed (dispatched or held), in arrival order */
    unsigned inflight;
    unsigned unsafe_open; /* requests with unsafe_open set (see SP_ROUTE_ORDERED) */
    bool unsafe_ordered;  /* every one of them is on an ordered route */
    sp_http_req *held;    /* parsed, waiting for unsafe_open to reach 0; parser paused */
    unsigned nrequests;
    unsigned refs;         /* 1 for the socket + 1 per request a handler holds */
    unsigned open_handles; /* while closing: tcp + timer not yet closed */
    sp_buf out;            /* response bytes waiting to be written */
    sp_buf wbuf;           /* bytes owned by the uv_write in progress */
    sp_buf pending;        /* input received but not parsed (paused parser) */
    uint64_t deadline;     /* uv_now() ms when the current timeout expires */
    uint64_t timer_due;    /* when the uv timer is armed to fire, 0: not armed */
    uint8_t tkind;         /* which timeout the deadline is (enum in server.c) */
    bool writing, reading, closing, close_after_flush, eof;
    bool in_feed;        /* inside the parser: responses wait for the read's flush */
    bool stop_input;     /* no more requests wanted (error, upgrade, half-close) */
    bool read_paused;    /* an upgraded stream's owner paused its input */
    bool failed;         /* a write failed: closed at the next loop turn (conn_fail) */
    bool draining;       /* server shutdown: answer what's in flight, then close */
    sp_http_req *stream; /* the streaming response this connection carries, if any */
};

struct sp_http_worker {
    sp_loop *loop;
    sp_http_server *srv;
    uv_tcp_t listener;
    uv_timer_t lag_timer;
    uv_timer_t drain_timer;
    int listen_fd;
    int spare_fd;           /* given up to shed a connection when out of descriptors */
    unsigned shed_failures; /* EMFILE callbacks in a row that drained nothing */
    bool listener_closed;   /* paused listener's handle finished closing */
    uv_timer_t relisten_timer;
    bool listening, draining, stopped;
    uint64_t lag_expect_ns;
    sp_http_conn *conns;
    unsigned nconns;
    unsigned pending_closes;
    sp_http_req *free_reqs;
    unsigned nfree_reqs;
    uint64_t date_sec;
    char date[30];
    uint64_t req_counter;
    uint32_t id_prefix;
    uint64_t accept_error_logged_at, accept_errors_unlogged;
    char readbuf[SP_HTTP_READ_BUF];
    sp__http_stats stats;
};

struct sp_http_server {
    sp_http_options opts;
    struct sockaddr_storage addr; /* resolved listen address (port from opts) */
    char *host;
    int port;
    sp_router *router;
    unsigned nworkers;
    sp_loop *loops;
    sp_http_worker *workers;
    atomic_uint nconns;
    atomic_bool draining;
    bool started; /* threads were started: wait() joins them */
    uint64_t start_ms;
};

/* response.c */
void sp__http_conn_flush(sp_http_conn *c);
void sp__http_advance_queue(sp_http_conn *c);
/* Serialises a response head + body into b (limits ignored: the caller's
 * buffer is unlimited or sized). */
void sp__http_write_response(sp_http_worker *w, sp_buf *b, sp_http_req *req, int status,
                             const sp_http_header *headers, size_t nheaders, sp_slice body,
                             bool keepalive);
void sp__http_worker_update_date(sp_http_worker *w);

/* Writes a streaming head: no Content-Length, Connection: close. */
void sp__http_write_stream_head(sp_http_worker *w, sp_buf *b, sp_http_req *req, int status,
                                const sp_http_header *headers, size_t nheaders);
/* Hands input to an upgraded stream; false when there is none. */
bool sp__http_stream_input(sp_http_conn *c, const char *data, size_t len);

/* stream.c */
void sp__http_stream_closed(sp_http_conn *c);
void sp__http_stream_drained(sp_http_conn *c);

/* server.c */
/* The request has its answer (or its stream ended): it no longer holds
 * back the requests pipelined after it (see SP_ROUTE_ORDERED). */
void sp__http_req_settled(sp_http_conn *c, sp_http_req *req);
void sp__http_conn_keep_reading(sp_http_conn *c);
void sp__http_conn_stop_reading(sp_http_conn *c);
void sp__http_conn_close(sp_http_conn *c);
void sp__http_conn_unref(sp_http_conn *c);
void sp__http_req_release(sp_http_worker *w, sp_http_req *req);
void sp__http_conn_maybe_resume(sp_http_conn *c);
void sp__http_conn_after_response(sp_http_conn *c);

#endif
