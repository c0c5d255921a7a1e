# Thin wrapper over CMake. Every user-facing target installs missing Debian
# packages first (scripts/deps.sh), so each works on a fresh machine.
#
#   make demo   build, then run the connector against tikv-sim + embedded Kafka
#   make test   sanitizer build, then every test (unit + integration, real Kafka)
#   make bench  optimised build, then the benchmarks
#   make build  optimised build only (build/)

JOBS   ?= $(shell nproc)
BUILD  ?= build
TBUILD ?= build-test

.PHONY: all deps build build-test test demo bench clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTKC_SANITIZE=OFF
	cmake --build $(BUILD) -j $(JOBS)

build-test: deps
	cmake -S . -B $(TBUILD) -DCMAKE_BUILD_TYPE=Debug -DTKC_SANITIZE=ON
	cmake --build $(TBUILD) -j $(JOBS)

test: build-test
	cd $(TBUILD) && ctest --output-on-failure --timeout 1200

# DEMO_ARGS: options of `tikv-kafka-cdc demo` (e.g. DEMO_ARGS="--duration 30")
demo: build
	sh scripts/demo.sh $(BUILD) $(DEMO_ARGS)

bench: build
	sh scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(TBUILD)

# make fuzz [FUZZ_SECONDS=30]: libFuzzer targets built with clang in
# build-fuzz/, each fuzzed for FUZZ_SECONDS (tests/fuzz/run.sh).
FUZZ_SECONDS ?= 30
.PHONY: fuzz
fuzz: deps
	sh tests/fuzz/run.sh $(FUZZ_SECONDS)

# make test-faults [FAULTS_LONG=1] [E2E_SEED=N]: the fault suite alone
# (tests/integration/run-faults.sh, own broker): the short schedule CI runs,
# or 5 minutes of faults and a 60 s broker outage under load (pipeline_outage)
# with FAULTS_LONG=1; E2E_SEED replays a schedule.
.PHONY: test-faults
test-faults: build-test
	FAULTS_LONG=$(FAULTS_LONG) E2E_SEED=$(E2E_SEED) sh tests/integration/run-faults.sh $(TBUILD)
