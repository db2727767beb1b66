/* hub_int.h - structures shared by the files of src/hub (sp__ tier).
 *
 * hub.c owns the registry, the per-loop caches and delivery from the store
 * thread; sub.c owns live subscriptions, which hang off the same per-loop
 * structures; cursor.c parses and formats resume points. */
#ifndef SP_HUB_INT_H
#define SP_HUB_INT_H

#include "hub/backend.h"
#include "hub/hub.h"

/* A topic as the registry knows it. Refcounted: a subscription or a
 * handler may hold it while another loop deletes the topic. */
typedef struct sp__hub_topic {
    atomic_uint refs;
    struct sp_hub *hub;
    char *name;
    uint32_t partitions;
    sp_hub_schema *schema; /* NULL: none */
    char *schema_text;
    size_t schema_len;
    sp_backend_watch *watch;
    uint64_t *cursor;  /* per partition: next offset to deliver; store thread only */
    atomic_uint nsubs; /* live subscriptions on every loop */
} sp__hub_topic;

/* One loop's view of one topic: the ring of its newest records and the
 * subscriptions that live on this loop. Stored by value in an open
 * addressing table that moves on growth: never keep a pointer to it
 * across a call that may add a topic. */
typedef struct sp__hub_ring {
    char *name;
    sp_hub_rec **slots; /* latest_n entries; slots[(head - 1) % n] is the newest */
    size_t head, count;
    sp_hub_sub *subs; /* doubly linked through sp_hub_sub.prev/next */
} sp__hub_ring;

/* Per-loop subscription figures: written by the owning loop only, summed
 * racily by sp_hub_metrics (relaxed atomics, like the HTTP counters). */
typedef struct sp__hub_sub_stats {
    int64_t subscribers, queued_records, queued_bytes, lag_records; /* gauges */
    uint64_t subscribes, records_sent, catchup_records, gaps, gap_records;
    uint64_t skips, slow_disconnects;
} sp__hub_sub_stats;

#define SP__HUB_STAT_ADD(field, n)                                                                 \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define SP__HUB_STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

typedef struct sp__hub_local {
    sp__hub_ring *rings; /* open addressing on name */
    size_t cap, used;
    /* subscriptions (sub.c) */
    sp_hub_sub *runq_head, *runq_tail; /* waiting for a catch-up step */
    bool pump_posted;                  /* a pump message is in the inbox */
    unsigned depth;                    /* > 0 while the hub runs subscriber callbacks */
    sp_hub_sub *graveyard;             /* unsubscribed while depth > 0 */
    sp_hub_sub **scratch;              /* notify list of one delivery */
    size_t scratch_cap;
    sp__hub_sub_stats stats;
} sp__hub_local;

struct sp_hub {
    sp_backend *be;
    /* Subscriptions read the log on libuv's thread pool instead of their
     * loop: a backend whose reads may wait on the network (Kafka). The
     * embedded store reads from the page cache, inline. */
    bool async_reads;
    char *schema_dir;
    sp_hub_options opts;
    uv_rwlock_t lock; /* guards topics/ntopics */
    /* Serializes changes of the topic set (create, delete, adopt) so a
     * topic is registered once and a deleted one is not adopted back. */
    uv_mutex_t change_lock;
    sp__hub_topic **topics;
    size_t ntopics;
    sp_loop *loops;
    unsigned nloops;
    sp__hub_local *locals; /* one per loop, touched only on that loop */
    atomic_ullong produce_failures, records_delivered;
    /* Topic drops posted to the loops and not yet applied by all of them:
     * while non-zero, a loop's cache may still hold a deleted topic, so
     * sp_hub_latest double-checks the registry. */
    atomic_uint drops_pending;
};

/* hub.c */
/* Returns the topic with a reference, or NULL. A topic the backend has and
 * the registry does not (created by another spate on the same Kafka, or by
 * a Kafka tool) is adopted on first use. Call on an I/O loop. */
sp__hub_topic *sp__hub_topic_get(sp_hub *hub, const char *name);
void sp__hub_topic_unref(sp__hub_topic *t);
sp__hub_ring *sp__hub_ring_find(sp__hub_local *l, const char *name);
sp__hub_ring *sp__hub_ring_add(sp__hub_local *l, const char *name, size_t latest_n);
/* Wraps one stored record: the envelope and its SSE frame encoded once. */
sp_hub_rec *sp__hub_rec_make(uint32_t partition, const sp_store_record *in);

/* sub.c, called on the loop by hub.c's message handlers */
void sp__hub_subs_deliver(sp__hub_local *l, sp__hub_ring *r, sp_hub_rec *const *recs, size_t n);
/* The ring's topic is going away on this loop: every subscription on it
 * ends with SP_HUB_END_DELETED and is detached from the ring. */
void sp__hub_subs_topic_gone(sp__hub_local *l, sp__hub_ring *r);
/* Frees whatever subscriptions are left on a stopped loop. */
void sp__hub_subs_free_local(sp__hub_local *l);

#endif
