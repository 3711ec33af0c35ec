#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks.
#   scripts/pg.sh start   create and start it (does nothing if it is already running)
#   scripts/pg.sh url     print its URL: postgres://postgres@127.0.0.1:PORT/switchyard_test
#   scripts/pg.sh stop    stop it and delete its files (does nothing if there is none)
# $PG_STATE names the file that remembers the cluster, so separate runs can have their own.
# PG_DURABLE=1 keeps PostgreSQL's durable defaults (fsync, synchronous_commit, full_page_writes
# on), as the benchmarks do; without it the cluster trades durability for speed, for the tests.
set -euo pipefail

state="${PG_STATE:-${TMPDIR:-/tmp}/switchyard-pg.state}"
db=switchyard_test

die() { echo "pg.sh: $*" >&2; exit 1; }

pg_bin() {
  local dir
  dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  [ -x "$dir/initdb" ] || die "no PostgreSQL in /usr/lib/postgresql (run scripts/deps.sh)"
  echo "$dir"
}

# PostgreSQL refuses to run as root; anyone else runs it as themselves.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

load_state() {
  dir="" port=""
  [ -s "$state" ] || return 1
  # shellcheck disable=SC1090
  . "$state"
  [ -n "$dir" ] && [ -n "$port" ]
}

# Asks the server itself: after a crash, pg_ctl status can still see a zombie postmaster.
is_running() {
  load_state && [ -f "$dir/data/postmaster.pid" ] && "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2
}

start() {
  if is_running; then return 0; fi
  stop # a leftover from a run that died
  local bin
  bin="$(pg_bin)"
  # Under /tmp, not $TMPDIR: the postgres user must reach it, and socket paths must stay short.
  dir="$(mktemp -d /tmp/switchyard-pg.XXXXXX)"
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  mkdir "$dir/sock"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$dir"; fi
  printf 'dir=%q\nport=%q\n' "$dir" "$port" >"$state"

  # cd /: the postgres user may not be allowed into the caller's directory.
  (
    cd /
    as_owner "$bin/initdb" --auth=trust --username=postgres --encoding=UTF8 --no-instructions \
      -D "$dir/data" >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # For tests durability is worthless (the cluster is deleted after the run) and speed is not;
    # the benchmarks ask for Debian's durable defaults (PG_DURABLE=1), what production gives.
    options="-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c max_connections=1000"
    if [ "${PG_DURABLE:-0}" != 1 ]; then options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -o "$options" \
      start >/dev/null || { cat "$dir/data/server.log" >&2; exit 1; }
  ) || { stop; die "could not start PostgreSQL"; }
  "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db" || { stop; die "createdb failed"; }
}

stop() {
  if ! load_state; then rm -f "$state"; return 0; fi
  if [ -d "$dir/data" ]; then
    (cd / && as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -t 20 -w stop >/dev/null 2>&1) || true
  fi
  case "$dir" in /tmp/switchyard-pg.*) rm -rf "$dir" ;; esac
  rm -f "$state"
}

url() {
  is_running || die "not running (scripts/pg.sh start)"
  echo "postgres://postgres@127.0.0.1:$port/$db"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) die "usage: $0 start|stop|url" ;;
esac
