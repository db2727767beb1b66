/* The SSE endpoint in-process: a real server on 127.0.0.1:0 over a real
 * store and hub, a blocking client, a short keep-alive interval, and the
 * loops proven to close with nothing leaked after the shutdown event. */
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/api.h"
#include "core/time.h"
#include "hub/hub.h"

typedef struct world {
    char dir[128];
    sp_store *store; /* owned by be */
    sp_backend *be;
    sp_hub *hub;
    sp_router *router;
    sp_http_server *srv;
    sp_api api;
    int port;
} world;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void world_topic(world *w, const char *name, uint32_t partitions)
{
    char err[256];
    sp_store_topic_config tc = {.partitions = partitions};
    assert_int_equal(sp_hub_topic_create(w->hub, name, &tc, NULL, 0, err, sizeof err), 0);
}

static void world_start(world *w)
{
    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/spate-sse-XXXXXX");
    assert_non_null(mkdtemp(w->dir));
    char logdir[256];
    snprintf(logdir, sizeof logdir, "%s/log", w->dir);
    sp_store_options so;
    sp_store_options_default(&so);
    so.fsync = SP_STORE_FSYNC_NEVER;
    assert_int_equal(sp_store_open(logdir, &so, &w->store), 0);
    w->be = sp_backend_store_new(w->store);
    sp_hub_options ho;
    sp_hub_options_default(&ho);
    char err[256];
    assert_int_equal(sp_hub_new(w->be, w->dir, &ho, &w->hub, err, sizeof err), 0);
    world_topic(w, "one", 1);
    world_topic(w, "three", 3);
    sp_api_options_default(&w->api.opts);
    w->api.opts.news_topic = w->api.opts.items_topic = NULL;
    w->api.opts.sse_keepalive_ms = 100;
    w->api.opts.sse_retry_ms = 1500;
    w->api.hub = w->hub;
    w->router = sp_router_new();
    assert_int_equal(sp_api_register_rest(w->router, &w->api), 0);
    sp_http_options o;
    sp_http_options_default(&o);
    o.port = 0;
    o.threads = 2;
    o.shutdown_timeout_ms = 2000;
    assert_int_equal(sp_http_server_new(&o, w->router, &w->srv), 0);
    w->api.srv = w->srv;
    unsigned n;
    sp_loop *loops = sp_http_server_loops(w->srv, &n);
    sp_hub_attach_loops(w->hub, loops, n);
    assert_int_equal(sp_http_server_start(w->srv), 0);
    w->port = sp_http_server_port(w->srv);
}

static void world_stop(world *w)
{
    sp_http_server_shutdown(w->srv);
    assert_int_equal(sp_http_server_wait(w->srv), 0);
    sp_http_server_free(w->srv);
    sp_hub_free(w->hub);
    sp_backend_close(w->be);
    sp_router_free(w->router);
    nftw(w->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void append(world *w, const char *topic, int32_t partition, const char *value)
{
    sp_store_record r = {.timestamp = -1, .value = sp_slice_cstr(value)};
    assert_int_equal(sp_store_append(w->store, topic, partition, &r, 1, NULL, NULL), 0);
    assert_int_equal(sp_store_flush(w->store), 0);
}

/* ---- a blocking client ------------------------------------------------------- */

typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len;
    bool eof;
} client;

static void client_open(client *c, int port, const char *request)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    c->len = 0;
    c->eof = false;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(0x7f000001)};
    assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t n = strlen(request);
    assert_int_equal(write(c->fd, request, n), (ssize_t)n);
}

/* Reads until `needle` is in the buffer (returns a pointer just past it),
 * EOF, or the timeout (returns NULL). */
static const char *client_until(client *c, const char *needle, int ms)
{
    int64_t until = sp_time_now_ms() + ms;
    for (;;) {
        c->buf[c->len] = '\0';
        const char *hit = strstr(c->buf, needle);
        if (hit)
            return hit + strlen(needle);
        int64_t left = until - sp_time_now_ms();
        if (c->eof || left <= 0 || c->len + 1 >= sizeof c->buf)
            return NULL;
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
        if (r <= 0)
            c->eof = true;
        else
            c->len += (size_t)r;
    }
}

static void client_close(client *c)
{
    close(c->fd);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: x\r\n\r\n"

/* ---- tests --------------------------------------------------------------------- */

static void test_stream_basics(void **state)
{
    (void)state;
    world w;
    world_start(&w);
    append(&w, "one", 0, "{\"a\":1}");
    append(&w, "one", 0, "not json\nat all");
    client c;
    client_open(&c, w.port, GET("/v1/topics/one/stream?from=earliest"));
    assert_non_null(client_until(&c, "\r\n\r\n", 2000));
    assert_non_null(strstr(c.buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(c.buf, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(c.buf, "Cache-Control: no-cache\r\n"));
    assert_non_null(strstr(c.buf, "X-Accel-Buffering: no\r\n"));
    assert_non_null(client_until(&c, "retry: 1500\n\n", 2000));
    assert_non_null(
        client_until(&c, "id: 0-0\ndata: {\"id\":\"0-0\",\"partition\":0,\"offset\":0,", 2000));
    assert_non_null(client_until(&c, ",\"key\":null,\"value\":{\"a\":1}}\n\n", 2000));
    /* a value that is not JSON travels as a JSON string, newline escaped */
    assert_non_null(client_until(&c, "id: 0-1\ndata: {\"id\":\"0-1\"", 2000));
    assert_non_null(client_until(&c, "\"value\":\"not json\\nat all\"}\n\n", 2000));
    /* quiet stream: keep-alive comments from the loop's timer */
    assert_non_null(client_until(&c, ": keep-alive\n\n", 2000));
    append(&w, "one", 0, "[1,\n2]"); /* raw JSON keeps one data line */
    assert_non_null(client_until(&c, "id: 0-2\ndata: {\"id\":\"0-2\"", 2000));
    assert_non_null(client_until(&c, "\"value\":[1, 2]}\n\n", 2000));
    client_close(&c);
    world_stop(&w);
}

static void test_resume_and_cursor_ids(void **state)
{
    (void)state;
    world w;
    world_start(&w);
    for (int i = 0; i < 5; i++)
        append(&w, "one", 0, "1");
    client c;
    client_open(&c, w.port,
                "GET /v1/topics/one/stream?from=earliest HTTP/1.1\r\nHost: x\r\n"
                "Last-Event-ID: 0-2\r\n\r\n");
    assert_non_null(client_until(&c, "id: 0-4\n", 2000));
    assert_null(strstr(c.buf, "id: 0-2\n"));
    assert_non_null(strstr(c.buf, "id: 0-3\n"));
    client_close(&c);

    client_open(&c, w.port, GET("/v1/topics/one/stream?from=0-3"));
    assert_non_null(client_until(&c, "id: 0-4\n", 2000));
    assert_null(strstr(c.buf, "id: 0-3\n"));
    client_close(&c);

    /* several partitions: each id is the stream's cursor over all of them */
    append(&w, "three", 1, "1");
    append(&w, "three", 1, "2");
    append(&w, "three", 2, "3");
    client_open(&c, w.port, GET("/v1/topics/three/stream?from=earliest"));
    assert_non_null(client_until(&c, "id: 1-1,2-0\ndata: {\"id\":\"2-0\"", 2000));
    assert_non_null(strstr(c.buf, "id: 1-0\ndata: {\"id\":\"1-0\""));
    client_close(&c);
    client_open(&c, w.port,
                "GET /v1/topics/three/stream HTTP/1.1\r\nHost: x\r\n"
                "Last-Event-ID: 1-0\r\n\r\n");
    assert_non_null(client_until(&c, "id: 1-1,2-0\n", 2000)); /* 0-*: none; 1 after 0; 2 all */
    assert_null(strstr(c.buf, "\"id\":\"1-0\""));
    client_close(&c);
    world_stop(&w);
}

static void expect_status(world *w, const char *request, const char *status)
{
    client c;
    client_open(&c, w->port, request);
    assert_non_null(client_until(&c, "\r\n\r\n", 2000));
    if (!strstr(c.buf, status))
        fail_msg("%s -> %s", request, c.buf);
    client_close(&c);
}

static void test_errors(void **state)
{
    (void)state;
    world w;
    world_start(&w);
    expect_status(&w, GET("/v1/topics/nope/stream"), "HTTP/1.1 404 ");
    expect_status(&w, GET("/v1/topics/one/stream?from=yesterday"), "HTTP/1.1 422 ");
    expect_status(&w, GET("/v1/topics/one/stream?from=0-1,0-2"), "HTTP/1.1 422 ");
    expect_status(&w, GET("/v1/topics/one/stream?policy=drop"), "HTTP/1.1 422 ");
    expect_status(&w, GET("/v1/topics/one/stream?partition=1"), "HTTP/1.1 422 ");
    expect_status(&w, GET("/v1/topics/one/stream?from=5-0"), "HTTP/1.1 422 ");
    expect_status(&w, "GET /v1/topics/one/stream HTTP/1.1\r\nHost: x\r\nLast-Event-ID: x\r\n\r\n",
                  "HTTP/1.1 422 ");
    expect_status(&w, "HEAD /v1/topics/one/stream HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 ");
    world_stop(&w);
}

/* Subscriber counts show while a stream lives; shutdown says goodbye with
 * an event and closes the stream; the loops close clean (world_stop). */
static void test_counts_and_shutdown(void **state)
{
    (void)state;
    world w;
    world_start(&w);
    client c;
    client_open(&c, w.port, GET("/v1/topics/one/stream?from=time:0"));
    assert_non_null(client_until(&c, "retry:", 2000));
    int64_t until = sp_time_now_ms() + 2000;
    while (sp_hub_topic_subscribers(w.hub, "one") != 1 && sp_time_now_ms() < until)
        usleep(1000);
    assert_int_equal(sp_hub_topic_subscribers(w.hub, "one"), 1);
    sp_http_server_shutdown(w.srv);
    assert_non_null(
        client_until(&c, "event: shutdown\ndata: {\"detail\":\"server shutting down\"}\n\n", 2000));
    client_until(&c, "never", 2000);
    assert_true(c.eof);
    client_close(&c);
    assert_int_equal(sp_hub_topic_subscribers(w.hub, "one"), 0);
    world_stop(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_basics),
        cmocka_unit_test(test_resume_and_cursor_ids),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_counts_and_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
