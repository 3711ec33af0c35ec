#!/usr/bin/env bash
# Script runtime benchmark of the release build: isolated connector runs through the worker pool
# (a fresh JavaScriptCore context in a `switchyard script-worker` process each) beside the same
# function called in a warm in-process context, in the same run; p50/p99 latency and the
# overhead of isolation one run at a time, then runs per second from 16 concurrent callers.
# BENCH_SECONDS (default 3) a measurement.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${SWITCHYARD_RELEASE_DIR:-$PWD/.build/release}"
[ -x "$build/switchyard-bench" ] && [ -x "$build/switchyard" ] || {
  echo "bench/scripts.sh: no release build in $build (swift build -c release)" >&2
  exit 1
}
"$build/switchyard-bench" scripts --seconds "${BENCH_SECONDS:-3}" --worker "$build/switchyard"
