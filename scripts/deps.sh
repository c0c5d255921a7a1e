#!/bin/sh
# Installs the Debian packages the build, the tests and the demo need.
# Idempotent: only missing packages are installed. Needs root (or sudo).
set -eu

PKGS="build-essential cmake pkg-config
libgrpc-dev libprotobuf-c-dev protobuf-c-compiler
librdkafka-dev libavro-dev libjansson-dev check libinih-dev
libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev zlib1g-dev openssl
kcat default-jre-headless maven curl
docker-compose prometheus clang"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# A JDK from elsewhere (not Debian's) is as good as default-jre-headless.
case "$missing" in *default-jre-headless*)
    if command -v java >/dev/null 2>&1; then
        missing=$(echo "$missing" | sed 's/ default-jre-headless//')
    fi;;
esac
case "$missing" in *" maven"*)
    if command -v mvn >/dev/null 2>&1; then
        missing=$(echo "$missing" | sed 's/ maven//')
    fi;;
esac

if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi

echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps: missing packages:$missing" >&2
    echo "deps: run 'make deps' as root, or install them with apt-get" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
