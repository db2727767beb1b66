/* hub.h - topics, produce, and the newest records of each topic, per loop.
 *
 * The hub sits between the API and a backend (today the embedded store;
 * Kafka has the same shape, see DESIGN.md). It owns three things:
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
 *    per topic, so GET /latest reads without a lock. (Live subscribers will
 *    hang off the same per-loop delivery.)
 *
 * Threads: sp_hub_produce, sp_hub_latest and the topic functions are called
 * on I/O loops; create/delete block briefly on the backend. */
#ifndef SP_HUB_HUB_H
#define SP_HUB_HUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/loop.h"
#include "store/store.h"

typedef struct sp_hub sp_hub;

/* One record as the hub shares it: immutable, refcounted, shared by every
 * loop. `json` is the envelope {"id","partition","offset","timestamp",
 * "key","value"}; `value` is the raw value. */
typedef struct sp_hub_rec {
    atomic_uint refs;
    uint32_t partition;
    uint64_t offset;
    int64_t timestamp;
    bool value_is_json; /* value embeds raw in JSON; else it is a JSON string in `json` */
    sp_slice key;       /* base NULL: no key */
    sp_slice value;
    sp_slice json;
    char data[];
} sp_hub_rec;

/* Appends the JSON envelope of a record as the hub and history reads
 * serve it: {"id","partition","offset","timestamp","key","value"}; the value
 * is embedded raw when it is valid JSON, else as a JSON string. */
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
    size_t latest_n;         /* records kept per topic per loop; default 100 */
    size_t max_schema_bytes; /* default 64 KiB */
    const sp_hub_schema_ops *schema_ops; /* NULL: topics cannot carry schemas */
} sp_hub_options;

/* A topic's compiled schema, refcounted so a handler can validate while
 * another loop deletes the topic. */
typedef struct sp_hub_schema {
    atomic_uint refs;
    void *compiled;
    const sp_hub_schema_ops *ops;
} sp_hub_schema;

void sp_hub_options_default(sp_hub_options *o);

/* Creates the hub over an open store. `data_dir` holds schemas/. Loads the
 * schema of every existing topic and primes the caches once loops attach.
 * Returns 0 or a negative errno with a message in errbuf. */
int sp_hub_new(sp_store *store, const char *data_dir, const sp_hub_options *o, sp_hub **out,
               char *errbuf, size_t errlen);
/* Gives the hub the I/O loops it delivers to (before any traffic), and
 * fills every loop's cache from the log. */
void sp_hub_attach_loops(sp_hub *hub, sp_loop *loops, unsigned n);
/* Stops watching the backend and frees everything. Loops must be stopped. */
void sp_hub_free(sp_hub *hub);

sp_store *sp_hub_store(sp_hub *hub);

/* ---- topics ------------------------------------------------------------- */

/* Creates a topic with an optional JSON Schema (text, NULL for none).
 * Returns 0, -EEXIST, -EINVAL (bad name/config/schema: message in errbuf),
 * or another negative errno. */
int sp_hub_topic_create(sp_hub *hub, const char *name, const sp_store_topic_config *cfg,
                        const char *schema, size_t schema_len, char *errbuf, size_t errlen);
int sp_hub_topic_delete(sp_hub *hub, const char *name);
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
    uint64_t produce_failures; /* fire-and-forget appends that failed */
    uint64_t records_delivered; /* records handed to loops */
} sp_hub_stats;
void sp_hub_get_stats(sp_hub *hub, sp_hub_stats *out);

#endif
