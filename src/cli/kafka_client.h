/* kafka_client.h - `spate produce --kafka` and `spate consume --kafka`:
 * the direct Kafka clients (librdkafka), no spate server in between.
 *
 * cmd_produce.c and cmd_consume.c parse their options as in HTTP mode and
 * hand the Kafka run to these functions; input formats and output (the
 * JSON summary, NDJSON values or envelopes) are the same in both modes. */
#ifndef SP_CLI_KAFKA_CLIENT_H
#define SP_CLI_KAFKA_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SP_CLI_KAFKA_MAX_SETS 64

/* librdkafka properties from --set KEY=VALUE (a leading "kafka." is
 * dropped, so the server's spelling works too). */
typedef struct sp_cli_kafka_sets {
    const char *kv[SP_CLI_KAFKA_MAX_SETS];
    size_t n;
} sp_cli_kafka_sets;

/* Adds one KEY=VALUE; returns 0, or -E2BIG when full, -EINVAL without '='. */
int sp_cli_kafka_sets_add(sp_cli_kafka_sets *s, const char *kv);

/* Appends the next input record (its value, then '\n') to out; false at
 * the end of the input. */
typedef bool (*sp_cli_next_record_fn)(void *arg, sp_buf *out);

typedef struct sp_cli_kafka_produce_opts {
    const char *bootstrap, *topic;
    const char *key;  /* every record's key, or NULL */
    int key_sep;      /* >= 0: each line is KEY<sep>VALUE (like kcat -K) */
    int linger_ms;    /* < 0: librdkafka's default */
    int batch_size;   /* records per Kafka batch (batch.num.messages); 0: default */
    int max_inflight; /* max.in.flight.requests.per.connection; 0: default */
    double rate;      /* records per second; 0 = unlimited */
    bool quiet;
    bool print_acks; /* one JSON line per delivery report on stdout */
    sp_cli_kafka_sets sets;
} sp_cli_kafka_produce_opts;

/* Produces every record next() yields with an idempotent producer (acks
 * all, murmur2 partitioner like spate and Java clients), waits for every
 * delivery report, prints the JSON summary on stdout. SIGINT stops the
 * input and flushes what was produced. Returns 0 when every record was
 * delivered, 1 when any delivery failed (each reason on stderr), 2 on a
 * bad librdkafka setting. */
int sp_cli_kafka_produce(const sp_cli_kafka_produce_opts *o, sp_cli_next_record_fn next, void *arg);

typedef struct sp_cli_kafka_consume_opts {
    const char *bootstrap, *topic;
    const char *from; /* earliest, latest or an offset */
    int partition;    /* < 0: every partition */
    uint64_t count;   /* stop after this many; 0 = no limit */
    bool follow;      /* keep waiting at the end of the log */
    bool envelope;    /* print envelopes instead of values */
    sp_cli_kafka_sets sets;
} sp_cli_kafka_consume_opts;

/* Reads the topic's partitions (assigned, no consumer group) and prints
 * each record as NDJSON: its value, or with envelope the same envelope
 * spate's API serves (id "P-O", partition, offset, timestamp, key, value).
 * Stops at the end of every partition unless follow, after count records,
 * or on SIGINT. Returns 0, 1 on a Kafka error, 2 on bad settings. */
int sp_cli_kafka_consume(const sp_cli_kafka_consume_opts *o);

#endif
