/* seed.c - declared routes: small fixed endpoints bound to a topic, such as
 * the reference articles' `GET /latest-news` and `POST /items`.
 *
 * A declaration names a method, a path, a topic and an action:
 *   latest   answer a JSON array of the newest `limit` record values
 *            (the articles themselves, as the seed app returns them)
 *   produce  validate the body against the topic's schema and append it,
 *            answering {"timestamp","partition","offset"} once durable
 *            (?ack=none: 202 at once)
 * The built-in table declares the seed app's two routes; the topics they
 * use are created at start-up (see cmd_serve.c). */
#include <errno.h>

#include "api/api_int.h"

typedef enum { ACTION_LATEST, ACTION_PRODUCE } action;

typedef struct route_decl {
    sp_http_method method;
    const char *path;
    const char **topic; /* points into api options, resolved at registration */
    action act;
    size_t limit;
} route_decl;

typedef sp_api_bound bound_route;

static void latest_values(sp_http_req *req, void *udata)
{
    bound_route *br = udata;
    const sp_hub_rec *recs[1024];
    int n = sp_hub_latest(br->api->hub, sp_http_req_loop(req), br->topic, br->limit, recs);
    if (n < 0) {
        sp__api_errorf(req, 404, "Topic '%s' not found", br->topic);
        return;
    }
    sp__api_respond_recs(req, recs, (size_t)n, true);
}

static void respond_item(sp_http_req *req, const sp_store_ack *ack, int64_t ts, size_t n)
{
    (void)n;
    sp_buf *b = sp_http_req_scratch(req);
    sp_buf_printf(b, "{\"timestamp\":%lld,\"partition\":%u,\"offset\":%llu}",
                  (long long)(ts >= 0 ? ts : ack->timestamp), ack->partition,
                  (unsigned long long)ack->base_offset);
    sp_http_respond_json(req, 200, sp_buf_slice(b));
}

static void produce_value(sp_http_req *req, void *udata)
{
    bound_route *br = udata;
    sp__api_produce(req, br->api, br->topic, true, respond_item);
}

int sp__api_register_seed(sp_router *r, sp_api *api)
{
    const route_decl decls[] = {
        {SP_HTTP_GET, "/latest-news", &api->opts.news_topic, ACTION_LATEST, 10},
        {SP_HTTP_POST, "/items", &api->opts.items_topic, ACTION_PRODUCE, 0},
    };
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++) {
        if (*decls[i].topic == NULL || api->nbound == sizeof api->bound / sizeof api->bound[0])
            continue;
        bound_route *br = &api->bound[api->nbound++];
        *br = (bound_route){api, *decls[i].topic, decls[i].limit};
        int rc = sp_router_add(r, decls[i].method, decls[i].path,
                               decls[i].act == ACTION_LATEST ? latest_values : produce_value, br);
        if (rc)
            return rc;
    }
    return 0;
}

void sp_api_options_default(sp_api_options *o)
{
    o->ack_timeout_ms = 10000;
    o->max_batch_records = 10000;
    o->max_read_records = 10000;
    o->max_json_depth = 64;
    o->news_topic = "latest-news";
    o->items_topic = "items";
}

int sp_api_register_rest(sp_router *r, sp_api *api)
{
    int rc = sp__api_register_topics(r, api);
    rc = rc ? rc : sp__api_register_records(r, api);
    rc = rc ? rc : sp__api_register_seed(r, api);
    rc = rc ? rc : sp__api_register_sse(r, api);
    rc = rc ? rc : sp__api_register_ws(r, api);
    rc = rc ? rc : sp__api_register_docs(r, api);
    return rc;
}
