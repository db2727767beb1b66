/* kafka_poll.c - does wiring librdkafka into the event loop add latency?
 *
 * One awaited produce at a time (produce, wait for the delivery report on
 * the libuv loop thread, produce the next), against librdkafka's mock
 * cluster in this process, in two ways:
 *
 *   event   spate's way: the producer's main queue is io-event-enabled
 *           (rd_kafka_queue_io_event_enable) into a pipe, a uv_poll on the
 *           pipe runs rd_kafka_poll(rk, 0) on the loop thread, and the
 *           delivery report callback completes the request right there.
 *   thread  the articles' way: a poll thread runs rd_kafka_poll(rk, 100) in
 *           a loop; the delivery report (on that thread) is handed to the
 *           loop with uv_async_send, where the request completes.
 *
 * Latency: produce call -> completion on the loop thread, per record.
 * Rounds alternate event/thread so drift hits both. Prints p50/p90/p99/max
 * in µs per mode and thread ÷ event.
 *
 * Usage: kafka_poll [records per round] [rounds]   (default 3000 x 4)
 * Build: cc -O2 -o kafka_poll kafka_poll.c -lrdkafka -luv (bench/kafka-poll.sh) */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#define TOPIC "lat"

typedef struct run {
    uv_loop_t loop;
    rd_kafka_t *rk;
    bool threaded;
    int fds[2];
    uv_poll_t poll;
    uv_async_t async;
    uv_thread_t thread;
    atomic_bool stop;
    atomic_int reports; /* thread mode: delivered, not yet completed on the loop */
    int64_t t0;         /* produce time of the record in flight */
    size_t done, n;
    int64_t *lat;
    int errors;
} run;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void produce_next(run *r)
{
    static const char payload[] = "{\"name\":\"bench\",\"price\":1.5}";
    r->t0 = now_ns();
    if (rd_kafka_producev(r->rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_VALUE((void *)payload, sizeof payload - 1),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) != 0) {
        fprintf(stderr, "produce: %s\n", rd_kafka_err2str(rd_kafka_last_error()));
        exit(1);
    }
}

/* A request completes on the loop thread: record, then the next one. */
static void complete(run *r)
{
    r->lat[r->done++] = now_ns() - r->t0;
    if (r->done < r->n)
        produce_next(r);
    else if (r->threaded) {
        atomic_store(&r->stop, true);
        uv_close((uv_handle_t *)&r->async, NULL);
    } else
        uv_close((uv_handle_t *)&r->poll, NULL);
}

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    run *r = opaque;
    if (m->err)
        r->errors++;
    if (r->n == 0)
        return; /* the warm-up record */
    if (r->threaded) {
        atomic_fetch_add(&r->reports, 1);
        uv_async_send(&r->async);
    } else
        complete(r);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run *r = p->data;
    char buf[64];
    while (read(r->fds[0], buf, sizeof buf) > 0) {
    }
    while (rd_kafka_poll(r->rk, 0) > 0 && r->done < r->n) {
    }
}

static void on_async(uv_async_t *a)
{
    run *r = a->data;
    while (atomic_load(&r->reports) > 0 && r->done < r->n) {
        atomic_fetch_sub(&r->reports, 1);
        complete(r);
    }
}

static void poll_thread(void *arg)
{
    run *r = arg;
    while (!atomic_load(&r->stop))
        rd_kafka_poll(r->rk, 100);
}

static rd_kafka_t *producer(const char *bootstrap, run *r)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", bootstrap},
                           {"linger.ms", "0"},
                           {"enable.idempotence", "true"},
                           {"acks", "all"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(c, kv[i][0], kv[i][1], err, sizeof err) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "%s\n", err);
            exit(1);
        }
    rd_kafka_conf_set_dr_msg_cb(c, on_dr);
    rd_kafka_conf_set_opaque(c, r);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return rk;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One round of n awaited produces; latencies appended to lat. */
static void round_run(const char *bootstrap, bool threaded, size_t n, int64_t *lat)
{
    run r;
    memset(&r, 0, sizeof r);
    r.threaded = threaded;
    r.lat = lat;
    uv_loop_init(&r.loop);
    r.rk = producer(bootstrap, &r);
    /* warm-up: connection, metadata, producer id */
    rd_kafka_producev(r.rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_VALUE("w", 1), RD_KAFKA_V_END);
    rd_kafka_flush(r.rk, 10000);
    r.errors = 0;
    r.n = n;
    if (threaded) {
        uv_async_init(&r.loop, &r.async, on_async);
        r.async.data = &r;
        uv_thread_create(&r.thread, poll_thread, &r);
    } else {
        if (pipe(r.fds) != 0)
            exit(1);
        for (int i = 0; i < 2; i++)
            fcntl(r.fds[i], F_SETFL, O_NONBLOCK);
        rd_kafka_queue_t *q = rd_kafka_queue_get_main(r.rk);
        rd_kafka_queue_io_event_enable(q, r.fds[1], "1", 1);
        rd_kafka_queue_destroy(q);
        uv_poll_init(&r.loop, &r.poll, r.fds[0]);
        r.poll.data = &r;
        uv_poll_start(&r.poll, UV_READABLE, on_readable);
    }
    produce_next(&r);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    if (threaded)
        uv_thread_join(&r.thread);
    else {
        rd_kafka_queue_t *q = rd_kafka_queue_get_main(r.rk);
        rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
        rd_kafka_queue_destroy(q);
        close(r.fds[0]);
        close(r.fds[1]);
    }
    if (r.errors)
        fprintf(stderr, "%d delivery errors\n", r.errors);
    rd_kafka_destroy(r.rk);
    uv_loop_close(&r.loop);
}

static void report(const char *name, int64_t *lat, size_t n, double *p50, double *p99)
{
    qsort(lat, n, sizeof *lat, cmp);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)lat[i];
    *p50 = (double)lat[n / 2] / 1000;
    *p99 = (double)lat[n * 99 / 100] / 1000;
    printf("| %s | %zu | %.0f | %.0f | %.0f | %.0f | %.0f |\n", name, n, sum / (double)n / 1000,
           *p50, (double)lat[n * 90 / 100] / 1000, *p99, (double)lat[n - 1] / 1000);
}

int main(int argc, char **argv)
{
    size_t per = argc > 1 ? strtoul(argv[1], NULL, 10) : 3000;
    int rounds = argc > 2 ? atoi(argv[2]) : 4;
    if (per == 0 || rounds <= 0)
        return 2;
    char err[512];
    rd_kafka_conf_t *mc = rd_kafka_conf_new();
    rd_kafka_conf_set(mc, "log_level", "3", err, sizeof err); /* no bootstrap: expected */
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof err);
    rd_kafka_mock_cluster_t *mock = rd_kafka_mock_cluster_new(mrk, 1);
    rd_kafka_mock_topic_create(mock, TOPIC, 1, 1);
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mock);
    int64_t *ev = calloc(per * (size_t)rounds, sizeof *ev);
    int64_t *th = calloc(per * (size_t)rounds, sizeof *th);
    for (int i = 0; i < rounds; i++) {
        round_run(bootstrap, false, per, ev + (size_t)i * per);
        round_run(bootstrap, true, per, th + (size_t)i * per);
    }
    printf("| mode | requests | mean µs | p50 µs | p90 µs | p99 µs | max µs |\n"
           "|---|---:|---:|---:|---:|---:|---:|\n");
    double e50, e99, t50, t99;
    report("event (io_event_enable + uv_poll)", ev, per * (size_t)rounds, &e50, &e99);
    report("thread (rd_kafka_poll(100) + uv_async)", th, per * (size_t)rounds, &t50, &t99);
    printf("\nthread / event: p50 %.2f, p99 %.2f\n", t50 / e50, t99 / e99);
    free(ev);
    free(th);
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mrk);
    return 0;
}
