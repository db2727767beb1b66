/* test_store_crash.c - kill -9 a process that appends, many times.
 *
 * The child (this binary with "child DIR FD") opens the store in `always`
 * mode and appends batches of records whose values are derived from their
 * sequence number, keeping several appends in flight; each completion
 * writes {base, count, status} to a pipe. The parent SIGKILLs it after a
 * random delay, drains the pipe (those acks were delivered before death),
 * then opens the store itself and checks that every acknowledged record is
 * present, intact, in order and not duplicated: the record at offset o must
 * carry sequence number o. The next child continues from the recovered
 * end. At least 50 iterations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "core/log.h"
#include "helpers.h"

#define ITERATIONS 60
#define IN_FLIGHT  8

typedef struct ack_msg {
    uint64_t base;
    uint32_t count;
    int32_t status;
} ack_msg;

/* ---- child ------------------------------------------------------------------ */

static int ack_fd;
static pthread_mutex_t child_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t child_cv = PTHREAD_COND_INITIALIZER;
static int child_inflight;

static void child_ack(void *arg, const sp_store_ack *ack)
{
    (void)arg;
    ack_msg m = {ack->base_offset, ack->count, ack->status};
    if (write(ack_fd, &m, sizeof m) != (ssize_t)sizeof m)
        _exit(3);
    if (ack->status)
        _exit(4); /* nothing should fail here; make it visible */
    pthread_mutex_lock(&child_mu);
    child_inflight--;
    pthread_cond_signal(&child_cv);
    pthread_mutex_unlock(&child_mu);
}

static int child_main(const char *dir, int fd)
{
    ack_fd = fd;
    sp_store_options o;
    sp_store_options_default(&o);
    o.segment_bytes = 64 * 1024; /* kills land during rolls too */
    o.retention_ms = 0;
    sp_store *s;
    if (sp_store_open(dir, &o, &s) != 0)
        return 10;
    sp_store_topic_config c = {.partitions = 1, .retention_ms = -1};
    int err = sp_store_topic_create(s, "crash", &c);
    if (err && err != -EEXIST)
        return 11;
    sp_store_topic_info info;
    if (sp_store_topic_describe(s, "crash", &info) != 0)
        return 12;
    uint64_t seq = info.partitions[0].end_offset;
    sp_store_topic_info_free(&info);
    for (unsigned it = 0;; it++) {
        pthread_mutex_lock(&child_mu);
        while (child_inflight >= IN_FLIGHT)
            pthread_cond_wait(&child_cv, &child_mu);
        child_inflight++;
        pthread_mutex_unlock(&child_mu);
        size_t n = 1 + it % 13;
        sp_store_record recs[13];
        char vals[13][512];
        for (size_t i = 0; i < n; i++) {
            size_t len = th_make_value(seq + i, vals[i], sizeof vals[i]);
            recs[i] = (sp_store_record){.timestamp = -1, .value = sp_slice_make(vals[i], len)};
        }
        while ((err = sp_store_append(s, "crash", 0, recs, n, child_ack, NULL)) == -EAGAIN)
            usleep(100);
        if (err)
            return 13;
        seq += n;
    }
}

/* ---- parent ------------------------------------------------------------------ */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Reads acks until `timeout_ms` from now (0: only what is already there). */
static void read_acks(int fd, int timeout_ms, uint64_t *acked_end, uint64_t *acks)
{
    struct pollfd p = {fd, POLLIN, 0};
    ack_msg m;
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
            break;
        ssize_t n = read(fd, &m, sizeof m);
        if (n == 0)
            return; /* writer gone */
        assert_int_equal(n, sizeof m);
        assert_int_equal(m.status, 0);
        if (m.base + m.count > *acked_end)
            *acked_end = m.base + m.count;
        (*acks)++;
    }
}

static int verify_rec(void *arg, const sp_store_record *r)
{
    uint64_t *next = arg;
    if (r->offset != *next || !th_check_value(r->offset, r->value))
        return -1;
    (*next)++;
    return 0;
}

static uint64_t verify(const char *dir, uint64_t acked_end, uint64_t from)
{
    sp_store_options o;
    sp_store_options_default(&o);
    o.retention_ms = 0;
    sp_store *s;
    assert_int_equal(sp_store_open(dir, &o, &s), 0);
    sp_store_topic_info info;
    uint64_t end = 0;
    if (sp_store_topic_describe(s, "crash", &info) == 0) {
        end = info.partitions[0].end_offset;
        sp_store_topic_info_free(&info);
    }
    if (end < acked_end)
        fail_msg("lost acknowledged records: log ends at %" PRIu64 ", acknowledged up to %" PRIu64,
                 end, acked_end);
    /* Check what this round added (and a margin before it); the last
     * iteration re-checks the whole log. */
    uint64_t next = from;
    uint64_t got = 0;
    while (next < end) {
        sp_store_records r;
        assert_int_equal(sp_store_read(s, "crash", 0, next, 1000, 1 << 20, &r), 0);
        for (size_t i = 0; i < r.count; i++, got++)
            if (verify_rec(&next, &r.records[i]) < 0)
                fail_msg("bad record at offset %" PRIu64, r.records[i].offset);
        bool stop = r.count == 0;
        sp_store_records_free(&r);
        if (stop)
            break;
    }
    assert_int_equal(next, end);
    sp_store_close(s);
    return end;
}

static void test_kill9_loop(void **state)
{
    (void)state;
    char *dir = th_tmpdir("crash");
    uint64_t acked_end = 0, acks = 0, end = 0;
    rng_state ^= (uint64_t)time(NULL);
    for (int it = 0; it < ITERATIONS; it++) {
        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            char fdstr[16];
            snprintf(fdstr, sizeof fdstr, "%d", fds[1]);
            fcntl(fds[1], F_SETFD, 0);
            execl("/proc/self/exe", "test_store_crash", "child", dir, fdstr, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        int delay = 5 + (int)(rnd() % 60); /* ms; start-up recovery included */
        read_acks(fds[0], delay, &acked_end, &acks);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("child exited on its own: status %d", status);
        read_acks(fds[0], 0, &acked_end, &acks);
        close(fds[0]);
        uint64_t from = it == ITERATIONS - 1 ? 0 : (end > 2000 ? end - 2000 : 0);
        end = verify(dir, acked_end, from);
    }
    print_message("%d kills: %" PRIu64 " acks, %" PRIu64 " records acknowledged, log holds %" PRIu64
                  "\n",
                  ITERATIONS, acks, acked_end, end);
    assert_true(acked_end > 0);
    th_rmrf(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "child"))
        return child_main(argv[2], atoi(argv[3]));
    sp_log_set_level(SP_LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
