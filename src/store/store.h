/* store.h - the embedded durable log (issue 3), the embedded half of the
 * backend interface in DESIGN.md: append, read, tail, topics, flush, close.
 *
 * A store owns one data directory (locked with flock) holding topics, each
 * split into partitions, each a sequence of segment files of CRC32C-checked
 * record batches. Offsets are dense per partition from 0.
 *
 * Threads. Every function here may be called from any thread, concurrently,
 * except sp_store_open/sp_store_close, which the owner calls once each.
 * The store runs one thread of its own, the *store thread*: it writes,
 * fsyncs (group commit), rolls and deletes segments, and runs every
 * callback the store makes (append completions and tail notifications).
 * Callbacks must be short and must not block: they may call
 * sp_store_append, sp_store_read*, sp_store_describe and sp_store_unwatch,
 * or hand work to another thread (the hub forwards to loop inboxes). They
 * must not call sp_store_close, sp_store_flush or the topic create/delete
 * functions (those wait for the store thread).
 *
 * Visibility. A record becomes readable and is announced to watchers at the
 * same moment its append is acknowledged: after the fdatasync covering it
 * in `always` mode, after its write(2) in `interval` and `never` modes. So a
 * reader never sees a record that a crash could take back in `always` mode.
 *
 * Errors are negative errno values, as everywhere in spate. */
#ifndef SP_STORE_STORE_H
#define SP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/slice.h"

typedef struct sp_store sp_store;
typedef struct sp_store_watch sp_store_watch;
typedef struct sp_store_io sp_store_io; /* store/io.h: fault injection for tests */

typedef enum sp_store_fsync_mode {
    SP_STORE_FSYNC_ALWAYS = 0, /* ack after the group-commit fdatasync covering the record */
    SP_STORE_FSYNC_INTERVAL,   /* ack after write(2); fdatasync every fsync_interval_ms */
    SP_STORE_FSYNC_NEVER,      /* ack after write(2); the kernel decides when to write back */
} sp_store_fsync_mode;

/* What start-up recovery does when a batch in the middle of a segment (not a
 * torn tail) fails its CRC. See docs/internals/STORE.md. */
typedef enum sp_store_corruption_policy {
    SP_STORE_CORRUPTION_FENCE =
        0, /* log an error; serve records before the damage; appends fail -EUCLEAN */
    SP_STORE_CORRUPTION_TRUNCATE, /* log an error; truncate the partition at the damage (operator's
                                     choice) */
} sp_store_corruption_policy;

typedef struct sp_store_options {
    sp_store_fsync_mode fsync;
    int64_t fsync_interval_ms; /* interval mode: the loss window; default 1000 */
    uint64_t segment_bytes; /* default for new topics; roll when a segment would pass it; 64 MiB */
    uint64_t retention_bytes;    /* default for new topics, per partition; 0 = unlimited */
    int64_t retention_ms;        /* default for new topics; 0 = forever; default 7 days */
    uint32_t max_record_bytes;   /* key + value + headers of one record; default 1 MiB */
    uint32_t max_append_records; /* records in one sp_store_append; default 65536 */
    uint64_t queue_max_bytes;    /* encoded bytes waiting for the store thread; default 64 MiB */
    uint32_t queue_max_appends;  /* appends waiting for the store thread; default 65536 */
    uint32_t max_topics;         /* default 10000 */
    uint32_t max_partitions;     /* per topic; default 1024 */
    sp_store_corruption_policy on_corruption;
    const sp_store_io *io; /* NULL: POSIX. Tests pass a fault-injecting one. */
} sp_store_options;

/* Fills `o` with the defaults listed above. */
void sp_store_options_default(sp_store_options *o);

/* Opens (creating if needed) the data directory `dir`, takes its flock,
 * recovers every partition (truncates torn tails, rebuilds indexes) and
 * starts the store thread. Returns 0 and *out, or -EBUSY when another
 * process (or another sp_store in this one) holds the directory, -EINVAL
 * for bad options, or another negative errno from the file system. */
int sp_store_open(const char *dir, const sp_store_options *o, sp_store **out);

/* Stops accepting appends (-ESHUTDOWN), writes and syncs everything queued
 * (in every mode), fires every pending completion, stops the store thread,
 * closes files and frees the store. Watches still registered are freed.
 * Must not be called from a store callback. */
void sp_store_close(sp_store *s);

/* Blocks until every append queued before the call has been written and
 * fdatasync'ed, in any mode. Returns 0 or the first sync error. Must not
 * be called from a store callback. */
int sp_store_flush(sp_store *s);

/* ---- topics --------------------------------------------------------------- */

typedef struct sp_store_topic_config {
    uint32_t partitions;      /* 1..max_partitions */
    uint64_t segment_bytes;   /* 0: the store default */
    uint64_t retention_bytes; /* 0: the store default (which may be 0 = unlimited) */
    int64_t retention_ms;     /* 0: the store default; < 0: forever */
    uint32_t replication;     /* Kafka's replication factor (0: the broker's default);
                                 the embedded store has one copy and ignores it */
} sp_store_topic_config;

typedef struct sp_store_partition_info {
    uint32_t partition;
    uint64_t start_offset; /* first offset still stored (retention moves it) */
    uint64_t end_offset;   /* offset the next acknowledged record will get */
    uint64_t bytes;        /* segment bytes on disk (acknowledged data) */
    uint64_t records;      /* end_offset - start_offset */
    uint32_t segments;
    int state; /* 0, or -EUCLEAN (fenced after corruption), -EIO (recovering) */
} sp_store_partition_info;

typedef struct sp_store_topic_info {
    char name[256];
    sp_store_topic_config config; /* effective values, defaults resolved */
    int64_t created_ms;
    uint32_t partition_count;
    sp_store_partition_info *partitions; /* partition_count entries, owned; see _info_free */
} sp_store_topic_info;

/* Returns 1 when `name` is a valid topic name: ^[A-Za-z0-9._-]{1,249}$ and
 * not "." or "..". */
int sp_store_topic_name_valid(const char *name);

/* Creates a topic and its partitions on disk, atomically (built in a
 * staging directory, fsync'ed, renamed into place, directory fsync'ed).
 * Returns 0, -EINVAL (bad name or config), -EEXIST, -ENOSPC (max_topics),
 * or an I/O error. */
int sp_store_topic_create(sp_store *s, const char *name, const sp_store_topic_config *cfg);

/* Deletes a topic: it disappears from list/describe at once; queued appends
 * to it complete with -ENOENT; files are removed. Readers holding results
 * keep them valid. Returns 0, -ENOENT or an I/O error. */
int sp_store_topic_delete(sp_store *s, const char *name);

/* Lists topic names, sorted. *names is an array of *count strings; free it
 * with sp_store_topic_list_free. Returns 0. */
int sp_store_topic_list(sp_store *s, char ***names, size_t *count);
void sp_store_topic_list_free(char **names, size_t count);

/* Describes a topic. Returns 0 (free with sp_store_topic_info_free) or
 * -ENOENT. */
int sp_store_topic_describe(sp_store *s, const char *name, sp_store_topic_info *out);
void sp_store_topic_info_free(sp_store_topic_info *info);

/* ---- records -------------------------------------------------------------- */

typedef struct sp_store_header {
    sp_slice name;
    sp_slice value;
} sp_store_header;

/* One record. For appends: offset is ignored; timestamp < 0 means "assign
 * the append time"; key.base == NULL means no key (an empty key is a key).
 * For reads every slice points into the sp_store_records that holds it. */
typedef struct sp_store_record {
    uint64_t offset;
    int64_t timestamp; /* ms since the epoch */
    sp_slice key;
    sp_slice value;
    const sp_store_header *headers;
    uint32_t header_count;
} sp_store_record;

#define SP_STORE_PARTITION_ANY (-1)

typedef struct sp_store_ack {
    int status; /* 0 or a negative errno (-EIO, -ENOSPC, -ENOENT, -EUCLEAN, -ESHUTDOWN) */
    uint32_t partition;
    uint64_t base_offset; /* offset of the first record; the rest follow densely */
    uint32_t count;
    int64_t timestamp; /* the time assigned to records appended without one */
    /* The backend's own words for a failed status (Kafka: the broker's or
     * librdkafka's error text), or NULL. Valid during the callback only. */
    const char *detail;
} sp_store_ack;

/* Runs on the store thread, exactly once per accepted append. */
typedef void (*sp_store_append_cb)(void *arg, const sp_store_ack *ack);

/* Appends `n` records to one partition of `topic`, asynchronously. The
 * records are encoded (copied) before the call returns, so the caller may
 * reuse its buffers at once. All records of one call go to one partition
 * and get consecutive offsets. partition = SP_STORE_PARTITION_ANY picks one:
 * Kafka's murmur2 partitioner on the first record's key, or round-robin
 * across calls when it has none.
 *
 * Returns 0, and then `cb` (if not NULL) fires exactly once on the store
 * thread with the offsets or an error; or returns an error and `cb` never
 * fires: -EAGAIN (queue full: answer 503 and retry later), -EMSGSIZE (a
 * record over max_record_bytes, or too many records), -ENOENT (no such
 * topic), -EINVAL (bad partition, n == 0), -EUCLEAN (partition fenced after
 * corruption), -ESHUTDOWN (closing). */
int sp_store_append(sp_store *s, const char *topic, int32_t partition, const sp_store_record *recs,
                    size_t n, sp_store_append_cb cb, void *arg);

/* Chooses the partition that SP_STORE_PARTITION_ANY would choose for `key`
 * (Kafka's default partitioner). Returns it, or -ENOENT. */
int sp_store_partition_for_key(sp_store *s, const char *topic, sp_slice key);

typedef struct sp_store_records {
    sp_store_record *records; /* count records, offsets ascending, dense */
    size_t count;
    uint64_t next_offset;  /* where the next read continues */
    uint64_t start_offset; /* log start at the time of the read */
    uint64_t end_offset;   /* log end (acknowledged) at the time of the read */
    /* private */
    char *data_;
    sp_store_record *records_;
    sp_store_header *headers_;
} sp_store_records;

/* Reads acknowledged records of topic/partition starting at `from`, in
 * batches: at most max_records records and about max_bytes of batch data
 * (at least one batch is returned even when it is larger). Offsets below
 * the log start are clamped to it (out->records[0].offset tells the caller
 * about the gap); from == end returns no records. Batch data is read once
 * from the file with pread and every slice points into it, CRC-checked.
 * Safe concurrently with appends, retention and other reads.
 * Returns 0 (free with sp_store_records_free even when count is 0),
 * -ENOENT, -EINVAL (bad partition), -ERANGE (from > end offset), -EBADMSG
 * (a batch failed its CRC; nothing is returned), -EUCLEAN (from is at the
 * end of a partition fenced after corruption: nothing more will come), or
 * an I/O error. */
int sp_store_read(sp_store *s, const char *topic, uint32_t partition, uint64_t from,
                  size_t max_records, size_t max_bytes, sp_store_records *out);
void sp_store_records_free(sp_store_records *r);

/* Finds the first offset whose record timestamp is >= ts_ms (Kafka's
 * ListOffsets): *offset is that offset, or the end offset when no such
 * record exists. Returns 0, -ENOENT, -EINVAL or an I/O error. */
int sp_store_offset_for_time(sp_store *s, const char *topic, uint32_t partition, int64_t ts_ms,
                             uint64_t *offset);

/* ---- tail notification ---------------------------------------------------- */

/* Runs on the store thread each time new records become visible on a
 * watched partition; end_offset is the new end. Several appends may be
 * announced by one call. */
typedef void (*sp_store_tail_cb)(void *arg, const char *topic, uint32_t partition,
                                 uint64_t end_offset);

/* Registers a watch on topic/partition (SP_STORE_PARTITION_ANY: every
 * partition of the topic). Returns 0 and *out, -ENOENT or -EINVAL. */
int sp_store_watch_add(sp_store *s, const char *topic, int32_t partition, sp_store_tail_cb cb,
                       void *arg, sp_store_watch **out);
/* Removes a watch. When it returns, `cb` is not running and never runs
 * again for it (when called from a store callback, the watch is removed
 * after that callback returns). Frees the watch. */
void sp_store_watch_remove(sp_store *s, sp_store_watch *w);

/* ---- statistics ----------------------------------------------------------- */

typedef struct sp_store_stats {
    uint64_t appends, records, bytes_written;
    uint64_t fsyncs, fsync_errors, write_errors;
    uint64_t group_commits; /* store-thread rounds that wrote something */
    uint64_t rolls, segments_deleted;
    uint64_t queue_appends, queue_bytes; /* current */
} sp_store_stats;

void sp_store_get_stats(sp_store *s, sp_store_stats *out);

#endif
