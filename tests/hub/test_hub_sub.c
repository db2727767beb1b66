/* Hub subscriptions against a real store, one loop driven by the test:
 * catch-up then live with no gap and no duplicate (also while producers
 * append during catch-up), resume cursors, retention gaps, both slow-
 * consumer policies, topic deletion, unsubscribing from a callback, and
 * the loop closing clean every time. */
#include <pthread.h>

#include "hub_fixture.h"

static const sp_store_topic_config one_part = {.partitions = 1};

typedef struct want {
    consumer *c;
    size_t records;
} want;

static bool got_records(void *arg)
{
    want *w = arg;
    return w->c->records >= w->records || w->c->end;
}

static bool got_end(void *arg)
{
    return ((consumer *)arg)->end != 0;
}

static bool got_notified(void *arg)
{
    return ((consumer *)arg)->notified > 0;
}

static bool got_twice(void *arg)
{
    return ((consumer *)arg)->notified >= 2;
}

static sp_hub_sub_options from(sp_hub_from kind)
{
    return (sp_hub_sub_options){.partition = SP_STORE_PARTITION_ANY, .start = {.kind = kind}};
}

/* ---- catch-up, then live ------------------------------------------------- */

static void test_catchup_then_live(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 16, 0); /* a small queue: catch-up pauses and resumes */
    fx_append(&f, "t", 0, 0, 1000, 100, -1);
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = from(SP_HUB_FROM_EARLIEST);
    consumer_sub(&f, &c, "t", &o);
    want w = {&c, 1000};
    assert_true(fx_spin(&f, got_records, &w, 10000));
    fx_append(&f, "t", 0, 1000, 50, 7, -1);
    w.records = 1050;
    assert_true(fx_spin(&f, got_records, &w, 10000));
    assert_int_equal(c.end, 0);
    assert_true(c.order_ok);
    assert_int_equal(c.expect[0], 1050);
    assert_int_equal(c.gaps, 0);
    assert_int_equal(sp_hub_sub_lag(c.sub), 0);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

static void test_latest_sees_only_new(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    fx_append(&f, "t", 0, 0, 10, 10, -1);
    fx_spin(&f, never, NULL, 20); /* the earlier delivery reaches the loop first */
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = from(SP_HUB_FROM_LATEST);
    consumer_sub(&f, &c, "t", &o);
    fx_append(&f, "t", 0, 10, 5, 1, -1);
    want w = {&c, 5};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(c.order_ok);
    assert_int_equal(c.records, 5);
    assert_int_equal(c.expect[0], 15);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

/* The envelope: headers (Kafka's) appear in order, repeated names kept,
 * a null value as null; a record without headers has no "headers". */
static void test_envelope_headers(void **state)
{
    (void)state;
    sp_store_header h[3] = {{SP_SLICE_LIT("trace"), SP_SLICE_LIT("a\"b")},
                            {SP_SLICE_LIT("trace"), SP_SLICE_LIT("2")},
                            {SP_SLICE_LIT("empty"), SP_SLICE_NULL}};
    sp_store_record r = {.offset = 7,
                         .timestamp = 1000,
                         .key = SP_SLICE_LIT("k"),
                         .value = SP_SLICE_LIT("{\"x\":1}"),
                         .headers = h,
                         .header_count = 3};
    sp_buf b;
    sp_buf_init(&b, SP_BUF_UNLIMITED);
    sp_hub_envelope(&b, 2, &r);
    sp_buf_putc(&b, '\0');
    assert_string_equal(b.base,
                        "{\"id\":\"2-7\",\"partition\":2,\"offset\":7,\"timestamp\":1000,"
                        "\"key\":\"k\",\"value\":{\"x\":1},\"headers\":[{\"name\":\"trace\","
                        "\"value\":\"a\\\"b\"},{\"name\":\"trace\",\"value\":\"2\"},"
                        "{\"name\":\"empty\",\"value\":null}]}");
    b.len = 0;
    r.header_count = 0;
    sp_hub_envelope(&b, 2, &r);
    sp_buf_putc(&b, '\0');
    assert_null(strstr(b.base, "headers"));
    sp_buf_free(&b);
}

/* A topic the backend has but the hub was never told of (in Kafka mode:
 * created by another spate or a Kafka tool) is adopted on first use: its
 * history and new records reach subscribers and the latest cache. */
static void test_adopts_topic_created_elsewhere(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    sp_store_topic_config two = {.partitions = 2};
    assert_int_equal(sp_store_topic_create(f.store, "elsewhere", &two), 0);
    fx_append(&f, "elsewhere", 1, 0, 20, 5, -1);
    assert_false(sp_hub_topic_exists(f.hub, "nowhere"));
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = from(SP_HUB_FROM_EARLIEST);
    consumer_sub(&f, &c, "elsewhere", &o); /* adopts it */
    fx_append(&f, "elsewhere", 0, 20, 10, 5, -1);
    want w = {&c, 30};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(c.order_ok);
    assert_int_equal(c.expect[0], 10);
    assert_int_equal(c.expect[1], 20);
    const sp_hub_rec *recs[8];
    assert_int_equal(sp_hub_latest(f.hub, &f.loop, "elsewhere", 8, recs), 8);
    assert_int_equal(recs[0]->partition, 0); /* the newest: appended after adoption */
    assert_int_equal(recs[0]->offset, 9);
    sp_hub_unsubscribe(c.sub);
    assert_int_equal(sp_hub_topic_delete(f.hub, "elsewhere"), 0);
    assert_false(sp_hub_topic_exists(f.hub, "elsewhere"));
    fx_close(&f);
}

/* Producers append while the subscriber is still reading history: the
 * switch from the log to live deliveries must lose and repeat nothing. */
typedef struct producer {
    fx *f;
    int first, n;
} producer;

static void *produce_thread(void *arg)
{
    producer *p = arg;
    fx_append(p->f, "t", 0, p->first, p->n, 3, -1);
    return NULL;
}

static void test_catchup_races_appends(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 64, 0);
    fx_append(&f, "t", 0, 0, 3000, 500, -1);
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = from(SP_HUB_FROM_EARLIEST);
    consumer_sub(&f, &c, "t", &o);
    producer p = {&f, 3000, 3000};
    pthread_t th;
    pthread_create(&th, NULL, produce_thread, &p);
    want w = {&c, 6000};
    bool ok = fx_spin(&f, got_records, &w, 30000);
    pthread_join(th, NULL);
    ok = ok || fx_spin(&f, got_records, &w, 10000);
    assert_true(ok);
    assert_true(c.order_ok);
    assert_int_equal(c.records, 6000);
    assert_int_equal(c.gaps, 0);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

/* ---- start positions --------------------------------------------------------- */

static void test_resume_from_record_id(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    fx_append(&f, "t", 0, 0, 20, 20, -1);
    sp_hub_pos pos[4];
    assert_int_equal(sp_hub_cursor_parse(SP_SLICE_LIT("0-11"), pos, 4), 1);
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = {.partition = 0,
                            .start = {.kind = SP_HUB_FROM_CURSOR, .pos = pos, .npos = 1}};
    consumer_sub(&f, &c, "t", &o);
    c.started[0] = true;
    c.expect[0] = 12;
    want w = {&c, 8};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(c.order_ok);
    assert_int_equal(c.expect[0], 20);
    sp_buf b;
    sp_buf_init(&b, 1024);
    sp_hub_sub_cursor(c.sub, NULL, &b);
    assert_string_equal(b.base, "0-19");
    sp_buf_free(&b);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

static void test_from_time(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    fx_append(&f, "t", 0, 0, 10, 10, 1000); /* timestamps 1000..1009 */
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = {.partition = 0, .start = {.kind = SP_HUB_FROM_TIME, .time_ms = 1004}};
    consumer_sub(&f, &c, "t", &o);
    c.started[0] = true;
    c.expect[0] = 4;
    want w = {&c, 6};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(c.order_ok);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

/* A multi-partition cursor taken mid-stream resumes each partition exactly. */
static void test_multi_partition_cursor(void **state)
{
    (void)state;
    fx f;
    sp_store_topic_config three = {.partitions = 3};
    fx_open(&f, "t", &three, 0, 0);
    for (int32_t p = 0; p < 3; p++)
        fx_append(&f, "t", p, 0, 10, 10, -1);
    consumer a;
    consumer_init(&a);
    a.budget = 14;
    sp_hub_sub_options o = from(SP_HUB_FROM_EARLIEST);
    consumer_sub(&f, &a, "t", &o);
    assert_false(sp_hub_sub_single(a.sub));
    want w = {&a, 14};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(a.order_ok);
    sp_buf b;
    sp_buf_init(&b, 4096);
    sp_hub_sub_cursor(a.sub, NULL, &b);
    sp_hub_unsubscribe(a.sub);
    sp_hub_pos pos[4];
    int n = sp_hub_cursor_parse(sp_buf_slice(&b), pos, 4);
    assert_true(n >= 1);

    consumer c;
    consumer_init(&c);
    o = (sp_hub_sub_options){.partition = SP_STORE_PARTITION_ANY,
                             .start = {.kind = SP_HUB_FROM_CURSOR, .pos = pos, .npos = (size_t)n}};
    consumer_sub(&f, &c, "t", &o);
    for (uint32_t p = 0; p < 3; p++) { /* each partition continues where `a` stopped */
        c.started[p] = true;
        c.expect[p] = a.started[p] ? a.expect[p] : 0;
    }
    w = (want){&c, 30 - 14};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(c.order_ok);
    assert_int_equal(a.records + c.records, 30);
    for (uint32_t p = 0; p < 3; p++)
        assert_int_equal(c.expect[p], 10);
    sp_buf_free(&b);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

static void test_subscribe_errors(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    consumer c;
    consumer_init(&c);
    sp_hub_sub *s;
    sp_hub_sub_options o = from(SP_HUB_FROM_LATEST);
    assert_int_equal(sp_hub_subscribe(f.hub, &f.loop, "nope", &o, consumer_ready, &c, &s), -ENOENT);
    o.partition = 1;
    assert_int_equal(sp_hub_subscribe(f.hub, &f.loop, "t", &o, consumer_ready, &c, &s), -EINVAL);
    sp_hub_pos pos = {5, 1};
    o = (sp_hub_sub_options){.partition = SP_STORE_PARTITION_ANY,
                             .start = {.kind = SP_HUB_FROM_CURSOR, .pos = &pos, .npos = 1}};
    assert_int_equal(sp_hub_subscribe(f.hub, &f.loop, "t", &o, consumer_ready, &c, &s), -EINVAL);
    fx_close(&f);
}

/* ---- gaps -------------------------------------------------------------------- */

/* Retention deleted the resume point: a gap names exactly what is gone,
 * then records continue from the log start. "earliest" reports nothing. */
static void test_retention_gap(void **state)
{
    (void)state;
    fx f;
    sp_store_topic_config tiny = {.partitions = 1, .segment_bytes = 1024, .retention_bytes = 2048};
    fx_open(&f, "t", &tiny, 0, 0);
    fx_append(&f, "t", 0, 0, 300, 1, -1);
    sp_store_topic_info info;
    assert_int_equal(sp_store_topic_describe(f.store, "t", &info), 0);
    uint64_t start = info.partitions[0].start_offset;
    sp_store_topic_info_free(&info);
    assert_true(start > 10);

    sp_hub_pos pos = {0, 6}; /* resume after 0-5 */
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = {.partition = 0,
                            .start = {.kind = SP_HUB_FROM_CURSOR, .pos = &pos, .npos = 1}};
    consumer_sub(&f, &c, "t", &o);
    want w = {&c, 300 - start};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(c.order_ok);
    assert_int_equal(c.gaps, 1);
    assert_int_equal(c.gap_from[0], 6);
    assert_true(c.gap_to[0] + 1 >= start); /* retention may have moved on meanwhile */
    assert_int_equal(c.expect[0], 300);
    sp_hub_unsubscribe(c.sub);

    consumer e;
    consumer_init(&e);
    o = from(SP_HUB_FROM_EARLIEST);
    consumer_sub(&f, &e, "t", &o);
    w = (want){&e, 300 - start};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_int_equal(e.gaps, 0);
    sp_hub_unsubscribe(e.sub);
    fx_close(&f);
}

/* ---- slow consumers ---------------------------------------------------------- */

static void test_slow_disconnect(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 16, 0);
    consumer c;
    consumer_init(&c);
    c.pop = false; /* never reads */
    sp_hub_sub_options o = from(SP_HUB_FROM_LATEST);
    consumer_sub(&f, &c, "t", &o);
    fx_append(&f, "t", 0, 0, 10, 10, -1);
    assert_true(fx_spin(&f, got_notified, &c, 5000));
    assert_int_equal(sp_hub_sub_lag(c.sub), 10);
    fx_append(&f, "t", 0, 10, 10, 10, -1);
    assert_true(fx_spin(&f, got_twice, &c, 5000));
    consumer_drain(&c);
    assert_int_equal(c.end, SP_HUB_END_SLOW);
    sp_buf m;
    sp_buf_init(&m, SP_BUF_UNLIMITED);
    sp_hub_metrics(f.hub, &m);
    assert_non_null(strstr(m.base, "spate_subscriber_slow_disconnects_total 1\n"));
    assert_non_null(strstr(m.base, "spate_subscribers 1\n"));
    assert_non_null(strstr(m.base, "spate_subscriber_queued_records 0\n"));
    assert_int_equal(sp_hub_topic_subscribers(f.hub, "t"), 1);
    sp_hub_unsubscribe(c.sub);
    sp_buf_reset(&m);
    sp_hub_metrics(f.hub, &m);
    assert_non_null(strstr(m.base, "spate_subscribers 0\n"));
    assert_non_null(strstr(m.base, "spate_subscriber_lag_records 0\n"));
    sp_buf_free(&m);
    assert_int_equal(sp_hub_topic_subscribers(f.hub, "t"), 0);
    fx_close(&f);
}

/* The skip policy keeps the newest half-queue and reports the rest as one
 * gap; the union of gaps and records is every offset exactly once. */
static void test_slow_skip(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 16, 0);
    consumer c;
    consumer_init(&c);
    c.pop = false;
    sp_hub_sub_options o = from(SP_HUB_FROM_LATEST);
    o.policy = SP_HUB_POLICY_SKIP;
    consumer_sub(&f, &c, "t", &o);
    fx_append(&f, "t", 0, 0, 100, 100, -1);
    assert_true(fx_spin(&f, got_notified, &c, 5000));
    consumer_drain(&c);
    assert_int_equal(c.end, 0);
    assert_true(c.order_ok);
    assert_int_equal(c.gaps, 1);
    assert_int_equal(c.gap_from[0], 0);
    assert_int_equal(c.gap_to[0], 91);
    assert_int_equal(c.records, 8);
    assert_int_equal(c.expect[0], 100);
    c.pop = true;
    fx_append(&f, "t", 0, 100, 5, 1, -1);
    want w = {&c, 13};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_true(c.order_ok);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

/* ---- lifetimes ----------------------------------------------------------------- */

static void test_topic_deleted(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = from(SP_HUB_FROM_LATEST);
    consumer_sub(&f, &c, "t", &o);
    assert_int_equal(sp_hub_topic_delete(f.hub, "t"), 0);
    assert_true(fx_spin(&f, got_end, &c, 5000));
    assert_int_equal(c.end, SP_HUB_END_DELETED);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
}

static void test_unsubscribe_in_callback(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    consumer c[3];
    sp_hub_sub_options o = from(SP_HUB_FROM_LATEST);
    for (int i = 0; i < 3; i++) {
        consumer_init(&c[i]);
        c[i].unsub_on_first = i == 1;
        consumer_sub(&f, &c[i], "t", &o);
    }
    fx_append(&f, "t", 0, 0, 3, 1, -1);
    want w = {&c[2], 3};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_null(c[1].sub);
    assert_int_equal(c[0].records, 3);
    sp_hub_unsubscribe(c[0].sub);
    sp_hub_unsubscribe(c[2].sub);
    fx_close(&f);
}

/* A subscription still catching up when its owner leaves: the pump frees it. */
static void test_unsubscribe_while_catching_up(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 16, 0);
    fx_append(&f, "t", 0, 0, 500, 500, -1);
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = from(SP_HUB_FROM_EARLIEST);
    consumer_sub(&f, &c, "t", &o);
    sp_hub_unsubscribe(c.sub);
    fx_spin(&f, never, NULL, 20);
    assert_int_equal(c.records, 0);
    fx_close(&f);
}

/* A catch-up read on the thread pool that completes after deliveries of
 * records it did not see: the loop passed those over (the partition was
 * catching up), so the read's end is not the end. The partition must read
 * again, not go live and wait for the next append (none comes here). */
static void test_async_read_sees_deliveries_meanwhile(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "t", &one_part, 0, 0);
    fx_append(&f, "t", 0, 0, 10, 10, -1);
    uv_sem_t gate;
    uv_sem_init(&gate, 0);
    fx_read_gate = &gate;
    consumer c;
    consumer_init(&c);
    sp_hub_sub_options o = from(SP_HUB_FROM_EARLIEST);
    consumer_sub(&f, &c, "t", &o);
    fx_spin(&f, never, NULL, 50);        /* the read ran and waits at the gate */
    fx_append(&f, "t", 0, 10, 5, 5, -1); /* delivered to the loop meanwhile */
    fx_spin(&f, never, NULL, 50);
    assert_int_equal(c.records, 0);
    fx_read_gate = NULL;
    uv_sem_post(&gate);
    want w = {&c, 15};
    assert_true(fx_spin(&f, got_records, &w, 5000));
    assert_int_equal(c.records, 15);
    assert_true(c.order_ok);
    assert_int_equal(c.gaps, 0);
    sp_hub_unsubscribe(c.sub);
    fx_close(&f);
    uv_sem_destroy(&gate);
}

static int async_on(void **state)
{
    (void)state;
    fx_async = true;
    return 0;
}

static int async_off(void **state)
{
    (void)state;
    fx_async = false;
    return 0;
}

#define ASYNC(t) cmocka_unit_test_setup_teardown(t, async_on, async_off)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catchup_then_live),
        cmocka_unit_test(test_latest_sees_only_new),
        cmocka_unit_test(test_adopts_topic_created_elsewhere),
        cmocka_unit_test(test_envelope_headers),
        cmocka_unit_test(test_catchup_races_appends),
        cmocka_unit_test(test_resume_from_record_id),
        cmocka_unit_test(test_from_time),
        cmocka_unit_test(test_multi_partition_cursor),
        cmocka_unit_test(test_subscribe_errors),
        cmocka_unit_test(test_retention_gap),
        cmocka_unit_test(test_slow_disconnect),
        cmocka_unit_test(test_slow_skip),
        cmocka_unit_test(test_topic_deleted),
        cmocka_unit_test(test_unsubscribe_in_callback),
        cmocka_unit_test(test_unsubscribe_while_catching_up),
        /* the same with catch-up reads on the thread pool (as on Kafka) */
        ASYNC(test_catchup_then_live),
        ASYNC(test_catchup_races_appends),
        ASYNC(test_resume_from_record_id),
        ASYNC(test_from_time),
        ASYNC(test_multi_partition_cursor),
        ASYNC(test_retention_gap),
        ASYNC(test_slow_disconnect),
        ASYNC(test_slow_skip),
        ASYNC(test_topic_deleted),
        ASYNC(test_unsubscribe_in_callback),
        ASYNC(test_unsubscribe_while_catching_up),
        ASYNC(test_async_read_sees_deliveries_meanwhile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
