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
 * the exception, and this bounds what they cost the broker. */
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
        free(old);
    }
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

/* Files one consumed message; returns the watch it grew or NULL. */
static sp_backend_watch *take_message(sp__kafka *kb, rd_kafka_message_t *m)
{
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            SP_LOG_WARN("kafka: tail consumer error",
                        SP_LF_STR("topic", m->rkt ? rd_kafka_topic_name(m->rkt) : "")
                            SP_LF_INT("partition", m->partition)
                                SP_LF_STR("detail", rd_kafka_message_errstr(m)));
        return NULL;
    }
    const char *topic = rd_kafka_topic_name(m->rkt);
    sp_backend_watch *w = watch_find(kb, topic);
    if (!w || m->partition < 0 || (uint32_t)m->partition >= w->npart)
        return NULL;
    sp__kwin *win = &w->win[m->partition];
    if ((uint64_t)m->offset < win->end)
        return NULL; /* already have it */
    win_push(kb, win, sp__krec_new(m));
    sp__kafka_meta_note_end(kb, topic, (uint32_t)m->partition, win->end);
    return w;
}

/* Drains the tail queue, then announces every partition that grew. Watches
 * are only added and removed on this thread, so w stays valid here. */
static void drain_tail(sp__kafka *kb, sp__kq *kq)
{
    rd_kafka_message_t *msgs[DRAIN_BATCH];
    grown g[DRAIN_BATCH];
    ssize_t n;
    while ((n = rd_kafka_consume_batch_queue(kq->q, 0, msgs, DRAIN_BATCH)) > 0) {
        size_t ng = 0;
        uv_rwlock_wrlock(&kb->wlock);
        for (ssize_t i = 0; i < n; i++) {
            sp_backend_watch *w = take_message(kb, msgs[i]);
            if (w)
                note_grown(g, &ng, w, (uint32_t)msgs[i]->partition);
            rd_kafka_message_destroy(msgs[i]);
        }
        uv_rwlock_wrunlock(&kb->wlock);
        for (size_t i = 0; i < ng; i++)
            g[i].w->cb(g[i].w->arg, g[i].w->topic, g[i].partition, g[i].w->win[g[i].partition].end);
    }
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
    kb->tail = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, errlen);
    if (!kb->tail) {
        rd_kafka_conf_destroy(c);
        return -EINVAL;
    }
    int rc = sp__kq_start(kb, &kb->tmq, rd_kafka_queue_get_main(kb->tail), drain_tail_main);
    if (rc == 0)
        rc = sp__kq_start(kb, &kb->tq, rd_kafka_queue_new(kb->tail), drain_tail);
    if (rc)
        snprintf(err, errlen, "kafka: cannot wire the consumer queues: %s", strerror(-rc));
    return rc;
}

static void watch_free(sp__kafka *kb, sp_backend_watch *w)
{
    for (uint32_t p = 0; p < w->npart; p++) {
        rd_kafka_consume_stop(w->rkt, (int32_t)p);
        sp__krec_free_list(w->win[p].head);
    }
    (void)kb;
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
    w->arg = q->arg;
    w->win = sp_xcalloc(q->npart, sizeof *w->win);
    w->rkt = rd_kafka_topic_new(kb->tail, q->topic, NULL);
    for (uint32_t p = 0; p < q->npart; p++) {
        w->win[p].end = q->start[p];
        if (rd_kafka_consume_start_queue(w->rkt, (int32_t)p, (int64_t)q->start[p], kb->tq.q) != 0)
            SP_LOG_ERROR("kafka: cannot start consuming",
                         SP_LF_STR("topic", q->topic) SP_LF_INT("partition", p)
                             SP_LF_STR("detail", rd_kafka_err2str(rd_kafka_last_error())));
    }
    uv_rwlock_wrlock(&kb->wlock);
    w->next = kb->watches;
    kb->watches = w;
    uv_rwlock_wrunlock(&kb->wlock);
    q->w = w;
}

/* Follows `topic` from start[p] in each of its npart partitions. The
 * windows start empty at start[p]; cb runs on the backend thread. */
int sp__kafka_watch_add(void *impl, const char *topic, const uint64_t *start, uint32_t npart,
                        sp_store_tail_cb cb, void *arg, sp_backend_watch **out)
{
    sp__kafka *kb = impl;
    if (npart == 0 || !cb)
        return -EINVAL;
    if (atomic_load(&kb->closing))
        return -ESHUTDOWN;
    int parts = sp__kafka_meta_partitions(kb, topic);
    if (parts < 0)
        return parts;
    if ((uint32_t)parts < npart)
        return -EINVAL;
    watch_req q = {topic, start, npart, cb, arg, NULL, 0};
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
            size_t n = records_build(win->head, from, max_records, max_bytes, out);
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
