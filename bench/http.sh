#!/usr/bin/env bash
# bench/http.sh - spate's HTTP/1.1 server against nginx, like for like.
#
# Both servers answer GET with {"message":"ok"} (nginx: return 200 from
# ../shared/reference/conf/nginx_static.conf, 1 worker; spate: GET /noop,
# 1 I/O thread); spate's GET / ({"message":"Hello World"}) is measured too.
# Each server is pinned to CPU 1 and wrk (1 thread) to CPU 0; every cell is
# a BENCH_SECONDS run after a short warm-up, at each of BENCH_CONNS
# connections. Per cell: req/s, p50/p99 from wrk's histogram (WRKSUM line of
# wrk_report.lua), the server's CPU time per request (utime+stime of all its
# processes and threads from /proc/PID/stat, before and after the run), and
# how busy each core was (from /proc/stat). Only 127.0.0.1 is used; every
# process started here is stopped on exit.
#
# Environment:
#   SPATE_BIN      spate binary (default: build/spate)
#   REF_DIR        reference peers (default: ../shared/reference next to the repo)
#   BENCH_SECONDS  length of each measured run (default 10)
#   BENCH_WARMUP   warm-up seconds before each run, 0 for none (default 1)
#   BENCH_CONNS    connection counts (default "10 100 400")
#   BENCH_REPEAT   rounds (default 1). Each round measures every server once,
#                  in turn, so drift in the machine's speed hits all of them;
#                  the tables then show, per cell, BENCH_STAT of the rounds
#   BENCH_STAT     median (default): each figure is the median of its rounds;
#                  best: the round with the most req/s (filters out rounds
#                  slowed by other load, flatters every server alike)
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU   cores (default 1 / 0)
#   BENCH_TARGETS  which cells: any of nginx spate-noop spate-root (default all)
#   NGINX_PORT     port nginx listens on (default 8080, as in the reference conf)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

SPATE_BIN=${SPATE_BIN:-$root/build/spate}
REF_DIR=${REF_DIR:-$root/../shared/reference}
[ -d "$REF_DIR" ] || REF_DIR=/work/shared/reference
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_CONNS=${BENCH_CONNS:-10 100 400}
BENCH_REPEAT=${BENCH_REPEAT:-1}
BENCH_STAT=${BENCH_STAT:-median}
case $BENCH_STAT in median | best) ;; *) die "BENCH_STAT is median or best, not $BENCH_STAT" ;; esac
SRV_CPU=${BENCH_SERVER_CPU:-1}
CLI_CPU=${BENCH_CLIENT_CPU:-0}
BENCH_TARGETS=${BENCH_TARGETS:-nginx spate-noop spate-root}
NGINX_PORT=${NGINX_PORT:-8080}
LUA=$REF_DIR/conf/wrk_report.lua
NGINX_CONF=$REF_DIR/conf/nginx_static.conf

die() { echo "bench/http.sh: $*" >&2; exit 1; }
[ -x "$SPATE_BIN" ] || die "no spate binary at $SPATE_BIN (make build, or set SPATE_BIN)"
command -v wrk >/dev/null || die "wrk is not installed (scripts/install-deps.sh all)"
command -v nginx >/dev/null || die "nginx is not installed (nginx-light)"
[ -f "$LUA" ] && [ -f "$NGINX_CONF" ] || die "reference files not found in $REF_DIR"

# ---- processes we own ------------------------------------------------------
rundir=$(mktemp -d "${TMPDIR:-/tmp}/spate-bench-http.XXXXXX")
chmod 755 "$rundir" # nginx's worker user must be able to read it
spate_pid=
nginx_pid=

stop_pid() { # pid signal: signal, wait up to 5 s, then SIGKILL
    local pid=$1 sig=$2 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill "-$sig" "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    stop_pid "$spate_pid" TERM
    stop_pid "$nginx_pid" QUIT
    spate_pid= nginx_pid=
    rm -rf "$rundir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_nginx() {
    sed "s/127\.0\.0\.1:8080/127.0.0.1:$NGINX_PORT/" "$NGINX_CONF" >"$rundir/nginx.conf"
    if bench_wait_port "$NGINX_PORT" 1; then
        die "port $NGINX_PORT is busy; set NGINX_PORT"
    fi
    taskset -c "$SRV_CPU" nginx -p "$rundir/" -c "$rundir/nginx.conf" 2>"$rundir/nginx.stderr" &
    nginx_pid=$!
    bench_wait_port "$NGINX_PORT" || die "nginx did not start: $(cat "$rundir/nginx.stderr" "$rundir/error.log" 2>/dev/null)"
}

start_spate() {
    # run from the scratch dir so nothing (data dir) lands in the caller's cwd
    (cd "$rundir" && exec taskset -c "$SRV_CPU" "$SPATE_BIN" serve --host 127.0.0.1 --port 0 \
        --threads 1 --data-dir "$rundir/data" --set http.max_requests_per_connection=1000000 \
        2>"$rundir/spate.stderr") &
    spate_pid=$!
    local i port=
    for i in $(seq 1 100); do
        port=$(grep -o '"port":[0-9]*' "$rundir/spate.stderr" 2>/dev/null | head -1 | cut -d: -f2 || true)
        [ -n "$port" ] && break
        kill -0 "$spate_pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] || die "spate did not start: $(cat "$rundir/spate.stderr")"
    bench_wait_port "$port" || die "spate is not accepting on $port"
    spate_port=$port
}

# pids of a server: the process and its children (nginx's worker).
server_pids() {
    echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"
}

wrk_run() { # seconds conns url
    taskset -c "$CLI_CPU" wrk -t1 -c"$2" -d"$1"s --timeout 5s -s "$LUA" "$3"
}

declare -A R # results: R[cell,field]

# measure_once CELL PID URL CONNS: one warm-up + measured run into R[CELL/CONNS,*]
measure_once() {
    local cell=$1/$4 pid=$2 url=$3 conns=$4 pids t0 t1 c0a c1a c0b c1b out line
    if [ "$BENCH_WARMUP" -gt 0 ]; then
        wrk_run "$BENCH_WARMUP" "$conns" "$url" >/dev/null
    fi
    pids=$(server_pids "$pid")
    # shellcheck disable=SC2086
    t0=$(bench_ticks $pids)
    c0a=$(bench_cpu_sample "$CLI_CPU"); c1a=$(bench_cpu_sample "$SRV_CPU")
    out=$(wrk_run "$BENCH_SECONDS" "$conns" "$url")
    c0b=$(bench_cpu_sample "$CLI_CPU"); c1b=$(bench_cpu_sample "$SRV_CPU")
    # shellcheck disable=SC2086
    t1=$(bench_ticks $pids)
    line=$(grep '^WRKSUM' <<<"$out" || true)
    [ -n "$line" ] || die "no WRKSUM line from wrk for $cell: $out"
    bench_parse_wrksum "$line"
    local errs=$((WRK_err_connect + WRK_err_read + WRK_err_write + WRK_err_status + WRK_err_timeout))
    R[$cell,rps]=$WRK_rps
    R[$cell,p50]=$WRK_p50_us
    R[$cell,p99]=$WRK_p99_us
    R[$cell,max]=$WRK_max_us
    R[$cell,errs]=$errs
    R[$cell,cpu_us]=$(awk -v d=$((t1 - t0)) -v hz="$BENCH_CLK_TCK" -v n="$WRK_requests" \
        'BEGIN { printf "%.2f", (n > 0 ? d / hz * 1e6 / n : 0) }')
    R[$cell,busy_srv]=$(bench_busy_pct "$c1a" "$c1b")
    R[$cell,busy_cli]=$(bench_busy_pct "$c0a" "$c0b")
    printf '  %-11s c=%-4s %10.0f req/s  p50 %6s us  p99 %6s us  max %7s us  cpu %6s us/req  busy srv %3s%% wrk %3s%%  errors %s\n' \
        "${cell%/*}" "$conns" "$WRK_rps" "$WRK_p50_us" "$WRK_p99_us" "$WRK_max_us" "${R[$cell,cpu_us]}" \
        "${R[$cell,busy_srv]}" "${R[$cell,busy_cli]}" "$errs"
}

FIELDS="rps p50 p99 max errs cpu_us busy_srv busy_cli"

# measure CELL PID URL CONNS ROUND: one run, kept as round ROUND.
measure() {
    local k=$1/$4 f
    measure_once "$1" "$2" "$3" "$4"
    for f in $FIELDS; do R[$k,$f,$5]=${R[$k,$f]}; done
}

# summarize CELL/CONNS: R[CELL/CONNS,field] = BENCH_STAT over the rounds.
summarize() {
    local k=$1 f r best=1 vals
    if [ "$BENCH_STAT" = best ]; then
        for r in $(seq 2 "$BENCH_REPEAT"); do
            awk -v a="${R[$k,rps,$r]}" -v b="${R[$k,rps,$best]}" 'BEGIN { exit !(a > b) }' && best=$r
        done
        for f in $FIELDS; do R[$k,$f]=${R[$k,$f,$best]}; done
        return
    fi
    for f in $FIELDS; do
        vals=$(for r in $(seq 1 "$BENCH_REPEAT"); do echo "${R[$k,$f,$r]}"; done | sort -g)
        R[$k,$f]=$(awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
                         else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }' <<<"$vals")
    done
}

want() { [[ " $BENCH_TARGETS " == *" $1 "* ]]; }

# ---- run -------------------------------------------------------------------
echo "== bench/http.sh: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "   kernel $(uname -r); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2); $(nginx -v 2>&1 | cut -d' ' -f3)"
echo "   spate: $SPATE_BIN ($("$SPATE_BIN" --version 2>/dev/null | head -1))"
echo "   servers on CPU $SRV_CPU, wrk -t1 on CPU $CLI_CPU; ${BENCH_SECONDS}s per run after ${BENCH_WARMUP}s warm-up, $BENCH_STAT of $BENCH_REPEAT interleaved rounds; connections: $BENCH_CONNS"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

want nginx && start_nginx
start_spate
for conns in $BENCH_CONNS; do
    echo "-- $conns connections"
    for round in $(seq 1 "$BENCH_REPEAT"); do
        want nginx && measure nginx "$nginx_pid" "http://127.0.0.1:$NGINX_PORT/" "$conns" "$round"
        want spate-noop && measure spate-noop "$spate_pid" "http://127.0.0.1:$spate_port/noop" "$conns" "$round"
        want spate-root && measure spate-root "$spate_pid" "http://127.0.0.1:$spate_port/" "$conns" "$round"
    done
    for cell in nginx spate-noop spate-root; do
        want $cell && summarize "$cell/$conns"
    done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }

echo
echo "| conns | server | req/s | p50 µs | p99 µs | max µs | CPU µs/req | server core busy | wrk core busy | errors |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for conns in $BENCH_CONNS; do
    for cell in nginx spate-noop spate-root; do
        k=$cell/$conns
        [ -n "${R[$k,rps]:-}" ] || continue
        printf '| %s | %s | %.0f | %s | %s | %s | %s | %s%% | %s%% | %s |\n' "$conns" "$cell" "${R[$k,rps]}" \
            "${R[$k,p50]}" "${R[$k,p99]}" "${R[$k,max]}" "${R[$k,cpu_us]}" "${R[$k,busy_srv]}" \
            "${R[$k,busy_cli]}" "${R[$k,errs]}"
    done
done
if want nginx; then
    echo
    echo "spate ÷ nginx (goals: req/s ≥ 1.00, p99 ≤ 1.00, CPU/req ≤ 1.00):"
    echo "| conns | path | req/s ratio | p99 ratio | CPU/req ratio |"
    echo "|---:|---|---:|---:|---:|"
    for conns in $BENCH_CONNS; do
        n=nginx/$conns
        [ -n "${R[$n,rps]:-}" ] || continue
        for cell in spate-noop spate-root; do
            k=$cell/$conns
            [ -n "${R[$k,rps]:-}" ] || continue
            printf '| %s | %s | %s | %s | %s |\n' "$conns" "$([ $cell = spate-noop ] && echo /noop || echo /)" \
                "$(ratio "${R[$k,rps]}" "${R[$n,rps]}")" "$(ratio "${R[$k,p99]}" "${R[$n,p99]}")" \
                "$(ratio "${R[$k,cpu_us]}" "${R[$n,cpu_us]}")"
        done
    done
fi
exit 0
