/* test_store_unit.c - unit tests for the embedded log: CRC32C vectors, Kafka
 * murmur2 partitioning, the batch codec, sparse index lookups, and the store
 * API (topics, append/read, read by time, roll, retention, persistence, the
 * data-dir lock, limits, tail notification, index rebuild, verify/dump). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "helpers.h"
#include "store/codec.h"
#include "store/crc32c.h"
#include "store/partitioner.h"
#include "store/scan.h"
#include "store/segment.h"

/* ---- CRC32C -------------------------------------------------------------- */

static void check_crc(const void *p, size_t n, uint32_t want)
{
    assert_int_equal(sp__crc32c_sw(0, p, n), want);
    assert_int_equal(sp__crc32c(0, p, n), want);
    uint32_t hw;
    if (sp__crc32c_hw(0, p, n, &hw) == 0)
        assert_int_equal(hw, want);
}

static void test_crc32c_vectors(void **state)
{
    (void)state;
    unsigned char buf[48];
    check_crc("123456789", 9, 0xE3069283u); /* the CRC catalogue's check value */
    memset(buf, 0, 32);
    check_crc(buf, 32, 0x8A9136AAu); /* RFC 3720 B.4 */
    memset(buf, 0xff, 32);
    check_crc(buf, 32, 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)i;
    check_crc(buf, 32, 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (unsigned char)(31 - i);
    check_crc(buf, 32, 0x113FDB5Cu);
    check_crc("", 0, 0);
    /* incremental == one shot, across odd split points */
    const char *text = "The quick brown fox jumps over the lazy dog, again and again";
    uint32_t whole = sp__crc32c(0, text, strlen(text));
    for (size_t cut = 0; cut <= strlen(text); cut += 3) {
        uint32_t c = sp__crc32c(0, text, cut);
        assert_int_equal(sp__crc32c(c, text + cut, strlen(text) - cut), whole);
        assert_int_equal(sp__crc32c_sw(sp__crc32c_sw(0, text, cut), text + cut, strlen(text) - cut),
                         whole);
    }
}

/* ---- partitioner ---------------------------------------------------------- */

/* Expected values computed once, independently of this C code, with a
 * Python transcription of Kafka's Java Utils.murmur2 (32-bit int arithmetic
 * emulated with masks) and toPositive(h) = h & 0x7fffffff; partition =
 * toPositive(murmur2(utf8(key))) % n. The script first reproduced the
 * vectors in Kafka's own UtilsTest (first block below) before producing the
 * partition table. */
static void test_murmur2_kafka_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        int32_t hash;
    } kafka[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < SP_ARRAY_LEN(kafka); i++)
        assert_int_equal(sp__murmur2(kafka[i].key, strlen(kafka[i].key)), kafka[i].hash);

    static const struct {
        const char *key;
        int32_t hash;
        uint32_t p3, p6, p12;
    } table[] = {
        {"", 275646681, 0, 3, 9},
        {"a", -1563381124, 1, 4, 4},
        {"ab", 316155434, 2, 2, 2},
        {"abc", 479470107, 0, 3, 3},
        {"key-0", 29210041, 1, 1, 1},
        {"key-1", 193331640, 0, 0, 0},
        {"user-42", 1459644460, 1, 4, 4},
        {"order:1001", -387652882, 1, 4, 10},
        {"spate", -986146636, 1, 4, 4},
        {"latest-news", -1646110383, 2, 5, 5},
        {"\xc3\xa9t\xc3\xa9", -2101193575, 1, 1, 1},
        {"0123456789abcdef", 1438427052, 0, 0, 0},
    };
    for (size_t i = 0; i < SP_ARRAY_LEN(table); i++) {
        size_t n = strlen(table[i].key);
        assert_int_equal(sp__murmur2(table[i].key, n), table[i].hash);
        assert_int_equal(sp__partition_for_key(table[i].key, n, 3), table[i].p3);
        assert_int_equal(sp__partition_for_key(table[i].key, n, 6), table[i].p6);
        assert_int_equal(sp__partition_for_key(table[i].key, n, 12), table[i].p12);
    }
}

/* ---- codec ---------------------------------------------------------------- */

static char *encode(const sp_store_record *recs, size_t n, uint64_t base, size_t *len)
{
    size_t total = SP__BATCH_HDR;
    for (size_t i = 0; i < n; i++) {
        size_t sz = sp__record_size(&recs[i]);
        assert_true(sz > 0);
        total += sz;
    }
    char *b = malloc(total);
    int64_t max_ts = sp__batch_encode_records(b, recs, n, 1000);
    sp__batch_seal(b, (uint32_t)total, (uint32_t)n, base, max_ts);
    *len = total;
    return b;
}

static void test_codec_roundtrip(void **state)
{
    (void)state;
    sp_store_header hdrs[2] = {{SP_SLICE_LIT("trace"), SP_SLICE_LIT("abc")},
                               {SP_SLICE_LIT("e"), SP_SLICE_LIT("")}};
    sp_store_record in[3] = {
        {.timestamp = 5, .key = SP_SLICE_LIT("k1"), .value = SP_SLICE_LIT("{\"a\":1}")},
        {.timestamp = -1, .value = SP_SLICE_LIT(""), .headers = hdrs, .header_count = 2},
        {.timestamp = 7, .key = SP_SLICE_LIT(""), .value = SP_SLICE_LIT("v3")},
    };
    size_t len;
    char *b = encode(in, 3, 42, &len);
    sp__batch_hdr h;
    assert_int_equal(sp__batch_check(b, len, &h), SP__BATCH_OK);
    assert_int_equal(h.count, 3);
    assert_int_equal(h.base_offset, 42);
    assert_int_equal(h.max_ts, 1000);
    assert_int_equal(h.header_total, 2);
    sp_store_record out[3];
    sp_store_header oh[2];
    sp__batch_decode(b, &h, out, oh);
    assert_int_equal(out[0].offset, 42);
    assert_int_equal(out[2].offset, 44);
    assert_int_equal(out[0].timestamp, 5);
    assert_int_equal(out[1].timestamp, 1000); /* assigned */
    assert_true(sp_slice_eq_cstr(out[0].key, "k1"));
    assert_null(out[1].key.base);     /* no key */
    assert_non_null(out[2].key.base); /* an empty key is a key */
    assert_int_equal(out[2].key.len, 0);
    assert_true(sp_slice_eq_cstr(out[0].value, "{\"a\":1}"));
    assert_int_equal(out[1].header_count, 2);
    assert_true(sp_slice_eq_cstr(out[1].headers[0].name, "trace"));
    assert_true(sp_slice_eq_cstr(out[1].headers[0].value, "abc"));
    assert_true(sp_slice_eq_cstr(out[1].headers[1].name, "e"));
    /* short input is SHORT, every single-bit flip is BAD */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(sp__batch_check(b, cut, &h), SP__BATCH_OK);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (char)(1 << bit);
            assert_int_not_equal(sp__batch_check(b, len, &h), SP__BATCH_OK);
            b[i] ^= (char)(1 << bit);
        }
    }
    assert_int_equal(sp__batch_check(b, len, &h), SP__BATCH_OK);
    free(b);
}

static void test_codec_limits(void **state)
{
    (void)state;
    sp_store_record r = {.value = SP_SLICE_LIT("x")};
    assert_int_equal(sp__record_size(&r), SP__REC_FIXED + 1);
    r.value.len = 0xFFFFFFFFu;
    assert_int_equal(sp__record_size(&r), 0);
    /* a forged batch with a valid CRC but a record length past the batch */
    sp_store_record ok = {.timestamp = 1, .value = SP_SLICE_LIT("hello")};
    size_t len;
    char *b = encode(&ok, 1, 0, &len);
    sp__put_u32(b + SP__BATCH_HDR, 1000);
    sp__put_u32(b + 4, sp__crc32c(0, b + 8, len - 8));
    sp__batch_hdr h;
    assert_int_equal(sp__batch_check(b, len, &h), SP__BATCH_BAD);
    free(b);
}

/* ---- index ---------------------------------------------------------------- */

static void test_index_lookup(void **state)
{
    (void)state;
    sp__segment seg;
    memset(&seg, 0, sizeof seg);
    seg.base = 1000;
    seg.max_ts = INT64_MIN;
    /* batches of 10 records, 1000 bytes each; timestamps rise by 10 per batch */
    for (uint64_t i = 0; i < 100; i++)
        sp__segment_index_batch(&seg, 1000 + 10 * i, 1000 * i, (int64_t)(100 + 10 * i));
    assert_true(seg.nidx > 10 && seg.nidx < 100); /* sparse: about every 4 KiB */
    for (uint64_t off = 1000; off < 2000; off++) {
        uint64_t pos = sp__segment_lookup(&seg, off);
        uint64_t batch = (off - 1000) / 10;
        assert_true(pos <= 1000 * batch); /* at or before the batch */
        assert_true(1000 * batch - pos < SP__INDEX_INTERVAL + 1000);
        assert_int_equal(pos % 1000, 0); /* a batch boundary */
    }
    assert_int_equal(sp__segment_lookup(&seg, 5), 0);
    /* time lookup: the batch with ts >= T is at or after the returned offset */
    for (int64_t t = 0; t < 1200; t += 7) {
        uint64_t from = sp__segment_time_lookup(&seg, t);
        int64_t first_batch = t <= 100 ? 0 : (t - 100 + 9) / 10;
        assert_true(from <= 1000 + 10 * (uint64_t)(first_batch < 100 ? first_batch : 99));
    }
    sp__segment_index_truncate(&seg, 50000);
    assert_true(seg.idx[seg.nidx - 1].pos < 50000);
    free(seg.idx);
    free(seg.tix);
}

/* ---- store API ------------------------------------------------------------ */

typedef struct fixture {
    char *dir;
    sp_store *s;
    sp_store_options o;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = th_tmpdir("unit");
    sp_store_options_default(&f->o);
    f->o.fsync = SP_STORE_FSYNC_NEVER;
    if (sp_store_open(f->dir, &f->o, &f->s) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sp_store_close(f->s);
    th_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void reopen(fixture *f)
{
    sp_store_close(f->s);
    assert_int_equal(sp_store_open(f->dir, &f->o, &f->s), 0);
}

static void test_topic_names(void **state)
{
    (void)state;
    assert_true(sp_store_topic_name_valid("latest-news"));
    assert_true(sp_store_topic_name_valid("a.b_c-D9"));
    assert_true(sp_store_topic_name_valid("..."));
    assert_false(sp_store_topic_name_valid("."));
    assert_false(sp_store_topic_name_valid(".."));
    assert_false(sp_store_topic_name_valid(""));
    assert_false(sp_store_topic_name_valid("a/b"));
    assert_false(sp_store_topic_name_valid("../etc"));
    assert_false(sp_store_topic_name_valid("sp ace"));
    char big[251];
    memset(big, 'a', 250);
    big[250] = '\0';
    assert_false(sp_store_topic_name_valid(big));
    big[249] = '\0';
    assert_true(sp_store_topic_name_valid(big));
}

static void test_topics_crud(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = th_cfg(3, 0);
    assert_int_equal(sp_store_topic_create(f->s, "orders", &c), 0);
    assert_int_equal(sp_store_topic_create(f->s, "orders", &c), -EEXIST);
    assert_int_equal(sp_store_topic_create(f->s, "..", &c), -EINVAL);
    assert_int_equal(sp_store_topic_create(f->s, "x/y", &c), -EINVAL);
    c.partitions = 0;
    assert_int_equal(sp_store_topic_create(f->s, "zero", &c), -EINVAL);
    c = th_cfg(1, 0);
    assert_int_equal(sp_store_topic_create(f->s, "alpha", &c), 0);
    char **names;
    size_t n;
    assert_int_equal(sp_store_topic_list(f->s, &names, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "alpha");
    assert_string_equal(names[1], "orders");
    sp_store_topic_list_free(names, n);

    assert_int_equal(th_append_value(f->s, "orders", 2, "v", NULL), 0);
    reopen(f); /* metadata and data survive a restart */
    sp_store_topic_info info;
    assert_int_equal(sp_store_topic_describe(f->s, "orders", &info), 0);
    assert_int_equal(info.partition_count, 3);
    assert_int_equal(info.partitions[2].end_offset, 1);
    assert_int_equal(info.partitions[2].records, 1);
    assert_int_equal(info.partitions[0].end_offset, 0);
    assert_int_equal(info.config.segment_bytes, f->o.segment_bytes);
    sp_store_topic_info_free(&info);

    assert_int_equal(sp_store_topic_delete(f->s, "orders"), 0);
    assert_int_equal(sp_store_topic_delete(f->s, "orders"), -ENOENT);
    assert_int_equal(sp_store_topic_describe(f->s, "orders", &info), -ENOENT);
    assert_int_equal(th_append_value(f->s, "orders", 0, "v", NULL), -ENOENT);
    reopen(f);
    assert_int_equal(sp_store_topic_list(f->s, &names, &n), 0);
    assert_int_equal(n, 1);
    sp_store_topic_list_free(names, n);
    c = th_cfg(2, 0); /* the name can be used again, starting from offset 0 */
    assert_int_equal(sp_store_topic_create(f->s, "orders", &c), 0);
    sp_store_ack ack;
    assert_int_equal(th_append_value(f->s, "orders", 1, "again", &ack), 0);
    assert_int_equal(ack.base_offset, 0);
}

static int check_seq(void *arg, const sp_store_record *r)
{
    uint64_t *next = arg;
    if (r->offset != *next || !th_check_value(r->offset, r->value))
        return -1;
    (*next)++;
    return 0;
}

static void test_append_read(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = th_cfg(1, 0);
    assert_int_equal(sp_store_topic_create(f->s, "t", &c), 0);
    char buf[512];
    sp_store_record recs[50];
    char vals[50][512];
    for (uint64_t seq = 0; seq < 1000; seq += 50) {
        for (int i = 0; i < 50; i++) {
            size_t n = th_make_value(seq + (uint64_t)i, vals[i], sizeof vals[i]);
            recs[i] = (sp_store_record){.timestamp = -1, .value = sp_slice_make(vals[i], n)};
        }
        sp_store_ack ack;
        assert_int_equal(th_append_sync(f->s, "t", 0, recs, 50, &ack), 0);
        assert_int_equal(ack.base_offset, seq);
        assert_int_equal(ack.count, 50);
        assert_true(ack.timestamp > 0);
    }
    (void)buf;
    uint64_t next = 0;
    assert_int_equal(th_read_all(f->s, "t", 0, check_seq, &next), 1000);
    /* reads from the middle of a batch, small limits, the end, past the end */
    sp_store_records r;
    assert_int_equal(sp_store_read(f->s, "t", 0, 123, 5, 0, &r), 0);
    assert_int_equal(r.count, 5);
    assert_int_equal(r.records[0].offset, 123);
    assert_int_equal(r.next_offset, 128);
    assert_true(th_check_value(127, r.records[4].value));
    sp_store_records_free(&r);
    assert_int_equal(sp_store_read(f->s, "t", 0, 1000, 5, 0, &r), 0);
    assert_int_equal(r.count, 0);
    assert_int_equal(r.end_offset, 1000);
    sp_store_records_free(&r);
    assert_int_equal(sp_store_read(f->s, "t", 0, 1001, 5, 0, &r), -ERANGE);
    assert_int_equal(sp_store_read(f->s, "t", 1, 0, 5, 0, &r), -EINVAL);
    assert_int_equal(sp_store_read(f->s, "nope", 0, 0, 5, 0, &r), -ENOENT);
    reopen(f);
    next = 0;
    assert_int_equal(th_read_all(f->s, "t", 0, check_seq, &next), 1000);
}

static void test_limits(void **state)
{
    fixture *f = *state;
    sp_store_close(f->s);
    f->o.max_record_bytes = 100;
    f->o.queue_max_appends = 4;
    f->o.max_append_records = 10;
    assert_int_equal(sp_store_open(f->dir, &f->o, &f->s), 0);
    sp_store_topic_config c = th_cfg(2, 0);
    assert_int_equal(sp_store_topic_create(f->s, "t", &c), 0);
    char big[101];
    memset(big, 'x', sizeof big);
    sp_store_record r = {.timestamp = -1, .value = sp_slice_make(big, 101)};
    assert_int_equal(sp_store_append(f->s, "t", 0, &r, 1, NULL, NULL), -EMSGSIZE);
    r.value.len = 100;
    sp_store_record many[11];
    for (int i = 0; i < 11; i++)
        many[i] = r;
    assert_int_equal(sp_store_append(f->s, "t", 0, many, 11, NULL, NULL), -EMSGSIZE);
    assert_int_equal(sp_store_append(f->s, "t", 0, &r, 0, NULL, NULL), -EINVAL);
    assert_int_equal(sp_store_append(f->s, "t", 2, &r, 1, NULL, NULL), -EINVAL);
    /* the queue is bounded: flood it until -EAGAIN */
    th_wait w;
    th_wait_init(&w);
    int eagain = 0;
    for (int i = 0; i < 100000 && !eagain; i++) {
        pthread_mutex_lock(&w.mu);
        w.pending++;
        pthread_mutex_unlock(&w.mu);
        int err = sp_store_append(f->s, "t", 0, many, 10, th_ack_cb, &w);
        if (err) {
            assert_int_equal(err, -EAGAIN);
            pthread_mutex_lock(&w.mu);
            w.pending--;
            pthread_mutex_unlock(&w.mu);
            eagain = 1;
        }
    }
    assert_true(eagain);
    th_wait_all(&w);
    assert_int_equal(w.errors, 0);
    th_wait_destroy(&w);
}

static void test_keyed_and_round_robin(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = th_cfg(6, 0);
    assert_int_equal(sp_store_topic_create(f->s, "k", &c), 0);
    sp_store_record r = {
        .timestamp = -1, .key = SP_SLICE_LIT("latest-news"), .value = SP_SLICE_LIT("v")};
    sp_store_ack ack = {0};
    assert_int_equal(th_append_sync(f->s, "k", SP_STORE_PARTITION_ANY, &r, 1, &ack), 0);
    assert_int_equal(ack.partition, 5); /* Kafka's partition for this key with 6 partitions */
    assert_int_equal(sp_store_partition_for_key(f->s, "k", SP_SLICE_LIT("user-42")), 4);
    int seen[6] = {0};
    r.key = SP_SLICE_NULL;
    for (int i = 0; i < 12; i++) {
        assert_int_equal(th_append_sync(f->s, "k", SP_STORE_PARTITION_ANY, &r, 1, &ack), 0);
        seen[ack.partition]++;
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(seen[i], 2);
}

static void test_read_by_time(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = th_cfg(1, 4096); /* small segments: the lookup crosses them */
    c.retention_ms = -1;                       /* 1970 timestamps: keep them */
    assert_int_equal(sp_store_topic_create(f->s, "tt", &c), 0);
    for (int i = 0; i < 500; i++) {
        sp_store_record r = {.timestamp = 1000000 + 10 * i,
                             .value = SP_SLICE_LIT("0123456789012345678901234")};
        assert_int_equal(th_append_sync(f->s, "tt", 0, &r, 1, NULL), 0);
    }
    for (int64_t t = 999990; t <= 1005010; t += 37) {
        uint64_t off;
        assert_int_equal(sp_store_offset_for_time(f->s, "tt", 0, t, &off), 0);
        int64_t want = t <= 1000000 ? 0 : (t - 1000000 + 9) / 10;
        assert_int_equal(off, want > 500 ? 500 : want);
    }
    reopen(f); /* the same answers from indexes loaded from disk */
    uint64_t off;
    assert_int_equal(sp_store_offset_for_time(f->s, "tt", 0, 1002345, &off), 0);
    assert_int_equal(off, 235);
}

static void test_roll_and_retention_bytes(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = {.partitions = 1, .segment_bytes = 4096, .retention_bytes = 16384};
    assert_int_equal(sp_store_topic_create(f->s, "r", &c), 0);
    char v[200];
    memset(v, 'r', sizeof v);
    for (int i = 0; i < 1000; i++) {
        sp_store_record r = {.timestamp = -1, .value = sp_slice_make(v, sizeof v)};
        assert_int_equal(th_append_sync(f->s, "r", 0, &r, 1, NULL), 0);
    }
    sp_store_stats st;
    sp_store_get_stats(f->s, &st);
    assert_true(st.rolls >= 40);
    assert_true(st.segments_deleted > 0);
    sp_store_topic_info info;
    assert_int_equal(sp_store_topic_describe(f->s, "r", &info), 0);
    sp_store_partition_info pi = info.partitions[0];
    sp_store_topic_info_free(&info);
    print_message("bytes=%llu segments=%u start=%llu\n", (unsigned long long)pi.bytes, pi.segments,
                  (unsigned long long)pi.start_offset);
    assert_int_equal(pi.end_offset, 1000);
    assert_true(pi.start_offset > 0);
    assert_true(pi.bytes >= 16384 && pi.bytes <= 16384 + 4096);
    /* every segment is within the roll size (batches never split) */
    assert_true(pi.segments >= 4 && pi.segments <= 6);
    /* reads below the start are clamped to it */
    sp_store_records recs;
    assert_int_equal(sp_store_read(f->s, "r", 0, 0, 10, 0, &recs), 0);
    assert_int_equal(recs.records[0].offset, pi.start_offset);
    assert_int_equal(recs.start_offset, pi.start_offset);
    sp_store_records_free(&recs);
    reopen(f);
    assert_int_equal(sp_store_topic_describe(f->s, "r", &info), 0);
    assert_int_equal(info.partitions[0].start_offset, pi.start_offset);
    assert_int_equal(info.partitions[0].end_offset, 1000);
    sp_store_topic_info_free(&info);
}

static void test_retention_age(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = {.partitions = 1, .segment_bytes = 2048, .retention_ms = 60000};
    assert_int_equal(sp_store_topic_create(f->s, "age", &c), 0);
    char v[300];
    memset(v, 'a', sizeof v);
    int64_t old = 1000; /* 1970: far older than a minute */
    for (int i = 0; i < 40; i++) {
        sp_store_record r = {.timestamp = i < 30 ? old : -1, .value = sp_slice_make(v, sizeof v)};
        assert_int_equal(th_append_sync(f->s, "age", 0, &r, 1, NULL), 0);
    }
    sp_store_topic_info info;
    assert_int_equal(sp_store_topic_describe(f->s, "age", &info), 0);
    uint64_t start = info.partitions[0].start_offset;
    sp_store_topic_info_free(&info);
    /* every segment made only of old records is gone; recent ones stay */
    assert_true(start >= 24 && start <= 30);
    sp_store_records recs;
    assert_int_equal(sp_store_read(f->s, "age", 0, 0, 100, 1 << 20, &recs), 0);
    assert_int_equal(recs.records[0].offset, start);
    sp_store_records_free(&recs);
}

static void test_lock(void **state)
{
    fixture *f = *state;
    sp_store *other;
    assert_int_equal(sp_store_open(f->dir, &f->o, &other), -EBUSY);
    char *d2 = th_tmpdir("unit2");
    assert_int_equal(sp_store_open(d2, &f->o, &other), 0);
    sp_store_close(other);
    th_rmrf(d2);
    free(d2);
}

typedef struct tail_seen {
    pthread_mutex_t mu;
    uint64_t end;
    int calls;
} tail_seen;

static void on_tail(void *arg, const char *topic, uint32_t partition, uint64_t end)
{
    tail_seen *t = arg;
    (void)topic;
    pthread_mutex_lock(&t->mu);
    if (partition == 1)
        t->end = end;
    t->calls++;
    pthread_mutex_unlock(&t->mu);
}

static void test_tail_watch(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = th_cfg(2, 0);
    assert_int_equal(sp_store_topic_create(f->s, "w", &c), 0);
    tail_seen t = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    sp_store_watch *w;
    assert_int_equal(sp_store_watch_add(f->s, "w", 1, on_tail, &t, &w), 0);
    assert_int_equal(sp_store_watch_add(f->s, "w", 5, on_tail, &t, &w), -EINVAL);
    assert_int_equal(th_append_value(f->s, "w", 1, "a", NULL), 0);
    assert_int_equal(th_append_value(f->s, "w", 1, "b", NULL), 0);
    assert_int_equal(th_append_value(f->s, "w", 0, "c", NULL), 0);
    sp_store_flush(f->s); /* the notification runs right after the completion */
    pthread_mutex_lock(&t.mu);
    assert_int_equal(t.end, 2);
    assert_int_equal(t.calls, 2); /* partition 0 not watched */
    pthread_mutex_unlock(&t.mu);
    sp_store_watch_remove(f->s, w);
    assert_int_equal(th_append_value(f->s, "w", 1, "d", NULL), 0);
    sp_store_flush(f->s);
    assert_int_equal(t.calls, 2);
    /* a watch left registered is freed by close (LeakSanitizer checks) */
    assert_int_equal(sp_store_watch_add(f->s, "w", SP_STORE_PARTITION_ANY, on_tail, &t, &w), 0);
}

static void test_index_rebuild_and_tools(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = th_cfg(1, 4096);
    c.retention_ms = -1;
    assert_int_equal(sp_store_topic_create(f->s, "ix", &c), 0);
    for (uint64_t i = 0; i < 300; i++) {
        char v[512];
        size_t n = th_make_value(i, v, sizeof v);
        sp_store_record r = {.timestamp = (int64_t)i, .value = sp_slice_make(v, n)};
        assert_int_equal(th_append_sync(f->s, "ix", 0, &r, 1, NULL), 0);
    }
    sp_store_close(f->s);
    f->s = NULL;
    sp_store_verify_report rep;
    FILE *devnull = fopen("/dev/null", "w");
    assert_int_equal(sp_store_verify(f->dir, devnull, &rep), 0);
    assert_int_equal(rep.records, 300);
    /* damage: delete one index, garble another */
    char path[512];
    snprintf(path, sizeof path, "%s/topics/ix/0/%020d.idx", f->dir, 0);
    assert_int_equal(unlink(path), 0);
    uint64_t second = 0;
    {
        uint64_t *bases;
        int pfd;
        snprintf(path, sizeof path, "%s/topics/ix/0", f->dir);
        pfd = open(path, O_RDONLY | O_DIRECTORY);
        (void)bases;
        sp__segment *seg;
        /* the second segment starts where the first ended: find it by name */
        for (uint64_t b = 1; b < 300 && !second; b++)
            if (sp__segment_open_file(&sp__io_posix, pfd, b, true, &seg) == 0) {
                second = b;
                sp__segment_unref(seg);
            }
        close(pfd);
    }
    assert_true(second > 0);
    snprintf(path, sizeof path, "%s/topics/ix/0/%020" PRIu64 ".tix", f->dir, second);
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    fseek(fp, 45, SEEK_SET);
    fputc('Z', fp);
    fclose(fp);
    assert_int_equal(sp_store_verify(f->dir, devnull, &rep), 1);
    assert_int_equal(rep.problems, 2);
    assert_int_equal(sp_store_open(f->dir, &f->o, &f->s), 0); /* rebuilds both */
    uint64_t next = 0;
    assert_int_equal(th_read_all(f->s, "ix", 0, check_seq, &next), 300);
    uint64_t off;
    assert_int_equal(sp_store_offset_for_time(f->s, "ix", 0, 150, &off), 0);
    assert_int_equal(off, 150);
    /* tools refuse to run while the store holds the directory */
    assert_int_equal(sp_store_verify(f->dir, devnull, &rep), -EBUSY);
    sp_store_close(f->s);
    assert_int_equal(sp_store_verify(f->dir, devnull, &rep), 0);
    /* dump from an offset */
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem = open_memstream(&out, &outlen);
    assert_int_equal(sp_store_dump(f->dir, "ix", 0, 298, mem, devnull), 0);
    fclose(mem);
    assert_non_null(
        strstr(out, "\"offset\":298,\"timestamp\":298,\"key\":null,\"value\":\"seq=298;"));
    assert_non_null(strstr(out, "\"offset\":299"));
    assert_null(strstr(out, "\"offset\":297"));
    free(out);
    assert_int_equal(sp_store_dump(f->dir, "nope", 0, 0, devnull, devnull), -ENOENT);
    fclose(devnull);
    assert_int_equal(sp_store_open(f->dir, &f->o, &f->s), 0);
}

static void test_concurrent_read_append(void **state)
{
    fixture *f = *state;
    sp_store_topic_config c = th_cfg(1, 8192);
    assert_int_equal(sp_store_topic_create(f->s, "cc", &c), 0);
    th_wait w;
    th_wait_init(&w);
    uint64_t seq = 0, checked = 0;
    while (seq < 5000) {
        sp_store_record recs[10];
        char vals[10][512];
        for (int i = 0; i < 10; i++) {
            size_t n = th_make_value(seq + (uint64_t)i, vals[i], sizeof vals[i]);
            recs[i] = (sp_store_record){.timestamp = -1, .value = sp_slice_make(vals[i], n)};
        }
        pthread_mutex_lock(&w.mu);
        w.pending++;
        pthread_mutex_unlock(&w.mu);
        int err = sp_store_append(f->s, "cc", 0, recs, 10, th_ack_cb, &w);
        if (err == -EAGAIN) {
            pthread_mutex_lock(&w.mu);
            w.pending--;
            pthread_mutex_unlock(&w.mu);
            continue;
        }
        assert_int_equal(err, 0);
        seq += 10;
        /* read whatever is visible so far while appends are in flight */
        sp_store_records r;
        assert_int_equal(sp_store_read(f->s, "cc", 0, checked, 100, 4096, &r), 0);
        for (size_t i = 0; i < r.count; i++) {
            assert_int_equal(r.records[i].offset, checked);
            assert_true(th_check_value(checked, r.records[i].value));
            checked++;
        }
        sp_store_records_free(&r);
    }
    th_wait_all(&w);
    assert_int_equal(w.errors, 0);
    th_wait_destroy(&w);
    uint64_t next = 0;
    assert_int_equal(th_read_all(f->s, "cc", 0, check_seq, &next), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_murmur2_kafka_vectors),
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_limits),
        cmocka_unit_test(test_index_lookup),
        cmocka_unit_test(test_topic_names),
        cmocka_unit_test_setup_teardown(test_topics_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyed_and_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_and_retention_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_age, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuild_and_tools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_read_append, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
