#!/usr/bin/env bash
# bench/vs-reference.sh - spate's seed routes against the reference FastAPI
# app (../shared/reference/seed_app.py), side by side, same machine, same run.
#
# Setup: librdkafka's mock cluster (mockkafka.c, compiled into the scratch
# dir) with topics latest-news and items; 200 articles from news_producer.py
# loaded into both systems the same way (Kafka for the reference, NDJSON
# through `spate produce` for spate); the reference app under uvicorn
# (uvloop, httptools, 1 worker); spate with 1 I/O thread, store.fsync=always,
# data in the scratch dir. Both servers and the mock broker are pinned to the
# server CPU, wrk (1 thread) to the client CPU. Before measuring, one curl per
# route and server checks the answers (200 JSON of the right shape; spate's
# ack=none answers 202 by design) and that a body without `price` is a 422.
#
# Cells (each at every BENCH_CONNS, reference then spate, so drift hits both):
#   latest   GET /latest-news
#   awaited  POST /items, Item body: spate ack=durable (fsync always),
#            reference awaiting the Kafka delivery report
#   fire     spate POST /items?ack=none, reference POST /items/fire
#   ceiling  (with 100 in BENCH_CONNS) nginx `return 200` from the reference's
#            nginx_static.conf under the same wrk at 100 connections: each
#            ×N goal is printed with whether N × the reference's req/s is
#            below what this machine serves at all with one server core
# Per cell: req/s, p50/p99 (wrk's histogram via wrk_report.lua), the server
# side's CPU time per request (utime+stime of the server process, all
# threads; for the reference the app plus the mock broker), errors. With
# BENCH_REPEAT=N each cell runs N times and the run with the median req/s is
# kept (all runs are printed as they happen). The CPU-per-request ratio is
# printed next to each goal: on a shared machine it is steadier than req/s.
#
# Environment:
#   SPATE_BIN      spate binary (default: build/spate)
#   REF_DIR        reference peers (default: ../shared/reference next to the repo)
#   REF_PYTHON     python with fastapi/uvicorn/confluent-kafka (default /usr/bin/python3)
#   BENCH_SECONDS  length of each measured run (default 10)
#   BENCH_WARMUP   warm-up seconds before each run, 0 for none (default 1)
#   BENCH_CONNS    connection counts (default "1 10 100 400")
#   BENCH_TESTS    any of latest awaited fire (default all three)
#   BENCH_REPEAT   runs per cell, median kept (default 1)
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU   cores (default 1 / 0)
#   MOCK_CPU       core for the mock Kafka broker (default: the server CPU)
# Only 127.0.0.1 is used; everything started here is stopped on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
# shellcheck source=bench/lib-ref.sh
. "$root/bench/lib-ref.sh"

ref_paths "$root"
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_CONNS=${BENCH_CONNS:-1 10 100 400}
BENCH_TESTS=${BENCH_TESTS:-latest awaited fire}
BENCH_REPEAT=${BENCH_REPEAT:-1}
SRV_CPU=${BENCH_SERVER_CPU:-1}
CLI_CPU=${BENCH_CLIENT_CPU:-0}
MOCK_CPU=${MOCK_CPU:-$SRV_CPU}
LUA=$REF_DIR/conf/wrk_report.lua
ITEM='{"name":"Foo","description":"A very nice Item","price":35.4,"tax":3.2}'
BAD_ITEM='{"name":"Foo","description":"no price"}'
ARTICLES=200

[ -x "$SPATE_BIN" ] || ref_die "no spate binary at $SPATE_BIN (make build, or set SPATE_BIN)"
command -v wrk >/dev/null || ref_die "wrk is not installed (scripts/install-deps.sh all)"
command -v curl >/dev/null || ref_die "curl is not installed"
[ -f "$LUA" ] && [ -f "$REF_DIR/seed_app.py" ] && [ -f "$REF_DIR/mockkafka.c" ] ||
    ref_die "reference files not found in $REF_DIR"
"$REF_PYTHON" -c 'import fastapi, uvicorn, uvloop, httptools, confluent_kafka' 2>/dev/null ||
    ref_die "$REF_PYTHON lacks fastapi/uvicorn/uvloop/httptools/confluent_kafka (scripts/install-deps.sh all)"

ref_init vs-reference

# ---- the reference: mock Kafka + news + uvicorn -----------------------------
start_reference() {
    cc -O2 -Wall -o "$ref_rundir/mockkafka" "$REF_DIR/mockkafka.c" -lrdkafka ||
        ref_die "cannot compile mockkafka.c (librdkafka-dev)"
    ref_spawn "$ref_rundir/mockkafka.out" taskset -c "$MOCK_CPU" "$ref_rundir/mockkafka"
    mock_pid=$ref_last_pid
    local i
    bootstrap=
    for i in $(seq 1 100); do
        bootstrap=$(head -1 "$ref_rundir/mockkafka.out" 2>/dev/null | grep -E '^127\.0\.0\.1:[0-9]+' || true)
        [ -n "$bootstrap" ] && break
        sleep 0.05
    done
    [ -n "$bootstrap" ] || ref_die "mock Kafka did not start: $(cat "$ref_rundir/mockkafka.out")"
    "$REF_PYTHON" "$REF_DIR/news_producer.py" "$bootstrap" "$ARTICLES" >/dev/null ||
        ref_die "news_producer.py could not load the articles into Kafka"

    ref_port=$(bench_free_port) || ref_die "no free port"
    ref_spawn "$ref_rundir/reference.log" env -C "$REF_DIR" KAFKA_BOOTSTRAP="$bootstrap" \
        taskset -c "$SRV_CPU" "$REF_PYTHON" -m uvicorn seed_app:app --host 127.0.0.1 --port "$ref_port" \
        --loop uvloop --http httptools --workers 1 --log-level warning
    ref_pid=$ref_last_pid
    bench_wait_port "$ref_port" 200 || ref_die "reference app did not start: $(tail -5 "$ref_rundir/reference.log")"
    # The consumer fills the cache in the background: wait for all 10.
    for i in $(seq 1 300); do
        [ "$(curl -s "http://127.0.0.1:$ref_port/latest-news" | "$REF_PYTHON" -c \
            'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null)" = 10 ] && return 0
        sleep 0.1
    done
    ref_die "the reference's latest-news cache did not fill in 30 s"
}

start_spate_news() {
    ref_start_spate "$SRV_CPU" "$ref_rundir/spate-data" --set store.fsync=always
    "$REF_PYTHON" "$REF_DIR/news_producer.py" --ndjson "$ARTICLES" |
        "$SPATE_BIN" produce --url "http://127.0.0.1:$spate_port" --topic latest-news --quiet >/dev/null ||
        ref_die "spate produce could not load the articles"
}

# ---- correctness, once per route and server ---------------------------------
# check NAME WANT_STATUS PYTHON_ASSERTION curl-args...: the body must be JSON
# (Content-Type application/json) and satisfy the assertion on `v`.
check() {
    local name=$1 want=$2 assertion=$3 out status ctype body
    shift 3
    out=$(curl -s -D - -o "$ref_rundir/body" --max-time 10 "$@") || ref_die "check $name: curl failed"
    status=$(head -1 <<<"$out" | awk '{print $2}')
    ctype=$(grep -i '^content-type:' <<<"$out" | tr -d '\r' | awk '{print $2}')
    body=$(head -c 300 "$ref_rundir/body")
    [ "$status" = "$want" ] || ref_die "check $name: status $status, wanted $want: $body"
    [[ "$ctype" == application/json* ]] || ref_die "check $name: Content-Type '$ctype': $body"
    "$REF_PYTHON" -c "import json,sys; v=json.load(open(sys.argv[1])); assert $assertion, v" \
        "$ref_rundir/body" 2>/dev/null || ref_die "check $name: unexpected body: $body"
    printf '  ok  %-34s %s %s\n' "$name" "$status" "$(head -c 70 <<<"$body")"
}

check_all() {
    local r="http://127.0.0.1:$ref_port" s="http://127.0.0.1:$spate_port" j=(-H 'Content-Type: application/json')
    local news='isinstance(v,list) and len(v)==10 and v[0]["id"]==199 and v[9]["id"]==190'
    check "reference GET /latest-news" 200 "$news" "$r/latest-news"
    check "spate GET /latest-news" 200 "$news" "$s/latest-news"
    check "reference POST /items" 200 '"timestamp" in v' "${j[@]}" -d "$ITEM" "$r/items"
    check "spate POST /items (durable)" 200 '"timestamp" in v and "offset" in v' "${j[@]}" -d "$ITEM" "$s/items"
    check "reference POST /items/fire" 200 '"timestamp" in v' "${j[@]}" -d "$ITEM" "$r/items/fire"
    check "spate POST /items?ack=none" 202 'v=={"status":"accepted"}' "${j[@]}" -d "$ITEM" "$s/items?ack=none"
    check "reference POST /items, no price" 422 'v["detail"][0]["loc"]==["body","price"]' "${j[@]}" -d "$BAD_ITEM" "$r/items"
    check "spate POST /items, no price" 422 'v["detail"][0]["loc"]==["body","price"]' "${j[@]}" -d "$BAD_ITEM" "$s/items"
}

# ---- measuring ----------------------------------------------------------------
wrk_run() { # seconds conns url [body]
    WRK_BODY=${4:-} taskset -c "$CLI_CPU" wrk -t1 -c"$2" -d"$1"s --timeout 5s -s "$LUA" "$3"
}

declare -A R # R[test/server/conns,field]

# run_once PIDS URL CONNS BODY: one measured run; sets run_* variables.
run_once() {
    local pids=$1 url=$2 conns=$3 body=$4 t0 t1 out line
    [ "$BENCH_WARMUP" -gt 0 ] && wrk_run "$BENCH_WARMUP" "$conns" "$url" "$body" >/dev/null
    # shellcheck disable=SC2086
    t0=$(bench_ticks $pids)
    out=$(wrk_run "$BENCH_SECONDS" "$conns" "$url" "$body")
    # shellcheck disable=SC2086
    t1=$(bench_ticks $pids)
    line=$(grep '^WRKSUM' <<<"$out" || true)
    [ -n "$line" ] || ref_die "no WRKSUM line from wrk for $url: $out"
    bench_parse_wrksum "$line"
    run_rps=$WRK_rps run_p50=$WRK_p50_us run_p99=$WRK_p99_us
    run_errs=$((WRK_err_connect + WRK_err_read + WRK_err_write + WRK_err_status + WRK_err_timeout))
    run_cpu=$(ref_cpu_us $((t1 - t0)) "$WRK_requests")
}

# measure TEST SERVER PIDS URL CONNS BODY: BENCH_REPEAT runs, median kept.
measure() {
    local key=$1/$2/$5 i runs=() best
    for i in $(seq 1 "$BENCH_REPEAT"); do
        run_once "$3" "$4" "$5" "$6"
        runs+=("$run_rps $run_p50 $run_p99 $run_cpu $run_errs")
        printf '  %-8s %-9s c=%-4s %9.0f req/s  p50 %7s us  p99 %7s us  cpu %7s us/req  errors %s  (load %s)\n' \
            "$1" "$2" "$5" "$run_rps" "$run_p50" "$run_p99" "$run_cpu" "$run_errs" "$(cut -d' ' -f1 /proc/loadavg)"
    done
    best=$(printf '%s\n' "${runs[@]}" | sort -n -k1,1 | sed -n "$(((BENCH_REPEAT + 1) / 2))p")
    read -r R[$key,rps] R[$key,p50] R[$key,p99] R[$key,cpu] R[$key,errs] <<<"$best"
}

has_test() { [[ " $BENCH_TESTS " == *" $1 "* ]]; }

# ---- run ------------------------------------------------------------------------
echo "== bench/vs-reference.sh: $(ref_machine)"
echo "   $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $("$REF_PYTHON" -c 'import fastapi, uvicorn, confluent_kafka; print("fastapi", fastapi.__version__, "uvicorn", uvicorn.__version__, "confluent-kafka", confluent_kafka.version()[0], "librdkafka", confluent_kafka.libversion()[0])')"
echo "   spate: $SPATE_BIN ($("$SPATE_BIN" --version 2>/dev/null | head -1)), 1 I/O thread, store.fsync=always"
echo "   servers on CPU $SRV_CPU (mock Kafka on CPU $MOCK_CPU), wrk -t1 on CPU $CLI_CPU; ${BENCH_SECONDS}s per run after ${BENCH_WARMUP}s warm-up, ${BENCH_REPEAT} run(s) per cell; connections: $BENCH_CONNS"

start_reference
start_spate_news
echo "-- checks"
check_all

ref_url=http://127.0.0.1:$ref_port
spate_url=http://127.0.0.1:$spate_port
for t in latest awaited fire; do
    has_test "$t" || continue
    case $t in
        latest) ru=$ref_url/latest-news su=$spate_url/latest-news body= ;;
        awaited) ru=$ref_url/items su=$spate_url/items body=$ITEM ;;
        fire) ru=$ref_url/items/fire su="$spate_url/items?ack=none" body=$ITEM ;;
    esac
    echo "-- $t"
    for conns in $BENCH_CONNS; do
        measure "$t" reference "$ref_pid $mock_pid" "$ru" "$conns" "$body"
        measure "$t" spate "$spate_pid" "$su" "$conns" "$body"
    done
done

# ---- report -----------------------------------------------------------------------
declare -A LABEL=([latest]="GET /latest-news" [awaited]="POST /items awaited" [fire]="POST /items fire-and-forget")
echo
echo "| route | conns | reference req/s | reference p99 ms | spate req/s | spate p99 ms | req/s ×ref | p99 ÷ref | CPU µs/req ref / spate | errors ref / spate |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in latest awaited fire; do
    has_test "$t" || continue
    for conns in $BENCH_CONNS; do
        r=$t/reference/$conns s=$t/spate/$conns
        printf '| %s | %s | %.0f | %.2f | %.0f | %.2f | %s | %s | %s / %s | %s / %s |\n' "${LABEL[$t]}" "$conns" \
            "${R[$r,rps]}" "$(awk -v u="${R[$r,p99]}" 'BEGIN{print u/1000}')" \
            "${R[$s,rps]}" "$(awk -v u="${R[$s,p99]}" 'BEGIN{print u/1000}')" \
            "$(ref_ratio "${R[$s,rps]}" "${R[$r,rps]}")" "$(ref_ratio "${R[$s,p99]}" "${R[$r,p99]}")" \
            "${R[$r,cpu]}" "${R[$s,cpu]}" "${R[$r,errs]}" "${R[$s,errs]}"
    done
done

if [[ " $BENCH_CONNS " == *" 100 "* ]]; then
    echo
    echo "-- ceiling (what one server core serves at all with this load generator)"
    ref_ceiling "$BENCH_SECONDS" 100 "$SRV_CPU"
fi

verdict() { [ "$1" = 1 ] && echo met || echo MISSED; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && a + 0 >= b) ? 1 : 0 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a != "-" && a + 0 <= b) ? 1 : 0 }'; }
echo
echo "Goals (issue 4):"
if has_test latest && [[ " $BENCH_CONNS " == *" 100 "* ]]; then
    x=$(ref_ratio "${R[latest/spate/100,rps]}" "${R[latest/reference/100,rps]}")
    y=$(ref_ratio "${R[latest/spate/100,p99]}" "${R[latest/reference/100,p99]}")
    z=$(ref_ratio "${R[latest/reference/100,cpu]}" "${R[latest/spate/100,cpu]}")
    echo "  GET /latest-news at 100 connections: req/s ×$x (goal ≥ 25): $(verdict "$(ge "$x" 25)"); p99 ÷$y (goal ≤ 0.05): $(verdict "$(le "$y" 0.05)"); server CPU per request: reference ÷ spate = $z"
fi
if has_test awaited && [[ " $BENCH_CONNS " == *" 100 "* ]]; then
    x=$(ref_ratio "${R[awaited/spate/100,rps]}" "${R[awaited/reference/100,rps]}")
    z=$(ref_ratio "${R[awaited/reference/100,cpu]}" "${R[awaited/spate/100,cpu]}")
    echo "  POST /items durable (fsync always) at 100 connections: req/s ×$x (goal ≥ 20): $(verdict "$(ge "$x" 20)"); server CPU per request: reference ÷ spate = $z"
fi
if [[ " $BENCH_CONNS " == *" 100 "* ]]; then
    has_test latest && ref_goal_reach "GET /latest-news at 100 connections" 25 "${R[latest/reference/100,rps]}"
    has_test awaited && ref_goal_reach "POST /items durable at 100 connections" 20 "${R[awaited/reference/100,rps]}"
fi
for t in latest awaited fire; do
    has_test "$t" || continue
    worse=
    for conns in $BENCH_CONNS; do
        y=$(ref_ratio "${R[$t/spate/$conns,p99]}" "${R[$t/reference/$conns,p99]}")
        [ "$(awk -v a="$y" 'BEGIN { print (a != "-" && a + 0 < 1) ? 1 : 0 }')" = 1 ] || worse+=" $conns"
    done
    echo "  ${LABEL[$t]}: p99 below the reference's at every concurrency: $([ -z "$worse" ] && echo met || echo "MISSED at$worse")"
done
exit 0
