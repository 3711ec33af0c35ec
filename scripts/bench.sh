#!/usr/bin/env bash
# Builds release and runs the benchmarks, with a throwaway PostgreSQL for those that use one
# (its URL in SWITCHYARD_BENCH_POSTGRES_URL). Arguments go to switchyard-bench.
set -euo pipefail
cd "$(dirname "$0")/.."

# The two products the benchmarks run, not the whole package: the fuzz checks' `@testable import`
# does not build in release.
swift build -c release --product switchyard
swift build -c release --product switchyard-bench

export PG_STATE="${TMPDIR:-/tmp}/switchyard-pg-bench.$$.state"
# Durable, as production runs it: the PostgreSQL figures are what a real deployment gets.
export PG_DURABLE=1
trap 'bash scripts/pg.sh stop' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bash scripts/pg.sh start
SWITCHYARD_BENCH_POSTGRES_URL="$(bash scripts/pg.sh url)"
export SWITCHYARD_BENCH_POSTGRES_URL

[ -x .build/release/switchyard-bench ] || { echo "bench.sh: no switchyard-bench product was built" >&2; exit 1; }
.build/release/switchyard-bench "${@:-storage}"

if [ -f bench/http.sh ]; then
  bash bench/http.sh
fi

# Webhook delivery to a loopback nginx, on SQLite and on the PostgreSQL above.
if [ -f bench/webhooks.sh ]; then
  bash bench/webhooks.sh
fi

# Script runs through the isolated worker pool beside a warm in-process context.
if [ -f bench/scripts.sh ]; then
  bash bench/scripts.sh
fi

# OAuth client-credentials tokens/s and app-authenticated reads, with Authlib's Flask baseline.
if [ -f bench/oauth.sh ]; then
  bash bench/oauth.sh
fi

# Connector runs per second through the API (POST /v1/integrations/{id}/test, history included).
if [ -f bench/connectors.sh ]; then
  bash bench/connectors.sh
fi
