#!/usr/bin/env bash
# Webhook delivery benchmark of the release binary, on SQLite and then on PostgreSQL.
#
# The receiver is nginx on loopback answering 204, logging `$msec $http_webhook_id` for each
# request it answered. One endpoint subscribed to `*`. Per engine:
#   1. raw: wrk posting the same body straight to nginx (the ceiling of this machine and receiver);
#   2. full load: wrk posting single host events (`POST /v1/workspaces/{ws}/events`, one event per
#      request, 64 connections) for BENCH_SECONDS; then we wait until every event is in nginx's log
#      (bounded) and print events ingested/s, events delivered/s (distinct events delivered ÷ the
#      time from the start of wrk to the last delivery), ingest→delivery p50/p99 (each event's
#      occurred_at, read back from GET …/events, against its $msec), whether anything was lost,
#      and delivered/raw;
#   3. half load: the same at about half the delivered rate (wrk with a Lua delay, since wrk2 is not
#      available), for the latency at a load the server keeps up with.
# PostgreSQL is $SWITCHYARD_BENCH_POSTGRES_URL (scripts/bench.sh sets it) or a throwaway cluster of
# our own (scripts/pg.sh); each run gets a database of its own. Exits non-zero if an event was not
# delivered within the wait.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
bin="${SWITCHYARD_RELEASE_BIN:-$PWD/.build/release/switchyard}"
duration="${BENCH_SECONDS:-5}"
drain_limit="${BENCH_DRAIN_SECONDS:-120}"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$bin" ] || { echo "bench/webhooks.sh: no release binary at $bin (swift build -c release)" >&2; exit 1; }
[ -x "$nginx_bin" ] || { echo "bench/webhooks.sh: no nginx (scripts/deps.sh installs it)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/webhooks.sh: no wrk (scripts/deps.sh installs it)" >&2; exit 1; }

work="$(mktemp -d)"
bench="bench/webhooks.sh"
. bench/common.sh
sy_pid="" nginx_pid="" own_pg="" pg_database="" pg_admin_url=""
cleanup() {
  [ -n "$sy_pid" ] && { kill "$sy_pid" 2>/dev/null; wait "$sy_pid" 2>/dev/null || true; }
  [ -n "$nginx_pid" ] && { kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true; }
  drop_postgres_database
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the receiver ----------------------------------------------------------------------------------
start_nginx "$nginx_bin" "location / { return 204; }" "log_format wh '\$msec \$http_webhook_id'; access_log $work/nginx/access.log wh buffer=256k flush=100ms;"
receiver="http://127.0.0.1:$nginx_port/hook"

# --- helpers -------------------------------------------------------------------------------------
wrk_rate() { awk '/Requests\/sec/ {print $2}'; }

cat >"$work/analyze.py" <<'PY'
"""One pass: the events ingested since `after` (from the API), their deliveries (from nginx's log),
and the figures. Writes the last event id and the delivered rate for the next pass."""
import json, sys, time
from datetime import datetime
import requests

url, token, ws, state, log_path, started, drain_limit = sys.argv[1:8]
started, drain_limit = float(started), float(drain_limit)
with open(state) as f:
    saved = json.load(f)
session = requests.Session()
session.headers["Authorization"] = f"Bearer {token}"

def events_after(after):
    out = []
    while True:
        params = {"limit": 200, "type": "bench.ping"}
        if after:
            params["after"] = after
        page = session.get(f"{url}/v1/workspaces/{ws}/events", params=params, timeout=60).json()
        out += page["data"]
        if page["next_after"] is None:
            return out
        after = page["next_after"]

# Only what the log gained since the previous pass: ids of another engine's run are not ours.
first, counts, offset = {}, {}, saved.get("offset", 0)


def read_log():
    """Adds the log's new whole lines to first (the first delivery of each id) and counts."""
    global offset
    with open(log_path, "rb") as f:
        f.seek(offset)
        chunk = f.read()
    end = chunk.rfind(b"\n") + 1
    offset += end
    for line in chunk[:end].decode().splitlines():
        msec, _, webhook_id = line.partition(" ")
        if webhook_id.startswith("evt_"):
            t = float(msec)
            counts[webhook_id] = counts.get(webhook_id, 0) + 1
            if webhook_id not in first or t < first[webhook_id]:
                first[webhook_id] = t

events = events_after(saved.get("after"))
ids = {e["id"] for e in events}
occurred = {e["id"]: datetime.strptime(e["occurred_at"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() for e in events}

# Wait until every event is in the log, or the log stops growing for 5 s, within drain_limit.
deadline, last_offset, still_since = time.monotonic() + drain_limit, -1, time.monotonic()
while True:
    read_log()
    if all(i in first for i in ids):
        break
    if offset != last_offset:
        last_offset, still_since = offset, time.monotonic()
    if time.monotonic() > deadline or time.monotonic() - still_since > 5:
        break
    time.sleep(0.25)

got = [first[i] for i in ids if i in first]
lost = len(ids) - len(got)
twice = sum(1 for i in ids if counts.get(i, 0) > 1)
last = max(got) if got else started
rate = len(got) / (last - started) if got else 0.0
latencies = sorted((first[i] - occurred[i]) * 1000 for i in ids if i in first)

def percentile(p):
    return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] if latencies else float("nan")

result = {"ingested": len(ids), "delivered": len(got), "lost": lost, "twice": twice, "rate": rate,
          "p50": percentile(50), "p99": percentile(99), "after": events[-1]["id"] if events else saved.get("after"),
          "offset": offset}
with open(state, "w") as f:
    json.dump({**saved, **result}, f)
print(json.dumps(result))
PY

# One engine: start switchyard on database $2, then the raw, full-load and half-load passes.
bench_engine() {
  local label="$1" database_url="$2" port url token ws auth out raw ingest_rate started result
  port="$(free_port)"
  url="http://127.0.0.1:$port"
  mkdir -p "$work/$label"
  (cd "$work/$label" && exec "$bin" serve --port "$port" --log-level warning --database-url "$database_url" \
    --allowed-target-networks 127.0.0.0/8 >stdout.txt 2>stderr.txt) &
  sy_pid=$!
  until curl -fs "$url/healthz" >/dev/null 2>&1; do
    kill -0 "$sy_pid" 2>/dev/null || { cat "$work/$label/stderr.txt" >&2; exit 1; }
    sleep 0.05
  done
  token="$(grep -o 'sy_live_[A-Za-z0-9]*' "$work/$label/stdout.txt" | head -n 1)"
  ws="$(grep -o 'ws_[0-9A-Z]*' "$work/$label/stdout.txt" | head -n 1)"
  auth="Authorization: Bearer $token"
  curl -fs "$url/v1/workspaces/$ws/webhooks" -H "$auth" \
    -d "{\"url\": \"$receiver\", \"name\": \"bench\", \"subscriptions\": [{\"events\": [\"*\"]}]}" >/dev/null
  echo "{\"offset\": $(stat -c %s "$work/nginx/access.log" 2>/dev/null || echo 0)}" >"$work/$label/state.json"

  cat >"$work/$label/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"type":"bench.ping","data":{"n":1}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA
  # A short warm-up (connections, caches), delivered before the passes start and not counted.
  run_wrk -t2 -c16 -d1s -s "$work/$label/post.lua" "$url/v1/workspaces/$ws/events" >/dev/null
  python3 "$work/analyze.py" "$url" "$token" "$ws" "$work/$label/state.json" "$work/nginx/access.log" \
    "$(date +%s.%N)" "$drain_limit" >/dev/null

  raw="$(run_wrk -t2 -c64 -d"${duration}s" -s "$work/$label/post.lua" "$receiver" | wrk_rate)"

  started="$(date +%s.%N)"
  ingest_rate="$(run_wrk -t2 -c64 -d"${duration}s" -s "$work/$label/post.lua" "$url/v1/workspaces/$ws/events" | wrk_rate)"
  result="$(python3 "$work/analyze.py" "$url" "$token" "$ws" "$work/$label/state.json" "$work/nginx/access.log" \
    "$started" "$drain_limit")"
  full="$result" full_ingest="$ingest_rate"

  # Half the delivered rate: each of c connections waits 10 ms before each request, c = rate/2 × 10 ms.
  local half_conns half_threads
  half_conns="$(python3 -c "import json,sys; r=json.loads(sys.argv[1])['rate']; print(max(1, round(r / 2 * 0.010)))" "$result")"
  half_threads=$(( half_conns >= 2 ? 2 : 1 ))
  { cat "$work/$label/post.lua"; echo 'function delay() return 10 end'; } >"$work/$label/paced.lua"
  started="$(date +%s.%N)"
  ingest_rate="$(run_wrk -t"$half_threads" -c"$half_conns" -d"${duration}s" -s "$work/$label/paced.lua" \
    "$url/v1/workspaces/$ws/events" | wrk_rate)"
  result="$(python3 "$work/analyze.py" "$url" "$token" "$ws" "$work/$label/state.json" "$work/nginx/access.log" \
    "$started" "$drain_limit")"

  kill "$sy_pid"; wait "$sy_pid" 2>/dev/null || true; sy_pid=""
  if python3 - "$label" "$duration" "$raw" "$full_ingest" "$full" "$half_conns" "$ingest_rate" "$result" <<'PY'
import json, sys
label, duration, raw, full_ingest, full, half_conns, half_ingest, half = sys.argv[1:9]
raw, full_ingest, half_ingest = float(raw), float(full_ingest), float(half_ingest)
full, half = json.loads(full), json.loads(half)

def lost(r):
    if r["lost"] == 0:
        return f"nothing lost ({r['ingested']} events, {r['twice']} delivered twice)"
    return f"LOST {r['lost']} of {r['ingested']} events (not delivered within the wait)"

print(f"Webhooks on {label} (release; wrk -t2 -c64, {duration}s per pass; nginx returning 204 as the receiver):")
print(f"  raw: the same wrk straight to nginx:   {raw:10.0f} req/s")
print(f"  events ingested (wrk):                 {full_ingest:10.0f} events/s")
print(f"  events delivered:                      {full['rate']:10.0f} events/s   ratio {full['rate'] / raw:.2f} to raw"
      "  (target >= 10,000/s and >= 0.25 on SQLite)")
print(f"  ingest→delivery at full load:          p50 {full['p50']:.0f} ms, p99 {full['p99']:.0f} ms")
print(f"  {lost(full)}")
print(f"  at half load (wrk -c{half_conns}, 10 ms between requests): {half_ingest:.0f} events/s ingested, "
      f"{half['rate']:.0f}/s delivered")
print(f"  ingest→delivery at half load:          p50 {half['p50']:.0f} ms, p99 {half['p99']:.0f} ms  (target p99 < 100 ms)")
print(f"  {lost(half)}")
sys.exit(1 if full["lost"] or half["lost"] else 0)
PY
  then :; else status=1; fi
}

status=0
bench_engine SQLite "sqlite://$work/SQLite.sqlite"

# --- PostgreSQL ----------------------------------------------------------------------------------
# postgres_database runs in this shell (not $(…)): it sets pg_database and own_pg for the cleanup.
postgres_database "bench_webhooks_$$" >"$work/pg_url"
pg_url="$(cat "$work/pg_url")"
if [ -n "$pg_url" ]; then bench_engine PostgreSQL "$pg_url"; fi
exit "$status"
