/* cmd_serve.c - `spate serve`: configuration, the server's threads, signals.
 *
 * Configuration is assembled in the documented order (defaults < file <
 * SPATE_* environment < flags); every flag is just a name for a config key,
 * so the flag table below is the whole mapping. The main thread binds the
 * listeners, starts the I/O threads, then runs a small loop of its own that
 * only waits for SIGTERM/SIGINT and starts the graceful drain. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <uv.h>

#include "api/api.h"
#include "api/schema.h"
#include "cli.h"
#include "cmd_log.h"
#include "core/config.h"
#include "core/log.h"
#include "core/time.h"
#include "http/http.h"
#include "hub/hub.h"
#include "kafka/kafka.h"
#include "store/store.h"

extern char **environ;

/* Flags that are names for config keys. */
static const struct {
    const char *flag;
    const char *key;
    const char *arg;
    const char *help;
} flag_keys[] = {
    {"host", "http.host", "ADDR", "address to listen on (default 127.0.0.1)"},
    {"port", "http.port", "PORT", "port to listen on (default 8000; 0 = any free port)"},
    {"threads", "server.threads", "N", "I/O threads (default: number of cores)"},
    {"data-dir", "server.data_dir", "DIR", "where the embedded log lives (default ./data)"},
    {"shutdown-timeout", "server.shutdown_timeout", "DUR", "graceful drain bound (default 10s)"},
    {"log-level", "log.level", "LEVEL", "debug, info, warn or error (default info)"},
    {"kafka", "kafka.bootstrap.servers", "HOSTS",
     "run on Kafka (host:port,...) instead of the embedded log"},
};

enum { OPT_CONFIG = 1000, OPT_PRINT, OPT_SET, OPT_ACCESS_LOG, OPT_FLAG_BASE = 2000 };

void sp_cli_serve_help(void)
{
    printf("usage: spate serve [options]\n\n"
           "Runs the server. Settings come from defaults < --config FILE (YAML) <\n"
           "SPATE_* environment variables < flags; see docs/CONFIG.md.\n\noptions:\n");
    for (size_t i = 0; i < sizeof flag_keys / sizeof flag_keys[0]; i++)
        printf("  --%s %-6s %s [%s]\n", flag_keys[i].flag, flag_keys[i].arg, flag_keys[i].help,
               flag_keys[i].key);
    printf("  --config FILE      YAML configuration file (or SPATE_CONFIG)\n"
           "  --set KEY=VALUE    set any configuration key, e.g. --set http.max_body_bytes=4MiB\n"
           "  --access-log       log every request\n"
           "  --print-config     print the effective configuration as YAML and exit\n"
           "  -h, --help         this help\n");
}

typedef struct pending_flag {
    const char *key;
    char *value;
} pending_flag;

typedef struct serve_args {
    const char *config_path;
    bool print_config;
    pending_flag flags[64];
    size_t nflags;
} serve_args;

static int add_flag(serve_args *a, const char *key, char *value)
{
    if (a->nflags == sizeof a->flags / sizeof a->flags[0]) {
        fprintf(stderr, "spate serve: too many flags\n");
        return 2;
    }
    a->flags[a->nflags].key = key;
    a->flags[a->nflags].value = value;
    a->nflags++;
    return 0;
}

static int parse_args(int argc, char **argv, serve_args *a)
{
    struct option opts[32];
    size_t n = 0;
    for (size_t i = 0; i < sizeof flag_keys / sizeof flag_keys[0]; i++)
        opts[n++] =
            (struct option){flag_keys[i].flag, required_argument, NULL, OPT_FLAG_BASE + (int)i};
    opts[n++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    opts[n++] = (struct option){"print-config", no_argument, NULL, OPT_PRINT};
    opts[n++] = (struct option){"set", required_argument, NULL, OPT_SET};
    opts[n++] = (struct option){"access-log", no_argument, NULL, OPT_ACCESS_LOG};
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int rc = 0;
        if (c == 'h') {
            sp_cli_serve_help();
            exit(0);
        } else if (c == OPT_CONFIG) {
            a->config_path = optarg;
        } else if (c == OPT_PRINT) {
            a->print_config = true;
        } else if (c == OPT_ACCESS_LOG) {
            rc = add_flag(a, "log.access", "true");
        } else if (c == OPT_SET) {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "spate serve: --set wants KEY=VALUE, got '%s'\n", optarg);
                return 2;
            }
            *eq = '\0';
            rc = add_flag(a, optarg, eq + 1);
        } else if (c >= OPT_FLAG_BASE) {
            rc = add_flag(a, flag_keys[c - OPT_FLAG_BASE].key, optarg);
        } else if (c == ':') {
            fprintf(stderr, "spate serve: option '%s' needs a value (see spate help serve)\n",
                    argv[optind - 1]);
            return 2;
        } else {
            fprintf(stderr, "spate serve: unknown option '%s' (see spate help serve)\n",
                    argv[optind - 1]);
            return 2;
        }
        if (rc)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "spate serve: unexpected argument '%s' (see spate help serve)\n",
                argv[optind]);
        return 2;
    }
    return 0;
}

static int load_config(serve_args *a, sp_config *cfg)
{
    sp_config_error err;
    const char *path = a->config_path ? a->config_path : getenv("SPATE_CONFIG");
    if (path && sp_config_load_file(cfg, path, &err) != 0) {
        fprintf(stderr, "spate serve: %s\n", err.msg);
        return 2;
    }
    if (sp_config_load_env(cfg, environ, &err) != 0) {
        fprintf(stderr, "spate serve: %s\n", err.msg);
        return 2;
    }
    for (size_t i = 0; i < a->nflags; i++) {
        if (sp_config_set(cfg, a->flags[i].key, a->flags[i].value, SP_CONFIG_FLAG, NULL, 0, &err)) {
            fprintf(stderr, "spate serve: %s\n", err.msg);
            return 2;
        }
    }
    return 0;
}

static void http_options_from(const sp_config *cfg, sp_http_options *o)
{
    sp_http_options_default(o);
    o->host = cfg->host;
    o->port = (int)cfg->port;
    o->threads = cfg->threads > 0 ? (unsigned)cfg->threads : uv_available_parallelism();
    o->limits.max_request_line = (size_t)cfg->max_request_line;
    o->limits.max_header_bytes = (size_t)cfg->max_header_bytes;
    o->limits.max_headers = (size_t)cfg->max_headers;
    o->limits.max_body_bytes = (size_t)cfg->max_body_bytes;
    o->limits.header_timeout_ms = (uint64_t)cfg->header_timeout_ms;
    o->limits.body_timeout_ms = (uint64_t)cfg->body_timeout_ms;
    o->limits.keepalive_timeout_ms = (uint64_t)cfg->keepalive_timeout_ms;
    o->limits.max_requests_per_conn = (unsigned)cfg->max_requests_per_conn;
    o->limits.max_pipelined = (unsigned)cfg->max_pipelined;
    o->limits.max_connections = (unsigned)cfg->max_connections;
    o->limits.max_output_bytes = (size_t)cfg->max_output_bytes;
    o->access_log = cfg->access_log;
    o->slow_handler_ms = (uint64_t)cfg->slow_handler_ms;
    o->loop_lag_interval_ms = (uint64_t)cfg->loop_lag_interval_ms;
    o->shutdown_timeout_ms = (uint64_t)cfg->shutdown_timeout_ms;
}

/* More connections than the default soft limit of 1024 fds need this. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int make_data_dir(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "spate serve: cannot create data directory '%s': %s\n", dir,
                strerror(errno));
        return 1;
    }
    return 0;
}

typedef struct signal_ctx {
    sp_http_server *srv;
    uv_signal_t sigterm, sigint;
    int count;
} signal_ctx;

static void on_signal(uv_signal_t *h, int signum)
{
    signal_ctx *ctx = h->data;
    if (ctx->count++ == 0) {
        SP_LOG_INFO("shutting down",
                    SP_LF_STR("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT")
                        SP_LF_INT("connections", sp_http_server_connections(ctx->srv)));
        sp_http_server_shutdown(ctx->srv);
        /* Stay installed (a second signal must not kill the drain) but let
         * the main loop return so this thread can wait for the workers. */
        uv_unref((uv_handle_t *)&ctx->sigterm);
        uv_unref((uv_handle_t *)&ctx->sigint);
    } else {
        SP_LOG_WARN("already shutting down; in-flight requests end at server.shutdown_timeout");
    }
}

_Static_assert(SP_CONFIG_ROUTES_MAX <= SP_API_ROUTES_MAX, "the API must hold every route");

/* The routes in effect (declared, or the defaults on demo.*) as the API
 * takes them, each labelled for start-up errors. */
static void api_routes_from(const sp_config *cfg, sp_api_options *o)
{
    sp_config_route r[SP_CONFIG_ROUTES_MAX];
    size_t n = sp_config_routes(cfg, r);
    for (size_t i = 0; i < n; i++) {
        sp_api_route *a = &o->routes[i];
        bool latest = r[i].action == SP_CONFIG_ACTION_LATEST;
        *a = (sp_api_route){.method = strcmp(r[i].method, "GET") == 0   ? SP_HTTP_GET
                                      : strcmp(r[i].method, "PUT") == 0 ? SP_HTTP_PUT
                                                                        : SP_HTTP_POST,
                            .path = r[i].path,
                            .topic = r[i].topic,
                            .action = latest ? SP_API_ACTION_LATEST : SP_API_ACTION_PRODUCE,
                            .limit = (size_t)r[i].limit,
                            .schema = r[i].schema,
                            .schema_file = r[i].schema_file};
        if (cfg->routes_declared)
            snprintf(a->label, sizeof a->label, "routes[%zu] (line %d)", i, r[i].line);
        else
            snprintf(a->label, sizeof a->label, "the default route (demo.%s_topic)",
                     latest ? "news" : "items");
    }
    o->nroutes = n;
    o->routes_given = true;
    if (cfg->routes_declared &&
        (strcmp(cfg->news_topic, "latest-news") != 0 || strcmp(cfg->items_topic, "items") != 0))
        SP_LOG_WARN("demo.news_topic and demo.items_topic are not used: the config file declares "
                    "routes");
}

static void api_options_from(const sp_config *cfg, sp_api_options *o)
{
    sp_api_options_default(o);
    o->ack_timeout_ms = (uint64_t)cfg->ack_timeout_ms;
    o->max_batch_records = (size_t)cfg->max_batch_records;
    o->max_read_records = (size_t)cfg->max_read_records;
    o->max_pending_reads = (size_t)cfg->max_pending_reads;
    o->max_json_depth = (unsigned)cfg->max_json_depth;
    o->sse_keepalive_ms = (uint64_t)cfg->sse_keepalive_ms;
    o->sse_retry_ms = (uint64_t)cfg->sse_retry_ms;
    o->news_topic = cfg->news_topic && cfg->news_topic[0] ? cfg->news_topic : NULL;
    o->items_topic = cfg->items_topic && cfg->items_topic[0] ? cfg->items_topic : NULL;
    o->ws_max_message_bytes = (size_t)cfg->ws_max_message_bytes;
    o->ws_ping_interval_ms = (uint64_t)cfg->ws_ping_interval_ms;
    o->ws_pong_timeout_ms = (uint64_t)cfg->ws_pong_timeout_ms;
    o->ws_origins = cfg->ws_origins && cfg->ws_origins[0] ? cfg->ws_origins : NULL;
    o->chat_topic = cfg->chat_topic && cfg->chat_topic[0] ? cfg->chat_topic : NULL;
    api_routes_from(cfg, o);
}

/* The chat demo's messages (GET /chat): a user and a text. */
static const char chat_schema[] =
    "{\"type\":\"object\",\"required\":[\"user\",\"text\"],\"properties\":{"
    "\"user\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":40},"
    "\"text\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":2000}}}";

/* The declared routes' topics and the chat demo's: created on first
 * start, kept afterwards (see sp_api_create_route_topics for schemas). */
static int ensure_demo_topics(sp_hub *hub, const sp_api_options *ao)
{
    sp_store_topic_config tc = {.partitions = 1};
    char err[512] = "";
    int rc = sp_api_create_route_topics(hub, ao, err, sizeof err);
    if (rc != 0) {
        SP_LOG_ERROR("cannot set up a declared route", SP_LF_STR("error", err));
        return rc;
    }
    if (ao->chat_topic && !sp_hub_topic_exists(hub, ao->chat_topic))
        rc = sp_hub_topic_create(hub, ao->chat_topic, &tc, chat_schema, strlen(chat_schema), err,
                                 sizeof err);
    if (rc != 0 && rc != -EEXIST)
        SP_LOG_ERROR("cannot create the demo topics",
                     SP_LF_STR("error", err[0] ? err : strerror(-rc)));
    return rc == -EEXIST ? 0 : rc;
}

typedef struct server_parts {
    sp_backend *be;
    sp_hub *hub;
    sp_router *router;
    sp_http_server *srv;
    sp_api api;
} server_parts;

/* The Kafka bootstrap servers when Kafka mode is on (kafka.bootstrap.servers
 * set by the file, SPATE_KAFKA_BOOTSTRAP or --kafka), else NULL. */
static const char *kafka_bootstrap(const sp_config *cfg)
{
    for (size_t i = 0; i < cfg->kafka_len; i++)
        if (strcmp(cfg->kafka[i].key, "bootstrap.servers") == 0 && cfg->kafka[i].value[0])
            return cfg->kafka[i].value;
    return NULL;
}

static int open_kafka(const sp_config *cfg, server_parts *p)
{
    char err[512] = "";
    int rc = sp_kafka_backend_open(cfg->kafka, cfg->kafka_len, &p->be, err, sizeof err);
    if (rc != 0)
        SP_LOG_ERROR("cannot start the Kafka backend",
                     SP_LF_STR("bootstrap", kafka_bootstrap(cfg))
                         SP_LF_STR("error", err[0] ? err : strerror(-rc)));
    return rc;
}

static int open_embedded(const sp_config *cfg, server_parts *p)
{
    char dir[4096], err[512] = "";
    sp_store_options so;
    if (sp_cli_store_options(cfg, &so, err, sizeof err) != 0) {
        SP_LOG_ERROR("bad store settings", SP_LF_STR("error", err));
        return -EINVAL;
    }
    snprintf(dir, sizeof dir, "%s/log", cfg->data_dir);
    sp_store *store;
    int rc = sp_store_open(dir, &so, &store);
    if (rc != 0) {
        SP_LOG_ERROR(rc == -EBUSY ? "data directory is locked by another spate process"
                                  : "cannot open the embedded log",
                     SP_LF_STR("dir", dir) SP_LF_STR("error", strerror(-rc)));
        return rc;
    }
    p->be = sp_backend_store_new(store);
    return 0;
}

static int open_backend(const sp_config *cfg, server_parts *p)
{
    char err[512] = "";
    int rc = kafka_bootstrap(cfg) ? open_kafka(cfg, p) : open_embedded(cfg, p);
    if (rc != 0)
        return rc;
    sp_hub_options ho;
    sp_hub_options_default(&ho);
    ho.schema_ops = &sp_api_schema_ops;
    ho.latest_n = (size_t)cfg->latest_n;
    ho.sub_queue_records = (size_t)cfg->sub_queue_records;
    ho.sub_queue_bytes = (size_t)cfg->sub_queue_bytes;
    rc = sp_hub_new(p->be, cfg->data_dir, &ho, &p->hub, err, sizeof err);
    if (rc != 0) {
        SP_LOG_ERROR("cannot start the hub", SP_LF_STR("error", err[0] ? err : strerror(-rc)));
        return rc;
    }
    p->api.hub = p->hub;
    return ensure_demo_topics(p->hub, &p->api.opts);
}

/* Teardown order matters: the I/O threads are already joined; the hub
 * stops watching the backend; the backend closes, completing every pending
 * append (their posts to the closed loops run on the backend's thread and
 * only free memory); only then do the hub and the loops' inboxes go away. */
static void close_parts(server_parts *p)
{
    sp_hub_detach(p->hub);
    sp_backend_close(p->be);
    sp_hub_free(p->hub);
    sp_http_server_free(p->srv);
    sp_router_free(p->router);
}

static int wait_for_signal(sp_http_server *srv)
{
    uv_loop_t main_loop;
    uv_loop_init(&main_loop);
    signal_ctx sig = {.srv = srv};
    uv_signal_init(&main_loop, &sig.sigterm);
    uv_signal_init(&main_loop, &sig.sigint);
    sig.sigterm.data = sig.sigint.data = &sig;
    uv_signal_start(&sig.sigterm, on_signal, SIGTERM);
    uv_signal_start(&sig.sigint, on_signal, SIGINT);
    uv_run(&main_loop, UV_RUN_DEFAULT);
    int rc = sp_http_server_wait(srv) == 0 ? 0 : 1;
    uv_close((uv_handle_t *)&sig.sigterm, NULL);
    uv_close((uv_handle_t *)&sig.sigint, NULL);
    uv_run(&main_loop, UV_RUN_DEFAULT);
    uv_loop_close(&main_loop);
    return rc;
}

static int run_server(const sp_config *cfg)
{
    server_parts p = {.api = {.start_ms = sp_time_now_ms()}};
    api_options_from(cfg, &p.api.opts);
    p.router = sp_router_new();
    p.api.item_schema = sp_schema_item_json;
    int exit_code = 1, rc = open_backend(cfg, &p);
    rc = rc ? rc : sp_api_register_builtin(p.router, &p.api);
    rc = rc ? rc : sp_api_register_rest(p.router, &p.api);
    rc = rc || !cfg->debug_routes ? rc : sp_api_register_debug(p.router, &p.api);
    if (rc != 0) {
        /* a setting that cannot work (a route's schema, a clashing path) is
         * a usage error like a bad flag: exit 2; anything else: 1 */
        exit_code = rc == -EINVAL || rc == -EEXIST ? 2 : 1;
        goto out;
    }
    sp_http_options o;
    http_options_from(cfg, &o);
    rc = sp_http_server_new(&o, p.router, &p.srv);
    if (rc != 0) {
        SP_LOG_ERROR("cannot listen", SP_LF_STR("host", cfg->host) SP_LF_INT("port", cfg->port)
                                          SP_LF_STR("error", strerror(-rc)));
        goto out;
    }
    p.api.srv = p.srv;
    unsigned nloops;
    sp_loop *loops = sp_http_server_loops(p.srv, &nloops);
    sp_hub_attach_loops(p.hub, loops, nloops);
    if ((rc = sp_http_server_start(p.srv)) != 0) {
        SP_LOG_ERROR("cannot start I/O threads", SP_LF_STR("error", uv_strerror(rc)));
        goto out;
    }
    SP_LOG_INFO("listening",
                SP_LF_STR("host", cfg->host) SP_LF_INT("port", sp_http_server_port(p.srv))
                    SP_LF_INT("threads", o.threads) SP_LF_STR("data_dir", cfg->data_dir)
                        SP_LF_STR("backend", sp_backend_name(p.be))
                            SP_LF_STR("version", SPATE_VERSION));
    exit_code = wait_for_signal(p.srv);
    SP_LOG_INFO("stopped", SP_LF_INT("exit_code", exit_code));
out:
    close_parts(&p);
    return exit_code;
}

int sp_cli_serve(int argc, char **argv)
{
    serve_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    sp_config cfg;
    sp_config_init(&cfg);
    rc = load_config(&a, &cfg);
    if (rc == 0 && a.print_config) {
        sp_config_print(&cfg, stdout);
    } else if (rc == 0) {
        sp_log_set_level_name(cfg.log_level);
        signal(SIGPIPE, SIG_IGN);
        raise_fd_limit();
        rc = make_data_dir(cfg.data_dir);
        if (rc == 0)
            rc = run_server(&cfg);
    }
    sp_config_free(&cfg);
    return rc;
}
