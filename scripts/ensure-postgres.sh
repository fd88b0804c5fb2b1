#!/usr/bin/env bash
# Make sure the PostgreSQL 15 server binaries are installed (Debian's postgresql-15), for the
# test suite, which starts its own throw-away server (tests/pgserver.py). Idempotent; starts
# no cluster. If the package's install creates and starts a "15 main" cluster, that one is
# left alone: the tests do not use it.
# Exit 0 when /usr/lib/postgresql/15/bin/{initdb,pg_ctl,postgres} are there afterwards.
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin

have_pg() {
    [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ]
}

if have_pg; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-postgres: $PG_BIN/postgres is missing and we are not root;" \
         "install it with: sudo apt-get install postgresql-15" >&2
    exit 1
fi

echo "ensure-postgres: installing postgresql-15 ..." >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && \
       apt-get install -y -qq --no-install-recommends postgresql-15; } >"$log" 2>&1; then
    echo "ensure-postgres: installing postgresql-15 failed:" >&2
    tail -n 40 "$log" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"

if ! have_pg; then
    echo "ensure-postgres: postgresql-15 installed, but $PG_BIN/{initdb,pg_ctl,postgres} are still missing" >&2
    exit 1
fi
echo "ensure-postgres: $("$PG_BIN/postgres" --version)" >&2
