/* produce.c - appends: idempotent librdkafka producers, in two lanes.
 *
 * An append of n records produces n messages to one partition (chosen as
 * the store does: murmur2 of the first key, or round-robin) with one
 * shared context as their opaque. Delivery reports arrive on the backend
 * thread (the producer's main queue is wired into the loop); when the last
 * of the n reports arrives the append's callback fires once with Kafka's
 * partition, the lowest offset and the first record's timestamp, or with
 * the first error. Kafka cannot make n messages atomic without
 * transactions: when some of them fail, the callback reports the error
 * while the delivered ones stay in the log (retries are idempotent, so
 * there are no duplicates).
 *
 * Lanes. linger.ms trades one append's latency for batching: with 1 ms
 * (spate's default) a producer that waits for each ack does ~600 appends/s,
 * with 0 ~3,000, but at 0 many concurrent appends go out in tiny requests.
 * So there are two producers: the busy lane (the configured one) and the
 * quiet lane (linger.ms 0 and max.in.flight 1, so what arrives while a
 * request is out waits for it and goes in the next one, as Nagle's
 * algorithm does). The lane is chosen only when no append is pending,
 * which keeps every partition's appends in one producer at a time and so
 * in order: the quiet lane when at most spate.quiet_max_pending appends
 * were pending at once since the last such moment (a client that waits
 * for each ack), else the busy lane. A load that never lets the pending
 * count reach zero stays on its lane; the quiet lane still batches then.
 *
 * Bounds: at most max_pending records awaiting reports (-EAGAIN past it),
 * librdkafka's own queue.buffering.max.* (-EAGAIN on QUEUE_FULL), and
 * message.timeout.ms for every delivery. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "kafka/kafka_int.h"
#include "store/partitioner.h"

static _Thread_local const char *tl_errstr = "";

const char *sp_kafka_ack_errstr(void)
{
    return tl_errstr;
}

typedef struct kappend {
    sp__kafka *kb;
    sp_store_append_cb cb;
    void *arg;
    uint32_t expected; /* reports still to come, +1 while the caller produces (atomic) */
    uint32_t n;        /* records asked for */
    int lane;          /* SP__LANE_*: the producer the records went to */
    int caller_status; /* a produce call that failed after the first (set before the +1 drops) */
    char caller_err[128];
    sp_store_ack ack;
    bool have_offset;
    int64_t now;      /* the create time given to records without a timestamp */
    int64_t first_ts; /* the first record's create time */
    char errstr[256];
} kappend;

static void append_fail(kappend *a, int status, const char *why)
{
    if (a->ack.status == 0) {
        a->ack.status = status;
        snprintf(a->errstr, sizeof a->errstr, "%s", why);
    }
}

/* Takes a lane for one append (see the top of the file). */
static int lane_enter(sp__kafka *kb)
{
    sp__klanes *l = &kb->lanes;
    uv_mutex_lock(&l->lock);
    if (l->pending == 0) {
        l->cur = kb->qconf && l->peak <= kb->quiet_max_pending ? SP__LANE_QUIET : SP__LANE_BUSY;
        l->peak = 0;
    }
    if (++l->pending > l->peak)
        l->peak = l->pending;
    l->appends[l->cur]++;
    int lane = l->cur;
    uv_mutex_unlock(&l->lock);
    return lane;
}

static void lane_leave(sp__kafka *kb)
{
    uv_mutex_lock(&kb->lanes.lock);
    kb->lanes.pending--;
    uv_mutex_unlock(&kb->lanes.lock);
}

/* A topic handle made and dropped at once: librdkafka keeps the topic
 * (until the producer is destroyed) and fetches its metadata in the
 * background, where the first append to it would have waited for it. */
static void producer_know(rd_kafka_t *rk, const sp__ktopic *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topics[i].name, NULL);
        if (t)
            rd_kafka_topic_destroy(t);
    }
}

void sp__kafka_producers_know(sp__kafka *kb, const sp__ktopic *topics, size_t n)
{
    uv_rwlock_rdlock(&kb->plock);
    for (int lane = 0; lane < SP__LANES; lane++)
        if (kb->producer[lane])
            producer_know(kb->producer[lane], topics, n);
    uv_rwlock_rdunlock(&kb->plock);
}

void sp__kafka_lane_counts(sp__kafka *kb, uint64_t out[SP__LANES])
{
    uv_mutex_lock(&kb->lanes.lock);
    for (int i = 0; i < SP__LANES; i++)
        out[i] = kb->lanes.appends[i];
    uv_mutex_unlock(&kb->lanes.lock);
}

static void append_finish(sp__kafka *kb, kappend *a)
{
    if (a->caller_status)
        append_fail(a, a->caller_status, a->caller_err);
    lane_leave(kb);
    atomic_fetch_sub(&kb->pending, (long)a->n);
    uv_mutex_lock(&kb->stats.lock);
    if (a->ack.status)
        kb->stats.failed += a->n;
    else
        kb->stats.delivered += a->n;
    uv_mutex_unlock(&kb->stats.lock);
    if (a->cb) {
        tl_errstr = a->errstr;
        a->ack.detail = a->ack.status && a->errstr[0] ? a->errstr : NULL;
        a->cb(a->arg, &a->ack);
        tl_errstr = "";
    }
    free(a);
}

/* Delivery report, on the backend thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sp__kafka *kb = opaque;
    kappend *a = m->_private;
    if (m->err) {
        append_fail(a, sp__kafka_errno(m->err), rd_kafka_err2str(m->err));
    } else {
        uint64_t off = (uint64_t)m->offset;
        if (!a->have_offset || off < a->ack.base_offset) {
            a->ack.base_offset = off;
            a->ack.partition = (uint32_t)m->partition;
            /* the broker's LogAppendTime when the topic uses it, else the
             * record's create time (librdkafka 2.0.2's mock reports a fixed
             * LogAppendTime of 1234: not a plausible time, ignored) */
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            int64_t created = a->first_ts; /* the lowest offset is the first record */
            a->ack.timestamp =
                tt == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME && ts >= created - 24 * 3600 * 1000LL
                    ? ts
                    : created;
            a->have_offset = true;
        }
        sp__kafka_meta_note_end(kb, rd_kafka_topic_name(m->rkt), (uint32_t)m->partition, off + 1);
        sp__kafka_set_down(kb, false, NULL);
    }
    if (__atomic_sub_fetch(&a->expected, 1, __ATOMIC_ACQ_REL) == 0)
        append_finish(kb, a);
}

static void finish_on_loop(sp_loop *loop, void *arg)
{
    (void)loop;
    kappend *a = arg;
    append_finish(a->kb, a);
}

static void recreate_producer(sp__kafka *kb, int lane);

/* Recreates every producer that is in a fatal state. */
static void recreate_on_loop(sp_loop *loop, void *arg)
{
    sp__kafka *kb = arg;
    if (!loop || atomic_load(&kb->closing))
        return;
    for (int lane = 0; lane < SP__LANES; lane++) {
        uv_rwlock_rdlock(&kb->plock);
        rd_kafka_t *rk = kb->producer[lane];
        uv_rwlock_rdunlock(&kb->plock);
        char why[64];
        if (rk && rd_kafka_fatal_error(rk, why, sizeof why) != RD_KAFKA_RESP_ERR_NO_ERROR)
            recreate_producer(kb, lane);
    }
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    sp__kafka *kb = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof why);
        SP_LOG_ERROR("kafka: FATAL producer error, recreating the producer; appends in flight fail",
                     SP_LF_STR("error", rd_kafka_err2name(orig)) SP_LF_STR("detail", why));
        /* Not from inside the old producer's poll: after it returns. */
        sp_loop_post(&kb->loop, recreate_on_loop, kb);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        sp__kafka_set_down(kb, true, reason);
        SP_LOG_WARN("kafka: all brokers down", SP_LF_STR("detail", reason));
        return;
    }
    SP_LOG_DEBUG("kafka: producer error",
                 SP_LF_STR("error", rd_kafka_err2name(err)) SP_LF_STR("detail", reason));
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    sp__kafka_stats_parse(opaque, json, len, true);
    return 0;
}

/* Drains a producer's main queue: delivery reports, errors, stats. The
 * queues are replaced only on this (the backend) thread. */
static void drain_producer(sp__kafka *kb, sp__kq *kq)
{
    for (int lane = 0; lane < SP__LANES; lane++) {
        if (kb->pq[lane] != kq)
            continue;
        uv_rwlock_rdlock(&kb->plock);
        rd_kafka_t *rk = kb->producer[lane];
        uv_rwlock_rdunlock(&kb->plock);
        if (rk)
            while (rd_kafka_poll(rk, 0) > 0) {
            }
    }
}

static int producer_make(sp__kafka *kb, int lane, rd_kafka_t **out, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_dup(lane == SP__LANE_QUIET ? kb->qconf : kb->pconf);
    rd_kafka_conf_set_opaque(c, kb);
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_error_cb(c, on_error);
    rd_kafka_conf_set_stats_cb(c, on_stats);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, errlen);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        return -EINVAL;
    }
    *out = rk;
    return 0;
}

static int wire_producer(sp__kafka *kb, int lane, rd_kafka_t *rk)
{
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(rk);
    sp__kq *kq = sp_xcalloc(1, sizeof *kq);
    kq->heap = true;
    kb->pq[lane] = kq;
    int rc = sp__kq_start(kb, kq, q, drain_producer);
    if (rc) {
        rd_kafka_queue_destroy(q);
        free(kq);
        kb->pq[lane] = NULL;
    }
    return rc;
}

int sp__kafka_producer_new(sp__kafka *kb, char *err, size_t errlen)
{
    for (int lane = 0; lane < SP__LANES; lane++) {
        if (lane == SP__LANE_QUIET && !kb->qconf)
            break;
        int rc = producer_make(kb, lane, &kb->producer[lane], err, errlen);
        if (rc == 0 && (rc = wire_producer(kb, lane, kb->producer[lane])) != 0) {
            rd_kafka_destroy(kb->producer[lane]);
            kb->producer[lane] = NULL;
            snprintf(err, errlen, "kafka: cannot wire the producer queue: %s", strerror(-rc));
        }
        if (rc)
            return rc; /* the caller closes the lanes made so far */
    }
    return 0;
}

/* Fails whatever the producer `rk` of `lane` still holds (its reports run
 * here, on the backend thread), unwires and destroys it. */
static void producer_retire(sp__kafka *kb, int lane, rd_kafka_t *rk, int flush_ms)
{
    if (flush_ms > 0)
        rd_kafka_flush(rk, flush_ms);
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (int i = 0; i < 100 && rd_kafka_outq_len(rk) > 0; i++)
        rd_kafka_poll(rk, 10);
    rd_kafka_poll(rk, 0);
    if (kb->pq[lane]) {
        rd_kafka_queue_t *q = kb->pq[lane]->q;
        sp__kq_stop(kb->pq[lane]);
        rd_kafka_queue_destroy(q);
        kb->pq[lane] = NULL;
    }
    rd_kafka_destroy(rk);
}

/* After a fatal (idempotence) error: a new producer takes the old one's
 * place in its lane; every append the old one held fails (-EIO, "fatal"). */
static void recreate_producer(sp__kafka *kb, int lane)
{
    char err[512];
    rd_kafka_t *fresh;
    if (producer_make(kb, lane, &fresh, err, sizeof err) != 0) {
        SP_LOG_ERROR("kafka: cannot recreate the producer", SP_LF_STR("detail", err));
        return;
    }
    uv_rwlock_wrlock(&kb->plock);
    rd_kafka_t *old = kb->producer[lane];
    kb->producer[lane] = fresh;
    uv_rwlock_wrunlock(&kb->plock);
    producer_retire(kb, lane, old, 0);
    uv_mutex_lock(&kb->meta.lock);
    producer_know(fresh, kb->meta.topics, kb->meta.n);
    uv_mutex_unlock(&kb->meta.lock);
    if (wire_producer(kb, lane, fresh) != 0)
        SP_LOG_ERROR("kafka: cannot wire the new producer's queue", SP_LF_STR("detail", ""));
    uv_mutex_lock(&kb->stats.lock);
    kb->stats.fatal_recreates++;
    uv_mutex_unlock(&kb->stats.lock);
}

/* On the backend thread, at close: bounded flush, then every append still
 * pending completes with -ESHUTDOWN. */
void sp__kafka_producer_close(sp__kafka *kb)
{
    for (int lane = 0; lane < SP__LANES; lane++) {
        uv_rwlock_wrlock(&kb->plock);
        rd_kafka_t *rk = kb->producer[lane];
        kb->producer[lane] = NULL;
        uv_rwlock_wrunlock(&kb->plock);
        if (rk)
            producer_retire(kb, lane, rk, kb->flush_timeout_ms);
    }
}

/* Both lanes, within one spate.flush_timeout. */
static void flush_on_loop(sp__kafka *kb, void *arg)
{
    int *rc = arg;
    uint64_t deadline = uv_hrtime() / 1000000 + (uint64_t)kb->flush_timeout_ms;
    *rc = -ESHUTDOWN;
    for (int lane = 0; lane < SP__LANES; lane++) {
        uv_rwlock_rdlock(&kb->plock);
        rd_kafka_t *rk = kb->producer[lane];
        uv_rwlock_rdunlock(&kb->plock);
        if (!rk)
            continue;
        uint64_t now = uv_hrtime() / 1000000;
        int left = now < deadline ? (int)(deadline - now) : 0;
        int r = sp__kafka_errno(rd_kafka_flush(rk, left));
        if (*rc == -ESHUTDOWN || (*rc == 0 && r != 0))
            *rc = r;
    }
}

/* Waits (bounded by spate.flush_timeout) until every queued append is
 * delivered; their reports run on the backend thread meanwhile. */
int sp__kafka_flush(void *impl)
{
    int rc = 0;
    sp__kafka_call(impl, flush_on_loop, &rc);
    return rc;
}

/* ---- append ------------------------------------------------------------------- */

static int pick_partition(sp__kafka *kb, const char *topic, int32_t partition, sp_slice key)
{
    int nparts = sp__kafka_meta_partitions(kb, topic);
    if (nparts < 0)
        return nparts;
    if (partition >= 0)
        return partition < nparts ? partition : -EINVAL;
    if (key.base)
        return (int)sp__partition_for_key(key.base, key.len, (uint32_t)nparts);
    uv_mutex_lock(&kb->meta.lock);
    int p = (int)(kb->meta.rr++ % (uint32_t)nparts);
    uv_mutex_unlock(&kb->meta.lock);
    return p;
}

int sp__kafka_partition_for_key(void *impl, const char *topic, sp_slice key)
{
    return pick_partition(impl, topic, SP_STORE_PARTITION_ANY, key);
}

static rd_kafka_headers_t *headers_of(const sp_store_record *r)
{
    if (!r->header_count)
        return NULL;
    rd_kafka_headers_t *h = rd_kafka_headers_new(r->header_count);
    for (uint32_t i = 0; i < r->header_count; i++)
        rd_kafka_header_add(h, r->headers[i].name.base, (ssize_t)r->headers[i].name.len,
                            r->headers[i].value.base, (ssize_t)r->headers[i].value.len);
    return h;
}

static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, const char *topic, int partition,
                                       const sp_store_record *r, kappend *a)
{
    rd_kafka_headers_t *h = headers_of(r);
    int64_t ts = r->timestamp >= 0 ? r->timestamp : a->now;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(r->key.base, r->key.base ? r->key.len : 0),
        RD_KAFKA_V_VALUE((void *)r->value.base, r->value.len), RD_KAFKA_V_TIMESTAMP(ts),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(a), RD_KAFKA_V_END);
    if (e && h)
        rd_kafka_headers_destroy(h);
    return e;
}

/* Produces the n records; returns how many were queued (reports to come).
 * A failure past the first is remembered in a (its report is the error). */
static uint32_t produce_all(rd_kafka_t *rk, const char *topic, int partition,
                            const sp_store_record *recs, size_t n, kappend *a,
                            rd_kafka_resp_err_t *first_err)
{
    uint32_t queued = 0;
    *first_err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = produce_one(rk, topic, partition, &recs[i], a);
        if (e) {
            *first_err = e;
            a->caller_status = sp__kafka_errno(e);
            snprintf(a->caller_err, sizeof a->caller_err, "%s", rd_kafka_err2str(e));
            break;
        }
        queued++;
    }
    return queued;
}

int sp__kafka_append(void *impl, const char *topic, int32_t partition, const sp_store_record *recs,
                     size_t n, sp_store_append_cb cb, void *arg)
{
    sp__kafka *kb = impl;
    if (atomic_load(&kb->closing))
        return -ESHUTDOWN;
    if (n == 0)
        return -EINVAL;
    if (n > (size_t)kb->max_pending)
        return -EMSGSIZE;
    int p = pick_partition(kb, topic, partition, recs[0].key);
    if (p < 0)
        return p;
    if (atomic_fetch_add(&kb->pending, (long)n) + (long)n > kb->max_pending) {
        atomic_fetch_sub(&kb->pending, (long)n);
        return -EAGAIN;
    }
    kappend *a = sp_xcalloc(1, sizeof *a);
    a->lane = lane_enter(kb);
    a->kb = kb;
    a->cb = cb;
    a->arg = arg;
    a->n = (uint32_t)n;
    a->ack.count = (uint32_t)n;
    a->ack.partition = (uint32_t)p;
    a->now = sp_time_now_ms();
    a->first_ts = recs[0].timestamp >= 0 ? recs[0].timestamp : a->now;
    /* Reports may arrive (on the backend thread) while we still produce:
     * hold one extra expected report until all are queued. */
    a->expected = 1;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__DESTROY;
    uint32_t queued = 0;
    uv_rwlock_rdlock(&kb->plock);
    rd_kafka_t *rk = kb->producer[a->lane];
    if (rk) {
        __atomic_fetch_add(&a->expected, (uint32_t)n, __ATOMIC_ACQ_REL);
        queued = produce_all(rk, topic, p, recs, n, a, &e);
        __atomic_fetch_sub(&a->expected, (uint32_t)n - queued, __ATOMIC_ACQ_REL);
    }
    uv_rwlock_rdunlock(&kb->plock);
    if (queued == 0) {
        lane_leave(kb);
        atomic_fetch_sub(&kb->pending, (long)n);
        free(a);
        return e == RD_KAFKA_RESP_ERR__DESTROY ? -ESHUTDOWN : sp__kafka_errno(e);
    }
    /* Drop the extra report; the last one finishes the append, always on
     * the backend thread (every report may already have arrived). */
    if (__atomic_sub_fetch(&a->expected, 1, __ATOMIC_ACQ_REL) == 0)
        sp_loop_post(&kb->loop, finish_on_loop, a);
    return 0;
}

void sp__kafka_test_fatal(sp__kafka *kb)
{
    uv_rwlock_rdlock(&kb->plock);
    for (int lane = 0; lane < SP__LANES; lane++)
        if (kb->producer[lane])
            rd_kafka_test_fatal_error(kb->producer[lane],
                                      RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                      "injected by a test");
    uv_rwlock_rdunlock(&kb->plock);
}
