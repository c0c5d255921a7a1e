#!/bin/sh
# make bench: benchmarks of issue 7 against the physical limits, measured in
# one run. Prints one JSON object per measure and a table, and writes
# tests/bench/results/latest.json. The work is in tests/bench/run.sh (bash).
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
exec bash "$here/tests/bench/run.sh" "$build"
