#!/usr/bin/env bash
# Connector runs through the API, on the release binary with SQLite: `POST /v1/integrations/{id}/test`
# of a trivial connector (input checked against its inputs, a fresh isolated context in a script
# worker, output checked, the run and its logs written to the history), beside GET /healthz of the
# same server in the same run, alternating so noise hits both alike; best of three runs each.
# Also the same with one `ctx.http.request` per run to a loopback nginx answering JSON (through the
# outbound client and its guard, the call recorded), when nginx is installed. Target on 2 cores:
# >= 1,000 runs/s for the trivial connector. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${SWITCHYARD_RELEASE_BIN:-$PWD/.build/release/switchyard}"
duration="${BENCH_SECONDS:-5}"
workers="${BENCH_SCRIPT_WORKERS:-2}"
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$bin" ] || { echo "bench/connectors.sh: no release binary at $bin (swift build -c release)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/connectors.sh: no wrk (scripts/deps.sh installs it)" >&2; exit 1; }

work="$(mktemp -d)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sy_pid="" nginx_pid=""
cleanup() {
  [ -n "$sy_pid" ] && { kill "$sy_pid" 2>/dev/null; wait "$sy_pid" 2>/dev/null || true; }
  [ -n "$nginx_pid" ] && { kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # url pid log
  until curl -s -o /dev/null "$1"; do
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.05
  done
}

# A run with any non-2xx answer measures errors, not the route: it stops the benchmark.
rate() {
  local out
  out="$(wrk -t2 -c64 -d"${duration}s" "$@")"
  if grep -q "Non-2xx" <<<"$out"; then
    echo "bench/connectors.sh: wrk $* got non-2xx answers:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}

test_lua() { # file token target
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '{"target": "$3", "input": {"text": "hello"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $2"
LUA
}

# --- a third-party API stand-in ----------------------------------------------------------------------
api_url=""
if [ -x "$nginx_bin" ]; then
  nginx_port="$(free_port)"
  mkdir -p "$work/nginx/tmp"
  cat >"$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  client_body_buffer_size 64k;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server {
    listen 127.0.0.1:$nginx_port;
    location / { default_type application/json; return 200 '{"status": "sent"}'; }
  }
}
NGINX
  "$nginx_bin" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
  nginx_pid=$!
  wait_for "http://127.0.0.1:$nginx_port/" "$nginx_pid" "$work/nginx/error.log"
  api_url="http://127.0.0.1:$nginx_port"
fi

# --- switchyard -------------------------------------------------------------------------------------
port="$(free_port)"
url="http://127.0.0.1:$port"
database="$work/switchyard.sqlite"
(cd "$work" && exec "$bin" serve --port "$port" --host 127.0.0.1 --database-url "sqlite://$database" --log-level warning \
  --script-workers "$workers" --allowed-target-networks 127.0.0.0/8 >"$work/stdout.txt" 2>"$work/stderr.txt") &
sy_pid=$!
wait_for "$url/healthz" "$sy_pid" "$work/stderr.txt"
owner="$(grep -o 'sy_live_[A-Za-z0-9]*' "$work/stdout.txt" | head -n 1)"

integration="$(python3 - "$url" "$owner" "${api_url:-https://api.example.com}" <<'PY'
import json, sys, urllib.request
url, token, base = sys.argv[1:4]
body = {
    "name": "Bench eSign",
    "configuration": {"baseUrl": base},
    "auth": {"type": "none"},
    "connectors": [
        {"key": "echo", "name": "Echo",
         "inputs": [{"name": "text", "type": "string", "required": True}],
         "outputs": [{"name": "echo", "type": "string", "required": True}],
         "code": "export async function run(input, ctx) {\n  return { echo: input.text };\n}\n"},
        {"key": "send", "name": "Send for eSign",
         "inputs": [{"name": "text", "type": "string", "required": True}],
         "outputs": [{"name": "status", "type": "string", "required": True}],
         "code": "export async function run(input, ctx) {\n"
                 "  const answer = await ctx.http.request({ method: 'POST', url: ctx.config.baseUrl + '/envelopes', body: { text: input.text } });\n"
                 "  return { status: answer.json().status };\n}\n"},
    ],
}
request = urllib.request.Request(url + "/v1/integrations", data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request))["id"])
PY
)"
test_lua "$work/echo.lua" "$owner" echo
test_lua "$work/send.lua" "$owner" send
for target in echo ${api_url:+send}; do
  answer="$(curl -fs "$url/v1/integrations/$integration/test" -H "Authorization: Bearer $owner" \
    -d "{\"target\": \"$target\", \"input\": {\"text\": \"hello\"}}")"
  python3 -c 'import json, sys; run = json.loads(sys.argv[1]); sys.exit(0 if run["status"] == "succeeded" else f"a {sys.argv[2]} run did not succeed: {run}")' \
    "$answer" "$target"
done

echo "Connector runs through the API on SQLite (release, $workers script workers, wrk -t2 -c64, ${duration}s per run, best of three, alternating):"
results=()
for round in 1 2 3; do
  results+=("$(rate "$url/healthz")")
  results+=("$(rate -s "$work/echo.lua" "$url/v1/integrations/$integration/test")")
  if [ -n "$api_url" ]; then results+=("$(rate -s "$work/send.lua" "$url/v1/integrations/$integration/test")"); else results+=(0); fi
done
kept="$(sqlite3 "$database" "SELECT COUNT(*) FROM script_runs")"
failed="$(sqlite3 "$database" "SELECT COUNT(*) FROM script_runs WHERE status <> 'succeeded'")"
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$sy_pid/status")
python3 - "$kept" "$failed" "$rss_kb" "${results[@]}" <<'PY'
import sys
kept, failed, rss_kb = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
r = list(map(float, sys.argv[4:]))
health, echo, send = (max(r[i], r[i + 3], r[i + 6]) for i in range(3))
print(f"  GET /healthz (trivial route):                       {health:10.0f} req/s")
print(f"  POST …/test, trivial connector (run + history):     {echo:10.0f} runs/s  ratio {echo / health:.3f}  (target >= 1000 runs/s)")
if send:
    print(f"  POST …/test, one ctx.http.request to nginx:         {send:10.0f} runs/s  ratio {send / health:.3f}")
print(f"  runs kept in the history (all rounds):              {kept:10d}  ({failed} not succeeded)")
print(f"  RSS of switchyard serve after the runs:             {rss_kb / 1024:10.1f} MiB")
PY
[ "$failed" = 0 ] || { echo "bench/connectors.sh: $failed runs did not succeed" >&2; exit 1; }
