#!/usr/bin/env bash
# HTTP benchmark of the release binary, on SQLite and then on PostgreSQL: start-up time, idle RSS,
# and requests/s of an authenticated API read (GET /v1/ping: token lookup + user read), a record
# read and a record create beside the trivial /healthz of the same server in the same run,
# alternating so noise hits all alike. PostgreSQL is $SWITCHYARD_BENCH_POSTGRES_URL (scripts/bench.sh
# sets it to a durable cluster) or a durable throwaway cluster of our own; each run gets a database
# of its own. BENCH_ENGINES=sqlite (or postgres) runs one engine only. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
bin="${SWITCHYARD_RELEASE_BIN:-$PWD/.build/release/switchyard}"
duration="${BENCH_SECONDS:-5}"
engines="${BENCH_ENGINES:-sqlite postgres}"
[ -x "$bin" ] || { echo "bench/http.sh: no release binary at $bin (swift build -c release)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/http.sh: no wrk (scripts/deps.sh installs it)" >&2; exit 1; }
work="$(mktemp -d)"
bench="bench/http.sh"
. bench/common.sh
sy_pid="" own_pg="" pg_database="" pg_admin_url=""
cleanup() {
  [ -n "$sy_pid" ] && { kill "$sy_pid" 2>/dev/null; wait "$sy_pid" 2>/dev/null || true; }
  drop_postgres_database
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_http() { # label database_url
  local label="$1" port url start_ns ready_ms token ws auth record rss_kb r
  port="$(free_port)"
  url="http://127.0.0.1:$port"
  mkdir -p "$work/$label"
  start_ns=$(date +%s%N)
  (cd "$work/$label" && exec "$bin" serve --port "$port" --log-level warning --database-url "$2" >stdout.txt 2>stderr.txt) &
  sy_pid=$!
  until curl -fs "$url/healthz" >/dev/null 2>&1; do
    kill -0 "$sy_pid" 2>/dev/null || { cat "$work/$label/stderr.txt" >&2; exit 1; }
    sleep 0.01
  done
  ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
  token="$(grep -o 'sy_live_[A-Za-z0-9]*' "$work/$label/stdout.txt" | head -n 1)"
  ws="$(grep -o 'ws_[0-9A-Z]*' "$work/$label/stdout.txt" | head -n 1)"
  sleep 2
  rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$sy_pid/status")
  auth="Authorization: Bearer $token"
  curl -fs "$url/v1/workspaces/$ws/object-types" -H "$auth" -d '{"key": "work_order", "name": "Work order", "fields": [
    {"key": "status", "type": "enum", "options": ["open", "completed"], "default": "open"},
    {"key": "trade", "type": "text"}, {"key": "nte", "type": "number"}]}' >/dev/null
  record="$(curl -fs "$url/v1/workspaces/$ws/records/work_order" -H "$auth" -d '{"fields": {"trade": "HVAC", "nte": 250}}' \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
  cat >"$work/$label/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"fields": {"trade": "PLUMBING", "nte": 120, "status": "open"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA

  echo "HTTP on $label (release, wrk -t2 -c64, ${duration}s per run, best of three runs each, alternating):"
  local results=()
  for round in 1 2 3; do
    r="$(rate "$url/healthz")"; results+=("$r")
    r="$(rate -H "$auth" "$url/v1/ping")"; results+=("$r")
    r="$(rate -H "$auth" "$url/v1/workspaces/$ws/records/work_order/$record")"; results+=("$r")
    r="$(rate -s "$work/$label/post.lua" "$url/v1/workspaces/$ws/records/work_order")"; results+=("$r")
  done
  kill "$sy_pid"; wait "$sy_pid" 2>/dev/null || true; sy_pid=""
  python3 - "$label" "$ready_ms" "$rss_kb" "${results[@]}" <<'PY'
import sys
label, ready_ms, rss_kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = list(map(float, sys.argv[4:]))
health, ping, read, create = (max(r[i], r[i + 4], r[i + 8]) for i in range(4))
read_target, create_target = ("0.50", "0.25") if label == "SQLite" else ("0.25", "0.12")
print(f"  GET /healthz (trivial route):               {health:10.0f} req/s")
print(f"  GET /v1/ping (token auth, one read):        {ping:10.0f} req/s   ratio {ping / health:.2f}")
print(f"  GET record (token auth + record, one read): {read:10.0f} req/s   ratio {read / health:.2f}  (target >= {read_target})")
print(f"  POST record (+ event + activity, one tx):   {create:10.0f} req/s   ratio {create / health:.2f}  (target >= {create_target})")
print(f"  start-up to first /healthz answer:          {ready_ms:10d} ms (first start: migrations + owner created)")
print(f"  idle RSS of switchyard serve:               {rss_kb / 1024:10.1f} MiB")
PY
}

case " $engines " in *" sqlite "*) bench_http SQLite "sqlite://$work/SQLite/switchyard.sqlite" ;; esac
case " $engines " in
  *" postgres "*)
    # In this shell, not $(…): postgres_database sets what the cleanup drops.
    postgres_database "bench_http_$$" >"$work/pg_url"
    pg_url="$(cat "$work/pg_url")"
    if [ -n "$pg_url" ]; then bench_http PostgreSQL "$pg_url"; fi
    ;;
esac
