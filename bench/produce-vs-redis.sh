#!/usr/bin/env bash
# bench/produce-vs-redis.sh - durable appends over the network: spate against
# redis streams with appendfsync always.
#
# redis: redis-server started here on a scratch dir (--appendonly yes
#   --appendfsync always --save ''), pinned to the server CPU, loaded by
#   `redis-benchmark -c 50 -P 16 -n N XADD bench '*' ...` pinned to the client
#   CPU: 50 connections × 16 pipelined XADDs = 800 records in flight, each
#   acknowledged only after redis has written and fsynced the AOF (redis
#   fsyncs once per event-loop turn before it sends replies). Two bodies:
#   the issue's `field value` (a 10-byte entry) and the same ~190-byte
#   news article spate gets.
# spate: `spate serve --threads 1 --set store.fsync=always` pinned to the
#   server CPU, a 1-partition topic, loaded by `spate produce --demo news
#   --batch 16 --connections 50 --max-inflight 1 --count N` pinned to the
#   client CPU: 50 connections × 1 request of 16 NDJSON records = 800 records
#   in flight, each answered once durable (ack=durable).
# Printed per run: records/s, and the server's CPU time per record
# (utime+stime of the server process, all threads, from /proc/PID/stat).
# With BENCH_REPEAT=N each system runs N times alternately and the median
# records/s is kept.
#
# Environment:
#   SPATE_BIN       spate binary (default: build/spate)
#   BENCH_RECORDS   records per run (default 1000000)
#   BENCH_REPEAT    runs per system, median kept (default 1)
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU   cores (default 1 / 0)
# Only 127.0.0.1 is used; everything started here is stopped on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
# shellcheck source=bench/lib-ref.sh
. "$root/bench/lib-ref.sh"

SPATE_BIN=${SPATE_BIN:-$root/build/spate}
N=${BENCH_RECORDS:-1000000}
BENCH_REPEAT=${BENCH_REPEAT:-1}
SRV_CPU=${BENCH_SERVER_CPU:-1}
CLI_CPU=${BENCH_CLIENT_CPU:-0}
TOPIC=bench

[ -x "$SPATE_BIN" ] || ref_die "no spate binary at $SPATE_BIN (make build, or set SPATE_BIN)"
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
    ref_die "redis-server/redis-benchmark are not installed (redis-server, redis-tools)"

ref_init produce-vs-redis

# The article spate's --demo news generates (record 12345), as redis's value.
ARTICLE='{"id":12345,"title":"Headline number 12345","source":"reuters","url":"https://example.com/news/12345","summary":"A short summary of story 12345.","published_at":1795464308875}'

start_redis() {
    redis_port=$(bench_free_port) || ref_die "no free port"
    mkdir -p "$ref_rundir/redis"
    ref_spawn "$ref_rundir/redis.log" taskset -c "$SRV_CPU" redis-server --bind 127.0.0.1 \
        --port "$redis_port" --dir "$ref_rundir/redis" --appendonly yes --appendfsync always \
        --save '' --daemonize no --protected-mode yes
    redis_pid=$ref_last_pid
    bench_wait_port "$redis_port" || ref_die "redis did not start: $(tail -5 "$ref_rundir/redis.log")"
    [ "$(redis-cli -p "$redis_port" config get appendfsync | tail -1)" = always ] ||
        ref_die "redis is not running with appendfsync always"
}

start_spate_topic() {
    ref_start_spate "$SRV_CPU" "$ref_rundir/spate-data" --set store.fsync=always
    curl -s -f -o /dev/null -H 'Content-Type: application/json' -d "{\"name\":\"$TOPIC\",\"partitions\":1}" \
        "http://127.0.0.1:$spate_port/v1/topics" || ref_die "cannot create topic $TOPIC in spate"
}

# run_redis LABEL FIELD VALUE: one redis-benchmark run; sets run_rate, run_cpu.
run_redis() {
    local t0 t1 out rate
    redis-cli -p "$redis_port" del "$TOPIC" >/dev/null
    t0=$(bench_ticks "$redis_pid")
    out=$(taskset -c "$CLI_CPU" redis-benchmark -h 127.0.0.1 -p "$redis_port" -c 50 -P 16 -n "$N" --csv \
        XADD "$TOPIC" '*' "$2" "$3")
    t1=$(bench_ticks "$redis_pid")
    # CSV: "test","rps",...,"p99","max"; the test name may hold commas.
    rate=$(tail -1 <<<"$out" | awk -F'","' '{ print $(NF - 6) }')
    [[ "$rate" =~ ^[0-9.]+$ ]] || ref_die "unexpected redis-benchmark output: $out"
    local len
    len=$(redis-cli -p "$redis_port" xlen "$TOPIC")
    [ "$len" -ge "$N" ] || ref_die "redis stream holds $len entries, wanted $N"
    run_rate=$rate run_cpu=$(ref_cpu_us $((t1 - t0)) "$N")
    printf '  %-26s %10.0f records/s  cpu %5s us/record  (p99 %s ms; load %s)\n' "$1" "$rate" "$run_cpu" \
        "$(tail -1 <<<"$out" | awk -F'","' '{ print $(NF - 1) }')" "$(cut -d' ' -f1 /proc/loadavg)"
}

# run_spate: one spate produce run; sets run_rate, run_cpu.
run_spate() {
    local t0 t1 out rate
    t0=$(bench_ticks "$spate_pid")
    out=$(taskset -c "$CLI_CPU" "$SPATE_BIN" produce --url "http://127.0.0.1:$spate_port" --topic "$TOPIC" \
        --demo news --count "$N" --batch 16 --connections 50 --max-inflight 1 --quiet)
    t1=$(bench_ticks "$spate_pid")
    rate=$(grep -o '"records_per_sec":[0-9.]*' <<<"$out" | cut -d: -f2)
    [ -n "$rate" ] && grep -q '"errors":0' <<<"$out" || ref_die "spate produce failed: $out"
    run_rate=$rate run_cpu=$(ref_cpu_us $((t1 - t0)) "$N")
    printf '  %-26s %10.0f records/s  cpu %5s us/record  (%s; load %s)\n' "spate produce" "$rate" "$run_cpu" \
        "$out" "$(cut -d' ' -f1 /proc/loadavg)"
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }

echo "== bench/produce-vs-redis.sh: $(ref_machine)"
echo "   $(redis-server --version | cut -d' ' -f1-3); spate: $SPATE_BIN ($("$SPATE_BIN" --version 2>/dev/null | head -1))"
echo "   servers on CPU $SRV_CPU, clients on CPU $CLI_CPU; $N records per run, $BENCH_REPEAT run(s) each; 50 connections, 800 records in flight"
start_redis
start_spate_topic
declare -a RS RA SP CS CA CP
for i in $(seq 1 "$BENCH_REPEAT"); do
    run_redis "redis XADD field value" field value
    RS+=("$run_rate") CS+=("$run_cpu")
    run_redis "redis XADD article" data "$ARTICLE"
    RA+=("$run_rate") CA+=("$run_cpu")
    run_spate
    SP+=("$run_rate") CP+=("$run_cpu")
done
rs=$(median "${RS[@]}") ra=$(median "${RA[@]}") sp=$(median "${SP[@]}")
aof=$(du -sh "$ref_rundir/redis" | cut -f1)
echo
echo "| system | records/s | server CPU µs/record | spate ÷ this |"
echo "|---|---:|---:|---:|"
printf '| redis XADD `field value`, appendfsync always | %.0f | %s | %s |\n' "$rs" "$(median "${CS[@]}")" "$(ref_ratio "$sp" "$rs")"
printf '| redis XADD 1 field = the %d-byte article, appendfsync always | %.0f | %s | %s |\n' "${#ARTICLE}" "$ra" \
    "$(median "${CA[@]}")" "$(ref_ratio "$sp" "$ra")"
printf '| spate produce --demo news, batch 16, fsync always | %.0f | %s | 1.00 |\n' "$sp" "$(median "${CP[@]}")"
echo
x=$(ref_ratio "$sp" "$rs")
echo "Server CPU per record: redis (field value) ÷ spate = $(ref_ratio "$(median "${CS[@]}")" "$(median "${CP[@]}")"), redis (article) ÷ spate = $(ref_ratio "$(median "${CA[@]}")" "$(median "${CP[@]}")") (above 1 means spate spends less CPU per record)"
echo "Goal (issue 4): spate ≥ 1.0× redis XADD (appendfsync always): ×$x against \`field value\`, ×$(ref_ratio "$sp" "$ra") against the same article: $(awk -v a="$x" 'BEGIN { print (a + 0 >= 1) ? "met" : "MISSED" }') (AOF dir after the runs: $aof)"
exit 0
