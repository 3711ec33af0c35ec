# Sourced by the bench/*.sh scripts: free ports, waiting for a server, wrk runs that stop the
# benchmark on any non-2xx answer, and a loopback nginx. A script sets `bench` (its name, for
# messages), `work` (its scratch folder) and `duration` (seconds per wrk run) before using them.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() { # url pid log
  until curl -s -o /dev/null "$1"; do
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
    sleep 0.05
  done
}

# wrk's whole output. A run with any non-2xx answer measures errors, not the route: it stops the benchmark.
run_wrk() {
  local out
  out="$(wrk "$@")"
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$bench: wrk $* got non-2xx answers:" >&2
    echo "$out" >&2
    exit 1
  fi
  echo "$out"
}

# Requests per second of `wrk -t2 -c64` for `duration` seconds.
rate() {
  local out
  out="$(run_wrk -t2 -c64 -d"${duration}s" "$@")"
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}

# Starts nginx on a free loopback port serving `location` (an nginx location block), with
# `access_log` (an nginx access_log directive, and any log_format it needs); sets nginx_port and
# nginx_pid (the caller's cleanup stops it).
start_nginx() { # nginx_bin location access_log
  nginx_port="$(free_port)"
  mkdir -p "$work/nginx/tmp"
  cat >"$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  $3
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
    $2
  }
}
NGINX
  "$1" -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
  nginx_pid=$!
  wait_for "http://127.0.0.1:$nginx_port/" "$nginx_pid" "$work/nginx/error.log"
}

# A database of its own on the benchmarks' PostgreSQL ($SWITCHYARD_BENCH_POSTGRES_URL, which
# scripts/bench.sh sets to a durable cluster), or on a durable throwaway cluster started here;
# prints its URL, or nothing when PostgreSQL cannot start. The caller's cleanup runs
# `drop_postgres_database`. Sets pg_database, pg_admin_url and own_pg.
postgres_database() { # name
  local base="${SWITCHYARD_BENCH_POSTGRES_URL:-}"
  if [ -z "$base" ]; then
    own_pg="$work/pg.state"
    if PG_DURABLE=1 PG_STATE="$own_pg" bash "$repo/scripts/pg.sh" start >/dev/null; then
      base="$(PG_STATE="$own_pg" bash "$repo/scripts/pg.sh" url)"
    else
      echo "$bench: PostgreSQL did not start; skipping the PostgreSQL run" >&2
      return 0
    fi
  fi
  # Parameters on the URL (pool_size, write_lanes…) are kept for the new database.
  local query=""
  case "$base" in *\?*) query="?${base#*\?}" base="${base%%\?*}" ;; esac
  pg_database="$1"
  pg_admin_url="${base%/*}/postgres"
  psql -X -q -d "$pg_admin_url" -c "CREATE DATABASE $pg_database" >/dev/null
  echo "${base%/*}/$pg_database$query"
}

drop_postgres_database() {
  if [ -n "${pg_database:-}" ]; then
    psql -X -q -d "$pg_admin_url" -c "DROP DATABASE IF EXISTS $pg_database WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "${own_pg:-}" ]; then PG_STATE="$own_pg" bash "$repo/scripts/pg.sh" stop; fi
}
