#!/usr/bin/env bash
# HTTP benchmark of the release binary on SQLite: start-up time, idle RSS, and requests/s of an
# authenticated API read (GET /v1/ping: token lookup + user read) beside the trivial /healthz of
# the same server in the same run, alternating so noise hits both alike. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/.build/release/switchyard"
duration="${BENCH_SECONDS:-5}"
work="$(mktemp -d)"
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

rate() { wrk -t2 -c64 -d"${duration}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
echo "HTTP on SQLite (release, wrk -t2 -c64, ${duration}s per run, two runs each, alternating):"
h1=$(rate "$url/healthz"); p1=$(rate -H "Authorization: Bearer $token" "$url/v1/ping")
h2=$(rate "$url/healthz"); p2=$(rate -H "Authorization: Bearer $token" "$url/v1/ping")
python3 - "$h1" "$h2" "$p1" "$p2" "$ready_ms" "$rss_kb" <<'PY'
import sys
h1, h2, p1, p2 = map(float, sys.argv[1:5])
ready_ms, rss_kb = int(sys.argv[5]), int(sys.argv[6])
health, ping = max(h1, h2), max(p1, p2)
print(f"  GET /healthz (trivial route):        {health:10.0f} req/s")
print(f"  GET /v1/ping (token auth + read):    {ping:10.0f} req/s   ratio {ping / health:.2f}")
print(f"  start-up to first /healthz answer:   {ready_ms:10d} ms (first start: migrations + owner created)")
print(f"  idle RSS of switchyard serve:        {rss_kb / 1024:10.1f} MiB")
PY
