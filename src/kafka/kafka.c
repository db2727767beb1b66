/* kafka.c - the Kafka backend's skeleton: configuration, the backend
 * thread and its librdkafka queue wiring, readiness, statistics and
 * metrics, close, and the vtable. Producing is in produce.c, the tail and
 * reads in tail.c, topics and watermarks in admin.c.
 *
 * The backend thread is an sp_loop (a libuv loop plus an inbox). Each
 * librdkafka queue we consume is wired into it with
 * rd_kafka_queue_io_event_enable(q, fd, "1", 1): librdkafka writes a byte
 * to a pipe when the queue becomes non-empty, a uv_poll on the pipe's read
 * end wakes the loop, and the queue's drain function empties the queue
 * with zero timeouts. Nothing ever sleeps in rd_kafka_poll. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"
#include "kafka/kafka_int.h"

static _Thread_local sp__kafka *tl_loop_owner;

bool sp__kafka_on_loop(sp__kafka *kb)
{
    return tl_loop_owner == kb;
}

/* ---- calls onto the backend thread ---------------------------------------- */

typedef struct kcall {
    sp__kafka *kb;
    void (*fn)(sp__kafka *, void *);
    void *arg;
    uv_mutex_t lock;
    uv_cond_t cond;
    bool done;
} kcall;

static void run_call(sp_loop *loop, void *arg)
{
    (void)loop;
    kcall *c = arg;
    c->fn(c->kb, c->arg);
    uv_mutex_lock(&c->lock);
    c->done = true;
    uv_cond_signal(&c->cond);
    uv_mutex_unlock(&c->lock);
}

void sp__kafka_call(sp__kafka *kb, void (*fn)(sp__kafka *, void *), void *arg)
{
    if (sp__kafka_on_loop(kb) || !kb->loop_started) {
        fn(kb, arg);
        return;
    }
    kcall c = {.kb = kb, .fn = fn, .arg = arg};
    uv_mutex_init(&c.lock);
    uv_cond_init(&c.cond);
    sp_loop_post(&kb->loop, run_call, &c);
    uv_mutex_lock(&c.lock);
    while (!c.done)
        uv_cond_wait(&c.cond, &c.lock);
    uv_mutex_unlock(&c.lock);
    uv_cond_destroy(&c.cond);
    uv_mutex_destroy(&c.lock);
}

/* ---- librdkafka queues in the loop ------------------------------------------ */

static void on_kq_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    sp__kq *kq = h->data;
    char buf[256];
    while (read(kq->fds[0], buf, sizeof buf) > 0) {
    }
    kq->drain(h->loop->data, kq);
}

int sp__kq_start(sp__kafka *kb, sp__kq *kq, rd_kafka_queue_t *q,
                 void (*drain)(sp__kafka *, sp__kq *))
{
    if (pipe2(kq->fds, O_NONBLOCK | O_CLOEXEC) != 0)
        return -errno;
    int rc = uv_poll_init(&kb->loop.uv, &kq->poll, kq->fds[0]);
    if (rc) {
        close(kq->fds[0]);
        close(kq->fds[1]);
        return rc;
    }
    kq->poll.data = kq;
    kq->q = q;
    kq->drain = drain;
    kq->started = true;
    rd_kafka_queue_io_event_enable(q, kq->fds[1], "1", 1);
    uv_poll_start(&kq->poll, UV_READABLE, on_kq_readable);
    /* Anything queued before the wiring would never trigger the fd. */
    (void)!write(kq->fds[1], "1", 1);
    return 0;
}

static void on_kq_closed(uv_handle_t *h)
{
    sp__kq *kq = h->data;
    close(kq->fds[0]);
    close(kq->fds[1]);
    if (kq->heap)
        free(kq);
}

/* On the backend thread: unwires the queue and closes the poll handle
 * (the pipe is closed in the close callback). Does not destroy q. */
void sp__kq_stop(sp__kq *kq)
{
    if (!kq->started)
        return;
    kq->started = false;
    rd_kafka_queue_io_event_enable(kq->q, -1, NULL, 0);
    uv_close((uv_handle_t *)&kq->poll, on_kq_closed);
}

/* ---- errors, readiness, statistics ---------------------------------------------- */

int sp__kafka_errno(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return 0;
    case RD_KAFKA_RESP_ERR__QUEUE_FULL: return -EAGAIN;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return -ETIMEDOUT;
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY: return -ESHUTDOWN;
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART: return -ENOENT;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION: return -EINVAL;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: return -EMSGSIZE;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: return -EEXIST;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN: return -ENOTCONN;
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION: return -ENOTSUP;
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE: return -ERANGE;
    default: return -EIO;
    }
}

void sp__kafka_set_down(sp__kafka *kb, bool down, const char *why)
{
    uv_mutex_lock(&kb->stats.lock);
    if (down != kb->stats.all_down && why)
        snprintf(kb->stats.why, sizeof kb->stats.why, "%s", why);
    kb->stats.all_down = down;
    uv_mutex_unlock(&kb->stats.lock);
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static void parse_brokers(sp__kstats *st, json_t *brokers, bool producer, int64_t *up)
{
    const char *name;
    json_t *b;
    int64_t n = 0;
    *up = 0;
    json_object_foreach(brokers, name, b)
    {
        if (jint(b, "nodeid") < 0)
            continue; /* bootstrap entries and the like */
        n++;
        const char *state = json_string_value(json_object_get(b, "state"));
        if (state && strcmp(state, "UP") == 0)
            (*up)++;
        if (!producer)
            continue;
        st->inflight += jint(b, "waitresp_cnt");
        st->txerrs += jint(b, "txerrs");
        st->rxerrs += jint(b, "rxerrs");
        json_t *rtt = json_object_get(b, "rtt");
        if (jint(rtt, "avg") > st->rtt_avg_us)
            st->rtt_avg_us = jint(rtt, "avg");
        if (jint(rtt, "p99") > st->rtt_p99_us)
            st->rtt_p99_us = jint(rtt, "p99");
    }
    if (producer)
        st->brokers = n;
}

/* Consumer lag per partition of the tail consumer, as Prometheus lines. */
static char *parse_lag(json_t *topics, int64_t *total)
{
    sp_buf b;
    sp_buf_init(&b, 1 << 20);
    const char *tname, *pname;
    json_t *t, *p;
    *total = 0;
    json_object_foreach(topics, tname, t)
    {
        json_object_foreach(json_object_get(t, "partitions"), pname, p)
        {
            int64_t lag = jint(p, "consumer_lag");
            if (strcmp(pname, "-1") == 0 || lag < 0 || jint(p, "fetch_state") < 0)
                continue;
            const char *fs = json_string_value(json_object_get(p, "fetch_state"));
            if (fs && strcmp(fs, "none") == 0)
                continue;
            *total += lag;
            sp_buf_printf(&b, "spate_kafka_consumer_lag{topic=\"%s\",partition=\"%s\"} %lld\n",
                          tname, pname, (long long)lag);
        }
    }
    char *s = sp_xstrndup(b.base ? b.base : "", b.len);
    sp_buf_free(&b);
    return s;
}

/* Runs on the backend thread (stats callback): keeps the few figures that
 * matter. Readiness follows the producer's broker states. */
void sp__kafka_stats_parse(sp__kafka *kb, const char *json, size_t len, bool producer)
{
    json_t *root = json_loadb(json, len, 0, NULL);
    if (!root)
        return;
    sp__kstats *st = &kb->stats;
    uv_mutex_lock(&st->lock);
    if (producer) {
        st->msg_cnt = jint(root, "msg_cnt");
        st->msg_size = jint(root, "msg_size");
        st->inflight = st->txerrs = st->rxerrs = st->rtt_avg_us = st->rtt_p99_us = 0;
        parse_brokers(st, json_object_get(root, "brokers"), true, &st->brokers_up);
        if (st->brokers_up > 0)
            st->all_down = false;
    } else {
        parse_brokers(st, json_object_get(root, "brokers"), false, &st->tail_brokers_up);
        free(st->lag_text);
        st->lag_text = parse_lag(json_object_get(root, "topics"), &st->lag_total);
    }
    uv_mutex_unlock(&st->lock);
    json_decref(root);
}

static int kb_ready(void *impl, char *why, size_t whylen)
{
    sp__kafka *kb = impl;
    int rc = 0;
    uv_mutex_lock(&kb->stats.lock);
    if (kb->stats.all_down) {
        rc = -ENOTCONN;
        snprintf(why, whylen, "kafka: %s", kb->stats.why);
    } else if (atomic_load(&kb->closing)) {
        rc = -ESHUTDOWN;
        snprintf(why, whylen, "kafka: closing");
    } else if (whylen) {
        why[0] = '\0';
    }
    uv_mutex_unlock(&kb->stats.lock);
    return rc;
}

static void metric(sp_buf *out, const char *name, const char *type, const char *help, int64_t v)
{
    sp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name,
                  (long long)v);
}

static void kb_metrics(void *impl, sp_buf *out)
{
    sp__kafka *kb = impl;
    sp__kstats *st = &kb->stats;
    uv_mutex_lock(&st->lock);
    metric(out, "spate_kafka_producer_queue_messages", "gauge",
           "Messages in the producer's queues (librdkafka msg_cnt).", st->msg_cnt);
    metric(out, "spate_kafka_producer_queue_bytes", "gauge",
           "Bytes in the producer's queues (librdkafka msg_size).", st->msg_size);
    metric(out, "spate_kafka_inflight_requests", "gauge",
           "Producer requests awaiting a broker response.", st->inflight);
    metric(out, "spate_kafka_tx_errors_total", "counter", "Producer transmit errors.", st->txerrs);
    metric(out, "spate_kafka_rx_errors_total", "counter", "Producer receive errors.", st->rxerrs);
    metric(out, "spate_kafka_brokers", "gauge", "Brokers known to the producer.", st->brokers);
    metric(out, "spate_kafka_brokers_up", "gauge", "Brokers the producer is connected to.",
           st->brokers_up);
    metric(out, "spate_kafka_rtt_avg_microseconds", "gauge",
           "Worst broker's average round trip, microseconds.", st->rtt_avg_us);
    metric(out, "spate_kafka_rtt_p99_microseconds", "gauge",
           "Worst broker's p99 round trip, microseconds.", st->rtt_p99_us);
    metric(out, "spate_kafka_consumer_lag_total", "gauge",
           "Messages the tail consumer is behind, summed.", st->lag_total);
    sp_buf_printf(out,
                  "# HELP spate_kafka_consumer_lag Messages the tail consumer is behind.\n"
                  "# TYPE spate_kafka_consumer_lag gauge\n%s",
                  st->lag_text ? st->lag_text : "");
    metric(out, "spate_kafka_delivered_total", "counter", "Records delivered to Kafka.",
           (int64_t)st->delivered);
    metric(out, "spate_kafka_delivery_failures_total", "counter", "Records Kafka did not take.",
           (int64_t)st->failed);
    metric(out, "spate_kafka_producer_recreated_total", "counter",
           "Producers recreated after a fatal error.", (int64_t)st->fatal_recreates);
    metric(out, "spate_kafka_history_fetches_total", "counter",
           "Reads served by a fetch from the broker.", (int64_t)st->fetches);
    metric(out, "spate_kafka_window_reads_total", "counter", "Reads served from memory.",
           (int64_t)st->window_hits);
    metric(out, "spate_kafka_group_partitions", "gauge",
           "Partitions the consumer group assigned to this instance (group mode).",
           st->group_partitions);
    metric(out, "spate_kafka_group_rebalances_total", "counter",
           "Consumer group assignments and revocations (group mode).", (int64_t)st->rebalances);
    uv_mutex_unlock(&st->lock);
    metric(out, "spate_kafka_pending_appends", "gauge", "Records awaiting a delivery report.",
           atomic_load(&kb->pending));
    uint64_t lanes[SP__LANES];
    sp__kafka_lane_counts(kb, lanes);
    sp_buf_printf(out,
                  "# HELP spate_kafka_appends_total Appends by producer lane (quiet: linger 0, "
                  "for appends made one at a time).\n"
                  "# TYPE spate_kafka_appends_total counter\n"
                  "spate_kafka_appends_total{lane=\"busy\"} %llu\n"
                  "spate_kafka_appends_total{lane=\"quiet\"} %llu\n",
                  (unsigned long long)lanes[SP__LANE_BUSY],
                  (unsigned long long)lanes[SP__LANE_QUIET]);
}

/* ---- configuration ------------------------------------------------------------ */

typedef struct spate_opt {
    const char *key;
    size_t off;
    long min, max, def;
    bool is_size;
} spate_opt;

#define KOPT(k, field, mn, mx, d, sz)                                                              \
    {                                                                                              \
        k, offsetof(sp__kafka, field), mn, mx, d, sz                                               \
    }
static const spate_opt spate_opts[] = {
    KOPT("spate.read_timeout", read_timeout_ms, 1, 600000, 5000, false),
    KOPT("spate.admin_timeout", admin_timeout_ms, 1, 600000, 10000, false),
    KOPT("spate.metadata_interval", metadata_interval_ms, 100, 3600000, 5000, false),
    KOPT("spate.flush_timeout", flush_timeout_ms, 0, 600000, 5000, false),
    KOPT("spate.window_bytes", window_bytes, 0, 1L << 40, 8L << 20, true),
    KOPT("spate.max_fetch_bytes", max_fetch_bytes, 1024, 1L << 30, 4L << 20, true),
    KOPT("spate.max_pending", max_pending, 1, 10000000, 100000, false),
    KOPT("spate.quiet_max_pending", quiet_max_pending, 0, 1000000, 1, false),
};

static void spate_defaults(sp__kafka *kb)
{
    for (size_t i = 0; i < SP_ARRAY_LEN(spate_opts); i++) {
        const spate_opt *o = &spate_opts[i];
        if (o->is_size)
            *(size_t *)((char *)kb + o->off) = (size_t)o->def;
        else if (o->off == offsetof(sp__kafka, max_pending))
            kb->max_pending = o->def;
        else
            *(int *)((char *)kb + o->off) = (int)o->def;
    }
}

static int spate_set(sp__kafka *kb, const char *k, const char *v, char *err, size_t errlen)
{
    if (strcmp(k, "spate.start") == 0) {
        static const char *const names[] = {"latest", "earliest", "committed"};
        for (size_t i = 0; i < SP_ARRAY_LEN(names); i++)
            if (strcmp(v, names[i]) == 0) {
                kb->start = (sp__kstart)i;
                return 0;
            }
        snprintf(err, errlen,
                 "kafka.spate.start: expected latest, earliest or committed, got \"%s\"", v);
        return -EINVAL;
    }
    for (size_t i = 0; i < SP_ARRAY_LEN(spate_opts); i++) {
        const spate_opt *o = &spate_opts[i];
        if (strcmp(o->key, k) != 0)
            continue;
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < o->min || n > o->max) {
            snprintf(err, errlen, "kafka.%s: expected an integer in [%ld, %ld], got \"%s\"", k,
                     o->min, o->max, v);
            return -EINVAL;
        }
        if (o->is_size)
            *(size_t *)((char *)kb + o->off) = (size_t)n;
        else if (o->off == offsetof(sp__kafka, max_pending))
            kb->max_pending = n;
        else
            *(int *)((char *)kb + o->off) = (int)n;
        return 0;
    }
    snprintf(err, errlen, "kafka.%s: unknown spate Kafka setting", k);
    return -EINVAL;
}

static bool given(const sp_config_kv *props, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(props[i].key, key) == 0)
            return true;
    return false;
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *err, size_t errlen)
{
    char e[512];
    if (rd_kafka_conf_set(c, k, v, e, sizeof e) == RD_KAFKA_CONF_OK)
        return 0;
    snprintf(err, errlen, "kafka.%s: %s", k, e);
    return -EINVAL;
}

/* Builds the three configuration templates: the user's keys on every
 * handle, then spate's defaults for what the user did not set. */
static int build_confs(sp__kafka *kb, const sp_config_kv *props, size_t n, char *err, size_t errlen)
{
    rd_kafka_conf_t *base = rd_kafka_conf_new();
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strncmp(props[i].key, "spate.", 6) == 0)
            rc = spate_set(kb, props[i].key, props[i].value, err, errlen);
        else
            rc = conf_set(base, props[i].key, props[i].value, err, errlen);
    }
    if (rc == 0 && !given(props, n, "bootstrap.servers")) {
        snprintf(err, errlen, "kafka.bootstrap.servers is required");
        rc = -EINVAL;
    }
    kb->group = given(props, n, "group.id");
    if (!given(props, n, "spate.start"))
        kb->start = kb->group ? SP__KSTART_COMMITTED : SP__KSTART_LATEST;
    if (rc == 0 && kb->start == SP__KSTART_COMMITTED && !kb->group) {
        snprintf(err, errlen, "kafka.spate.start: committed needs kafka.group.id");
        rc = -EINVAL;
    }
    if (rc) {
        rd_kafka_conf_destroy(base);
        return rc;
    }
    /* reconnect.backoff.max.ms: a broker thread that waits to reconnect
     * also waits to expire its messages, so with librdkafka's 10 s an
     * outage could fail appends up to 10 s after message.timeout.ms. */
    static const char *const common[][2] = {{"client.id", "spate"},
                                            {"statistics.interval.ms", "1000"},
                                            {"reconnect.backoff.max.ms", "1000"}};
    /* linger.ms 1 (librdkafka's default is 5): an awaited produce waits for
     * its batch's linger, so 5 ms caps one connection near 180 req/s; at 1
     * ms it does ~570/s and batches better under load than 0 does (which
     * sends tiny requests: ~4,000 req/s at 1 connection, but 6-10 k instead
     * of 16-37 k at 100 on the dev broker; docs/BENCHMARKS.md).
     * fetch.wait.max.ms 10: a real broker answers a fetch as soon as data
     * arrives, so this only bounds idle polls; the mock broker holds every
     * fetch for the whole wait, which would be the live streams' latency. */
    static const char *const prod[][2] = {
        {"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "1"}};
    static const char *const cons[][2] = {{"enable.partition.eof", "false"},
                                          {"fetch.wait.max.ms", "10"},
                                          {"queued.max.messages.kbytes", "8192"},
                                          {"auto.offset.reset", "earliest"}};
    for (size_t i = 0; i < SP_ARRAY_LEN(common); i++)
        if (!given(props, n, common[i][0]))
            conf_set(base, common[i][0], common[i][1], err, errlen);
    kb->pconf = rd_kafka_conf_dup(base);
    kb->cconf = base;
    for (size_t i = 0; i < SP_ARRAY_LEN(prod); i++)
        if (!given(props, n, prod[i][0]))
            conf_set(kb->pconf, prod[i][0], prod[i][1], err, errlen);
    /* The quiet lane (produce.c): the busy lane's settings, but no linger
     * and one request in flight per broker, so what queues meanwhile goes
     * out together; its statistics would overwrite the busy lane's. */
    if (kb->quiet_max_pending > 0) {
        kb->qconf = rd_kafka_conf_dup(kb->pconf);
        conf_set(kb->qconf, "linger.ms", "0", err, errlen);
        conf_set(kb->qconf, "max.in.flight.requests.per.connection", "1", err, errlen);
        conf_set(kb->qconf, "statistics.interval.ms", "0", err, errlen);
    }
    for (size_t i = 0; i < SP_ARRAY_LEN(cons); i++)
        if (!given(props, n, cons[i][0]))
            conf_set(kb->cconf, cons[i][0], cons[i][1], err, errlen);
    /* Without a group nothing is committed; in group mode librdkafka
     * commits (enable.auto.commit, its default) what the tail stored. */
    if (!kb->group)
        conf_set(kb->cconf, "enable.auto.commit", "false", err, errlen);
    /* A commit on revoke can be refused while the group rebalances (the
     * mock coordinator always refuses it then); committing every 200 ms
     * instead of librdkafka's 5 s keeps what a member may replay small. */
    else if (!given(props, n, "auto.commit.interval.ms"))
        conf_set(kb->cconf, "auto.commit.interval.ms", "200", err, errlen);
    char reset[32] = "";
    size_t rsize = sizeof reset;
    rd_kafka_conf_get(kb->cconf, "auto.offset.reset", reset, &rsize);
    kb->reset_earliest = strcmp(reset, "smallest") == 0 || strcmp(reset, "earliest") == 0 ||
                         strcmp(reset, "beginning") == 0;
    /* The reader is synchronous: no statistics (nobody would poll them),
     * EOF tells it the partition's end, small prefetch. */
    kb->rconf = rd_kafka_conf_dup(kb->cconf);
    conf_set(kb->rconf, "statistics.interval.ms", "0", err, errlen);
    conf_set(kb->rconf, "enable.partition.eof", "true", err, errlen);
    conf_set(kb->rconf, "enable.auto.offset.store", "false", err, errlen);
    conf_set(kb->rconf, "enable.auto.commit", "false", err, errlen); /* never commits */
    /* Not a group member: with kafka.group.id its group coordinator
     * handling got in the way of the admin requests it also makes. */
    conf_set(kb->rconf, "group.id", "", err, errlen);
    char kbytes[32];
    snprintf(kbytes, sizeof kbytes, "%zu", kb->max_fetch_bytes / 1024 + 1);
    conf_set(kb->rconf, "queued.max.messages.kbytes", kbytes, err, errlen);
    return 0;
}

/* librdkafka's log lines go to spate's log (from librdkafka's threads;
 * sp__log writes each line atomically). */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (strstr(buf, "will be ignored by this"))
        return; /* one property list serves producer and consumers */
    if (level <= 2)
        SP_LOG_ERROR("kafka", SP_LF_STR("facility", fac) SP_LF_STR("detail", buf));
    else if (level <= 4) /* 3: connection failures and the like, expected in outages */
        SP_LOG_WARN("kafka", SP_LF_STR("facility", fac) SP_LF_STR("detail", buf));
    else
        SP_LOG_DEBUG("kafka", SP_LF_STR("facility", fac) SP_LF_STR("detail", buf));
}

/* ---- open / close ----------------------------------------------------------------- */

static void kb_free(sp__kafka *kb)
{
    if (kb->pconf)
        rd_kafka_conf_destroy(kb->pconf);
    if (kb->qconf)
        rd_kafka_conf_destroy(kb->qconf);
    if (kb->cconf)
        rd_kafka_conf_destroy(kb->cconf);
    if (kb->rconf)
        rd_kafka_conf_destroy(kb->rconf);
    sp__kafka_meta_free(kb);
    free(kb->stats.lag_text);
    uv_mutex_destroy(&kb->stats.lock);
    uv_mutex_destroy(&kb->lanes.lock);
    uv_mutex_destroy(&kb->rlock);
    uv_rwlock_destroy(&kb->plock);
    uv_rwlock_destroy(&kb->wlock);
    free(kb);
}

/* The last step on the backend thread: everything flushed or failed,
 * consumers stopped, handles closed; the loop then runs dry. */
static void shutdown_on_loop(sp__kafka *kb, void *arg)
{
    (void)arg;
    sp__kafka_producer_close(kb);
    sp__kafka_tail_close(kb);
    uv_timer_stop(&kb->meta_timer);
    uv_close((uv_handle_t *)&kb->meta_timer, NULL);
    sp_loop_close_inbox(&kb->loop);
}

static void kb_close(void *impl)
{
    sp__kafka *kb = impl;
    atomic_store(&kb->closing, true);
    sp__kafka_call(kb, shutdown_on_loop, NULL);
    sp_loop_join(&kb->loop);
    sp_loop_destroy(&kb->loop);
    if (kb->reader) {
        rd_kafka_consumer_close(kb->reader);
        rd_kafka_destroy(kb->reader);
    }
    kb_free(kb);
}

static void loop_init(sp_loop *loop, void *arg)
{
    (void)loop;
    tl_loop_owner = arg;
}

static const sp_backend_ops kafka_ops = {
    .name = "kafka",
    .close = kb_close,
    .flush = sp__kafka_flush,
    .topic_create = sp__kafka_topic_create,
    .topic_delete = sp__kafka_topic_delete,
    .topic_list = sp__kafka_topic_list,
    .topic_describe = sp__kafka_topic_describe,
    .append = sp__kafka_append,
    .partition_for_key = sp__kafka_partition_for_key,
    .read = sp__kafka_read,
    .offset_for_time = sp__kafka_offset_for_time,
    .follow_start = sp__kafka_follow_start,
    .watch_add = sp__kafka_watch_add,
    .watch_remove = sp__kafka_watch_remove,
    .ready = kb_ready,
    .metrics = kb_metrics,
};

static int reader_new(sp__kafka *kb, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_dup(kb->rconf);
    rd_kafka_conf_set_log_cb(c, on_log);
    kb->reader = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, errlen);
    if (!kb->reader) {
        rd_kafka_conf_destroy(c);
        return -EINVAL;
    }
    return 0;
}

int sp_kafka_backend_open(const sp_config_kv *props, size_t nprops, sp_backend **out, char *err,
                          size_t errlen)
{
    sp__kafka *kb = sp_xcalloc(1, sizeof *kb);
    spate_defaults(kb);
    uv_mutex_init(&kb->stats.lock);
    uv_mutex_init(&kb->lanes.lock);
    uv_mutex_init(&kb->rlock);
    uv_rwlock_init(&kb->plock);
    uv_rwlock_init(&kb->wlock);
    atomic_init(&kb->pending, 0);
    atomic_init(&kb->closing, false);
    sp__kafka_meta_init(kb);
    snprintf(kb->stats.why, sizeof kb->stats.why, "no broker reachable yet");
    int rc = build_confs(kb, props, nprops, err, errlen);
    if (rc)
        goto fail_conf;
    rd_kafka_conf_set_log_cb(kb->pconf, on_log);
    if (kb->qconf)
        rd_kafka_conf_set_log_cb(kb->qconf, on_log);
    rd_kafka_conf_set_log_cb(kb->cconf, on_log);
    rc = sp_loop_init(&kb->loop, 0);
    if (rc)
        goto fail_conf;
    kb->loop.uv.data = kb;
    uv_timer_init(&kb->loop.uv, &kb->meta_timer);
    kb->meta_timer.data = kb;
    if ((rc = sp__kafka_producer_new(kb, err, errlen)) != 0)
        goto fail_producer; /* closes the lanes made before the failure */
    if ((rc = sp__kafka_tail_new(kb, err, errlen)) != 0)
        goto fail_producer;
    if ((rc = reader_new(kb, err, errlen)) != 0)
        goto fail_tail;
    /* A first look at the cluster; failure is not fatal (ready() tells). */
    if (sp__kafka_meta_refresh(kb) != 0)
        sp__kafka_set_down(kb, true, "metadata request failed: no broker reachable");
    sp__kafka_meta_timer_start(kb);
    if ((rc = sp_loop_start(&kb->loop, loop_init, kb)) != 0)
        goto fail_reader;
    kb->loop_started = true;
    sp_backend *b = sp_xmalloc(sizeof *b);
    b->ops = &kafka_ops;
    b->impl = kb;
    *out = b;
    return 0;

fail_reader:
    rd_kafka_destroy(kb->reader);
    kb->reader = NULL;
fail_tail:
    sp__kafka_tail_close(kb);
fail_producer:
    sp__kafka_producer_close(kb);
    uv_close((uv_handle_t *)&kb->meta_timer, NULL);
    sp_loop_close_inbox(&kb->loop);
    uv_run(&kb->loop.uv, UV_RUN_DEFAULT);
    sp_loop_join(&kb->loop);
    sp_loop_destroy(&kb->loop);
fail_conf:
    kb_free(kb);
    return rc < 0 ? rc : -EINVAL;
}
