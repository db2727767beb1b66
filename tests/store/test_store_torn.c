/* test_store_torn.c - torn tails and bit flips never yield a bad record.
 *
 * A partition is written (batches of 1..4 records, varied sizes), closed,
 * and its active segment saved. Then:
 *  - for every byte offset inside the last three batches, the segment is
 *    cut there and the store reopened: recovery must truncate to the last
 *    whole batch and serve exactly the records of the whole batches;
 *  - for every byte of the segment (one bit each), the bit is flipped and
 *    the store reopened: every record served must be intact and in order,
 *    reads stop at the damage (torn tail truncated, or mid-segment damage
 *    fenced: reads reaching it fail with EUCLEAN, appends too), and
 *    `verify` reports the file as not clean;
 *  - a flip in a sealed segment (indexes present, so no start-up scan) is
 *    caught by the CRC check on the read path instead;
 *  - the TRUNCATE corruption policy cuts the partition at the damage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>

#include "core/log.h"
#include "fault_io.h"
#include "helpers.h"
#include "store/scan.h"

#define BATCHES 24

typedef struct layout {
    char *dir;
    char path[512]; /* the active segment file */
    char *bytes;    /* its original contents */
    size_t len;
    size_t ends[BATCHES];       /* byte offset where batch i ends */
    uint64_t recs_end[BATCHES]; /* records up to and including batch i */
} layout;

static fault_io nosync; /* real files, fsyncs only recorded: keeps thousands of reopens fast */

static sp_store_options opts(sp_store_corruption_policy pol)
{
    sp_store_options o;
    sp_store_options_default(&o);
    o.io = &nosync.io;
    o.fsync = SP_STORE_FSYNC_NEVER;
    o.retention_ms = 0;
    o.on_corruption = pol;
    return o;
}

static void build(layout *l, uint64_t segment_bytes)
{
    memset(l, 0, sizeof *l);
    l->dir = th_tmpdir_fast("torn");
    sp_store_options o = opts(SP_STORE_CORRUPTION_FENCE);
    sp_store *s;
    assert_int_equal(sp_store_open(l->dir, &o, &s), 0);
    sp_store_topic_config c = {.partitions = 1, .segment_bytes = segment_bytes, .retention_ms = -1};
    assert_int_equal(sp_store_topic_create(s, "t", &c), 0);
    uint64_t seq = 0;
    for (int b = 0; b < BATCHES; b++) {
        size_t n = 1 + (size_t)b % 4;
        sp_store_record recs[4];
        char vals[4][512];
        for (size_t i = 0; i < n; i++) {
            size_t len = th_make_value(seq + i, vals[i], sizeof vals[i]);
            recs[i] = (sp_store_record){.timestamp = -1, .value = sp_slice_make(vals[i], len)};
        }
        assert_int_equal(th_append_sync(s, "t", 0, recs, n, NULL), 0);
        seq += n;
        l->recs_end[b] = seq;
    }
    sp_store_topic_info info;
    assert_int_equal(sp_store_topic_describe(s, "t", &info), 0);
    uint32_t segs = info.partitions[0].segments;
    sp_store_topic_info_free(&info);
    sp_store_close(s);
    /* the active segment is the last file; with one segment it is 0 */
    uint64_t base = 0;
    if (segs > 1) {
        sp_store_verify_report rep;
        FILE *null = fopen("/dev/null", "w");
        sp_store_verify(l->dir, null, &rep);
        fclose(null);
    }
    snprintf(l->path, sizeof l->path, "%s/topics/t/0/%020" PRIu64 ".log", l->dir, base);
    FILE *f = fopen(l->path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    l->len = (size_t)ftell(f);
    rewind(f);
    l->bytes = malloc(l->len);
    assert_int_equal(fread(l->bytes, 1, l->len, f), l->len);
    fclose(f);
    size_t pos = 0;
    for (int b = 0; b < BATCHES && segs == 1; b++) {
        uint32_t blen = (uint32_t)(unsigned char)l->bytes[pos] |
                        (uint32_t)(unsigned char)l->bytes[pos + 1] << 8 |
                        (uint32_t)(unsigned char)l->bytes[pos + 2] << 16;
        pos += blen;
        l->ends[b] = pos;
    }
    if (segs == 1)
        assert_int_equal(pos, l->len);
}

static void put_file(const char *path, const char *bytes, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, len), (ssize_t)len);
    close(fd);
}

static void drop(layout *l)
{
    th_rmrf(l->dir);
    free(l->dir);
    free(l->bytes);
}

/* Reads offset by offset; returns how many intact records precede the first
 * failure or the end. Any served record that is not intact fails the test. */
static uint64_t served_prefix(sp_store *s, int *first_err)
{
    uint64_t next = 0;
    *first_err = 0;
    for (;;) {
        sp_store_records r;
        int err = sp_store_read(s, "t", 0, next, 7, 700, &r);
        if (err) {
            *first_err = err;
            return next;
        }
        for (size_t i = 0; i < r.count; i++) {
            if (r.records[i].offset != next || !th_check_value(next, r.records[i].value))
                fail_msg("served a bad record at offset %" PRIu64, next);
            next++;
        }
        bool done = r.count == 0;
        sp_store_records_free(&r);
        if (done)
            return next;
    }
}

static void test_torn_every_byte(void **state)
{
    (void)state;
    layout l;
    build(&l, 1 << 20);
    sp_store_options o = opts(SP_STORE_CORRUPTION_FENCE);
    size_t from = l.ends[BATCHES - 4];
    int b = BATCHES - 4; /* last whole batch before the cut */
    for (size_t cut = from; cut <= l.len; cut++) {
        while (b + 1 < BATCHES && l.ends[b + 1] <= cut)
            b++;
        put_file(l.path, l.bytes, cut);
        sp_store *s;
        assert_int_equal(sp_store_open(l.dir, &o, &s), 0);
        int err;
        uint64_t n = served_prefix(s, &err);
        assert_int_equal(err, 0);
        if (n != l.recs_end[b])
            fail_msg("cut at %zu: served %" PRIu64 " records, want %" PRIu64, cut, n,
                     l.recs_end[b]);
        sp_store_close(s);
    }
    print_message("%zu cut points in the last 3 batches recovered to the last whole batch\n",
                  l.len - from + 1);
    drop(&l);
}

static void test_bit_flips(void **state)
{
    (void)state;
    layout l;
    build(&l, 1 << 20);
    sp_store_options o = opts(SP_STORE_CORRUPTION_FENCE);
    FILE *null = fopen("/dev/null", "w");
    size_t fenced = 0, truncated = 0;
    size_t tried = 0;
    for (size_t i = 0; i < l.len; i++) {
        /* every byte of the first and last two batches, every 4th elsewhere */
        if (i >= l.ends[1] && i < l.ends[BATCHES - 3] && i % 4)
            continue;
        tried++;
        int bit = (int)(i * 5 % 8);
        l.bytes[i] ^= (char)(1 << bit);
        put_file(l.path, l.bytes, l.len);
        l.bytes[i] ^= (char)(1 << bit);
        sp_store_verify_report rep;
        assert_int_equal(sp_store_verify(l.dir, null, &rep), 1);
        sp_store *s;
        assert_int_equal(sp_store_open(l.dir, &o, &s), 0);
        int err;
        uint64_t n = served_prefix(s, &err);
        int b = 0;
        while (l.ends[b] <= i)
            b++; /* the damaged batch */
        uint64_t before = b ? l.recs_end[b - 1] : 0;
        if (n != before)
            fail_msg("flip at byte %zu: served %" PRIu64 " records, want the %" PRIu64
                     " before the damage",
                     i, n, before);
        sp_store_record r = {.timestamp = -1, .value = SP_SLICE_LIT("x")};
        int app = th_append_sync(s, "t", 0, &r, 1, NULL);
        if (b == BATCHES - 1) { /* damage in the last batch: a torn tail, truncated */
            assert_int_equal(err, 0);
            assert_int_equal(app, 0);
            truncated++;
        } else { /* mid-segment: fenced */
            if (err != -EUCLEAN)
                fail_msg("flip at byte %zu (batch %d of %d, batch ends at %zu): err %d app %d", i,
                         b, BATCHES, l.ends[b], err, app);
            assert_int_equal(app, -EUCLEAN);
            fenced++;
        }
        sp_store_close(s);
    }
    fclose(null);
    print_message(
        "%zu flips: %zu fenced mid-segment, %zu truncated as a torn tail; no bad record served\n",
        tried, fenced, truncated);
    drop(&l);
}

static void test_flip_sealed_segment_read_path(void **state)
{
    (void)state;
    layout l;
    build(&l, 1024); /* many segments: segment 0 is sealed, with index files */
    sp_store_options o = opts(SP_STORE_CORRUPTION_FENCE);
    for (size_t i = 0; i < l.len; i += 13) {
        l.bytes[i] ^= 0x10;
        put_file(l.path, l.bytes, l.len);
        l.bytes[i] ^= 0x10;
        sp_store *s;
        assert_int_equal(sp_store_open(l.dir, &o, &s), 0);
        int err;
        uint64_t n = served_prefix(s, &err); /* fails the test if a bad record is served */
        assert_true(n < l.recs_end[BATCHES - 1]);
        assert_true(err == -EBADMSG || err == -EUCLEAN);
        sp_store_close(s);
    }
    put_file(l.path, l.bytes, l.len);
    drop(&l);
}

static void test_truncate_policy(void **state)
{
    (void)state;
    layout l;
    build(&l, 1 << 20);
    size_t at = l.ends[9] + 20; /* inside batch 10 */
    l.bytes[at] ^= 0x01;
    put_file(l.path, l.bytes, l.len);
    sp_store_options o = opts(SP_STORE_CORRUPTION_TRUNCATE);
    sp_store *s;
    assert_int_equal(sp_store_open(l.dir, &o, &s), 0);
    int err;
    uint64_t n = served_prefix(s, &err);
    assert_int_equal(err, 0);
    assert_int_equal(n, l.recs_end[9]);
    sp_store_ack ack;
    sp_store_record r = {.timestamp = -1, .value = SP_SLICE_LIT("x")};
    assert_int_equal(th_append_sync(s, "t", 0, &r, 1, &ack), 0);
    assert_int_equal(ack.base_offset, l.recs_end[9]);
    sp_store_close(s);
    drop(&l);
}

int main(void)
{
    sp_log_set_level(SP_LOG_LEVEL_OFF); /* every case logs its damage by design */
    fault_io_init(&nosync, FAULT_DROP, -1, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_every_byte),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_flip_sealed_segment_read_path),
        cmocka_unit_test(test_truncate_policy),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fault_io_free(&nosync);
    return rc;
}
