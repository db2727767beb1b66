/* config.h - spate's settings: defaults < YAML file < SPATE_* env < flags.
 *
 * Every setting is one row of a table (config.c): a dotted key such as
 * "http.max_body_bytes", a type, a default, bounds, and a help line. The
 * table drives everything: the YAML loader (nested maps flatten to dotted
 * keys, `http: {port: 80}` is "http.port"), the environment
 * (SPATE_HTTP_PORT), the flags (`--port` and the generic `--set KEY=VALUE`),
 * --print-config, and docs. A value that does not parse or is out of bounds
 * is an error naming the key, the source, and (for the file) the line.
 *
 * Typed values:
 *   size      "1048576", "64k", "64KiB", "1m", "1MiB", "2g" (powers of 1024)
 *   duration  "250ms", "10s", "5m", "1h", "7d"; a bare number means ms
 *   bool      true/false, yes/no, on/off, 1/0
 *   enum      one of the listed words
 *
 * Keys under "kafka." are not in the table: they are kept verbatim, in
 * order, for librdkafka (see sp_config.kafka). Unknown keys elsewhere are
 * errors, so a typo never silently does nothing.
 *
 * One key is not a scalar: `routes`, a sequence of mappings in the file
 * (never env or flags) that declares small endpoints bound to a topic, such
 * as the seed app's `GET /latest-news` and `POST /items`:
 *   routes:
 *     - {method: GET, path: /latest-news, topic: latest-news, action: latest, limit: 10}
 *     - {method: POST, path: /items, topic: items, action: produce, schema: builtin:item}
 * Without the key the routes are those two, on demo.news_topic and
 * demo.items_topic (sp_config_routes); `routes: []` declares none. */
#ifndef SP_CORE_CONFIG_H
#define SP_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sp_config_kv {
    char *key; /* without the "kafka." prefix, e.g. "linger.ms" */
    char *value;
} sp_config_kv;

/* What a declared route does (see src/api/seed.c). */
typedef enum sp_config_action {
    SP_CONFIG_ACTION_LATEST = 1, /* GET: JSON array of the newest `limit` record values */
    SP_CONFIG_ACTION_PRODUCE,    /* POST/PUT: validate one JSON value and append it */
} sp_config_action;

/* One entry of `routes:`. The strings are owned by the sp_config that holds
 * the route (const only so that the default routes can point at static
 * text); `method` always points at static text. */
typedef struct sp_config_route {
    const char *method; /* "GET" (latest), "POST" or "PUT" (produce) */
    const char *path;   /* "/" then literal segments: "/latest-news" */
    const char *topic;  /* a valid topic name, created at start if missing */
    sp_config_action action;
    int64_t limit;           /* latest: records answered, 1..SP_CONFIG_ROUTE_LIMIT_MAX; else 0 */
    const char *schema;      /* JSON Schema text, "builtin:item", or NULL */
    const char *schema_file; /* a JSON Schema file (relative: to the working directory), or NULL */
    int line;                /* where it is declared in the file; 0 for a default route */
} sp_config_route;

typedef struct sp_config {
    /* server.* */
    char *host;                  /* http.host, default "127.0.0.1" */
    int64_t port;                /* http.port, default 8000 (0: any free port) */
    int64_t threads;             /* server.threads, 0 = number of cores */
    char *data_dir;              /* server.data_dir, default "./data" */
    int64_t shutdown_timeout_ms; /* server.shutdown_timeout, default 10s */
    char *log_level;             /* log.level: debug|info|warn|error, default info */
    bool access_log;             /* log.access, default false */

    /* http.* limits (h2o-tight defaults) */
    int64_t max_request_line;      /* http.max_request_line, 8 KiB -> 414 */
    int64_t max_header_bytes;      /* http.max_header_bytes, 16 KiB -> 431 */
    int64_t max_headers;           /* http.max_headers, 100 -> 431 */
    int64_t max_body_bytes;        /* http.max_body_bytes, 1 MiB -> 413 */
    int64_t header_timeout_ms;     /* http.header_timeout, 10s -> 408 */
    int64_t body_timeout_ms;       /* http.body_timeout, 10s idle -> 408 */
    int64_t keepalive_timeout_ms;  /* http.keepalive_timeout, 30s */
    int64_t max_requests_per_conn; /* http.max_requests_per_connection, 10000 */
    int64_t max_pipelined;         /* http.max_pipelined, 32 in flight per connection */
    int64_t max_connections;       /* http.max_connections, 10000 per process -> 503 */
    int64_t max_output_bytes;      /* http.max_output_bytes, 4 MiB queued per connection */

    /* monitor.* */
    int64_t loop_lag_interval_ms; /* monitor.loop_lag_interval, 100ms */
    int64_t slow_handler_ms;      /* monitor.slow_handler, 50ms */

    /* store.* (embedded log) */
    char *fsync;                /* store.fsync: always|interval|never, default always */
    int64_t fsync_interval_ms;  /* store.fsync_interval, 1000ms */
    int64_t segment_bytes;      /* store.segment_bytes, 64 MiB */
    int64_t retention_bytes;    /* store.retention_bytes, 0 = unlimited */
    int64_t retention_ms;       /* store.retention, 7d; 0 = forever */
    int64_t max_record_bytes;   /* store.max_record_bytes, 1 MiB */
    int64_t max_append_records; /* store.max_append_records, 65536 records in one append */
    int64_t queue_max_bytes;    /* store.queue_max_bytes, 64 MiB waiting for the store thread */
    int64_t queue_max_appends;  /* store.queue_max_appends, 65536 appends waiting -> 503 */
    int64_t max_topics;         /* store.max_topics, 10000 */
    int64_t max_partitions;     /* store.max_partitions, 1024 per topic */
    char *on_corruption;        /* store.on_corruption: fence|truncate, default fence */

    /* api.*, hub.* and the news demo */
    int64_t ack_timeout_ms;       /* api.ack_timeout, 10s -> 504 */
    int64_t max_batch_records;    /* api.max_batch_records, 10000 per produce request */
    int64_t max_read_records;     /* api.max_read_records, 10000 per history page */
    int64_t max_pending_reads;    /* api.max_pending_reads, 64 Kafka history reads at once */
    int64_t max_json_depth;       /* api.max_json_depth, 64 */
    int64_t sse_keepalive_ms;     /* api.sse_keepalive, 15s */
    int64_t sse_retry_ms;         /* api.sse_retry, 3s: the reconnect delay told to EventSource */
    int64_t ws_max_message_bytes; /* ws.max_message_bytes, 1 MiB -> 1009 past it */
    int64_t ws_ping_interval_ms;  /* ws.ping_interval, 30s of silence before a ping */
    int64_t ws_pong_timeout_ms;   /* ws.pong_timeout, 10s for the pong -> 1011 */
    char *ws_origins;             /* ws.origins, "" (any); comma-separated allow-list -> 403 */
    int64_t sub_queue_records;    /* hub.subscriber_queue_records, 8192 per subscriber */
    int64_t sub_queue_bytes;      /* hub.subscriber_queue_bytes, 2 MiB per subscriber */
    int64_t latest_n;             /* hub.latest_n, 100 newest records cached per topic */
    char *news_topic;  /* demo.news_topic, "latest-news": the default GET /latest-news ("": off) */
    char *items_topic; /* demo.items_topic, "items": the default POST /items ("": off) */
    char *chat_topic;  /* demo.chat_topic, "" (off); "chat" serves GET /chat on it */
    bool debug_routes; /* debug.routes, false: GET /debug/sleep?ms= for tests */

    /* kafka.* pass-through, in the order given (file, then env, then flags;
     * a later source replaces an earlier value of the same key). */
    sp_config_kv *kafka;
    size_t kafka_len;

    /* routes: from the file only. routes_declared false (no `routes:` key):
     * the default routes on demo.*; read them through sp_config_routes. */
    sp_config_route *routes;
    size_t routes_len;
    bool routes_declared;
} sp_config;

typedef enum sp_config_source {
    SP_CONFIG_DEFAULT = 0,
    SP_CONFIG_FILE,
    SP_CONFIG_ENV,
    SP_CONFIG_FLAG,
} sp_config_source;

/* Hard limits on what the loaders accept (curl-style: every input has one). */
#define SP_CONFIG_FILE_MAX  (1024 * 1024) /* bytes of YAML, file or string */
#define SP_CONFIG_KEY_MAX   128           /* bytes of a dotted key */
#define SP_CONFIG_VALUE_MAX 65536         /* bytes of one value */
#define SP_CONFIG_KAFKA_MAX 256           /* kafka.* pass-through entries */
#define SP_CONFIG_DEPTH_MAX 16            /* nested mappings in the file */
/* Declared routes: the router holds 63 routes and spate's own take about
 * 20 of them (src/http/http_int.h SP_HTTP_MAX_ROUTES). */
#define SP_CONFIG_ROUTES_MAX      32
#define SP_CONFIG_ROUTE_PATH_MAX  256  /* bytes of a declared path */
#define SP_CONFIG_ROUTE_LIMIT_MAX 1024 /* `limit` of a latest route */

/* What went wrong, for one clear line on stderr. */
typedef struct sp_config_error {
    char msg[512]; /* e.g. "config.yaml:12: http.port: 70000 is above the maximum 65535" */
} sp_config_error;

/* Fills cfg with the defaults. Every string in cfg is owned by cfg. */
void sp_config_init(sp_config *cfg);
/* Frees every string and the kafka list; cfg may be initialized again. */
void sp_config_free(sp_config *cfg);

/* Sets one key from text. `source` and (for SP_CONFIG_FILE) `file`/`line`
 * only shape the error message. Returns 0, or -EINVAL (unknown key, bad
 * value, out of bounds) with err filled and cfg unchanged.
 * For SP_CONFIG_ENV a non-NULL `file` names the variable, and for
 * SP_CONFIG_FLAG the flag ("--port"); NULL gives "SPATE_<KEY>" and
 * "--set KEY". err may be NULL. */
int sp_config_set(sp_config *cfg, const char *key, const char *value, sp_config_source source,
                  const char *file, int line, sp_config_error *err);

/* Loads a YAML file (a mapping, nested mappings flatten to dotted keys;
 * scalars only, but for the `routes:` sequence, which replaces every
 * route declared before). Returns 0, or -errno / -EINVAL with err naming the file,
 * line and key; -EFBIG past SP_CONFIG_FILE_MAX. A key given twice in one
 * file is an error. On any error cfg is unchanged (the loaders work on a
 * copy and swap it in on success). */
int sp_config_load_file(sp_config *cfg, const char *path, sp_config_error *err);
/* Parses YAML held in memory; `name` is used in messages. Fuzz entry point. */
int sp_config_load_string(sp_config *cfg, const char *name, const char *text, size_t len,
                          sp_config_error *err);

/* Applies every SPATE_<KEY> variable in envp (NULL-terminated, as environ):
 * the key upper-cased with '.' as '_' (SPATE_HTTP_MAX_BODY_BYTES). Also
 * SPATE_KAFKA_BOOTSTRAP -> kafka bootstrap.servers. Variables that match no
 * key are ignored except SPATE_CONFIG, which the caller reads. Returns 0 or
 * -EINVAL with err filled. */
int sp_config_load_env(sp_config *cfg, char *const *envp, sp_config_error *err);

/* Writes the effective configuration as YAML that sp_config_load_file
 * accepts back (a round trip gives the same cfg). */
void sp_config_print(const sp_config *cfg, FILE *out);

/* True when every setting, the kafka list (in order) and the effective
 * routes (sp_config_routes, in order; `line` aside) are the same. */
bool sp_config_equal(const sp_config *a, const sp_config *b);

/* Stores the routes in effect into out (room for SP_CONFIG_ROUTES_MAX) and
 * returns their count: the declared ones, or without a `routes:` key the
 * defaults, GET /latest-news (action latest, limit 10) on demo.news_topic
 * and POST /items (action produce, schema builtin:item) on
 * demo.items_topic, each left out when its topic is "". The strings are
 * borrowed from cfg (or static). */
size_t sp_config_routes(const sp_config *cfg, sp_config_route *out);

/* Calls fn for every known key with its help line and default, in table
 * order (for `spate help serve` and docs). */
void sp_config_each(void (*fn)(const char *key, const char *type, const char *def, const char *help,
                               void *udata),
                    void *udata);

/* Helpers shared with the CLI; each returns 0 or -EINVAL. */
int sp_config_parse_size(const char *text, int64_t *out);
int sp_config_parse_duration_ms(const char *text, int64_t *out);
int sp_config_parse_bool(const char *text, bool *out);

#endif
