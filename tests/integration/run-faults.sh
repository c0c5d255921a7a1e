#!/bin/sh
# run-faults.sh BUILD_DIR: the fault suite (e2e.faults) on its own, with its
# output shown as it runs (`make test-faults`).
#
#   FAULTS_LONG=1   the long schedule (5 minutes of faults) instead of the
#                   short one CI runs through ctest, then the pipeline's
#                   broker outage under load for 60 s (CI: 10 s)
#   E2E_SEED=N      replay the schedule of seed N (the test prints its seed)
#
# It starts its own Kafka broker (kafka-broker.sh, state in
# BUILD_DIR/kafka-broker-faults) so it needs no ctest fixture, runs the test
# executable with the fixture's environment and stops the broker again.
set -eu
BUILD=${1:?usage: run-faults.sh BUILD_DIR}
BUILD=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT="$HERE/../kafka/kafka-broker.sh"
DIR="$BUILD/kafka-broker-faults"
EXE="$BUILD/tests/integration/e2e_faults"
[ -x "$EXE" ] || { echo "run-faults: $EXE not built" >&2; exit 1; }

"$SCRIPT" start "$DIR" >/dev/null
trap '"$SCRIPT" stop "$DIR" >/dev/null 2>&1 || true' EXIT INT TERM

export TKC_KAFKA_BOOTSTRAP_FILE="$DIR/bootstrap"
export TKC_KAFKA_BROKER_DIR="$DIR"
export TKC_KAFKA_BROKER_SCRIPT="$SCRIPT"
export FAULTS_LONG="${FAULTS_LONG:-}"
export E2E_SEED="${E2E_SEED:-}"
export CK_DEFAULT_TIMEOUT=30
"$EXE"
if [ -n "$FAULTS_LONG" ]; then
    OUTAGE="$BUILD/tests/pipeline/pipeline_outage"
    [ -x "$OUTAGE" ] || { echo "run-faults: $OUTAGE not built" >&2; exit 1; }
    PIPELINE_OUTAGE_S="${PIPELINE_OUTAGE_S:-60}" "$OUTAGE"
fi
