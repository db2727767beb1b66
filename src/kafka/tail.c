/* tail.c - following watched topics, and reads.
 *
 * The tail consumer reads every partition of every watched topic with the
 * legacy per-partition API (rd_kafka_consume_start_queue: an assignment
 * without a group, so every spate instance sees every record) into one
 * queue wired into the backend loop. Each consumed record is copied into
 * its partition's window (the newest spate.window_bytes of records, oldest
 * dropped first); after each drained batch the watch callback announces
 * the new end of every partition that grew. The hub's callback then reads
 * the new records, which come from the window.
 *
 * read() serves from the window when `from` lies inside it (no network).
 * Older offsets are fetched by the reader consumer: start at `from`, take
 * what arrives until max_records/max_bytes, the partition's end (EOF) or
 * spate.read_timeout, stop. One fetch at a time (rlock): history reads are
 * the exception, and this bounds what they cost the broker.
 *
 * Group mode (kafka.group.id): the tail consumer subscribes to the watched
 * topics in that consumer group, so the group's members share the
 * partitions and each record reaches one of them (processing, not
 * fan-out). A partition assigned here starts at the group's committed
 * offset; the windows and the watch callbacks work as above for the
 * partitions this instance holds. Once a watch callback returned (the hub
 * took the records), their offsets are stored; librdkafka commits them
 * every 200 ms (enable.auto.commit) and spate synchronously on revoke and
 * at close (at least once). A first record above a window's end
 * (a partition that arrives from another member that processed further,
 * or offsets skipped by compaction) is announced with the seek callback
 * before the records that follow it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "kafka/kafka_int.h"

#define DRAIN_BATCH 512

static int64_t now_ms(void)
{
    return (int64_t)(sp_time_mono_ns() / 1000000);
}

/* ---- records in memory ---------------------------------------------------------- */

sp__krec *sp__krec_new(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hs = NULL;
    size_t nh = 0, hbytes = 0;
    if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        nh = rd_kafka_header_cnt(hs);
    for (size_t i = 0; i < nh; i++) {
        const char *name;
        const void *val;
        size_t vlen;
        rd_kafka_header_get_all(hs, i, &name, &val, &vlen);
        hbytes += strlen(name) + vlen;
    }
    size_t data = m->key_len + m->len + hbytes;
    sp__krec *r = sp_xmalloc(sizeof *r + nh * sizeof(sp_store_header) + data);
    sp_store_header *h = (sp_store_header *)(r + 1);
    char *p = (char *)(h + nh);
    r->next = NULL;
    r->size = sizeof *r + nh * sizeof *h + data;
    r->r.offset = (uint64_t)m->offset;
    r->r.timestamp = rd_kafka_message_timestamp(m, NULL);
    r->r.headers = nh ? h : NULL;
    r->r.header_count = (uint32_t)nh;
    r->r.key = m->key ? sp_slice_make(p, m->key_len) : SP_SLICE_NULL;
    if (m->key)
        memcpy(p, m->key, m->key_len), p += m->key_len;
    r->r.value = sp_slice_make(p, m->len);
    if (m->len)
        memcpy(p, m->payload, m->len), p += m->len;
    for (size_t i = 0; i < nh; i++) {
        const char *name;
        const void *val;
        size_t vlen, nlen;
        rd_kafka_header_get_all(hs, i, &name, &val, &vlen);
        nlen = strlen(name);
        memcpy(p, name, nlen);
        h[i].name = sp_slice_make(p, nlen);
        p += nlen;
        if (vlen)
            memcpy(p, val, vlen);
        h[i].value = sp_slice_make(p, vlen);
        p += vlen;
    }
    return r;
}

void sp__krec_free_list(sp__krec *r)
{
    while (r) {
        sp__krec *next = r->next;
        free(r);
        r = next;
    }
}

/* Copies recs (a list, offsets ascending, those >= from) into out, the
 * store's read result layout, honouring max_records and max_bytes (at
 * least one record). Returns how many were taken. */
static size_t records_build(const sp__krec *recs, uint64_t from, size_t max_records,
                            size_t max_bytes, sp_store_records *out)
{
    size_t n = 0, nh = 0, bytes = 0;
    const sp__krec *first = recs;
    while (first && first->r.offset < from)
        first = first->next;
    for (const sp__krec *r = first; r && n < max_records; r = r->next) {
        size_t b = r->r.key.len + r->r.value.len;
        for (uint32_t i = 0; i < r->r.header_count; i++)
            b += r->r.headers[i].name.len + r->r.headers[i].value.len;
        if (n > 0 && bytes + b > max_bytes)
            break;
        n++, nh += r->r.header_count, bytes += b;
    }
    out->records_ = out->records = n ? sp_xcalloc(n, sizeof *out->records) : NULL;
    out->headers_ = nh ? sp_xcalloc(nh, sizeof *out->headers_) : NULL;
    out->data_ = sp_xmalloc(bytes ? bytes : 1);
    out->count = n;
    char *p = out->data_;
    sp_store_header *h = out->headers_;
    const sp__krec *r = first;
    for (size_t i = 0; i < n; i++, r = r->next) {
        sp_store_record *d = &out->records[i];
        *d = r->r;
        if (r->r.key.base) {
            memcpy(p, r->r.key.base, r->r.key.len);
            d->key = sp_slice_make(p, r->r.key.len);
            p += r->r.key.len;
        }
        if (r->r.value.len)
            memcpy(p, r->r.value.base, r->r.value.len);
        d->value = sp_slice_make(p, r->r.value.len);
        p += r->r.value.len;
        d->headers = r->r.header_count ? h : NULL;
        for (uint32_t k = 0; k < r->r.header_count; k++, h++) {
            const sp_store_header *s = &r->r.headers[k];
            memcpy(p, s->name.base, s->name.len);
            h->name = sp_slice_make(p, s->name.len);
            p += s->name.len;
            if (s->value.len)
                memcpy(p, s->value.base, s->value.len);
            h->value = sp_slice_make(p, s->value.len);
            p += s->value.len;
        }
    }
    return n;
}

/* ---- windows ------------------------------------------------------------------------- */

/* Caller holds wlock for writing. Keeps at least the newest record. */
static void win_push(sp__kafka *kb, sp__kwin *w, sp__krec *r)
{
    if (w->count == w->cap) { /* grow the ring, oldest first again */
        size_t cap = w->cap ? 2 * w->cap : 64;
        sp__krec **ring = sp_xmalloc(cap * sizeof *ring);
        for (size_t i = 0; i < w->count; i++)
            ring[i] = w->ring[(w->start + i) % w->cap];
        free(w->ring);
        w->ring = ring;
        w->cap = cap;
        w->start = 0;
    }
    w->ring[(w->start + w->count++) % w->cap] = r;
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    w->bytes += r->size;
    w->end = r->r.offset + 1;
    while (w->head != w->tail && w->bytes > kb->window_bytes) {
        sp__krec *old = w->head;
        w->head = old->next;
        w->bytes -= old->size;
        w->start = (w->start + 1) % w->cap;
        w->count--;
        free(old);
    }
}

/* The first record of the window at or above `from` (offsets ascend), or
 * NULL. Caller holds wlock. */
static const sp__krec *win_seek(const sp__kwin *w, uint64_t from)
{
    size_t lo = 0, hi = w->count; /* the answer is in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->ring[(w->start + mid) % w->cap]->r.offset < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < w->count ? w->ring[(w->start + lo) % w->cap] : NULL;
}

static void win_free(sp__kwin *w)
{
    sp__krec_free_list(w->head);
    free(w->ring);
    memset(w, 0, sizeof *w);
}

static sp_backend_watch *watch_find(sp__kafka *kb, const char *topic)
{
    for (sp_backend_watch *w = kb->watches; w; w = w->next)
        if (strcmp(w->topic, topic) == 0)
            return w;
    return NULL;
}

/* ---- the tail consumer ------------------------------------------------------------ */

typedef struct grown {
    sp_backend_watch *w;
    uint32_t partition;
} grown;

static void note_grown(grown *g, size_t *ng, sp_backend_watch *w, uint32_t p)
{
    for (size_t i = 0; i < *ng; i++)
        if (g[i].w == w && g[i].partition == p)
            return;
    g[(*ng)++] = (grown){w, p};
}

/* The watch a consumed message belongs to, or NULL (an error, a topic no
 * longer watched, a partition beyond the watch). */
static sp_backend_watch *message_watch(sp__kafka *kb, const rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            SP_LOG_WARN("kafka: tail consumer error",
                        SP_LF_STR("topic", m->rkt ? rd_kafka_topic_name(m->rkt) : "")
                            SP_LF_INT("partition", m->partition)
                                SP_LF_STR("detail", rd_kafka_message_errstr(m)));
        return NULL;
    }
    sp_backend_watch *w = watch_find(kb, rd_kafka_topic_name(m->rkt));
    if (!w || m->partition < 0 || (uint32_t)m->partition >= w->npart)
        return NULL;
    return w;
}

/* Files one consumed message into its window; false when it was already
 * there. */
static bool take_message(sp__kafka *kb, sp_backend_watch *w, rd_kafka_message_t *m)
{
    sp__kwin *win = &w->win[m->partition];
    if ((uint64_t)m->offset < win->end)
        return false; /* already have it */
    win_push(kb, win, sp__krec_new(m));
    sp__kafka_meta_note_end(kb, w->topic, (uint32_t)m->partition, win->end);
    return true;
}

/* Stores, for the group's next commit, the ends of the partitions the hub
 * has just taken (group mode). A partition revoked in the meantime is
 * refused (its new owner starts from the last commit): not an error. */
static void store_offsets(sp__kafka *kb, const grown *g, size_t ng)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)ng);
    for (size_t i = 0; i < ng; i++)
        rd_kafka_topic_partition_list_add(l, g[i].w->topic, (int32_t)g[i].partition)->offset =
            (int64_t)g[i].w->win[g[i].partition].end;
    rd_kafka_resp_err_t e = rd_kafka_offsets_store(kb->tail, l);
    if (e && e != RD_KAFKA_RESP_ERR__STATE)
        SP_LOG_DEBUG("kafka: storing offsets failed", SP_LF_STR("detail", rd_kafka_err2str(e)));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Announces every partition in g (the windows' ends) to its watch. */
static void announce(sp__kafka *kb, const grown *g, size_t ng)
{
    for (size_t i = 0; i < ng; i++)
        g[i].w->cb(g[i].w->arg, g[i].w->topic, g[i].partition, g[i].w->win[g[i].partition].end);
    if (kb->group && ng)
        store_offsets(kb, g, ng);
}

/* Up to DRAIN_BATCH messages, without waiting. A group consumer is polled
 * with rd_kafka_consumer_poll, which also runs the rebalance callback and
 * counts as the application's poll for max.poll.interval.ms. */
static size_t next_batch(sp__kafka *kb, sp__kq *kq, rd_kafka_message_t **msgs)
{
    if (!kb->group) {
        ssize_t n = rd_kafka_consume_batch_queue(kq->q, 0, msgs, DRAIN_BATCH);
        return n > 0 ? (size_t)n : 0;
    }
    size_t n = 0;
    rd_kafka_message_t *m;
    while (n < DRAIN_BATCH && (m = rd_kafka_consumer_poll(kb->tail, 0)) != NULL)
        msgs[n++] = m;
    return n;
}

/* Drains the tail queue, then announces every partition that grew. A
 * record above its window's end is preceded by the announcements so far
 * and a seek. Watches are only added and removed on this thread, so w
 * stays valid here. */
static void drain_tail(sp__kafka *kb, sp__kq *kq)
{
    rd_kafka_message_t *msgs[DRAIN_BATCH];
    grown g[DRAIN_BATCH];
    size_t n;
    while ((n = next_batch(kb, kq, msgs)) > 0) {
        size_t ng = 0;
        uv_rwlock_wrlock(&kb->wlock);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = msgs[i];
            sp_backend_watch *w = message_watch(kb, m);
            if (w && (uint64_t)m->offset > w->win[m->partition].end) {
                uv_rwlock_wrunlock(&kb->wlock);
                announce(kb, g, ng);
                ng = 0;
                w->seek(w->arg, w->topic, (uint32_t)m->partition, (uint64_t)m->offset);
                uv_rwlock_wrlock(&kb->wlock);
            }
            if (w && take_message(kb, w, m))
                note_grown(g, &ng, w, (uint32_t)m->partition);
            rd_kafka_message_destroy(m);
        }
        uv_rwlock_wrunlock(&kb->wlock);
        announce(kb, g, ng);
    }
}

/* Group mode: commits the stored offsets now and waits for the answer
 * (one round trip), so that the partitions' next owner, or the next member
 * after a restart, starts exactly after what the hub took. */
static void commit_now(sp__kafka *kb, const char *when)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(kb->tail, NULL, 0);
    if (e && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        SP_LOG_WARN("kafka: committing offsets failed",
                    SP_LF_STR("when", when) SP_LF_STR("detail", rd_kafka_err2str(e)));
}

/* Group mode: librdkafka's assignment, applied as it comes (eager or
 * cooperative), logged and counted. Runs inside rd_kafka_consumer_poll. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sp__kafka *kb = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (!assign) /* the next owner starts from here: what the hub took, now */
        commit_now(kb, "revoke");
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (coop)
        e = assign ? rd_kafka_incremental_assign(rk, parts)
                   : rd_kafka_incremental_unassign(rk, parts);
    else
        re = rd_kafka_assign(rk, assign ? parts : NULL);
    const char *why = e ? rd_kafka_error_string(e) : re ? rd_kafka_err2str(re) : NULL;
    if (why)
        SP_LOG_ERROR("kafka: applying the group's assignment failed", SP_LF_STR("detail", why));
    else
        SP_LOG_INFO(assign ? "kafka: the group assigned partitions"
                           : "kafka: the group revoked partitions",
                    SP_LF_INT("partitions", parts->cnt));
    if (e)
        rd_kafka_error_destroy(e);
    rd_kafka_topic_partition_list_t *now = NULL;
    int64_t held = 0;
    if (rd_kafka_assignment(rk, &now) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        held = now->cnt;
        rd_kafka_topic_partition_list_destroy(now);
    }
    uv_mutex_lock(&kb->stats.lock);
    kb->stats.rebalances++;
    kb->stats.group_partitions = held;
    uv_mutex_unlock(&kb->stats.lock);
}

static void on_group_timer(uv_timer_t *t)
{
    sp__kafka *kb = t->data;
    drain_tail(kb, &kb->tq);
}

/* Group mode: subscribes to every watched topic (an empty list leaves the
 * group's topics). On the backend thread. */
static void resubscribe(sp__kafka *kb)
{
    if (!kb->group)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (sp_backend_watch *w = kb->watches; w; w = w->next)
        rd_kafka_topic_partition_list_add(l, w->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e =
        l->cnt ? rd_kafka_subscribe(kb->tail, l) : rd_kafka_unsubscribe(kb->tail);
    if (e)
        SP_LOG_ERROR("kafka: subscribing the consumer group failed",
                     SP_LF_STR("detail", rd_kafka_err2str(e)));
    rd_kafka_topic_partition_list_destroy(l);
}

static void on_tail_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    SP_LOG_DEBUG("kafka: tail consumer error",
                 SP_LF_STR("error", rd_kafka_err2name(err)) SP_LF_STR("detail", reason));
}

static int on_tail_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    sp__kafka_stats_parse(opaque, json, len, false);
    return 0;
}

static void drain_tail_main(sp__kafka *kb, sp__kq *kq)
{
    (void)kq;
    while (rd_kafka_poll(kb->tail, 0) > 0) {
    }
}

int sp__kafka_tail_new(sp__kafka *kb, char *err, size_t errlen)
{
    rd_kafka_conf_t *c = rd_kafka_conf_dup(kb->cconf);
    rd_kafka_conf_set_opaque(c, kb);
    rd_kafka_conf_set_error_cb(c, on_tail_error);
    rd_kafka_conf_set_stats_cb(c, on_tail_stats);
    if (kb->group) {
        rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
        char e[256];
        /* Stored by announce() once the hub took the records. */
        rd_kafka_conf_set(c, "enable.auto.offset.store", "false", e, sizeof e);
    }
    kb->tail = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, errlen);
    if (!kb->tail) {
        rd_kafka_conf_destroy(c);
        return -EINVAL;
    }
    int rc = sp__kq_start(kb, &kb->tmq, rd_kafka_queue_get_main(kb->tail), drain_tail_main);
    if (rc == 0)
        rc = sp__kq_start(kb, &kb->tq,
                          kb->group ? rd_kafka_queue_get_consumer(kb->tail)
                                    : rd_kafka_queue_new(kb->tail),
                          drain_tail);
    if (rc) {
        snprintf(err, errlen, "kafka: cannot wire the consumer queues: %s", strerror(-rc));
        return rc;
    }
    if (kb->group) {
        uv_timer_init(&kb->loop.uv, &kb->group_timer);
        kb->group_timer.data = kb;
        uv_timer_start(&kb->group_timer, on_group_timer, 1000, 1000);
        uv_unref((uv_handle_t *)&kb->group_timer);
    }
    return 0;
}

static void watch_free(sp__kafka *kb, sp_backend_watch *w)
{
    for (uint32_t p = 0; p < w->npart; p++) {
        if (!kb->group)
            rd_kafka_consume_stop(w->rkt, (int32_t)p);
        win_free(&w->win[p]);
    }
    if (w->rkt)
        rd_kafka_topic_destroy(w->rkt);
    free(w->win);
    free(w->topic);
    free(w);
}

/* On the backend thread, at close. */
void sp__kafka_tail_close(sp__kafka *kb)
{
    uv_rwlock_wrlock(&kb->wlock);
    sp_backend_watch *w = kb->watches;
    kb->watches = NULL;
    uv_rwlock_wrunlock(&kb->wlock);
    while (w) {
        sp_backend_watch *next = w->next;
        watch_free(kb, w);
        w = next;
    }
    if (!kb->tail)
        return;
    if (kb->group) {
        /* Leaves the group, committing what announce() stored. */
        if (kb->group_timer.data)
            uv_close((uv_handle_t *)&kb->group_timer, NULL);
        commit_now(kb, "close");
        rd_kafka_resp_err_t e = rd_kafka_consumer_close(kb->tail);
        if (e)
            SP_LOG_WARN("kafka: leaving the consumer group failed",
                        SP_LF_STR("detail", rd_kafka_err2str(e)));
    }
    sp__kq_stop(&kb->tq);
    sp__kq_stop(&kb->tmq);
    rd_kafka_queue_destroy(kb->tq.q);
    rd_kafka_queue_destroy(kb->tmq.q);
    rd_kafka_destroy(kb->tail);
    kb->tail = NULL;
}

/* ---- watches ------------------------------------------------------------------------ */

typedef struct watch_req {
    const char *topic;
    const uint64_t *start;
    uint32_t npart;
    sp_store_tail_cb cb;
    sp_backend_seek_cb seek;
    void *arg;
    sp_backend_watch *w;
    int rc;
} watch_req;

static void watch_add_on_loop(sp__kafka *kb, void *arg)
{
    watch_req *q = arg;
    if (watch_find(kb, q->topic)) {
        q->rc = -EBUSY;
        return;
    }
    sp_backend_watch *w = sp_xcalloc(1, sizeof *w);
    w->topic = sp_xstrdup(q->topic);
    w->npart = q->npart;
    w->cb = q->cb;
    w->seek = q->seek;
    w->arg = q->arg;
    w->win = sp_xcalloc(q->npart, sizeof *w->win);
    for (uint32_t p = 0; p < q->npart; p++)
        w->win[p].end = q->start[p];
    if (!kb->group) { /* in a group, assignments start at committed offsets */
        w->rkt = rd_kafka_topic_new(kb->tail, q->topic, NULL);
        for (uint32_t p = 0; p < q->npart; p++)
            if (rd_kafka_consume_start_queue(w->rkt, (int32_t)p, (int64_t)q->start[p], kb->tq.q) !=
                0)
                SP_LOG_ERROR("kafka: cannot start consuming",
                             SP_LF_STR("topic", q->topic) SP_LF_INT("partition", p)
                                 SP_LF_STR("detail", rd_kafka_err2str(rd_kafka_last_error())));
    }
    uv_rwlock_wrlock(&kb->wlock);
    w->next = kb->watches;
    kb->watches = w;
    uv_rwlock_wrunlock(&kb->wlock);
    resubscribe(kb);
    q->w = w;
}

/* Where following starts (kafka.spate.start): the ends (latest), the log
 * starts from the watermark cache (earliest), or the group's committed
 * offsets, asked of the group coordinator (blocking, bounded by
 * spate.admin_timeout); a partition the group never committed starts
 * where auto.offset.reset says. */
int sp__kafka_follow_start(void *impl, const char *topic, uint32_t npart, uint64_t *start)
{
    sp__kafka *kb = impl;
    if (kb->start == SP__KSTART_LATEST)
        return 0;
    uint64_t lo, hi;
    if (kb->start == SP__KSTART_EARLIEST) {
        for (uint32_t p = 0; p < npart; p++) {
            sp__kafka_meta_bounds(kb, topic, p, &lo, &hi);
            start[p] = lo;
        }
        return 0;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)npart);
    for (uint32_t p = 0; p < npart; p++)
        rd_kafka_topic_partition_list_add(l, topic, (int32_t)p);
    rd_kafka_resp_err_t e = rd_kafka_committed(kb->tail, l, kb->admin_timeout_ms);
    for (int i = 0; e == RD_KAFKA_RESP_ERR_NO_ERROR && i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        uint32_t p = (uint32_t)tp->partition;
        if (p >= npart)
            continue;
        sp__kafka_meta_bounds(kb, topic, p, &lo, &hi);
        if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0)
            start[p] = (uint64_t)tp->offset;
        else if (kb->reset_earliest)
            start[p] = lo;
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        SP_LOG_WARN("kafka: reading the group's committed offsets failed",
                    SP_LF_STR("topic", topic) SP_LF_STR("detail", rd_kafka_err2str(e)));
    return sp__kafka_errno(e);
}

/* Follows `topic` from start[p] in each of its npart partitions. The
 * windows start empty at start[p]; cb runs on the backend thread. */
int sp__kafka_watch_add(void *impl, const char *topic, const uint64_t *start, uint32_t npart,
                        sp_store_tail_cb cb, sp_backend_seek_cb seek, void *arg,
                        sp_backend_watch **out)
{
    sp__kafka *kb = impl;
    if (npart == 0 || !cb || !seek)
        return -EINVAL;
    if (atomic_load(&kb->closing))
        return -ESHUTDOWN;
    int parts = sp__kafka_meta_partitions(kb, topic);
    if (parts < 0)
        return parts;
    if ((uint32_t)parts < npart)
        return -EINVAL;
    watch_req q = {topic, start, npart, cb, seek, arg, NULL, 0};
    sp__kafka_call(kb, watch_add_on_loop, &q);
    if (q.rc == 0)
        *out = q.w;
    return q.rc;
}

static void watch_remove_on_loop(sp__kafka *kb, void *arg)
{
    sp_backend_watch *w = arg, **pp;
    uv_rwlock_wrlock(&kb->wlock);
    for (pp = &kb->watches; *pp && *pp != w; pp = &(*pp)->next) {
    }
    if (*pp)
        *pp = w->next;
    uv_rwlock_wrunlock(&kb->wlock);
    resubscribe(kb);
    watch_free(kb, w);
}

static void watch_remove_later(sp_loop *loop, void *arg)
{
    watch_remove_on_loop(loop->uv.data, arg);
}

/* Runs on the backend thread between callbacks, so when it returns the
 * callback is not running; from inside a callback, the watch goes after
 * that callback returns (no callback of it runs in between: it is unlinked
 * now). */
void sp__kafka_watch_remove(void *impl, sp_backend_watch *w)
{
    sp__kafka *kb = impl;
    if (!w)
        return;
    if (sp__kafka_on_loop(kb)) {
        uv_rwlock_wrlock(&kb->wlock);
        sp_backend_watch **pp;
        for (pp = &kb->watches; *pp && *pp != w; pp = &(*pp)->next) {
        }
        if (*pp)
            *pp = w->next;
        w->next = NULL;
        uv_rwlock_wrunlock(&kb->wlock);
        resubscribe(kb);
        sp_loop_post(&kb->loop, watch_remove_later, w);
        return;
    }
    sp__kafka_call(kb, watch_remove_on_loop, w);
}

/* ---- reads ---------------------------------------------------------------------------- */

/* Serves a read from the window when `from` is inside it. Returns 1 when
 * served, 0 when the window does not cover `from`. */
static int read_window(sp__kafka *kb, const char *topic, uint32_t partition, uint64_t from,
                       size_t max_records, size_t max_bytes, sp_store_records *out)
{
    int served = 0;
    uv_rwlock_rdlock(&kb->wlock);
    sp_backend_watch *w = watch_find(kb, topic);
    if (w && partition < w->npart) {
        sp__kwin *win = &w->win[partition];
        uint64_t first = win->head ? win->head->r.offset : win->end;
        if (from >= first && from <= win->end) {
            size_t n = records_build(win_seek(win, from), from, max_records, max_bytes, out);
            out->next_offset = n ? out->records[n - 1].offset + 1 : win->end;
            out->end_offset = win->end;
            served = 1;
        }
    }
    uv_rwlock_rdunlock(&kb->wlock);
    if (served) {
        uint64_t end;
        sp__kafka_meta_bounds(kb, topic, partition, &out->start_offset, &end);
    }
    return served;
}

/* Fetches with the reader consumer; caller holds rlock. Collects messages
 * into a list until a limit, EOF or the deadline. */
static int fetch(sp__kafka *kb, rd_kafka_topic_t *rkt, uint32_t partition, uint64_t from,
                 size_t max_records, size_t max_bytes, sp__krec **list, uint64_t *eof_at)
{
    int32_t p = (int32_t)partition;
    if (rd_kafka_consume_start(rkt, p, (int64_t)from) != 0)
        return sp__kafka_errno(rd_kafka_last_error());
    sp__krec **tail = list;
    size_t n = 0, bytes = 0;
    int rc = 0;
    int64_t deadline = now_ms() + kb->read_timeout_ms;
    while (n < max_records && bytes < max_bytes) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            rc = n ? 0 : -ETIMEDOUT;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consume(rkt, p, (int)left);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            *eof_at = (uint64_t)m->offset;
            rd_kafka_message_destroy(m);
            break;
        }
        if (!m->err && (uint64_t)m->offset < from) {
            rc = -ERANGE; /* from was past the end: the reader reset to the start */
            rd_kafka_message_destroy(m);
            break;
        }
        if (m->err) {
            rc = sp__kafka_errno(m->err);
            SP_LOG_WARN("kafka: history fetch failed",
                        SP_LF_STR("topic", rd_kafka_topic_name(rkt)) SP_LF_INT("partition", p)
                            SP_LF_STR("detail", rd_kafka_message_errstr(m)));
            rd_kafka_message_destroy(m);
            break;
        }
        *tail = sp__krec_new(m);
        bytes += (*tail)->size;
        tail = &(*tail)->next;
        n++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consume_stop(rkt, p);
    return rc;
}

static int read_fetch(sp__kafka *kb, const char *topic, uint32_t partition, uint64_t from,
                      size_t max_records, size_t max_bytes, sp_store_records *out)
{
    if (max_bytes > kb->max_fetch_bytes)
        max_bytes = kb->max_fetch_bytes;
    sp__krec *list = NULL;
    uint64_t eof_at = UINT64_MAX;
    uv_mutex_lock(&kb->rlock);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(kb->reader, topic, NULL);
    int rc = fetch(kb, rkt, partition, from, max_records, max_bytes, &list, &eof_at);
    int64_t lo = 0, hi = 0; /* as of the last fetch response */
    rd_kafka_get_watermark_offsets(kb->reader, topic, (int32_t)partition, &lo, &hi);
    rd_kafka_topic_destroy(rkt);
    while (rd_kafka_poll(kb->reader, 0) > 0) {
    }
    uv_mutex_unlock(&kb->rlock);
    uv_mutex_lock(&kb->stats.lock);
    kb->stats.fetches++;
    uv_mutex_unlock(&kb->stats.lock);
    if (rc) {
        sp__krec_free_list(list);
        return rc;
    }
    size_t n = records_build(list, 0, max_records, max_bytes, out);
    out->next_offset = n ? out->records[n - 1].offset + 1 : (eof_at != UINT64_MAX ? eof_at : from);
    /* The partition's end, never just where this read stopped: a caller
     * that reached end_offset stops reading history (hub subscriptions go
     * live then). */
    uint64_t cstart, cend;
    sp__kafka_meta_bounds(kb, topic, partition, &cstart, &cend);
    out->end_offset = out->next_offset;
    if (eof_at != UINT64_MAX && eof_at > out->end_offset)
        out->end_offset = eof_at;
    if (hi > 0 && (uint64_t)hi > out->end_offset)
        out->end_offset = (uint64_t)hi;
    if (cend > out->end_offset)
        out->end_offset = cend;
    out->start_offset = lo > 0 ? (uint64_t)lo : cstart;
    sp__krec_free_list(list);
    return 0;
}

int sp__kafka_read(void *impl, const char *topic, uint32_t partition, uint64_t from,
                   size_t max_records, size_t max_bytes, sp_store_records *out)
{
    sp__kafka *kb = impl;
    memset(out, 0, sizeof *out);
    int parts = sp__kafka_meta_partitions(kb, topic);
    if (parts < 0)
        return parts;
    if (partition >= (uint32_t)parts)
        return -EINVAL;
    if (max_records == 0)
        max_records = 1;
    if (read_window(kb, topic, partition, from, max_records, max_bytes, out)) {
        uv_mutex_lock(&kb->stats.lock);
        kb->stats.window_hits++;
        uv_mutex_unlock(&kb->stats.lock);
        return 0;
    }
    return read_fetch(kb, topic, partition, from, max_records, max_bytes, out);
}
