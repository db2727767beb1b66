/* Network test (label `net`): a real server in this process on
 * 127.0.0.1:0 with two I/O threads, driven by blocking sockets from the
 * test thread. It checks routing, params, bodies, pipelining, a handler
 * that answers later from its loop's inbox, and then that a graceful
 * shutdown leaves every loop closed with no leaked handle:
 * sp_http_server_wait() returns 0 (UV_EBUSY would mean a leak). */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/api.h"
#include "core/buf.h"
#include "http/http.h"

/* ---- handlers ---------------------------------------------------------- */

static void handle_echo(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_buf *b = sp_http_req_scratch(req);
    sp_slice name = sp_http_req_param(req, "name");
    sp_slice body = sp_http_req_body(req);
    sp_slice q = SP_SLICE_NULL;
    sp_http_req_query_param(req, "q", &q);
    sp_buf_printf(b, "%.*s|%.*s|%.*s|%.*s", (int)sp_http_req_method_name(req).len,
                  sp_http_req_method_name(req).base, (int)name.len, name.base, (int)q.len,
                  q.base ? q.base : "", (int)body.len, body.base ? body.base : "");
    static const sp_http_header ct = {{"Content-Type", 12}, {"text/plain", 10}};
    sp_http_respond(req, 200, &ct, 1, sp_buf_slice(b));
}

static void answer_later(sp_loop *loop, void *arg)
{
    sp_http_req *req = arg;
    if (loop == NULL)
        return; /* loop closing: the server releases the request itself */
    sp_http_respond_json(req, 202, SP_SLICE_LIT("{\"later\":true}"));
}

/* Answers from the loop's inbox after the handler returned (the shape of
 * a durable append completing later). */
static void handle_later(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_loop_post(sp_http_req_loop(req), answer_later, req);
}

/* Pipelining after unsafe requests (SP_ROUTE_ORDERED in http.h). POST
 * /park is answered only when POST /unpark (from any connection) says so;
 * POST /ordered answers later from its loop's inbox, on an ordered route,
 * and records how many ordered requests were open at once; GET /effects
 * counts the unsafe requests answered so far. */
static _Atomic(sp_http_req *) parked;
static atomic_int effects, effects_reads, ordered_open, ordered_peak, ordered_saw_effects;

static void answer_effect(sp_loop *loop, void *arg)
{
    sp_http_req *req = arg;
    if (loop == NULL)
        return;
    atomic_fetch_add(&effects, 1);
    sp_http_respond_json(req, 201, SP_SLICE_LIT("{\"done\":true}"));
}

static void handle_park(sp_http_req *req, void *udata)
{
    (void)udata;
    atomic_store(&parked, req);
}

static void handle_unpark(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_http_req *p = atomic_exchange(&parked, NULL);
    if (p)
        sp_loop_post(sp_http_req_loop(p), answer_effect, p);
    sp_http_respond_json(req, 200, p ? SP_SLICE_LIT("true") : SP_SLICE_LIT("false"));
}

static void answer_ordered(sp_loop *loop, void *arg)
{
    if (loop == NULL)
        return;
    atomic_fetch_sub(&ordered_open, 1);
    answer_effect(loop, arg);
}

static void handle_ordered(sp_http_req *req, void *udata)
{
    (void)udata;
    int open = atomic_fetch_add(&ordered_open, 1) + 1;
    if (open > atomic_load(&ordered_peak))
        atomic_store(&ordered_peak, open);
    atomic_store(&ordered_saw_effects, atomic_load(&effects));
    sp_loop_post(sp_http_req_loop(req), answer_ordered, req);
}

static void handle_effects(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_buf *b = sp_http_req_scratch(req);
    atomic_fetch_add(&effects_reads, 1);
    sp_buf_printf(b, "%d", atomic_load(&effects));
    sp_http_respond_json(req, 200, sp_buf_slice(b));
}

/* ---- a tiny blocking client -------------------------------------------- */

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *s)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);
        assert_true(n > 0);
        off += (size_t)n;
    }
}

typedef struct client_buf {
    char data[65536];
    size_t len;
} client_buf;

/* Reads one response; returns its status and copies its body (NUL-ended). */
static int read_response(int fd, client_buf *cb, char *body, size_t body_cap)
{
    for (;;) {
        char *end = memmem(cb->data, cb->len, "\r\n\r\n", 4);
        if (end) {
            size_t head_len = (size_t)(end - cb->data) + 4;
            int status = atoi(cb->data + 9);
            const char *cl = memmem(cb->data, head_len, "Content-Length: ", 16);
            size_t blen = cl ? (size_t)atol(cl + 16) : 0;
            if (cb->len >= head_len + blen) {
                assert_true(blen < body_cap);
                memcpy(body, cb->data + head_len, blen);
                body[blen] = '\0';
                memmove(cb->data, cb->data + head_len + blen, cb->len - head_len - blen);
                cb->len -= head_len + blen;
                return status;
            }
        }
        assert_true(cb->len < sizeof cb->data);
        ssize_t n = recv(fd, cb->data + cb->len, sizeof cb->data - cb->len, 0);
        if (n <= 0)
            return -1;
        cb->len += (size_t)n;
    }
}

/* Whether a byte arrives within ms. */
static bool readable_within(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, ms) == 1;
}

static bool closed_by_peer(int fd)
{
    char c;
    return recv(fd, &c, 1, 0) == 0;
}

/* ---- fixture --------------------------------------------------------------- */

typedef struct fixture {
    sp_router *router;
    sp_api api;
    sp_http_server *srv;
    int port;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->router = sp_router_new();
    assert_int_equal(sp_api_register_builtin(f->router, &f->api), 0);
    assert_int_equal(sp_router_add(f->router, SP_HTTP_GET, "/echo/{name}", handle_echo, NULL), 0);
    assert_int_equal(sp_router_add(f->router, SP_HTTP_POST, "/echo/{name}", handle_echo, NULL), 0);
    assert_int_equal(sp_router_add(f->router, SP_HTTP_GET, "/later", handle_later, NULL), 0);
    assert_int_equal(sp_router_add(f->router, SP_HTTP_POST, "/park", handle_park, NULL), 0);
    assert_int_equal(sp_router_add(f->router, SP_HTTP_POST, "/unpark", handle_unpark, NULL), 0);
    assert_int_equal(sp_router_add_flags(f->router, SP_HTTP_POST, "/ordered", handle_ordered, NULL,
                                         SP_ROUTE_ORDERED),
                     0);
    assert_int_equal(sp_router_add(f->router, SP_HTTP_GET, "/effects", handle_effects, NULL), 0);
    atomic_store(&parked, NULL);
    atomic_store(&effects, 0);
    atomic_store(&effects_reads, 0);
    atomic_store(&ordered_open, 0);
    atomic_store(&ordered_peak, 0);
    sp_http_options o;
    sp_http_options_default(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    o.shutdown_timeout_ms = 2000;
    assert_int_equal(sp_http_server_new(&o, f->router, &f->srv), 0);
    f->api.srv = f->srv;
    f->port = sp_http_server_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(sp_http_server_start(f->srv), 0);
    *state = f;
    return 0;
}

/* The network-test contract: shutdown, then every loop closes with no
 * handle left (sp_http_server_wait returns 0, not UV_EBUSY). */
static int teardown(void **state)
{
    fixture *f = *state;
    sp_http_server_shutdown(f->srv);
    sp_http_server_shutdown(f->srv); /* idempotent */
    assert_true(sp_http_server_is_draining(f->srv));
    assert_int_equal(sp_http_server_wait(f->srv), 0);
    assert_int_equal(sp_http_server_connections(f->srv), 0);
    sp_http_server_free(f->srv);
    sp_router_free(f->router);
    free(f);
    return 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_requests(void **state)
{
    fixture *f = *state;
    static client_buf cb;
    char body[4096];
    cb.len = 0;
    int fd = connect_to(f->port);
    send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "{\"status\":\"ok\"}");
    send_all(fd, "GET /echo/alice?q=42&z HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "GET|alice|42|");
    send_all(fd, "POST /echo/bob HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "POST|bob||abcde");
    send_all(fd, "DELETE /echo/bob HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 405);
    send_all(fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 404);
    assert_string_equal(body, "{\"detail\":\"Not Found\"}");
    assert_int_equal(sp_http_server_connections(f->srv), 1);
    close(fd);
}

static void test_pipelined_with_deferred_answer(void **state)
{
    fixture *f = *state;
    static client_buf cb;
    char body[4096];
    cb.len = 0;
    int fd = connect_to(f->port);
    /* the deferred answer sits between two immediate ones: order holds */
    send_all(fd, "GET /echo/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /echo/3 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "GET|1||");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 202);
    assert_string_equal(body, "{\"later\":true}");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "GET|3||");
    close(fd);
}

#define PARK    "POST /park HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
#define UNPARK  "POST /unpark HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
#define ORDERED "POST /ordered HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
#define EFFECTS "GET /effects HTTP/1.1\r\nHost: x\r\n\r\n"

/* POST /unpark on its own connection: true when a request was parked. */
static bool unpark(int port)
{
    static client_buf cb;
    char body[64];
    cb.len = 0;
    int fd = connect_to(port);
    send_all(fd, UNPARK);
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    close(fd);
    return strcmp(body, "true") == 0;
}

/* Waits up to 2 s for POST /park to be started. */
static void wait_parked(void)
{
    for (int i = 0; i < 200 && !atomic_load(&parked); i++)
        usleep(10 * 1000);
    assert_non_null(atomic_load(&parked));
}

/* A request pipelined after an unanswered unsafe one is not started until
 * that one is answered (it sees its effect); ordered ones overtake only
 * ordered ones. */
static void test_pipelined_after_unsafe(void **state)
{
    fixture *f = *state;
    static client_buf cb;
    char body[4096];
    cb.len = 0;
    int fd = connect_to(f->port);
    send_all(fd, PARK EFFECTS ORDERED EFFECTS);
    wait_parked();
    assert_false(readable_within(fd, 100));
    assert_int_equal(atomic_load(&ordered_peak), 0); /* the ordered POST waits too */
    assert_true(unpark(f->port));
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 201);
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "1"); /* the GET ran after the POST took effect */
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 201);
    assert_int_equal(atomic_load(&ordered_saw_effects), 1);
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "2");
    /* ordered requests pipelined together all start at once (a produce
     * burst shares one group commit); the GET after them still waits */
    send_all(fd, ORDERED ORDERED ORDERED EFFECTS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(read_response(fd, &cb, body, sizeof body), 201);
    assert_int_equal(atomic_load(&ordered_peak), 3);
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_string_equal(body, "5");
    close(fd);
}

/* A connection reset while a request is held: a paused connection reads
 * nothing, so the reset shows when the parked answer is written; the
 * connection then closes and nothing leaks (teardown: no handle left;
 * ASan: no request or connection). */
static void test_reset_while_held(void **state)
{
    fixture *f = *state;
    int fd = connect_to(f->port);
    send_all(fd, PARK EFFECTS EFFECTS);
    wait_parked();
    usleep(50 * 1000);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd); /* RST */
    assert_true(unpark(f->port));
    for (int i = 0; i < 200 && sp_http_server_connections(f->srv) > 0; i++)
        usleep(10 * 1000);
    assert_int_equal(sp_http_server_connections(f->srv), 0);
}

/* Shutdown while a request is held behind one that is not answered: the
 * shutdown timeout closes the connection with the request still held (it
 * is dropped, never started); the parked one is answered into the closed
 * connection afterwards (its reference keeps the connection, and so the
 * worker's loop, alive until then), which frees both. */
static void test_shutdown_while_held(void **state)
{
    fixture *f = *state;
    int fd = connect_to(f->port);
    send_all(fd, PARK EFFECTS);
    wait_parked();
    sp_http_server_shutdown(f->srv);
    assert_true(closed_by_peer(fd)); /* at the shutdown timeout (2 s) */
    assert_int_equal(sp_http_server_connections(f->srv), 0);
    sp_http_req *p = atomic_exchange(&parked, NULL);
    sp_loop_post(sp_http_req_loop(p), answer_effect, p);
    assert_int_equal(atomic_load(&effects_reads), 0); /* the held GET never ran */
    close(fd);
}

static void test_metrics_text(void **state)
{
    fixture *f = *state;
    static client_buf cb;
    static char body[65536];
    cb.len = 0;
    int fd = connect_to(f->port);
    send_all(fd, "GET /echo/m HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_int_equal(read_response(fd, &cb, body, sizeof body), 200);
    assert_non_null(strstr(
        body,
        "spate_http_requests_total{route=\"/echo/{name}\",method=\"GET\",status=\"200\"} 1\n"));
    assert_non_null(strstr(body, "spate_http_connections_open 1\n"));
    close(fd);
    sp_buf out;
    sp_buf_init(&out, SP_BUF_UNLIMITED);
    sp_http_server_metrics(f->srv, &out);
    assert_non_null(strstr(out.base, "spate_loop_lag_seconds{loop=\"1\"}"));
    sp_buf_free(&out);
}

/* Shutdown with an idle keep-alive connection and a request whose body is
 * still arriving: the idle one is closed, the in-flight one answered. */
static void test_shutdown_with_connections(void **state)
{
    fixture *f = *state;
    static client_buf cb;
    char body[4096];
    cb.len = 0;
    int idle = connect_to(f->port);
    send_all(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_response(idle, &cb, body, sizeof body), 200);
    int busy = connect_to(f->port);
    send_all(busy, "POST /echo/z HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
    usleep(100 * 1000);
    sp_http_server_shutdown(f->srv);
    assert_true(closed_by_peer(idle));
    usleep(100 * 1000);
    send_all(busy, "cd");
    cb.len = 0;
    assert_int_equal(read_response(busy, &cb, body, sizeof body), 200);
    assert_string_equal(body, "POST|z||abcd");
    assert_true(closed_by_peer(busy));
    close(idle);
    close(busy);
    /* teardown asserts that wait() returns 0 */
}

static void test_bind_conflict_reported(void **state)
{
    fixture *f = *state;
    /* Another listener without SO_REUSEPORT holds a port: new() fails. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    sp_http_options o;
    sp_http_options_default(&o);
    o.port = ntohs(a.sin_port);
    o.threads = 1;
    sp_http_server *srv = NULL;
    assert_int_equal(sp_http_server_new(&o, f->router, &srv), -EADDRINUSE);
    assert_null(srv);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_with_deferred_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_after_unsafe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_while_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_while_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_with_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_conflict_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
