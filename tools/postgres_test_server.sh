#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 for the study database's tests and for trying
# a hosted study: Debian's package, a cluster in its own folder, run as the postgres user
# (PostgreSQL refuses to run as root). Prints the database URL on its last line.
#
#   tools/postgres_test_server.sh start [FOLDER] [PORT]   # default: /tmp/anchormix-pg 55432
#   tools/postgres_test_server.sh stop  [FOLDER]
set -euo pipefail

action=${1:-start}
folder=${2:-/tmp/anchormix-pg}
port=${3:-55432}
bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "PostgreSQL is not installed: apt-get install -y --no-install-recommends postgresql" >&2
  exit 1
fi
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
data="$folder/data"

case "$action" in
  start)
    mkdir -p "$folder"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$folder"; fi
    if [ ! -f "$data/PG_VERSION" ]; then
      as_postgres "$bin/initdb" -D "$data" --auth=trust --username=anchormix --encoding=UTF8 >/dev/null
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      as_postgres "$bin/pg_ctl" -D "$data" -l "$folder/server.log" -w -t 60 \
        -o "-p $port -k $folder -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
    fi
    if ! as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U anchormix -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'anchormix_study'" | grep -q 1; then
      as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U anchormix anchormix_study
    fi
    echo "postgresql+psycopg://anchormix@127.0.0.1:$port/anchormix_study"
    ;;
  stop)
    if [ -f "$data/PG_VERSION" ]; then
      as_postgres "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop [FOLDER] [PORT]" >&2
    exit 2
    ;;
esac
