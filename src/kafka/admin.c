/* admin.c - topics on Kafka: the metadata + watermark cache, the Admin API
 * (CreateTopics, DeleteTopics) and offsets for times.
 *
 * describe and list answer from the cache, so they never wait for the
 * network on an I/O loop; the cache is refreshed on libuv's thread pool
 * every spate.metadata_interval (a metadata request plus the watermarks of
 * every partition), raised as records are delivered and consumed, and
 * refreshed synchronously (bounded) for a topic the cache does not know
 * yet or whose watermarks were never read. Admin requests block their
 * caller for at most spate.admin_timeout, like the store's topic calls:
 * each waits on a private result queue; the backend thread is not
 * involved. All requests go through the reader's handle, which lives as
 * long as the backend. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"
#include "kafka/kafka_int.h"

#define MAX_TOPICS 10000

void sp__kafka_meta_init(sp__kafka *kb)
{
    uv_mutex_init(&kb->meta.lock);
}

static void topics_free(sp__ktopic *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].name);
        free(t[i].parts);
    }
    free(t);
}

void sp__kafka_meta_free(sp__kafka *kb)
{
    topics_free(kb->meta.topics, kb->meta.n);
    kb->meta.topics = NULL;
    kb->meta.n = 0;
    uv_mutex_destroy(&kb->meta.lock);
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp(((const sp__ktopic *)a)->name, ((const sp__ktopic *)b)->name);
}

/* Caller holds meta.lock. */
static sp__ktopic *find(sp__kafka *kb, const char *name)
{
    sp__ktopic key = {.name = (char *)name};
    if (kb->meta.n == 0)
        return NULL;
    return bsearch(&key, kb->meta.topics, kb->meta.n, sizeof key, cmp_topic);
}

/* Reads the watermarks of every partition of t (blocking). */
static void query_watermarks(sp__kafka *kb, sp__ktopic *t)
{
    for (uint32_t p = 0; p < t->npart; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(kb->reader, t->name, (int32_t)p, &lo, &hi,
                                             kb->admin_timeout_ms) == 0) {
            t->parts[p].start = (uint64_t)lo;
            t->parts[p].end = (uint64_t)hi;
        }
    }
}

/* Merges a fresh view into the cache: ends only grow (records consumed or
 * delivered since the query stay counted) unless the topic changed shape. */
static void merge(sp__kafka *kb, sp__ktopic *fresh, size_t n)
{
    uv_mutex_lock(&kb->meta.lock);
    for (size_t i = 0; i < n; i++) {
        sp__ktopic *old = find(kb, fresh[i].name);
        if (!old || old->npart != fresh[i].npart)
            continue;
        for (uint32_t p = 0; p < old->npart; p++)
            if (old->parts[p].end > fresh[i].parts[p].end)
                fresh[i].parts[p].end = old->parts[p].end;
    }
    sp__ktopic *prev = kb->meta.topics;
    size_t prevn = kb->meta.n;
    kb->meta.topics = fresh;
    kb->meta.n = n;
    uv_mutex_unlock(&kb->meta.lock);
    topics_free(prev, prevn);
}

int sp__kafka_meta_refresh(sp__kafka *kb)
{
    const rd_kafka_metadata_t *md;
    rd_kafka_resp_err_t e = rd_kafka_metadata(kb->reader, 1, NULL, &md, kb->admin_timeout_ms);
    if (e)
        return sp__kafka_errno(e);
    size_t n = 0;
    sp__ktopic *fresh = sp_xcalloc((size_t)md->topic_cnt + 1, sizeof *fresh);
    for (int i = 0; i < md->topic_cnt && n < MAX_TOPICS; i++) {
        const rd_kafka_metadata_topic_t *mt = &md->topics[i];
        if (mt->err || mt->partition_cnt <= 0 || strncmp(mt->topic, "__", 2) == 0)
            continue;
        sp__ktopic *t = &fresh[n++];
        t->name = sp_xstrdup(mt->topic);
        t->npart = (uint32_t)mt->partition_cnt;
        t->replication = (uint32_t)mt->partitions[0].replica_cnt;
        t->parts = sp_xcalloc(t->npart, sizeof *t->parts);
    }
    rd_kafka_metadata_destroy(md);
    qsort(fresh, n, sizeof *fresh, cmp_topic);
    for (size_t i = 0; i < n; i++)
        query_watermarks(kb, &fresh[i]);
    sp__kafka_producers_know(kb, fresh, n); /* before merge: fresh is ours until then */
    merge(kb, fresh, n);
    return 0;
}

static void refresh_work(uv_work_t *w)
{
    sp__kafka *kb = w->data;
    if (sp__kafka_meta_refresh(kb) != 0)
        sp__kafka_set_down(kb, true, "metadata request failed: no broker answered");
}

static void refresh_done(uv_work_t *w, int status)
{
    (void)status;
    sp__kafka *kb = w->data;
    kb->meta_busy = false;
}

static void on_meta_timer(uv_timer_t *t)
{
    sp__kafka *kb = t->data;
    if (kb->meta_busy || atomic_load(&kb->closing))
        return;
    kb->meta_busy = true;
    kb->meta_work.data = kb;
    uv_queue_work(&kb->loop.uv, &kb->meta_work, refresh_work, refresh_done);
}

void sp__kafka_meta_timer_start(sp__kafka *kb)
{
    uv_timer_start(&kb->meta_timer, on_meta_timer, (uint64_t)kb->metadata_interval_ms,
                   (uint64_t)kb->metadata_interval_ms);
}

/* True for one caller at most every MISS_REFRESH_MS, across threads. */
#define MISS_REFRESH_MS 1000
static bool miss_refresh_allowed(sp__kafka *kb)
{
    long long now = (long long)sp_time_now_ms();
    long long last = atomic_load(&kb->miss_refresh_ms);
    return now - last >= MISS_REFRESH_MS &&
           atomic_compare_exchange_strong(&kb->miss_refresh_ms, &last, now);
}

static void kick_refresh(sp_loop *loop, void *arg)
{
    sp__kafka *kb = arg;
    if (loop)                           /* NULL: posted as the backend closed */
        on_meta_timer(&kb->meta_timer); /* a no-op while a refresh runs */
}

/* Partition count from the cache. A miss on an I/O loop never waits for
 * the brokers (a client naming made-up topics must not stall its loop):
 * it asks the backend thread for a refresh, at most once a second, and
 * answers -ENOENT; the topic is known once that refresh is in. Before the
 * backend's loop runs, and on it, a miss refreshes synchronously. */
int sp__kafka_meta_partitions(sp__kafka *kb, const char *topic)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        uv_mutex_lock(&kb->meta.lock);
        sp__ktopic *t = find(kb, topic);
        int n = t ? (int)t->npart : -ENOENT;
        uv_mutex_unlock(&kb->meta.lock);
        if (n > 0 || attempt == 1 || !sp_store_topic_name_valid(topic))
            return n;
        if (kb->loop_started && !sp__kafka_on_loop(kb)) {
            if (miss_refresh_allowed(kb))
                sp_loop_post(&kb->loop, kick_refresh, kb);
            return n;
        }
        sp__kafka_meta_refresh(kb);
    }
    return -ENOENT;
}

void sp__kafka_meta_bounds(sp__kafka *kb, const char *topic, uint32_t partition, uint64_t *start,
                           uint64_t *end)
{
    *start = *end = 0;
    uv_mutex_lock(&kb->meta.lock);
    sp__ktopic *t = find(kb, topic);
    if (t && partition < t->npart) {
        *start = t->parts[partition].start;
        *end = t->parts[partition].end;
    }
    uv_mutex_unlock(&kb->meta.lock);
}

void sp__kafka_meta_note_end(sp__kafka *kb, const char *topic, uint32_t partition, uint64_t end)
{
    uv_mutex_lock(&kb->meta.lock);
    sp__ktopic *t = find(kb, topic);
    if (t && partition < t->npart && t->parts[partition].end < end)
        t->parts[partition].end = end;
    uv_mutex_unlock(&kb->meta.lock);
}

/* ---- topics ----------------------------------------------------------------------- */

int sp__kafka_topic_list(void *impl, char ***names, size_t *count)
{
    sp__kafka *kb = impl;
    uv_mutex_lock(&kb->meta.lock);
    *names = sp_xcalloc(kb->meta.n + 1, sizeof **names);
    for (size_t i = 0; i < kb->meta.n; i++)
        (*names)[i] = sp_xstrdup(kb->meta.topics[i].name);
    *count = kb->meta.n;
    uv_mutex_unlock(&kb->meta.lock);
    return 0;
}

int sp__kafka_topic_describe(void *impl, const char *name, sp_store_topic_info *out)
{
    sp__kafka *kb = impl;
    if (sp__kafka_meta_partitions(kb, name) < 0)
        return -ENOENT;
    memset(out, 0, sizeof *out);
    uv_mutex_lock(&kb->meta.lock);
    sp__ktopic *t = find(kb, name);
    if (!t) {
        uv_mutex_unlock(&kb->meta.lock);
        return -ENOENT;
    }
    snprintf(out->name, sizeof out->name, "%s", t->name);
    out->config.partitions = t->npart;
    out->config.replication = t->replication;
    out->partition_count = t->npart;
    out->partitions = sp_xcalloc(t->npart, sizeof *out->partitions);
    for (uint32_t p = 0; p < t->npart; p++) {
        sp_store_partition_info *pi = &out->partitions[p];
        pi->partition = p;
        pi->start_offset = t->parts[p].start;
        pi->end_offset = t->parts[p].end;
        pi->records = pi->end_offset > pi->start_offset ? pi->end_offset - pi->start_offset : 0;
    }
    uv_mutex_unlock(&kb->meta.lock);
    return 0;
}

/* Waits for one admin result event on q (bounded). */
static rd_kafka_event_t *admin_wait(sp__kafka *kb, rd_kafka_queue_t *q)
{
    return rd_kafka_queue_poll(q, kb->admin_timeout_ms + 1000);
}

static rd_kafka_AdminOptions_t *admin_options(sp__kafka *kb, rd_kafka_admin_op_t op)
{
    char e[256];
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(kb->reader, op);
    rd_kafka_AdminOptions_set_request_timeout(o, kb->admin_timeout_ms, e, sizeof e);
    if (op != RD_KAFKA_ADMIN_OP_ANY)
        rd_kafka_AdminOptions_set_operation_timeout(o, kb->admin_timeout_ms, e, sizeof e);
    return o;
}

static int topic_result(const char *what, const char *name, rd_kafka_event_t *ev,
                        const rd_kafka_topic_result_t **res, size_t cnt)
{
    if (!ev) {
        SP_LOG_WARN("kafka: admin request timed out",
                    SP_LF_STR("op", what) SP_LF_STR("topic", name));
        return -ETIMEDOUT;
    }
    rd_kafka_resp_err_t e = rd_kafka_event_error(ev);
    const char *why = rd_kafka_event_error_string(ev);
    if (!e && cnt > 0) {
        e = rd_kafka_topic_result_error(res[0]);
        why = rd_kafka_topic_result_error_string(res[0]);
    }
    if (e)
        SP_LOG_WARN("kafka: admin request failed", SP_LF_STR("op", what) SP_LF_STR("topic", name)
                                                       SP_LF_STR("error", rd_kafka_err2name(e))
                                                           SP_LF_STR("detail", why ? why : ""));
    return sp__kafka_errno(e);
}

static int new_topic_config(rd_kafka_NewTopic_t *nt, const char *k, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return rd_kafka_NewTopic_set_config(nt, k, buf) ? -EINVAL : 0;
}

/* Waits (bounded) until the metadata shows `name` present or absent. */
static void await_topic(sp__kafka *kb, const char *name, bool present)
{
    for (int i = 0; i < 50; i++) {
        sp__kafka_meta_refresh(kb);
        uv_mutex_lock(&kb->meta.lock);
        bool there = find(kb, name) != NULL;
        uv_mutex_unlock(&kb->meta.lock);
        if (there == present)
            return;
        uv_sleep(100);
    }
}

int sp__kafka_topic_create(void *impl, const char *name, const sp_store_topic_config *cfg)
{
    sp__kafka *kb = impl;
    char e[256];
    if (!sp_store_topic_name_valid(name) || cfg->partitions == 0 || cfg->partitions > 100000)
        return -EINVAL;
    int rf = cfg->replication ? (int)cfg->replication : -1;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, (int)cfg->partitions, rf, e, sizeof e);
    if (!nt)
        return -EINVAL;
    int rc = 0;
    if (cfg->retention_ms)
        rc |= new_topic_config(nt, "retention.ms", cfg->retention_ms < 0 ? -1 : cfg->retention_ms);
    if (cfg->retention_bytes)
        rc |= new_topic_config(nt, "retention.bytes", (long long)cfg->retention_bytes);
    if (cfg->segment_bytes)
        rc |= new_topic_config(nt, "segment.bytes", (long long)cfg->segment_bytes);
    if (rc) {
        rd_kafka_NewTopic_destroy(nt);
        return -EINVAL;
    }
    rd_kafka_AdminOptions_t *o = admin_options(kb, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(kb->reader);
    rd_kafka_CreateTopics(kb->reader, &nt, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(kb, q);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        ev ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt)
           : NULL;
    rc = topic_result("create", name, ev, res, cnt);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_NewTopic_destroy(nt);
    if (rc == 0)
        await_topic(kb, name, true);
    return rc;
}

int sp__kafka_topic_delete(void *impl, const char *name)
{
    sp__kafka *kb = impl;
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_AdminOptions_t *o = admin_options(kb, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_queue_t *q = rd_kafka_queue_new(kb->reader);
    rd_kafka_DeleteTopics(kb->reader, &dt, 1, o, q);
    rd_kafka_event_t *ev = admin_wait(kb, q);
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        ev ? rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt)
           : NULL;
    int rc = topic_result("delete", name, ev, res, cnt);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(o);
    rd_kafka_DeleteTopic_destroy(dt);
    if (rc == 0)
        await_topic(kb, name, false);
    return rc;
}

/* ---- offsets for times ----------------------------------------------------------- */

int sp__kafka_offset_for_time(void *impl, const char *topic, uint32_t partition, int64_t ts_ms,
                              uint64_t *offset)
{
    sp__kafka *kb = impl;
    int parts = sp__kafka_meta_partitions(kb, topic);
    if (parts < 0)
        return parts;
    if (partition >= (uint32_t)parts)
        return -EINVAL;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, (int32_t)partition)->offset = ts_ms;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(kb->reader, l, kb->admin_timeout_ms);
    if (!e)
        e = l->elems[0].err;
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    if (e)
        return sp__kafka_errno(e);
    if (off < 0) { /* no record that recent: the end */
        int64_t lo, hi;
        e = rd_kafka_query_watermark_offsets(kb->reader, topic, (int32_t)partition, &lo, &hi,
                                             kb->admin_timeout_ms);
        if (e)
            return sp__kafka_errno(e);
        off = hi;
    }
    *offset = (uint64_t)off;
    return 0;
}
