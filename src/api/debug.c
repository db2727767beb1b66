/* debug.c - endpoints for testing the server's own monitors, off by default
 * (debug.routes). GET /debug/sleep?ms=N blocks the handling loop for N ms,
 * which is exactly what the slow-handler warning and the loop-lag gauge
 * exist to catch. */
#include <time.h>

#include "api/api_int.h"

static void sleep_handler(sp_http_req *req, void *udata)
{
    uint64_t ms;
    if (!sp__api_query_u64(req, "ms", 100, 0, 10000, &ms))
        return;
    (void)udata;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    sp_buf *b = sp_http_req_scratch(req);
    sp_buf_printf(b, "{\"slept_ms\":%llu}", (unsigned long long)ms);
    sp_http_respond_json(req, 200, sp_buf_slice(b));
}

int sp_api_register_debug(sp_router *r, sp_api *api)
{
    return sp_router_add(r, SP_HTTP_GET, "/debug/sleep", sleep_handler, api);
}
