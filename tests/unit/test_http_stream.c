/* Streaming responses in-process: a real server on 127.0.0.1:0, a blocking
 * client, and the loop proven to close with nothing leaked. */
#include <errno.h>
#include <netinet/in.h>
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

#include "http/http.h"

static _Atomic int closed_events, eagain_seen;

typedef struct ticker {
    uv_timer_t timer;
    sp_http_stream *s;
    int left;
} ticker;

static void on_ticker_closed(uv_handle_t *h)
{
    free(h->data);
}

static void stream_event(sp_http_stream *s, int ev, void *arg)
{
    (void)s;
    ticker *t = arg;
    if (ev == SP_HTTP_STREAM_CLOSED || ev == SP_HTTP_STREAM_SHUTDOWN) {
        if (ev == SP_HTTP_STREAM_CLOSED)
            closed_events++;
        else
            sp_http_stream_end(s);
        t->s = NULL;
        if (!uv_is_closing((uv_handle_t *)&t->timer))
            uv_close((uv_handle_t *)&t->timer, on_ticker_closed);
    }
}

static void tick(uv_timer_t *h)
{
    ticker *t = h->data;
    char line[32];
    int n = snprintf(line, sizeof line, "data: %d\n\n", t->left);
    assert_int_equal(sp_http_stream_write(t->s, sp_slice_make(line, (size_t)n), 1 << 20), 0);
    sp_http_stream_flush(t->s);
    if (--t->left == 0) {
        sp_http_stream_end(t->s);
        t->s = NULL;
        uv_close((uv_handle_t *)&t->timer, on_ticker_closed);
    }
}

static void handle_stream(sp_http_req *req, void *udata)
{
    int count = *(int *)udata;
    ticker *t = calloc(1, sizeof *t);
    t->left = count;
    static const sp_http_header ct = {{"Content-Type", 12}, {"text/event-stream", 17}};
    t->s = sp_http_stream_start(req, 200, &ct, 1, stream_event, t);
    /* a write past the limit is refused whole */
    if (sp_http_stream_write(t->s, SP_SLICE_LIT("0123456789"), 4) == -EAGAIN)
        eagain_seen++;
    uv_timer_init(&sp_http_req_loop(req)->uv, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, tick, 5, 5);
}

/* An upgraded echo: what the client sends comes back. */
static void echo_event(sp_http_stream *s, int ev, void *arg)
{
    (void)arg;
    if (ev == SP_HTTP_STREAM_SHUTDOWN)
        sp_http_stream_end(s);
}

static void echo_data(sp_http_stream *s, const char *data, size_t len, void *arg)
{
    (void)arg;
    assert_int_equal(sp_http_stream_write(s, sp_slice_make(data, len), 1 << 20), 0);
    if (len >= 3 && memcmp(data + len - 3, "bye", 3) == 0)
        sp_http_stream_end(s);
}

static void handle_echo(sp_http_req *req, void *udata)
{
    (void)udata;
    static const sp_http_header h[] = {{{"Upgrade", 7}, {"echo", 4}},
                                       {{"Connection", 10}, {"Upgrade", 7}}};
    sp_http_upgrade(req, h, 2, echo_event, echo_data, NULL);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(0x7f000001)};
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    return n;
}

static void test_stream(void **state)
{
    (void)state;
    int forever = 1000000, three = 3;
    sp_router *r = sp_router_new();
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/three", handle_stream, &three), 0);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/forever", handle_stream, &forever), 0);
    assert_int_equal(sp_router_add(r, SP_HTTP_GET, "/echo", handle_echo, NULL), 0);
    sp_http_options o;
    sp_http_options_default(&o);
    o.port = 0;
    o.threads = 1;
    o.shutdown_timeout_ms = 2000;
    sp_http_server *srv;
    assert_int_equal(sp_http_server_new(&o, r, &srv), 0);
    assert_int_equal(sp_http_server_start(srv), 0);

    int fd = connect_to(sp_http_server_port(srv));
    const char req[] =
        "GET /three HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)sizeof req - 1);
    char buf[8192];
    read_all(fd, buf, sizeof buf);
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(buf, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(buf, "Connection: close\r\n"));
    assert_null(strstr(buf, "Content-Length"));
    assert_non_null(strstr(buf, "data: 3\n\ndata: 2\n\ndata: 1\n\n"));
    assert_null(strstr(buf + 20, "HTTP/1.1")); /* nothing answered after a stream */

    /* Upgrade: bytes sent right behind the handshake reach the new protocol. */
    fd = connect_to(sp_http_server_port(srv));
    const char up[] =
        "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhello ";
    assert_int_equal(write(fd, up, sizeof up - 1), (ssize_t)sizeof up - 1);
    usleep(20000);
    assert_int_equal(write(fd, "world bye", 9), 9);
    read_all(fd, buf, sizeof buf);
    close(fd);
    assert_non_null(strstr(buf, "HTTP/1.1 101 Switching Protocols\r\n"));
    assert_non_null(strstr(buf, "Upgrade: echo\r\n"));
    assert_null(strstr(buf, "Connection: close"));
    assert_non_null(strstr(buf, "\r\n\r\nhello world bye"));

    /* A client that leaves: the owner hears CLOSED. */
    fd = connect_to(sp_http_server_port(srv));
    const char req2[] = "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(write(fd, req2, sizeof req2 - 1), (ssize_t)sizeof req2 - 1);
    assert_true(read(fd, buf, sizeof buf) > 0);
    close(fd);
    for (int i = 0; i < 200 && closed_events == 0; i++)
        usleep(5000);
    assert_int_equal(closed_events, 1);
    assert_true(eagain_seen >= 2);

    /* A stream open at shutdown is told, ends, and the loop closes clean. */
    fd = connect_to(sp_http_server_port(srv));
    assert_int_equal(write(fd, req2, sizeof req2 - 1), (ssize_t)sizeof req2 - 1);
    assert_true(read(fd, buf, sizeof buf) > 0);
    sp_http_server_shutdown(srv);
    read_all(fd, buf, sizeof buf); /* EOF: the server ended the stream */
    close(fd);
    assert_int_equal(sp_http_server_wait(srv), 0);
    sp_http_server_free(srv);
    sp_router_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_stream)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
