#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL server on 127.0.0.1 for the scale-out tests.
#   source .ci/postgres.sh start   # exports COLORIZE_TEST_POSTGRES_URL
#   .ci/postgres.sh stop
set -euo pipefail
PGPORT=${COLORIZE_PGPORT:-55432}
PGDATA=${COLORIZE_PGDATA:-/tmp/colorize-pg}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
  start)
    if [ -z "$PGBIN" ]; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
      PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA"; mkdir -p "$PGDATA"; chown postgres "$PGDATA" 2>/dev/null || true
    as_postgres "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null
    as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDATA" start >/dev/null
    as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres colorize_test
    export COLORIZE_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/colorize_test"
    echo "PostgreSQL on 127.0.0.1:$PGPORT ($COLORIZE_TEST_POSTGRES_URL)"
    ;;
  stop)
    [ -n "$PGBIN" ] && as_postgres "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA"
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
