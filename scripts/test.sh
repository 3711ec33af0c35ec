#!/usr/bin/env bash
# Every test, in order: Swift tests on SQLite, the same on a throwaway PostgreSQL, then the
# end-to-end checks against the debug binary. Runs every phase even after a failure, so one run
# shows everything that is broken; exits non-zero if any phase failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# A state file of our own, so this run never stops someone else's cluster.
export PG_STATE="${TMPDIR:-/tmp}/switchyard-pg-test.$$.state"
trap 'bash scripts/pg.sh stop' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

names=() results=()
heading() { printf '\n==== %s ====\n' "$1"; }
phase() {
  local name="$1"; shift
  heading "$name"
  if "$@"; then results+=(passed); else results+=(failed); fi
  names+=("$name")
}
skip() { heading "$1"; echo "$2"; names+=("$1"); results+=("skipped ($2)"); }

phase "swift test (SQLite)" swift test

pg_url=""
heading "starting a throwaway PostgreSQL"
if bash scripts/pg.sh start && pg_url="$(bash scripts/pg.sh url)"; then
  echo "$pg_url"
  phase "swift test (PostgreSQL)" env SWITCHYARD_TEST_POSTGRES_URL="$pg_url" swift test
else
  names+=("swift test (PostgreSQL)"); results+=("failed (PostgreSQL did not start)")
fi

# No test files means nothing to run; test files that collect nothing (pytest's exit 5) fail.
if [ -n "$(find e2e -name 'test_*.py' -o -name '*_test.py' 2>/dev/null | head -n 1)" ]; then
  e2e_env=(SWITCHYARD_BIN="$PWD/.build/debug/switchyard")
  if [ -n "$pg_url" ]; then e2e_env+=(SWITCHYARD_TEST_POSTGRES_URL="$pg_url"); fi
  phase "end-to-end (pytest e2e)" env "${e2e_env[@]}" python3 -m pytest -q e2e
else
  skip "end-to-end (pytest e2e)" "no test files in e2e/"
fi

heading "summary"
status=0
for i in "${!names[@]}"; do
  printf '%-28s %s\n' "${names[$i]}" "${results[$i]}"
  case "${results[$i]}" in failed*) status=1 ;; esac
done
exit "$status"
