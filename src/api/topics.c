/* topics.c - GET/POST /v1/topics, GET/DELETE /v1/topics/{t}.
 *
 * Creating and deleting a topic touch the disk (create: staging directory,
 * fsyncs, rename) and so block this loop for a few milliseconds; they are
 * rare administrative calls and the slow-handler monitor reports them. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/api_int.h"
#include "core/alloc.h"

static void list_topics(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    char **names;
    size_t n;
    sp_backend_topic_list(sp_hub_backend(api->hub), &names, &n);
    sp_buf *b = sp_http_req_scratch(req);
    sp_buf_append_cstr(b, "{\"topics\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sp_buf_putc(b, ',');
        sp_json_cstr(b, names[i]);
    }
    sp_buf_append_cstr(b, "]}");
    sp_store_topic_list_free(names, n);
    sp_http_respond_json(req, 200, sp_buf_slice(b));
}

static void put_partition(sp_buf *b, const sp_store_partition_info *p)
{
    sp_buf_printf(b,
                  "{\"partition\":%u,\"start_offset\":%llu,\"end_offset\":%llu,\"records\":%llu,"
                  "\"bytes\":%llu,\"segments\":%u,\"state\":\"%s\"}",
                  p->partition, (unsigned long long)p->start_offset,
                  (unsigned long long)p->end_offset, (unsigned long long)p->records,
                  (unsigned long long)p->bytes, p->segments,
                  p->state == 0          ? "ok"
                  : p->state == -EUCLEAN ? "fenced"
                                         : "recovering");
}

static void respond_topic(sp_http_req *req, sp_api *api, const char *name, int status)
{
    sp_store_topic_info info;
    if (sp_backend_topic_describe(sp_hub_backend(api->hub), name, &info) != 0) {
        sp__api_errorf(req, 404, "Topic '%s' not found", name);
        return;
    }
    sp_buf *b = sp_http_req_scratch(req);
    uint64_t records = 0, bytes = 0;
    for (uint32_t i = 0; i < info.partition_count; i++) {
        records += info.partitions[i].records;
        bytes += info.partitions[i].bytes;
    }
    sp_buf_append_cstr(b, "{\"name\":");
    sp_json_cstr(b, name);
    sp_buf_printf(b,
                  ",\"partitions\":%u,\"segment_bytes\":%llu,\"retention_bytes\":%llu,"
                  "\"retention_ms\":%lld,\"created\":%lld,\"records\":%llu,\"bytes\":%llu,"
                  "\"backend\":\"%s\",\"schema\":",
                  info.partition_count, (unsigned long long)info.config.segment_bytes,
                  (unsigned long long)info.config.retention_bytes,
                  (long long)info.config.retention_ms, (long long)info.created_ms,
                  (unsigned long long)records, (unsigned long long)bytes,
                  sp_backend_name(sp_hub_backend(api->hub)));
    if (!sp_hub_topic_schema(api->hub, name, b))
        sp_buf_append_cstr(b, "null");
    sp_buf_printf(b, ",\"subscribers\":%u", sp_hub_topic_subscribers(api->hub, name));
    sp_buf_append_cstr(b, ",\"partition_info\":[");
    for (uint32_t i = 0; i < info.partition_count; i++) {
        if (i)
            sp_buf_putc(b, ',');
        put_partition(b, &info.partitions[i]);
    }
    sp_buf_append_cstr(b, "]}");
    sp_store_topic_info_free(&info);
    sp_http_respond_json(req, status, sp_buf_slice(b));
}

static void describe_topic(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    char name[SP_API_TOPIC_MAX + 1];
    if (sp__api_topic_param(req, api, name, false))
        respond_topic(req, api, name, 200);
}

/* Topic creation and deletion wait for the backend. The embedded store
 * takes a few fsyncs: done inline, so a pipelined request after them on
 * the same connection sees their effect (RFC 9112 wants unsafe requests
 * processed in order). Kafka's Admin API may take up to
 * kafka.spate.admin_timeout: that runs on libuv's thread pool and the
 * answer is sent from the request's loop, so a slow broker never stalls
 * the loop's other connections (a pipelined request behind it may then run
 * first: holding it back needs a per-connection barrier in src/http). */
typedef struct admin_op {
    uv_work_t work;
    sp_http_req *req;
    sp_api *api;
    bool create;
    sp_store_topic_config cfg;
    char *schema; /* NULL: none */
    int rc;
    char err[512];
    char name[SP_API_TOPIC_MAX + 1];
} admin_op;

static void admin_work(uv_work_t *w)
{
    admin_op *op = w->data;
    op->err[0] = '\0';
    op->rc = op->create
                 ? sp_hub_topic_create(op->api->hub, op->name, &op->cfg, op->schema,
                                       op->schema ? strlen(op->schema) : 0, op->err, sizeof op->err)
                 : sp_hub_topic_delete(op->api->hub, op->name);
}

/* The status and detail of a backend failure common to both operations. */
static void admin_failed(sp_http_req *req, const admin_op *op)
{
    const char *what = op->create ? "Cannot create" : "Cannot delete";
    if (op->rc == -ETIMEDOUT)
        sp__api_errorf(req, 504,
                       "%s topic '%s': the backend did not confirm in time; it may or may "
                       "not have happened",
                       what, op->name);
    else if (op->rc == -ENOTCONN || op->rc == -EAGAIN)
        sp__api_errorf(req, 503, "%s topic '%s': the backend is unavailable (%s)", what, op->name,
                       strerror(-op->rc));
    else if (op->rc == -ENOSPC)
        sp__api_errorf(req, 507, "%s topic '%s': %s", what, op->name, strerror(-op->rc));
    else
        sp__api_errorf(req, 500, "%s topic '%s': %s", what, op->name,
                       op->err[0] ? op->err : strerror(-op->rc));
}

static void admin_done(uv_work_t *w, int status)
{
    admin_op *op = w->data;
    (void)status; /* never cancelled: the work is queued and run */
    sp_http_req *req = op->req;
    if (op->rc == 0 && op->create)
        respond_topic(req, op->api, op->name, 201);
    else if (op->rc == 0)
        sp_http_respond(req, 204, NULL, 0, SP_SLICE_NULL);
    else if (op->rc == -EEXIST && op->create)
        sp__api_errorf(req, 409, "Topic '%s' already exists", op->name);
    else if (op->rc == -EINVAL && op->create)
        sp__api_errorf(req, 422, "Invalid topic: %s", op->err[0] ? op->err : "bad configuration");
    else if (op->rc == -ENOENT && !op->create)
        sp__api_errorf(req, 404, "Topic '%s' not found", op->name);
    else
        admin_failed(req, op);
    free(op->schema);
    free(op);
}

static void admin_start(sp_http_req *req, admin_op *op)
{
    op->req = req;
    op->work.data = op;
    if (sp_backend_store(sp_hub_backend(op->api->hub))) { /* embedded: inline */
        admin_work(&op->work);
        admin_done(&op->work, 0);
        return;
    }
    int rc = uv_queue_work(&sp_http_req_loop(req)->uv, &op->work, admin_work, admin_done);
    if (rc != 0) { /* only when the loop is closing */
        sp__api_errorf(req, 503, "Cannot queue the topic operation: %s", uv_strerror(rc));
        free(op->schema);
        free(op);
    }
}

static void delete_topic(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    admin_op *op = sp_xcalloc(1, sizeof *op);
    op->api = api;
    if (!sp__api_topic_param(req, api, op->name, false)) {
        free(op);
        return;
    }
    admin_start(req, op);
}

/* Reads an optional non-negative integer member; false on a wrong type. */
static bool opt_uint(json_t *body, const char *key, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool parse_create(sp_http_req *req, json_t *body, char *name, sp_store_topic_config *cfg)
{
    json_t *n = json_object_get(body, "name");
    if (!json_is_string(n)) {
        sp_http_respond_error(req, 422, "Body must be an object with a string 'name'");
        return false;
    }
    const char *s = json_string_value(n);
    if (!sp_store_topic_name_valid(s)) {
        sp_http_respond_error(
            req, 400, "Topic names are 1 to 249 characters of [A-Za-z0-9._-], not '.' or '..'");
        return false;
    }
    strcpy(name, s);
    uint64_t parts = 1, seg = 0, rbytes = 0, rms = 0, repl = 0;
    if (!opt_uint(body, "partitions", 1024, &parts) || parts == 0 ||
        !opt_uint(body, "replication_factor", 32767, &repl) ||
        !opt_uint(body, "segment_bytes", 1ull << 40, &seg) ||
        !opt_uint(body, "retention_bytes", 1ull << 50, &rbytes) ||
        !opt_uint(body, "retention_ms", 1ull << 50, &rms)) {
        sp_http_respond_error(req, 422,
                              "partitions (1-1024), replication_factor (0-32767), segment_bytes, "
                              "retention_bytes and retention_ms must be non-negative integers");
        return false;
    }
    json_t *schema = json_object_get(body, "schema");
    if (schema && !json_is_object(schema) && !json_is_null(schema) && !json_is_boolean(schema)) {
        sp_http_respond_error(req, 422, "'schema' must be a JSON Schema object");
        return false;
    }
    *cfg = (sp_store_topic_config){.partitions = (uint32_t)parts,
                                   .segment_bytes = seg,
                                   .retention_bytes = rbytes,
                                   .retention_ms = (int64_t)rms,
                                   .replication = (uint32_t)repl};
    return true;
}

static void create_topic(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    sp_slice body = sp_http_req_body(req);
    json_error_t jerr;
    json_t *doc = json_loadb(body.base ? body.base : "", body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc || !json_is_object(doc)) {
        sp__api_errorf(req, 400, "Body must be a JSON object: %s",
                       doc ? "got another type" : jerr.text);
        json_decref(doc);
        return;
    }
    char name[SP_API_TOPIC_MAX + 1];
    sp_store_topic_config cfg;
    if (parse_create(req, doc, name, &cfg)) {
        json_t *schema = json_object_get(doc, "schema");
        admin_op *op = sp_xcalloc(1, sizeof *op);
        op->api = api;
        op->create = true;
        op->cfg = cfg;
        op->schema = schema && !json_is_null(schema) ? json_dumps(schema, JSON_COMPACT) : NULL;
        memcpy(op->name, name, sizeof op->name);
        admin_start(req, op);
    }
    json_decref(doc);
}

int sp__api_register_topics(sp_router *r, sp_api *api)
{
    int rc = sp_router_add(r, SP_HTTP_GET, "/v1/topics", list_topics, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_POST, "/v1/topics", create_topic, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}", describe_topic, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_DELETE, "/v1/topics/{t}", delete_topic, api);
    return rc;
}
