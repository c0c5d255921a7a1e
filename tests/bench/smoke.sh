#!/usr/bin/env bash
# tests/bench/smoke.sh BUILD_DIR: ctest smoke test of the bench programs (no
# timings judged). bench-raw-produce must deliver every message to the test
# broker and report it in valid JSON; it must fail (exit != 0) rather than
# report a rate when the broker is unreachable; run.sh must parse.
set -euo pipefail
build=$1
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
boot=$(tr -d '[:space:]' <"$TKC_KAFKA_BOOTSTRAP_FILE")
topic="bench-smoke-$$-$RANDOM"
out=$("$build/tests/bench/bench-raw-produce" --bootstrap "$boot" --topic "$topic" \
    --count 2000 --key-size 19 --value-size 100)
echo "$out"
[[ $(jq -r .messages <<<"$out") == 2000 ]] || { echo "FAIL: messages != 2000"; exit 1; }
jq -e '.msgs_per_s > 0 and .cpu_s >= 0' <<<"$out" >/dev/null || { echo "FAIL: bad figures"; exit 1; }
# an unreachable broker: no delivery can succeed; it must not print a rate
if out=$(timeout 20 "$build/tests/bench/bench-raw-produce" --bootstrap 127.0.0.1:1 \
        --topic "$topic" --count 10 --key-size 19 --value-size 10 2>/dev/null); then
    echo "FAIL: succeeded against an unreachable broker: $out"; exit 1
fi
bash -n "$src/tests/bench/run.sh"
"$build/tests/bench/bench-wm-watch" --help >/dev/null 2>&1 && { echo "FAIL: --help accepted"; exit 1; }
echo "PASS"
