#!/bin/sh
# tests/fuzz/run.sh: builds the libFuzzer targets with clang in build-fuzz/
# (a configuration of its own: TKC_FUZZ=ON, CC=clang) and fuzzes each for
# FUZZ_SECONDS (default 30) seconds, starting from tests/fuzz/corpus/<t>.
#
#   sh tests/fuzz/run.sh [seconds] [target ...]      (make fuzz FUZZ_SECONDS=N)
#
# FUZZ_SEED=N fixes libFuzzer's seed: with an empty work dir the inputs tried
# are then the same on every machine (a slower one tries a prefix of them),
# so a CI gate is reproducible; without it every run explores anew.
#
# New interesting inputs go to build-fuzz/fuzz-work/<t>/ (not the source
# tree); a crash leaves build-fuzz/fuzz-<t>-crash-* and fails the script.
# To keep a crash as a regression test, copy it to
# tests/fuzz/regressions/<t>/<name>: every ctest run replays it.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
SECONDS_PER=${1:-${FUZZ_SECONDS:-30}}
[ $# -gt 0 ] && shift
TARGETS=${*:-changedata pd_response config avro}
JOBS=${JOBS:-2}
SEED_ARG=
[ -n "${FUZZ_SEED:-}" ] && SEED_ARG="-seed=$FUZZ_SEED"

command -v clang >/dev/null 2>&1 || {
    echo "run.sh: clang is needed (Debian: apt-get install clang)" >&2
    exit 1
}

CC=clang cmake -S "$ROOT" -B "$BUILD" -DTKC_FUZZ=ON -DTKC_SANITIZE=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
exes=""
for t in $TARGETS; do exes="$exes fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$JOBS" --target $exes

status=0
for t in $TARGETS; do
    work="$BUILD/fuzz-work/$t"
    mkdir -p "$work"
    log="$BUILD/fuzz-$t.log"
    echo "== fuzz_$t for ${SECONDS_PER}s (log: $log)"
    if ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
        "$BUILD/tests/fuzz/fuzz_$t" $SEED_ARG -max_total_time="$SECONDS_PER" -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-$t-" \
        "$work" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1; then
        # the last status line: execs, coverage (cov = edges, ft = features)
        grep -E '^#[0-9]+' "$log" | tail -1
        grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$log" || true
    else
        echo "fuzz_$t FAILED; see $log and $BUILD/fuzz-$t-*" >&2
        grep -E 'ERROR|invariant|SUMMARY' "$log" | head -5 >&2
        status=1
    fi
done
exit $status
