/* records.c - produce, latest and history:
 *
 *   POST /v1/topics/{t}/records   one JSON value, a JSON array, or NDJSON
 *   GET  /v1/topics/{t}/latest    newest first, from this loop's cache
 *   GET  /v1/topics/{t}/records   history by offset or time, from the log
 *
 * A produce request is all-or-nothing: its records are one append to one
 * partition. With ack=durable (the default) the answer waits for the
 * backend's acknowledgement, bounded by api.ack_timeout (504 then: the
 * outcome is unknown, the records may still become durable). ack=none
 * answers 202 at once; failures are counted and logged. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "api/api_int.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/time.h"

#define MAX_KEY       1024
#define RECS_ON_STACK 16 /* records of a request described without an allocation */

/* ---- produce -------------------------------------------------------------- */

/* Acknowledgement deadlines. Every durable produce waits at most
 * api.ack_timeout_ms, the same for all requests of one sp_api, so the
 * waiting requests of a loop expire in arrival order: one list per (loop,
 * api), oldest first, and one timer per list armed for the oldest deadline
 * (not a uv_timer per request). An acknowledgement unlinks its request in
 * O(1) and leaves the timer alone; when the timer fires it answers 504 to
 * every request past its deadline and re-arms for the new oldest. The list
 * exists while requests wait: the timer keeps its loop alive meanwhile (as
 * an outstanding acknowledgement must, see sp_loop_close_inbox), and the
 * last request out closes it, so no handle outlives its work. Lists are
 * found through a thread-local chain: each loop runs on its own thread. */
typedef struct produce_op produce_op;

typedef struct ack_wait {
    uv_timer_t timer;
    sp_loop *loop;
    const sp_api *api;
    produce_op *head, *tail; /* unanswered requests, oldest first */
    struct ack_wait *next;   /* this thread's other lists */
} ack_wait;

static _Thread_local ack_wait *tl_waits;

struct produce_op {
    sp_http_req *req;
    ack_wait *wait;          /* the list holding it; NULL once answered */
    produce_op *prev, *next; /* in wait's list */
    uint64_t deadline;       /* uv_now() ms */
    int64_t timestamp;       /* producer-supplied, or -1 */
    size_t n;
    void (*respond)(sp_http_req *req, const sp_store_ack *ack, int64_t ts, size_t n);
};

static void wait_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Detaches an empty list from this thread and closes its timer. */
static void wait_close(ack_wait *w)
{
    for (ack_wait **pp = &tl_waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    uv_close((uv_handle_t *)&w->timer, wait_closed);
}

static void wait_unlink(produce_op *op)
{
    ack_wait *w = op->wait;
    if (op->prev)
        op->prev->next = op->next;
    else
        w->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        w->tail = op->prev;
    op->wait = NULL;
    if (!w->head)
        wait_close(w);
}

static void on_ack_timeout(uv_timer_t *t);

static void wait_arm(ack_wait *w)
{
    uint64_t now = uv_now(w->timer.loop);
    uv_timer_start(&w->timer, on_ack_timeout, w->head->deadline > now ? w->head->deadline - now : 0,
                   0);
}

static void on_ack_timeout(uv_timer_t *t)
{
    ack_wait *w = t->data;
    uint64_t now = uv_now(t->loop);
    while (w->head && w->head->deadline <= now) {
        produce_op *op = w->head;
        bool last = op->next == NULL;
        wait_unlink(op); /* closes w when op was the last */
        sp_http_respond_error(op->req, 504,
                              "Timed out waiting for the durable acknowledgement; "
                              "the records may or may not have been stored");
        if (last)
            return;
    }
    wait_arm(w);
}

/* Appends op to its loop's list, creating the list (and its timer) when
 * this is the only request waiting. */
static void wait_add(sp_loop *loop, const sp_api *api, produce_op *op)
{
    ack_wait *w = tl_waits;
    while (w && (w->loop != loop || w->api != api))
        w = w->next;
    bool fresh = w == NULL;
    if (fresh) {
        w = sp_xcalloc(1, sizeof *w);
        uv_timer_init(&loop->uv, &w->timer);
        w->timer.data = w;
        w->loop = loop;
        w->api = api;
        w->next = tl_waits;
        tl_waits = w;
    }
    op->deadline = uv_now(&loop->uv) + api->opts.ack_timeout_ms;
    op->wait = w;
    op->next = NULL;
    op->prev = w->tail;
    if (w->tail)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    if (fresh)
        wait_arm(w);
}

/* Maps a backend error (and the backend's own text, or NULL) to an HTTP
 * answer; 503s carry Retry-After. */
static void respond_errno(sp_http_req *req, int err, const char *detail, const char *topic)
{
    static const sp_http_header retry[] = {
        {{"Retry-After", 11}, {"1", 1}},
        {{"Content-Type", 12}, {"application/json", 16}},
    };
    if (err == -ENOENT && topic[0]) {
        sp__api_errorf(req, 404, "Topic '%s' not found", topic);
        return;
    }
    char msg[400], body[1024];
    int status = sp__api_append_error(err, detail, msg, sizeof msg);
    sp_buf b = {body, 0, sizeof body - 1, sizeof body - 1};
    sp_json_detail(&b, sp_slice_make(msg, strlen(msg)));
    if (status == 503)
        sp_http_respond(req, 503, retry, 2, sp_buf_slice(&b));
    else
        sp_http_respond(req, status, retry + 1, 1, sp_buf_slice(&b));
}

/* Appends {"id":"P-O","partition":P,"offset":O,"timestamp":T} after sep;
 * the caller reserved room. */
static void append_position(sp_buf *b, const char *sep, uint32_t partition, uint64_t offset,
                            int64_t ts)
{
    sp_buf_append_cstr(b, sep);
    sp_buf_append_cstr(b, "{\"id\":\"");
    sp_buf_append_u64(b, partition);
    sp_buf_putc(b, '-');
    sp_buf_append_u64(b, offset);
    sp_buf_append_cstr(b, "\",\"partition\":");
    sp_buf_append_u64(b, partition);
    sp_buf_append_cstr(b, ",\"offset\":");
    sp_buf_append_u64(b, offset);
    sp_buf_append_cstr(b, ",\"timestamp\":");
    sp_buf_append_i64(b, ts);
    sp_buf_putc(b, '}');
}

static void respond_records(sp_http_req *req, const sp_store_ack *ack, int64_t ts, size_t n)
{
    sp_buf *b = sp_http_req_scratch(req);
    if (sp_buf_reserve(b, 16 + n * 112) != 0) { /* 112: one entry at its widest */
        sp_http_respond_error(req, 500,
                              "The records are stored, but the list of their offsets "
                              "exceeds http.max_output_bytes; lower api.max_batch_records");
        return;
    }
    sp_buf_append_cstr(b, "{\"records\":[");
    for (size_t i = 0; i < n; i++) /* appends, not printf: this runs per record */
        append_position(b, i ? "," : "", ack->partition, ack->base_offset + i,
                        ts >= 0 ? ts : ack->timestamp);
    sp_buf_append_cstr(b, "]}");
    sp_http_respond_json(req, 200, sp_buf_slice(b));
}

/* Runs exactly once per durable request, answered or timed out. */
static void on_ack(void *arg, const sp_store_ack *ack)
{
    produce_op *op = arg;
    if (op->wait) {
        wait_unlink(op);
        if (ack->status != 0)
            respond_errno(op->req, ack->status, ack->detail, "");
        else
            op->respond(op->req, ack, op->timestamp, op->n);
    }
    free(op);
}

/* Reads ?key= (percent-decoded) or the X-Spate-Key header. */
static bool get_key(sp_http_req *req, char *buf, sp_slice *key)
{
    sp_slice q;
    *key = SP_SLICE_NULL;
    if (sp_http_req_query_param(req, "key", &q)) {
        long n = sp__api_unescape(q, buf, MAX_KEY);
        if (n < 0) {
            sp_http_respond_error(req, 422,
                                  "Query parameter 'key' is badly escaped or over 1024 bytes");
            return false;
        }
        *key = sp_slice_make(buf, (size_t)n);
        return true;
    }
    sp_slice h = sp_http_req_header(req, SP_SLICE_LIT("x-spate-key"));
    if (h.base) {
        if (h.len > MAX_KEY) {
            sp_http_respond_error(req, 422, "Header X-Spate-Key is over 1024 bytes");
            return false;
        }
        *key = h;
    }
    return true;
}

typedef struct produce_args {
    int32_t partition;
    int64_t timestamp;
    bool durable;
} produce_args;

static bool parse_produce_args(sp_http_req *req, sp_api *api, produce_args *a)
{
    sp_slice ack;
    a->durable = true;
    if (sp_http_req_query_param(req, "ack", &ack)) {
        if (sp_slice_eq_cstr(ack, "none"))
            a->durable = false;
        else if (!sp_slice_eq_cstr(ack, "durable")) {
            sp_http_respond_error(req, 422, "Query parameter 'ack' must be 'durable' or 'none'");
            return false;
        }
    }
    (void)api;
    uint64_t v;
    sp_slice tmp;
    a->partition = SP_STORE_PARTITION_ANY;
    if (sp_http_req_query_param(req, "partition", &tmp)) {
        if (!sp__api_query_u64(req, "partition", 0, 0, 1023, &v))
            return false;
        a->partition = (int32_t)v;
    }
    a->timestamp = -1;
    if (sp_http_req_query_param(req, "timestamp", &tmp)) {
        if (!sp__api_query_u64(req, "timestamp", 0, 0, 1ull << 52, &v))
            return false;
        a->timestamp = (int64_t)v;
    }
    return true;
}

void sp__api_produce(sp_http_req *req, sp_api *api, const char *topic, bool single,
                     void (*respond)(sp_http_req *, const sp_store_ack *, int64_t, size_t))
{
    produce_args a;
    char keybuf[MAX_KEY];
    sp_slice key;
    sp__api_batch batch = {0};
    if (!parse_produce_args(req, api, &a) || !get_key(req, keybuf, &key))
        return;
    sp_hub_schema *schema = sp_hub_schema_acquire(api->hub, topic);
    bool ok = sp__api_parse_records(req, api, single, schema != NULL, &batch) &&
              sp__api_validate(req, api, schema, &batch);
    sp_hub_schema_release(schema);
    if (!ok) {
        sp__api_batch_free(&batch);
        return;
    }
    sp_store_record small[RECS_ON_STACK];
    sp_store_record *recs = batch.n <= RECS_ON_STACK ? small : sp_xmalloc(batch.n * sizeof *recs);
    for (size_t i = 0; i < batch.n; i++)
        recs[i] = (sp_store_record){.timestamp = a.timestamp, .key = key, .value = batch.raw[i]};
    sp_loop *loop = sp_http_req_loop(req);
    int rc;
    if (!a.durable) {
        rc = sp_hub_produce(api->hub, loop, topic, a.partition, recs, batch.n, NULL, NULL);
        if (rc == 0)
            sp_http_respond_json(req, 202, SP_SLICE_LIT("{\"status\":\"accepted\"}"));
    } else {
        produce_op *op = sp_xmalloc(sizeof *op);
        *op = (produce_op){.req = req, .timestamp = a.timestamp, .n = batch.n, .respond = respond};
        rc = sp_hub_produce(api->hub, loop, topic, a.partition, recs, batch.n, on_ack, op);
        if (rc == 0)
            wait_add(loop, api, op); /* the ack runs later, on this loop */
        else
            free(op);
    }
    if (rc != 0)
        respond_errno(req, rc, NULL, topic);
    if (recs != small)
        free(recs);
    sp__api_batch_free(&batch);
}

static void produce(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    char topic[SP_API_TOPIC_MAX + 1];
    if (sp__api_topic_param(req, api, topic, true))
        sp__api_produce(req, api, topic, false, respond_records);
}

/* ---- latest ----------------------------------------------------------------- */

static void latest(sp_http_req *req, void *udata)
{
    sp_api *api = udata;
    char topic[SP_API_TOPIC_MAX + 1];
    uint64_t limit;
    if (!sp__api_topic_param(req, api, topic, false) ||
        !sp__api_query_u64(req, "limit", 10, 1, 100000, &limit))
        return;
    const sp_hub_rec *recs[1024];
    if (limit > 1024)
        limit = 1024;
    int n = sp_hub_latest(api->hub, sp_http_req_loop(req), topic, (size_t)limit, recs);
    if (n < 0) {
        sp__api_errorf(req, 404, "Topic '%s' not found", topic);
        return;
    }
    sp__api_respond_recs(req, recs, (size_t)n, false);
}

/* Rendered arrays, per thread (each loop has its own: no lock). GET
 * /latest-news answers the same newest 10 until a record arrives, so the
 * array is rendered once and then copied straight into the response. An
 * entry holds a reference on every record it was rendered from: while it
 * lives those pointers cannot be reused, so the same pointers in the same
 * order mean the same records, and the same bytes. Bounded: RECS_CACHE
 * entries of at most RECS_CACHE_RECS records and RECS_CACHE_BYTES bytes
 * per thread, least recently used replaced; freed at thread exit. */
#define RECS_CACHE       4
#define RECS_CACHE_RECS  64
#define RECS_CACHE_BYTES (64 * 1024)

typedef struct recs_entry {
    sp_hub_rec *recs[RECS_CACHE_RECS]; /* referenced */
    size_t n;                          /* 0: empty */
    bool values_only;
    char *body;
    size_t len;
    uint64_t used; /* tick of the last hit */
} recs_entry;

typedef struct recs_cache {
    recs_entry e[RECS_CACHE];
    uint64_t tick;
} recs_cache;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static _Thread_local recs_cache *tl_cache;

static void entry_clear(recs_entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        sp_hub_rec_unref(e->recs[i]);
    free(e->body);
    e->n = 0;
    e->body = NULL;
}

static void cache_free(void *p)
{
    recs_cache *c = p;
    for (size_t i = 0; i < RECS_CACHE; i++)
        entry_clear(&c->e[i]);
    free(c);
}

static void cache_key_make(void)
{
    pthread_key_create(&cache_key, cache_free);
}

static recs_cache *cache_get(void)
{
    if (!tl_cache) {
        pthread_once(&cache_once, cache_key_make);
        tl_cache = sp_xcalloc(1, sizeof *tl_cache);
        pthread_setspecific(cache_key, tl_cache); /* frees it when the thread ends */
    }
    return tl_cache;
}

static recs_entry *cache_find(recs_cache *c, const sp_hub_rec *const *recs, size_t n,
                              bool values_only)
{
    for (size_t k = 0; k < RECS_CACHE; k++) {
        recs_entry *e = &c->e[k];
        if (e->n != n || e->values_only != values_only)
            continue;
        size_t i = 0;
        while (i < n && e->recs[i] == recs[i])
            i++;
        if (i == n) {
            e->used = ++c->tick;
            return e;
        }
    }
    return NULL;
}

static void cache_put(recs_cache *c, const sp_hub_rec *const *recs, size_t n, bool values_only,
                      sp_slice body)
{
    recs_entry *e = &c->e[0];
    for (size_t k = 1; k < RECS_CACHE; k++)
        if (c->e[k].used < e->used)
            e = &c->e[k];
    entry_clear(e);
    for (size_t i = 0; i < n; i++) {
        e->recs[i] = (sp_hub_rec *)recs[i];
        sp_hub_rec_ref(e->recs[i]);
    }
    e->body = sp_xmalloc(body.len);
    memcpy(e->body, body.base, body.len);
    e->len = body.len;
    e->n = n;
    e->values_only = values_only;
    e->used = ++c->tick;
}

static void too_large(sp_http_req *req)
{
    sp_http_respond_error(req, 500,
                          "Response would exceed http.max_output_bytes; ask for fewer records");
}

void sp__api_respond_recs(sp_http_req *req, const sp_hub_rec *const *recs, size_t n,
                          bool values_only)
{
    sp_buf *b = sp_http_req_scratch(req);
    bool cacheable = n > 0 && n <= RECS_CACHE_RECS;
    recs_cache *c = cacheable ? cache_get() : NULL;
    recs_entry *e = c ? cache_find(c, recs, n, values_only) : NULL;
    if (e) {
        if (e->len > b->limit - b->len)
            too_large(req);
        else
            sp_http_respond_json(req, 200, sp_slice_make(e->body, e->len));
        return;
    }
    size_t need = 2; /* an upper bound: a non-JSON value is escaped at most 6x */
    for (size_t i = 0; i < n; i++)
        need += 1 + (!values_only             ? recs[i]->json.len
                     : recs[i]->value_is_json ? recs[i]->value.len
                                              : 6 * recs[i]->value.len + 2);
    if (sp_buf_reserve(b, need) != 0) {
        too_large(req);
        return;
    }
    size_t start = b->len;
    sp_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            sp_buf_putc(b, ',');
        if (!values_only)
            sp_buf_append_slice(b, recs[i]->json);
        else if (recs[i]->value_is_json)
            sp_buf_append_slice(b, recs[i]->value);
        else
            sp_json_str(b, recs[i]->value);
    }
    sp_buf_putc(b, ']');
    sp_slice body = sp_slice_make(b->base + start, b->len - start);
    if (c && body.len <= RECS_CACHE_BYTES)
        cache_put(c, recs, n, values_only, body);
    sp_http_respond_json(req, 200, body);
}

/* ---- history ------------------------------------------------------------------ */

/* A history read: the request's arguments, parsed on the loop; the
 * resolution of `from` and the read itself, which may wait on the backend;
 * the answer, built on the loop.
 *
 * On the embedded store everything runs inline (reads come from the page
 * cache). On Kafka a read outside the in-memory window is a broker fetch
 * (up to kafka.spate.read_timeout) and from_time asks the brokers for
 * offsets: the op runs on libuv's thread pool and the answer is sent from
 * the request's loop, so a slow read never stalls the loop's other
 * connections. At most api.max_pending_reads wait at once; past that the
 * answer is 503 with Retry-After (the pool's queue never grows without
 * bound). */
typedef enum from_kind { FROM_EARLIEST, FROM_LATEST, FROM_OFFSET, FROM_TIME } from_kind;

typedef struct read_op {
    uv_work_t work;
    sp_http_req *req;
    sp_api *api;
    char topic[SP_API_TOPIC_MAX + 1];
    uint32_t partition;
    size_t limit;
    from_kind kind;
    uint64_t offset; /* FROM_OFFSET */
    int64_t ms;      /* FROM_TIME */
    uint64_t from;   /* resolved */
    bool pooled;     /* runs on the thread pool: counted in api->pending_reads */
    int status;      /* 0, or the HTTP status of a failure described in err */
    char err[SP_API_TOPIC_MAX + 128];
    sp_store_records rs;
} read_op;

/* Parses from= / from_time= into op; answers 422 and returns false when
 * malformed. */
static bool parse_from(sp_http_req *req, read_op *op)
{
    sp_slice v;
    if (sp_http_req_query_param(req, "from_time", &v)) {
        unsigned long long n;
        char text[64];
        long tl = sp__api_unescape(v, text, sizeof text);
        op->kind = FROM_TIME;
        if (sp_slice_to_u64(v, 1ull << 52, &n) == 0) {
            op->ms = (int64_t)n;
        } else if (tl <= 0 ||
                   sp_time_parse_iso8601(sp_slice_make(text, (size_t)tl), &op->ms) != 0) {
            sp_http_respond_error(req, 422,
                                  "Query parameter 'from_time' must be milliseconds since "
                                  "the epoch or an ISO 8601 time (2026-11-23T19:30:00Z)");
            return false;
        }
        return true;
    }
    if (!sp_http_req_query_param(req, "from", &v) || sp_slice_eq_cstr(v, "earliest")) {
        op->kind = FROM_EARLIEST;
    } else if (sp_slice_eq_cstr(v, "latest")) {
        op->kind = FROM_LATEST;
    } else {
        unsigned long long o;
        if (sp_slice_to_u64(v, ~0ULL, &o) != 0) {
            sp_http_respond_error(
                req, 422, "Query parameter 'from' must be an offset, 'earliest' or 'latest'");
            return false;
        }
        op->kind = FROM_OFFSET;
        op->offset = o;
    }
    return true;
}

/* Resolves op->from and reads; on failure sets op->status and op->err.
 * Touches no request: runs on the loop or on the thread pool. */
static void read_work(uv_work_t *w)
{
    read_op *op = w->data;
    sp_backend *be = sp_hub_backend(op->api->hub);
    int rc;
    if (op->kind == FROM_TIME) {
        rc = sp_backend_offset_for_time(be, op->topic, op->partition, op->ms, &op->from);
        if (rc != 0) {
            op->status = rc == -ENOENT ? 404 : rc == -ETIMEDOUT ? 504 : 422;
            snprintf(op->err, sizeof op->err, "Cannot seek by time: %s", strerror(-rc));
            return;
        }
    } else {
        sp_store_topic_info info;
        if (sp_backend_topic_describe(be, op->topic, &info) != 0) {
            op->status = 404;
            snprintf(op->err, sizeof op->err, "Topic '%s' not found", op->topic);
            return;
        }
        bool ok = op->partition < info.partition_count;
        uint64_t start = ok ? info.partitions[op->partition].start_offset : 0;
        uint64_t end = ok ? info.partitions[op->partition].end_offset : 0;
        sp_store_topic_info_free(&info);
        if (!ok) {
            op->status = 422;
            snprintf(op->err, sizeof op->err, "Topic '%s' has no partition %u", op->topic,
                     op->partition);
            return;
        }
        op->from = op->kind == FROM_EARLIEST ? start
                   : op->kind == FROM_LATEST ? end
                   : op->offset > end        ? end
                                             : op->offset;
    }
    rc = sp_backend_read(be, op->topic, op->partition, op->from, op->limit, 1 << 20, &op->rs);
    if (rc != 0) {
        op->status = rc == -ENOENT ? 404 : rc == -ETIMEDOUT ? 504 : 500;
        snprintf(op->err, sizeof op->err, "Read failed: %s", strerror(-rc));
    }
}

/* Answers on the request's loop and frees op. */
static void read_done(uv_work_t *w, int status)
{
    read_op *op = w->data;
    (void)status; /* never cancelled: the work is queued and run */
    sp_http_req *req = op->req;
    if (op->pooled)
        atomic_fetch_sub(&op->api->pending_reads, 1);
    if (op->status) {
        sp_http_respond_error(req, op->status, op->err);
        free(op);
        return;
    }
    const sp_store_records *rs = &op->rs;
    sp_buf *b = sp_http_req_scratch(req);
    sp_buf_append_cstr(b, "{\"records\":[");
    size_t n = rs->count < op->limit ? rs->count : op->limit;
    for (size_t i = 0; i < n; i++) {
        /* Stop before a record that might not fit (escaping grows a key or
         * a non-JSON value at most 6x): `next` then points at it. */
        const sp_store_record *r = &rs->records[i];
        size_t worst = 256 + 6 * (r->key.len + r->value.len);
        if (b->limit - b->len < worst + 128) {
            n = i;
            break;
        }
        if (i)
            sp_buf_putc(b, ',');
        sp_hub_envelope(b, op->partition, r);
    }
    uint64_t next = n ? rs->records[n - 1].offset + 1 : op->from;
    sp_buf_printf(b,
                  "],\"partition\":%llu,\"next\":%llu,\"start_offset\":%llu,\"end_offset\":%llu}",
                  (unsigned long long)op->partition, (unsigned long long)next,
                  (unsigned long long)rs->start_offset, (unsigned long long)rs->end_offset);
    sp_store_records_free(&op->rs);
    free(op);
    sp_http_respond_json(req, 200, sp_buf_slice(b));
}

static void history(sp_http_req *req, void *udata)
{
    static const sp_http_header retry[] = {
        {{"Retry-After", 11}, {"1", 1}},
        {{"Content-Type", 12}, {"application/json", 16}},
    };
    sp_api *api = udata;
    uint64_t partition, limit;
    read_op *op = sp_xcalloc(1, sizeof *op);
    if (!sp__api_topic_param(req, api, op->topic, true) ||
        !sp__api_query_u64(req, "partition", 0, 0, 1023, &partition) ||
        !sp__api_query_u64(req, "limit", 100, 1, api->opts.max_read_records, &limit) ||
        !parse_from(req, op)) {
        free(op);
        return;
    }
    op->req = req;
    op->api = api;
    op->partition = (uint32_t)partition;
    op->limit = (size_t)limit;
    op->work.data = op;
    if (sp_backend_store(sp_hub_backend(api->hub))) { /* embedded: inline */
        read_work(&op->work);
        read_done(&op->work, 0);
        return;
    }
    size_t max = api->opts.max_pending_reads ? api->opts.max_pending_reads : 64;
    if (atomic_fetch_add(&api->pending_reads, 1) >= max) {
        atomic_fetch_sub(&api->pending_reads, 1);
        free(op);
        char body[160];
        int len =
            snprintf(body, sizeof body,
                     "{\"detail\":\"Too many history reads in progress (api.max_pending_reads "
                     "= %zu), retry later\"}",
                     max);
        sp_http_respond(req, 503, retry, 2, sp_slice_make(body, (size_t)len));
        return;
    }
    op->pooled = true;
    int rc = uv_queue_work(&sp_http_req_loop(req)->uv, &op->work, read_work, read_done);
    if (rc != 0) { /* only when the loop is closing */
        atomic_fetch_sub(&api->pending_reads, 1);
        free(op);
        sp__api_errorf(req, 503, "Cannot queue the read: %s", uv_strerror(rc));
    }
}

int sp__api_register_records(sp_router *r, sp_api *api)
{
    /* appends are ordered by the log's queue: pipelined ones need not wait */
    int rc = sp_router_add_flags(r, SP_HTTP_POST, "/v1/topics/{t}/records", produce, api,
                                 SP_ROUTE_ORDERED);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}/records", history, api);
    rc = rc ? rc : sp_router_add(r, SP_HTTP_GET, "/v1/topics/{t}/latest", latest, api);
    return rc;
}
