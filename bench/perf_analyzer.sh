#!/usr/bin/env bash
# Run Triton's perf_analyzer against a Modelport server: bench/perf_analyzer.sh [perf_analyzer args]
#
# The perf-analyzer wheels on PyPI need glibc 2.38; the binary inside the tritonclient 2.51.0 wheel
# runs on glibc 2.36 (Debian 12) once it finds libb64 (Debian's libb64-0d) and libcudart.so.12
# (the nvidia-cuda-runtime-cu12 wheel; no GPU is needed). Everything goes into
# bench/.venvs/perf-analyzer, made on first use and reused after.
#   bench/perf_analyzer.sh -m iris -u 127.0.0.1:8080 -i http --shape input-0:1,4
#   bench/perf_analyzer.sh -m iris -u 127.0.0.1:8081 -i grpc --shape input-0:1,4
# `bench/perf_analyzer.sh --install-only` only prepares the tools (exit 0 when they run).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PERF_ANALYZER_VENV:-$HERE/.venvs/perf-analyzer}"
PYTHON="${PYTHON:-python3}"
TRITONCLIENT_VERSION="2.51.0"
CUDART_VERSION="12.9.79"

install() {
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    if [ ! -f "$VENV/.installed-$TRITONCLIENT_VERSION" ]; then
        # --no-deps: only the binary is wanted, not tritonclient's Python side.
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
            "tritonclient==$TRITONCLIENT_VERSION" "nvidia-cuda-runtime-cu12==$CUDART_VERSION"
        touch "$VENV/.installed-$TRITONCLIENT_VERSION"
    fi
    if ! ldconfig -p 2>/dev/null | grep -q 'libb64\.so\.0d'; then
        if [ "$(id -u)" = 0 ]; then
            apt-get install -y -qq libb64-0d >/dev/null 2>&1 \
                || { apt-get update -qq >/dev/null && apt-get install -y -qq libb64-0d >/dev/null; }
        else
            sudo apt-get install -y -qq libb64-0d >/dev/null
        fi
    fi
}

binary() {
    find "$VENV" -type f -name perf_analyzer -perm -u+x | head -n 1
}

install
BIN="$(binary)"
if [ -z "$BIN" ]; then
    echo "perf_analyzer binary not found in $VENV" >&2
    exit 127
fi
CUDART_DIR="$(dirname "$(find "$VENV" -name 'libcudart.so.12' | head -n 1)")"
export LD_LIBRARY_PATH="$CUDART_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ "${1:-}" = "--install-only" ]; then
    "$BIN" --version >/dev/null 2>&1 || "$BIN" --help >/dev/null 2>&1 || {
        ldd "$BIN" | grep 'not found' >&2
        exit 1
    }
    exit 0
fi
exec "$BIN" "$@"
