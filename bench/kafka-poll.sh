#!/usr/bin/env bash
# bench/kafka-poll.sh - delivery latency of librdkafka wired into the event
# loop (spate: rd_kafka_queue_io_event_enable + uv_poll, no poll thread)
# against the usual poll thread (rd_kafka_poll(rk, 100) handing reports to
# the loop with uv_async_send), same process, same mock broker, one
# awaited produce at a time, rounds alternating. See bench/kafka_poll.c.
#
# Environment:
#   BENCH_RECORDS  awaited produces per round (default 3000)
#   BENCH_ROUNDS   rounds per mode (default 4)
#   BENCH_CPU      core to pin the process to (default 1); "" = no pinning
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
RECORDS=${BENCH_RECORDS:-3000}
ROUNDS=${BENCH_ROUNDS:-4}
CPU=${BENCH_CPU-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/spate-bench-kpoll.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cc -O2 -Wall -o "$dir/kafka_poll" "$root/bench/kafka_poll.c" -lrdkafka -luv
echo "== bench/kafka-poll.sh: $(nproc) CPUs, librdkafka $(dpkg-query -W -f '${Version}' librdkafka1 2>/dev/null || echo '?'), $RECORDS x $ROUNDS per mode, pinned to CPU ${CPU:-none}, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$CPU" ]; then
    taskset -c "$CPU" "$dir/kafka_poll" "$RECORDS" "$ROUNDS"
else
    "$dir/kafka_poll" "$RECORDS" "$ROUNDS"
fi
