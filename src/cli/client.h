/* client.h - a small HTTP/1.1 client for the CLI (produce, consume, topics).
 *
 * Blocking, one request at a time per connection, keep-alive; responses are
 * parsed with llhttp in response mode. For load, `spate produce` runs many
 * of these on a libuv loop instead (produce.c). */
#ifndef SP_CLI_CLIENT_H
#define SP_CLI_CLIENT_H

#include <stddef.h>

#include "core/buf.h"

typedef struct sp_url {
    char host[256];
    int port;
    char base_path[256]; /* without trailing slash */
} sp_url;

/* Parses "http://host:port[/base]". Returns 0 or -EINVAL. */
int sp_url_parse(const char *text, sp_url *out);

typedef struct sp_client sp_client;

/* Connects. Returns 0 or a negative errno. */
int sp_client_open(const sp_url *url, sp_client **out);
void sp_client_close(sp_client *c);
/* Sends one request and reads the whole response body into `body`
 * (limit from the caller's buf). Returns the status (>= 100) or a negative
 * errno; reconnects once if the server closed a kept-alive connection. */
int sp_client_request(sp_client *c, const char *method, const char *path, const char *content_type,
                      const char *body, size_t body_len, sp_buf *resp_body);

#endif
