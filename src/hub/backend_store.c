/* backend_store.c - the embedded log (src/store) behind the backend
 * interface. Every operation is the store's own; this file only adapts
 * the signatures and adds readiness and metrics. */
#include <errno.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "hub/backend.h"

static void be_close(void *impl)
{
    sp_store_close(impl);
}

static int be_flush(void *impl)
{
    return sp_store_flush(impl);
}

static int be_topic_create(void *impl, const char *name, const sp_store_topic_config *cfg)
{
    return sp_store_topic_create(impl, name, cfg);
}

static int be_topic_delete(void *impl, const char *name)
{
    return sp_store_topic_delete(impl, name);
}

static int be_topic_list(void *impl, char ***names, size_t *count)
{
    return sp_store_topic_list(impl, names, count);
}

static int be_topic_describe(void *impl, const char *name, sp_store_topic_info *out)
{
    return sp_store_topic_describe(impl, name, out);
}

static int be_append(void *impl, const char *topic, int32_t partition, const sp_store_record *recs,
                     size_t n, sp_store_append_cb cb, void *arg)
{
    return sp_store_append(impl, topic, partition, recs, n, cb, arg);
}

static int be_partition_for_key(void *impl, const char *topic, sp_slice key)
{
    return sp_store_partition_for_key(impl, topic, key);
}

static int be_read(void *impl, const char *topic, uint32_t partition, uint64_t from,
                   size_t max_records, size_t max_bytes, sp_store_records *out)
{
    return sp_store_read(impl, topic, partition, from, max_records, max_bytes, out);
}

static int be_offset_for_time(void *impl, const char *topic, uint32_t partition, int64_t ts_ms,
                              uint64_t *offset)
{
    return sp_store_offset_for_time(impl, topic, partition, ts_ms, offset);
}

/* The store announces new ends of every partition; the hub's own cursor
 * says where it stands, so the start offsets are not needed here. */
static int be_watch_add(void *impl, const char *topic, const uint64_t *start, uint32_t npart,
                        sp_store_tail_cb cb, sp_backend_seek_cb seek, void *arg,
                        sp_backend_watch **out)
{
    (void)start;
    (void)npart;
    (void)seek; /* the store's offsets are dense: it never skips */
    sp_store_watch *w;
    int rc = sp_store_watch_add(impl, topic, SP_STORE_PARTITION_ANY, cb, arg, &w);
    if (rc == 0)
        *out = (sp_backend_watch *)w;
    return rc;
}

static void be_watch_remove(void *impl, sp_backend_watch *w)
{
    sp_store_watch_remove(impl, (sp_store_watch *)w);
}

/* The store is local: it is ready while it is open. A fenced partition is
 * a per-partition state shown by GET /v1/topics/{t}, not a readiness
 * failure of the whole server. */
static int be_ready(void *impl, char *why, size_t whylen)
{
    (void)impl;
    if (whylen)
        why[0] = '\0';
    return 0;
}

static void be_metrics(void *impl, sp_buf *out)
{
    sp_store_stats st;
    sp_store_get_stats(impl, &st);
    struct {
        const char *name, *type, *help;
        uint64_t value;
    } rows[] = {
        {"spate_store_appends_total", "counter", "Appends accepted by the embedded log.",
         st.appends},
        {"spate_store_records_total", "counter", "Records appended.", st.records},
        {"spate_store_bytes_written_total", "counter", "Bytes written to segments.",
         st.bytes_written},
        {"spate_store_fsyncs_total", "counter", "fdatasync calls.", st.fsyncs},
        {"spate_store_fsync_errors_total", "counter", "Failed fdatasync calls.", st.fsync_errors},
        {"spate_store_write_errors_total", "counter", "Failed writes.", st.write_errors},
        {"spate_store_group_commits_total", "counter", "Store rounds that wrote something.",
         st.group_commits},
        {"spate_store_rolls_total", "counter", "Segments rolled.", st.rolls},
        {"spate_store_segments_deleted_total", "counter", "Segments deleted by retention.",
         st.segments_deleted},
        {"spate_store_queue_appends", "gauge", "Appends waiting for the store thread.",
         st.queue_appends},
        {"spate_store_queue_bytes", "gauge", "Encoded bytes waiting for the store thread.",
         st.queue_bytes},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        sp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", rows[i].name, rows[i].help,
                      rows[i].name, rows[i].type, rows[i].name, (unsigned long long)rows[i].value);
}

static const sp_backend_ops store_ops = {
    .name = "embedded",
    .close = be_close,
    .flush = be_flush,
    .topic_create = be_topic_create,
    .topic_delete = be_topic_delete,
    .topic_list = be_topic_list,
    .topic_describe = be_topic_describe,
    .append = be_append,
    .partition_for_key = be_partition_for_key,
    .read = be_read,
    .offset_for_time = be_offset_for_time,
    .watch_add = be_watch_add,
    .watch_remove = be_watch_remove,
    .ready = be_ready,
    .metrics = be_metrics,
};

sp_backend *sp_backend_store_new(sp_store *store)
{
    sp_backend *b = sp_xmalloc(sizeof *b);
    b->ops = &store_ops;
    b->impl = store;
    return b;
}

sp_store *sp_backend_store(sp_backend *b)
{
    return b && b->ops == &store_ops ? b->impl : NULL;
}

void sp_backend_close(sp_backend *b)
{
    if (!b)
        return;
    b->ops->close(b->impl);
    free(b);
}
