/* seed.c - declared routes: small fixed endpoints bound to a topic, such as
 * the reference articles' `GET /latest-news` and `POST /items`.
 *
 * A declaration (the config file's `routes:`, see docs/CONFIG.md) names a
 * method, a path, a topic, an action and optionally the topic's schema:
 *   latest   answer a JSON array of the newest `limit` record values
 *            (the articles themselves, as the seed app returns them)
 *   produce  validate the body against the topic's schema and append it,
 *            answering {"timestamp","partition","offset"} once durable
 *            (?ack=none: 202 at once)
 * Without declarations the seed app's two routes are served, on
 * opts.news_topic and opts.items_topic.
 *
 * Start-up runs in two steps. sp_api_create_route_topics() creates each
 * route's topic when it is missing, with the route's schema, and refuses a
 * schema that differs from the one an existing topic has (a topic's schema
 * only changes through the topics API, never silently at start). Then
 * sp__api_register_seed() adds the routes to the router, after every other
 * route, refusing a path that a built-in route would match (a literal
 * path under a `{param}` pattern would otherwise be shadowed silently).
 * Every refusal names the route by its label ("routes[2] (line 9)"). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"
#include "api/schema.h"
#include "core/alloc.h"
#include "core/log.h"
#include "store/store.h"

#define SCHEMA_FILE_MAX SP_JSON_DEFAULT_MAX_BYTES /* bytes of a schema_file */
#define LATEST_MAX      1024                      /* records one latest route answers */

/* ---- the routes in effect ------------------------------------------------ */

static void set_label(sp_api_route *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_label(sp_api_route *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->label, sizeof r->label, fmt, ap);
    va_end(ap);
}

/* Stores the routes o declares (or the two defaults) into out, which has
 * room for SP_API_ROUTES_MAX, and returns their count. */
static size_t effective_routes(const sp_api_options *o, sp_api_route *out)
{
    size_t n = 0;
    if (o->routes_given) {
        for (; n < o->nroutes && n < SP_API_ROUTES_MAX; n++)
            out[n] = o->routes[n];
        return n;
    }
    if (o->news_topic && o->news_topic[0]) {
        out[n] = (sp_api_route){SP_HTTP_GET, "/latest-news", o->news_topic, SP_API_ACTION_LATEST,
                                10,          NULL,           NULL,          ""};
        set_label(&out[n++], "the default route (demo.news_topic)");
    }
    if (o->items_topic && o->items_topic[0]) {
        out[n] = (sp_api_route){
            SP_HTTP_POST, "/items", o->items_topic, SP_API_ACTION_PRODUCE, 0, "builtin:item",
            NULL,         ""};
        set_label(&out[n++], "the default route (demo.items_topic)");
    }
    return n;
}

/* Writes "LABEL: METHOD PATH: <message>" into err. Returns rc. */
static int route_fail(const sp_api_route *r, int rc, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int route_fail(const sp_api_route *r, int rc, char *err, size_t errlen, const char *fmt, ...)
{
    int n = snprintf(err, errlen, "%s: %s %s: ", r->label, sp_http_method_name(r->method), r->path);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- the topics ------------------------------------------------------------ */

/* Reads a schema file of at most SCHEMA_FILE_MAX bytes into out. */
static int read_schema_file(const sp_api_route *r, sp_buf *out, char *err, size_t errlen)
{
    int fd = open(r->schema_file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = fd < 0 ? -errno : fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && !S_ISREG(st.st_mode))
        rc = -EINVAL;
    if (rc == 0 && st.st_size > (off_t)SCHEMA_FILE_MAX)
        rc = -EFBIG;
    char chunk[16384];
    ssize_t got = 0;
    while (rc == 0 && (got = read(fd, chunk, sizeof chunk)) != 0) {
        if (got < 0 && errno != EINTR)
            rc = -errno;
        else if (got > 0 && sp_buf_append(out, chunk, (size_t)got) < 0)
            rc = -EFBIG;
    }
    if (fd >= 0)
        close(fd);
    /* -EINVAL either way: a setting that cannot work (serve exits 2) */
    if (rc == -EFBIG)
        return route_fail(r, -EINVAL, err, errlen, "schema_file '%s' is larger than %zu bytes",
                          r->schema_file, (size_t)SCHEMA_FILE_MAX);
    if (rc < 0)
        return route_fail(r, -EINVAL, err, errlen, "cannot read schema_file '%s': %s",
                          r->schema_file, rc == -EINVAL ? "not a regular file" : strerror(-rc));
    return 0;
}

/* Appends the route's schema text to out (nothing when it has none). */
static int route_schema(const sp_api_route *r, sp_buf *out, char *err, size_t errlen)
{
    if (r->schema_file)
        return read_schema_file(r, out, err, errlen);
    if (!r->schema)
        return 0;
    if (strncmp(r->schema, "builtin:", 8) != 0)
        return sp_buf_append_cstr(out, r->schema) < 0 ? -EFBIG : 0;
    if (strcmp(r->schema, "builtin:item") == 0)
        return sp_buf_append_cstr(out, sp_schema_item_json) < 0 ? -EFBIG : 0;
    return route_fail(r, -EINVAL, err, errlen, "unknown schema '%s' (try builtin:item)", r->schema);
}

/* True when two schema texts are the same JSON (whitespace and key order
 * aside). A text that does not parse is never the same. */
static bool same_json(sp_slice a, sp_slice b)
{
    json_t *ja = json_loadb(a.base, a.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *jb = json_loadb(b.base, b.len, JSON_REJECT_DUPLICATES, NULL);
    bool same = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}

/* An existing topic keeps its schema: a route may only repeat it. A topic
 * without one (made outside spate, e.g. with Kafka's tools) takes the
 * route's. */
static int check_existing(sp_hub *hub, const sp_api_route *r, sp_slice schema, char *err,
                          size_t errlen)
{
    sp_buf have;
    sp_buf_init(&have, SP_BUF_UNLIMITED);
    bool has = sp_hub_topic_schema(hub, r->topic, &have);
    int rc = 0;
    char why[400] = "";
    if (!has) {
        rc = sp_hub_topic_attach_schema(hub, r->topic, schema.base, schema.len, why, sizeof why);
        if (rc == 0)
            SP_LOG_INFO("gave an existing topic the schema of a declared route",
                        SP_LF_STR("topic", r->topic) SP_LF_STR("route", r->label));
        else
            rc = route_fail(r, rc, err, errlen, "cannot give topic '%s' the route's schema: %s",
                            r->topic, why[0] ? why : strerror(-rc));
    } else if (!same_json(sp_buf_slice(&have), schema))
        rc = route_fail(r, -EINVAL, err, errlen,
                        "topic '%s' exists with a different schema; drop the route's schema "
                        "to keep the topic's, or recreate the topic",
                        r->topic);
    sp_buf_free(&have);
    return rc;
}

static int ensure_topic(sp_hub *hub, const sp_api_route *r, sp_slice schema, char *err,
                        size_t errlen)
{
    if (!sp_store_topic_name_valid(r->topic))
        return route_fail(r, -EINVAL, err, errlen, "'%s' is not a valid topic name", r->topic);
    if (sp_hub_topic_exists(hub, r->topic))
        return schema.len ? check_existing(hub, r, schema, err, errlen) : 0;
    sp_store_topic_config tc = {.partitions = 1};
    char why[400] = "";
    int rc = sp_hub_topic_create(hub, r->topic, &tc, schema.len ? schema.base : NULL, schema.len,
                                 why, sizeof why);
    if (rc == -EEXIST) /* made meanwhile by another spate on the same backend */
        return schema.len ? check_existing(hub, r, schema, err, errlen) : 0;
    if (rc < 0)
        return route_fail(r, rc, err, errlen, "cannot create topic '%s': %s", r->topic,
                          why[0] ? why : strerror(-rc));
    SP_LOG_INFO("created the topic of a declared route",
                SP_LF_STR("topic", r->topic) SP_LF_STR("route", r->label)
                    SP_LF_BOOL("schema", schema.len > 0));
    return 0;
}

int sp_api_create_route_topics(sp_hub *hub, const sp_api_options *o, char *err, size_t errlen)
{
    sp_api_route routes[SP_API_ROUTES_MAX];
    size_t n = effective_routes(o, routes);
    int rc = 0;
    /* With a schema first: a topic two routes share gets the schema
     * whichever of them is declared first. */
    for (int with_schema = 1; with_schema >= 0 && rc == 0; with_schema--) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            const sp_api_route *r = &routes[i];
            if ((r->schema || r->schema_file) != with_schema)
                continue;
            sp_buf schema;
            sp_buf_init(&schema, SCHEMA_FILE_MAX);
            rc = route_schema(r, &schema, err, errlen);
            if (rc == -EFBIG)
                route_fail(r, rc, err, errlen, "the schema is larger than %zu bytes",
                           (size_t)SCHEMA_FILE_MAX);
            if (rc == 0)
                rc = ensure_topic(hub, r, sp_buf_slice(&schema), err, errlen);
            sp_buf_free(&schema);
        }
    }
    return rc;
}

/* ---- the handlers ---------------------------------------------------------- */

static void latest_values(sp_http_req *req, void *udata)
{
    sp_api_bound *br = udata;
    const sp_hub_rec *recs[LATEST_MAX];
    size_t limit = br->route.limit < LATEST_MAX ? br->route.limit : LATEST_MAX;
    int n = sp_hub_latest(br->api->hub, sp_http_req_loop(req), br->route.topic, limit, recs);
    if (n < 0) {
        sp__api_errorf(req, 404, "Topic '%s' not found", br->route.topic);
        return;
    }
    sp__api_respond_recs(req, recs, (size_t)n, true);
}

static void respond_item(sp_http_req *req, const sp_store_ack *ack, int64_t ts, size_t n)
{
    (void)n;
    sp_buf *b = sp_http_req_scratch(req);
    sp_buf_append(b, "{\"timestamp\":", 13);
    sp_buf_append_i64(b, ts >= 0 ? ts : ack->timestamp);
    sp_buf_append(b, ",\"partition\":", 13);
    sp_buf_append_u64(b, ack->partition);
    sp_buf_append(b, ",\"offset\":", 10);
    sp_buf_append_u64(b, ack->base_offset);
    sp_buf_putc(b, '}');
    sp_http_respond_json(req, 200, sp_buf_slice(b));
}

static void produce_value(sp_http_req *req, void *udata)
{
    sp_api_bound *br = udata;
    sp__api_produce(req, br->api, br->route.topic, true, respond_item);
}

/* ---- registration ---------------------------------------------------------- */

/* True when the router pattern ("/docs/{file}") matches the literal path. */
static bool pattern_matches(const char *pattern, const char *path)
{
    while (*pattern == '/' && *path == '/') {
        size_t pl = strcspn(++pattern, "/"), ql = strcspn(++path, "/");
        bool param = pl >= 3 && pattern[0] == '{' && pattern[pl - 1] == '}';
        if (param ? ql == 0 : pl != ql || strncmp(pattern, path, pl) != 0)
            return false;
        pattern += pl;
        path += ql;
    }
    return *pattern == '\0' && *path == '\0';
}

typedef struct clash {
    const char *path;
    sp_http_method method;
    const char *pattern; /* the first registered route that matches path */
} clash;

static void find_clash(sp_http_method method, const char *pattern, void *udata)
{
    clash *c = udata;
    if (!c->pattern && pattern_matches(pattern, c->path)) {
        c->pattern = pattern;
        c->method = method;
    }
}

/* A declared path must be free of every route registered before the
 * declared ones, whatever their method: a built-in path stays built-in. */
static int check_free(sp_router *r, const sp_api_route *rt)
{
    clash c = {rt->path, SP_HTTP_GET, NULL};
    sp_router_each(r, find_clash, &c);
    if (!c.pattern)
        return 0;
    char err[400];
    route_fail(rt, -EEXIST, err, sizeof err, "the path is taken by spate's own route %s %s",
               sp_http_method_name(c.method), c.pattern);
    SP_LOG_ERROR("a declared route clashes with a built-in route", SP_LF_STR("error", err));
    return -EEXIST;
}

int sp__api_register_seed(sp_router *r, sp_api *api)
{
    sp_api_route routes[SP_API_ROUTES_MAX];
    size_t n = effective_routes(&api->opts, routes);
    for (size_t i = 0; i < n; i++) /* before adding any: declared routes may share a path */
        if (check_free(r, &routes[i]) < 0)
            return -EEXIST;
    if (n > SP_API_ROUTES_MAX - api->nbound)
        return -ENOSPC; /* registered twice on one sp_api */
    for (size_t i = 0; i < n; i++) {
        sp_api_bound *br = &api->bound[api->nbound++];
        *br = (sp_api_bound){api, routes[i]};
        bool latest = br->route.action == SP_API_ACTION_LATEST;
        int rc = sp_router_add_flags(r, br->route.method, br->route.path,
                                     latest ? latest_values : produce_value, br,
                                     latest ? 0 : SP_ROUTE_ORDERED);
        if (rc != 0) {
            char err[400];
            route_fail(&br->route, rc, err, sizeof err, "%s",
                       rc == -EEXIST   ? "declared twice"
                       : rc == -ENOSPC ? "the router is full (too many routes)"
                                       : "not a valid path");
            SP_LOG_ERROR("cannot add a declared route", SP_LF_STR("error", err));
            return rc;
        }
    }
    return 0;
}

void sp_api_options_default(sp_api_options *o)
{
    memset(o, 0, sizeof *o);
    o->ack_timeout_ms = 10000;
    o->max_batch_records = 10000;
    o->max_read_records = 10000;
    o->max_pending_reads = 64;
    o->max_json_depth = 64;
    o->news_topic = "latest-news";
    o->items_topic = "items";
}

int sp_api_register_rest(sp_router *r, sp_api *api)
{
    int rc = sp__api_register_topics(r, api);
    rc = rc ? rc : sp__api_register_records(r, api);
    rc = rc ? rc : sp__api_register_sse(r, api);
    rc = rc ? rc : sp__api_register_ws(r, api);
    rc = rc ? rc : sp__api_register_docs(r, api);
    rc = rc ? rc : sp__api_register_seed(r, api); /* last: see check_free */
    return rc;
}
