/* builtin.c - the endpoints every spate serves: the seed app's root, health,
 * readiness and Prometheus metrics (HTTP counters plus process figures read
 * from /proc/self). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api.h"
#include "core/json.h"
#include "core/time.h"
#include "hub/hub.h"

static void handle_root(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_http_respond_json(req, 200, SP_SLICE_LIT("{\"message\":\"Hello World\"}"));
}

static void handle_noop(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_http_respond_json(req, 200, SP_SLICE_LIT("{\"message\":\"ok\"}"));
}

static void handle_healthz(sp_http_req *req, void *udata)
{
    (void)udata;
    sp_http_respond_json(req, 200, SP_SLICE_LIT("{\"status\":\"ok\"}"));
}

static void handle_readyz(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    if (api->srv && sp_http_server_is_draining(api->srv)) {
        sp_http_respond_json(
            req, 503, SP_SLICE_LIT("{\"status\":\"draining\",\"detail\":\"shutting down\"}"));
        return;
    }
    sp_backend *be = api->hub ? sp_hub_backend(api->hub) : NULL;
    char why[256] = "";
    if (be && sp_backend_ready(be, why, sizeof why) != 0) {
        sp_buf *b = sp_http_req_scratch(req);
        sp_buf_append_cstr(b, "{\"status\":\"unavailable\",\"backend\":");
        sp_json_cstr(b, sp_backend_name(be));
        sp_buf_append_cstr(b, ",\"detail\":");
        sp_json_cstr(b, why[0] ? why : "backend not ready");
        sp_buf_append_cstr(b, "}");
        sp_http_respond_json(req, 503, sp_buf_slice(b));
        return;
    }
    sp_http_respond_json(req, 200, SP_SLICE_LIT("{\"status\":\"ready\"}"));
}

/* Process figures from /proc/self/stat (fields 14-15 CPU ticks, 24 RSS pages). */
static void put_process(sp_buf *out, const sp_api *api)
{
    FILE *f = fopen("/proc/self/stat", "r");
    unsigned long utime = 0, stime = 0;
    long rss = 0;
    if (f) {
        char line[1024];
        if (fgets(line, sizeof line, f)) {
            char *p = strrchr(line, ')');
            if (p && sscanf(p + 2,
                            "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                            "%*d %*d %*u %*u %ld",
                            &utime, &stime, &rss) != 3)
                utime = stime = 0;
        }
        fclose(f);
    }
    double tick = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    sp_buf_printf(out,
                  "# HELP process_cpu_seconds_total User and system CPU time.\n"
                  "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                  "# HELP process_resident_memory_bytes Resident set size.\n"
                  "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
                  "# HELP process_max_fds Open file limit.\n"
                  "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
                  "# HELP process_start_time_seconds Start time since the epoch.\n"
                  "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
                  (double)(utime + stime) / tick, rss * page, (unsigned long long)rl.rlim_cur,
                  (double)api->start_ms / 1000.0);
}

static void handle_metrics(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    sp_buf out;
    sp_buf_init(&out, SP_BUF_UNLIMITED);
    sp_buf_reserve(&out, 16384);
    if (api->srv)
        sp_http_server_metrics(api->srv, &out);
    if (api->hub) {
        sp_hub_metrics(api->hub, &out);
        sp_backend_metrics(sp_hub_backend(api->hub), &out);
    }
    put_process(&out, api);
    static const sp_http_header ct = {{"Content-Type", 12},
                                      {"text/plain; version=0.0.4; charset=utf-8", 40}};
    sp_http_respond(req, 200, &ct, 1, sp_buf_slice(&out));
    sp_buf_free(&out);
}

int sp_api_register_builtin(sp_router *r, sp_api *api)
{
    int rc = 0;
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/", handle_root, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/noop", handle_noop, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/healthz", handle_healthz, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/readyz", handle_readyz, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/metrics", handle_metrics, api);
    return rc;
}
