/* api.h - spate's HTTP endpoints, registered on a router.
 *
 * This layer wires the modules below it (http, and later hub/store/kafka)
 * into routes. Handlers here are thin: parse, call a module, answer. */
#ifndef SP_API_API_H
#define SP_API_API_H

#include <stdatomic.h>

#include "http/http.h"

struct sp_hub;

/* Declared routes (seed.c): small endpoints bound to one topic. */
#define SP_API_ROUTES_MAX 32

typedef enum sp_api_action {
    SP_API_ACTION_LATEST,  /* answer a JSON array of the newest `limit` record values */
    SP_API_ACTION_PRODUCE, /* validate one JSON value, append it, answer its position */
} sp_api_action;

typedef struct sp_api_route {
    sp_http_method method;
    const char *path;  /* literal segments, e.g. "/items" */
    const char *topic; /* created at start-up when missing */
    sp_api_action action;
    size_t limit;            /* latest: records answered */
    const char *schema;      /* the topic's JSON Schema text, "builtin:item", or NULL */
    const char *schema_file; /* or a file holding it (read at start-up), or NULL */
    char label[80];          /* names the route in start-up errors: "routes[2] (line 9)" */
} sp_api_route;

typedef struct sp_api_options {
    uint64_t ack_timeout_ms;      /* hard bound on a durable acknowledgement -> 504 */
    size_t max_batch_records;     /* records in one produce request */
    size_t max_read_records;      /* ?limit= ceiling for history reads */
    size_t max_pending_reads;     /* history reads waiting on the thread pool (Kafka); 0: 64 */
    unsigned max_json_depth;      /* nesting limit for strict JSON */
    const char *news_topic;       /* without routes_given: GET /latest-news reads it */
    const char *items_topic;      /* without routes_given: POST /items appends to it */
    uint64_t sse_keepalive_ms;    /* SSE keep-alive comment interval; 0: 15 s */
    uint64_t sse_retry_ms;        /* SSE `retry:` sent at stream start; 0: 3 s */
    size_t ws_max_message_bytes;  /* WebSocket message limit (1009 past it); 0: 1 MiB */
    uint64_t ws_ping_interval_ms; /* WebSocket keep-alive ping after this silence; 0: 30 s */
    uint64_t ws_pong_timeout_ms;  /* unanswered ping -> close 1011; 0: 10 s */
    const char *ws_origins;       /* allowed Origin values, comma-separated; NULL/"": any */
    const char *chat_topic;       /* GET /chat demo page talks over this topic; NULL/"": off */
    /* The declared routes. Without routes_given (the default) they are the
     * seed app's two, on news_topic and items_topic (each NULL: off). */
    bool routes_given;
    size_t nroutes;
    sp_api_route routes[SP_API_ROUTES_MAX];
} sp_api_options;

/* A declared route as registered (seed.c); openapi.c documents it. */
typedef struct sp_api_bound {
    struct sp_api *api;
    sp_api_route route;
} sp_api_bound;

typedef struct sp_api {
    sp_http_server *srv; /* set once the server exists; for /metrics, /readyz */
    struct sp_hub *hub;  /* NULL: only the built-in endpoints */
    sp_api_options opts;
    int64_t start_ms;                      /* process start, for uptime */
    sp_api_bound bound[SP_API_ROUTES_MAX]; /* declared routes' state, owned here */
    sp_router *router;                     /* for /openapi.json */
    const char *item_schema; /* the Item model's JSON Schema, for OpenAPI components */
    size_t nbound;
    atomic_size_t pending_reads; /* history reads on the thread pool now */
} sp_api;

void sp_api_options_default(sp_api_options *o);

/* Registers GET /debug/sleep?ms=N (at most 10 s), which blocks its loop on
 * purpose so the slow-handler and loop-lag monitors can be seen working.
 * Off unless debug.routes is set. */
int sp_api_register_debug(sp_router *r, sp_api *api);

/* The schema compiler for topic schemas (src/api/validate.c). */
extern const struct sp_hub_schema_ops sp_api_schema_ops;

/* Registers the topics, records, streams and docs routes on top of the
 * hub (api->hub must be set), then the declared routes (last, so that a
 * declared path a built-in route would match is refused: -EEXIST, logged
 * with the route's label). Returns 0 or a negative errno. */
int sp_api_register_rest(sp_router *r, sp_api *api);

/* Creates the topic of every declared route that is missing (1 partition,
 * the route's schema), routes with a schema first. A topic that exists
 * keeps its schema; a route whose schema differs from it (or gives one to
 * a topic without) is refused. Returns 0, or -EINVAL/-ENOENT/another
 * negative errno with a message naming the route in err. */
int sp_api_create_route_topics(struct sp_hub *hub, const sp_api_options *o, char *err,
                               size_t errlen);

/* Registers GET /, /noop, /healthz, /readyz and /metrics. `api` must
 * outlive the router. Returns 0 or a negative errno from sp_router_add. */
int sp_api_register_builtin(sp_router *r, sp_api *api);

#endif
