/* cmd_dev.c - `spate dev kafka`: a throwaway Kafka cluster for development.
 *
 * Starts librdkafka's mock cluster (rd_kafka_mock_cluster_new) inside this
 * process: N brokers on 127.0.0.1 with random ports, topics kept in memory
 * only (nothing is durable, nothing is replicated for real; a restart
 * forgets everything). It prints the bootstrap address as one line on
 * stdout (and to --port-file), then serves until SIGINT or SIGTERM and
 * exits 0. It is for demos and tests, never for data that matters.
 *
 * The mock cluster runs on librdkafka's own thread; this file only owns
 * the main thread, which waits in poll() for a signal (self-pipe) or a
 * line on stdin. Stdin is a control channel for tests: one command per
 * line (at most LINE_MAX_LEN bytes), each answered with exactly one line,
 * `ok` or `error: WHY`, after the change took effect in the cluster. EOF on
 * stdin closes the channel but keeps the cluster running, so
 * `spate dev kafka &` works from a shell.
 *
 * What librdkafka 2.0.2's mock supports, and so what this offers: topics
 * are created here (--topic, `topic` command) or auto-created with 4
 * partitions (the mock's fixed default) when a producer first asks for
 * them; it has no CreateTopics/DeleteTopics handlers, so admin clients
 * cannot create or delete topics on it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_BROKERS    32
#define MAX_PARTITIONS 1024
#define MAX_TOPICS     64
#define LINE_MAX_LEN   512
#define MAX_ARGS       6

typedef struct dev {
    int brokers, partitions;
    const char *topics[MAX_TOPICS];
    int ntopics;
    const char *port_file;
    rd_kafka_t *rk; /* hosts the mock cluster's thread; produces nothing */
    rd_kafka_mock_cluster_t *mc;
} dev;

static int sig_pipe[2] = {-1, -1};

static void on_signal(int s)
{
    int saved = errno;
    char c = (char)s;
    (void)!write(sig_pipe[1], &c, 1);
    errno = saved;
}

/* ---- control commands ------------------------------------------------------ */

static int replication(const dev *d)
{
    return d->brokers < 3 ? d->brokers : 3;
}

/* Parses a decimal int in [lo, hi]; false otherwise. */
static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* Finds an error code by its name without the RD_KAFKA_RESP_ERR_ prefix
 * ("NOT_ENOUGH_REPLICAS"), or a number. False when unknown. */
static bool error_by_name(const char *name, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *descs;
    size_t n;
    int num;
    if (parse_int(name, -200, 200, &num)) {
        *out = (rd_kafka_resp_err_t)num;
        return true;
    }
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++)
        if (descs[i].name && strcasecmp(descs[i].name, name) == 0) {
            *out = descs[i].code;
            return true;
        }
    return false;
}

/* Kafka protocol API keys by name (the ones a client of spate uses). */
static int api_by_name(const char *name)
{
    static const struct {
        const char *name;
        int key;
    } apis[] = {
        {"produce", 0},      {"fetch", 1},       {"listoffsets", 2},      {"metadata", 3},
        {"offsetcommit", 8}, {"offsetfetch", 9}, {"findcoordinator", 10}, {"joingroup", 11},
        {"heartbeat", 12},   {"syncgroup", 14},  {"apiversion", 18},      {"initproducerid", 22},
    };
    int num;
    if (parse_int(name, 0, 100, &num))
        return num;
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++)
        if (strcasecmp(apis[i].name, name) == 0)
            return apis[i].key;
    return -1;
}

static const char *cmd_topic(dev *d, char **a, int n)
{
    int parts, rf = replication(d);
    if (n < 3 || n > 4 || !parse_int(a[2], 1, MAX_PARTITIONS, &parts) ||
        (n == 4 && !parse_int(a[3], 1, d->brokers, &rf)))
        return "usage: topic NAME PARTITIONS [REPLICATION]";
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(d->mc, a[1], parts, rf);
    return e ? rd_kafka_err2str(e) : NULL;
}

static const char *cmd_broker(dev *d, char **a, int n)
{
    int id;
    bool all = n == 3 && strcmp(a[2], "all") == 0;
    if (n != 3 || (strcmp(a[1], "down") && strcmp(a[1], "up")) ||
        (!all && !parse_int(a[2], 1, d->brokers, &id)))
        return "usage: broker down|up ID|all";
    int first = all ? 1 : id, last = all ? d->brokers : id;
    for (int b = first; b <= last; b++) {
        rd_kafka_resp_err_t e = strcmp(a[1], "down") == 0 ? rd_kafka_mock_broker_set_down(d->mc, b)
                                                          : rd_kafka_mock_broker_set_up(d->mc, b);
        if (e)
            return rd_kafka_err2str(e);
    }
    return NULL;
}

static const char *cmd_leader(dev *d, char **a, int n)
{
    int part, broker;
    if (n != 4 || !parse_int(a[2], 0, MAX_PARTITIONS - 1, &part) ||
        !parse_int(a[3], 1, d->brokers, &broker))
        return "usage: leader TOPIC PARTITION BROKER";
    rd_kafka_resp_err_t e = rd_kafka_mock_partition_set_leader(d->mc, a[1], part, broker);
    return e ? rd_kafka_err2str(e) : NULL;
}

static const char *cmd_error(dev *d, char **a, int n)
{
    int api, count;
    rd_kafka_resp_err_t err;
    if (n != 4 || (api = api_by_name(a[1])) < 0 || !error_by_name(a[2], &err) ||
        !parse_int(a[3], 1, 10000, &count))
        return "usage: error API ERRNAME COUNT (e.g. error PRODUCE NOT_ENOUGH_REPLICAS 3)";
    rd_kafka_resp_err_t errs[64];
    for (int left = count; left > 0;) {
        size_t k = left > 64 ? 64 : (size_t)left;
        for (size_t i = 0; i < k; i++)
            errs[i] = err;
        rd_kafka_mock_push_request_errors_array(d->mc, (int16_t)api, k, errs);
        left -= (int)k;
    }
    return NULL;
}

static const char *cmd_clear(dev *d, char **a, int n)
{
    int api;
    if (n != 2 || (api = api_by_name(a[1])) < 0)
        return "usage: clear API";
    rd_kafka_mock_clear_request_errors(d->mc, (int16_t)api);
    return NULL;
}

static const char *cmd_rtt(dev *d, char **a, int n)
{
    int broker, ms;
    if (n != 3 || !parse_int(a[1], 1, d->brokers, &broker) || !parse_int(a[2], 0, 60000, &ms))
        return "usage: rtt BROKER MS";
    rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_rtt(d->mc, broker, ms);
    return e ? rd_kafka_err2str(e) : NULL;
}

/* Splits line in place on blanks; returns the word count (at most max). */
static int split(char *line, char **argv, int max)
{
    int n = 0;
    for (char *tok = strtok(line, " \t\r"); tok; tok = strtok(NULL, " \t\r")) {
        if (n == max)
            return max + 1;
        argv[n++] = tok;
    }
    return n;
}

/* Runs one control line and writes its one-line answer to stdout. */
static void run_command(dev *d, char *line)
{
    static const struct {
        const char *name;
        const char *(*fn)(dev *, char **, int);
    } cmds[] = {
        {"topic", cmd_topic}, {"broker", cmd_broker}, {"leader", cmd_leader},
        {"error", cmd_error}, {"clear", cmd_clear},   {"rtt", cmd_rtt},
    };
    char *a[MAX_ARGS];
    int n = split(line, a, MAX_ARGS);
    const char *why = "unknown command (topic, broker, leader, error, clear, rtt, ping)";
    if (n == 0)
        return; /* blank lines are not commands */
    if (n > MAX_ARGS)
        why = "too many words";
    else if (strcmp(a[0], "ping") == 0 && n == 1)
        why = NULL;
    else
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (strcmp(cmds[i].name, a[0]) == 0) {
                why = cmds[i].fn(d, a, n);
                break;
            }
    if (why)
        printf("error: %s\n", why);
    else
        puts("ok");
    fflush(stdout);
}

/* ---- the control channel --------------------------------------------------- */

typedef struct line_reader {
    char buf[LINE_MAX_LEN + 1];
    size_t len;
    bool overflow; /* discarding the rest of a too long line */
} line_reader;

/* Reads what stdin has and runs every complete line. Returns false at EOF
 * or on a read error: the channel is closed, the cluster keeps running. */
static bool read_control(dev *d, line_reader *lr)
{
    char chunk[4096];
    ssize_t got = read(STDIN_FILENO, chunk, sizeof chunk);
    if (got < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (got <= 0)
        return false;
    for (ssize_t i = 0; i < got; i++) {
        char c = chunk[i];
        if (c == '\n') {
            if (lr->overflow) {
                printf("error: line longer than %d bytes\n", LINE_MAX_LEN);
                fflush(stdout);
            } else {
                lr->buf[lr->len] = '\0';
                run_command(d, lr->buf);
            }
            lr->len = 0;
            lr->overflow = false;
        } else if (lr->len < LINE_MAX_LEN) {
            lr->buf[lr->len++] = c;
        } else {
            lr->overflow = true;
        }
    }
    return true;
}

/* Waits for SIGINT/SIGTERM, serving control lines meanwhile. */
static void serve(dev *d)
{
    static line_reader lr;
    bool control = true;
    for (;;) {
        struct pollfd fds[2] = {{.fd = sig_pipe[0], .events = POLLIN},
                                {.fd = STDIN_FILENO, .events = POLLIN}};
        if (poll(fds, control ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("spate dev kafka: poll");
            return;
        }
        if (fds[0].revents)
            return;
        if (control && fds[1].revents && !read_control(d, &lr))
            control = false;
    }
}

/* ---- start-up -------------------------------------------------------------- */

static void usage(FILE *out)
{
    fputs("usage: spate dev kafka [--brokers N] [--partitions N] [--topic NAME ...]\n"
          "                       [--port-file FILE]\n\n"
          "Starts an in-memory Kafka cluster (librdkafka's mock cluster) for development\n"
          "and tests, prints its bootstrap address (HOST:PORT,...) as one line on stdout,\n"
          "and serves until SIGINT/SIGTERM. FOR DEVELOPMENT ONLY: nothing is durable,\n"
          "nothing survives a restart, and it is not a performance model of Kafka.\n\n"
          "  --brokers N      brokers, ids 1..N (default 3, at most 32)\n"
          "  --partitions N   partitions of the --topic topics (default 3)\n"
          "  --topic NAME     create NAME at start (repeatable; without any, the demo's\n"
          "                   latest-news and items). Topics a producer\n"
          "                   first names are auto-created with 4 partitions (the mock's\n"
          "                   fixed default); the mock has no CreateTopics API.\n"
          "  --port-file F    also write the bootstrap address to F\n\n"
          "Control channel: stdin, one command per line (max 512 bytes), each answered\n"
          "with one line on stdout, `ok` or `error: WHY`. EOF on stdin closes the channel,\n"
          "not the cluster, so `spate dev kafka &` works.\n"
          "  topic NAME PARTITIONS [REPLICATION]   create a topic\n"
          "  broker down|up ID|all                 take brokers down (connections refused)\n"
          "  leader TOPIC PARTITION BROKER         move a partition's leader\n"
          "  error API ERRNAME COUNT               fail the next COUNT requests of API\n"
          "                                        (produce, fetch, metadata, ...) with\n"
          "                                        ERRNAME (NOT_ENOUGH_REPLICAS, ...)\n"
          "  clear API                             drop the errors queued for API\n"
          "  rtt BROKER MS                         add MS of round-trip time to a broker\n"
          "  ping                                  answers ok\n",
          out);
}

static int parse(dev *d, int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"partitions", required_argument, NULL, 'p'},
        {"topic", required_argument, NULL, 't'},   {"port-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            if (!parse_int(optarg, 1, MAX_BROKERS, &d->brokers))
                goto bad_number;
            break;
        case 'p':
            if (!parse_int(optarg, 1, MAX_PARTITIONS, &d->partitions))
                goto bad_number;
            break;
        case 't':
            if (d->ntopics == MAX_TOPICS) {
                fprintf(stderr, "spate dev kafka: at most %d --topic\n", MAX_TOPICS);
                return 2;
            }
            d->topics[d->ntopics++] = optarg;
            break;
        case 'f': d->port_file = optarg; break;
        case 'h': usage(stdout); exit(0);
        default:
            fprintf(stderr, "spate dev kafka: %s '%s' (see spate help dev)\n",
                    ch == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "spate dev kafka: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
bad_number:
    fprintf(stderr, "spate dev kafka: --brokers 1-%d, --partitions 1-%d (got '%s')\n", MAX_BROKERS,
            MAX_PARTITIONS, optarg);
    return 2;
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 4)
        fprintf(stderr, "spate dev kafka: %s: %s\n", fac, buf);
}

/* Writes the address to path through a temporary file and a rename, so a
 * reader polling for the file never sees half of it. */
static int write_port_file(const char *path, const char *addr)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", addr);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int err = -errno;
        unlink(tmp);
        return err;
    }
    return 0;
}

static int start_cluster(dev *d)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_log);
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!d->rk) {
        fprintf(stderr, "spate dev kafka: %s\n", err);
        return 1;
    }
    d->mc = rd_kafka_mock_cluster_new(d->rk, d->brokers);
    if (!d->mc) {
        fprintf(stderr, "spate dev kafka: cannot start the mock cluster\n");
        rd_kafka_destroy(d->rk);
        return 1;
    }
    if (d->ntopics == 0) { /* the news demo's topics, so serve --kafka works at once */
        d->topics[d->ntopics++] = "latest-news";
        d->topics[d->ntopics++] = "items";
    }
    for (int i = 0; i < d->ntopics; i++) {
        rd_kafka_resp_err_t e =
            rd_kafka_mock_topic_create(d->mc, d->topics[i], d->partitions, replication(d));
        if (e) {
            fprintf(stderr, "spate dev kafka: topic %s: %s\n", d->topics[i], rd_kafka_err2str(e));
            return 1;
        }
    }
    return 0;
}

static int dev_kafka(int argc, char **argv)
{
    dev d = {.brokers = 3, .partitions = 3};
    int rc = parse(&d, argc, argv);
    if (rc)
        return rc;
    if (pipe(sig_pipe) != 0) {
        perror("spate dev kafka: pipe");
        return 1;
    }
    fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if ((rc = start_cluster(&d)) == 0) {
        const char *addr = rd_kafka_mock_cluster_bootstraps(d.mc);
        int err = d.port_file ? write_port_file(d.port_file, addr) : 0;
        if (err) {
            fprintf(stderr, "spate dev kafka: cannot write %s: %s\n", d.port_file, strerror(-err));
            rc = 1;
        } else {
            printf("%s\n", addr);
            fflush(stdout);
            serve(&d);
        }
    }
    if (d.mc)
        rd_kafka_mock_cluster_destroy(d.mc);
    if (d.rk)
        rd_kafka_destroy(d.rk);
    close(sig_pipe[0]);
    close(sig_pipe[1]);
    return rc;
}

void sp_cli_dev_help(void)
{
    usage(stdout);
}

int sp_cli_dev(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "kafka") == 0)
        return dev_kafka(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "spate dev: want a subcommand: kafka (see spate help dev)\n");
    return 2;
}
