#!/usr/bin/env bash
# stack-check.sh: static checks of the docker-compose stack (docker/) that
# need no Docker engine. tests/docker/CMakeLists.txt runs one check per ctest:
#
#   stack-check.sh CHECK SOURCE_DIR [BINARY]
#
#   compose-config   Debian's docker-compose validates docker-compose.yml
#   compose-deps     every depends_on condition can be met (service_healthy
#                    needs a health check), every service has image or build,
#                    published ports bind to 127.0.0.1
#   images           every image (compose and Dockerfile FROM) is pinned by a
#                    tag other than latest or by digest; PD, TiKV and TiDB
#                    share one version
#   ports            the connector's HTTP port agrees everywhere: docker.ini
#                    [http] listen, Dockerfile EXPOSE and HEALTHCHECK_URL,
#                    compose ports, Prometheus target; and the image's
#                    TKC_KAFKA_SCHEMA_DIR is where it copies schemas/
#   promtool         promtool check config / check rules / test rules, and
#                    every PromQL query of the dashboards parses
#   metrics-doc      every tikv_kafka_cdc_* name the dashboard and the alert
#                    rules use is documented in docs/metrics.md
#   check-config     BINARY check-config config/docker.ini, alone and with
#                    --env-file docker/connector.env (each of its variables
#                    must set a value)
#   runtime-libs     every shared library BINARY loads (ldd) comes from a
#                    Debian package (dpkg -S) that debian:bookworm-slim has
#                    (Essential, Priority: required, their dependencies) or
#                    that the Dockerfile's runtime stage installs: by name
#                    for the libraries BINARY links directly (DT_NEEDED), at
#                    least as a dependency for the others; and every library
#                    package listed there provides a DT_NEEDED library
#   builder-deps     the builder stage installs every build package of
#                    scripts/deps.sh
#
# Exit codes: 0 pass, 1 fail, 77 skipped (a tool is missing; ctest's
# SKIP_RETURN_CODE). Messages name the file and what is wrong.
set -uo pipefail

check=${1:?usage: stack-check.sh CHECK SOURCE_DIR [BINARY]}
src=${2:?usage: stack-check.sh CHECK SOURCE_DIR [BINARY]}
bin=${3:-}

compose="$src/docker/docker-compose.yml"
dockerfile="$src/docker/Dockerfile"
ini="$src/config/docker.ini"
envfile="$src/docker/connector.env"
promdir="$src/docker/prometheus"
dashdir="$src/docker/grafana/dashboards"

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
skip() { echo "SKIP: $*" >&2; exit 77; }
done_() {
    if [ "$failures" -gt 0 ]; then
        echo "$check: $failures problem(s)" >&2
        exit 1
    fi
    echo "$check: ok"
    exit 0
}
need() { command -v "$1" >/dev/null 2>&1 || skip "$1 not installed ($2)"; }

# The Dockerfile with continuation lines joined, comments dropped.
dockerfile_joined() {
    sed -e 's/[[:space:]]*#.*$//' "$dockerfile" |
        awk '{ if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " " } else { print buf $0; buf = "" } }'
}

# Packages named by `apt-get install` in one stage of the Dockerfile
# (stage 1 = builder, last = runtime), one per line.
dockerfile_apt_packages() {
    local want=$1
    dockerfile_joined | awk -v want="$want" '
        /^[[:space:]]*FROM[[:space:]]/ { stage++ }
        {
            if (want == "last") { if (stage != last_stage) { pk = ""; last_stage = stage } }
            else if (stage != want) next
            line = $0
            while ((i = index(line, "apt-get install")) > 0) {
                line = substr(line, i + length("apt-get install"))
                n = split(line, w, /[[:space:]]+/)
                for (j = 1; j <= n; j++) {
                    if (w[j] == "&&" || w[j] == ";" || w[j] == "||") break
                    if (w[j] == "" || w[j] ~ /^-/) continue
                    pk = pk w[j] "\n"
                }
            }
            if (want != "last") { printf "%s", pk; pk = "" }
        }
        END { if (want == "last") printf "%s", pk }' | sort -u
}

# docker-compose's normalised view of the file (block style, sorted keys).
compose_normalised() {
    docker-compose -f "$compose" config 2>&1
}

# ------------------------------------------------------------------ checks

check_compose_config() {
    need docker-compose "Debian package docker-compose"
    local out
    if ! out=$(docker-compose -f "$compose" config -q 2>&1); then
        fail "$compose: docker-compose config: $out"
    elif [ -n "$out" ]; then
        # Warnings (unset variables, deprecated keys) are problems too.
        fail "$compose: docker-compose config warned: $out"
    fi
}

check_compose_deps() {
    need docker-compose "Debian package docker-compose"
    local norm
    norm=$(compose_normalised) || { fail "$compose: docker-compose config failed: $norm"; return; }
    local problems
    # A service built from docker/Dockerfile has the image's HEALTHCHECK.
    local image_health=0
    grep -Eq '^HEALTHCHECK[[:space:]]+--|^HEALTHCHECK[[:space:]]+CMD' "$dockerfile" && image_health=1
    problems=$(printf '%s\n' "$norm" | awk -v image_health="$image_health" '
        function flush_port() {
            if (long_item && host != "127.0.0.1")
                print "service " long_svc ": port " pub " is published on every interface (bind it to 127.0.0.1)"
            long_item = 0
        }
        /^  [^ ]/ || /^[^ ]/ || /^    [a-z_]+:/ { flush_port() }
        /^[^ ]/ { top = $0; svc = ""; next }
        top == "services:" && /^  [A-Za-z0-9._-]+:$/ {
            svc = $1; sub(/:$/, "", svc); services[svc] = 1; key = ""; next
        }
        svc == "" { next }
        /^    [a-z_]+:/ {
            key = $1; sub(/:.*/, "", key)
            if (key == "healthcheck") health[svc] = 1
            if (key == "image") image[svc] = 1
            if (key == "build") { build[svc] = 1; if (image_health && !(svc in health)) health[svc] = 1 }
            if (key == "restart") { r = $0; sub(/^ *restart: */, "", r); restart[svc] = r }
            next
        }
        key == "depends_on" && /^      [A-Za-z0-9._-]+:$/ { dep = $1; sub(/:$/, "", dep); next }
        key == "depends_on" && /^        condition:/ {
            cond[svc "|" dep] = $2; next
        }
        # Ports: short syntax "- 127.0.0.1:8080:8080/tcp", or long syntax
        # "- published: 9090 / target: 9090 [/ host_ip: ...]".
        key == "ports" && /^    - [a-z_]+: / {
            flush_port(); long_item = 1; long_svc = svc; host = ""; pub = ""
            f = $2; v = $3; if (f == "published:") pub = v; if (f == "host_ip:") host = v
            next
        }
        key == "ports" && /^      [a-z_]+: / && long_item {
            if ($1 == "published:") pub = $2
            if ($1 == "host_ip:") host = $2
            next
        }
        key == "ports" && /^    - / {
            flush_port()
            p = $2
            if (p !~ /^127\.0\.0\.1:/) print "service " svc ": port " p " is published on every interface (bind it to 127.0.0.1)"
            next
        }
        key == "healthcheck" && /^      disable: true/ { health[svc] = 0; next }
        END {
            for (s in services)
                if (!image[s] && !build[s]) print "service " s ": neither image nor build"
            for (k in cond) {
                split(k, a, "|")
                if (!(a[2] in services)) { print "service " a[1] ": depends on unknown service " a[2]; continue }
                if (cond[k] == "service_healthy" && !health[a[2]])
                    print "service " a[1] ": waits for " a[2] " to be healthy, but " a[2] " has no health check"
                if (cond[k] == "service_completed_successfully" && restart[a[2]] != "" && restart[a[2]] != "\"no\"" && restart[a[2]] != "no")
                    print "service " a[1] ": waits for " a[2] " to complete, but " a[2] " restarts"
            }
        }')
    if [ -n "$problems" ]; then
        while IFS= read -r p; do fail "$compose: $p"; done <<<"$problems"
    fi
    # The connector waits for everything it talks to.
    for dep in pd tikv1 tikv2 tikv3 kafka schema-registry; do
        printf '%s\n' "$norm" | awk -v d="$dep" '
            /^  connector:$/ { in_c = 1; next }
            /^  [^ ]/ { in_c = 0 }
            in_c && /^    depends_on:$/ { in_d = 1; next }
            in_c && /^    [^ ]/ { in_d = 0 }
            in_c && in_d && $0 == "      " d ":" { found = 1 }
            END { exit !found }' ||
            fail "$compose: the connector does not wait for $dep (depends_on)"
    done
}

check_images() {
    local refs ref name tag n=0
    refs=$( { grep -E '^[[:space:]]+image:' "$compose" | sed -E 's/^[[:space:]]+image:[[:space:]]*//; s/[[:space:]]+#.*$//; s/^["'\'']//; s/["'\'']$//' | sed 's/^/compose /'
              dockerfile_joined | awk 'toupper($1) == "FROM" { print "Dockerfile " $2 }'; } )
    [ -n "$refs" ] || { fail "no images found in $compose and $dockerfile"; return; }
    local pingcap_tags=""
    while read -r where ref; do
        n=$((n + 1))
        case "$ref" in *'$'*) fail "$where: image $ref uses a variable; pin it literally"; continue;; esac
        if [[ "$ref" == *@sha256:* ]]; then
            [[ "$ref" =~ @sha256:[0-9a-f]{64}$ ]] || fail "$where: image $ref: malformed digest"
            continue
        fi
        name=${ref%:*}
        tag=${ref##*:}
        # No tag at all: the colon found was part of a registry host:port or absent.
        if [[ "$ref" != *:* || "$tag" == */* ]]; then
            fail "$where: image $ref is not pinned (no tag)"
            continue
        fi
        [ "$tag" = latest ] && { fail "$where: image $ref uses :latest"; continue; }
        [ -n "$tag" ] || fail "$where: image $ref has an empty tag"
        case "$name" in
            pingcap/pd | pingcap/tikv | pingcap/tidb) pingcap_tags="$pingcap_tags $tag";;
        esac
    done <<<"$refs"
    local distinct
    distinct=$(printf '%s\n' $pingcap_tags | sort -u | grep -c . || true)
    [ "$distinct" -le 1 ] || fail "$compose: PD, TiKV and TiDB must share one version, found:$pingcap_tags"
    [ -n "$pingcap_tags" ] || fail "$compose: no pingcap/pd, pingcap/tikv or pingcap/tidb image"
    echo "images: $n checked"
}

# The value of KEY in [SECTION] of the INI file $1.
ini_get() {
    awk -v sec="$2" -v key="$3" '
        /^[[:space:]]*[;#]/ { next }
        /^[[:space:]]*\[/ { s = $0; gsub(/[][[:space:]]/, "", s); next }
        s == sec {
            line = $0
            i = index(line, "=")
            if (i == 0) next
            k = substr(line, 1, i - 1); v = substr(line, i + 1)
            gsub(/^[[:space:]]+|[[:space:]]+$/, "", k); gsub(/^[[:space:]]+|[[:space:]]+$/, "", v)
            if (k == key) print v
        }' "$1" | tail -n 1
}

check_ports() {
    local listen port
    listen=$(ini_get "$ini" http listen)
    [ -n "$listen" ] || { fail "$ini: [http] listen is not set (the default binds 127.0.0.1, unreachable from Prometheus)"; return; }
    port=${listen##*:}
    case "$listen" in
        0.0.0.0:* | '[::]':* | :*) ;;
        *) fail "$ini: [http] listen = $listen: bind 0.0.0.0 so Prometheus and the health check reach it";;
    esac
    grep -Eq "^EXPOSE[[:space:]]+$port([[:space:]]|/|$)" "$dockerfile" ||
        fail "$dockerfile: EXPOSE does not name the HTTP port $port of $ini"
    grep -Eq "^ENV[[:space:]]+HEALTHCHECK_URL=http://127\.0\.0\.1:$port/healthz" "$dockerfile" ||
        fail "$dockerfile: HEALTHCHECK_URL is not http://127.0.0.1:$port/healthz"
    grep -Eq "\"127\.0\.0\.1:$port:$port\"" "$compose" ||
        fail "$compose: the connector's port $port is not published as 127.0.0.1:$port:$port"
    grep -Eq "\"connector:$port\"" "$promdir/prometheus.yml" ||
        fail "$promdir/prometheus.yml: no scrape target connector:$port"
    # The mounted config path is the one the image runs with.
    grep -Eq 'config/docker\.ini:/etc/tikv-kafka-cdc/config\.ini' "$compose" ||
        fail "$compose: config/docker.ini is not mounted at /etc/tikv-kafka-cdc/config.ini"
    grep -Eq '^CMD \["run", "--config", "/etc/tikv-kafka-cdc/config\.ini"\]' "$dockerfile" ||
        fail "$dockerfile: CMD does not run with /etc/tikv-kafka-cdc/config.ini"
    # The image finds the schemas wherever the configuration comes from:
    # TKC_KAFKA_SCHEMA_DIR names the directory the Dockerfile copies them to.
    local sdir
    sdir=$(sed -nE 's/^ENV[[:space:]]+TKC_KAFKA_SCHEMA_DIR=([^[:space:]]+).*/\1/p' "$dockerfile")
    if [ -z "$sdir" ]; then
        fail "$dockerfile: no ENV TKC_KAFKA_SCHEMA_DIR"
    else
        grep -Eq "^COPY[[:space:]]+schemas/?[[:space:]]+${sdir%/}/?$" "$dockerfile" ||
            fail "$dockerfile: schemas/ is not copied to $sdir (TKC_KAFKA_SCHEMA_DIR)"
    fi
    [ -z "$(ini_get "$ini" kafka schema_dir)" ] ||
        fail "$ini: [kafka] schema_dir is set; it would not exist outside the image (check-config) unless it equals the build default"
    echo "ports: http port $port, schema_dir $sdir"
}

check_promtool() {
    need promtool "Debian package prometheus"
    promtool check config "$promdir/prometheus.yml" >/dev/null || fail "$promdir/prometheus.yml: promtool check config"
    promtool check rules "$promdir/alerts.yml" >/dev/null || fail "$promdir/alerts.yml: promtool check rules"
    (cd "$src/tests/docker" && promtool test rules alerts_test.yml) || fail "tests/docker/alerts_test.yml: promtool test rules"

    # The dashboard's PromQL: promtool parses expressions only as rules, so
    # every "expr" becomes a recording rule of a scratch rule file (Grafana
    # variables replaced by what they expand to).
    local f rules n=0 expr
    rules=$(mktemp "${TMPDIR:-/tmp}/tkc-dash-rules.XXXXXX") || { fail "mktemp"; return; }
    printf 'groups:\n  - name: dashboard\n    rules:\n' >"$rules"
    for f in "$dashdir"/*.json; do
        while IFS= read -r expr; do
            n=$((n + 1))
            expr=$(printf '%s' "$expr" | sed -e 's/\\"/"/g' -e 's/\\\\/\\/g' \
                -e 's/\$__rate_interval/1m/g; s/\$__interval/1m/g; s/\$__range/5m/g' \
                -e 's/\$[A-Za-z_][A-Za-z0-9_]*/.*/g')
            printf '      - record: dashboard:expr%d\n        expr: |\n          %s\n' "$n" "$expr" >>"$rules"
        done < <(grep -oP '"expr":\s*"\K(?:[^"\\]|\\.)*(?=")' "$f")
    done
    if [ "$n" -eq 0 ]; then
        fail "$dashdir: no \"expr\" in any dashboard"
    elif ! out=$(promtool check rules "$rules" 2>&1); then
        fail "a dashboard query is not valid PromQL: $out"
        sed 's/^/    /' "$rules" >&2
    else
        echo "promtool: $n dashboard queries parse"
    fi
    rm -f "$rules"
}

check_metrics_doc() {
    local doc="$src/docs/metrics.md"
    [ -f "$doc" ] || skip "$doc does not exist yet"
    local names name base n=0
    names=$(grep -ohE 'tikv_kafka_cdc_[A-Za-z0-9_:]+' "$dashdir"/*.json "$promdir/alerts.yml" | sort -u)
    [ -n "$names" ] || { fail "no tikv_kafka_cdc_ metric in the dashboard or the rules"; return; }
    for name in $names; do
        n=$((n + 1))
        grep -qw -- "$name" "$doc" && continue
        # A histogram's series are documented under the histogram's name.
        base=$(printf '%s' "$name" | sed -E 's/_(bucket|sum|count)$//')
        [ "$base" != "$name" ] && grep -qw -- "$base" "$doc" && continue
        fail "metric $name (used in $(grep -l -- "$name" "$dashdir"/*.json "$promdir/alerts.yml" | sed "s#$src/##" | tr '\n' ' ')) is not in docs/metrics.md"
    done
    echo "metrics-doc: $n names checked"
}

check_check_config() {
    [ -x "$bin" ] || { fail "binary $bin not built"; return; }
    local out rc
    out=$("$bin" check-config "$ini" 2>&1); rc=$?
    if [ "$rc" -eq 3 ]; then
        echo "$out" >&2
        skip "check-config is not available in this build yet (exit 3)"
    fi
    [ "$rc" -eq 0 ] || fail "$bin check-config $ini exited $rc: $out"

    # The same with the variables docker-compose passes (env_file), which
    # check-config reads like docker does. Unknown TKC_ names are only
    # warnings there, so every variable must show up as the source of a value.
    local errf="${TMPDIR:-/tmp}/tkc-stack-check.$$"
    out=$("$bin" check-config "$ini" --env-file "$envfile" 2>"$errf"); rc=$?
    local err
    err=$(cat "$errf"); rm -f "$errf"
    [ "$rc" -eq 0 ] || { fail "$bin check-config $ini --env-file $envfile exited $rc: $err $out"; return; }
    # The dump (stdout) follows each value with a comment naming its source:
    # "# env TKC_PD_ENDPOINTS".
    local name n=0
    for name in $(sed -nE 's/^([A-Za-z_][A-Za-z0-9_]*)=.*/\1/p' "$envfile"); do
        n=$((n + 1))
        grep -Eq "^#.*[[:space:]]env $name([^A-Za-z0-9_:]|$)" <<<"$out" ||
            fail "$envfile: $name sets no configuration value (misspelt?)${err:+; check-config said: $err}"
    done
    [ "$n" -gt 0 ] || fail "$envfile: no variables"
    [ "$failures" -gt 0 ] || echo "check-config: $ini ok, with the $n variables of $envfile ok"
}

# The packages $@ and everything they depend on (Depends, Pre-Depends; every
# alternative), as installed on this machine, one name per line. One
# dpkg-query for the whole database: a query per package takes seconds.
depends_closure() {
    dpkg-query -W -f='${Package}\t${Depends}, ${Pre-Depends}\n' | awk -F '\t' -v roots="$*" '
        {
            n = split($2, d, /[,|]/)
            for (i = 1; i <= n; i++) {
                x = d[i]; sub(/\(.*/, "", x); gsub(/[[:space:]]/, "", x); sub(/:any$/, "", x)
                if (x != "") deps[$1] = deps[$1] " " x
            }
        }
        END {
            nq = split(roots, q, " ")
            for (h = 1; h <= nq; h++) {
                p = q[h]; sub(/:.*/, "", p)
                if (p == "" || (p in seen)) continue
                seen[p] = 1; print p
                m = split(deps[p], e, " ")
                for (j = 1; j <= m; j++) if (!(e[j] in seen)) q[++nq] = e[j]
            }
        }'
}

check_runtime_libs() {
    need ldd "libc-bin"
    need dpkg-query "dpkg"
    [ -x "$bin" ] || { fail "binary $bin not built"; return; }
    local listed
    listed=$(dockerfile_apt_packages last)
    [ -n "$listed" ] || { fail "$dockerfile: no apt-get install in the runtime stage"; return; }

    # Every listed package must exist (a typo would break the image build).
    local installed p
    installed=$(dpkg-query -W -f='${Package}\n')
    for p in $listed; do
        grep -qx -- "$p" <<<"$installed" || apt-cache show "$p" >/dev/null 2>&1 ||
            fail "$dockerfile: runtime package $p is unknown to dpkg and apt (run apt-get update?)"
    done

    # debian:bookworm-slim is debootstrap's minbase: the Essential and the
    # Priority: required packages with their dependencies (libc6 is one).
    # Their libraries are there without being listed.
    local base closure
    base=$(depends_closure $(dpkg-query -W -f='${Package} ${Priority} ${Essential}\n' |
        awk '$2 == "required" || $3 == "yes" { print $1 }') | sort -u)
    closure=$(depends_closure $listed $base | sort -u)

    # lib -> path from ldd; then path -> package with one dpkg -S over every
    # spelling of every path (merged-/usr: dpkg knows some libraries under
    # /lib and others under /usr/lib; ldd may print the soname symlink).
    local lddout libs
    lddout=$(ldd "$bin" 2>&1) || { fail "ldd $bin: $lddout"; return; }
    libs=$(printf '%s\n' "$lddout" | awk '
        $2 == "=>" && $3 ~ /^\// { print $1, $3; next }
        $1 ~ /^\// { n = split($1, a, "/"); print a[n], $1 }')
    [ -n "$libs" ] || { fail "ldd $bin listed no libraries"; return; }
    # Direct dependencies the binary never uses are linked only because the
    # build ran without --as-needed (the sanitizer build); the image's
    # Release build drops them. ldd -u names them.
    local unused
    unused=$(ldd -u "$bin" 2>/dev/null | awk '$1 ~ /^\// { print $1 }')
    local lib path real cands="" c
    while read -r lib path; do
        real=$(readlink -f "$path")
        for c in "$path" "$real"; do
            cands="$cands $c /usr${c#/usr} ${c#/usr}"
        done
    done <<<"$libs"
    local owners
    owners=$(dpkg -S $cands 2>/dev/null | grep -v '^diversion' |
        awk '{ i = index($0, ": "); pk = substr($0, 1, i - 1); sub(/:.*/, "", pk); print substr($0, i + 2), pk }')

    # The binary's own DT_NEEDED entries: the packages listed in the
    # Dockerfile should be exactly the ones that provide these.
    local needed
    needed=$(objdump -p "$bin" 2>/dev/null | awk '$1 == "NEEDED" { print $2 }')
    [ -n "$needed" ] || fail "objdump -p $bin shows no NEEDED entry (binutils missing?)"
    local pkg n=0 owned=""
    while read -r lib path; do
        if grep -qx -- "$path" <<<"$unused"; then
            echo "runtime-libs: $lib ignored: linked but unused (no --as-needed in this build)"
            continue
        fi
        n=$((n + 1))
        real=$(readlink -f "$path")
        pkg=""
        for c in "$path" "$real" "/usr${path#/usr}" "${path#/usr}" "/usr${real#/usr}" "${real#/usr}"; do
            pkg=$(awk -v f="$c" '$1 == f { print $2; exit }' <<<"$owners")
            [ -n "$pkg" ] && break
        done
        [ -n "$pkg" ] || { fail "$bin loads $path ($lib), which no Debian package owns"; continue; }
        case "$pkg" in
            # Sanitizer runtimes come from -DTKC_SANITIZE=ON test builds; the
            # image is built without them.
            libasan[0-9]* | libubsan[0-9]* | liblsan[0-9]* | libtsan[0-9]*)
                echo "runtime-libs: $lib ($pkg) ignored: sanitizer build"; continue;;
        esac
        if grep -qx -- "$lib" <<<"$needed"; then
            # Linked directly: listed by name (or in the base image), not
            # merely present as some other package's dependency.
            owned="$owned $pkg"
            grep -qx -- "$pkg" <<<"$listed" || grep -qx -- "$pkg" <<<"$base" ||
                fail "$(basename "$bin") links $lib directly; its package $pkg is not in the runtime apt-get install of $dockerfile (add it)"
        else
            grep -qx -- "$pkg" <<<"$closure" ||
                fail "$(basename "$bin") loads $lib from package $pkg, which the runtime stage of $dockerfile does not install, not even as a dependency (add $pkg)"
        fi
    done <<<"$libs"
    # And nothing more: every listed library package provides a library the
    # binary links directly (curl and ca-certificates are there for the
    # health check and TLS).
    for p in $listed; do
        case "$p" in curl | ca-certificates) continue;; esac
        [[ " $owned " == *" $p "* ]] ||
            fail "$dockerfile: the runtime stage installs $p, but $(basename "$bin") links no library of it directly (remove it)"
    done
    echo "runtime-libs: $n libraries of $(basename "$bin") covered by: $(echo $listed)"
}

check_builder_deps() {
    local deps="$src/scripts/deps.sh"
    local pkgs builder p
    # PKGS="..." in deps.sh, possibly over several lines.
    pkgs=$(awk '/^PKGS="/ { on = 1; sub(/^PKGS="/, "") } on { line = $0; if (sub(/".*$/, "", line)) { print line; on = 0 } else print line }' "$deps" | tr -s ' \t' '\n\n' | grep . | sort -u)
    [ -n "$pkgs" ] || { fail "$deps: no PKGS list"; return; }
    builder=$(dockerfile_apt_packages 1)
    [ -n "$builder" ] || { fail "$dockerfile: no apt-get install in the builder stage"; return; }
    for p in $pkgs; do
        case "$p" in
            # Test and demo tools, not needed to build the binary.
            check | kcat | default-jre-headless | maven | curl | docker-compose | prometheus | clang | openssl | libgnutls28-dev) continue;;
        esac
        grep -qx -- "$p" <<<"$builder" ||
            fail "$deps installs $p but the builder stage of $dockerfile does not (add it, or list it here as test-only)"
    done
    echo "builder-deps: $(echo $builder)"
}

case "$check" in
    compose-config) check_compose_config;;
    compose-deps) check_compose_deps;;
    images) check_images;;
    ports) check_ports;;
    promtool) check_promtool;;
    metrics-doc) check_metrics_doc;;
    check-config) check_check_config;;
    runtime-libs) check_runtime_libs;;
    builder-deps) check_builder_deps;;
    *) echo "stack-check.sh: unknown check $check" >&2; exit 2;;
esac
done_
