/* kafka_int.h - what the files of src/kafka share. Not for other modules.
 *
 * Threads and locks (see docs/internals/KAFKA.md):
 *  - the backend thread (kb->loop) runs every librdkafka callback we ask
 *    for (delivery reports, errors, statistics) and every hub callback;
 *  - any thread may call the vtable; what they share is guarded by
 *      plock  (rwlock) the producer pointers (recreated after a fatal error),
 *      lanes.lock      which producer lane new appends take (produce.c),
 *      wlock  (rwlock) the watch list and the in-memory windows,
 *      meta.lock       the metadata + watermark cache,
 *      rlock           the reader consumer (one history fetch at a time),
 *      stats.lock      the last parsed statistics and readiness. */
#ifndef SP_KAFKA_KAFKA_INT_H
#define SP_KAFKA_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/loop.h"
#include "kafka/kafka.h"

typedef struct sp__kafka sp__kafka;

/* A librdkafka queue wired into the backend loop: librdkafka writes one
 * byte to fds[1] when the queue becomes non-empty; the uv_poll on fds[0]
 * calls drain, which empties the queue. */
typedef struct sp__kq {
    uv_poll_t poll;
    int fds[2];
    rd_kafka_queue_t *q;
    void (*drain)(sp__kafka *kb, struct sp__kq *kq);
    bool started;
    bool heap; /* freed by sp__kq_stop's close callback */
} sp__kq;

/* One record kept in memory (window) or fetched: r's slices point into
 * the bytes allocated after the struct. */
typedef struct sp__krec {
    struct sp__krec *next;
    size_t size; /* bytes counted against the window */
    sp_store_record r;
} sp__krec;

/* A partition's window: a list (oldest first) and, to find an offset in
 * O(log n) rather than by walking up to the whole window on every read,
 * a ring of the same nodes in the same order. */
typedef struct sp__kwin {
    sp__krec *head, *tail;
    sp__krec **ring; /* ring[(start + i) % cap], i < count: the list's nodes */
    size_t cap, start, count;
    size_t bytes;
    uint64_t end; /* offset the tail expects next: last consumed + 1 */
} sp__kwin;

struct sp_backend_watch {
    struct sp_backend_watch *next;
    char *topic;
    rd_kafka_topic_t *rkt; /* tail consumer's handle */
    uint32_t npart;
    sp__kwin *win; /* npart windows */
    sp_store_tail_cb cb;
    sp_backend_seek_cb seek;
    void *arg;
};

typedef struct sp__kpart {
    uint64_t start, end; /* watermarks */
} sp__kpart;

typedef struct sp__ktopic {
    char *name;
    uint32_t npart;
    uint32_t replication;
    sp__kpart *parts;
} sp__ktopic;

typedef struct sp__kmeta {
    uv_mutex_t lock;
    sp__ktopic *topics; /* sorted by name */
    size_t n;
    uint32_t rr; /* round-robin for keyless appends */
} sp__kmeta;

/* Producer lanes (produce.c): the busy lane is the producer configured by
 * the user (linger.ms 1 by default: batches under load); the quiet lane,
 * linger.ms 0 and one request in flight per broker, serves appends made
 * one at a time, whose wait would otherwise be mostly linger. */
enum { SP__LANE_BUSY = 0, SP__LANE_QUIET = 1, SP__LANES = 2 };

/* Which lane new appends take. Every pending append is on lane `cur`: the
 * lane changes only when no append is pending, so two appends to one
 * partition are never in two producers at once (no reordering). */
typedef struct sp__klanes {
    uv_mutex_t lock;
    long pending; /* appends awaiting their reports */
    long peak;    /* most pending at once since pending was last 0 */
    int cur;
    uint64_t appends[SP__LANES]; /* appends each lane took (metrics) */
} sp__klanes;

typedef struct sp__kstats {
    uv_mutex_t lock;
    /* producer */
    int64_t msg_cnt, msg_size, inflight, txerrs, rxerrs, brokers_up, brokers;
    int64_t rtt_avg_us, rtt_p99_us; /* worst broker */
    /* tail consumer */
    int64_t lag_total;
    char *lag_text; /* Prometheus lines, per partition */
    int64_t tail_brokers_up;
    /* readiness */
    bool all_down;
    char why[256];
    /* counters */
    uint64_t delivered, failed, fatal_recreates, fetches, window_hits, rebalances;
    int64_t group_partitions; /* assigned to this instance (group mode) */
} sp__kstats;

/* Where the tail starts following a topic (kafka.spate.start). */
typedef enum sp__kstart {
    SP__KSTART_LATEST,    /* the partition ends: only new records (no group) */
    SP__KSTART_EARLIEST,  /* the log starts: every retained record */
    SP__KSTART_COMMITTED, /* the group's committed offsets (group mode) */
} sp__kstart;

struct sp__kafka {
    sp_loop loop;
    bool loop_started;
    /* templates, rd_kafka_conf_dup'ed per handle; qconf is the quiet
     * lane's producer (NULL when spate.quiet_max_pending is 0) */
    rd_kafka_conf_t *pconf, *qconf, *cconf, *rconf;
    uv_rwlock_t plock;
    rd_kafka_t *producer[SP__LANES]; /* [SP__LANE_QUIET] NULL without a quiet lane */
    sp__klanes lanes;
    rd_kafka_t *tail;
    rd_kafka_t *reader;
    uv_mutex_t rlock;
    sp__kq *pq[SP__LANES]; /* producer main queues (heap: replaced with the producer) */
    sp__kq tmq, tq;        /* tail consumer: main queue, messages */
    /* Group mode (kafka.group.id): the tail consumer subscribes to the
     * watched topics in that group instead of assigning every partition;
     * offsets are stored once the hub took the records and committed by
     * librdkafka (enable.auto.commit). The timer polls it at least once a
     * second, as max.poll.interval.ms requires even when nothing arrives. */
    bool group;
    bool reset_earliest; /* auto.offset.reset: where uncommitted partitions start */
    sp__kstart start;
    uv_timer_t group_timer;
    atomic_long pending;
    atomic_bool closing;
    uv_rwlock_t wlock;
    sp_backend_watch *watches;
    sp__kmeta meta;
    uv_timer_t meta_timer;
    uv_work_t meta_work;
    /* When a lookup of a topic the cache does not know last refreshed the
     * metadata (ms): such refreshes block an I/O loop, so a client asking
     * for made-up topic names gets at most one per second. */
    atomic_llong miss_refresh_ms;
    bool meta_busy;
    sp__kstats stats;
    /* spate.* settings */
    int read_timeout_ms, admin_timeout_ms, metadata_interval_ms, flush_timeout_ms;
    size_t window_bytes, max_fetch_bytes;
    long max_pending;
    /* An append takes the quiet lane when no append is pending and at
     * most this many were pending at once since the last time none was
     * (1: only producers that wait for each ack; 0: no quiet lane). */
    int quiet_max_pending;
};

/* kafka.c */
bool sp__kafka_on_loop(sp__kafka *kb);
/* Runs fn(kb, arg) on the backend thread and waits for it (directly when
 * already there). */
void sp__kafka_call(sp__kafka *kb, void (*fn)(sp__kafka *, void *), void *arg);
int sp__kq_start(sp__kafka *kb, sp__kq *kq, rd_kafka_queue_t *q,
                 void (*drain)(sp__kafka *, sp__kq *));
void sp__kq_stop(sp__kq *kq);
int sp__kafka_errno(rd_kafka_resp_err_t e);
void sp__kafka_stats_parse(sp__kafka *kb, const char *json, size_t len, bool producer);
void sp__kafka_set_down(sp__kafka *kb, bool down, const char *why);

/* produce.c */
/* Tests: raises a fatal error in the producer, as a broker could. */
void sp__kafka_test_fatal(sp__kafka *kb);
int sp__kafka_producer_new(sp__kafka *kb, char *err, size_t errlen);
int sp__kafka_append(void *impl, const char *topic, int32_t partition, const sp_store_record *recs,
                     size_t n, sp_store_append_cb cb, void *arg);
int sp__kafka_partition_for_key(void *impl, const char *topic, sp_slice key);
void sp__kafka_producer_close(sp__kafka *kb);
/* Makes every producer lane know these topics, so that a lane's first
 * append to one does not wait for librdkafka's once-a-second scan of
 * unknown topics (any thread). */
void sp__kafka_producers_know(sp__kafka *kb, const sp__ktopic *topics, size_t n);
/* Appends each lane took since open (tests, metrics). */
void sp__kafka_lane_counts(sp__kafka *kb, uint64_t out[SP__LANES]);
int sp__kafka_flush(void *impl);

/* tail.c */
int sp__kafka_tail_new(sp__kafka *kb, char *err, size_t errlen);
void sp__kafka_tail_close(sp__kafka *kb);
int sp__kafka_follow_start(void *impl, const char *topic, uint32_t npart, uint64_t *start);
int sp__kafka_watch_add(void *impl, const char *topic, const uint64_t *start, uint32_t npart,
                        sp_store_tail_cb cb, sp_backend_seek_cb seek, void *arg,
                        sp_backend_watch **out);
void sp__kafka_watch_remove(void *impl, sp_backend_watch *w);
int sp__kafka_read(void *impl, const char *topic, uint32_t partition, uint64_t from,
                   size_t max_records, size_t max_bytes, sp_store_records *out);
sp__krec *sp__krec_new(const rd_kafka_message_t *m);
void sp__krec_free_list(sp__krec *r);

/* admin.c */
void sp__kafka_meta_init(sp__kafka *kb);
void sp__kafka_meta_free(sp__kafka *kb);
/* Refreshes metadata and watermarks now, on the calling thread (blocking,
 * bounded by admin_timeout_ms). Returns 0 or a negative errno. */
int sp__kafka_meta_refresh(sp__kafka *kb);
void sp__kafka_meta_timer_start(sp__kafka *kb);
/* Partition count of topic from the cache, or -ENOENT. */
int sp__kafka_meta_partitions(sp__kafka *kb, const char *topic);
/* Cached watermarks of topic/partition (0, 0 when unknown). */
void sp__kafka_meta_bounds(sp__kafka *kb, const char *topic, uint32_t partition, uint64_t *start,
                           uint64_t *end);
/* Raises the cached end of topic/partition to at least end. */
void sp__kafka_meta_note_end(sp__kafka *kb, const char *topic, uint32_t partition, uint64_t end);
int sp__kafka_topic_create(void *impl, const char *name, const sp_store_topic_config *cfg);
int sp__kafka_topic_delete(void *impl, const char *name);
int sp__kafka_topic_list(void *impl, char ***names, size_t *count);
int sp__kafka_topic_describe(void *impl, const char *name, sp_store_topic_info *out);
int sp__kafka_offset_for_time(void *impl, const char *topic, uint32_t partition, int64_t ts_ms,
                              uint64_t *offset);

#endif
