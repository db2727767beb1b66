# bench/lib.sh - shell helpers shared by the bench/*.sh scripts (sourced).
#
# Process CPU time from /proc/PID/stat, per-core busy time from /proc/stat,
# waiting for a TCP port, and wrk's WRKSUM line (see
# ../shared/reference/conf/wrk_report.lua) turned into shell variables.

BENCH_CLK_TCK=$(getconf CLK_TCK)

# bench_ticks PID...: utime+stime (clock ticks) summed over the processes,
# every thread included. A process that is gone counts 0.
bench_ticks() {
    local total=0 pid line rest
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${line##*) }            # fields from 3 on; comm may hold spaces
        # shellcheck disable=SC2086
        set -- $rest
        total=$((total + ${12} + ${13}))   # fields 14 and 15 of the full line
    done
    echo "$total"
}

# bench_cpu_sample CPU: "busy total" jiffies of one core from /proc/stat.
bench_cpu_sample() {
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i;
                               print t - $5 - $6, t; exit }' /proc/stat
}

# bench_busy_pct "BEFORE" "AFTER": percentage of the interval the core was busy.
bench_busy_pct() {
    # shellcheck disable=SC2086
    set -- $1 $2
    awk -v b0="$1" -v t0="$2" -v b1="$3" -v t1="$4" \
        'BEGIN { d = t1 - t0; printf "%.0f", (d > 0 ? 100 * (b1 - b0) / d : 0) }'
}

# bench_wait_port PORT [TRIES]: waits until 127.0.0.1:PORT accepts.
bench_wait_port() {
    local port=$1 tries=${2:-100}
    while [ "$tries" -gt 0 ]; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}

# bench_free_port: a TCP port on 127.0.0.1 nothing listens on right now.
bench_free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# bench_parse_wrksum LINE: sets WRK_requests, WRK_rps, WRK_p50_us, WRK_p99_us,
# WRK_max_us, WRK_err_* from a "WRKSUM k=v ..." line.
bench_parse_wrksum() {
    local kv
    for kv in ${1#WRKSUM }; do
        case ${kv%%=*} in
            *[!a-z0-9_]*) continue ;;
        esac
        printf -v "WRK_${kv%%=*}" '%s' "${kv#*=}"
    done
}
