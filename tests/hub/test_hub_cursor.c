/* Resume points as text: sp_hub_cursor_parse accepts exactly the ids and
 * cursors the hub writes, and rejects everything else without reading
 * past the slice. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <cmocka.h>

#include "hub/hub.h"

static int parse(const char *text, sp_hub_pos *out, size_t cap)
{
    /* a heap copy without a terminator: ASan catches any overread */
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    int rc = sp_hub_cursor_parse(sp_slice_make(copy, n), out, cap);
    free(copy);
    return rc;
}

static void test_record_id(void **state)
{
    (void)state;
    sp_hub_pos p[4];
    assert_int_equal(parse("0-0", p, 4), 1);
    assert_int_equal(p[0].partition, 0);
    assert_int_equal(p[0].next, 1);
    assert_int_equal(parse("7-18446744073709551614", p, 4), 1);
    assert_true(p[0].next == UINT64_MAX);
    assert_int_equal(parse("1023-5", p, 4), 1);
}

static void test_multi(void **state)
{
    (void)state;
    sp_hub_pos p[4];
    assert_int_equal(parse("0-4,2-9,1-0", p, 4), 3);
    assert_int_equal(p[1].partition, 2);
    assert_int_equal(p[1].next, 10);
    assert_int_equal(p[2].next, 1);
    assert_int_equal(parse("0-1,1-1,2-1,3-1,4-1", p, 4), -EINVAL); /* over cap */
    assert_int_equal(parse("0-1,0-2", p, 4), -EINVAL);             /* repeated */
}

static void test_rejects(void **state)
{
    (void)state;
    sp_hub_pos p[4];
    const char *bad[] = {"",
                         "-",
                         "0",
                         "0-",
                         "-1",
                         "a-1",
                         "0-a",
                         "0--1",
                         "+0-1",
                         "0-+1",
                         "0-1,",
                         ",0-1",
                         "0-1,,1-2",
                         "0 -1",
                         "0-1 ",
                         "1024-0",
                         "0-18446744073709551615",
                         "0-99999999999999999999",
                         "0-1;1-2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], p, 4), -EINVAL);
    assert_int_equal(sp_hub_cursor_parse(SP_SLICE_NULL, p, 4), -EINVAL);
}

static void test_start_parse(void **state)
{
    (void)state;
    sp_hub_start st;
    sp_hub_pos *pos = NULL;
    assert_int_equal(sp_hub_start_parse(SP_SLICE_LIT("earliest"), &st, &pos), 0);
    assert_int_equal(st.kind, SP_HUB_FROM_EARLIEST);
    assert_int_equal(sp_hub_start_parse(SP_SLICE_LIT("latest"), &st, &pos), 0);
    assert_int_equal(st.kind, SP_HUB_FROM_LATEST);
    assert_int_equal(sp_hub_start_parse(SP_SLICE_LIT("42"), &st, &pos), 0);
    assert_int_equal(st.kind, SP_HUB_FROM_OFFSET);
    assert_int_equal(st.offset, 42);
    assert_int_equal(sp_hub_start_parse(SP_SLICE_LIT("time:1700000000000"), &st, &pos), 0);
    assert_int_equal(st.kind, SP_HUB_FROM_TIME);
    assert_int_equal(st.time_ms, 1700000000000LL);
    assert_null(pos); /* nothing allocated but for cursors */
    assert_int_equal(sp_hub_start_parse(SP_SLICE_LIT("0-41,2-9"), &st, &pos), 0);
    assert_int_equal(st.kind, SP_HUB_FROM_CURSOR);
    assert_int_equal(st.npos, 2);
    assert_ptr_equal(st.pos, pos);
    assert_int_equal(pos[1].partition, 2);
    assert_int_equal(pos[1].next, 10);
    free(pos);
    static const char *bad[] = {"", "time:", "time:x", "0-", "0-1,", "0-1,0-2", "x", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pos = NULL;
        assert_int_equal(sp_hub_start_parse(sp_slice_cstr(bad[i]), &st, &pos), -EINVAL);
        free(pos);
    }
    /* more parts than partitions can exist: refused before allocating */
    char big[SP_HUB_CURSOR_MAX * 8 + 16];
    size_t n = 0;
    for (int p = 0; p <= SP_HUB_CURSOR_MAX; p++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s%d-1", p ? "," : "", p % 10);
    pos = NULL;
    assert_int_equal(sp_hub_start_parse(sp_slice_make(big, n), &st, &pos), -EINVAL);
    assert_null(pos);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_parse),
        cmocka_unit_test(test_record_id),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
