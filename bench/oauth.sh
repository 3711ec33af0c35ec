#!/usr/bin/env bash
# OAuth benchmark of the release binary on SQLite: client-credentials tokens issued per second
# (POST /oauth/token, client_secret_basic, each token one write with its activity entry), and
# app-authenticated record reads (an app access token, one read) beside GET /healthz of the same
# server in the same run, alternating so noise hits all alike; best of three runs each.
#
# The app is written into the server's database (e2e/oauth_support.seed_app), active with a client
# secret and a rate limit far above the load. The baseline is what a Python team would stand up
# instead: Authlib's Flask token endpoint under gunicorn with two workers and tokens in SQLite
# (bench/authlib_baseline.py), installed from PyPI into a virtualenv of its own
# ($BENCH_BASELINE_VENV, kept between runs); BENCH_BASELINE=0 skips it. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
bin="${SWITCHYARD_RELEASE_BIN:-$PWD/.build/release/switchyard}"
duration="${BENCH_SECONDS:-5}"
venv="${BENCH_BASELINE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-bench/authlib-venv}"
[ -x "$bin" ] || { echo "bench/oauth.sh: no release binary at $bin (swift build -c release)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench/oauth.sh: no wrk (scripts/deps.sh installs it)" >&2; exit 1; }

work="$(mktemp -d)"
bench="bench/oauth.sh"
. bench/common.sh
sy_pid="" baseline_pid=""
cleanup() {
  [ -n "$sy_pid" ] && { kill "$sy_pid" 2>/dev/null; wait "$sy_pid" 2>/dev/null || true; }
  [ -n "$baseline_pid" ] && { kill "$baseline_pid" 2>/dev/null; wait "$baseline_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


token_lua() { # file client_id secret
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$2" "$3" | base64 -w0)"
LUA
}

# --- switchyard ------------------------------------------------------------------------------------
port="$(free_port)"
url="http://127.0.0.1:$port"
database="$work/switchyard.sqlite"
(cd "$work" && exec "$bin" serve --port "$port" --host 127.0.0.1 --database-url "sqlite://$database" --log-level warning \
  >"$work/stdout.txt" 2>"$work/stderr.txt") &
sy_pid=$!
wait_for "$url/healthz" "$sy_pid" "$work/stderr.txt"
owner="$(grep -o 'sy_live_[A-Za-z0-9]*' "$work/stdout.txt" | head -n 1)"
ws="$(grep -o 'ws_[0-9A-Z]*' "$work/stdout.txt" | head -n 1)"
curl -fs "$url/v1/workspaces/$ws/object-types" -H "Authorization: Bearer $owner" -d '{"key": "work_order", "name": "Work order",
  "fields": [{"key": "status", "type": "enum", "options": ["open", "completed"], "default": "open"},
  {"key": "trade", "type": "text"}, {"key": "nte", "type": "number"}]}' >/dev/null
record="$(curl -fs "$url/v1/workspaces/$ws/records/work_order" -H "Authorization: Bearer $owner" \
  -d '{"fields": {"trade": "HVAC", "nte": 250}}' | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
read -r client_id secret < <(PYTHONPATH="$repo/e2e" python3 - "$database" "$ws" <<'PY'
import sys
from oauth_support import seed_app
app = seed_app(sys.argv[1], "Bench Ledger", ["work_order:read"], [sys.argv[2]], rate_limit=1_000_000)
print(app["client_id"], app["client_secret"])
PY
)
token_lua "$work/token.lua" "$client_id" "$secret"
app_token="$(curl -fs "$url/oauth/token" -u "$client_id:$secret" -d grant_type=client_credentials \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')"
curl -fs -o /dev/null "$url/v1/workspaces/$ws/records/work_order/$record" -H "Authorization: Bearer $app_token" \
  || { echo "bench/oauth.sh: the app token cannot read the record" >&2; exit 1; }

# --- the baseline ----------------------------------------------------------------------------------
baseline=0
if [ "${BENCH_BASELINE:-1}" != 0 ]; then
  if ! "$venv/bin/python" -c "import authlib, flask, gunicorn" >/dev/null 2>&1; then
    echo "bench/oauth.sh: installing the baseline (Flask, Authlib, gunicorn from PyPI) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check flask authlib gunicorn
  fi
  baseline_port="$(free_port)"
  baseline_secret="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
  "$venv/bin/python" "$repo/bench/authlib_baseline.py" init "$work/baseline.sqlite" bench-client "$baseline_secret"
  (cd "$repo/bench" && BASELINE_DB="$work/baseline.sqlite" exec "$venv/bin/gunicorn" -w 2 -b "127.0.0.1:$baseline_port" \
    --log-level warning authlib_baseline:app >"$work/baseline.log" 2>&1) &
  baseline_pid=$!
  wait_for "http://127.0.0.1:$baseline_port/oauth/token" "$baseline_pid" "$work/baseline.log"
  token_lua "$work/baseline.lua" bench-client "$baseline_secret"
  curl -fs -o /dev/null "http://127.0.0.1:$baseline_port/oauth/token" -u "bench-client:$baseline_secret" -d grant_type=client_credentials \
    || { echo "bench/oauth.sh: the baseline issues no token" >&2; cat "$work/baseline.log" >&2; exit 1; }
  baseline=1
fi

echo "OAuth on SQLite (release, wrk -t2 -c64, ${duration}s per run, best of three runs each, alternating):"
results=()
for round in 1 2 3; do
  results+=("$(rate "$url/healthz")")
  results+=("$(rate -s "$work/token.lua" "$url/oauth/token")")
  results+=("$(rate -H "Authorization: Bearer $app_token" "$url/v1/workspaces/$ws/records/work_order/$record")")
  if [ "$baseline" = 1 ]; then
    # The baseline shares the two cores: it runs while switchyard idles, and the other way round.
    results+=("$(rate -s "$work/baseline.lua" "http://127.0.0.1:$baseline_port/oauth/token")")
  else
    results+=(0)
  fi
done
issued="$(sqlite3 "$database" "SELECT COUNT(*) FROM app_tokens")"
python3 - "$issued" "${results[@]}" <<'PY'
import sys
issued = int(sys.argv[1])
r = list(map(float, sys.argv[2:]))
health, tokens, read, baseline = (max(r[i], r[i + 4], r[i + 8]) for i in range(4))
print(f"  GET /healthz (trivial route):                 {health:10.0f} req/s")
print(f"  POST /oauth/token (client credentials):       {tokens:10.0f} tokens/s  (target >= 5000)  ratio {tokens / health:.2f}")
print(f"  GET record with an app token (one read):      {read:10.0f} req/s   ratio {read / health:.2f}  (target >= 0.50)")
if baseline:
    print(f"  Authlib + Flask, gunicorn -w 2, SQLite:       {baseline:10.0f} tokens/s  switchyard/baseline {tokens / baseline:.2f}"
          "  (target >= 2)")
print(f"  tokens written in all runs:                   {issued:10d}")
PY
