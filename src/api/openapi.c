/* openapi.c - GET /openapi.json (OpenAPI 3.1) and GET /docs (Swagger UI).
 *
 * The document is generated from the router (every registered route), a
 * table of what each route means (summary, parameters, bodies, answers),
 * and the topics' JSON Schemas: each topic with a schema gets its own
 * produce path whose request body is that schema. Declared routes (the
 * config file's `routes:`, seed.c) are described from their declaration:
 * a produce route's request body is its topic's schema (the Item component
 * when that is the built-in Item schema). It is rebuilt per request, so
 * topics created at run time appear at once.
 *
 * Swagger UI's assets come from npm's swagger-ui-dist, installed locally by
 * scripts/install-deps.sh into web/node_modules; they are read once at
 * start-up and served from memory, never from a CDN. */
#include <stdio.h>
#include <stdlib.h>

#include "api/api_int.h"
#include "core/alloc.h"

typedef struct route_doc {
    const char *method, *pattern, *tag, *summary;
    const char *params;  /* JSON array members, without brackets */
    const char *body;    /* requestBody JSON or NULL */
    const char *answers; /* extra "responses" members */
} route_doc;

#define P_TOPIC                                                                                    \
    "{\"name\":\"t\",\"in\":\"path\",\"required\":true,\"schema\":{\"type\":\"string\","           \
    "\"pattern\":\"^[A-Za-z0-9._-]{1,249}$\"}}"
#define Q(n, t, d)                                                                                 \
    "{\"name\":\"" n "\",\"in\":\"query\",\"schema\":{\"type\":\"" t "\"},\"description\":\"" d    \
    "\"}"
#define R(code, d)                                                                                 \
    "\"" code "\":{\"description\":\"" d                                                           \
    "\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/"           \
    "Error\"}}}}"
#define R422                                                                                       \
    "\"422\":{\"description\":\"Validation "                                                       \
    "error\",\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/"      \
    "HTTPValidationError\"}}}}"
#define RECORDS_BODY                                                                               \
    "{\"required\":true,\"content\":{\"application/json\":{\"schema\":{}},\"application/"          \
    "x-ndjson\":{\"schema\":{\"type\":\"string\"}}}}"

/* A table of string pieces reads best laid out by hand. */
// clang-format off
static const route_doc docs[] = {
    { "GET", "/", "demo", "Hello World (the seed app's root)", NULL, NULL, NULL },
    { "GET", "/noop", "demo", "Fixed answer, for load tests", NULL, NULL, NULL },
    { "GET", "/healthz", "ops", "Liveness", NULL, NULL, NULL },
    { "GET", "/readyz", "ops", "Readiness (503 while draining)", NULL, NULL, R("503", "Shutting down") },
    { "GET", "/metrics", "ops", "Prometheus metrics", NULL, NULL, NULL },
    { "GET", "/v1/topics", "topics", "List topics", NULL, NULL, NULL },
    { "POST", "/v1/topics", "topics", "Create a topic",
      NULL, "{\"required\":true,\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/TopicCreate\"}}}}",
      R("400", "Bad topic name") "," R("409", "Topic exists") "," R("422", "Bad configuration or schema") },
    { "GET", "/v1/topics/{t}", "topics", "Describe a topic: partitions, offsets, counts, schema",
      P_TOPIC, NULL, R("404", "No such topic") },
    { "DELETE", "/v1/topics/{t}", "topics", "Delete a topic and its data", P_TOPIC, NULL, R("404", "No such topic") },
    { "POST", "/v1/topics/{t}/records", "records",
      "Produce one JSON value, a JSON array (one batch, all-or-nothing) or NDJSON",
      P_TOPIC "," Q("ack", "string", "durable (default: 200 once durable) or none (202 at once)") ","
          Q("key", "string", "record key: picks the partition (Kafka's murmur2)") ","
          Q("partition", "integer", "explicit partition") "," Q("timestamp", "integer", "producer timestamp, ms"),
      RECORDS_BODY,
      "\"202\":{\"description\":\"Accepted (ack=none)\"}," R("404", "No such topic") "," R("413", "Too large") ","
      R("415", "Unsupported Content-Type") "," R422 "," R("503", "Backend queue full; Retry-After") ","
      R("504", "No acknowledgement within api.ack_timeout") "," R("507", "Disk full") },
    { "GET", "/v1/topics/{t}/records", "records", "History by offset or time, with a next cursor",
      P_TOPIC "," Q("from", "string", "offset, earliest or latest") "," Q("from_time", "integer", "ms since the epoch") ","
          Q("partition", "integer", "partition (default 0)") "," Q("limit", "integer", "at most this many"),
      NULL, R("404", "No such topic") },
    { "GET", "/v1/topics/{t}/latest", "records", "Newest records first, from memory",
      P_TOPIC "," Q("limit", "integer", "default 10"), NULL, R("404", "No such topic") },
    { "GET", "/v1/topics/{t}/stream", "streams",
      "Server-Sent Events: records as they become durable; resume with Last-Event-ID or from",
      P_TOPIC "," Q("from", "string", "latest (default), earliest, an offset, time:<ms>, or an event id/cursor to resume after") ","
          Q("from_time", "integer", "ms since the epoch") "," Q("partition", "integer", "one partition (default all)") ","
          Q("policy", "string", "disconnect (default) or skip"),
      NULL, R("404", "No such topic") "," R("422", "Bad from, partition, policy or Last-Event-ID") },
    { "GET", "/debug/sleep", "ops", "Block the loop for ?ms= (debug.routes only)", NULL, NULL, NULL },
    { "GET", "/openapi.json", "ops", "This document", NULL, NULL, NULL },
    { "GET", "/docs", "ops", "Swagger UI", NULL, NULL, NULL },
};
// clang-format on

static const route_doc *doc_for(const char *method, const char *pattern)
{
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        if (strcmp(docs[i].method, method) == 0 && strcmp(docs[i].pattern, pattern) == 0)
            return &docs[i];
    return NULL;
}

typedef struct gen {
    sp_buf *b;
    const char *last_path;
    bool first_path;
    bool in_path;
} gen;

static void lower_method(const char *method, char out[16])
{
    size_t i = 0;
    for (; method[i] && i < 15; i++)
        out[i] = (char)(method[i] | 0x20);
    out[i] = '\0';
}

static const sp_api_bound *declared(const sp_api *api, const char *method, const char *pattern)
{
    for (size_t i = 0; i < api->nbound; i++)
        if (strcmp(sp_http_method_name(api->bound[i].route.method), method) == 0 &&
            strcmp(api->bound[i].route.path, pattern) == 0)
            return &api->bound[i];
    return NULL;
}

/* The topic's schema as a JSON Schema value: a reference to the Item
 * component when it is that schema, {} when the topic has none. */
static void put_topic_schema(sp_buf *b, sp_api *api, const char *topic)
{
    sp_buf schema;
    sp_buf_init(&schema, 1 << 20);
    if (!api->hub || !sp_hub_topic_schema(api->hub, topic, &schema))
        sp_buf_append_cstr(b, "{}");
    else if (api->item_schema && schema.len == strlen(api->item_schema) &&
             memcmp(schema.base, api->item_schema, schema.len) == 0)
        sp_buf_append_cstr(b, "{\"$ref\":\"#/components/schemas/Item\"}");
    else
        sp_buf_append(b, schema.base, schema.len);
    sp_buf_free(&schema);
}

#define POSITION_SCHEMA                                                                            \
    "{\"type\":\"object\",\"required\":[\"timestamp\",\"partition\",\"offset\"],"                  \
    "\"properties\":{\"timestamp\":{\"type\":\"integer\"},\"partition\":{\"type\":\"integer\"},"   \
    "\"offset\":{\"type\":\"integer\"}}}"

// clang-format off
static const char produce_head[] =
    ",\"parameters\":[" Q("ack", "string", "durable (default) or none") "],"
    "\"requestBody\":{\"required\":true,\"content\":{\"application/json\":{\"schema\":";
static const char produce_tail[] =
    "}}},\"responses\":{\"200\":{\"description\":\"Durable\",\"content\":{"
    "\"application/json\":{\"schema\":" POSITION_SCHEMA "}}},"
    "\"202\":{\"description\":\"Accepted (ack=none)\"}," R("413", "Too large") ","
    R("415", "Unsupported Content-Type") "," R422 "," R("503", "Backend queue full; Retry-After") ","
    R("504", "No acknowledgement within api.ack_timeout") "}}";
// clang-format on

/* A declared route's operation, from its declaration and its topic. */
static void put_declared(sp_buf *b, sp_api *api, const sp_api_route *r)
{
    char lower[16];
    lower_method(sp_http_method_name(r->method), lower);
    sp_buf_printf(b, "\"%s\":{\"tags\":[\"routes\"],\"summary\":", lower);
    char sum[400];
    if (r->action == SP_API_ACTION_LATEST)
        snprintf(sum, sizeof sum, "The %zu newest records of topic %s, newest first (values only)",
                 r->limit, r->topic);
    else
        snprintf(sum, sizeof sum, "Validate one JSON value and append it to topic %s", r->topic);
    sp_json_cstr(b, sum);
    sp_buf_printf(b, ",\"operationId\":\"%s %s\"", sp_http_method_name(r->method), r->path);
    if (r->action == SP_API_ACTION_LATEST) {
        sp_buf_append_cstr(b, ",\"responses\":{\"200\":{\"description\":\"OK\",\"content\":{"
                              "\"application/json\":{\"schema\":{\"type\":\"array\",\"items\":");
        put_topic_schema(b, api, r->topic);
        sp_buf_append_cstr(b, "}}}}," R("404", "No such topic") "}}");
        return;
    }
    sp_buf_append_cstr(b, produce_head);
    put_topic_schema(b, api, r->topic);
    sp_buf_append_cstr(b, produce_tail);
}

static void put_operation(sp_buf *b, sp_api *api, const char *method, const char *pattern)
{
    const sp_api_bound *br = declared(api, method, pattern);
    if (br) {
        put_declared(b, api, &br->route);
        return;
    }
    const route_doc *d = doc_for(method, pattern);
    char lower[16];
    lower_method(method, lower);
    sp_buf_printf(b, "\"%s\":{\"tags\":[\"%s\"],\"summary\":", lower, d ? d->tag : "other");
    sp_json_cstr(b, d ? d->summary : pattern);
    sp_buf_printf(b, ",\"operationId\":\"%s %s\"", method, pattern);
    if (d && d->params)
        sp_buf_printf(b, ",\"parameters\":[%s]", d->params);
    if (d && d->body)
        sp_buf_printf(b, ",\"requestBody\":%s", d->body);
    sp_buf_printf(b, ",\"responses\":{\"200\":{\"description\":\"OK\"}%s%s}}",
                  d && d->answers ? "," : "", d && d->answers ? d->answers : "");
}

/* Routes arrive in registration order; operations of one path must be
 * grouped, so each path is emitted once with all of its methods. */
typedef struct path_pass {
    sp_api *api;
    sp_buf *b;
    const char *pattern;
    bool first;
} path_pass;

static void put_if_same_path(sp_http_method m, const char *pattern, void *udata)
{
    path_pass *pp = udata;
    if (strcmp(pattern, pp->pattern) != 0)
        return;
    if (!pp->first)
        sp_buf_putc(pp->b, ',');
    pp->first = false;
    put_operation(pp->b, pp->api, sp_http_method_name(m), pattern);
}

typedef struct paths_pass {
    sp_api *api;
    sp_router *router;
    sp_buf *b;
    char **seen;
    size_t nseen;
} paths_pass;

static void put_path(sp_http_method m, const char *pattern, void *udata)
{
    (void)m;
    paths_pass *pp = udata;
    for (size_t i = 0; i < pp->nseen; i++)
        if (strcmp(pp->seen[i], pattern) == 0)
            return;
    pp->seen = sp_xrealloc(pp->seen, (pp->nseen + 1) * sizeof *pp->seen);
    pp->seen[pp->nseen++] = (char *)pattern;
    if (pp->nseen > 1)
        sp_buf_putc(pp->b, ',');
    sp_json_cstr(pp->b, pattern);
    sp_buf_append_cstr(pp->b, ":{");
    path_pass one = {pp->api, pp->b, pattern, true};
    sp_router_each(pp->router, put_if_same_path, &one);
    sp_buf_putc(pp->b, '}');
}

/* One produce path per topic that carries a schema. */
static void put_topic_paths(sp_api *api, sp_buf *b)
{
    char **names;
    size_t n;
    sp_backend_topic_list(sp_hub_backend(api->hub), &names, &n);
    for (size_t i = 0; i < n; i++) {
        sp_buf schema;
        sp_buf_init(&schema, 1 << 20);
        if (sp_hub_topic_schema(api->hub, names[i], &schema)) {
            sp_buf_printf(b,
                          ",\"/v1/topics/%s/records\":{\"post\":{\"tags\":[\"topic %s\"],"
                          "\"summary\":\"Produce to %s (validated against its schema)\","
                          "\"operationId\":\"produce %s\",\"requestBody\":{\"required\":true,"
                          "\"content\":{\"application/json\":{\"schema\":",
                          names[i], names[i], names[i], names[i]);
            sp_buf_append(b, schema.base, schema.len);
            sp_buf_append_cstr(b, "}}},\"responses\":{\"200\":{\"description\":\"Durable\"}," R422
                                  "}}}");
        }
        sp_buf_free(&schema);
    }
    sp_store_topic_list_free(names, n);
}

static const char components[] =
    "\"components\":{\"schemas\":{"
    "\"Error\":{\"type\":\"object\",\"properties\":{\"detail\":{\"type\":\"string\"}},\"required\":"
    "[\"detail\"]},"
    "\"ValidationError\":{\"type\":\"object\",\"properties\":{\"type\":{\"type\":\"string\"},"
    "\"loc\":{\"type\":\"array\",\"items\":{\"type\":[\"string\",\"integer\"]}},\"msg\":{\"type\":"
    "\"string\"},"
    "\"input\":{},\"ctx\":{\"type\":\"object\"}},\"required\":[\"type\",\"loc\",\"msg\"]},"
    "\"HTTPValidationError\":{\"type\":\"object\",\"properties\":{\"detail\":{\"type\":\"array\","
    "\"items\":{\"$ref\":\"#/components/schemas/ValidationError\"}}}},"
    "\"TopicCreate\":{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{"
    "\"name\":{\"type\":\"string\"},\"partitions\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":"
    "1024},"
    "\"replication_factor\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":32767,"
    "\"description\":\"Kafka only; 0: the broker default\"},"
    "\"segment_bytes\":{\"type\":\"integer\"},\"retention_bytes\":{\"type\":\"integer\"},"
    "\"retention_ms\":{\"type\":\"integer\"},\"schema\":{\"type\":\"object\"}}},"
    "\"Item\":";

static void openapi(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    sp_buf b;
    sp_buf_init(&b, SP_BUF_UNLIMITED);
    sp_buf_printf(&b,
                  "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"spate\",\"version\":\"%s\","
                  "\"description\":\"Real-time event streaming: durable topics over REST, "
                  "WebSocket and Server-Sent Events.\"},\"paths\":{",
                  SPATE_VERSION);
    paths_pass pp = {api, api->router, &b, NULL, 0};
    sp_router_each(api->router, put_path, &pp);
    free(pp.seen);
    if (api->hub)
        put_topic_paths(api, &b);
    sp_buf_append_cstr(&b, "},");
    sp_buf_append_cstr(&b, components);
    sp_buf_append_cstr(&b, api->item_schema ? api->item_schema : "{}");
    sp_buf_append_cstr(&b, "}}}");
    sp_http_respond_json(req, 200, sp_buf_slice(&b));
    sp_buf_free(&b);
}

/* ---- Swagger UI ---------------------------------------------------------- */

typedef struct asset {
    const char *name, *type;
    char *data;
    size_t len;
} asset;

static asset assets[] = {
    {"swagger-ui.css", "text/css; charset=utf-8", NULL, 0},
    {"swagger-ui-bundle.js", "application/javascript; charset=utf-8", NULL, 0},
    {"favicon-32x32.png", "image/png", NULL, 0},
};

static const char docs_html[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>spate API</title>"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\"><link rel=\"icon\" "
    "href=\"/docs/favicon-32x32.png\">"
    "</head><body><div id=\"swagger-ui\"></div><script src=\"/docs/swagger-ui-bundle.js\"></script>"
    "<script>window.ui=SwaggerUIBundle({url:'/"
    "openapi.json',dom_id:'#swagger-ui',deepLinking:true});</script>"
    "</body></html>";

static void load_assets(void)
{
    const char *dir = getenv("SPATE_WEB_DIR");
    char path[4096];
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        if (assets[i].data)
            continue;
        snprintf(path, sizeof path, "%s/swagger-ui-dist/%s", dir ? dir : SPATE_WEB_MODULES,
                 assets[i].name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        if (n > 0 && n < (16 << 20)) {
            assets[i].data = sp_xmalloc((size_t)n);
            assets[i].len = fread(assets[i].data, 1, (size_t)n, f);
        }
        fclose(f);
    }
}

static void docs_page(sp_http_req *req, void *udata)
{
    (void)udata;
    if (!assets[1].data) {
        sp_http_respond_error(req, 503,
                              "Swagger UI assets are not installed: run scripts/install-deps.sh "
                              "(npm ci in web/) or set SPATE_WEB_DIR");
        return;
    }
    static const sp_http_header ct = {{"Content-Type", 12}, {"text/html; charset=utf-8", 24}};
    sp_http_respond(req, 200, &ct, 1, sp_slice_make(docs_html, sizeof docs_html - 1));
}

static void docs_asset(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_slice name = sp_http_req_param(req, "file");
    for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
        if (assets[i].data && sp_slice_eq_cstr(name, assets[i].name)) {
            sp_http_header h[2] = {
                {SP_SLICE_LIT("Content-Type"), sp_slice_cstr(assets[i].type)},
                {SP_SLICE_LIT("Cache-Control"), SP_SLICE_LIT("public, max-age=86400")}};
            sp_http_respond(req, 200, h, 2, sp_slice_make(assets[i].data, assets[i].len));
            return;
        }
    }
    sp_http_respond_error(req, 404, "Not Found");
}

int sp__api_register_docs(sp_router *r, sp_api *api)
{
    load_assets();
    api->router = r;
    int rc = sp_router_add(r, SP_HTTP_GET, "/openapi.json", openapi, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/docs", docs_page, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/docs/{file}", docs_asset, api);
    return rc;
}
