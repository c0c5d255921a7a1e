#!/bin/sh
# make demo: tikv-sim with a steady workload -> tikv-kafka-cdc -> embedded Kafka.
set -eu
build=${1:-build}
"$build/connector/tikv-kafka-cdc" version
if ! "$build/connector/tikv-kafka-cdc" demo; then
    echo "demo: the end-to-end demo is not built yet (tracked in the operability issue);"
    echo "demo: the build above succeeded and 'make test' runs what exists today."
fi
