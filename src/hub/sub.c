/* sub.c - subscriptions: a cursor per subscriber over one topic, living
 * on one loop. See hub.h for the contract and docs/internals/STREAMS.md
 * for the model.
 *
 * Each subscribed partition has a `next` offset (the next to queue) and a
 * mode. In catch-up mode the subscription reads the log itself
 * (sp_backend_read on the loop, in chunks bounded by the queue's free room;
 * with an async_reads backend - Kafka, where an old offset is a broker
 * fetch - on libuv's thread pool, one read in flight per subscription,
 * whose completion on the loop queues the records and pumps again),
 * one chunk per subscriber per turn through the loop's run queue: a "pump"
 * message, re-posted while work remains, with a byte budget per pump, so
 * I/O and other subscribers run between chunks. A read that reaches the
 * log's end switches the partition to live mode, where records come from
 * the hub's per-loop deliveries. The switch needs no lock: a record past a
 * read's end_offset was not visible yet, so its delivery is posted after
 * the read and handled after it. Live records below `next` are duplicates
 * (skipped); one above `next` means a hole (the loop missed a delivery) and
 * sends the partition back to catch-up. Both checks together give per
 * partition order with no gap and no duplicate whatever the timing.
 *
 * The queue holds references to shared records (plus gap notices), bounded
 * in records and frame bytes. Catch-up never overfills it; it pauses and
 * resumes when the consumer has popped it below half. A live record that
 * finds it full applies the policy: disconnect (the subscription ends with
 * SP_HUB_END_SLOW) or skip (drop the queue, report what was skipped as
 * gaps, keep the newest records). Each partition also keeps `pos`, the
 * consumer's position (after its last pop): that is the resume cursor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"
#include "hub/hub_int.h"

#define CATCHUP_RECORDS 256
#define CATCHUP_BYTES   (128u << 10)
#define PUMP_BUDGET     (512u << 10) /* log bytes read per pump message, all subscribers */
#define QUEUE_MIN_CAP   16
#define QUEUE_KEEP_CAP  64 /* an emptied queue larger than this gives its memory back */

typedef struct qent {
    sp_hub_rec *rec; /* NULL: a gap notice */
    uint32_t partition;
    uint64_t from, to; /* gap: missed offsets, inclusive */
} qent;

typedef struct part {
    uint64_t next;     /* next offset to queue */
    uint64_t pos;      /* consumer's position: next offset it has not consumed */
    uint64_t end_seen; /* highest log end seen; catch-up backlog is end_seen - next */
    bool live;         /* follows deliveries; else catch-up reads the log */
} part;

struct sp_hub_sub {
    sp_hub *hub;
    sp_loop *loop;
    sp__hub_local *local;
    sp__hub_topic *topic;    /* referenced */
    sp_hub_sub *prev, *next; /* the ring's list, while linked */
    sp_hub_sub *grave_next;  /* graveyard, once dead while the hub is busy */
    sp_hub_sub *run_next;    /* run queue, while in_runq */
    bool linked, in_runq, dead, notify_pending;
    /* A catch-up read is on the thread pool. A dead subscription is freed
     * by the last of: the pump (in_runq), the read's completion (reading). */
    bool reading;
    sp_hub_sub_fn fn;
    void *arg;
    sp_hub_policy policy;
    size_t max_records, max_bytes;
    int end; /* 0 while running; else an end reason or a negative errno */
    qent *q; /* ring buffer, qcap a power of two */
    size_t qcap, qhead, qlen, qrecords, qbytes;
    uint64_t backlog;     /* sum over catch-up partitions of end_seen - next */
    int64_t lag_reported; /* this subscription's share of stats.lag_records */
    uint32_t first, nparts, rr, nlagging;
    part parts[];
};

/* ---- bookkeeping ----------------------------------------------------------- */

static part *part_of(sp_hub_sub *s, uint32_t partition)
{
    uint32_t k = partition - s->first;
    return partition >= s->first && k < s->nparts ? &s->parts[k] : NULL;
}

static void recount_backlog(sp_hub_sub *s)
{
    uint64_t b = 0;
    for (uint32_t k = 0; k < s->nparts; k++)
        if (!s->parts[k].live && s->parts[k].end_seen > s->parts[k].next)
            b += s->parts[k].end_seen - s->parts[k].next;
    s->backlog = b;
}

static void lag_update(sp_hub_sub *s)
{
    int64_t lag = s->dead ? 0 : (int64_t)(s->qrecords + s->backlog);
    SP__HUB_STAT_ADD(s->local->stats.lag_records, lag - s->lag_reported);
    s->lag_reported = lag;
}

static void set_live(sp_hub_sub *s, part *ps, bool live)
{
    if (ps->live == live)
        return;
    ps->live = live;
    s->nlagging = live ? s->nlagging - 1 : s->nlagging + 1;
}

uint64_t sp_hub_sub_lag(const sp_hub_sub *s)
{
    return s->qrecords + s->backlog;
}

bool sp_hub_sub_single(const sp_hub_sub *s)
{
    return s->nparts == 1;
}

/* ---- the queue --------------------------------------------------------------- */

static qent *q_at(const sp_hub_sub *s, size_t i)
{
    return &s->q[(s->qhead + i) & (s->qcap - 1)];
}

static void q_grow(sp_hub_sub *s)
{
    size_t cap = s->qcap ? s->qcap * 2 : QUEUE_MIN_CAP;
    qent *q = sp_xmalloc(cap * sizeof *q);
    for (size_t i = 0; i < s->qlen; i++)
        q[i] = *q_at(s, i);
    free(s->q);
    s->q = q;
    s->qcap = cap;
    s->qhead = 0;
}

static void q_push(sp_hub_sub *s, qent e)
{
    if (s->qlen == s->qcap)
        q_grow(s);
    *q_at(s, s->qlen++) = e;
    if (e.rec) {
        s->qrecords++;
        s->qbytes += e.rec->sse.len;
        SP__HUB_STAT_ADD(s->local->stats.queued_records, 1);
        SP__HUB_STAT_ADD(s->local->stats.queued_bytes, (int64_t)e.rec->sse.len);
    }
    s->notify_pending = true;
}

static void q_release_storage(sp_hub_sub *s)
{
    if (s->qcap > QUEUE_KEEP_CAP) {
        free(s->q);
        s->q = NULL;
        s->qcap = 0;
    }
    s->qhead = 0;
}

static void q_drop_all(sp_hub_sub *s)
{
    for (size_t i = 0; i < s->qlen; i++)
        if (q_at(s, i)->rec)
            sp_hub_rec_unref(q_at(s, i)->rec);
    SP__HUB_STAT_ADD(s->local->stats.queued_records, -(int64_t)s->qrecords);
    SP__HUB_STAT_ADD(s->local->stats.queued_bytes, -(int64_t)s->qbytes);
    s->qlen = s->qrecords = s->qbytes = 0;
    q_release_storage(s);
}

/* A record always fits an empty queue, so one record larger than the byte
 * bound cannot wedge a subscription. */
static bool has_room(const sp_hub_sub *s, size_t frame_len)
{
    return s->qrecords == 0 ||
           (s->qrecords < s->max_records && s->qbytes + frame_len <= s->max_bytes);
}

static void push_rec(sp_hub_sub *s, part *ps, sp_hub_rec *rec)
{
    q_push(s, (qent){rec, rec->partition, 0, 0});
    ps->next = rec->offset + 1;
}

static void push_gap(sp_hub_sub *s, uint32_t partition, uint64_t from, uint64_t to)
{
    q_push(s, (qent){NULL, partition, from, to});
    SP__HUB_STAT_ADD(s->local->stats.gaps, 1);
    SP__HUB_STAT_ADD(s->local->stats.gap_records, to - from + 1);
}

/* ---- lifetime -------------------------------------------------------------- */

static void sub_free(sp_hub_sub *s)
{
    sp__hub_topic_unref(s->topic);
    free(s->q);
    free(s);
}

/* Frees what was unsubscribed while the hub was calling out. */
static void bury(sp__hub_local *l)
{
    while (l->depth == 0 && l->graveyard) {
        sp_hub_sub *s = l->graveyard;
        l->graveyard = s->grave_next;
        sub_free(s);
    }
}

/* Ends a running subscription: the queue goes, the consumer hears END. */
static void sub_end(sp_hub_sub *s, int reason)
{
    if (s->end)
        return;
    q_drop_all(s);
    s->end = reason;
    s->backlog = 0;
    s->notify_pending = true;
    lag_update(s);
}

static void notify(sp_hub_sub *s)
{
    if (!s->dead && s->notify_pending) {
        s->notify_pending = false;
        s->fn(s, s->arg);
    }
}

static void on_pump(sp_loop *loop, void *arg);

static void runq_add(sp_hub_sub *s)
{
    sp__hub_local *l = s->local;
    if (s->in_runq || s->dead)
        return;
    s->in_runq = true;
    s->run_next = NULL;
    if (l->runq_tail)
        l->runq_tail->run_next = s;
    else
        l->runq_head = s;
    l->runq_tail = s;
    if (!l->pump_posted) {
        l->pump_posted = true;
        sp_loop_post(s->loop, on_pump, s->hub);
    }
}

static sp_hub_sub *runq_pop(sp__hub_local *l)
{
    sp_hub_sub *s = l->runq_head;
    l->runq_head = s->run_next;
    if (!l->runq_head)
        l->runq_tail = NULL;
    s->in_runq = false;
    return s;
}

/* ---- catch-up from the log ------------------------------------------------- */

/* The next partition still catching up, round robin. */
static part *next_lagging(sp_hub_sub *s)
{
    for (uint32_t i = 0; i < s->nparts; i++) {
        uint32_t k = (s->rr + i) % s->nparts;
        if (!s->parts[k].live) {
            s->rr = (k + 1) % s->nparts;
            return &s->parts[k];
        }
    }
    return NULL;
}

/* Queues what a read returned, as far as the queue has room; reports the
 * records retention removed below `next` as a gap. Returns frame bytes
 * queued. */
static size_t take_records(sp_hub_sub *s, part *ps, uint32_t p, const sp_store_records *rs)
{
    if (rs->end_offset > ps->end_seen)
        ps->end_seen = rs->end_offset;
    uint64_t avail = rs->count ? rs->records[0].offset : rs->start_offset;
    if (avail > ps->next) {
        push_gap(s, p, ps->next, avail - 1);
        ps->next = avail;
    }
    size_t bytes = 0, taken = 0;
    for (size_t i = 0; i < rs->count; i++) {
        sp_hub_rec *rec = sp__hub_rec_make(p, &rs->records[i]);
        if (!has_room(s, rec->sse.len)) {
            sp_hub_rec_unref(rec);
            break;
        }
        push_rec(s, ps, rec);
        bytes += rec->sse.len;
        taken++;
    }
    SP__HUB_STAT_ADD(s->local->stats.catchup_records, taken);
    /* Live once the read reached the end it saw and no delivery has shown a
     * later end meanwhile: a read on the thread pool completes after
     * deliveries of records it did not see may have been passed over
     * (catch-up partitions skip deliveries); end_seen remembers them. */
    if (ps->next >= rs->end_offset && ps->next >= ps->end_seen)
        set_live(s, ps, true);
    return bytes;
}

/* Queues what a catch-up read of partition p (ps) returned, or ends the
 * subscription on an error. Returns bytes queued (at least 1 when it read,
 * so the pump's budget moves). */
static size_t catchup_apply(sp_hub_sub *s, part *ps, uint32_t p, int rc, sp_store_records *rs)
{
    if (rc == -EUCLEAN) { /* fenced after corruption: nothing more will come */
        set_live(s, ps, true);
        return 0;
    }
    if (rc == 0 && rs->count == 0 && ps->next < rs->end_offset && rs->start_offset <= ps->next) {
        sp_store_records_free(rs);
        rc = -EIO; /* the log promised records and gave none: never spin */
    }
    if (rc != 0) {
        if (rc != -ENOENT)
            SP_LOG_ERROR("hub: subscription read failed",
                         SP_LF_STR("topic", s->topic->name) SP_LF_INT("partition", p)
                             SP_LF_INT("offset", ps->next) SP_LF_INT("error", rc));
        sub_end(s, rc == -ENOENT ? SP_HUB_END_DELETED : rc);
        return 0;
    }
    size_t bytes = take_records(s, ps, p, rs);
    sp_store_records_free(rs);
    recount_backlog(s);
    lag_update(s);
    return bytes ? bytes : 1;
}

/* A catch-up read on the thread pool (async_reads backends). */
typedef struct pool_read {
    uv_work_t work;
    sp_hub_sub *s;
    uint32_t p;
    uint64_t from;
    size_t max_records, max_bytes;
    int rc;
    sp_store_records rs;
} pool_read;

static void pool_read_work(uv_work_t *w)
{
    pool_read *r = w->data;
    sp_hub_sub *s = r->s; /* pinned by s->reading; only the topic name is read here */
    r->rc = sp_backend_read(sp_hub_backend(s->hub), s->topic->name, r->p, r->from, r->max_records,
                            r->max_bytes, &r->rs);
}

static bool below_half(const sp_hub_sub *s);

/* On the subscription's loop: applies the read unless the subscription
 * moved on meanwhile (ended, unsubscribed, or the partition's position
 * changed by a skip), then pumps again while catch-up remains. */
static void pool_read_done(uv_work_t *w, int status)
{
    pool_read *r = w->data;
    sp_hub_sub *s = r->s;
    s->reading = false;
    part *ps = part_of(s, r->p);
    if (status != 0 && r->rc == 0) { /* cancelled: never ran */
        r->rc = status == UV_ECANCELED ? -ECANCELED : -EIO;
        memset(&r->rs, 0, sizeof r->rs);
    }
    bool fresh = !s->dead && !s->end && ps && !ps->live && ps->next == r->from;
    if (fresh) {
        catchup_apply(s, ps, r->p, r->rc, &r->rs); /* queueing asks for a notify */
    } else if (r->rc == 0) {
        sp_store_records_free(&r->rs);
    }
    free(r);
    if (s->dead) {
        if (!s->in_runq)
            sub_free(s);
        return;
    }
    if (!s->end && s->nlagging && has_room(s, 0) && below_half(s))
        runq_add(s);
    notify(s);
}

/* Starts a read of partition p from ps->next on the thread pool. */
static size_t catchup_start_read(sp_hub_sub *s, part *ps, uint32_t p, size_t max_records,
                                 size_t max_bytes)
{
    pool_read *r = sp_xcalloc(1, sizeof *r);
    *r = (pool_read){
        .s = s, .p = p, .from = ps->next, .max_records = max_records, .max_bytes = max_bytes};
    r->work.data = r;
    s->reading = true;
    int rc = uv_queue_work(&s->loop->uv, &r->work, pool_read_work, pool_read_done);
    if (rc != 0) { /* only while the loop closes */
        s->reading = false;
        free(r);
        sub_end(s, -ESHUTDOWN);
        return 0;
    }
    return CATCHUP_BYTES / 4; /* what a read costs the pump's budget: a few per turn */
}

/* One bounded read for one lagging partition, inline or started on the
 * thread pool. Returns bytes read (or the budget a started read costs). */
static size_t catchup_step(sp_hub_sub *s)
{
    if (s->reading)
        return 0; /* its completion pumps again */
    part *ps = next_lagging(s);
    if (!ps || !has_room(s, 0))
        return 0;
    uint32_t p = s->first + (uint32_t)(ps - s->parts);
    size_t room_r = s->qrecords < s->max_records ? s->max_records - s->qrecords : 1;
    size_t room_b = s->qbytes < s->max_bytes ? s->max_bytes - s->qbytes : 1;
    size_t max_r = room_r < CATCHUP_RECORDS ? room_r : CATCHUP_RECORDS;
    size_t max_b = room_b < CATCHUP_BYTES ? room_b : CATCHUP_BYTES;
    if (s->hub->async_reads)
        return catchup_start_read(s, ps, p, max_r, max_b);
    sp_store_records rs;
    int rc =
        sp_backend_read(sp_hub_backend(s->hub), s->topic->name, p, ps->next, max_r, max_b, &rs);
    return catchup_apply(s, ps, p, rc, &rs);
}

static bool below_half(const sp_hub_sub *s)
{
    return s->qrecords <= s->max_records / 2 && s->qbytes <= s->max_bytes / 2;
}

/* One turn of the run queue: a chunk per waiting subscriber until the
 * budget is spent; what remains waits for the next message, so the loop
 * serves I/O in between. Ended subscriptions pass through here to hear
 * about it outside of the code that ended them. */
static void on_pump(sp_loop *loop, void *arg)
{
    if (!loop)
        return; /* the loop is closing; subscriptions are freed with the hub */
    sp_hub *hub = arg;
    sp__hub_local *l = &hub->locals[loop->index];
    l->pump_posted = false;
    l->depth++;
    size_t budget = PUMP_BUDGET;
    while (l->runq_head && budget > 0) {
        sp_hub_sub *s = runq_pop(l);
        if (s->dead) {
            if (!s->reading) /* else the read's completion frees it */
                sub_free(s);
            continue;
        }
        if (!s->end) {
            size_t used = catchup_step(s);
            budget = used >= budget ? 0 : budget - used;
            if (!s->end && !s->reading && s->nlagging && has_room(s, 0) && below_half(s))
                runq_add(s);
        }
        notify(s);
    }
    if (l->runq_head && !l->pump_posted) {
        l->pump_posted = true;
        sp_loop_post(loop, on_pump, hub);
    }
    l->depth--;
    bury(l);
}

static void unlink_sub(sp_hub_sub *s);

/* ---- live delivery ----------------------------------------------------------- */

/* The index from which the newest records of recs[i..n) fill half the
 * queue's bounds (at least one record is kept). */
static size_t keep_from(sp_hub_sub *s, sp_hub_rec *const *recs, size_t n, size_t i)
{
    size_t k = n, kept = 0, bytes = 0;
    while (k > i) {
        const sp_hub_rec *r = recs[k - 1];
        if (part_of(s, r->partition)) {
            if (kept && (kept + 1 > s->max_records / 2 || bytes + r->sse.len > s->max_bytes / 2))
                break;
            kept++;
            bytes += r->sse.len;
        }
        k--;
    }
    return k;
}

/* The skip policy: drop the queue, pass over the older part of this
 * delivery, and queue one gap per partition that lost records. Catch-up
 * partitions lose nothing: they re-read from the consumer's position.
 * Returns where the delivery continues. */
static size_t skip_ahead(sp_hub_sub *s, sp_hub_rec *const *recs, size_t n, size_t i)
{
    SP__HUB_STAT_ADD(s->local->stats.skips, 1);
    q_drop_all(s);
    size_t k0 = keep_from(s, recs, n, i);
    for (size_t j = i; j < k0; j++) {
        part *ps = part_of(s, recs[j]->partition);
        if (ps && ps->live && recs[j]->offset >= ps->next)
            ps->next = recs[j]->offset + 1;
    }
    for (uint32_t k = 0; k < s->nparts; k++) {
        part *ps = &s->parts[k];
        if (!ps->live)
            ps->next = ps->pos;
        else if (ps->next > ps->pos)
            push_gap(s, s->first + k, ps->pos, ps->next - 1);
    }
    if (s->nlagging)
        runq_add(s);
    return k0;
}

/* Offers one delivery to one subscription. */
static void offer(sp_hub_sub *s, sp_hub_rec *const *recs, size_t n)
{
    bool recount = false;
    for (size_t i = 0; i < n && !s->end; i++) {
        sp_hub_rec *rec = recs[i];
        part *ps = part_of(s, rec->partition);
        if (!ps)
            continue;
        if (!has_room(s, rec->sse.len) && ps->live && rec->offset == ps->next) {
            /* a consumer that can take more now is not slow: ask it first */
            s->notify_pending = true;
            notify(s);
            if (s->dead)
                return;
        }
        if (!has_room(s, rec->sse.len) && ps->live && rec->offset == ps->next &&
            s->policy == SP_HUB_POLICY_SKIP) {
            i = skip_ahead(s, recs, n, i); /* continues with the newest records */
            recount = true;
            rec = recs[i];
            ps = part_of(s, rec->partition);
            if (!ps)
                continue;
        }
        if (rec->offset + 1 > ps->end_seen) {
            ps->end_seen = rec->offset + 1;
            recount |= !ps->live;
        }
        if (!ps->live || rec->offset < ps->next)
            continue;                 /* catch-up will read it / already queued */
        if (rec->offset > ps->next) { /* a hole: read it from the log */
            set_live(s, ps, false);
            recount = true;
            runq_add(s);
            continue;
        }
        if (!has_room(s, rec->sse.len)) { /* the disconnect policy */
            SP__HUB_STAT_ADD(s->local->stats.slow_disconnects, 1);
            sub_end(s, SP_HUB_END_SLOW);
            return;
        }
        sp_hub_rec_ref(rec);
        push_rec(s, ps, rec);
    }
    if (recount)
        recount_backlog(s);
    lag_update(s);
}

static sp_hub_sub **scratch(sp__hub_local *l, size_t n)
{
    if (n > l->scratch_cap) {
        l->scratch_cap = n * 2;
        free(l->scratch);
        l->scratch = sp_xmalloc(l->scratch_cap * sizeof *l->scratch);
    }
    return l->scratch;
}

void sp__hub_subs_deliver(sp__hub_local *l, sp__hub_ring *r, sp_hub_rec *const *recs, size_t n)
{
    size_t count = 0;
    for (sp_hub_sub *s = r->subs; s; s = s->next)
        count++;
    sp_hub_sub **subs = scratch(l, count); /* callbacks may (un)subscribe: work on a copy */
    count = 0;
    for (sp_hub_sub *s = r->subs; s; s = s->next)
        subs[count++] = s;
    l->depth++;
    for (size_t i = 0; i < count; i++)
        if (!subs[i]->end && !subs[i]->dead) /* an earlier callback may have unsubscribed it */
            offer(subs[i], recs, n);
    for (size_t i = 0; i < count; i++)
        notify(subs[i]);
    l->depth--;
    bury(l);
}

void sp__hub_subs_topic_gone(sp__hub_local *l, sp__hub_ring *r)
{
    (void)l;
    sp_hub_sub *s = r->subs;
    r->subs = NULL;
    while (s) {
        sp_hub_sub *next = s->next;
        s->linked = false;
        s->prev = s->next = NULL;
        sub_end(s, SP_HUB_END_DELETED);
        runq_add(s); /* hears it from the pump, not from inside this message */
        s = next;
    }
}

void sp__hub_subs_free_local(sp__hub_local *l)
{
    l->depth = 0;
    while (l->runq_head) {
        sp_hub_sub *s = runq_pop(l);
        if (!s->dead)
            unlink_sub(s);
        sub_free(s);
    }
    for (size_t i = 0; i < l->cap; i++) {
        sp__hub_ring *r = &l->rings[i];
        while (r->name && r->name != (char *)1 && r->subs) {
            sp_hub_sub *s = r->subs;
            unlink_sub(s);
            sub_free(s);
        }
    }
    bury(l);
    free(l->scratch);
    l->scratch = NULL;
}

/* ---- subscribe ------------------------------------------------------------- */

static uint64_t cursor_next(const sp_hub_start *st, uint32_t p)
{
    for (size_t i = 0; i < st->npos; i++)
        if (st->pos[i].partition == p)
            return st->pos[i].next;
    return 0;
}

static int start_offset(sp_hub_sub *s, const sp_hub_start *st, uint32_t p,
                        const sp_store_partition_info *pi, uint64_t *next)
{
    switch (st->kind) {
    case SP_HUB_FROM_LATEST: *next = pi->end_offset; return 0;
    case SP_HUB_FROM_EARLIEST: *next = pi->start_offset; return 0;
    case SP_HUB_FROM_OFFSET: *next = st->offset; return 0;
    case SP_HUB_FROM_CURSOR: *next = cursor_next(st, p); return 0;
    case SP_HUB_FROM_TIME:
        return sp_backend_offset_for_time(sp_hub_backend(s->hub), s->topic->name, p, st->time_ms,
                                          next);
    }
    return -EINVAL;
}

/* A subscription from a time on an async_reads backend (Kafka asks the
 * brokers for offsets-for-times): its offsets are found on the thread
 * pool. Meanwhile every partition waits in catch-up at its end, and
 * s->reading keeps the pump from reading and the subscription from being
 * freed under the job. */
typedef struct pool_seek {
    uv_work_t work;
    sp_hub_sub *s;
    int64_t time_ms;
    int rc;
    uint64_t next[]; /* per partition of the subscription */
} pool_seek;

static void pool_seek_work(uv_work_t *w)
{
    pool_seek *q = w->data;
    sp_hub_sub *s = q->s;
    for (uint32_t k = 0; k < s->nparts && q->rc == 0; k++)
        q->rc = sp_backend_offset_for_time(sp_hub_backend(s->hub), s->topic->name, s->first + k,
                                           q->time_ms, &q->next[k]);
}

static void pool_seek_done(uv_work_t *w, int status)
{
    pool_seek *q = w->data;
    sp_hub_sub *s = q->s;
    s->reading = false;
    if (!s->dead && !s->end) {
        int rc = status != 0 ? -ECANCELED : q->rc;
        for (uint32_t k = 0; rc == 0 && k < s->nparts; k++) {
            part *ps = &s->parts[k];
            /* end_seen: the end at subscribe, or later if deliveries came
             * meanwhile (passed over: the partition was catching up) */
            ps->next = ps->pos = q->next[k] < ps->end_seen ? q->next[k] : ps->end_seen;
            if (ps->next >= ps->end_seen)
                set_live(s, ps, true);
        }
        if (rc != 0)
            sub_end(s, rc);
        recount_backlog(s);
        lag_update(s);
        if (!s->end && s->nlagging)
            runq_add(s);
    }
    free(q);
    if (s->dead) {
        if (!s->in_runq)
            sub_free(s);
        return;
    }
    notify(s);
}

static void seek_start(sp_hub_sub *s, int64_t time_ms)
{
    pool_seek *q = sp_xcalloc(1, sizeof *q + s->nparts * sizeof q->next[0]);
    q->s = s;
    q->time_ms = time_ms;
    q->work.data = q;
    s->reading = true;
    if (uv_queue_work(&s->loop->uv, &q->work, pool_seek_work, pool_seek_done) != 0) {
        s->reading = false; /* only while the loop closes */
        free(q);
        sub_end(s, -ESHUTDOWN);
    }
}

static int resolve_start(sp_hub_sub *s, const sp_hub_start *st)
{
    /* the offsets for a time come later, from seek_start */
    bool later = st->kind == SP_HUB_FROM_TIME && s->hub->async_reads;
    sp_store_topic_info info;
    int rc = sp_backend_topic_describe(sp_hub_backend(s->hub), s->topic->name, &info);
    if (rc != 0)
        return rc;
    for (size_t i = 0; st->kind == SP_HUB_FROM_CURSOR && i < st->npos; i++)
        if (st->pos[i].partition >= info.partition_count)
            rc = -EINVAL;
    if (s->first + s->nparts > info.partition_count)
        rc = -EINVAL;
    for (uint32_t k = 0; rc == 0 && k < s->nparts; k++) {
        const sp_store_partition_info *pi = &info.partitions[s->first + k];
        part *ps = &s->parts[k];
        uint64_t next = pi->end_offset;
        if (!later)
            rc = start_offset(s, st, s->first + k, pi, &next);
        if (next > pi->end_offset)
            next = pi->end_offset;
        ps->next = ps->pos = next;
        ps->end_seen = pi->end_offset;
        ps->live = true;
        if (next != pi->end_offset || later)
            set_live(s, ps, false);
    }
    sp_store_topic_info_free(&info);
    return rc;
}

static void link_sub(sp_hub_sub *s)
{
    sp__hub_local *l = s->local;
    sp__hub_ring *r = sp__hub_ring_add(l, s->topic->name, s->hub->opts.latest_n);
    s->next = r->subs;
    if (r->subs)
        r->subs->prev = s;
    r->subs = s;
    s->linked = true;
}

int sp_hub_subscribe(sp_hub *hub, sp_loop *loop, const char *topic, const sp_hub_sub_options *o,
                     sp_hub_sub_fn fn, void *arg, sp_hub_sub **out)
{
    sp__hub_topic *t = sp__hub_topic_get(hub, topic);
    if (!t)
        return -ENOENT;
    bool all = o->partition == SP_STORE_PARTITION_ANY;
    if (!all && (o->partition < 0 || (uint32_t)o->partition >= t->partitions)) {
        sp__hub_topic_unref(t);
        return -EINVAL;
    }
    uint32_t nparts = all ? t->partitions : 1;
    sp_hub_sub *s = sp_xcalloc(1, sizeof *s + nparts * sizeof s->parts[0]);
    *s = (sp_hub_sub){.hub = hub,
                      .loop = loop,
                      .local = &hub->locals[loop->index],
                      .topic = t,
                      .fn = fn,
                      .arg = arg,
                      .policy = o->policy,
                      .first = all ? 0 : (uint32_t)o->partition,
                      .nparts = nparts};
    s->max_records = o->max_records && o->max_records < hub->opts.sub_queue_records
                         ? o->max_records
                         : hub->opts.sub_queue_records;
    s->max_bytes = o->max_bytes && o->max_bytes < hub->opts.sub_queue_bytes
                       ? o->max_bytes
                       : hub->opts.sub_queue_bytes;
    int rc = resolve_start(s, &o->start);
    if (rc != 0) {
        sp__hub_topic_unref(t);
        free(s);
        return rc;
    }
    link_sub(s);
    if (o->start.kind == SP_HUB_FROM_TIME && hub->async_reads)
        seek_start(s, o->start.time_ms);
    atomic_fetch_add(&t->nsubs, 1);
    SP__HUB_STAT_ADD(s->local->stats.subscribers, 1);
    SP__HUB_STAT_ADD(s->local->stats.subscribes, 1);
    recount_backlog(s);
    lag_update(s);
    if (s->nlagging)
        runq_add(s);
    *out = s;
    return 0;
}

static void unlink_sub(sp_hub_sub *s)
{
    if (!s->linked)
        return;
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        sp__hub_ring *r = sp__hub_ring_find(s->local, s->topic->name);
        if (r && r->subs == s)
            r->subs = s->next;
    }
    if (s->next)
        s->next->prev = s->prev;
    s->linked = false;
}

void sp_hub_unsubscribe(sp_hub_sub *s)
{
    if (!s || s->dead)
        return;
    sp__hub_local *l = s->local;
    unlink_sub(s);
    q_drop_all(s);
    s->dead = true;
    lag_update(s);
    atomic_fetch_sub(&s->topic->nsubs, 1);
    SP__HUB_STAT_ADD(l->stats.subscribers, -1);
    if (s->in_runq || s->reading)
        return; /* the pump or the read's completion frees it */
    if (l->depth == 0) {
        sub_free(s);
        return;
    }
    s->grave_next = l->graveyard; /* freed when the hub returns */
    l->graveyard = s;
}

/* ---- consuming ------------------------------------------------------------- */

bool sp_hub_sub_peek(sp_hub_sub *s, sp_hub_event *ev)
{
    if (s->end) {
        *ev = (sp_hub_event){.type = SP_HUB_EV_END, .reason = s->end};
        return true;
    }
    if (s->qlen == 0)
        return false;
    const qent *e = q_at(s, 0);
    if (e->rec)
        *ev = (sp_hub_event){.type = SP_HUB_EV_RECORD, .rec = e->rec, .partition = e->partition};
    else
        *ev = (sp_hub_event){
            .type = SP_HUB_EV_GAP, .partition = e->partition, .from = e->from, .to = e->to};
    return true;
}

void sp_hub_sub_pop(sp_hub_sub *s)
{
    if (s->end || s->qlen == 0)
        return;
    qent e = *q_at(s, 0);
    s->qhead = (s->qhead + 1) & (s->qcap - 1);
    s->qlen--;
    part *ps = part_of(s, e.partition);
    if (e.rec) {
        ps->pos = e.rec->offset + 1;
        s->qrecords--;
        s->qbytes -= e.rec->sse.len;
        SP__HUB_STAT_ADD(s->local->stats.queued_records, -1);
        SP__HUB_STAT_ADD(s->local->stats.queued_bytes, -(int64_t)e.rec->sse.len);
        SP__HUB_STAT_ADD(s->local->stats.records_sent, 1);
        sp_hub_rec_unref(e.rec);
    } else {
        ps->pos = e.to + 1;
    }
    if (s->qlen == 0)
        q_release_storage(s);
    lag_update(s);
    if (s->nlagging && !s->in_runq && below_half(s))
        runq_add(s);
}

void sp_hub_sub_cursor(const sp_hub_sub *s, const sp_hub_event *pending, sp_buf *out)
{
    bool first = true;
    for (uint32_t k = 0; k < s->nparts; k++) {
        uint32_t p = s->first + k;
        uint64_t pos = s->parts[k].pos;
        if (pending && pending->partition == p && pending->type == SP_HUB_EV_RECORD)
            pos = pending->rec->offset + 1;
        else if (pending && pending->partition == p && pending->type == SP_HUB_EV_GAP)
            pos = pending->to + 1;
        if (pos == 0)
            continue;
        sp_buf_printf(out, "%s%u-%llu", first ? "" : ",", p, (unsigned long long)(pos - 1));
        first = false;
    }
}

/* ---- figures ----------------------------------------------------------------- */

unsigned sp_hub_topic_subscribers(sp_hub *hub, const char *topic)
{
    sp__hub_topic *t = sp__hub_topic_get(hub, topic);
    if (!t)
        return 0;
    unsigned n = atomic_load(&t->nsubs);
    sp__hub_topic_unref(t);
    return n;
}

static void put_metric(sp_buf *out, const char *name, const char *type, const char *help,
                       long long value)
{
    sp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name,
                  value);
}

void sp_hub_metrics(sp_hub *hub, sp_buf *out)
{
    sp__hub_sub_stats sum = {0};
    for (unsigned i = 0; hub->locals && i < hub->nloops; i++) {
        const sp__hub_sub_stats *st = &hub->locals[i].stats;
        sum.subscribers += SP__HUB_STAT_GET(st->subscribers);
        sum.queued_records += SP__HUB_STAT_GET(st->queued_records);
        sum.queued_bytes += SP__HUB_STAT_GET(st->queued_bytes);
        sum.lag_records += SP__HUB_STAT_GET(st->lag_records);
        sum.subscribes += SP__HUB_STAT_GET(st->subscribes);
        sum.records_sent += SP__HUB_STAT_GET(st->records_sent);
        sum.catchup_records += SP__HUB_STAT_GET(st->catchup_records);
        sum.gaps += SP__HUB_STAT_GET(st->gaps);
        sum.gap_records += SP__HUB_STAT_GET(st->gap_records);
        sum.skips += SP__HUB_STAT_GET(st->skips);
        sum.slow_disconnects += SP__HUB_STAT_GET(st->slow_disconnects);
    }
    put_metric(out, "spate_produce_failures_total", "counter",
               "Fire-and-forget appends (ack=none) the backend failed; each is also logged.",
               (long long)atomic_load(&hub->produce_failures));
    put_metric(out, "spate_records_delivered_total", "counter",
               "New records the hub handed to the I/O loops (caches and subscribers).",
               (long long)atomic_load(&hub->records_delivered));
    put_metric(out, "spate_subscribers", "gauge", "Live subscriptions (SSE, WebSocket).",
               sum.subscribers);
    put_metric(out, "spate_subscriber_queued_records", "gauge",
               "Records waiting in subscriber queues.", sum.queued_records);
    put_metric(out, "spate_subscriber_queued_bytes", "gauge",
               "Frame bytes referenced by subscriber queues.", sum.queued_bytes);
    put_metric(out, "spate_subscriber_lag_records", "gauge",
               "Records subscribers are behind (queued plus not yet read), summed.",
               sum.lag_records);
    put_metric(out, "spate_subscriptions_total", "counter", "Subscriptions opened.",
               (long long)sum.subscribes);
    put_metric(out, "spate_subscriber_records_sent_total", "counter",
               "Records handed to subscriber connections.", (long long)sum.records_sent);
    put_metric(out, "spate_subscriber_catchup_records_total", "counter",
               "Records subscribers read from the log while catching up.",
               (long long)sum.catchup_records);
    put_metric(out, "spate_subscriber_gaps_total", "counter",
               "Gap notices (retention or skip) queued.", (long long)sum.gaps);
    put_metric(out, "spate_subscriber_gap_records_total", "counter",
               "Records subscribers missed, as reported by gap notices.",
               (long long)sum.gap_records);
    put_metric(out, "spate_subscriber_skips_total", "counter",
               "Times a slow subscriber with the skip policy jumped ahead.", (long long)sum.skips);
    put_metric(out, "spate_subscriber_slow_disconnects_total", "counter",
               "Slow subscribers ended by the disconnect policy.", (long long)sum.slow_disconnects);
    uv_rwlock_rdlock(&hub->lock);
    sp_buf_append_cstr(out, "# HELP spate_topic_subscribers Live subscriptions per topic.\n"
                            "# TYPE spate_topic_subscribers gauge\n");
    for (size_t i = 0; i < hub->ntopics; i++)
        sp_buf_printf(out, "spate_topic_subscribers{topic=\"%s\"} %u\n", hub->topics[i]->name,
                      atomic_load(&hub->topics[i]->nsubs));
    uv_rwlock_rdunlock(&hub->lock);
}
