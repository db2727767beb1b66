/* hub_fixture.h - a store, a hub and one loop driven by the test thread
 * (never started: the test runs it with uv_run), plus a consumer that
 * checks per-partition order as it pops. Header-only, shared by the hub
 * tests. */
#ifndef SP_TESTS_HUB_FIXTURE_H
#define SP_TESTS_HUB_FIXTURE_H

#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/time.h"
#include "hub/hub.h"

typedef struct fx {
    char dir[128];
    sp_store *store; /* owned by be */
    sp_backend *be;
    sp_hub *hub;
    sp_loop loop;
} fx;

/* When set, fx_open hides that the backend is the embedded store (a copy
 * of its table under another name), so the hub reads the way it does on
 * Kafka: subscriptions' catch-up reads on libuv's thread pool. */
static bool fx_async;
static sp_backend_ops fx_async_ops;
/* With fx_async: when set, a read from offset 0 waits on it after reading
 * (a test holds a subscription's first catch-up read back while
 * deliveries reach the loop; the hub's own reads start further on). */
static uv_sem_t *volatile fx_read_gate;
static int (*fx_store_read)(void *, const char *, uint32_t, uint64_t, size_t, size_t,
                            sp_store_records *);

static int fx_gated_read(void *impl, const char *topic, uint32_t partition, uint64_t from,
                         size_t max_records, size_t max_bytes, sp_store_records *out)
{
    int rc = fx_store_read(impl, topic, partition, from, max_records, max_bytes, out);
    uv_sem_t *gate = fx_read_gate;
    if (gate && from == 0)
        uv_sem_wait(gate);
    return rc;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Opens a store (fsync never: these tests do not measure the disk), a hub
 * with the given queue bounds, and one topic. */
static void fx_open(fx *f, const char *topic, const sp_store_topic_config *tc, size_t qrecords,
                    size_t qbytes)
{
    snprintf(f->dir, sizeof f->dir, "%s/spate-hub-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    char logdir[256];
    snprintf(logdir, sizeof logdir, "%s/log", f->dir);
    sp_store_options so;
    sp_store_options_default(&so);
    so.fsync = SP_STORE_FSYNC_NEVER;
    assert_int_equal(sp_store_open(logdir, &so, &f->store), 0);
    f->be = sp_backend_store_new(f->store);
    if (fx_async) {
        fx_async_ops = *f->be->ops;
        fx_async_ops.name = "store-read-on-the-pool";
        fx_store_read = f->be->ops->read;
        fx_async_ops.read = fx_gated_read;
        f->be->ops = &fx_async_ops;
        assert_null(sp_backend_store(f->be));
    }
    sp_hub_options ho;
    sp_hub_options_default(&ho);
    if (qrecords)
        ho.sub_queue_records = qrecords;
    if (qbytes)
        ho.sub_queue_bytes = qbytes;
    char err[256];
    assert_int_equal(sp_hub_new(f->be, f->dir, &ho, &f->hub, err, sizeof err), 0);
    assert_int_equal(sp_hub_topic_create(f->hub, topic, tc, NULL, 0, err, sizeof err), 0);
    assert_int_equal(sp_loop_init(&f->loop, 0), 0);
    sp_hub_attach_loops(f->hub, &f->loop, 1);
}

/* Closes everything; the loop must close with no handle left. */
static void fx_close(fx *f)
{
    assert_int_equal(sp_loop_join(&f->loop), 0);
    sp_hub_free(f->hub);
    sp_backend_close(f->be);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs the loop until done(arg) or `ms` pass; returns done(arg). */
static bool fx_spin(fx *f, bool (*done)(void *), void *arg, int ms)
{
    int64_t until = sp_time_now_ms() + ms;
    while (!done(arg) && sp_time_now_ms() < until) {
        uv_run(&f->loop.uv, UV_RUN_NOWAIT);
        usleep(200);
    }
    uv_run(&f->loop.uv, UV_RUN_NOWAIT);
    return done(arg);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

/* Appends n records {"n":first+i} to one partition, one append per
 * `per_batch` records, with timestamps ts0 + i (ts0 < 0: now). Waits until
 * the store has written them (they are then visible and announced). */
static void fx_append(fx *f, const char *topic, int32_t partition, int first, int n, int per_batch,
                      int64_t ts0)
{
    char(*vals)[32] = calloc((size_t)per_batch, sizeof *vals);
    sp_store_record *recs = calloc((size_t)per_batch, sizeof *recs);
    for (int i = 0; i < n; i += per_batch) {
        int k = n - i < per_batch ? n - i : per_batch;
        for (int j = 0; j < k; j++) {
            int len = snprintf(vals[j], sizeof vals[j], "{\"n\":%d}", first + i + j);
            recs[j] = (sp_store_record){.timestamp = ts0 < 0 ? -1 : ts0 + i + j,
                                        .value = sp_slice_make(vals[j], (size_t)len)};
        }
        int rc;
        while ((rc = sp_store_append(f->store, topic, partition, recs, (size_t)k, NULL, NULL)) ==
               -EAGAIN)
            usleep(1000);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(sp_store_flush(f->store), 0);
    free(vals);
    free(recs);
}

/* ---- a consumer that checks order as it pops --------------------------------- */

#define FX_PARTS 8

typedef struct consumer {
    sp_hub_sub *sub;
    bool pop;            /* pop in the callback */
    long budget;         /* pops allowed in callbacks (-1: unlimited) */
    bool unsub_on_first; /* unsubscribe from inside the first callback */
    uint64_t expect[FX_PARTS];
    bool started[FX_PARTS]; /* expect[] is set from the first event */
    size_t records, gaps, notified;
    uint64_t gap_from[16], gap_to[16];
    uint32_t gap_part[16];
    int end;
    bool order_ok;
} consumer;

static void consumer_init(consumer *c)
{
    memset(c, 0, sizeof *c);
    c->pop = true;
    c->budget = -1;
    c->order_ok = true;
}

/* Checks one event against the per-partition expectation. */
static void consumer_check(consumer *c, const sp_hub_event *ev)
{
    uint32_t p = ev->partition;
    uint64_t first = ev->type == SP_HUB_EV_RECORD ? ev->rec->offset : ev->from;
    if (c->started[p] && first != c->expect[p]) {
        fprintf(stderr, "order: partition %u expected %llu got %llu (%s)\n", p,
                (unsigned long long)c->expect[p], (unsigned long long)first,
                ev->type == SP_HUB_EV_RECORD ? "record" : "gap");
        c->order_ok = false;
    }
    c->started[p] = true;
    if (ev->type == SP_HUB_EV_RECORD) {
        c->expect[p] = ev->rec->offset + 1;
        c->records++;
        return;
    }
    if (c->gaps < 16) {
        c->gap_part[c->gaps] = p;
        c->gap_from[c->gaps] = ev->from;
        c->gap_to[c->gaps] = ev->to;
    }
    c->expect[p] = ev->to + 1;
    c->gaps++;
}

/* Pops what is queued (up to the budget); records END. */
static void consumer_drain(consumer *c)
{
    sp_hub_event ev;
    while (c->budget != 0 && sp_hub_sub_peek(c->sub, &ev)) {
        if (ev.type == SP_HUB_EV_END) {
            c->end = ev.reason;
            return;
        }
        consumer_check(c, &ev);
        sp_hub_sub_pop(c->sub);
        if (c->budget > 0)
            c->budget--;
    }
}

static void consumer_ready(sp_hub_sub *sub, void *arg)
{
    consumer *c = arg;
    c->notified++;
    if (c->unsub_on_first) {
        sp_hub_unsubscribe(sub);
        c->sub = NULL;
        c->unsub_on_first = false;
        return;
    }
    if (c->pop)
        consumer_drain(c);
}

static void consumer_sub(fx *f, consumer *c, const char *topic, const sp_hub_sub_options *o)
{
    assert_int_equal(sp_hub_subscribe(f->hub, &f->loop, topic, o, consumer_ready, c, &c->sub), 0);
}

#endif
