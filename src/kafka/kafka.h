/* kafka.h - Apache Kafka as spate's log: the backend interface (hub/backend.h)
 * implemented with librdkafka. See docs/internals/KAFKA.md.
 *
 * One backend = one librdkafka producer, one tail consumer (the watched
 * topics' partitions, assigned, not a group), one reader consumer (history
 * reads older than the in-memory window) and one event-loop thread of its
 * own on which every callback runs (append completions, tail
 * notifications). librdkafka's queues wake that loop through
 * rd_kafka_queue_io_event_enable and a uv_poll: no poll thread. */
#ifndef SP_KAFKA_KAFKA_H
#define SP_KAFKA_KAFKA_H

#include <stddef.h>

#include "core/config.h"
#include "hub/backend.h"

/* Opens a Kafka backend. `props` is the configuration's kafka.* pass-through
 * (keys without the "kafka." prefix, in order; a later key replaces an
 * earlier one). Every key goes to librdkafka (producer and consumers) except
 * those starting with "spate.", which are spate's own:
 *
 *   spate.read_timeout      ms a history read may wait for the broker (5000)
 *   spate.window_bytes      bytes of recent records kept in memory per
 *                           watched partition; reads inside it never touch
 *                           the network (8 MiB)
 *   spate.max_pending       records produced and not yet acknowledged;
 *                           appends past it fail -EAGAIN (100000)
 *   spate.admin_timeout     ms topic create/delete/offset-for-time wait (10000)
 *   spate.metadata_interval ms between metadata + watermark refreshes (5000)
 *   spate.flush_timeout     ms close waits for deliveries before failing the
 *                           rest with -ESHUTDOWN (5000)
 *   spate.max_fetch_bytes   bytes one history read fetches at most (4 MiB)
 *
 * Defaults spate sets unless given: enable.idempotence=true, acks=all,
 * linger.ms=1 (producer), fetch.wait.max.ms=10 (consumers),
 * statistics.interval.ms=1000, client.id=spate, reconnect.backoff.max.ms=1000
 * (librdkafka expires messages late while it backs off from a dead broker:
 * this keeps message.timeout.ms honest within about a second). "bootstrap.servers" is
 * required. An unknown librdkafka key or a bad value fails with -EINVAL and
 * librdkafka's own message in err. The brokers need not be reachable:
 * open succeeds and ready() says what is wrong until they are.
 * Returns 0 and *out (close it with sp_backend_close), or a negative errno
 * with a one-line reason in err. */
int sp_kafka_backend_open(const sp_config_kv *props, size_t nprops, sp_backend **out, char *err,
                          size_t errlen);

/* The broker's text for the error of the append whose callback is running
 * ("" when none). Only valid inside an append callback of a Kafka backend,
 * on the backend thread (it is thread-local there): copy it if needed. */
const char *sp_kafka_ack_errstr(void);

#endif
