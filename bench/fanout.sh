#!/usr/bin/env bash
# bench/fanout.sh - live fan-out: spate's SSE (and WebSocket, when it exists)
# against nginx+nchan, side by side, same machine, same run.
#
# Load: ../shared/reference/fanout_client.c, compiled into the scratch dir:
#   N subscribers (SSE: GET with Accept: text/event-stream; WebSocket: ws://)
#   and a publisher POSTing {"ts":<µs>,"seq":<n>,"pad":"x…"} (100 bytes,
#   Content-Type: application/json) at a fixed rate over BENCH_PUB_CONNS
#   keep-alive connections (one request in flight each). Every "ts" seen in a
#   stream is one delivery; latency = receive time - ts; a jump in "seq" is a
#   gap, a step back a reorder.
# spate: `spate serve --threads BENCH_THREADS --set store.fsync=interval`, a
#   scratch data dir, a 1-partition topic `bench`; subscribers on
#   GET /v1/topics/bench/stream (or /ws), publisher on
#   POST /v1/topics/bench/records?ack=BENCH_ACK (none: 202 at once).
# nchan: nginx -p RUNDIR/ -c ../shared/reference/conf/nginx_nchan.conf
#   (1 worker, 127.0.0.1:8090, POST /pub, GET /sub).
# Both servers pinned to BENCH_SERVER_CPU (1), the client to BENCH_CLIENT_CPU (0).
#
# Cells: SUBS x RATE (default 100 1000 x 100 1000), spate then nchan in each,
# BENCH_SECONDS measured after BENCH_WARMUP. Per run: deliveries expected
# (published in the window x subscribers held) and received, gaps/reorders,
# p50/p99/max end-to-end latency, the server's CPU time per delivery
# (utime+stime of every server process - nchan: master+worker - sampled from
# /proc/PID/stat over the client's measured window, divided by the window's
# deliveries) and the load average. For spate also the server's own count
# (/metrics spate_subscriber_records_sent_total over the run, against records
# appended x subscribers; slow-consumer disconnects, skips, gaps).
# Idle memory: 10,000 (BENCH_IDLE) subscribers that receive nothing, RSS of
# the server before and while they are held, per connection (spate: fresh
# process; nchan: a copy of the config with worker_connections raised, worker
# RSS). Kernel socket memory is not in RSS.
#
# Environment:
#   SPATE_BIN        spate binary (default: build/spate)
#   REF_DIR          reference peers (default: ../shared/reference next to the repo)
#   BENCH_SECONDS    measured seconds per run (default 10)
#   BENCH_WARMUP     warm-up seconds per run (default 2)
#   BENCH_SUBS       subscriber counts (default "100 1000")
#   BENCH_RATES      messages/s (default "100 1000")
#   BENCH_TRANSPORTS sse and/or ws (default: sse, plus ws when spate answers
#                    GET /v1/topics/{t}/ws with 101)
#   BENCH_SERVERS    spate and/or nchan (default both)
#   BENCH_THREADS    spate I/O threads (default 1)
#   BENCH_ACK        none|durable for spate's produce (default none)
#   BENCH_PUB_CONNS  publisher connections (default 8, the client's default)
#   BENCH_ORDERED    1 (default): each cell also runs spate with ONE publisher
#                    connection ("spate, 1 pub conn"), so "seq" is a strict
#                    total order and any gap is a lost message (with 8
#                    connections spate may append concurrent POSTs out of
#                    send order, which the client counts as gaps+reorders;
#                    the log_order check below accounts for that)
#   BENCH_REPEAT     runs per cell and server (default 1; all are printed)
#   BENCH_IDLE       idle subscribers for the memory test (default 10000, 0 = skip)
#   BENCH_CELLS      0: skip the load cells (only the idle-memory step); default 1
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU   cores (default 1 / 0)
# Only 127.0.0.1 is used; everything started here is stopped on exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
# shellcheck source=bench/lib-ref.sh
. "$root/bench/lib-ref.sh"

SPATE_BIN=${SPATE_BIN:-$root/build/spate}
REF_DIR=${REF_DIR:-$(cd "$root/.." && pwd)/shared/reference}
SECS=${BENCH_SECONDS:-10}
WARM=${BENCH_WARMUP:-2}
SUBS_LIST=${BENCH_SUBS:-"100 1000"}
RATES=${BENCH_RATES:-"100 1000"}
SERVERS=${BENCH_SERVERS:-"spate nchan"}
THREADS=${BENCH_THREADS:-1}
ACK=${BENCH_ACK:-none}
PUBC=${BENCH_PUB_CONNS:-8}
REPEAT=${BENCH_REPEAT:-1}
IDLE=${BENCH_IDLE:-10000}
ORDERED=${BENCH_ORDERED:-1}
SRV_CPU=${BENCH_SERVER_CPU:-1}
CLI_CPU=${BENCH_CLIENT_CPU:-0}
NCHAN_PORT=8090
TOPIC=bench

[ -x "$SPATE_BIN" ] || ref_die "no spate binary at $SPATE_BIN (make build, or set SPATE_BIN)"
[ -f "$REF_DIR/fanout_client.c" ] || ref_die "no fanout_client.c in $REF_DIR (set REF_DIR)"
case " $SERVERS " in *" nchan "*)
    command -v nginx >/dev/null && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] ||
        ref_die "nginx + nchan are not installed (nginx-light libnginx-mod-nchan)" ;;
esac

# 10,000 subscribers need 10,000 descriptors on each side (servers and client
# inherit this limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE + 200)) ] ||
    ref_die "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); need $((IDLE + 200)) for BENCH_IDLE=$IDLE"

ref_init fanout
chmod 755 "$ref_rundir" # nginx's worker (nobody) works under it
client=$ref_rundir/fanout_client
cc -O2 -Wall -o "$client" "$REF_DIR/fanout_client.c" || ref_die "cannot compile fanout_client.c"

# ---- servers ------------------------------------------------------------------

start_spate() { # sets spate_pid, spate_port, spate_log
    local data=$ref_rundir/spate-data.$RANDOM port="" i
    spate_log=$ref_rundir/spate.$RANDOM.log
    ref_spawn "$spate_log" taskset -c "$SRV_CPU" "$SPATE_BIN" serve --host 127.0.0.1 --port 0 \
        --threads "$THREADS" --data-dir "$data" --set store.fsync=interval \
        --set http.max_requests_per_connection=1000000
    spate_pid=$ref_last_pid
    for i in $(seq 1 100); do
        port=$(grep -o '"port":[0-9]*' "$spate_log" 2>/dev/null | head -1 | cut -d: -f2 || true)
        [ -n "$port" ] && break
        kill -0 "$spate_pid" 2>/dev/null || break
        sleep 0.05
    done
    [ -n "$port" ] || ref_die "spate did not start: $(cat "$spate_log")"
    bench_wait_port "$port" || ref_die "spate is not accepting on $port"
    spate_port=$port
    curl -s -f -o /dev/null -H 'Content-Type: application/json' \
        -d "{\"name\":\"$TOPIC\",\"partitions\":1}" "http://127.0.0.1:$spate_port/v1/topics" ||
        ref_die "cannot create topic $TOPIC in spate"
}

stop_spate() {
    ref_stop "$spate_pid"
    spate_pid=
}

# start_nchan [CONF]: sets nchan_pids (master and workers), nchan_worker.
start_nchan() {
    local conf=${1:-$REF_DIR/conf/nginx_nchan.conf} dir i
    if (exec 3<>"/dev/tcp/127.0.0.1/$NCHAN_PORT") 2>/dev/null; then
        ref_die "port $NCHAN_PORT is taken (nchan's config listens there)"
    fi
    dir=$ref_rundir/nginx.$RANDOM
    mkdir -p "$dir"
    chmod 755 "$dir"
    ref_spawn "$dir/stdout.log" taskset -c "$SRV_CPU" nginx -p "$dir/" -c "$conf"
    nchan_master=$ref_last_pid
    bench_wait_port "$NCHAN_PORT" || ref_die "nginx did not start: $(cat "$dir/stdout.log" "$dir/error.log" 2>/dev/null)"
    nchan_worker=
    for i in $(seq 1 50); do
        nchan_worker=$(pgrep -P "$nchan_master" | head -1 || true)
        [ -n "$nchan_worker" ] && break
        sleep 0.05
    done
    [ -n "$nchan_worker" ] || ref_die "no nginx worker"
    nchan_pids=("$nchan_master" "$nchan_worker")
}

stop_nchan() {
    ref_stop "$nchan_master"
    nchan_master=
    while (exec 3<>"/dev/tcp/127.0.0.1/$NCHAN_PORT") 2>/dev/null; do sleep 0.1; done
}

# spate's WebSocket endpoint, if it exists: 101 to a valid handshake.
spate_ws_status() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
        -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
        "http://127.0.0.1:$spate_port/v1/topics/$TOPIC/ws" || true
}

metric() { # metric NAME: spate's /metrics value (0 when absent)
    curl -s "http://127.0.0.1:$spate_port/metrics" |
        awk -v m="$1" '$1 == m { v = $2 } END { printf "%.0f", v + 0 }'
}
# log_order: the publisher's seq numbers in the order spate's log holds them,
# scored like fanout_client scores a stream: "GAPS REORDERS" for one reader of
# the whole log. Concurrent POSTs on different connections may be appended in
# another order than they were sent; a subscriber that got every record in
# log order counts exactly these (a prefix of them if it stopped earlier).
log_order() {
    local from=0 end=1 page
    while [ "$from" -lt "$end" ]; do
        page=$(curl -s "http://127.0.0.1:$spate_port/v1/topics/$TOPIC/records?from=$from&limit=1000")
        grep -o '"seq":[0-9]*' <<<"$page" | cut -d: -f2
        from=$(grep -o '"next":[0-9]*' <<<"$page" | cut -d: -f2)
        end=$(grep -o '"end_offset":[0-9]*' <<<"$page" | cut -d: -f2)
        [ -n "$from" ] && [ -n "$end" ] || break
    done | awk 'NR > 1 { if ($1 > last + 1) g += $1 - last - 1; else if ($1 <= last) r++ }
                { last = $1 } END { printf "%d %d", g, r }'
}

topic_records() {
    curl -s "http://127.0.0.1:$spate_port/v1/topics/$TOPIC" | grep -o '"records":[0-9]*' | head -1 | cut -d: -f2
}

# ---- one run --------------------------------------------------------------------

# parse_kv FILE: R_<key>=<value> for every key=value token of the summary.
parse_kv() {
    local kv
    for kv in $(cat "$1"); do
        case $kv in *=*) ;; *) continue ;; esac
        case ${kv%%=*} in *[!a-z0-9_]*) continue ;; esac
        printf -v "R_${kv%%=*}" '%s' "${kv#*=}"
    done
}

# run_client SUB_URL PUB_URL N RATE PIDS...: one client run; the servers' CPU
# ticks are sampled at the start and end of the client's measured window.
# Sets R_* (client summary), run_ticks, run_load.
run_client() {
    local sub=$1 pub=$2 n=$3 rate=$4 out err i t0 t1 c0 c1 cpid
    shift 4
    out=$ref_rundir/client.out err=$ref_rundir/client.err
    local args=(-q -s "$sub" -n "$n" -w "$WARM" -d "$SECS" -t 30 -c "${PUBC_RUN:-$PUBC}")
    [ -n "$pub" ] && args+=(-p "$pub" -r "$rate")
    taskset -c "$CLI_CPU" "$client" "${args[@]}" >"$out" 2>"$err" &
    cpid=$!
    for i in $(seq 1 4000); do # the "ready:" line: publishing starts
        grep -q '^ready:' "$err" 2>/dev/null && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.01
    done
    sleep "$WARM"
    t0=$(bench_ticks "$@") c0=$(bench_cpu_sample "$SRV_CPU")
    sleep "$SECS"
    t1=$(bench_ticks "$@") c1=$(bench_cpu_sample "$SRV_CPU")
    wait "$cpid" || ref_die "fanout_client failed: $(cat "$err" "$out")"
    run_ticks=$((t1 - t0))
    # how busy the server core was, and how much of that was the server
    run_core="cpu$SRV_CPU busy $(bench_busy_pct "$c0" "$c1")%, server $(awk -v d="$run_ticks" -v hz="$BENCH_CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.0f", 100 * d / hz / s }')%"
    run_load=$(cut -d' ' -f1 /proc/loadavg)
    unset "${!R_@}"
    parse_kv "$out"
}

# ---- cells ----------------------------------------------------------------------

declare -A RES # RES[transport,server,subs,rate,field]

cell() { # cell TRANSPORT SERVER SUBS RATE REP
    local tr=$1 srv=$2 n=$3 rate=$4 rep=$5 sub pub pids=() sent0=0 sent1 recs0=0 recs1 slow0=0 slow1
    PUBC_RUN=$PUBC
    [ "$srv" = spate1 ] && PUBC_RUN=1
    if [ "$srv" != nchan ]; then
        if [ "$tr" = ws ]; then sub=ws://127.0.0.1:$spate_port/v1/topics/$TOPIC/ws
        else sub=http://127.0.0.1:$spate_port/v1/topics/$TOPIC/stream; fi
        pub="http://127.0.0.1:$spate_port/v1/topics/$TOPIC/records?ack=$ACK"
        pids=("$spate_pid")
        sent0=$(metric spate_subscriber_records_sent_total)
        slow0=$(($(metric spate_subscriber_slow_disconnects_total) + $(metric spate_subscriber_skips_total) + $(metric spate_subscriber_gaps_total)))
        recs0=$(topic_records)
    else
        if [ "$tr" = ws ]; then sub=ws://127.0.0.1:$NCHAN_PORT/sub; else sub=http://127.0.0.1:$NCHAN_PORT/sub; fi
        pub=http://127.0.0.1:$NCHAN_PORT/pub
        pids=("${nchan_pids[@]}")
    fi
    run_client "$sub" "$pub" "$n" "$rate" "${pids[@]}"
    local held=${R_subs_held_end:-0} win=${R_window_s:-0} exp recv cpu srvchk=""
    exp=$(awk -v e="${R_expected_per_s:-0}" -v w="$win" 'BEGIN { printf "%.0f", e * w }')
    recv=${R_delivered:-0}
    cpu=$(ref_cpu_us "$run_ticks" "$recv")
    if [ "$srv" != nchan ]; then
        sleep 0.5 # the last deliveries of the run
        sent1=$(metric spate_subscriber_records_sent_total)
        slow1=$(($(metric spate_subscriber_slow_disconnects_total) + $(metric spate_subscriber_skips_total) + $(metric spate_subscriber_gaps_total)))
        recs1=$(topic_records)
        local lo
        read -r -a lo <<<"$(log_order)"
        srvchk="log order: ${lo[0]} gaps ${lo[1]} reorders per reader -> lossless in log order means gaps <= $((lo[0] * n)), reorders <= $((lo[1] * n)); $( [ "${R_gaps:-0}" -le $((lo[0] * n)) ] && [ "${R_reorders:-0}" -le $((lo[1] * n)) ] && echo consistent || echo INCONSISTENT)"
        srvchk="$srvchk; server queued->sent $((sent1 - sent0)) of $(((recs1 - recs0) * n)) (appended $((recs1 - recs0)) x $n; the tail is cut by the client's exit), slow/skip/gap events $((slow1 - slow0))"
    fi
    printf '  %-4s %-5s %5d subs x %4d/s: recv %9s / exp %9s  gaps %s reord %s  held %s/%s  p50 %6s p99 %7s max %7s us  cpu %5s us/deliv  pub %s/s late_max %s err %s  client %s%%  load %s\n' \
        "$tr" "$srv" "$n" "$rate" "$recv" "$exp" "${R_gaps:-?}" "${R_reorders:-?}" "$held" "$n" \
        "${R_lat_p50_us:-?}" "${R_lat_p99_us:-?}" "${R_lat_max_us:-?}" "$cpu" "${R_pub_rate:-?}" \
        "${R_pub_late_max:-?}" "${R_pub_err:-?}" "${R_client_cpu_pct:-?}" "$run_load ($run_core)"
    [ -n "$srvchk" ] && echo "        $srvchk"
    local k="$tr,$srv,$n,$rate" logo="- -"
    [ "$srv" != nchan ] && logo="$((lo[0] * n)) $((lo[1] * n))"
    # keep the run with the median p99 (REPEAT runs): store all, pick later
    RES[$k,runs]="${RES[$k,runs]:-} $rep"
    RES[$k,$rep]="$recv $exp ${R_gaps:-0} ${R_reorders:-0} $held ${R_lat_p50_us:-0} ${R_lat_p99_us:-0} ${R_lat_max_us:-0} $cpu $run_load ${R_pub_rate:-0} $logo"
}

# pick K: the values of the run with the median p99 of cell K.
pick() {
    local k=$1 r
    for r in ${RES[$k,runs]}; do echo "${RES[$k,$r]}"; done | sort -n -k7 |
        awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'
}

echo "== bench/fanout.sh: $(ref_machine)"
echo "   $(nginx -v 2>&1 | head -1), nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo '?'); spate: $SPATE_BIN ($("$SPATE_BIN" --version 2>/dev/null | head -1))"
echo "   servers on CPU $SRV_CPU, client on CPU $CLI_CPU; spate --threads $THREADS, store.fsync=interval, produce ack=$ACK;" \
    "publisher: $PUBC connections, 100-byte bodies; ${WARM}s warm-up + ${SECS}s measured per run; ulimit -n $(ulimit -n)"

TRANSPORTS=${BENCH_TRANSPORTS:-}
if [ -z "$TRANSPORTS" ]; then
    start_spate
    ws=$(spate_ws_status)
    stop_spate
    if [ "$ws" = 101 ]; then TRANSPORTS="sse ws"; else
        TRANSPORTS=sse
        echo "   spate's GET /v1/topics/{t}/ws answered $ws to a WebSocket handshake: WebSocket cells not measured"
    fi
fi

[ "${BENCH_CELLS:-1}" = 0 ] && SUBS_LIST=""
for tr in $TRANSPORTS; do
    for n in $SUBS_LIST; do
        for rate in $RATES; do
            for rep in $(seq 1 "$REPEAT"); do
                for srv in $SERVERS $( [ "$ORDERED" = 1 ] && case " $SERVERS " in *" spate "*) echo spate1 ;; esac); do
                    # a fresh server per run: no subscribers or state left from the last one
                    if [ "$srv" = nchan ]; then start_nchan; else start_spate; fi
                    cell "$tr" "$srv" "$n" "$rate" "$rep"
                    if [ "$srv" = nchan ]; then stop_nchan; else stop_spate; fi
                done
            done
        done
    done
done

# ---- idle memory ------------------------------------------------------------------

rss_kb() { # rss_kb PID...: VmRSS summed, KiB
    local t=0 p v
    for p in "$@"; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# idle_mem SUB_URL PIDS...: RSS before / while IDLE subscribers are held.
idle_mem() {
    local sub=$1 out=$ref_rundir/idle.out err=$ref_rundir/idle.err cpid i r0 r1 held
    shift
    r0=$(rss_kb "$@")
    taskset -c "$CLI_CPU" "$client" -q -s "$sub" -n "$IDLE" -w 0 -d 4 -t 60 -R 200 >"$out" 2>"$err" &
    cpid=$!
    for i in $(seq 1 6500); do
        grep -q '^ready:' "$err" 2>/dev/null && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.01
    done
    sleep 2
    r1=$(rss_kb "$@")
    wait "$cpid" || true
    unset "${!R_@}"
    parse_kv "$out"
    held=${R_subs_held_end:-0}
    idle_line=$(printf '%s idle subscribers held %s/%s: RSS %d KiB -> %d KiB, %s KiB (%s bytes) per connection (load %s)' \
        "$1" "$held" "$IDLE" "$r0" "$r1" \
        "$(awk -v a="$r0" -v b="$r1" -v n="$held" 'BEGIN { printf "%.2f", n ? (b - a) / n : 0 }')" \
        "$(awk -v a="$r0" -v b="$r1" -v n="$held" 'BEGIN { printf "%.0f", n ? (b - a) * 1024 / n : 0 }')" \
        "$(cut -d' ' -f1 /proc/loadavg)")
}

declare -a IDLE_LINES=()
if [ "$IDLE" -gt 0 ]; then
    echo
    echo "Idle subscribers ($IDLE, nothing published; RSS from /proc/PID/status; kernel socket buffers not included):"
    for tr in $TRANSPORTS; do
        start_spate
        if [ "$tr" = ws ]; then u=ws://127.0.0.1:$spate_port/v1/topics/$TOPIC/ws
        else u=http://127.0.0.1:$spate_port/v1/topics/$TOPIC/stream; fi
        idle_mem "$u" "$spate_pid"
        IDLE_LINES+=("spate $tr: ${idle_line#* }")
        echo "  spate $tr: ${idle_line#* }"
        stop_spate
        case " $SERVERS " in *" nchan "*)
            # the reference config allows 8192 connections per worker
            conf=$ref_rundir/nginx_nchan_idle.conf
            sed -e "s/worker_connections [0-9]*;/worker_connections $((IDLE + 1000));/" \
                -e "s/^worker_processes 1;/worker_processes 1;\nworker_rlimit_nofile $((IDLE + 2000));/" \
                "$REF_DIR/conf/nginx_nchan.conf" >"$conf"
            start_nchan "$conf"
            if [ "$tr" = ws ]; then u=ws://127.0.0.1:$NCHAN_PORT/sub; else u=http://127.0.0.1:$NCHAN_PORT/sub; fi
            idle_mem "$u" "$nchan_worker"
            IDLE_LINES+=("nchan $tr (worker): ${idle_line#* }")
            echo "  nchan $tr (worker): ${idle_line#* }"
            stop_nchan
            ;;
        esac
    done
fi

# ---- summary ------------------------------------------------------------------------

echo
echo "| transport | subs | msg/s | server | received / expected | gaps / reorders | lossless in log order: gaps / reorders ≤ | p50 ms | p99 ms | max ms | CPU µs/delivery | p99 ÷ nchan | CPU ÷ nchan | load |"
echo "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for tr in $TRANSPORTS; do
    for n in $SUBS_LIST; do
        for rate in $RATES; do
            nk="$tr,nchan,$n,$rate"
            nv=""
            [ -n "${RES[$nk,runs]:-}" ] && nv=$(pick "$nk")
            for srv in $SERVERS spate1; do
                k="$tr,$srv,$n,$rate"
                [ -n "${RES[$k,runs]:-}" ] || continue
                # shellcheck disable=SC2046
                set -- $(pick "$k")
                p99r=- cpur=-
                if [ -n "$nv" ] && [ "$srv" = spate ]; then
                    # shellcheck disable=SC2086
                    set -- "$@" $nv
                    p99r=$(ref_ratio "$7" "${20}") cpur=$(ref_ratio "$9" "${22}")
                fi
                printf '| %s | %d | %d | %s | %s / %s | %s / %s | %s / %s | %.2f | %.2f | %.2f | %s | %s | %s | %s |\n' \
                    "$tr" "$n" "$rate" "$( [ "$srv" = spate1 ] && echo 'spate, 1 pub conn' || echo "$srv")" "$1" "$2" "$3" "$4" "${12}" "${13}" \
                    "$(awk -v v="$6" 'BEGIN { print v / 1000 }')" "$(awk -v v="$7" 'BEGIN { print v / 1000 }')" \
                    "$(awk -v v="$8" 'BEGIN { print v / 1000 }')" "$9" "$p99r" "$cpur" "${10}"
            done
        done
    done
done
if [ ${#IDLE_LINES[@]} -gt 0 ]; then
    echo
    for l in "${IDLE_LINES[@]}"; do echo "- $l"; done
fi
exit 0
