/* test_store_powerloss.c - power-loss simulation swept across a workload.
 *
 * A fixed workload (synchronous appends of batches with keys and headers,
 * small segments so rolls and index writes happen) runs once to count its
 * writes and syncs, then again for every N in 1..total and each fault kind
 * (drop unsynced bytes, keep a random prefix of them, tear the crashing
 * write): at the Nth operation the simulated machine dies, the files are
 * made to look like what the disk could hold, and the store is reopened
 * with the real POSIX I/O. Recovery must yield exactly a prefix of the
 * appended records, intact and in order, containing every acknowledged one
 * (`always` mode), or just a prefix (`never` mode, sampled). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/log.h"
#include "fault_io.h"
#include "helpers.h"

#define APPENDS 36

typedef struct run_result {
    uint64_t acked; /* records acknowledged (a prefix, since appends are sequential) */
    long ops;       /* writes + syncs the run performed */
} run_result;

static void workload(sp_store *s, run_result *res)
{
    uint64_t seq = 0;
    for (int a = 0; a < APPENDS; a++) {
        size_t n = 1 + (size_t)(a * 7) % 5;
        sp_store_record recs[5];
        char vals[5][512];
        sp_store_header h = {SP_SLICE_LIT("h"), SP_SLICE_LIT("x")};
        for (size_t i = 0; i < n; i++) {
            size_t len = th_make_value(seq + i, vals[i], sizeof vals[i]);
            recs[i] = (sp_store_record){.timestamp = 1700000000000 + (int64_t)(seq + i),
                                        .key = (a % 3) ? SP_SLICE_LIT("k") : SP_SLICE_NULL,
                                        .value = sp_slice_make(vals[i], len),
                                        .headers = (a % 4) ? NULL : &h,
                                        .header_count = (a % 4) ? 0 : 1};
        }
        sp_store_ack ack;
        if (th_append_sync(s, "p", 0, recs, n, &ack) != 0)
            return; /* the machine died */
        assert_int_equal(ack.base_offset, seq);
        seq += n;
        res->acked = seq;
    }
}

typedef struct verify_ctx {
    uint64_t next;
} verify_ctx;

static int verify_rec(void *arg, const sp_store_record *r)
{
    verify_ctx *v = arg;
    if (r->offset != v->next || !th_check_value(r->offset, r->value) ||
        r->timestamp != 1700000000000 + (int64_t)r->offset)
        return -1;
    v->next++;
    return 0;
}

static sp_store_options opts(sp_store_fsync_mode mode, const struct sp_store_io *io)
{
    sp_store_options o;
    sp_store_options_default(&o);
    o.fsync = mode;
    o.retention_ms = 0;
    o.io = io;
    return o;
}

/* One crash at op `crash_at` (-1: none). Returns the ops count and acks. */
static run_result one_run(sp_store_fsync_mode mode, fault_kind kind, long crash_at, uint64_t seed)
{
    run_result res = {0, 0};
    char *dir = th_tmpdir_fast("pl");
    fault_io f;
    fault_io_init(&f, kind, -1, seed);
    sp_store_options o = opts(mode, &f.io);
    sp_store *s;
    assert_int_equal(sp_store_open(dir, &o, &s), 0);
    sp_store_topic_config c = {.partitions = 1, .segment_bytes = 2048, .retention_ms = -1};
    assert_int_equal(sp_store_topic_create(s, "p", &c), 0);
    f.ops = 0;
    f.crash_at = crash_at; /* armed after set-up */
    workload(s, &res);
    sp_store_close(s);
    res.ops = f.ops;
    fault_io_apply(&f);
    fault_io_free(&f);

    fault_io nosync; /* real files, no real fsyncs: the sweep stays fast */
    fault_io_init(&nosync, FAULT_DROP, -1, 1);
    sp_store_options real = opts(mode, &nosync.io);
    assert_int_equal(sp_store_open(dir, &real, &s), 0);
    verify_ctx v = {0};
    long n = th_read_all(s, "p", 0, verify_rec, &v);
    if (n < 0 || (mode == SP_STORE_FSYNC_ALWAYS && (uint64_t)n < res.acked))
        fail_msg("crash at op %ld kind %d: recovered %ld records, %" PRIu64 " acknowledged",
                 crash_at, (int)kind, n, res.acked);
    /* the recovered log accepts appends again, right after the prefix */
    sp_store_ack ack;
    char val[512];
    size_t len = th_make_value((uint64_t)n, val, sizeof val);
    sp_store_record r = {.timestamp = 1700000000000 + n, .value = sp_slice_make(val, len)};
    assert_int_equal(th_append_sync(s, "p", 0, &r, 1, &ack), 0);
    assert_int_equal(ack.base_offset, (uint64_t)n);
    sp_store_close(s);
    fault_io_free(&nosync);
    th_rmrf(dir);
    free(dir);
    return res;
}

static void sweep(sp_store_fsync_mode mode, long step)
{
    run_result clean = one_run(mode, FAULT_DROP, -1, 1);
    assert_int_equal(clean.acked, 106);
    print_message("mode %d: workload performs %ld writes+syncs; sweeping every %ld\n", (int)mode,
                  clean.ops, step);
    long runs = 0;
    for (int kind = FAULT_DROP; kind <= FAULT_TEAR; kind++)
        for (long n = 1; n <= clean.ops + 1; n += step, runs++)
            one_run(mode, (fault_kind)kind, n, (uint64_t)(n * 31 + kind));
    print_message("mode %d: %ld crash points recovered correctly\n", (int)mode, runs);
}

static void test_powerloss_always(void **state)
{
    (void)state;
    sweep(SP_STORE_FSYNC_ALWAYS, 1);
}

static void test_powerloss_never(void **state)
{
    (void)state;
    sweep(SP_STORE_FSYNC_NEVER, 3);
}

int main(void)
{
    sp_log_set_level(SP_LOG_LEVEL_OFF); /* every crash logs errors by design */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_powerloss_always),
        cmocka_unit_test(test_powerloss_never),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
