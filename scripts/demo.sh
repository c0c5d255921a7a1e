#!/bin/sh
# make demo: tikv-sim with a steady workload -> tikv-kafka-cdc -> embedded Kafka.
#
#   sh scripts/demo.sh [BUILD_DIR] [demo options...]
#   make demo DEMO_ARGS="--duration 30 --rate 5000"
#
# Everything happens in `tikv-kafka-cdc demo` (connector/src/cmd_demo.c);
# this script only points it at the build tree's binaries and the source
# tree's config/demo.ini. exec: Ctrl-C and the exit code belong to the demo.
set -eu
build=${1:-build}
[ $# -gt 0 ] && shift
cd "$(dirname "$0")/.."
bin="$build/connector/tikv-kafka-cdc"
sim="$build/tests/sim/tikv-sim"
for f in "$bin" "$sim"; do
    if [ ! -x "$f" ]; then
        echo "demo: $f is missing; run 'make build' first" >&2
        exit 3
    fi
done
exec "$bin" demo --sim "$sim" --config config/demo.ini "$@"
