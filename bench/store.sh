#!/bin/sh
# bench/store.sh - embedded log throughput next to the disk's own limits.
#
#   bench/store.sh [BUILD_DIR] [DATA_PARENT] [SECONDS]
#
# BUILD_DIR must hold bench/store_bench (add `add_subdirectory(bench)` to the
# top-level CMakeLists.txt, build with -DCMAKE_BUILD_TYPE=RelWithDebInfo).
# DATA_PARENT is a directory on the disk to measure (default /tmp).
# Prints: the disk's 4 KiB write+fdatasync rate (reference fsync_bench) and
# sequential write bandwidth (dd), then one line per store run.
set -eu
BUILD=${1:-build}
PARENT=${2:-/tmp}
SECS=${3:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=$BUILD/bench/store_bench
[ -x "$BENCH" ] || { echo "store.sh: $BENCH not built" >&2; exit 2; }
WORK=$(mktemp -d "$PARENT/spate-bench-XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "# machine: $(nproc) cores, $(uname -r), data on $(df -h "$PARENT" | awk 'NR==2{print $1" ("$2")"}')"
echo "# ---- disk limits ----"
REF=/work/shared/reference/fsync_bench.c
[ -f "$REF" ] || REF=$HERE/../../shared/reference/fsync_bench.c
if [ -f "$REF" ]; then
    cc -O2 -o "$WORK/fsync_bench" "$REF"
    "$WORK/fsync_bench" "$WORK/fsync.dat" 3 64 | sed 's/^/# /'
    rm -f "$WORK/fsync.dat"
else
    echo "# fsync_bench.c not found; skipped"
fi
DD=$(dd if=/dev/zero of="$WORK/dd.dat" bs=1M count=1024 conv=fdatasync 2>&1 | tail -1)
echo "# dd 1 GiB, bs=1M, conv=fdatasync: $DD"
rm -f "$WORK/dd.dat"

echo "# ---- store (one partition; appender = one append of BATCH records in flight) ----"
printf '%-8s %6s %5s %5s %12s %9s %9s %10s %12s %9s\n' mode bytes apps batch records/s MB/s fsyncs/s rec/fsync read_rec/s read_MB/s
for mode in always interval never; do
  for size in 100 1024; do
    for apps in 1 16 256; do
      for batch in 1 64; do
        rm -rf "$WORK/data"
        "$BENCH" "$WORK/data" "$mode" "$size" "$apps" "$batch" "$SECS"
      done
    done
  done
done
