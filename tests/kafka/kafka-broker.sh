#!/usr/bin/env bash
# kafka-broker.sh: a real single-node Apache Kafka 4.x broker (KRaft, broker +
# controller in one JVM, loopback only) for tests.
#
#   kafka-broker.sh fetch            download the broker jars into the cache
#   kafka-broker.sh start DIR        fresh broker with its state in DIR
#   kafka-broker.sh stop DIR         stop it and delete its data (idempotent)
#   kafka-broker.sh pause-stop DIR   stop the process, keep data and ports
#   kafka-broker.sh resume DIR       start it again on the same ports and data
#   kafka-broker.sh restart DIR      pause-stop + resume
#   kafka-broker.sh kill DIR         SIGKILL the broker (a crash), keep data
#   kafka-broker.sh status DIR       exit 0 when the broker process runs
#
# Files in DIR:
#   bootstrap         "127.0.0.1:PORT" (no newline); written once the broker
#                     answers a metadata request, kept across pause-stop
#   pid               the JVM's pid, which is also its process group id
#   ports             PORT and CONTROLLER_PORT, reused by resume
#   server.properties, log4j2.xml, broker.log (broker log), jvm.out (JVM
#   stdout/stderr), format.log (storage format output), data/ (log.dirs)
#
# Environment:
#   TKC_KAFKA_CACHE          jar cache (default ~/.cache/tikv-kafka-cdc/kafka-<version>)
#   TKC_KAFKA_START_TIMEOUT  seconds to wait for readiness (default 90)
#   TKC_KAFKA_JAVA           java binary (default: java on PATH)
#   TKC_KAFKA_JAVA_OPTS      extra JVM options
#   TKC_KAFKA_MVN            mvn binary (default: mvn on PATH)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/pom.xml"
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")
[[ -n "$KAFKA_VERSION" ]] || { echo "kafka-broker: no kafka.version in $POM" >&2; exit 1; }
CACHE=${TKC_KAFKA_CACHE:-$HOME/.cache/tikv-kafka-cdc/kafka-$KAFKA_VERSION}
LIB="$CACHE/lib"
STAMP="$CACHE/.complete"
JAVA=${TKC_KAFKA_JAVA:-java}
MVN=${TKC_KAFKA_MVN:-mvn}
START_TIMEOUT=${TKC_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=30

log() { echo "kafka-broker: $*"; }
die() { echo "kafka-broker: error: $*" >&2; exit 1; }

usage() {
    sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- fetch

# The stamp holds a hash of pom.xml: editing the pom (another version, another
# dependency) refetches; an interrupted download has no stamp and is redone.
pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

cache_complete() {
    [[ -f "$STAMP" && -d "$LIB" ]] && [[ "$(cat "$STAMP")" == "$(pom_hash)" ]]
}

cmd_fetch() {
    cache_complete && return 0
    mkdir -p "$CACHE"
    # Two build trees may fetch at the same time: serialise on a lock file.
    exec 9>"$CACHE/.lock"
    flock 9
    if cache_complete; then exec 9>&-; return 0; fi
    command -v "$MVN" >/dev/null || die "mvn not found (needed once to download Kafka)"
    log "downloading Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIB"
    log "(first time only: ~45 MB of jars plus Maven plugins into ~/.m2, may take a minute or more)"
    local t0 tmp
    t0=$(now)
    tmp="$CACHE/lib.partial"
    rm -rf "$tmp" "$STAMP"
    if ! "$MVN" -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >"$CACHE/fetch.log" 2>&1; then
        cat "$CACHE/fetch.log" >&2
        rm -rf "$tmp"
        die "maven download failed (see above)"
    fi
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka_2.13 jar missing after download"
    rm -rf "$LIB"
    mv "$tmp" "$LIB"
    pom_hash >"$STAMP"
    log "downloaded $(ls "$LIB" | wc -l) jars ($(du -sm "$LIB" | cut -f1) MB) in $(elapsed "$t0") s"
    exec 9>&-
}

# ---------------------------------------------------------------- process

# Succeeds when process PID is a live (non-zombie) broker JVM of DIR, i.e.
# its command line has "kafka.Kafka DIR/server.properties".
is_broker_of() {
    local pid=$1 dir=$2 stat state i
    local -a args
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    state=${stat##*) }
    [[ "${state%% *}" != Z ]] || return 1
    mapfile -d '' -t args 2>/dev/null <"/proc/$pid/cmdline" || return 1
    for ((i = 0; i + 1 < ${#args[@]}; i++)); do
        [[ "${args[i]}" == kafka.Kafka && "${args[i + 1]}" == "$dir/server.properties" ]] &&
            return 0
    done
    return 1
}

# Prints the pid of the broker of DIR if it runs.  A pid file whose process
# is gone, a zombie or another program (pid reuse) counts as not running; a
# lost or overwritten pid file is covered by looking for the JVM in /proc.
running_pid() {
    local dir=$1 pid p
    if [[ -f "$dir/pid" ]]; then
        pid=$(cat "$dir/pid" 2>/dev/null || true)
        if is_broker_of "$pid" "$dir"; then
            echo "$pid"
            return 0
        fi
    fi
    for p in $(grep -laF -- "$dir/server.properties" /proc/[0-9]*/cmdline 2>/dev/null); do
        pid=${p#/proc/}
        pid=${pid%/cmdline}
        if is_broker_of "$pid" "$dir"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# Stops the broker process of DIR (SIGTERM to its process group, SIGKILL
# after STOP_TIMEOUT s; SIGKILL at once when $2 is KILL).  No error when it
# does not run.
stop_process() {
    local dir=$1 sig=${2:-TERM} pid t0 i
    if ! pid=$(running_pid "$dir"); then
        rm -f "$dir/pid"
        return 0
    fi
    t0=$(now)
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        is_broker_of "$pid" "$dir" || break
        sleep 0.1
    done
    if is_broker_of "$pid" "$dir"; then
        log "broker pid $pid did not exit within ${STOP_TIMEOUT} s, sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            is_broker_of "$pid" "$dir" || break
            sleep 0.1
        done
    fi
    is_broker_of "$pid" "$dir" && die "broker pid $pid survived SIGKILL"
    rm -f "$dir/pid"
    log "stopped broker pid $pid in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------- config

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A random free loopback port below the kernel's ephemeral range, so that
# outgoing connections do not take it between now and the broker's bind.
pick_port() {
    local avoid=${1:-0} lo hi p i
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range || lo=32768
    ((lo > 12000)) || lo=32768
    hi=$((lo - 1))
    for ((i = 0; i < 200; i++)); do
        p=$((10000 + (RANDOM * 32768 + RANDOM) % (hi - 10000)))
        [[ "$p" != "$avoid" ]] || continue
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free loopback port found"
}

cluster_uuid() {
    local u
    while :; do
        u=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        # a leading '-' would look like an option to StorageTool
        [[ "${u:0:1}" != - && ${#u} -eq 22 ]] && { echo "$u"; return; }
    done
}

write_config() {
    local dir=$1 port=$2 cport=$3
    cat >"$dir/server.properties" <<EOF
# Generated by kafka-broker.sh: single-node KRaft broker + controller for tests.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true

offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a crash (kill) the old registration must expire before the restarted
# broker can register again: keep that short (defaults 2000 / 9000 ms).
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=4000

# small, test-sized storage and threads (2 vCPU machines)
log.segment.bytes=16777216
offsets.topic.segment.bytes=16777216
transaction.state.log.segment.bytes=16777216
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
EOF
    cat >"$dir/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by kafka-broker.sh -->
<Configuration status="warn">
  <Appenders>
    <File name="file" fileName="$dir/broker.log" append="true">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="org.apache.kafka.controller" level="info"/>
    <Logger name="state.change.logger" level="warn"/>
    <Root level="info">
      <AppenderRef ref="file"/>
    </Root>
  </Loggers>
</Configuration>
EOF
}

# Sets the JAVA_CMD array: the JVM with its options and class path.
java_cmd() {
    local dir=$1
    local extra=()
    # shellcheck disable=SC2206
    [[ -z "${TKC_KAFKA_JAVA_OPTS:-}" ]] || extra=(${TKC_KAFKA_JAVA_OPTS})
    JAVA_CMD=("$JAVA" -Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$dir/log4j2.xml" "${extra[@]}"
        -cp "$LIB/*")
}

format_storage() {
    local dir=$1 uuid
    uuid=$(cluster_uuid)
    java_cmd "$dir"
    if ! "${JAVA_CMD[@]}" kafka.tools.StorageTool format -t "$uuid" \
            -c "$dir/server.properties" --standalone >"$dir/format.log" 2>&1; then
        cat "$dir/format.log" >&2
        die "formatting the KRaft storage failed"
    fi
}

# ---------------------------------------------------------------- run

launch() {
    local dir=$1 pid
    rm -f "$dir/pid"
    {
        echo "=== $(date '+%F %T') launch"
    } >>"$dir/jvm.out"
    # Own session and process group (setsid), stdio detached from the caller:
    # ctest waits for the test's output pipes to close, so the broker must
    # not hold them.  With job control off the background child is no group
    # leader, so setsid does not fork and $! is the JVM (= group id).
    java_cmd "$dir"
    setsid "${JAVA_CMD[@]}" kafka.Kafka "$dir/server.properties" \
        </dev/null >>"$dir/jvm.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid.tmp"
    mv -f "$dir/pid.tmp" "$dir/pid"
}

# Waits until the broker answers a metadata request.  Returns 1 when the
# JVM exited, 2 on timeout.
wait_ready() {
    local dir=$1 port=$2 deadline out pid
    pid=$(cat "$dir/pid")
    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        is_broker_of "$pid" "$dir" || return 1
        # cheap check first: is the listener bound yet?
        if ! port_in_use "$port"; then
            sleep 0.2
            continue
        fi
        if out=$(kcat -L -b "127.0.0.1:$port" -m 5 2>/dev/null) &&
            grep -q "broker 1 at 127.0.0.1:$port" <<<"$out"; then
            return 0
        fi
        sleep 0.5
    done
    return 2
}

show_logs() {
    local dir=$1
    echo "---- tail of $dir/broker.log ----" >&2
    tail -n 60 "$dir/broker.log" >&2 2>/dev/null || echo "(no broker.log)" >&2
    echo "---- tail of $dir/jvm.out ----" >&2
    tail -n 20 "$dir/jvm.out" >&2 2>/dev/null || true
}

publish_bootstrap() {
    local dir=$1 port=$2
    printf '127.0.0.1:%s' "$port" >"$dir/bootstrap.tmp"
    mv -f "$dir/bootstrap.tmp" "$dir/bootstrap"
}

read_ports() {
    local dir=$1
    [[ -f "$dir/ports" ]] || die "$dir/ports missing: no broker was started in $dir"
    # shellcheck disable=SC1091
    PORT=$(sed -n 's/^PORT=//p' "$dir/ports")
    CONTROLLER_PORT=$(sed -n 's/^CONTROLLER_PORT=//p' "$dir/ports")
    [[ "$PORT" =~ ^[0-9]+$ && "$CONTROLLER_PORT" =~ ^[0-9]+$ ]] || die "bad $dir/ports"
}

abs_dir() {
    [[ -n "${1:-}" ]] || usage
    mkdir -p "$1"
    (cd "$1" && pwd)
}

cmd_start() {
    local dir port cport attempt rc t0
    dir=$(abs_dir "${1:-}")
    command -v kcat >/dev/null || die "kcat not found (apt-get install kcat)"
    command -v "$JAVA" >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
    cmd_fetch
    # A broker left over from an earlier run in the same DIR is stopped; a
    # stale pid file (process gone or pid reused) is simply dropped.
    if running_pid "$dir" >/dev/null; then
        log "a broker from an earlier run is still running in $dir, stopping it"
    fi
    stop_process "$dir"
    for attempt in 1 2 3; do
        rm -rf "$dir/data" "$dir/bootstrap" "$dir/ports" "$dir/broker.log" "$dir/jvm.out"
        port=$(pick_port)
        cport=$(pick_port "$port")
        printf 'PORT=%s\nCONTROLLER_PORT=%s\n' "$port" "$cport" >"$dir/ports"
        write_config "$dir" "$port" "$cport"
        format_storage "$dir"
        t0=$(now)
        log "starting Kafka $KAFKA_VERSION in $dir (broker 127.0.0.1:$port, controller 127.0.0.1:$cport)"
        launch "$dir"
        rc=0
        wait_ready "$dir" "$port" || rc=$?
        if ((rc == 0)); then
            publish_bootstrap "$dir" "$port"
            log "ready after $(elapsed "$t0") s, pid $(cat "$dir/pid")"
            echo "127.0.0.1:$port"
            return 0
        fi
        if ((rc == 1)) && grep -q "Address already in use" "$dir/broker.log" "$dir/jvm.out" 2>/dev/null &&
            ((attempt < 3)); then
            log "port taken meanwhile, retrying with other ports"
            continue
        fi
        break
    done
    if ((rc == 1)); then
        echo "kafka-broker: error: the broker exited during startup" >&2
    else
        echo "kafka-broker: error: broker not ready after ${START_TIMEOUT} s" >&2
    fi
    show_logs "$dir"
    stop_process "$dir" >&2
    exit 1
}

cmd_stop() {
    local dir
    [[ -n "${1:-}" ]] || usage
    if [[ ! -d "$1" ]]; then
        log "nothing to stop in $1"
        return 0
    fi
    dir=$(abs_dir "$1")
    stop_process "$dir"
    rm -rf "$dir/data" "$dir/bootstrap" "$dir/ports"
}

cmd_pause_stop() {
    local dir
    dir=$(abs_dir "${1:-}")
    stop_process "$dir"
}

cmd_resume() {
    local dir rc t0
    dir=$(abs_dir "${1:-}")
    read_ports "$dir"
    [[ -f "$dir/data/meta.properties" ]] || die "$dir/data is not a formatted broker (use start)"
    cmd_fetch
    if ! running_pid "$dir" >/dev/null; then
        rm -f "$dir/pid"
        port_in_use "$PORT" && die "port $PORT is in use by another process, cannot resume"
        port_in_use "$CONTROLLER_PORT" && die "port $CONTROLLER_PORT is in use by another process, cannot resume"
        log "resuming broker in $dir on 127.0.0.1:$PORT"
        launch "$dir"
    fi
    t0=$(now)
    rc=0
    wait_ready "$dir" "$PORT" || rc=$?
    if ((rc != 0)); then
        echo "kafka-broker: error: resumed broker not ready (rc $rc)" >&2
        show_logs "$dir"
        stop_process "$dir" >&2
        exit 1
    fi
    publish_bootstrap "$dir" "$PORT"
    log "ready after $(elapsed "$t0") s, pid $(cat "$dir/pid")"
    echo "127.0.0.1:$PORT"
}

cmd_status() {
    local dir pid
    dir=$(abs_dir "${1:-}")
    if pid=$(running_pid "$dir"); then
        echo "running pid $pid bootstrap $(cat "$dir/bootstrap" 2>/dev/null || echo '?')"
        return 0
    fi
    echo "not running"
    return 1
}

cmd_kill() {
    local dir
    dir=$(abs_dir "${1:-}")
    stop_process "$dir" KILL
}

case "${1:-}" in
fetch) cmd_fetch ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
pause-stop) cmd_pause_stop "${2:-}" ;;
resume) cmd_resume "${2:-}" ;;
restart)
    cmd_pause_stop "${2:-}"
    cmd_resume "${2:-}"
    ;;
kill) cmd_kill "${2:-}" ;;
status) cmd_status "${2:-}" ;;
*) usage ;;
esac
