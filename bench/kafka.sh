#!/usr/bin/env bash
# bench/kafka.sh - spate on Kafka against the articles' stack, both on the
# same dev broker (`spate dev kafka --brokers 1`: librdkafka's mock cluster,
# in memory; a protocol peer, not a performance model of Kafka).
#
# Cells, each printed with the ratio spate / reference:
#   producer  records/s of `spate produce --kafka --demo news` against the
#             reference's news_producer.py (confluent-kafka) and kcat -P,
#             BENCH_RECORDS records each, to the same topic
#   awaited   POST /items: spate serve --kafka (ack=durable: the answer
#             waits for Kafka's delivery report) against the reference
#             FastAPI app's awaited AIOProducer, wrk at each BENCH_CONNS
#   fire      spate POST /items?ack=none against the reference's
#             POST /items/fire
#   latency   end to end: fanout_client publishes {"ts":..} at BENCH_RATE/s
#             and BENCH_SUBS SSE subscribers measure publish -> delivery
#             (spate: POST /v1/topics/bench/records -> /v1/topics/bench/stream;
#             reference: POST /news -> /news/stream, FETCH_WAIT_MS=10 since
#             the mock broker holds empty fetches for fetch.wait.max.ms)
# The server cells need `spate serve --kafka` and the reference's Python
# packages; a cell that cannot run says why and is skipped.
# Servers and the dev broker are pinned to BENCH_SERVER_CPU, clients to
# BENCH_CLIENT_CPU. The defaults finish in under 2 minutes; for figures use
# BENCH_SECONDS=10 BENCH_CONNS="1 10 100 400" on a quiet machine.
#
# Environment:
#   SPATE_BIN      spate binary (default: build/spate)
#   REF_DIR        reference peers (default: ../shared/reference next to the repo)
#   REF_PYTHON     python with fastapi/uvicorn/confluent-kafka (default /usr/bin/python3)
#   BENCH_SECONDS  measured seconds per wrk/latency run (default 3)
#   BENCH_WARMUP   warm-up seconds before each run (default 1)
#   BENCH_CONNS    wrk connection counts (default "1 100")
#   BENCH_RECORDS  records per producer run (default 50000; news_producer.py does not wait on a full queue)
#   BENCH_RATE / BENCH_SUBS   latency cell: messages/s and subscribers (200 / 10)
#   BENCH_TESTS    any of producer awaited fire latency (default all)
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU   cores (default 1 / 0)
# Only 127.0.0.1 is used; everything started here is stopped on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
# shellcheck source=bench/lib-ref.sh
. "$root/bench/lib-ref.sh"

ref_paths "$root"
BENCH_SECONDS=${BENCH_SECONDS:-3}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_CONNS=${BENCH_CONNS:-1 100}
BENCH_RECORDS=${BENCH_RECORDS:-50000}
BENCH_RATE=${BENCH_RATE:-200}
BENCH_SUBS=${BENCH_SUBS:-10}
BENCH_TESTS=${BENCH_TESTS:-producer awaited fire latency}
SRV_CPU=${BENCH_SERVER_CPU:-1}
CLI_CPU=${BENCH_CLIENT_CPU:-0}
LUA=$REF_DIR/conf/wrk_report.lua
ITEM='{"name":"Foo","description":"A very nice Item","price":35.4,"tax":3.2}'

[ -x "$SPATE_BIN" ] || ref_die "no spate binary at $SPATE_BIN (make build, or set SPATE_BIN)"
command -v kcat >/dev/null || ref_die "kcat is not installed (Debian package kcat)"
has_test() { [[ " $BENCH_TESTS " == *" $1 "* ]]; }
skip() { printf '  skip %-10s %s\n' "$1" "$2"; }

ref_init kafka
now_ns() { date +%s%N; }

# ---- the dev broker, spate and the reference ---------------------------------

start_dev() {
    ref_spawn "$ref_rundir/dev.out" taskset -c "$SRV_CPU" "$SPATE_BIN" dev kafka --brokers 1 \
        --partitions 1 --topic items --topic latest-news --topic news --topic bench \
        --topic produce-spate --topic produce-kcat --topic produce-ref
    local i
    bootstrap=
    for i in $(seq 1 100); do
        bootstrap=$(head -1 "$ref_rundir/dev.out" 2>/dev/null | grep -E '^127\.0\.0\.1:[0-9]+' || true)
        [ -n "$bootstrap" ] && break
        sleep 0.05
    done
    [ -n "$bootstrap" ] || ref_die "spate dev kafka did not start: $(cat "$ref_rundir/dev.out")"
    dev_pid=$ref_last_pid
}

ref_ok=1
ref_why=
"$REF_PYTHON" -c 'import fastapi, uvicorn, uvloop, httptools, confluent_kafka' 2>/dev/null || {
    ref_ok=0
    ref_why="$REF_PYTHON lacks fastapi/uvicorn/uvloop/httptools/confluent_kafka"
}
[ -f "$REF_DIR/seed_app.py" ] || { ref_ok=0; ref_why="no seed_app.py in $REF_DIR"; }

start_reference() {
    ref_port=$(bench_free_port) || ref_die "no free port"
    ref_spawn "$ref_rundir/reference.log" env -C "$REF_DIR" KAFKA_BOOTSTRAP="$bootstrap" \
        FETCH_WAIT_MS=10 taskset -c "$SRV_CPU" "$REF_PYTHON" -m uvicorn seed_app:app \
        --host 127.0.0.1 --port "$ref_port" --loop uvloop --http httptools --workers 1 \
        --log-level warning
    ref_pid=$ref_last_pid
    bench_wait_port "$ref_port" 200 || {
        ref_ok=0
        ref_why="reference app did not start: $(tail -3 "$ref_rundir/reference.log")"
    }
}

spate_ok=0
spate_why="spate serve has no --kafka (the Kafka backend is not wired in this build)"
start_spate() {
    "$SPATE_BIN" serve --help 2>&1 | grep -q -- '--kafka' || return 0
    ref_start_spate "$SRV_CPU" "$ref_rundir/spate-data" --kafka "$bootstrap"
    spate_ok=1
}

# ---- cells -------------------------------------------------------------------

declare -A R

# producer NAME CMD...: runs CMD (which produces BENCH_RECORDS records),
# records/s into R[producer/NAME].
producer() {
    local name=$1 t0 t1
    shift
    t0=$(now_ns)
    "$@" >"$ref_rundir/producer-$name.out" 2>&1 || ref_die "producer $name failed: $(tail -3 "$ref_rundir/producer-$name.out")"
    t1=$(now_ns)
    R[producer/$name]=$(awk -v n="$BENCH_RECORDS" -v d=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (d / 1e9) }')
    printf '  %-22s %9s records/s\n' "$name" "${R[producer/$name]}"
}

cell_producer() {
    echo "-- producer: $BENCH_RECORDS news records each, to the dev broker"
    # the same articles for every producer (news_producer.py's, when it runs)
    "$REF_PYTHON" "$REF_DIR/news_producer.py" --ndjson "$BENCH_RECORDS" >"$ref_rundir/news.ndjson" 2>/dev/null ||
        seq 1 "$BENCH_RECORDS" | awk '{ printf "{\"id\":%d,\"title\":\"Headline %d\"}\n", $1, $1 }' \
            >"$ref_rundir/news.ndjson"
    producer "spate produce --kafka" taskset -c "$CLI_CPU" "$SPATE_BIN" produce --kafka "$bootstrap" \
        --topic produce-spate --file "$ref_rundir/news.ndjson" --quiet
    producer "kcat -P" taskset -c "$CLI_CPU" sh -c 'exec kcat -b "$1" -P -t produce-kcat <"$2"' kcat \
        "$bootstrap" "$ref_rundir/news.ndjson"
    if [ "$ref_ok" = 1 ]; then
        producer "news_producer.py" taskset -c "$CLI_CPU" "$REF_PYTHON" "$REF_DIR/news_producer.py" \
            "$bootstrap" "$BENCH_RECORDS"
        printf '  spate / news_producer.py: %sx   spate / kcat: %sx\n' \
            "$(ref_ratio "${R[producer/spate produce --kafka]}" "${R[producer/news_producer.py]}")" \
            "$(ref_ratio "${R[producer/spate produce --kafka]}" "${R[producer/kcat -P]}")"
    else
        skip news_producer "$ref_why"
        printf '  spate / kcat: %sx\n' "$(ref_ratio "${R[producer/spate produce --kafka]}" "${R[producer/kcat -P]}")"
    fi
}

wrk_run() { # seconds conns url body
    WRK_BODY=$4 taskset -c "$CLI_CPU" wrk -t1 -c"$2" -d"$1"s --timeout 5s -s "$LUA" "$3"
}

wrk_cell() { # key url conns
    local out line
    [ "$BENCH_WARMUP" -gt 0 ] && wrk_run "$BENCH_WARMUP" "$3" "$2" "$ITEM" >/dev/null
    out=$(wrk_run "$BENCH_SECONDS" "$3" "$2" "$ITEM")
    line=$(grep '^WRKSUM' <<<"$out" || true)
    [ -n "$line" ] || ref_die "no WRKSUM line from wrk for $2: $out"
    bench_parse_wrksum "$line"
    R[$1,rps]=$WRK_rps R[$1,p99]=$WRK_p99_us
    R[$1,errs]=$((WRK_err_connect + WRK_err_read + WRK_err_write + WRK_err_status + WRK_err_timeout))
    printf '  %-26s c=%-4s %9.0f req/s  p99 %8s us  errors %s\n' "$1" "$3" "$WRK_rps" "$WRK_p99_us" "${R[$1,errs]}"
}

cell_rest() { # awaited|fire
    local t=$1 conns ru su
    echo "-- $t: POST /items"
    command -v wrk >/dev/null || { skip "$t" "wrk is not installed"; return; }
    [ "$spate_ok" = 1 ] || { skip "$t" "$spate_why"; return; }
    [ "$ref_ok" = 1 ] || { skip "$t" "$ref_why"; return; }
    ru=http://127.0.0.1:$ref_port/items su=http://127.0.0.1:$spate_port/items
    [ "$t" = fire ] && ru=$ru/fire su="$su?ack=none"
    for conns in $BENCH_CONNS; do
        wrk_cell "reference $t" "$ru" "$conns"
        wrk_cell "spate $t" "$su" "$conns"
        for k in "reference $t" "spate $t"; do
            R[$k/$conns,rps]=${R[$k,rps]} R[$k/$conns,p99]=${R[$k,p99]}
        done
        printf '  => c=%s: spate / reference %sx req/s, p99 %sx\n' "$conns" \
            "$(ref_ratio "${R[spate $t,rps]}" "${R[reference $t,rps]}")" \
            "$(ref_ratio "${R[spate $t,p99]}" "${R[reference $t,p99]}")"
    done
}

latency_run() { # name sub-url pub-url
    local out
    out=$(taskset -c "$CLI_CPU" "$ref_rundir/fanout_client" -q -s "$2" -n "$BENCH_SUBS" -p "$3" \
        -r "$BENCH_RATE" -w "$BENCH_WARMUP" -d "$BENCH_SECONDS" 2>/dev/null || true)
    printf '  %-10s %s | %s | %s\n' "$1" "$(grep -o 'pub_ok=[0-9]* pub_err=[0-9]*' <<<"$out")" \
        "$(grep -o 'delivered=[0-9]* delivered_per_s=[0-9.]* expected_per_s=[0-9.]*' <<<"$out")" \
        "$(grep -o 'lat_p50_us=[0-9.]* lat_p90_us=[0-9.]* lat_p99_us=[0-9.]*' <<<"$out")"
    R[lat/$1]=$(grep -o 'lat_p99_us=[0-9.]*' <<<"$out" | cut -d= -f2 || true)
}

cell_latency() {
    echo "-- latency: $BENCH_SUBS SSE subscribers, $BENCH_RATE msg/s"
    [ "$spate_ok" = 1 ] || { skip latency "$spate_why"; return; }
    [ -f "$REF_DIR/fanout_client.c" ] || { skip latency "no fanout_client.c in $REF_DIR"; return; }
    cc -O2 -Wall -o "$ref_rundir/fanout_client" "$REF_DIR/fanout_client.c" || ref_die "cannot build fanout_client"
    latency_run spate "http://127.0.0.1:$spate_port/v1/topics/bench/stream" \
        "http://127.0.0.1:$spate_port/v1/topics/bench/records"
    if [ "$ref_ok" = 1 ]; then
        latency_run reference "http://127.0.0.1:$ref_port/news/stream" "http://127.0.0.1:$ref_port/news"
        printf '  => p99 spate / reference %sx\n' "$(ref_ratio "${R[lat/spate]:-0}" "${R[lat/reference]:-0}")"
    else
        skip reference "$ref_why"
    fi
}

echo "== bench/kafka.sh: $(ref_machine)"
echo "   spate: $SPATE_BIN ($("$SPATE_BIN" --version 2>/dev/null | head -1)); servers and dev broker on CPU $SRV_CPU, clients on CPU $CLI_CPU"
echo "   ${BENCH_SECONDS}s per run after ${BENCH_WARMUP}s warm-up; connections: $BENCH_CONNS"
start_dev
echo "   dev broker: $bootstrap"
if has_test awaited || has_test fire || has_test latency; then
    start_spate
    [ "$ref_ok" = 1 ] && start_reference
fi
has_test producer && cell_producer
has_test awaited && cell_rest awaited
has_test fire && cell_rest fire
has_test latency && cell_latency

# ---- goals (issue 6) -----------------------------------------------------------
if has_test awaited && [ "$spate_ok" = 1 ] && [ "$ref_ok" = 1 ] && command -v wrk >/dev/null; then
    echo "-- goals (issue 6, awaited POST /items)"
    for conns in $BENCH_CONNS; do
        x=$(ref_ratio "${R[spate awaited/$conns,rps]}" "${R[reference awaited/$conns,rps]}")
        y=$(ref_ratio "${R[spate awaited/$conns,p99]}" "${R[reference awaited/$conns,p99]}")
        goal=
        case $conns in 1) goal=10 ;; 100) goal=20 ;; esac
        line="  c=$conns: ×$x req/s"
        [ -n "$goal" ] && line+=" (goal ≥ $goal: $(awk -v a="$x" -v g="$goal" 'BEGIN { print (a != "-" && a + 0 >= g) ? "met" : "MISSED" }'))"
        line+="; p99 ×$y (goal < 1: $(awk -v a="$y" 'BEGIN { print (a != "-" && a + 0 < 1) ? "met" : "MISSED" }'))"
        echo "$line"
    done
    if [[ " $BENCH_CONNS " == *" 100 "* ]]; then
        ref_ceiling "$BENCH_SECONDS" 100 "$SRV_CPU"
        ref_goal_reach "awaited POST /items at 100 connections" 20 "${R[reference awaited/100,rps]}"
    fi
fi
echo "-- done"
