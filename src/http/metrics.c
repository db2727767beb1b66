/* metrics.c - HTTP counters per worker, summed into Prometheus text.
 *
 * Each worker owns its sp__http_stats and is its only writer (relaxed
 * atomic stores, plain `mov` on x86), so counting costs no lock and no
 * shared cache line. A scrape sums every worker's counters while they run;
 * each value is read atomically, the set of values is not a snapshot,
 * which Prometheus counters tolerate. */
#include "http/http_int.h"

static const int status_codes[SP_HTTP_STATUS_SLOTS - 1] = {
    100, 101, 200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408,
    409, 410, 413, 414, 415, 416, 417, 422, 426, 429, 431, 500, 503, 504, 505,
};

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t lat_bounds_us[SP_HTTP_LAT_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,
};

static unsigned status_slot(int status)
{
    for (unsigned i = 0; i < SP_HTTP_STATUS_SLOTS - 1; i++)
        if (status_codes[i] == status)
            return i;
    return SP_HTTP_STATUS_SLOTS - 1; /* "other" */
}

void sp__http_stats_request(sp__http_stats *st, unsigned route, sp_http_method m, int status,
                            uint64_t dur_ns)
{
    if (route >= SP_HTTP_MAX_ROUTES)
        route = 0;
    SP_STAT_ADD(st->requests[route][m][status_slot(status)], 1);
    uint64_t us = dur_ns / 1000;
    unsigned b = 0;
    while (b < SP_HTTP_LAT_BUCKETS && us > lat_bounds_us[b])
        b++;
    if (b < SP_HTTP_LAT_BUCKETS)
        SP_STAT_ADD(st->lat_bucket[route][b], 1);
    SP_STAT_ADD(st->lat_sum_ns[route], dur_ns);
    SP_STAT_ADD(st->lat_count[route], 1);
}

#define SUM(field)                                                                                 \
    ({                                                                                             \
        uint64_t s_ = 0;                                                                           \
        for (unsigned w_ = 0; w_ < srv->nworkers; w_++)                                            \
            s_ += SP_STAT_GET(srv->workers[w_].stats.field);                                       \
        s_;                                                                                        \
    })

static void put_counter(sp_buf *out, const char *name, const char *help, const char *type,
                        uint64_t v)
{
    sp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s ", name, help, name, type, name);
    sp_buf_append_u64(out, v);
    sp_buf_putc(out, '\n');
}

static void put_requests(sp_http_server *srv, sp_buf *out)
{
    sp_buf_append_cstr(out, "# HELP spate_http_requests_total HTTP responses sent, by route, "
                            "method and status.\n# TYPE spate_http_requests_total counter\n");
    for (unsigned r = 0; r <= srv->router->n; r++)
        for (unsigned m = 0; m < SP_HTTP_METHOD_COUNT; m++)
            for (unsigned s = 0; s < SP_HTTP_STATUS_SLOTS; s++) {
                uint64_t v = SUM(requests[r][m][s]);
                if (!v)
                    continue;
                sp_buf_printf(out, "spate_http_requests_total{route=\"%s\",method=\"%s\",status=\"",
                              sp__router_label(srv->router, r),
                              sp__http_method_str((sp_http_method)m));
                if (s < SP_HTTP_STATUS_SLOTS - 1)
                    sp_buf_append_u64(out, (uint64_t)status_codes[s]);
                else
                    sp_buf_append_cstr(out, "other");
                sp_buf_append(out, "\"} ", 3);
                sp_buf_append_u64(out, v);
                sp_buf_putc(out, '\n');
            }
}

static void put_latency(sp_http_server *srv, sp_buf *out)
{
    sp_buf_append_cstr(out, "# HELP spate_http_request_duration_seconds Time from the end of the "
                            "request to its response, by route.\n"
                            "# TYPE spate_http_request_duration_seconds histogram\n");
    for (unsigned r = 0; r <= srv->router->n; r++) {
        uint64_t count = SUM(lat_count[r]);
        if (!count)
            continue;
        const char *label = sp__router_label(srv->router, r);
        uint64_t cum = 0;
        for (unsigned b = 0; b < SP_HTTP_LAT_BUCKETS; b++) {
            cum += SUM(lat_bucket[r][b]);
            sp_buf_printf(out,
                          "spate_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} ",
                          label, (double)lat_bounds_us[b] / 1e6);
            sp_buf_append_u64(out, cum);
            sp_buf_putc(out, '\n');
        }
        sp_buf_printf(out, "spate_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} ",
                      label);
        sp_buf_append_u64(out, count);
        sp_buf_printf(out, "\nspate_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n", label,
                      (double)SUM(lat_sum_ns[r]) / 1e9);
        sp_buf_printf(out, "spate_http_request_duration_seconds_count{route=\"%s\"} ", label);
        sp_buf_append_u64(out, count);
        sp_buf_putc(out, '\n');
    }
}

static void put_slow(sp_http_server *srv, sp_buf *out)
{
    sp_buf_append_cstr(
        out, "# HELP spate_slow_handlers_total Handlers that blocked their event "
             "loop past monitor.slow_handler.\n# TYPE spate_slow_handlers_total counter\n");
    for (unsigned r = 1; r <= srv->router->n; r++) {
        uint64_t v = SUM(slow_handlers[r]);
        if (v)
            sp_buf_printf(out, "spate_slow_handlers_total{route=\"%s\"} %llu\n",
                          sp__router_label(srv->router, r), (unsigned long long)v);
    }
}

static void put_loops(sp_http_server *srv, sp_buf *out)
{
    sp_buf_append_cstr(out, "# HELP spate_loop_lag_seconds Event-loop lag at the last check.\n"
                            "# TYPE spate_loop_lag_seconds gauge\n");
    for (unsigned i = 0; i < srv->nworkers; i++)
        sp_buf_printf(out, "spate_loop_lag_seconds{loop=\"%u\"} %.6f\n", i,
                      (double)SP_STAT_GET(srv->workers[i].stats.loop_lag_last_ns) / 1e9);
    sp_buf_append_cstr(out, "# HELP spate_loop_lag_max_seconds Largest event-loop lag seen.\n"
                            "# TYPE spate_loop_lag_max_seconds gauge\n");
    for (unsigned i = 0; i < srv->nworkers; i++)
        sp_buf_printf(out, "spate_loop_lag_max_seconds{loop=\"%u\"} %.6f\n", i,
                      (double)SP_STAT_GET(srv->workers[i].stats.loop_lag_max_ns) / 1e9);
}

void sp_http_server_metrics(sp_http_server *srv, sp_buf *out)
{
    put_requests(srv, out);
    put_latency(srv, out);
    put_slow(srv, out);
    put_counter(out, "spate_http_connections_open", "Open client connections.", "gauge",
                atomic_load(&srv->nconns));
    put_counter(out, "spate_http_connections_total", "Connections accepted.", "counter",
                SUM(conns_accepted));
    put_counter(out, "spate_http_connections_rejected_total",
                "Connections refused with 503 at http.max_connections.", "counter",
                SUM(conns_rejected));
    put_counter(out, "spate_http_accept_errors_total", "accept() failures (EMFILE, ...).",
                "counter", SUM(accept_errors));
    put_counter(out, "spate_http_received_bytes_total", "Bytes read from clients.", "counter",
                SUM(bytes_in));
    put_counter(out, "spate_http_sent_bytes_total", "Bytes written to clients.", "counter",
                SUM(bytes_out));
    put_counter(out, "spate_http_parse_errors_total",
                "Requests rejected as malformed or over a limit.", "counter", SUM(parse_errors));
    put_counter(out, "spate_http_timeouts_total", "Requests cut off by the head or body timeout.",
                "counter", SUM(timeouts));
    put_loops(srv, out);
}
