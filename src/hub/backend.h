/* backend.h - the log under the hub: one interface, two implementations.
 *
 * Everything above the hub (REST, WebSocket, SSE, caches, declared routes)
 * talks to a log through this table, never to an implementation:
 *
 *   embedded  src/store (sp_store_*), wrapped by backend_store.c
 *   kafka     src/kafka (librdkafka), sp_kafka_backend_open in kafka.h
 *
 * The contract of every operation is the embedded store's, as written in
 * store/store.h (same argument order, same record/ack/info types, same
 * negative-errno results), with the differences named here:
 *
 *  - Threads. Callbacks (append completions, tail notifications) run on the
 *    backend's own thread: the store thread, or the Kafka backend's event
 *    loop thread. The hub forwards them to I/O loops; they must be short.
 *  - Visibility. A record is readable and announced to watchers once the
 *    backend has it durably: embedded after the fsync covering it (or the
 *    write in interval/never modes); Kafka once it is consumed back from
 *    the broker, so every spate instance sees the same order and offsets.
 *  - Offsets. Dense from the log start in the embedded store. In Kafka an
 *    offset may be skipped (transaction markers, compaction); a read then
 *    returns the next existing record and callers must not assume
 *    records[i].offset == from + i.
 *  - Reads. `read` may block for a bounded time on the Kafka backend when
 *    the requested offsets are older than what it keeps in memory (a fetch
 *    from the broker, bounded by kafka read timeout); newer offsets are
 *    served from memory like the store's page cache.
 *  - describe. partition_info.bytes and .segments are 0 on Kafka; start and
 *    end offsets come from the last known watermarks (never a blocking
 *    round trip on an I/O loop).
 *
 * Lifetime: the owner opens a backend, hands it to the hub, and closes it
 * after sp_hub_detach (close completes every pending append). */
#ifndef SP_HUB_BACKEND_H
#define SP_HUB_BACKEND_H

#include "core/buf.h"
#include "store/store.h"

typedef struct sp_backend sp_backend;
typedef struct sp_backend_watch sp_backend_watch; /* opaque to callers */

/* Runs on the backend thread, between tail callbacks: following `topic`
 * resumed at `offset` in `partition`, above the end last announced; the
 * offsets in between will not be announced. Kafka calls it when offsets
 * were skipped (compaction, transaction markers) or when a consumer group
 * handed this instance a partition whose committed offset is ahead (its
 * records were processed by another member). The embedded store never
 * calls it. */
typedef void (*sp_backend_seek_cb)(void *arg, const char *topic, uint32_t partition,
                                   uint64_t offset);

typedef struct sp_backend_ops {
    const char *name; /* "embedded" or "kafka": shown in /readyz and logs */
    void (*close)(void *impl);
    int (*flush)(void *impl);
    int (*topic_create)(void *impl, const char *name, const sp_store_topic_config *cfg);
    int (*topic_delete)(void *impl, const char *name);
    int (*topic_list)(void *impl, char ***names, size_t *count);
    int (*topic_describe)(void *impl, const char *name, sp_store_topic_info *out);
    int (*append)(void *impl, const char *topic, int32_t partition, const sp_store_record *recs,
                  size_t n, sp_store_append_cb cb, void *arg);
    int (*partition_for_key)(void *impl, const char *topic, sp_slice key);
    int (*read)(void *impl, const char *topic, uint32_t partition, uint64_t from,
                size_t max_records, size_t max_bytes, sp_store_records *out);
    int (*offset_for_time)(void *impl, const char *topic, uint32_t partition, int64_t ts_ms,
                           uint64_t *offset);
    /* Where following `topic` begins in each of its npart partitions:
     * called with start[p] = the end offsets from topic_describe, it may
     * move them (Kafka: kafka.spate.start=earliest gives the log starts, a
     * consumer group its committed offsets). Blocks for at most the
     * backend's admin timeout. Optional: NULL keeps the ends. */
    int (*follow_start)(void *impl, const char *topic, uint32_t npart, uint64_t *start);
    /* Follows `topic` from start[p] in every partition p (what
     * follow_start chose); cb announces new ends, seek jumps (above). */
    int (*watch_add)(void *impl, const char *topic, const uint64_t *start, uint32_t npart,
                     sp_store_tail_cb cb, sp_backend_seek_cb seek, void *arg,
                     sp_backend_watch **out);
    void (*watch_remove)(void *impl, sp_backend_watch *w);
    /* 0 when the backend can take appends and serve reads; otherwise a
     * negative errno and a one-line reason in `why` (for /readyz). */
    int (*ready)(void *impl, char *why, size_t whylen);
    /* Appends Prometheus text (spate_backend_* or spate_kafka_* families). */
    void (*metrics)(void *impl, sp_buf *out);
} sp_backend_ops;

struct sp_backend {
    const sp_backend_ops *ops;
    void *impl;
};

/* The embedded store as a backend (backend_store.c). The backend owns the
 * store from then on: sp_backend_close closes it. */
sp_backend *sp_backend_store_new(sp_store *store);
/* The store behind an embedded backend, or NULL for another kind (used by
 * the embedded-only parts: `spate log`, store metrics). */
sp_store *sp_backend_store(sp_backend *b);

/* Closes the implementation (see its close) and frees b. NULL is a no-op. */
void sp_backend_close(sp_backend *b);

/* Thin wrappers, so call sites read like the store's API. */
static inline int sp_backend_flush(sp_backend *b)
{
    return b->ops->flush(b->impl);
}
static inline int sp_backend_topic_create(sp_backend *b, const char *name,
                                          const sp_store_topic_config *cfg)
{
    return b->ops->topic_create(b->impl, name, cfg);
}
static inline int sp_backend_topic_delete(sp_backend *b, const char *name)
{
    return b->ops->topic_delete(b->impl, name);
}
static inline int sp_backend_topic_list(sp_backend *b, char ***names, size_t *count)
{
    return b->ops->topic_list(b->impl, names, count);
}
static inline int sp_backend_topic_describe(sp_backend *b, const char *name,
                                            sp_store_topic_info *out)
{
    return b->ops->topic_describe(b->impl, name, out);
}
static inline int sp_backend_append(sp_backend *b, const char *topic, int32_t partition,
                                    const sp_store_record *recs, size_t n, sp_store_append_cb cb,
                                    void *arg)
{
    return b->ops->append(b->impl, topic, partition, recs, n, cb, arg);
}
static inline int sp_backend_partition_for_key(sp_backend *b, const char *topic, sp_slice key)
{
    return b->ops->partition_for_key(b->impl, topic, key);
}
static inline int sp_backend_read(sp_backend *b, const char *topic, uint32_t partition,
                                  uint64_t from, size_t max_records, size_t max_bytes,
                                  sp_store_records *out)
{
    return b->ops->read(b->impl, topic, partition, from, max_records, max_bytes, out);
}
static inline int sp_backend_offset_for_time(sp_backend *b, const char *topic, uint32_t partition,
                                             int64_t ts_ms, uint64_t *offset)
{
    return b->ops->offset_for_time(b->impl, topic, partition, ts_ms, offset);
}
static inline int sp_backend_follow_start(sp_backend *b, const char *topic, uint32_t npart,
                                          uint64_t *start)
{
    return b->ops->follow_start ? b->ops->follow_start(b->impl, topic, npart, start) : 0;
}
static inline int sp_backend_watch_add(sp_backend *b, const char *topic, const uint64_t *start,
                                       uint32_t npart, sp_store_tail_cb cb, sp_backend_seek_cb seek,
                                       void *arg, sp_backend_watch **out)
{
    return b->ops->watch_add(b->impl, topic, start, npart, cb, seek, arg, out);
}
static inline void sp_backend_watch_remove(sp_backend *b, sp_backend_watch *w)
{
    b->ops->watch_remove(b->impl, w);
}
static inline int sp_backend_ready(sp_backend *b, char *why, size_t whylen)
{
    return b->ops->ready(b->impl, why, whylen);
}
static inline void sp_backend_metrics(sp_backend *b, sp_buf *out)
{
    b->ops->metrics(b->impl, out);
}
static inline const char *sp_backend_name(const sp_backend *b)
{
    return b->ops->name;
}

#endif
