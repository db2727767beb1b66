/* api.h - spate's HTTP endpoints, registered on a router.
 *
 * This layer wires the modules below it (http, and later hub/store/kafka)
 * into routes. Handlers here are thin: parse, call a module, answer. */
#ifndef SP_API_API_H
#define SP_API_API_H

#include "http/http.h"

typedef struct sp_api {
    sp_http_server *srv;   /* set once the server exists; for /metrics, /readyz */
    int64_t start_ms;      /* process start, for uptime */
} sp_api;

/* Registers GET /, /noop, /healthz, /readyz and /metrics. `api` must
 * outlive the router. Returns 0 or a negative errno from sp_router_add. */
int sp_api_register_builtin(sp_router *r, sp_api *api);

#endif
