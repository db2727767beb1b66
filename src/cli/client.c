/* client.c - see client.h. */
#include "client.h"

#include <errno.h>
#include <llhttp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"

struct sp_client {
    sp_url url;
    int fd;
    llhttp_t parser;
    llhttp_settings_t settings;
    sp_buf *body;
    bool done;
    bool overflow;
    bool got_bytes; /* any response byte arrived for the current request */
};

int sp_url_parse(const char *text, sp_url *out)
{
    memset(out, 0, sizeof *out);
    const char *p = text;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon = memchr(p, ':', hostport);
    size_t hlen = colon ? (size_t)(colon - p) : hostport;
    if (hlen == 0 || hlen >= sizeof out->host)
        return -EINVAL;
    memcpy(out->host, p, hlen);
    out->port = 80;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != p + hostport || port <= 0 || port > 65535)
            return -EINVAL;
        out->port = (int)port;
    }
    if (slash) {
        size_t blen = strlen(slash);
        while (blen && slash[blen - 1] == '/')
            blen--;
        if (blen >= sizeof out->base_path)
            return -EINVAL;
        memcpy(out->base_path, slash, blen);
    }
    return 0;
}

static int connect_to(const sp_url *u)
{
    char port[8];
    snprintf(port, sizeof port, "%d", u->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    if (getaddrinfo(u->host, port, &hints, &res) != 0)
        return -EHOSTUNREACH;
    int fd = -ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        int err = -errno;
        close(fd);
        fd = err;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    sp_client *c = p->data;
    if (sp_buf_append(c->body, at, len) != 0)
        c->overflow = true;
    return 0;
}

static int on_complete(llhttp_t *p)
{
    sp_client *c = p->data;
    c->done = true;
    return HPE_PAUSED;
}

int sp_client_open(const sp_url *url, sp_client **out)
{
    sp_client *c = sp_xcalloc(1, sizeof *c);
    c->url = *url;
    c->fd = connect_to(url);
    if (c->fd < 0) {
        int err = c->fd;
        free(c);
        return err;
    }
    llhttp_settings_init(&c->settings);
    c->settings.on_body = on_body;
    c->settings.on_message_complete = on_complete;
    *out = c;
    return 0;
}

void sp_client_close(sp_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int exchange(sp_client *c, const sp_buf *head, const char *body, size_t body_len,
                    sp_buf *resp)
{
    int rc = send_all(c->fd, head->base, head->len);
    if (rc == 0 && body_len)
        rc = send_all(c->fd, body, body_len);
    if (rc)
        return rc;
    llhttp_init(&c->parser, HTTP_RESPONSE, &c->settings);
    c->parser.data = c;
    c->body = resp;
    c->done = c->overflow = c->got_bytes = false;
    sp_buf_reset(resp);
    char buf[65536];
    while (!c->done) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? -ECONNRESET : -errno;
        c->got_bytes = true;
        llhttp_errno_t e = llhttp_execute(&c->parser, buf, (size_t)n);
        if (e != HPE_OK && e != HPE_PAUSED)
            return -EPROTO;
    }
    return c->overflow ? -ENOBUFS : c->parser.status_code;
}

int sp_client_request(sp_client *c, const char *method, const char *path, const char *content_type,
                      const char *body, size_t body_len, sp_buf *resp_body)
{
    sp_buf head;
    sp_buf_init(&head, SP_BUF_UNLIMITED);
    sp_buf_printf(&head, "%s %s%s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: spate-cli/%s\r\n", method,
                  c->url.base_path, path, c->url.host, c->url.port, SPATE_VERSION);
    if (content_type)
        sp_buf_printf(&head, "Content-Type: %s\r\n", content_type);
    if (body || strcmp(method, "POST") == 0)
        sp_buf_printf(&head, "Content-Length: %zu\r\n", body_len);
    sp_buf_append_cstr(&head, "\r\n");
    int rc = exchange(c, &head, body, body_len, resp_body);
    /* A kept-alive connection the server closed before answering anything:
     * send again once. Never after part of an answer arrived (it may have
     * acted on the request). */
    if ((rc == -ECONNRESET || rc == -EPIPE) && !c->got_bytes) {
        close(c->fd);
        c->fd = connect_to(&c->url);
        rc = c->fd < 0 ? c->fd : exchange(c, &head, body, body_len, resp_body);
    }
    sp_buf_free(&head);
    return rc;
}
