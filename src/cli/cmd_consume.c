/* cmd_consume.c - `spate consume`: read a topic's records over HTTP.
 *
 * Pages through GET /v1/topics/T/records from --from (earliest, latest or
 * an offset) following the `next` cursor, printing each record's value as
 * one NDJSON line (or the whole envelope with --envelope). --follow keeps
 * polling for new records until interrupted; otherwise it stops at the end
 * of the log or after --count records.
 *
 * With --kafka BOOTSTRAP it reads Kafka directly (kafka_client.c): every
 * partition unless --partition, the same values or envelopes. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "cmd_produce.h"
#include "kafka_client.h"
#include "store/store.h"

static volatile sig_atomic_t stop;

static void on_sigint(int s)
{
    (void)s;
    stop = 1;
}

typedef struct cons {
    const char *topic, *from;
    sp_url url;
    unsigned partition;
    unsigned long long count, printed;
    bool follow, envelope;
    bool partition_set;
    const char *kafka;
    sp_cli_kafka_sets sets;
} cons;

static int parse(cons *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"topic", required_argument, NULL, 't'},
        {"url", required_argument, NULL, 'u'},
        {"from", required_argument, NULL, 'f'},
        {"partition", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},
        {"follow", no_argument, NULL, 'F'},
        {"envelope", no_argument, NULL, 'e'},
        {"kafka", required_argument, NULL, 'K'},
        {"set", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:8000";
    opterr = 0;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (ch) {
        case 't': c->topic = optarg; break;
        case 'u': url = optarg; break;
        case 'f': c->from = optarg; break;
        case 'p':
            c->partition = (unsigned)strtoul(optarg, &end, 10);
            c->partition_set = true;
            break;
        case 'K': c->kafka = optarg; break;
        case 'X':
            if (sp_cli_kafka_sets_add(&c->sets, optarg) != 0) {
                fprintf(stderr, "spate consume: --set KEY=VALUE, at most 64\n");
                return 2;
            }
            break;
        case 'n': c->count = strtoull(optarg, &end, 10); break;
        case 'F': c->follow = true; break;
        case 'e': c->envelope = true; break;
        case 'h':
            puts("usage: spate consume --topic T [--url URL] [--from earliest|latest|OFFSET]\n"
                 "                     [--partition P] [--count N] [--follow] [--envelope]\n\n"
                 "                     [--kafka BOOTSTRAP [--set KEY=VALUE ...]]\n\n"
                 "Prints a topic's records as NDJSON (values, or envelopes with --envelope).\n"
                 "Without --follow it stops at the end of the log (or after --count records).\n"
                 "--kafka HOST:PORT[,..] reads Kafka directly (every partition unless\n"
                 "--partition; no consumer group); --set passes librdkafka properties.");
            exit(0);
        default:
            fprintf(stderr, "spate consume: %s '%s' (see spate consume --help)\n",
                    ch == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "spate consume: bad number '%s'\n", optarg);
            return 2;
        }
    }
    if (!c->topic || !sp_store_topic_name_valid(c->topic)) {
        fprintf(stderr, "spate consume: --topic NAME is required\n");
        return 2;
    }
    if (c->sets.n && !c->kafka) {
        fprintf(stderr, "spate consume: --set needs --kafka BOOTSTRAP\n");
        return 2;
    }
    if (sp_url_parse(url, &c->url) != 0) {
        fprintf(stderr, "spate consume: bad --url '%s'\n", url);
        return 2;
    }
    return 0;
}

/* Prints one page; returns records printed, or -1 on error. *next is the
 * cursor for the following page. */
static long print_page(cons *c, const sp_buf *body, char *next, size_t cap)
{
    json_error_t err;
    json_t *doc = json_loadb(body->base, body->len, 0, &err);
    json_t *recs = json_object_get(doc, "records");
    if (!json_is_array(recs)) {
        fprintf(stderr, "spate consume: unexpected answer: %.*s\n", (int)body->len, body->base);
        json_decref(doc);
        return -1;
    }
    size_t i;
    json_t *r;
    long n = 0;
    json_array_foreach(recs, i, r)
    {
        if (c->count && c->printed >= c->count)
            break;
        json_t *out = c->envelope ? r : json_object_get(r, "value");
        char *s = json_dumps(out, JSON_COMPACT | JSON_ENCODE_ANY);
        puts(s ? s : "null");
        free(s);
        c->printed++;
        n++;
    }
    snprintf(next, cap, "%lld", (long long)json_integer_value(json_object_get(doc, "next")));
    json_decref(doc);
    return n;
}

static int consume_kafka(const cons *c)
{
    sp_cli_kafka_consume_opts o = {
        .bootstrap = c->kafka,
        .topic = c->topic,
        .from = c->from,
        .partition = c->partition_set ? (int)c->partition : -1,
        .count = c->count,
        .follow = c->follow,
        .envelope = c->envelope,
        .sets = c->sets,
    };
    return sp_cli_kafka_consume(&o);
}

int sp_cli_consume(int argc, char **argv)
{
    cons c = {.from = "earliest"};
    int rc = parse(&c, argc, argv);
    if (rc)
        return rc;
    if (c.kafka)
        return consume_kafka(&c);
    signal(SIGINT, on_sigint);
    sp_client *cl;
    if ((rc = sp_client_open(&c.url, &cl)) != 0) {
        fprintf(stderr, "spate consume: cannot connect to %s:%d: %s\n", c.url.host, c.url.port,
                strerror(-rc));
        return 1;
    }
    char from[32], path[512];
    snprintf(from, sizeof from, "%s", c.from);
    sp_buf body;
    sp_buf_init(&body, 64 << 20);
    int exit_code = 0;
    while (!stop && !(c.count && c.printed >= c.count)) {
        snprintf(path, sizeof path, "/v1/topics/%s/records?partition=%u&limit=1000&from=%s",
                 c.topic, c.partition, from);
        int status = sp_client_request(cl, "GET", path, NULL, NULL, 0, &body);
        if (status != 200) {
            fprintf(stderr, "spate consume: %s %d: %.*s\n", status < 0 ? "error" : "HTTP",
                    status < 0 ? -status : status, (int)body.len, body.base ? body.base : "");
            exit_code = 1;
            break;
        }
        long n = print_page(&c, &body, from, sizeof from);
        if (n < 0) {
            exit_code = 1;
            break;
        }
        if (n == 0) {
            if (!c.follow)
                break;
            fflush(stdout);
            usleep(100 * 1000);
        }
    }
    fflush(stdout);
    sp_buf_free(&body);
    sp_client_close(cl);
    return exit_code;
}
