#!/usr/bin/env bash
# run-fuzzers.sh - replay and then fuzz every libFuzzer target for a bounded time.
#
#   scripts/run-fuzzers.sh BUILD_DIR [SECONDS]      (make fuzz: build-fuzz, $FUZZ_SECONDS)
#
# For each BUILD_DIR/fuzz/fuzz_<name> binary:
#   1. regression: every file in fuzz/corpus/<name>/ (seeds and the
#      regress-* inputs of past crashes) is run once; any failure stops here;
#   2. fuzzing for SECONDS with -max_total_time, seeded from that corpus and
#      fuzz/dict/<name>.dict when present. New inputs and crash artifacts go
#      to a temporary directory, never into the repository.
# Exits non-zero on the first crash, leak, timeout or OOM, printing where the
# input is; to keep a crash as a regression input copy it to
# fuzz/corpus/<name>/regress-<what>. Extra libFuzzer flags: FUZZ_ARGS="...".
# FUZZ_TARGETS="http config" limits the run to those targets. The temporary
# directory is removed on success unless FUZZ_KEEP=1.
set -euo pipefail

usage() { echo "usage: $0 BUILD_DIR [SECONDS]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
build_dir=$1
duration=${2:-60}
case $duration in ''|*[!0-9]*) usage ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)

shopt -s nullglob
bins=()
for b in "$build_dir"/fuzz/fuzz_*; do
    [ -f "$b" ] && [ -x "$b" ] && bins+=("$b")
done
if [ ${#bins[@]} -eq 0 ]; then
    echo "run-fuzzers: no fuzz targets in $build_dir/fuzz (build with the fuzz preset first)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spate-fuzz.XXXXXX")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
read -r -a extra <<<"${FUZZ_ARGS:-}"

fail() { # target, log, message
    echo "run-fuzzers: $1: $3" >&2
    grep -E "ERROR: |SUMMARY: |Test unit written|^(==|    #[0-9])" "$2" | head -40 >&2 || true
    local found=0 a
    for a in "$work/$1"-crash-* "$work/$1"-leak-* "$work/$1"-timeout-* "$work/$1"-oom-* "$work/$1"-slow-unit-*; do
        echo "run-fuzzers: input that fails: $a" >&2
        found=1
    done
    [ $found = 1 ] || true
    echo "run-fuzzers: full log: $2" >&2
    exit 1
}

for bin in "${bins[@]}"; do
    name=${bin##*/fuzz_}
    if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then
        continue
    fi
    corpus=$root/fuzz/corpus/$name
    dict=$root/fuzz/dict/$name.dict
    log=$work/$name.log
    dict_arg=()
    [ -f "$dict" ] && dict_arg=(-dict="$dict")
    seeds=()
    [ -d "$corpus" ] && for f in "$corpus"/*; do [ -f "$f" ] && seeds+=("$f"); done
    if [ ${#seeds[@]} -eq 0 ]; then
        echo "run-fuzzers: $name: warning: no seed corpus in fuzz/corpus/$name/" >&2
    fi

    # 1. Regression replay: each seed once, in the order listed.
    if [ ${#seeds[@]} -gt 0 ]; then
        if ! "$bin" -artifact_prefix="$work/$name-" "${seeds[@]}" >"$log" 2>&1; then
            bad=$(grep -E "^Running: " "$log" | tail -1 | sed 's/^Running: //')
            fail "$name" "$log" "regression input fails: ${bad:-?} (reproduce: $bin $bad)"
        fi
        echo "run-fuzzers: $name: ${#seeds[@]} corpus inputs replayed, all pass"
    fi

    # 2. Fuzzing, new inputs into the temp dir (first corpus dir is written).
    new=$work/$name-new
    mkdir -p "$new"
    corpus_args=("$new")
    [ -d "$corpus" ] && corpus_args+=("$corpus")
    echo "run-fuzzers: $name: fuzzing for ${duration}s"
    if ! "$bin" -max_total_time="$duration" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$name-" "${dict_arg[@]}" "${extra[@]}" "${corpus_args[@]}" >"$log" 2>&1; then
        fail "$name" "$log" "fuzzer found a failure (reproduce: $bin <input>)"
    fi
    done_line=$(grep -E "^#[0-9]+[[:space:]]+DONE" "$log" | tail -1 || true)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(echo "$done_line" | grep -oE "cov: [0-9]+" || true)
    ft=$(echo "$done_line" | grep -oE "ft: [0-9]+" || true)
    corp=$(echo "$done_line" | grep -oE "corp: [0-9]+/[0-9A-Za-z]+" || true)
    echo "run-fuzzers: $name: ok: ${runs:-?} runs, ${eps:-?} exec/s, ${cov:-cov: ?}, ${ft:-ft: ?}, ${corp:-corp: ?}; new inputs: $(ls "$new" | wc -l)"
done

if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    echo "run-fuzzers: kept $work"
else
    rm -rf "$work"
fi
echo "run-fuzzers: all targets passed"
