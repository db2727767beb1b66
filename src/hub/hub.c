/* hub.c - see hub.h for the model. Reading order: records, the topic
 * registry, per-loop caches, delivery from the backend thread, produce.
 * Subscriptions hang off the per-loop caches and live in sub.c. */
#include "hub/hub_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/json.h"
#include "core/log.h"

#define READ_BATCH         1024
#define ENVELOPE_MAX_DEPTH 1024 /* = the largest api.max_json_depth: accepted JSON embeds raw */

/* ---- records ---------------------------------------------------------------- */

void sp_hub_rec_ref(sp_hub_rec *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

void sp_hub_rec_unref(sp_hub_rec *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        free(r);
}

static bool envelope(sp_buf *j, uint32_t partition, const sp_store_record *in)
{
    bool raw = sp_json_valid(in->value, ENVELOPE_MAX_DEPTH);
    /* appends, not printf: this runs once per record on the backend thread */
    sp_buf_append(j, "{\"id\":\"", 7);
    sp_buf_append_u64(j, partition);
    sp_buf_putc(j, '-');
    sp_buf_append_u64(j, in->offset);
    sp_buf_append(j, "\",\"partition\":", 14);
    sp_buf_append_u64(j, partition);
    sp_buf_append(j, ",\"offset\":", 10);
    sp_buf_append_u64(j, in->offset);
    sp_buf_append(j, ",\"timestamp\":", 13);
    sp_buf_append_i64(j, in->timestamp);
    sp_buf_append(j, ",\"key\":", 7);
    if (in->key.base)
        sp_json_str(j, in->key);
    else
        sp_buf_append(j, "null", 4);
    sp_buf_append(j, ",\"value\":", 9);
    if (raw)
        sp_buf_append_slice(j, in->value);
    else
        sp_json_str(j, in->value);
    if (in->header_count) { /* Kafka headers: ordered, names may repeat */
        sp_buf_append(j, ",\"headers\":[", 12);
        for (uint32_t i = 0; i < in->header_count; i++) {
            sp_buf_append(j, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
            sp_json_str(j, in->headers[i].name);
            sp_buf_append(j, ",\"value\":", 9);
            if (in->headers[i].value.base)
                sp_json_str(j, in->headers[i].value);
            else
                sp_buf_append(j, "null", 4);
            sp_buf_putc(j, '}');
        }
        sp_buf_putc(j, ']');
    }
    sp_buf_putc(j, '}');
    return raw;
}

void sp_hub_envelope(sp_buf *out, uint32_t partition, const sp_store_record *rec)
{
    envelope(out, partition, rec);
}

/* Appends the SSE frame of a record around its envelope: `id: P-O`, then
 * one `data:` line. Raw JSON values may hold CR/LF as whitespace between
 * tokens; a line break would split the data line, so they become spaces
 * (the same JSON value). */
static void sse_frame(sp_buf *f, uint32_t partition, uint64_t offset, sp_slice json,
                      size_t *data_at)
{
    sp_buf_append(f, "id: ", 4);
    sp_buf_append_u64(f, partition);
    sp_buf_putc(f, '-');
    sp_buf_append_u64(f, offset);
    sp_buf_putc(f, '\n');
    *data_at = f->len;
    sp_buf_append(f, "data: ", 6);
    size_t at = f->len;
    sp_buf_append_slice(f, json);
    for (size_t i = at; i < f->len; i++)
        if (f->base[i] == '\n' || f->base[i] == '\r')
            f->base[i] = ' ';
    sp_buf_append(f, "\n\n", 2);
}

/* Encodes the envelope and its SSE frame once; every reader and
 * subscriber shares them. `json` points inside the frame. */
sp_hub_rec *sp__hub_rec_make(uint32_t partition, const sp_store_record *in)
{
    sp_buf j, f;
    sp_buf_init(&j, SP_BUF_UNLIMITED);
    sp_buf_init(&f, SP_BUF_UNLIMITED);
    /* One allocation each in the common case: the fixed fields take under
     * 128 bytes, a string value may double when escaped. */
    size_t guess = 128 + (in->key.base ? 2 * in->key.len : 0) + 2 * in->value.len;
    for (uint32_t i = 0; i < in->header_count; i++)
        guess += 32 + 2 * (in->headers[i].name.len + in->headers[i].value.len);
    sp_buf_reserve(&j, guess);
    bool raw = envelope(&j, partition, in);
    sp_buf_reserve(&f, j.len + 56); /* "id: P-O\n" + "data: " + json + "\n\n" */
    size_t data_at;
    sse_frame(&f, partition, in->offset, sp_buf_slice(&j), &data_at);
    size_t klen = in->key.base ? in->key.len : 0;
    sp_hub_rec *r = sp_xmalloc(sizeof *r + klen + in->value.len + f.len);
    atomic_init(&r->refs, 1);
    r->partition = partition;
    r->offset = in->offset;
    r->timestamp = in->timestamp;
    r->value_is_json = raw;
    char *p = r->data;
    memcpy(p, in->key.base ? in->key.base : "", klen);
    r->key = in->key.base ? sp_slice_make(p, klen) : SP_SLICE_NULL;
    p += klen;
    memcpy(p, in->value.base, in->value.len);
    r->value = sp_slice_make(p, in->value.len);
    p += in->value.len;
    memcpy(p, f.base, f.len);
    r->sse = sp_slice_make(p, f.len);
    r->sse_data = sp_slice_make(p + data_at, f.len - data_at);
    r->json = sp_slice_make(p + data_at + 6, j.len);
    sp_buf_free(&j);
    sp_buf_free(&f);
    return r;
}

/* ---- the topic registry ------------------------------------------------------ */

void sp__hub_topic_unref(sp__hub_topic *t)
{
    if (atomic_fetch_sub(&t->refs, 1) != 1)
        return;
    sp_hub_schema_release(t->schema);
    free(t->schema_text);
    free(t->cursor);
    free(t->name);
    free(t);
}

static sp__hub_topic *registry_find(sp_hub *hub, const char *name)
{
    sp__hub_topic *found = NULL;
    uv_rwlock_rdlock(&hub->lock);
    for (size_t i = 0; i < hub->ntopics; i++) {
        if (strcmp(hub->topics[i]->name, name) == 0) {
            found = hub->topics[i];
            atomic_fetch_add(&found->refs, 1);
            break;
        }
    }
    uv_rwlock_rdunlock(&hub->lock);
    return found;
}

static sp__hub_topic *adopt(sp_hub *hub, const char *name);

sp__hub_topic *sp__hub_topic_get(sp_hub *hub, const char *name)
{
    sp__hub_topic *t = registry_find(hub, name);
    return t ? t : adopt(hub, name);
}

sp_hub_schema *sp_hub_schema_acquire(sp_hub *hub, const char *name)
{
    sp__hub_topic *t = sp__hub_topic_get(hub, name);
    if (!t)
        return NULL;
    sp_hub_schema *s = t->schema;
    if (s)
        atomic_fetch_add(&s->refs, 1);
    sp__hub_topic_unref(t);
    return s;
}

void sp_hub_schema_release(sp_hub_schema *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        s->ops->free(s->compiled);
        free(s);
    }
}

bool sp_hub_topic_exists(sp_hub *hub, const char *name)
{
    sp__hub_topic *t = sp__hub_topic_get(hub, name);
    if (t)
        sp__hub_topic_unref(t);
    return t != NULL;
}

bool sp_hub_topic_schema(sp_hub *hub, const char *name, sp_buf *out)
{
    sp__hub_topic *t = sp__hub_topic_get(hub, name);
    bool has = t && t->schema_text;
    if (has)
        sp_buf_append(out, t->schema_text, t->schema_len);
    if (t)
        sp__hub_topic_unref(t);
    return has;
}

/* ---- per-loop caches ---------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

sp__hub_ring *sp__hub_ring_find(sp__hub_local *l, const char *name)
{
    if (l->cap == 0)
        return NULL;
    for (size_t i = hash_name(name) & (l->cap - 1);; i = (i + 1) & (l->cap - 1)) {
        sp__hub_ring *r = &l->rings[i];
        if (r->name == NULL)
            return NULL;
        if (r->name != (char *)1 && strcmp(r->name, name) == 0)
            return r;
    }
}

static void local_grow(sp__hub_local *l);

sp__hub_ring *sp__hub_ring_add(sp__hub_local *l, const char *name, size_t latest_n)
{
    sp__hub_ring *r = sp__hub_ring_find(l, name);
    if (r)
        return r;
    if ((l->used + 1) * 2 > l->cap)
        local_grow(l);
    for (size_t i = hash_name(name) & (l->cap - 1);; i = (i + 1) & (l->cap - 1)) {
        r = &l->rings[i];
        if (r->name == NULL || r->name == (char *)1) {
            r->name = sp_xstrdup(name);
            r->slots = sp_xcalloc(latest_n, sizeof *r->slots);
            r->head = r->count = 0;
            r->subs = NULL;
            l->used++;
            return r;
        }
    }
}

static void ring_clear(sp__hub_ring *r, size_t latest_n)
{
    for (size_t i = 0; i < latest_n; i++)
        if (r->slots[i])
            sp_hub_rec_unref(r->slots[i]);
    free(r->slots);
    free(r->name);
}

/* Tombstones ((char *)1) keep probe chains intact; growth drops them. */
static void local_remove(sp__hub_local *l, const char *name, size_t latest_n)
{
    sp__hub_ring *r = sp__hub_ring_find(l, name);
    if (!r)
        return;
    sp__hub_subs_topic_gone(l, r);
    ring_clear(r, latest_n);
    r->name = (char *)1;
    r->slots = NULL;
}

static void local_grow(sp__hub_local *l)
{
    sp__hub_local old = *l;
    l->cap = old.cap ? old.cap * 2 : 16;
    l->rings = sp_xcalloc(l->cap, sizeof *l->rings);
    l->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        sp__hub_ring *o = &old.rings[i];
        if (o->name == NULL || o->name == (char *)1)
            continue;
        size_t j = hash_name(o->name) & (l->cap - 1);
        while (l->rings[j].name)
            j = (j + 1) & (l->cap - 1);
        l->rings[j] = *o;
        l->used++;
    }
    free(old.rings);
}

static void ring_push(sp__hub_ring *r, sp_hub_rec *rec, size_t latest_n)
{
    if (r->slots[r->head])
        sp_hub_rec_unref(r->slots[r->head]);
    r->slots[r->head] = rec;
    r->head = (r->head + 1) % latest_n;
    if (r->count < latest_n)
        r->count++;
}

int sp_hub_latest(sp_hub *hub, sp_loop *loop, const char *topic, size_t limit,
                  const sp_hub_rec **out)
{
    /* This loop's cache learns of creates and deletes by message; in the
     * moment between a create or delete on another thread and that message,
     * the registry (one read lock) has the truth. */
    sp__hub_ring *r = sp__hub_ring_find(&hub->locals[loop->index], topic);
    if (!r)
        return sp_hub_topic_exists(hub, topic) ? 0 : -ENOENT;
    if (atomic_load_explicit(&hub->drops_pending, memory_order_acquire) &&
        !sp_hub_topic_exists(hub, topic))
        return -ENOENT;
    size_t n = limit < r->count ? limit : r->count;
    size_t cap = hub->opts.latest_n;
    for (size_t i = 0; i < n; i++)
        out[i] = r->slots[(r->head + cap - 1 - i) % cap];
    return (int)n;
}

/* Messages to loops. A batch is shared by every loop; the last one frees it. */
typedef struct batch {
    atomic_uint pending; /* loops yet to consume it */
    sp_hub *hub;
    char *topic;
    enum { B_RECORDS, B_ADD, B_DROP } kind;
    size_t n;
    sp_hub_rec *recs[];
} batch;

static void batch_done(batch *b)
{
    if (atomic_fetch_sub(&b->pending, 1) != 1)
        return;
    if (b->kind == B_DROP)
        atomic_fetch_sub(&b->hub->drops_pending, 1);
    for (size_t i = 0; i < b->n; i++)
        sp_hub_rec_unref(b->recs[i]);
    free(b->topic);
    free(b);
}

static void on_batch(sp_loop *loop, void *arg)
{
    batch *b = arg;
    if (loop) {
        sp__hub_local *l = &b->hub->locals[loop->index];
        size_t latest_n = b->hub->opts.latest_n;
        if (b->kind == B_ADD) {
            sp__hub_ring_add(l, b->topic, latest_n);
        } else if (b->kind == B_DROP) {
            local_remove(l, b->topic, latest_n);
        } else {
            sp__hub_ring *r = sp__hub_ring_find(l, b->topic);
            for (size_t i = 0; r && i < b->n; i++) {
                sp_hub_rec_ref(b->recs[i]);
                ring_push(r, b->recs[i], latest_n);
            }
            if (r && r->subs)
                sp__hub_subs_deliver(l, r, b->recs, b->n);
        }
    }
    batch_done(b);
}

static batch *batch_new(sp_hub *hub, const char *topic, int kind, size_t n)
{
    batch *b = sp_xmalloc(sizeof *b + n * sizeof b->recs[0]);
    atomic_init(&b->pending, hub->nloops ? hub->nloops : 1);
    b->hub = hub;
    b->topic = sp_xstrdup(topic);
    b->kind = kind;
    b->n = n;
    if (kind == B_DROP)
        atomic_fetch_add(&hub->drops_pending, 1);
    return b;
}

static void broadcast(sp_hub *hub, batch *b)
{
    if (hub->nloops == 0) {
        on_batch(NULL, b);
        return;
    }
    for (unsigned i = 0; i < hub->nloops; i++)
        sp_loop_post(&hub->loops[i], on_batch, b);
}

/* ---- delivery: runs on the backend thread (tail callback) ----------------------- */

static void deliver_range(sp_hub *hub, sp__hub_topic *t, uint32_t p, uint64_t end)
{
    while (t->cursor[p] < end) {
        sp_store_records rs;
        int rc = sp_backend_read(hub->be, t->name, p, t->cursor[p], READ_BATCH, 1 << 20, &rs);
        if (rc != 0 || rs.count == 0) {
            if (rc != 0)
                SP_LOG_ERROR("hub: reading new records failed",
                             SP_LF_STR("topic", t->name) SP_LF_INT("partition", p)
                                 SP_LF_INT("offset", t->cursor[p]) SP_LF_INT("error", rc));
            if (rc == 0)
                sp_store_records_free(&rs);
            return;
        }
        batch *b = batch_new(hub, t->name, B_RECORDS, rs.count);
        for (size_t i = 0; i < rs.count; i++)
            b->recs[i] = sp__hub_rec_make(p, &rs.records[i]);
        t->cursor[p] = rs.next_offset;
        atomic_fetch_add(&hub->records_delivered, rs.count);
        sp_store_records_free(&rs);
        broadcast(hub, b);
    }
}

static void on_tail(void *arg, const char *topic, uint32_t partition, uint64_t end_offset)
{
    (void)topic;
    sp__hub_topic *t = arg;
    if (partition < t->partitions)
        deliver_range(t->hub, t, partition, end_offset);
}

/* The backend resumed above our cursor (see sp_backend_seek_cb): the
 * offsets skipped are not coming, so reading them would only ask the
 * backend for history. Subscribers see the jump in offsets. */
static void on_seek(void *arg, const char *topic, uint32_t partition, uint64_t offset)
{
    sp__hub_topic *t = arg;
    if (partition < t->partitions && offset > t->cursor[partition]) {
        SP_LOG_DEBUG("hub: following resumed further on",
                     SP_LF_STR("topic", topic) SP_LF_INT("partition", partition)
                         SP_LF_INT("from", t->cursor[partition]) SP_LF_INT("to", offset));
        t->cursor[partition] = offset;
    }
}

/* ---- priming: the newest records of a topic, merged across partitions ---- */

/* Reads the last `want` records of partition p below its cursor, in offset
 * order, into out; returns how many. */
static size_t read_tail(sp_hub *hub, sp__hub_topic *t, uint32_t p, size_t want, sp_hub_rec **out)
{
    uint64_t end = t->cursor[p];
    uint64_t from = end > want ? end - want : 0;
    size_t n = 0;
    while (from < end && n < want) {
        sp_store_records rs;
        if (sp_backend_read(hub->be, t->name, p, from, want - n, 1 << 22, &rs) != 0)
            break;
        for (size_t i = 0; i < rs.count && rs.records[i].offset < end && n < want; i++)
            out[n++] = sp__hub_rec_make(p, &rs.records[i]);
        bool stuck = rs.count == 0 || rs.next_offset <= from;
        from = rs.next_offset;
        sp_store_records_free(&rs);
        if (stuck)
            break;
    }
    return n;
}

/* Hands every loop the newest latest_n records of the topic, oldest first.
 * Within a partition, offset order is recency (timestamps may be assigned
 * out of order by concurrent producers); across partitions, the newest
 * remaining tails are compared by timestamp: a k-way merge from the end. */
static void prime(sp_hub *hub, sp__hub_topic *t)
{
    size_t want = hub->opts.latest_n;
    sp_hub_rec **per = sp_xcalloc((size_t)t->partitions * want + 1, sizeof *per);
    size_t *len = sp_xcalloc(t->partitions, sizeof *len);
    for (uint32_t p = 0; p < t->partitions; p++)
        len[p] = read_tail(hub, t, p, want, per + (size_t)p * want);
    batch *b = batch_new(hub, t->name, B_RECORDS, want);
    size_t n = 0;
    while (n < want) { /* pick the newest remaining tail */
        int best = -1;
        for (uint32_t p = 0; p < t->partitions; p++)
            if (len[p] && (best < 0 || per[(size_t)p * want + len[p] - 1]->timestamp >
                                           per[(size_t)best * want + len[best] - 1]->timestamp))
                best = (int)p;
        if (best < 0)
            break;
        b->recs[want - 1 - n++] = per[(size_t)best * want + --len[best]];
    }
    for (uint32_t p = 0; p < t->partitions; p++) /* the older ones not kept */
        for (size_t i = 0; i < len[p]; i++)
            sp_hub_rec_unref(per[(size_t)p * want + i]);
    memmove(b->recs, b->recs + (want - n), n * sizeof *b->recs);
    b->n = n;
    free(per);
    free(len);
    broadcast(hub, b);
}

/* ---- topics ----------------------------------------------------------------- */

static int schema_path(const sp_hub *hub, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s.json", hub->schema_dir, name);
    return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static sp_hub_schema *compile_schema(sp_hub *hub, const char *text, size_t len, char *err,
                                     size_t errlen)
{
    if (!hub->opts.schema_ops) {
        snprintf(err, errlen, "schemas are not supported by this server");
        return NULL;
    }
    if (len > hub->opts.max_schema_bytes) {
        snprintf(err, errlen, "schema is %zu bytes, above the limit of %zu", len,
                 hub->opts.max_schema_bytes);
        return NULL;
    }
    void *c = hub->opts.schema_ops->compile(text, len, err, errlen);
    if (!c)
        return NULL;
    sp_hub_schema *s = sp_xmalloc(sizeof *s);
    atomic_init(&s->refs, 1);
    s->compiled = c;
    s->ops = hub->opts.schema_ops;
    return s;
}

/* Writes the schema file atomically: temp file, fsync, rename, dir fsync. */
static int save_schema(sp_hub *hub, const char *name, const char *text, size_t len)
{
    char path[4096], tmp[4200];
    if (schema_path(hub, name, path, sizeof path))
        return -ENAMETOOLONG;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, text, len);
    int rc = (w == (ssize_t)len && fdatasync(fd) == 0) ? 0 : (w < 0 || errno ? -errno : -EIO);
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(hub->schema_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static char *load_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = sp_xmalloc(max + 1);
    *len = fread(buf, 1, max + 1, f);
    fclose(f);
    if (*len > max) {
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

/* Makes a registry entry for an existing backend topic, positioned at the
 * current end of each partition. */
static int topic_open(sp_hub *hub, const char *name, sp__hub_topic **out, char *err, size_t errlen)
{
    sp_store_topic_info info;
    int rc = sp_backend_topic_describe(hub->be, name, &info);
    if (rc)
        return rc;
    sp__hub_topic *t = sp_xcalloc(1, sizeof *t);
    atomic_init(&t->refs, 1);
    t->hub = hub;
    t->name = sp_xstrdup(name);
    t->partitions = info.partition_count;
    t->cursor = sp_xcalloc(t->partitions, sizeof *t->cursor);
    for (uint32_t p = 0; p < t->partitions; p++)
        t->cursor[p] = info.partitions[p].end_offset;
    sp_store_topic_info_free(&info);
    rc = sp_backend_follow_start(hub->be, name, t->partitions, t->cursor);
    if (rc != 0) /* follow from the ends; records below them reach caches by priming */
        SP_LOG_WARN(
            "hub: the backend could not say where to start following; following from the end",
            SP_LF_STR("topic", name) SP_LF_INT("error", rc));
    char path[4096];
    if (schema_path(hub, name, path, sizeof path) == 0) {
        t->schema_text = load_file(path, hub->opts.max_schema_bytes, &t->schema_len);
        if (t->schema_text) {
            t->schema = compile_schema(hub, t->schema_text, t->schema_len, err, errlen);
            if (!t->schema) {
                sp__hub_topic_unref(t);
                return -EINVAL;
            }
        }
    }
    *out = t;
    return 0;
}

static void registry_add(sp_hub *hub, sp__hub_topic *t)
{
    uv_rwlock_wrlock(&hub->lock);
    hub->topics = sp_xrealloc(hub->topics, (hub->ntopics + 1) * sizeof *hub->topics);
    hub->topics[hub->ntopics++] = t;
    uv_rwlock_wrunlock(&hub->lock);
}

static sp__hub_topic *registry_remove(sp_hub *hub, const char *name)
{
    sp__hub_topic *t = NULL;
    uv_rwlock_wrlock(&hub->lock);
    for (size_t i = 0; i < hub->ntopics; i++) {
        if (strcmp(hub->topics[i]->name, name) == 0) {
            t = hub->topics[i];
            hub->topics[i] = hub->topics[--hub->ntopics];
            break;
        }
    }
    uv_rwlock_wrunlock(&hub->lock);
    return t;
}

static int topic_watch(sp_hub *hub, sp__hub_topic *t)
{
    return sp_backend_watch_add(hub->be, t->name, t->cursor, t->partitions, on_tail, on_seek, t,
                                &t->watch);
}

/* Opens `name` from the backend, tells every loop, optionally fills
 * their caches with its newest records, watches it and registers it.
 * Caller holds change_lock. */
static int topic_register(sp_hub *hub, const char *name, bool fill, char *err, size_t errlen)
{
    sp__hub_topic *t;
    int rc = topic_open(hub, name, &t, err, errlen);
    if (rc != 0)
        return rc;
    if (hub->locals) { /* else sp_hub_attach_loops does this for every topic */
        /* Loops learn of the topic before any record of it can be
         * delivered: per-loop messages run in order. */
        broadcast(hub, batch_new(hub, name, B_ADD, 0));
        if (fill)
            prime(hub, t);
        rc = topic_watch(hub, t);
        if (rc != 0) {
            broadcast(hub, batch_new(hub, name, B_DROP, 0));
            sp__hub_topic_unref(t);
            return rc;
        }
    }
    registry_add(hub, t);
    return 0;
}

static sp__hub_topic *adopt(sp_hub *hub, const char *name)
{
    if (!hub->locals || !sp_store_topic_name_valid(name))
        return NULL; /* before sp_hub_attach_loops every topic is registered */
    char err[256];
    uv_mutex_lock(&hub->change_lock);
    sp__hub_topic *t = registry_find(hub, name);
    if (!t && topic_register(hub, name, true, err, sizeof err) == 0) {
        SP_LOG_INFO("hub: adopted a topic created elsewhere", SP_LF_STR("topic", name));
        t = registry_find(hub, name);
    }
    uv_mutex_unlock(&hub->change_lock);
    return t;
}

int sp_hub_topic_create(sp_hub *hub, const char *name, const sp_store_topic_config *cfg,
                        const char *schema, size_t schema_len, char *err, size_t errlen)
{
    err[0] = '\0';
    sp_hub_schema *compiled = NULL;
    if (schema && !(compiled = compile_schema(hub, schema, schema_len, err, errlen)))
        return -EINVAL;
    int rc = sp_backend_topic_create(hub->be, name, cfg);
    if (rc == 0 && schema && (rc = save_schema(hub, name, schema, schema_len)) != 0)
        sp_backend_topic_delete(hub->be, name); /* no topic without its schema */
    sp_hub_schema_release(compiled);
    if (rc != 0)
        return rc; /* a backend failure (even a timeout) is the backend's to settle */
    uv_mutex_lock(&hub->change_lock);
    sp__hub_topic *t = registry_find(hub, name); /* adopted in the meantime */
    if (t) {
        uv_mutex_unlock(&hub->change_lock);
        sp__hub_topic_unref(t);
        return 0;
    }
    rc = topic_register(hub, name, false, err, errlen);
    uv_mutex_unlock(&hub->change_lock);
    return rc;
}

int sp_hub_topic_attach_schema(sp_hub *hub, const char *name, const char *schema, size_t schema_len,
                               char *err, size_t errlen)
{
    err[0] = '\0';
    if (hub->locals)
        return -EBUSY;
    sp__hub_topic *t = registry_find(hub, name);
    if (!t)
        return -ENOENT;
    int rc = t->schema ? -EEXIST : 0;
    sp_hub_schema *compiled = NULL;
    if (rc == 0 && !(compiled = compile_schema(hub, schema, schema_len, err, errlen)))
        rc = -EINVAL;
    if (rc == 0)
        rc = save_schema(hub, name, schema, schema_len);
    if (rc == 0) {
        t->schema = compiled;
        t->schema_text = sp_xmalloc(schema_len + 1);
        memcpy(t->schema_text, schema, schema_len);
        t->schema_text[schema_len] = '\0';
        t->schema_len = schema_len;
    } else {
        sp_hub_schema_release(compiled);
    }
    sp__hub_topic_unref(t);
    return rc;
}

int sp_hub_topic_delete(sp_hub *hub, const char *name)
{
    uv_mutex_lock(&hub->change_lock);
    atomic_fetch_add(&hub->drops_pending, 1); /* from before the registry forgets it */
    sp__hub_topic *t = registry_remove(hub, name);
    if (!t) { /* perhaps created elsewhere and never used here */
        atomic_fetch_sub(&hub->drops_pending, 1);
        int rc = sp_backend_topic_delete(hub->be, name);
        uv_mutex_unlock(&hub->change_lock);
        return rc;
    }
    if (t->watch)
        sp_backend_watch_remove(hub->be, t->watch);
    t->watch = NULL;
    broadcast(hub, batch_new(hub, name, B_DROP, 0));
    atomic_fetch_sub(&hub->drops_pending, 1); /* the batch holds its own count now */
    int rc = sp_backend_topic_delete(hub->be, name);
    char path[4096];
    if (schema_path(hub, name, path, sizeof path) == 0)
        unlink(path);
    uv_mutex_unlock(&hub->change_lock);
    sp__hub_topic_unref(t);
    return rc;
}

/* ---- produce ------------------------------------------------------------------ */

typedef struct produce_ctx {
    sp_loop *loop;
    sp_hub_produce_cb cb;
    void *arg;
    sp_store_ack ack;
    sp_hub *hub;
    char detail[256]; /* ack.detail's copy: the backend's lives in its callback only */
} produce_ctx;

static void produce_deliver(sp_loop *loop, void *arg)
{
    produce_ctx *ctx = arg;
    (void)loop; /* NULL only after the loop closed; the caller's object is still ours to finish */
    ctx->cb(ctx->arg, &ctx->ack);
    free(ctx);
}

static void on_append_done(void *arg, const sp_store_ack *ack)
{
    produce_ctx *ctx = arg;
    ctx->ack = *ack;
    if (ack->detail) {
        snprintf(ctx->detail, sizeof ctx->detail, "%s", ack->detail);
        ctx->ack.detail = ctx->detail;
    }
    sp_loop_post(ctx->loop, produce_deliver, ctx);
}

static void on_fire_done(void *arg, const sp_store_ack *ack)
{
    sp_hub *hub = arg;
    if (ack->status != 0) {
        atomic_fetch_add(&hub->produce_failures, 1);
        SP_LOG_WARN("fire-and-forget append failed",
                    SP_LF_INT("partition", ack->partition)
                        SP_LF_STR("error", strerror(-ack->status))
                            SP_LF_STR("detail", ack->detail ? ack->detail : ""));
    }
}

int sp_hub_produce(sp_hub *hub, sp_loop *loop, const char *topic, int32_t partition,
                   const sp_store_record *recs, size_t n, sp_hub_produce_cb cb, void *arg)
{
    if (!cb)
        return sp_backend_append(hub->be, topic, partition, recs, n, on_fire_done, hub);
    produce_ctx *ctx = sp_xmalloc(sizeof *ctx);
    ctx->loop = loop;
    ctx->cb = cb;
    ctx->arg = arg;
    ctx->hub = hub;
    int rc = sp_backend_append(hub->be, topic, partition, recs, n, on_append_done, ctx);
    if (rc != 0)
        free(ctx);
    return rc;
}

/* ---- lifecycle ---------------------------------------------------------------- */

void sp_hub_options_default(sp_hub_options *o)
{
    o->latest_n = 100;
    o->max_schema_bytes = 64 * 1024;
    o->schema_ops = NULL;
    o->sub_queue_records = 8192;
    o->sub_queue_bytes = 2u << 20;
}

int sp_hub_new(sp_backend *be, const char *data_dir, const sp_hub_options *o, sp_hub **out,
               char *err, size_t errlen)
{
    sp_hub *hub = sp_xcalloc(1, sizeof *hub);
    hub->be = be;
    hub->async_reads = sp_backend_store(be) == NULL;
    hub->opts = *o;
    if (hub->opts.latest_n == 0)
        hub->opts.latest_n = 1;
    if (hub->opts.sub_queue_records == 0)
        hub->opts.sub_queue_records = 1;
    if (hub->opts.sub_queue_bytes == 0)
        hub->opts.sub_queue_bytes = 1;
    size_t n = strlen(data_dir) + 16;
    hub->schema_dir = sp_xmalloc(n);
    snprintf(hub->schema_dir, n, "%s/schemas", data_dir);
    if (mkdir(hub->schema_dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", hub->schema_dir, strerror(errno));
        free(hub->schema_dir);
        free(hub);
        return -errno;
    }
    uv_rwlock_init(&hub->lock);
    uv_mutex_init(&hub->change_lock);
    char **names;
    size_t count;
    sp_backend_topic_list(be, &names, &count);
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        sp__hub_topic *t;
        rc = topic_open(hub, names[i], &t, err, errlen);
        if (rc == 0)
            registry_add(hub, t);
    }
    sp_store_topic_list_free(names, count);
    if (rc != 0) {
        sp_hub_free(hub);
        return rc;
    }
    *out = hub;
    return 0;
}

void sp_hub_attach_loops(sp_hub *hub, sp_loop *loops, unsigned n)
{
    hub->loops = loops;
    hub->nloops = n;
    hub->locals = sp_xcalloc(n, sizeof *hub->locals);
    for (size_t i = 0; i < hub->ntopics; i++) {
        sp__hub_topic *t = hub->topics[i];
        broadcast(hub, batch_new(hub, t->name, B_ADD, 0));
        prime(hub, t);
        if (topic_watch(hub, t) != 0)
            SP_LOG_ERROR("hub: cannot watch topic", SP_LF_STR("topic", t->name));
    }
}

void sp_hub_detach(sp_hub *hub)
{
    for (size_t i = 0; hub && i < hub->ntopics; i++) {
        if (hub->topics[i]->watch)
            sp_backend_watch_remove(hub->be, hub->topics[i]->watch);
        hub->topics[i]->watch = NULL;
    }
}

void sp_hub_free(sp_hub *hub)
{
    if (!hub)
        return;
    sp_hub_detach(hub);
    for (size_t i = 0; i < hub->ntopics; i++)
        sp__hub_topic_unref(hub->topics[i]);
    free(hub->topics);
    for (unsigned i = 0; hub->locals && i < hub->nloops; i++) {
        sp__hub_local *l = &hub->locals[i];
        sp__hub_subs_free_local(l);
        for (size_t j = 0; j < l->cap; j++)
            if (l->rings[j].name && l->rings[j].name != (char *)1)
                ring_clear(&l->rings[j], hub->opts.latest_n);
        free(l->rings);
    }
    free(hub->locals);
    uv_rwlock_destroy(&hub->lock);
    uv_mutex_destroy(&hub->change_lock);
    free(hub->schema_dir);
    free(hub);
}

sp_backend *sp_hub_backend(sp_hub *hub)
{
    return hub->be;
}

void sp_hub_get_stats(sp_hub *hub, sp_hub_stats *out)
{
    out->produce_failures = atomic_load(&hub->produce_failures);
    out->records_delivered = atomic_load(&hub->records_delivered);
}
