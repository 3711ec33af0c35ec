#!/usr/bin/env bash
# HTTP benchmark of the release binary on SQLite: start-up time, idle RSS, and requests/s of an
# authenticated API read (GET /v1/ping: token lookup + user read) beside the trivial /healthz of
# the same server in the same run, alternating so noise hits both alike. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${SWITCHYARD_RELEASE_BIN:-$PWD/.build/release/switchyard}"
duration="${BENCH_SECONDS:-5}"
work="$(mktemp -d)"
bench="bench/http.sh"
. bench/common.sh
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

cd "$work"
start_ns=$(date +%s%N)
"$bin" serve --port "$port" --log-level warning >stdout.txt 2>stderr.txt &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
until curl -fs "$url/healthz" >/dev/null 2>&1; do
  kill -0 $pid 2>/dev/null || { cat stderr.txt; exit 1; }
  sleep 0.01
done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
token="$(grep -o 'sy_live_[A-Za-z0-9]*' stdout.txt | head -n 1)"
sleep 2
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)

ws="$(grep -o 'ws_[0-9A-Z]*' stdout.txt | head -n 1)"
auth="Authorization: Bearer $token"
curl -fs "$url/v1/workspaces/$ws/object-types" -H "$auth" -d '{"key": "work_order", "name": "Work order", "fields": [
  {"key": "status", "type": "enum", "options": ["open", "completed"], "default": "open"},
  {"key": "trade", "type": "text"}, {"key": "nte", "type": "number"}]}' >/dev/null
record="$(curl -fs "$url/v1/workspaces/$ws/records/work_order" -H "$auth" -d '{"fields": {"trade": "HVAC", "nte": 250}}' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
cat > post.lua <<LUA
wrk.method = "POST"
wrk.body = '{"fields": {"trade": "PLUMBING", "nte": 120, "status": "open"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA

echo "HTTP on SQLite (release, wrk -t2 -c64, ${duration}s per run, best of three runs each, alternating):"
results=()
for round in 1 2 3; do
  r="$(rate "$url/healthz")"; results+=("$r")
  r="$(rate -H "$auth" "$url/v1/ping")"; results+=("$r")
  r="$(rate -H "$auth" "$url/v1/workspaces/$ws/records/work_order/$record")"; results+=("$r")
  r="$(rate -s post.lua "$url/v1/workspaces/$ws/records/work_order")"; results+=("$r")
done
python3 - "$ready_ms" "$rss_kb" "${results[@]}" <<'PY'
import sys
ready_ms, rss_kb = int(sys.argv[1]), int(sys.argv[2])
r = list(map(float, sys.argv[3:]))
health, ping, read, create = (max(r[i], r[i + 4], r[i + 8]) for i in range(4))
print(f"  GET /healthz (trivial route):               {health:10.0f} req/s")
print(f"  GET /v1/ping (token auth, one read):        {ping:10.0f} req/s   ratio {ping / health:.2f}")
print(f"  GET record (token auth + record, one read): {read:10.0f} req/s   ratio {read / health:.2f}  (target >= 0.50)")
print(f"  POST record (+ event + activity, one tx):   {create:10.0f} req/s   ratio {create / health:.2f}  (target >= 0.25)")
print(f"  start-up to first /healthz answer:          {ready_ms:10d} ms (first start: migrations + owner created)")
print(f"  idle RSS of switchyard serve:               {rss_kb / 1024:10.1f} MiB")
PY
