/* Unit tests for src/core: buffers, JSON writer, numbers, dates, the
 * once-per-loop-turn list. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/soon.h"
#include "core/time.h"
#include <unistd.h>

static void test_buf_limit(void **state)
{
    (void)state;
    sp_buf b;
    sp_buf_init(&b, 8);
    assert_int_equal(sp_buf_append(&b, "12345678", 8), 0);
    assert_int_equal(sp_buf_append(&b, "9", 1), -ENOBUFS);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.base, "12345678", 8);
    sp_buf_consume(&b, 3);
    assert_string_equal(b.base, "45678");
    assert_int_equal(sp_buf_printf(&b, "%d", 123), 0);
    assert_int_equal(sp_buf_printf(&b, "%d", 4), -ENOBUFS);
    assert_string_equal(b.base, "45678123");
    sp_buf_free(&b);
}

static void test_buf_numbers(void **state)
{
    (void)state;
    sp_buf b;
    sp_buf_init(&b, SP_BUF_UNLIMITED);
    sp_buf_append_u64(&b, 0);
    sp_buf_putc(&b, ' ');
    sp_buf_append_i64(&b, -9223372036854775807LL - 1);
    sp_buf_putc(&b, ' ');
    sp_buf_append_u64(&b, 18446744073709551615ULL);
    assert_string_equal(b.base, "0 -9223372036854775808 18446744073709551615");
    sp_buf_free(&b);
    unsigned long long v;
    assert_int_equal(sp_slice_to_u64(SP_SLICE_LIT("1234"), 10000, &v), 0);
    assert_int_equal(v, 1234);
    assert_int_equal(sp_slice_to_u64(SP_SLICE_LIT("10001"), 10000, &v), -1);
    assert_int_equal(sp_slice_to_u64(SP_SLICE_LIT("+1"), 10000, &v), -1);
    assert_int_equal(sp_slice_to_u64(SP_SLICE_LIT(""), 10000, &v), -1);
    assert_int_equal(sp_slice_to_u64(SP_SLICE_LIT("99999999999999999999"), ~0ULL, &v), -1);
}

static void test_json_escape(void **state)
{
    (void)state;
    sp_buf b;
    sp_buf_init(&b, SP_BUF_UNLIMITED);
    sp_json_str(&b, SP_SLICE_LIT("a\"b\\c\n\x01\xc3\xa9\xff\xed\xa0\x80z"));
    assert_string_equal(b.base, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\ufffd\\ufffd\\ufffd\\ufffdz\"");
    sp_buf_reset(&b);
    sp_json_detail(&b, SP_SLICE_LIT("Not Found"));
    assert_string_equal(b.base, "{\"detail\":\"Not Found\"}");
    sp_buf_free(&b);
}

static void test_log_long_line_stays_json(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    sp_log_set_fd(fds[1]);
    char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    SP_LOG_WARN("long field", SP_LF_STR("value", big));
    SP_LOG_INFO("short", SP_LF_INT("n", 7));
    sp_log_set_fd(2);
    close(fds[1]);
    char out[8192];
    ssize_t n = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    assert_true(n > 0);
    out[n] = '\0';
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_non_null(strstr(out, "\"msg\":\"long field\",\"truncated\":true}"));
    assert_true(sp_json_valid(sp_slice_cstr(out), 8));
    assert_true(sp_json_valid(sp_slice_cstr(nl + 1), 8) || strstr(nl + 1, "\"n\":7}") != NULL);
}

static void test_iso8601(void **state)
{
    (void)state;
    int64_t ms;
    static const struct {
        const char *in;
        int64_t want;
    } ok[] = {
        {"1994-11-06T08:49:37Z", 784111777000LL},
        {"1994-11-06T08:49:37.123Z", 784111777123LL},
        {"1994-11-06T08:49:37.1234567Z", 784111777123LL},
        {"1994-11-06T09:49:37+01:00", 784111777000LL},
        {"1994-11-06T03:19:37-0530", 784111777000LL},
        {"1994-11-06T08:49:37", 784111777000LL},
        {"1994-11-06T08:49Z", 784111740000LL},
        {"1994-11-06", 784080000000LL},
        {"2024-02-29T00:00:00Z", 1709164800000LL},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(sp_time_parse_iso8601(sp_slice_cstr(ok[i].in), &ms), 0);
        assert_int_equal(ms, ok[i].want);
    }
    static const char *bad[] = {"",
                                "1994",
                                "1994-11",
                                "1994-13-01",
                                "1994-02-30",
                                "1994-11-06T25:00Z",
                                "1994-11-06T08:49:37+1",
                                "1994-11-06T08:49:37.Z",
                                "1994-11-06Tx",
                                "1994-11-06T08:49:37Zjunk",
                                "784111777000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sp_time_parse_iso8601(sp_slice_cstr(bad[i]), &ms), -1);
}

static void test_json_valid(void **state)
{
    (void)state;
    static const char *good[] = {"{}",
                                 " [1, 2.5e-3, -0, true, false, null] ",
                                 "\"\\u00e9\\ud83d\\ude00\"",
                                 "{\"a\":{\"b\":[{}]}}",
                                 "\"\xc3\xa9\"",
                                 "0",
                                 "-1.0E+2"};
    static const char *bad[] = {"",
                                "{",
                                "[1,]",
                                "{\"a\" 1}",
                                "01",
                                "1.",
                                "NaN",
                                "\"\\ud800\"",
                                "\"\\udc00\"",
                                "\"\xff\"",
                                "\"a\nb\"",
                                "[1] x",
                                "tru",
                                "{\"a\":1,}",
                                "\"\\x\"",
                                "-",
                                "[[[[[[[[[[[[1]]]]]]]]]]]]"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(sp_json_valid(sp_slice_cstr(good[i]), 8));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(sp_json_valid(sp_slice_cstr(bad[i]), 8));
}

static void test_dates(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(sp_time_http_date(784111777, out), 29);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(sp_time_iso8601_ms(784111777123LL, out), 24);
    assert_string_equal(out, "1994-11-06T08:49:37.123Z");
}

/* ---- sp_soon ----------------------------------------------------------------- */

typedef struct asker {
    sp_soon_node node;
    int runs;
    int again; /* times run re-queues itself */
    sp_soon *soon;
} asker;

static void asker_run(sp_soon_node *n)
{
    asker *a = (asker *)((char *)n - offsetof(asker, node));
    a->runs++;
    if (a->again > 0) {
        a->again--;
        sp_soon_add(a->soon, &a->node);
    }
}

static void on_never(uv_timer_t *t)
{
    (void)t;
}

/* Asked twice, run once per turn; removed before the turn, not run;
 * re-queued from its run, run at the next turn; closed with a node still
 * queued, the loop closes with nothing left. */
static void test_soon(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_t alive; /* the list's handles never keep a loop alive */
    uv_timer_init(&loop, &alive);
    uv_timer_start(&alive, on_never, 3600000, 0);
    sp_soon *s = sp_soon_new(&loop, asker_run);
    asker a = {.soon = s}, b = {.soon = s}, c = {.soon = s, .again = 1};
    sp_soon_add(s, &a.node);
    sp_soon_add(s, &a.node);
    sp_soon_add(s, &b.node);
    sp_soon_add(s, &c.node);
    sp_soon_remove(s, &b.node);
    sp_soon_remove(s, &b.node);
    uv_run(&loop, UV_RUN_NOWAIT); /* the idle handle keeps poll from waiting an hour */
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 0);
    assert_int_equal(c.runs, 1);
    assert_true(c.node.queued);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.runs, 1);
    assert_int_equal(c.runs, 2);
    sp_soon_add(s, &b.node);
    sp_soon_close(s); /* b is dropped, not run */
    uv_close((uv_handle_t *)&alive, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(b.runs, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_limit),
        cmocka_unit_test(test_buf_numbers),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_log_long_line_stays_json),
        cmocka_unit_test(test_soon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
