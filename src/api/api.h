/* api.h - spate's HTTP endpoints, registered on a router.
 *
 * This layer wires the modules below it (http, and later hub/store/kafka)
 * into routes. Handlers here are thin: parse, call a module, answer. */
#ifndef SP_API_API_H
#define SP_API_API_H

#include "http/http.h"

struct sp_hub;

typedef struct sp_api_options {
    uint64_t ack_timeout_ms;      /* hard bound on a durable acknowledgement -> 504 */
    size_t max_batch_records;     /* records in one produce request */
    size_t max_read_records;      /* ?limit= ceiling for history reads */
    unsigned max_json_depth;      /* nesting limit for strict JSON */
    const char *news_topic;       /* seed route GET /latest-news reads it */
    const char *items_topic;      /* seed route POST /items appends to it */
    uint64_t sse_keepalive_ms;    /* SSE keep-alive comment interval; 0: 15 s */
    uint64_t sse_retry_ms;        /* SSE `retry:` sent at stream start; 0: 3 s */
    size_t ws_max_message_bytes;  /* WebSocket message limit (1009 past it); 0: 1 MiB */
    uint64_t ws_ping_interval_ms; /* WebSocket keep-alive ping after this silence; 0: 30 s */
    uint64_t ws_pong_timeout_ms;  /* unanswered ping -> close 1011; 0: 10 s */
    const char *ws_origins;       /* allowed Origin values, comma-separated; NULL/"": any */
    const char *chat_topic;       /* GET /chat demo page talks over this topic; NULL/"": off */
} sp_api_options;

/* A declared route bound to its topic (seed.c). */
typedef struct sp_api_bound {
    struct sp_api *api;
    const char *topic;
    size_t limit;
} sp_api_bound;

typedef struct sp_api {
    sp_http_server *srv; /* set once the server exists; for /metrics, /readyz */
    struct sp_hub *hub;  /* NULL: only the built-in endpoints */
    sp_api_options opts;
    int64_t start_ms;        /* process start, for uptime */
    sp_api_bound bound[8];   /* declared routes' state, owned here */
    sp_router *router;       /* for /openapi.json */
    const char *item_schema; /* the Item model's JSON Schema, for OpenAPI components */
    size_t nbound;
} sp_api;

void sp_api_options_default(sp_api_options *o);

/* Registers GET /debug/sleep?ms=N (at most 10 s), which blocks its loop on
 * purpose so the slow-handler and loop-lag monitors can be seen working.
 * Off unless debug.routes is set. */
int sp_api_register_debug(sp_router *r, sp_api *api);

/* The schema compiler for topic schemas (src/api/validate.c). */
extern const struct sp_hub_schema_ops sp_api_schema_ops;

/* Registers the topics, records and seed-compatible routes on top of the
 * hub (api->hub must be set). Returns 0 or a negative errno. */
int sp_api_register_rest(sp_router *r, sp_api *api);

/* Registers GET /, /noop, /healthz, /readyz and /metrics. `api` must
 * outlive the router. Returns 0 or a negative errno from sp_router_add. */
int sp_api_register_builtin(sp_router *r, sp_api *api);

#endif
