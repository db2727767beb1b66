/* kafka_client.c - the direct Kafka clients behind `spate produce --kafka`
 * and `spate consume --kafka` (contracts in kafka_client.h).
 *
 * Both are plain blocking librdkafka programs on the main thread: the
 * producer calls rd_kafka_poll between records to serve delivery reports,
 * the consumer reads its queue with rd_kafka_consume_queue. They are load
 * generators and inspection tools, not the server: the server's Kafka
 * backend (src/kafka) integrates librdkafka into the event loop instead.
 *
 * Delivery: the producer is idempotent (librdkafka's enable.idempotence,
 * so acks=all and retries without duplicates or reordering); a record
 * counts as sent only when its delivery report says so, and any failed
 * report makes the exit code 1. message.timeout.ms (librdkafka's default
 * 300 s; set it with --set) bounds how long a record may wait. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/time.h"
#include "hub/hub.h"
#include "kafka_client.h"

#define METADATA_TIMEOUT_MS 10000
#define MAX_ERROR_LINES     10

static volatile sig_atomic_t stop;

static void on_sigint(int s)
{
    (void)s;
    stop = 1;
}

int sp_cli_kafka_sets_add(sp_cli_kafka_sets *s, const char *kv)
{
    if (!strchr(kv, '='))
        return -EINVAL;
    if (s->n == SP_CLI_KAFKA_MAX_SETS)
        return -E2BIG;
    s->kv[s->n++] = kv;
    return 0;
}

/* Sets one property; on failure prints librdkafka's message. */
static bool conf_set(rd_kafka_conf_t *conf, const char *who, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) == RD_KAFKA_CONF_OK)
        return true;
    fprintf(stderr, "spate %s: %s=%s: %s\n", who, k, v, err);
    return false;
}

/* The --set properties, applied last so they win over our defaults. */
static bool conf_apply_sets(rd_kafka_conf_t *conf, const char *who, const sp_cli_kafka_sets *s)
{
    for (size_t i = 0; i < s->n; i++) {
        const char *kv = s->kv[i];
        if (strncmp(kv, "kafka.", 6) == 0)
            kv += 6;
        const char *eq = strchr(kv, '=');
        char key[256];
        if ((size_t)(eq - kv) >= sizeof key) {
            fprintf(stderr, "spate %s: --set key too long\n", who);
            return false;
        }
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        if (!conf_set(conf, who, key, eq + 1))
            return false;
    }
    return true;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        fprintf(stderr, "spate kafka: %s: %s\n", fac, buf);
}

/* ---- produce --------------------------------------------------------------- */

typedef struct kprod {
    const sp_cli_kafka_produce_opts *o;
    uint64_t produced, acked, errors, retries;
    unsigned error_lines;
} kprod;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kprod *p = opaque;
    if (m->err) {
        p->errors++;
        if (p->error_lines++ < MAX_ERROR_LINES)
            fprintf(stderr, "spate produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
        return;
    }
    p->acked++;
    if (p->o->print_acks)
        printf("{\"seq\":%llu,\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld}\n",
               (unsigned long long)(uintptr_t)m->_private, m->partition, (long long)m->offset,
               (long long)rd_kafka_message_timestamp(m, NULL));
}

static rd_kafka_t *producer_new(kprod *p)
{
    const sp_cli_kafka_produce_opts *o = p->o;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    bool ok = conf_set(conf, "produce", "bootstrap.servers", o->bootstrap) &&
              conf_set(conf, "produce", "enable.idempotence", "true") &&
              conf_set(conf, "produce", "partitioner", "murmur2_random");
    if (ok && o->linger_ms >= 0) {
        snprintf(num, sizeof num, "%d", o->linger_ms);
        ok = conf_set(conf, "produce", "linger.ms", num);
    }
    if (ok && o->batch_size > 0) {
        snprintf(num, sizeof num, "%d", o->batch_size);
        ok = conf_set(conf, "produce", "batch.num.messages", num);
    }
    if (ok && o->max_inflight > 0) {
        snprintf(num, sizeof num, "%d", o->max_inflight);
        ok = conf_set(conf, "produce", "max.in.flight.requests.per.connection", num);
    }
    if (!ok || !conf_apply_sets(conf, "produce", &o->sets)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk)
        fprintf(stderr, "spate produce: %s\n", err); /* conf was destroyed */
    return rk;
}

/* Produces one line (without its newline); waits while the local queue is
 * full. Returns 0 or librdkafka's error. */
static rd_kafka_resp_err_t produce_line(rd_kafka_t *rk, kprod *p, const char *line, size_t len)
{
    const sp_cli_kafka_produce_opts *o = p->o;
    const char *key = o->key, *value = line;
    size_t klen = key ? strlen(key) : 0, vlen = len;
    if (o->key_sep >= 0) {
        const char *sep = memchr(line, o->key_sep, len);
        key = sep ? line : NULL;
        klen = sep ? (size_t)(sep - line) : 0;
        value = sep ? sep + 1 : line;
        vlen = sep ? len - klen - 1 : len;
    }
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)p->produced), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || stop)
            return e;
        p->retries++;
        rd_kafka_poll(rk, 10);
    }
}

/* Sleeps (serving delivery reports) until the pacer lets record n go. */
static void pace(rd_kafka_t *rk, const kprod *p, uint64_t start_ns)
{
    if (p->o->rate <= 0)
        return;
    uint64_t due = start_ns + (uint64_t)((double)p->produced * 1e9 / p->o->rate);
    for (uint64_t now = sp_time_mono_ns(); now < due && !stop; now = sp_time_mono_ns())
        rd_kafka_poll(rk, (int)((due - now) / 1000000 + 1));
}

static void progress(const kprod *p, uint64_t start_ns, uint64_t *last_ns)
{
    uint64_t now = sp_time_mono_ns();
    if (p->o->quiet || now - *last_ns < 1000000000ull)
        return;
    *last_ns = now;
    fprintf(stderr, "spate produce: %llu acked, %.0f records/s\n", (unsigned long long)p->acked,
            (double)p->acked / ((double)(now - start_ns) / 1e9));
}

int sp_cli_kafka_produce(const sp_cli_kafka_produce_opts *o, sp_cli_next_record_fn next, void *arg)
{
    kprod p = {.o = o};
    rd_kafka_t *rk = producer_new(&p);
    if (!rk)
        return 2;
    signal(SIGINT, on_sigint);
    sp_buf line;
    sp_buf_init(&line, SP_BUF_UNLIMITED);
    uint64_t start_ns = sp_time_mono_ns(), last_ns = start_ns;
    int rc = 0;
    while (!stop && next(arg, &line)) {
        pace(rk, &p, start_ns);
        rd_kafka_resp_err_t e = produce_line(rk, &p, line.base, line.len - 1);
        sp_buf_reset(&line);
        if (e) {
            fprintf(stderr, "spate produce: %s\n", rd_kafka_err2str(e));
            rc = 1;
            break;
        }
        p.produced++;
        rd_kafka_poll(rk, 0);
        progress(&p, start_ns, &last_ns);
    }
    while (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_poll(rk, 100);
        progress(&p, start_ns, &last_ns);
    }
    double secs = (double)(sp_time_mono_ns() - start_ns) / 1e9;
    printf("{\"records\":%llu,\"seconds\":%.3f,\"records_per_sec\":%.0f,\"retries\":%llu,"
           "\"errors\":%llu}\n",
           (unsigned long long)p.acked, secs, (double)p.acked / (secs > 0 ? secs : 1),
           (unsigned long long)p.retries, (unsigned long long)p.errors);
    fflush(stdout);
    sp_buf_free(&line);
    rd_kafka_destroy(rk);
    return rc ? rc : p.errors ? 1 : 0;
}

/* ---- consume --------------------------------------------------------------- */

typedef struct kcons {
    const sp_cli_kafka_consume_opts *o;
    uint64_t printed;
    int32_t npart;
    bool *at_eof; /* per partition, for the stop at the end */
    int32_t eofs;
} kcons;

static rd_kafka_t *consumer_new(const sp_cli_kafka_consume_opts *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The mock broker (spate dev kafka) holds an empty fetch for the whole
     * fetch.wait.max.ms; 100 ms keeps --follow responsive there. */
    bool ok = conf_set(conf, "consume", "bootstrap.servers", o->bootstrap) &&
              conf_set(conf, "consume", "enable.partition.eof", "true") &&
              conf_set(conf, "consume", "enable.auto.commit", "false") &&
              conf_set(conf, "consume", "fetch.wait.max.ms", "100") &&
              /* rd_kafka_assign needs a group id; nothing joins or commits */
              conf_set(conf, "consume", "group.id", "spate-consume");
    if (!ok || !conf_apply_sets(conf, "consume", &o->sets)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk)
        fprintf(stderr, "spate consume: %s\n", err);
    return rk;
}

/* Returns the topic's partition count, or -1 (the reason on stderr). */
static int partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, METADATA_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e) {
        fprintf(stderr, "spate consume: metadata of %s: %s\n", topic, rd_kafka_err2str(e));
        return -1;
    }
    int n = md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
    e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    rd_kafka_metadata_destroy(md);
    if (e || n <= 0) {
        fprintf(stderr, "spate consume: topic %s: %s\n", topic,
                rd_kafka_err2str(e ? e : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
        return -1;
    }
    return n;
}

/* Parses --from into a librdkafka start offset; false when malformed. */
static bool start_offset(const char *from, int64_t *out)
{
    char *end;
    if (strcmp(from, "earliest") == 0)
        *out = RD_KAFKA_OFFSET_BEGINNING;
    else if (strcmp(from, "latest") == 0)
        *out = RD_KAFKA_OFFSET_END;
    else {
        errno = 0;
        long long v = strtoll(from, &end, 10);
        if (errno || end == from || *end || v < 0)
            return false;
        *out = v;
    }
    return true;
}

static void print_record(kcons *c, const rd_kafka_message_t *m, sp_buf *out)
{
    sp_store_record rec = {
        .offset = (uint64_t)m->offset,
        .timestamp = rd_kafka_message_timestamp(m, NULL),
        .key = {(char *)m->key, m->key ? m->key_len : 0},
        .value = {m->payload ? (char *)m->payload : "", m->len},
    };
    sp_buf_reset(out);
    sp_hub_envelope(out, (uint32_t)m->partition, &rec);
    if (!c->o->envelope) {
        /* the envelope's value is the record's JSON, or a JSON string */
        const char *v = strstr(out->base, ",\"value\":") + 9;
        fwrite(v, 1, out->len - (size_t)(v - out->base) - 1, stdout);
    } else {
        fwrite(out->base, 1, out->len, stdout);
    }
    putchar('\n');
    c->printed++;
}

/* Handles one event from the queue; returns -1 on a fatal error. */
static int handle(kcons *c, rd_kafka_message_t *m, sp_buf *out)
{
    int32_t p = m->partition;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p >= 0 && p < c->npart && !c->at_eof[p]) {
            c->at_eof[p] = true;
            c->eofs++;
        }
        return 0;
    }
    if (m->err) {
        fprintf(stderr, "spate consume: %s\n", rd_kafka_message_errstr(m));
        return m->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                       m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN
                   ? 0
                   : -1;
    }
    if (p >= 0 && p < c->npart && c->at_eof[p]) {
        c->at_eof[p] = false;
        c->eofs--;
    }
    print_record(c, m, out);
    return 0;
}

static int consume_loop(rd_kafka_t *rk, kcons *c)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    sp_buf out;
    sp_buf_init(&out, SP_BUF_UNLIMITED);
    int rc = 0;
    int32_t want = c->o->partition >= 0 ? 1 : c->npart;
    while (!stop && !(c->o->count && c->printed >= c->o->count)) {
        if (!c->o->follow && c->eofs >= want)
            break;
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 100);
        if (!m) {
            fflush(stdout);
            continue;
        }
        int r = handle(c, m, &out);
        rd_kafka_message_destroy(m);
        if (r < 0) {
            rc = 1;
            break;
        }
    }
    fflush(stdout);
    sp_buf_free(&out);
    rd_kafka_queue_destroy(q);
    return rc;
}

static int assign(rd_kafka_t *rk, kcons *c, int64_t start)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(c->npart);
    for (int32_t p = 0; p < c->npart; p++)
        if (c->o->partition < 0 || c->o->partition == p)
            rd_kafka_topic_partition_list_add(l, c->o->topic, p)->offset = start;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        fprintf(stderr, "spate consume: assign: %s\n", rd_kafka_err2str(e));
    return e ? 1 : 0;
}

int sp_cli_kafka_consume(const sp_cli_kafka_consume_opts *o)
{
    int64_t start;
    if (!start_offset(o->from, &start)) {
        fprintf(stderr, "spate consume: --from earliest, latest or an offset\n");
        return 2;
    }
    rd_kafka_t *rk = consumer_new(o);
    if (!rk)
        return 2;
    signal(SIGINT, on_sigint);
    kcons c = {.o = o};
    int n = partition_count(rk, o->topic);
    int rc = 1;
    if (n > 0 && o->partition >= n)
        fprintf(stderr, "spate consume: topic %s has %d partitions\n", o->topic, n);
    else if (n > 0) {
        c.npart = n;
        c.at_eof = sp_xcalloc((size_t)n, sizeof *c.at_eof);
        rc = assign(rk, &c, start);
        if (rc == 0)
            rc = consume_loop(rk, &c);
        free(c.at_eof);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
