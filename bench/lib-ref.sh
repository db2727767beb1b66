# bench/lib-ref.sh - helpers for the side-by-side benchmarks against peers
# (bench/vs-reference.sh, bench/produce-vs-redis.sh). Sourced, after
# bench/lib.sh (process CPU ticks, ports, WRKSUM parsing).
#
# Every process a script starts goes through ref_spawn, which remembers its
# pid; ref_cleanup (installed as the EXIT trap by ref_init) stops them in
# reverse start order (SIGTERM, then SIGKILL after REF_STOP_WAIT seconds) and
# removes the scratch directory. Only pids we started are signalled.

REF_PIDS=()
REF_STOP_WAIT=${REF_STOP_WAIT:-8}
ref_rundir=

# ref_paths ROOT: SPATE_BIN, REF_DIR (the reference peers, absolute) and
# REF_PYTHON, each from the environment when set.
ref_paths() {
    SPATE_BIN=${SPATE_BIN:-$1/build/spate}
    REF_DIR=${REF_DIR:-$1/../shared/reference}
    [ -d "$REF_DIR" ] || REF_DIR=/work/shared/reference
    REF_DIR=$(cd "$REF_DIR" && pwd)
    REF_PYTHON=${REF_PYTHON:-/usr/bin/python3}
}

# ref_init NAME: scratch directory in $ref_rundir and the exit trap.
ref_init() {
    ref_rundir=$(mktemp -d "${TMPDIR:-/tmp}/spate-$1.XXXXXX")
    trap ref_cleanup EXIT
    trap 'exit 130' INT TERM
}

ref_die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# ref_stop PID: SIGTERM, wait up to REF_STOP_WAIT s, then SIGKILL.
ref_stop() {
    local pid=$1 i
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((REF_STOP_WAIT * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

ref_cleanup() {
    local i
    for ((i = ${#REF_PIDS[@]} - 1; i >= 0; i--)); do
        ref_stop "${REF_PIDS[$i]}"
    done
    REF_PIDS=()
    [ -n "$ref_rundir" ] && rm -rf "$ref_rundir"
    ref_rundir=
}

# ref_spawn LOGFILE CMD...: runs CMD in the background (stdout+stderr to
# LOGFILE), remembers its pid in REF_PIDS and in $ref_last_pid.
ref_spawn() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    ref_last_pid=$!
    REF_PIDS+=("$ref_last_pid")
}

# ref_start_spate CPU DATADIR [--set k=v ...]: spate serve on 127.0.0.1, any
# free port, one I/O thread, pinned to CPU; sets spate_pid and spate_port.
ref_start_spate() {
    local cpu=$1 data=$2 log i port=
    shift 2
    log="$ref_rundir/spate.$RANDOM.log"
    ref_spawn "$log" taskset -c "$cpu" "$SPATE_BIN" serve --host 127.0.0.1 --port 0 --threads 1 \
        --data-dir "$data" --set http.max_requests_per_connection=1000000 "$@"
    spate_pid=$ref_last_pid
    for i in $(seq 1 100); do
        port=$(grep -o '"port":[0-9]*' "$log" 2>/dev/null | head -1 | cut -d: -f2 || true)
        [ -n "$port" ] && break
        kill -0 "$spate_pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] || ref_die "spate did not start: $(cat "$log")"
    bench_wait_port "$port" || ref_die "spate is not accepting on $port"
    spate_port=$port
    spate_log=$log
}

# ref_ratio A B: A/B with two decimals, "-" when B is 0.
ref_ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
}

# ref_cpu_us TICKS COUNT: CPU microseconds per item from clock ticks.
ref_cpu_us() {
    awk -v d="$1" -v hz="$BENCH_CLK_TCK" -v n="$2" 'BEGIN { printf "%.1f", (n > 0 ? d / hz * 1e6 / n : 0) }'
}

# ref_ceiling SECONDS CONNS CPU: the most requests/s this machine serves with
# one server core and this load generator at all: nginx with the reference's
# nginx_static.conf (1 worker, `return 200` of a 16-byte body, no access log)
# pinned to CPU, `wrk -t1` on CLI_CPU as in every other cell, after a 1 s
# warm-up. A ×N goal above ceiling ÷ reference cannot be shown here by any
# server. Sets ref_ceiling_rps (0 when nginx is missing or did not answer)
# and prints one line.
ref_ceiling() {
    local secs=$1 conns=$2 cpu=$3 dir=$ref_rundir/ceiling port pid out line
    ref_ceiling_rps=0
    command -v nginx >/dev/null || { echo "  ceiling: skipped, nginx is not installed"; return 0; }
    port=$(bench_free_port) || { echo "  ceiling: skipped, no free port"; return 0; }
    mkdir -p "$dir"
    chmod 755 "$ref_rundir" "$dir" # nginx's worker user reads under -p
    sed "s/127\.0\.0\.1:8080/127.0.0.1:$port/" "$REF_DIR/conf/nginx_static.conf" >"$dir/nginx.conf"
    ref_spawn "$dir/stderr.log" taskset -c "$cpu" nginx -p "$dir/" -c "$dir/nginx.conf"
    pid=$ref_last_pid
    if ! bench_wait_port "$port"; then
        echo "  ceiling: skipped, nginx did not start: $(cat "$dir/stderr.log" "$dir/error.log" 2>/dev/null | tail -2)"
        ref_stop "$pid"
        return 0
    fi
    WRK_BODY= taskset -c "$CLI_CPU" wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    out=$(WRK_BODY= taskset -c "$CLI_CPU" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s "$LUA" "http://127.0.0.1:$port/" 2>&1 || true)
    ref_stop "$pid"
    line=$(grep '^WRKSUM' <<<"$out" || true)
    [ -n "$line" ] || { echo "  ceiling: no WRKSUM line from wrk: $out"; return 0; }
    bench_parse_wrksum "$line"
    ref_ceiling_rps=$WRK_rps
    printf '  ceiling: nginx return 200, c=%s  %9.0f req/s  p99 %7s us\n' "$conns" "$WRK_rps" "$WRK_p99_us"
}

# ref_goal_reach NAME GOAL_X REF_RPS: one line saying whether GOAL_X × REF_RPS
# is within the measured ceiling (ref_ceiling_rps).
ref_goal_reach() {
    local name=$1 goal=$2 ref=$3
    [ "${ref_ceiling_rps:-0}" != 0 ] || return 0
    awk -v n="$name" -v g="$goal" -v r="$ref" -v c="$ref_ceiling_rps" 'BEGIN {
        need = g * r
        printf "  %s: ×%s needs %.0f req/s; the ceiling is %.0f req/s = ×%.1f the reference: %s\n", n, g, need, c,
            (r > 0 ? c / r : 0), (need <= c ? "reachable" : "NOT reachable on this machine by any server")
    }'
}

# ref_machine: one line about the machine and its current load.
ref_machine() {
    echo "$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
