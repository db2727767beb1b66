/* test_store_diskfull.c - a full disk is an error, never corruption.
 *
 * Runs on a small loop-mounted ext4 image (needs root, mkfs.ext4, a loop
 * device); falls back to a size-limited tmpfs; otherwise skips, saying why.
 * The file system is filled with a filler file, then appends run until one
 * fails: it must fail with ENOSPC, every acknowledged record must still be
 * readable, appends keep failing cleanly while the disk is full, and once
 * the filler is deleted appends succeed again on the same open store, at
 * the next offset. A reopen then finds every acknowledged record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sys/mount.h>

#include "core/log.h"
#include "helpers.h"

typedef struct env {
    char mnt[256];
    char img[300];
    const char *kind; /* "ext4 loop image" or "tmpfs" */
    bool mounted;
} env;

static int run_quiet(const char *cmd)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s >/dev/null 2>&1", cmd) >= (int)sizeof buf)
        return -1;
    return system(buf);
}

static int setup(void **state)
{
    static env e;
    memset(&e, 0, sizeof e);
    char *m = th_tmpdir("dfmnt");
    snprintf(e.mnt, sizeof e.mnt, "%s", m);
    free(m);
    snprintf(e.img, sizeof e.img, "%s.img", e.mnt);
    char cmd[2048];
    if (geteuid() == 0) {
        snprintf(cmd, sizeof cmd,
                 "truncate -s 16M %s && mkfs.ext4 -q -F -m 0 %s && mount -o loop %s %s", e.img,
                 e.img, e.img, e.mnt);
        if (run_quiet(cmd) == 0) {
            e.kind = "ext4 loop image";
            e.mounted = true;
        } else if (mount("tmpfs", e.mnt, "tmpfs", 0, "size=8m") == 0) {
            e.kind = "tmpfs (size=8m)";
            e.mounted = true;
        }
    }
    unlink(e.img);
    *state = &e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    if (e->mounted && umount2(e->mnt, 0) != 0 && umount2(e->mnt, MNT_DETACH) != 0)
        perror("umount");
    rmdir(e->mnt);
    return 0;
}

/* Writes 1 MiB chunks, then smaller ones, until the file system is full. */
static void fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    static char chunk[1 << 20];
    memset(chunk, 'F', sizeof chunk);
    for (size_t sz = sizeof chunk; sz >= 512; sz /= 2)
        while (write(fd, chunk, sz) == (ssize_t)sz)
            ;
    fsync(fd);
    close(fd);
}

static int check_rec(void *arg, const sp_store_record *r)
{
    uint64_t *next = arg;
    if (r->offset != *next || !th_check_value(r->offset, r->value))
        return -1;
    (*next)++;
    return 0;
}

static int append_seq(sp_store *s, uint64_t seq, sp_store_ack *ack)
{
    char v[4096 + 64];
    size_t n = th_make_value(seq, v, 300);
    memset(v + n, 'p', sizeof v - n); /* a ~4 KiB header pad fills the disk quickly */
    sp_store_record rr = {.timestamp = -1, .value = sp_slice_make(v, n)};
    sp_store_header h = {SP_SLICE_LIT("pad"), sp_slice_make(v + n, 3800)};
    rr.headers = &h;
    rr.header_count = 1;
    return th_append_sync(s, "full", 0, &rr, 1, ack);
}

static void test_disk_full(void **state)
{
    env *e = *state;
    if (!e->mounted) {
        print_message(
            "disk-full test SKIPPED: needs root to mount an ext4 loop image or a tmpfs\n");
        skip();
    }
    print_message("disk-full test runs on: %s\n", e->kind);
    char dir[300], filler[300];
    snprintf(dir, sizeof dir, "%s/data", e->mnt);
    snprintf(filler, sizeof filler, "%s/filler", e->mnt);
    sp_store_options o;
    sp_store_options_default(&o);
    o.segment_bytes = 256 * 1024; /* rolls happen near the limit too */
    o.retention_ms = 0;
    sp_store *s;
    assert_int_equal(sp_store_open(dir, &o, &s), 0);
    sp_store_topic_config c = {.partitions = 1, .retention_ms = -1};
    assert_int_equal(sp_store_topic_create(s, "full", &c), 0);
    fill(filler);
    assert_int_equal(truncate(filler, 0), 0); /* free everything, then fill to ~1 MiB below full */
    fill(filler);
    struct stat st;
    assert_int_equal(stat(filler, &st), 0);
    assert_int_equal(truncate(filler, st.st_size > (1 << 20) ? st.st_size - (1 << 20) : 0), 0);

    uint64_t acked = 0;
    int err = 0;
    sp_store_ack ack;
    while ((err = append_seq(s, acked, &ack)) == 0) {
        assert_int_equal(ack.base_offset, acked);
        acked++;
        assert_true(acked < 100000);
    }
    assert_int_equal(err, -ENOSPC);
    print_message("disk full after %" PRIu64 " acknowledged records\n", acked);
    for (int i = 0; i < 3; i++) /* still full: still a clean error */
        assert_int_equal(append_seq(s, acked, NULL), -ENOSPC);
    uint64_t next = 0;
    assert_int_equal(th_read_all(s, "full", 0, check_rec, &next), (long)acked);

    assert_int_equal(unlink(filler), 0); /* space comes back: no restart needed */
    for (int i = 0; i < 20; i++, acked++) {
        assert_int_equal(append_seq(s, acked, &ack), 0);
        assert_int_equal(ack.base_offset, acked);
    }
    sp_store_close(s);
    assert_int_equal(sp_store_open(dir, &o, &s), 0);
    next = 0;
    assert_int_equal(th_read_all(s, "full", 0, check_rec, &next), (long)acked);
    sp_store_close(s);
}

int main(void)
{
    sp_log_set_level(SP_LOG_LEVEL_OFF); /* ENOSPC is logged by design */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
