/* cmd_produce.c - `spate produce`: stream records into a topic over HTTP.
 *
 * Records come from NDJSON (a file or stdin, one record per line) or a
 * built-in generator (--demo news|ticks|logs). They are grouped into
 * NDJSON batches of --batch records, each one POST to
 * /v1/topics/T/records, over --connections keep-alive connections with up
 * to --max-inflight pipelined requests each, optionally paced to --rate
 * records per second. 503 answers (backpressure) are retried after a short
 * pause; any other failure stops the run. A JSON summary goes to stdout.
 *
 * Ordering: with --connections 1 --max-inflight 1 records are appended in
 * input order; otherwise batches may interleave across connections.
 *
 * With --kafka BOOTSTRAP the same records go straight to Kafka through
 * librdkafka (kafka_client.c) instead of a spate server. */
#include <errno.h>
#include <getopt.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "client.h"
#include "cmd_produce.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/time.h"
#include "kafka_client.h"
#include "store/store.h"

#define MAX_CONNS 1024
#define MAX_LINE  (1 << 20)

typedef struct batch_req {
    struct batch_req *next;
    sp_buf bytes; /* the whole request: head + body */
    size_t records;
    unsigned refs; /* the write in flight + the answer awaited */
    uv_write_t w;
} batch_req;

typedef struct prod prod;

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t cr;
    prod *p;
    llhttp_t parser;
    batch_req *head, *tail; /* sent, awaiting responses in order */
    unsigned inflight;
    bool connected, dead;
    sp_buf resp;
} conn;

struct prod {
    uv_loop_t *loop;
    sp_url url;
    const char *topic, *file, *demo, *ack, *key;
    const char *kafka; /* --kafka BOOTSTRAP: produce to Kafka directly */
    sp_cli_kafka_produce_opts kopts;
    bool inflight_set, ack_set;
    size_t batch, conns, max_inflight;
    uint64_t count; /* records to send; 0 = until input ends */
    double rate;    /* records per second; 0 = unlimited */
    bool quiet;
    FILE *in;
    bool input_done;
    uint64_t generated, sent, acked, retries, errors;
    uint64_t start_ns;
    double allowance; /* records the pacer lets through now */
    uv_timer_t pacer, progress;
    conn c[MAX_CONNS];
    batch_req *retry; /* batches answered 503, sent again next */
    char path[1024];
    llhttp_settings_t settings;
    int exit_code;
};

/* ---- input ------------------------------------------------------------------ */

static const char *const sources[] = {"reuters", "ap", "bbc", "bloomberg", "ft"};
static const char *const symbols[] = {"AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA"};
static const char *const levels[] = {"INFO", "INFO", "INFO", "WARN", "ERROR"};

static void demo_record(prod *p, sp_buf *out)
{
    uint64_t i = p->generated;
    int64_t now = sp_time_now_ms();
    if (strcmp(p->demo, "ticks") == 0) {
        sp_buf_printf(out, "{\"symbol\":\"%s\",\"price\":%.2f,\"volume\":%llu,\"ts\":%lld}",
                      symbols[i % 6], 100.0 + (double)(i * 7919 % 10000) / 100.0,
                      (unsigned long long)(i * 31 % 1000 + 1), (long long)now);
    } else if (strcmp(p->demo, "logs") == 0) {
        sp_buf_printf(out,
                      "{\"level\":\"%s\",\"service\":\"svc-%llu\",\"msg\":\"request %llu "
                      "handled\",\"ts\":%lld}",
                      levels[i % 5], (unsigned long long)(i % 7), (unsigned long long)i,
                      (long long)now);
    } else {
        sp_buf_printf(out,
                      "{\"id\":%llu,\"title\":\"Headline number %llu\",\"source\":\"%s\","
                      "\"url\":\"https://example.com/news/%llu\",\"summary\":\"A short summary of "
                      "story %llu.\","
                      "\"published_at\":%lld}",
                      (unsigned long long)i, (unsigned long long)i, sources[i % 5],
                      (unsigned long long)i, (unsigned long long)i, (long long)now);
    }
}

/* Appends the next record and a newline to out; false when input ended. */
static bool next_record(prod *p, sp_buf *out)
{
    if (p->input_done || (p->count && p->generated >= p->count))
        return false;
    if (p->demo) {
        demo_record(p, out);
    } else {
        static char *line;
        static size_t cap;
        ssize_t n;
        do {
            n = getline(&line, &cap, p->in);
        } while (n > 0 && (line[0] == '\n' || (line[0] == '\r' && n <= 2)));
        if (n <= 0) {
            p->input_done = true;
            free(line);
            line = NULL;
            return false;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        sp_buf_append(out, line, (size_t)n);
    }
    sp_buf_putc(out, '\n');
    p->generated++;
    return true;
}

static batch_req *make_batch(prod *p, size_t max)
{
    sp_buf body;
    sp_buf_init(&body, SP_BUF_UNLIMITED);
    size_t n = 0;
    while (n < max && next_record(p, &body))
        n++;
    if (n == 0) {
        sp_buf_free(&body);
        return NULL;
    }
    batch_req *b = sp_xcalloc(1, sizeof *b);
    sp_buf_init(&b->bytes, SP_BUF_UNLIMITED);
    sp_buf_printf(&b->bytes,
                  "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/x-ndjson\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  p->path, p->url.host, p->url.port, body.len);
    sp_buf_append(&b->bytes, body.base, body.len);
    sp_buf_free(&body);
    b->records = n;
    return b;
}

/* Drops one reference: the uv_write and its buffer must outlive the write
 * callback even when the answer (or the connection's end) comes first. */
static void batch_free(batch_req *b)
{
    if (b->refs > 1) {
        b->refs--;
        return;
    }
    sp_buf_free(&b->bytes);
    free(b);
}

/* A batch answered 503 goes out again as a fresh request object: the old
 * one's write may still be in flight. */
static batch_req *batch_clone(const batch_req *b)
{
    batch_req *c = sp_xcalloc(1, sizeof *c);
    sp_buf_init(&c->bytes, SP_BUF_UNLIMITED);
    sp_buf_append(&c->bytes, b->bytes.base, b->bytes.len);
    c->records = b->records;
    return c;
}

/* ---- sending --------------------------------------------------------------- */

static void pump(prod *p);

static void on_written(uv_write_t *w, int status)
{
    (void)status; /* a failed write shows up as a read error */
    batch_free(w->data);
}

static void send_batch(conn *c, batch_req *b)
{
    b->next = NULL;
    if (c->tail)
        c->tail->next = b;
    else
        c->head = b;
    c->tail = b;
    c->inflight++;
    b->refs = 2;
    b->w.data = b;
    uv_buf_t buf = uv_buf_init(b->bytes.base, (unsigned)b->bytes.len);
    if (uv_write(&b->w, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
        b->refs = 1; /* no callback will come */
}

static bool all_done(prod *p)
{
    if (p->retry)
        return false;
    if (!p->input_done && !(p->count && p->generated >= p->count))
        return false;
    for (size_t i = 0; i < p->conns; i++)
        if (p->c[i].inflight)
            return false;
    return true;
}

static void close_all(prod *p);

static void pump(prod *p)
{
    for (size_t i = 0; i < p->conns; i++) {
        conn *c = &p->c[i];
        while (c->connected && !c->dead && c->inflight < p->max_inflight) {
            if (p->rate > 0 && p->allowance < 1)
                break;
            batch_req *b = p->retry;
            if (b) {
                p->retry = b->next;
            } else {
                size_t want = p->batch;
                if (p->rate > 0 && p->allowance < (double)want)
                    want = (size_t)p->allowance;
                b = make_batch(p, want ? want : 1);
                if (!b)
                    break;
            }
            if (p->rate > 0)
                p->allowance -= (double)b->records;
            p->sent += b->records;
            send_batch(c, b);
        }
    }
    if (all_done(p))
        close_all(p);
}

/* ---- responses ------------------------------------------------------------- */

static int on_resp_body(llhttp_t *ll, const char *at, size_t len)
{
    conn *c = ll->data;
    if (c->resp.len < 4096)
        sp_buf_append(&c->resp, at, len < 4096 ? len : 4096);
    return 0;
}

static int on_resp_done(llhttp_t *ll)
{
    conn *c = ll->data;
    prod *p = c->p;
    batch_req *b = c->head;
    if (!b)
        return -1;
    c->head = b->next;
    if (!c->head)
        c->tail = NULL;
    c->inflight--;
    int status = ll->status_code;
    if (status == 200 || status == 202) {
        p->acked += b->records;
        batch_free(b);
    } else if (status == 503) {
        p->retries++;
        p->sent -= b->records;
        batch_req *again = batch_clone(b);
        batch_free(b);
        again->next = p->retry;
        p->retry = again;
    } else {
        p->errors += b->records;
        fprintf(stderr, "spate produce: HTTP %d: %.*s\n", status, (int)c->resp.len, c->resp.base);
        batch_free(b);
        p->exit_code = 1;
        p->input_done = true;
    }
    sp_buf_reset(&c->resp);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    (void)h;
    static char space[65536];
    (void)s;
    buf->base = space;
    buf->len = sizeof space;
}

static void conn_dead(conn *c, const char *why)
{
    prod *p = c->p;
    if (c->dead)
        return;
    c->dead = true;
    if (c->inflight) {
        fprintf(stderr, "spate produce: connection lost (%s) with %u requests unanswered\n", why,
                c->inflight);
        p->exit_code = 1;
        p->input_done = true;
        while (c->head) {
            batch_req *b = c->head;
            c->head = b->next;
            p->errors += b->records;
            batch_free(b);
        }
        c->tail = NULL;
        c->inflight = 0;
    }
    uv_close((uv_handle_t *)&c->tcp, NULL);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (n < 0) {
        conn_dead(c, uv_strerror((int)n));
        pump(c->p);
        return;
    }
    llhttp_errno_t e = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (e != HPE_OK) {
        conn_dead(c, "bad response");
        c->p->exit_code = 1;
    }
    pump(c->p);
}

static void on_connect(uv_connect_t *cr, int status)
{
    conn *c = cr->data;
    if (status < 0) {
        fprintf(stderr, "spate produce: cannot connect to %s:%d: %s\n", c->p->url.host,
                c->p->url.port, uv_strerror(status));
        c->p->exit_code = 1;
        c->p->input_done = true;
        conn_dead(c, "connect");
        pump(c->p);
        return;
    }
    c->connected = true;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    pump(c->p);
}

/* ---- timers and lifecycle -------------------------------------------------- */

static void on_pacer(uv_timer_t *t)
{
    prod *p = t->data;
    p->allowance += p->rate / 100.0;
    double cap = p->rate / 10.0 > (double)p->batch ? p->rate / 10.0 : (double)p->batch;
    if (p->allowance > cap)
        p->allowance = cap;
    pump(p);
}

static double elapsed(const prod *p)
{
    return (double)(sp_time_mono_ns() - p->start_ns) / 1e9;
}

static void on_progress(uv_timer_t *t)
{
    prod *p = t->data;
    if (!p->quiet)
        fprintf(stderr, "spate produce: %llu acked, %.0f records/s\n", (unsigned long long)p->acked,
                (double)p->acked / elapsed(p));
}

static void close_all(prod *p)
{
    for (size_t i = 0; i < p->conns; i++)
        if (!p->c[i].dead && p->c[i].connected) {
            p->c[i].dead = true;
            uv_close((uv_handle_t *)&p->c[i].tcp, NULL);
        }
    if (!uv_is_closing((uv_handle_t *)&p->pacer))
        uv_close((uv_handle_t *)&p->pacer, NULL);
    if (!uv_is_closing((uv_handle_t *)&p->progress))
        uv_close((uv_handle_t *)&p->progress, NULL);
}

static void usage(FILE *out)
{
    fputs("usage: spate produce --topic T [--url URL] [--file F | --demo news|ticks|logs]\n"
          "                     [--count N] [--rate R] [--batch N] [--connections C]\n"
          "                     [--max-inflight N] [--ack durable|none] [--key K] [--quiet]\n\n"
          "Streams NDJSON records (from --file, or stdin) or generated ones into a topic.\n"
          "  --url URL          server (default http://127.0.0.1:8000)\n"
          "  --count N          stop after N records (default: end of input; 10000 with --demo)\n"
          "  --rate R           at most R records per second (default unlimited)\n"
          "  --batch N          records per request (default 16)\n"
          "  --connections C    parallel connections (default 1)\n"
          "  --max-inflight N   pipelined requests per connection (default 1)\n"
          "  --ack MODE         durable (default) or none\n"
          "  --key K            every record's key (routes them all to one partition)\n\n"
          "Direct to Kafka (no spate server): --kafka BOOTSTRAP, with an idempotent\n"
          "librdkafka producer (acks=all, murmur2 partitioner):\n"
          "  --kafka HOST:PORT[,..]  the bootstrap servers\n"
          "  --linger-ms MS     linger.ms (default librdkafka's, 5)\n"
          "  --batch-size N     records per Kafka batch (batch.num.messages)\n"
          "  --max-inflight N   max.in.flight.requests.per.connection (1-5 with idempotence)\n"
          "  --key-sep C        each line is KEY<C>VALUE (like kcat -K C)\n"
          "  --print-acks       one {\"seq\",\"partition\",\"offset\",\"timestamp\"} line per "
          "record\n"
          "  --set KEY=VALUE    any librdkafka property (kafka.KEY works too), repeatable\n"
          "A failed delivery is printed on stderr and the exit code is 1.\n",
          out);
}

static int bad_kafka_option(const char *why)
{
    fprintf(stderr, "spate produce: %s\n", why);
    return 2;
}

/* The Kafka-only options need --kafka; HTTP-only ones are refused with it. */
static int check_kafka_mode(prod *p)
{
    sp_cli_kafka_produce_opts *k = &p->kopts;
    if (!p->kafka) {
        if (k->linger_ms >= 0 || k->batch_size || k->key_sep >= 0 || k->print_acks || k->sets.n)
            return bad_kafka_option("--linger-ms, --batch-size, --key-sep, --print-acks and "
                                    "--set need --kafka BOOTSTRAP");
        return 0;
    }
    if (p->ack_set || p->conns != 1)
        return bad_kafka_option("--ack and --connections are for the HTTP mode (Kafka: acks=all)");
    if (k->linger_ms < -1 || k->linger_ms > 900000 || k->batch_size < 0 ||
        k->batch_size > 1000000 || (k->key_sep >= 0 && p->key))
        return bad_kafka_option("--linger-ms 0-900000, --batch-size 1-1000000, and --key or "
                                "--key-sep, not both");
    k->bootstrap = p->kafka;
    k->topic = p->topic;
    k->key = p->key;
    k->max_inflight = p->inflight_set ? (int)p->max_inflight : 0;
    k->rate = p->rate;
    k->quiet = p->quiet;
    return 0;
}

static int parse(prod *p, int argc, char **argv)
{
    static const struct option opts[] = {
        {"topic", required_argument, NULL, 't'},
        {"url", required_argument, NULL, 'u'},
        {"file", required_argument, NULL, 'f'},
        {"demo", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},
        {"batch", required_argument, NULL, 'b'},
        {"connections", required_argument, NULL, 'c'},
        {"max-inflight", required_argument, NULL, 'm'},
        {"ack", required_argument, NULL, 'a'},
        {"key", required_argument, NULL, 'k'},
        {"quiet", no_argument, NULL, 'q'},
        {"kafka", required_argument, NULL, 'K'},
        {"linger-ms", required_argument, NULL, 'L'},
        {"batch-size", required_argument, NULL, 'B'},
        {"key-sep", required_argument, NULL, 'S'},
        {"print-acks", no_argument, NULL, 'P'},
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
        case 't': p->topic = optarg; break;
        case 'u': url = optarg; break;
        case 'f': p->file = optarg; break;
        case 'd': p->demo = optarg; break;
        case 'n': p->count = strtoull(optarg, &end, 10); break;
        case 'r': p->rate = strtod(optarg, &end); break;
        case 'b': p->batch = strtoul(optarg, &end, 10); break;
        case 'c': p->conns = strtoul(optarg, &end, 10); break;
        case 'm':
            p->max_inflight = strtoul(optarg, &end, 10);
            p->inflight_set = true;
            break;
        case 'a':
            p->ack = optarg;
            p->ack_set = true;
            break;
        case 'K': p->kafka = optarg; break;
        case 'L': p->kopts.linger_ms = (int)strtol(optarg, &end, 10); break;
        case 'B': p->kopts.batch_size = (int)strtol(optarg, &end, 10); break;
        case 'S':
            if (strlen(optarg) != 1)
                return bad_kafka_option("--key-sep wants one character");
            p->kopts.key_sep = (unsigned char)optarg[0];
            break;
        case 'P': p->kopts.print_acks = true; break;
        case 'X':
            if (sp_cli_kafka_sets_add(&p->kopts.sets, optarg) != 0)
                return bad_kafka_option("--set KEY=VALUE, at most 64");
            break;
        case 'k': p->key = optarg; break;
        case 'q': p->quiet = true; break;
        case 'h': usage(stdout); exit(0);
        default:
            fprintf(stderr, "spate produce: %s '%s' (see spate produce --help)\n",
                    ch == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
            return 2;
        }
        if (end && *end) {
            fprintf(stderr, "spate produce: bad number '%s' for %s\n", optarg,
                    argv[optind - 2 >= 0 ? optind - 2 : 0]);
            return 2;
        }
    }
    if (!p->topic || !sp_store_topic_name_valid(p->topic)) {
        fprintf(stderr, "spate produce: --topic NAME is required (1-249 of [A-Za-z0-9._-])\n");
        return 2;
    }
    if (p->demo && strcmp(p->demo, "news") && strcmp(p->demo, "ticks") && strcmp(p->demo, "logs")) {
        fprintf(stderr, "spate produce: --demo must be news, ticks or logs\n");
        return 2;
    }
    if (strcmp(p->ack, "durable") && strcmp(p->ack, "none")) {
        fprintf(stderr, "spate produce: --ack must be durable or none\n");
        return 2;
    }
    if (p->batch == 0 || p->batch > 10000 || p->conns == 0 || p->conns > MAX_CONNS ||
        p->max_inflight == 0 || p->max_inflight > 1024) {
        fprintf(stderr,
                "spate produce: --batch 1-10000, --connections 1-%d, --max-inflight 1-1024\n",
                MAX_CONNS);
        return 2;
    }
    if (sp_url_parse(url, &p->url) != 0) {
        fprintf(stderr, "spate produce: bad --url '%s' (want http://HOST:PORT)\n", url);
        return 2;
    }
    if (p->demo && p->count == 0)
        p->count = 10000;
    return check_kafka_mode(p);
}

static void build_path(prod *p)
{
    int n = snprintf(p->path, sizeof p->path, "%s/v1/topics/%s/records?ack=%s", p->url.base_path,
                     p->topic, p->ack);
    if (p->key) {
        static const char hex[] = "0123456789ABCDEF";
        for (const unsigned char *k = (const unsigned char *)p->key;
             *k && n < (int)sizeof p->path - 8; k++) {
            if (k == (const unsigned char *)p->key)
                n += snprintf(p->path + n, sizeof p->path - (size_t)n, "&key=");
            if ((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
                *k == '-' || *k == '_' || *k == '.')
                p->path[n++] = (char)*k;
            else {
                p->path[n++] = '%';
                p->path[n++] = hex[*k >> 4];
                p->path[n++] = hex[*k & 15];
            }
        }
        p->path[n] = '\0';
    }
}

static bool kafka_next(void *arg, sp_buf *out)
{
    return next_record(arg, out);
}

int sp_cli_produce(int argc, char **argv)
{
    prod *p = sp_xcalloc(1, sizeof *p);
    p->kopts.linger_ms = -1;
    p->kopts.key_sep = -1;
    p->ack = "durable";
    p->batch = 16;
    p->conns = 1;
    p->max_inflight = 1;
    int rc = parse(p, argc, argv);
    if (rc) {
        free(p);
        return rc;
    }
    p->in = stdin;
    if (p->file && !p->demo && !(p->in = fopen(p->file, "r"))) {
        fprintf(stderr, "spate produce: cannot open '%s': %s\n", p->file, strerror(errno));
        free(p);
        return 1;
    }
    if (p->kafka) {
        rc = sp_cli_kafka_produce(&p->kopts, kafka_next, p);
        if (p->in && p->in != stdin)
            fclose(p->in);
        free(p);
        return rc;
    }
    build_path(p);
    uv_loop_t loop;
    uv_loop_init(&loop);
    p->loop = &loop;
    llhttp_settings_init(&p->settings);
    p->settings.on_body = on_resp_body;
    p->settings.on_message_complete = on_resp_done;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(strcmp(p->url.host, "localhost") ? p->url.host : "127.0.0.1", p->url.port,
                    (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(p->url.host, p->url.port, (struct sockaddr_in6 *)&ss) != 0) {
        fprintf(stderr, "spate produce: --url host must be an IP address or localhost\n");
        free(p);
        return 2;
    }
    p->start_ns = sp_time_mono_ns();
    for (size_t i = 0; i < p->conns; i++) {
        conn *c = &p->c[i];
        c->p = p;
        sp_buf_init(&c->resp, 8192);
        llhttp_init(&c->parser, HTTP_RESPONSE, &p->settings);
        c->parser.data = c;
        uv_tcp_init(&loop, &c->tcp);
        c->tcp.data = c;
        c->cr.data = c;
        uv_tcp_connect(&c->cr, &c->tcp, (struct sockaddr *)&ss, on_connect);
    }
    uv_timer_init(&loop, &p->pacer);
    uv_timer_init(&loop, &p->progress);
    p->pacer.data = p->progress.data = p;
    if (p->rate > 0)
        uv_timer_start(&p->pacer, on_pacer, 10, 10);
    uv_timer_start(&p->progress, on_progress, 1000, 1000);
    uv_run(&loop, UV_RUN_DEFAULT);
    double secs = elapsed(p);
    printf("{\"records\":%llu,\"seconds\":%.3f,\"records_per_sec\":%.0f,\"retries\":%llu,"
           "\"errors\":%llu}\n",
           (unsigned long long)p->acked, secs, (double)p->acked / (secs > 0 ? secs : 1),
           (unsigned long long)p->retries, (unsigned long long)p->errors);
    uv_loop_close(&loop);
    for (size_t i = 0; i < p->conns; i++)
        sp_buf_free(&p->c[i].resp);
    while (p->retry) {
        batch_req *b = p->retry;
        p->retry = b->next;
        batch_free(b);
    }
    if (p->in && p->in != stdin)
        fclose(p->in);
    rc = p->exit_code;
    free(p);
    return rc;
}
