#!/bin/sh
# make bench: benchmarks print one JSON object per measure and a short table.
set -eu
build=${1:-build}
echo "bench: no benchmarks are built yet (tracked in the proof issue); build in $build is ready."
