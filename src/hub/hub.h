/* hub.h - topics, produce, and the newest records of each topic, per loop.
 *
 * The hub sits between the API and a backend (hub/backend.h: the embedded
 * store or Kafka; nothing here knows which). It owns three things:
 *
 *  - Topic metadata the backend does not keep: each topic's JSON Schema,
 *    compiled once, persisted under <data_dir>/schemas/.
 *  - Produce with completion on the caller's loop: the backend acknowledges
 *    on its own thread; the hub posts the ack to the loop that asked, so a
 *    handler never sees another thread.
 *  - The latest-N cache. When the backend announces new durable records,
 *    the hub reads them once, wraps each in an immutable refcounted
 *    sp_hub_rec whose JSON envelope is encoded once, and hands references
 *    to every I/O loop. Each loop keeps its own ring of the newest records
 *    per topic, so GET /latest reads without a lock.
 *  - Subscriptions (sub.c, docs/internals/STREAMS.md): a cursor per
 *    subscriber that catches up from the log and then follows the same
 *    per-loop deliveries, with a bounded queue and a slow-consumer policy.
 *
 * Threads: sp_hub_produce, sp_hub_latest, the subscription functions and
 * the topic functions are called on I/O loops; create/delete block
 * briefly on the backend. */
#ifndef SP_HUB_HUB_H
#define SP_HUB_HUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "hub/backend.h"
#include "store/store.h"

typedef struct sp_hub sp_hub;

/* One record as the hub shares it: immutable, refcounted, shared by every
 * loop and subscriber. `json` is the envelope {"id","partition","offset",
 * "timestamp","key","value"}; `value` is the raw value. `sse` is the
 * record's Server-Sent Events frame, "id: P-O\ndata: <json>\n\n", encoded
 * once; `sse_data` is its tail from "data:" (for streams whose event id is
 * a multi-partition cursor instead). `json` points inside `sse`. */
typedef struct sp_hub_rec {
    atomic_uint refs;
    uint32_t partition;
    uint64_t offset;
    int64_t timestamp;
    bool value_is_json; /* value embeds raw in JSON; else it is a JSON string in `json` */
    sp_slice key;       /* base NULL: no key */
    sp_slice value;
    sp_slice json;
    sp_slice sse;
    sp_slice sse_data;
    char data[];
} sp_hub_rec;

/* Appends the JSON envelope of a record as the hub and history reads
 * serve it: {"id","partition","offset","timestamp","key","value"}; the value
 * is embedded raw when it is valid JSON, else as a JSON string. A record
 * with headers (Kafka's) adds "headers":[{"name","value"}...] in order;
 * names and values are JSON strings (invalid UTF-8 becomes U+FFFD), a
 * null header value is null. */
void sp_hub_envelope(sp_buf *out, uint32_t partition, const sp_store_record *rec);

void sp_hub_rec_ref(sp_hub_rec *r);
void sp_hub_rec_unref(sp_hub_rec *r);

/* How the hub compiles topic schemas without depending on the layer that
 * implements them (src/api/schema.c): compile returns an opaque compiled
 * schema or NULL with a message in err. */
typedef struct sp_hub_schema_ops {
    void *(*compile)(const char *text, size_t len, char *err, size_t errlen);
    void (*free)(void *compiled);
} sp_hub_schema_ops;

typedef struct sp_hub_options {
    size_t latest_n;                     /* records kept per topic per loop; default 100 */
    size_t max_schema_bytes;             /* default 64 KiB */
    const sp_hub_schema_ops *schema_ops; /* NULL: topics cannot carry schemas */
    size_t sub_queue_records;            /* per subscriber, default 8192 */
    size_t sub_queue_bytes; /* per subscriber (frame bytes referenced), default 2 MiB */
} sp_hub_options;

/* A topic's compiled schema, refcounted so a handler can validate while
 * another loop deletes the topic. */
typedef struct sp_hub_schema {
    atomic_uint refs;
    void *compiled;
    const sp_hub_schema_ops *ops;
} sp_hub_schema;

void sp_hub_options_default(sp_hub_options *o);

/* Creates the hub over an open backend (borrowed: the caller closes it
 * after sp_hub_detach). `data_dir` holds schemas/. Loads the
 * schema of every existing topic and primes the caches once loops attach.
 * Returns 0 or a negative errno with a message in errbuf. */
int sp_hub_new(sp_backend *be, const char *data_dir, const sp_hub_options *o, sp_hub **out,
               char *errbuf, size_t errlen);
/* Gives the hub the I/O loops it delivers to (before any traffic), and
 * fills every loop's cache from the log. */
void sp_hub_attach_loops(sp_hub *hub, sp_loop *loops, unsigned n);
/* Stops watching the backend: no tail notification reaches the hub after
 * it returns. Call before closing the backend (whose close still completes
 * pending appends, which may post to loops). */
void sp_hub_detach(sp_hub *hub);
/* Detaches if needed and frees everything. Loops must be stopped. When the
 * backend was closed first, call sp_hub_detach before that. */
void sp_hub_free(sp_hub *hub);

/* The backend the hub runs on (for reads, describe, readiness, metrics). */
sp_backend *sp_hub_backend(sp_hub *hub);

/* ---- topics ------------------------------------------------------------- */

/* Creates a topic with an optional JSON Schema (text, NULL for none).
 * Returns 0, -EEXIST, -EINVAL (bad name/config/schema: message in errbuf),
 * or another negative errno. */
int sp_hub_topic_create(sp_hub *hub, const char *name, const sp_store_topic_config *cfg,
                        const char *schema, size_t schema_len, char *errbuf, size_t errlen);
int sp_hub_topic_delete(sp_hub *hub, const char *name);
/* Gives an existing topic that has no schema one (a topic made outside
 * spate, e.g. on Kafka, that a declared route validates). Only before
 * sp_hub_attach_loops (handlers read schemas without locks). Returns 0,
 * -ENOENT, -EEXIST (it has a schema), -EBUSY (loops attached) or -EINVAL
 * (bad schema: message in errbuf). */
int sp_hub_topic_attach_schema(sp_hub *hub, const char *name, const char *schema, size_t schema_len,
                               char *errbuf, size_t errlen);
bool sp_hub_topic_exists(sp_hub *hub, const char *name);
/* Appends the topic's schema JSON text to out; returns false when the
 * topic has none or does not exist. */
bool sp_hub_topic_schema(sp_hub *hub, const char *name, sp_buf *out);
/* The topic's compiled schema with a reference taken (NULL: no schema or
 * no topic); give it back with sp_hub_schema_release. */
sp_hub_schema *sp_hub_schema_acquire(sp_hub *hub, const char *name);
void sp_hub_schema_release(sp_hub_schema *s);

/* ---- produce ------------------------------------------------------------ */

/* Runs on `loop` (the caller's) once the backend answered, exactly once. */
typedef void (*sp_hub_produce_cb)(void *arg, const sp_store_ack *ack);

/* Appends records (see sp_store_append). With cb, cb runs later on `loop`;
 * with cb == NULL the append is fire-and-forget and a failure is counted
 * and logged. Returns 0 or the backend's immediate error (-EAGAIN queue
 * full, -ENOENT, -EMSGSIZE, ...); cb never runs then. */
int sp_hub_produce(sp_hub *hub, sp_loop *loop, const char *topic, int32_t partition,
                   const sp_store_record *recs, size_t n, sp_hub_produce_cb cb, void *arg);

/* ---- latest ------------------------------------------------------------- */

/* Stores up to `limit` of the newest records of `topic` known to `loop`,
 * newest first, into out (borrowed: valid until the handler returns).
 * Returns the count, or -ENOENT when the topic does not exist. */
int sp_hub_latest(sp_hub *hub, sp_loop *loop, const char *topic, size_t limit,
                  const sp_hub_rec **out);

typedef struct sp_hub_stats {
    uint64_t produce_failures;  /* fire-and-forget appends that failed */
    uint64_t records_delivered; /* records handed to loops */
} sp_hub_stats;
void sp_hub_get_stats(sp_hub *hub, sp_hub_stats *out);

/* ---- subscriptions ------------------------------------------------------ */

/* A subscription follows one topic (all partitions, or one) on one loop,
 * from a start position: it first catches up from the log in bounded
 * chunks, one chunk per turn of the loop, then follows the records the
 * hub delivers to that loop. Within a partition, records come in offset
 * order, with no gap and no duplicate; a gap happens only when retention
 * deleted records the cursor still needed, or when the skip policy jumped
 * ahead, and is then an event in the queue. Events wait in a per-subscriber
 * queue bounded in records and bytes (references to shared records, never
 * copies); catch-up pauses while it is full; live records that find it
 * full trigger the policy. See docs/internals/STREAMS.md. */
typedef struct sp_hub_sub sp_hub_sub;

typedef enum sp_hub_policy {
    SP_HUB_POLICY_DISCONNECT = 0, /* the subscription ends with SP_HUB_END_SLOW */
    SP_HUB_POLICY_SKIP,           /* drop what is queued, report gaps, go on from the newest */
} sp_hub_policy;

typedef enum sp_hub_from {
    SP_HUB_FROM_LATEST = 0, /* only records appended from now on */
    SP_HUB_FROM_EARLIEST,   /* the oldest record still stored (no gap reported) */
    SP_HUB_FROM_OFFSET,     /* `offset` in every subscribed partition */
    SP_HUB_FROM_TIME,       /* the first record with timestamp >= time_ms */
    SP_HUB_FROM_CURSOR,     /* per-partition positions (a resume point) */
} sp_hub_from;

/* A position in one partition: `next` is the next offset to deliver (the
 * record id "P-O" means next = O + 1: resume after O). */
typedef struct sp_hub_pos {
    uint32_t partition;
    uint64_t next;
} sp_hub_pos;

#define SP_HUB_CURSOR_MAX 1024 /* positions in one cursor (= the partition limit) */

typedef struct sp_hub_start {
    sp_hub_from kind;
    uint64_t offset;       /* FROM_OFFSET */
    int64_t time_ms;       /* FROM_TIME */
    const sp_hub_pos *pos; /* FROM_CURSOR: partitions not listed start at offset 0 */
    size_t npos;
} sp_hub_start;

typedef struct sp_hub_sub_options {
    int32_t partition; /* one partition, or SP_STORE_PARTITION_ANY for all */
    sp_hub_start start;
    sp_hub_policy policy;
    size_t max_records; /* queue bounds; 0 or above the hub's: the hub's */
    size_t max_bytes;
} sp_hub_sub_options;

/* Runs on the subscription's loop when new events can be peeked (records,
 * a gap, or the end). It may peek, pop, and unsubscribe any subscription;
 * it is never called from inside sp_hub_subscribe or sp_hub_sub_pop. */
typedef void (*sp_hub_sub_fn)(sp_hub_sub *sub, void *arg);

/* Subscribes on `loop` (the caller's; call on that loop's thread) to
 * `topic` from o->start. Positions below the log start are reported as a
 * gap first (except FROM_EARLIEST); positions past the end are clamped to
 * it. fn runs whenever events are ready. Returns 0 and *out; or -ENOENT (no
 * such topic), -EINVAL (partition out of range, bad start), or a store
 * error; fn never runs then. */
int sp_hub_subscribe(sp_hub *hub, sp_loop *loop, const char *topic, const sp_hub_sub_options *o,
                     sp_hub_sub_fn fn, void *arg, sp_hub_sub **out);
/* Ends a subscription: queued references are released, fn never runs
 * again. Call on the subscription's loop. */
void sp_hub_unsubscribe(sp_hub_sub *sub);

enum sp_hub_event_type { SP_HUB_EV_RECORD = 1, SP_HUB_EV_GAP = 2, SP_HUB_EV_END = 3 };
enum sp_hub_end_reason { SP_HUB_END_SLOW = 1, SP_HUB_END_DELETED = 2 };

typedef struct sp_hub_event {
    int type;              /* enum sp_hub_event_type */
    const sp_hub_rec *rec; /* RECORD: borrowed until the pop */
    uint32_t partition;    /* RECORD, GAP */
    uint64_t from, to;     /* GAP: first and last missed offsets (inclusive) */
    int reason;            /* END: enum sp_hub_end_reason, or a negative errno (read error) */
} sp_hub_event;

/* Stores the oldest queued event in *ev and returns true, or returns
 * false when the queue is empty. Once the subscription has ended, END is
 * returned forever (nothing queued before it is delivered: an ending
 * subscription drops its queue). */
bool sp_hub_sub_peek(sp_hub_sub *sub, sp_hub_event *ev);
/* Consumes the event sp_hub_sub_peek returned (no-op for END or an empty
 * queue). The cursor moves past it; catch-up resumes when room returns. */
void sp_hub_sub_pop(sp_hub_sub *sub);
/* True when the subscription covers one partition: its cursor is then the
 * id of the last record consumed, and sp_hub_rec.sse is its whole frame. */
bool sp_hub_sub_single(const sp_hub_sub *sub);
/* Appends the subscription's resume point as text, as it will be once
 * `pending` (a peeked event, or NULL) is consumed: "P-O" per partition that
 * has moved past offset 0, comma-separated, in partition order (empty when
 * none has). Parsed back by sp_hub_cursor_parse. */
void sp_hub_sub_cursor(const sp_hub_sub *sub, const sp_hub_event *pending, sp_buf *out);
/* Records queued plus records known to exist that catch-up has not read
 * yet: how far behind the subscriber is. */
uint64_t sp_hub_sub_lag(const sp_hub_sub *sub);

/* Parses a resume point: "P-O" (a record id: resume after it) or several
 * comma-separated, each partition at most once. Stores up to `cap`
 * positions with next = O + 1. Returns the count, or -EINVAL (bad syntax,
 * repeated partition, more than `cap`). Pure: no allocation. */
int sp_hub_cursor_parse(sp_slice text, sp_hub_pos *out, size_t cap);

/* Parses a start position as clients give it (SSE ?from=, Last-Event-ID,
 * WebSocket ?from= and subscribe commands): "earliest", "latest", an
 * offset, "time:<ms>", or a resume cursor. A cursor's positions go to a new
 * array of exactly the size it names, stored in *pos (the caller frees it,
 * also on failure); st->pos points into it. Returns 0 or -EINVAL. */
int sp_hub_start_parse(sp_slice text, sp_hub_start *st, sp_hub_pos **pos);

/* Live subscriptions to `topic` on every loop (0 when it does not exist). */
unsigned sp_hub_topic_subscribers(sp_hub *hub, const char *topic);

/* Appends the Prometheus text exposition of the subscription figures
 * (summed over every loop) to out. Safe on any loop while others run. */
void sp_hub_metrics(sp_hub *hub, sp_buf *out);

#endif
