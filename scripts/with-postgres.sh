#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server:
#
#   scripts/with-postgres.sh pytest -m "not browser"
#
# Creates a fresh cluster in a new temp dir, starts it on a free port on 127.0.0.1, runs the
# command with DATABASE_URL=postgres://tongban@127.0.0.1:PORT/postgres, and always stops
# the server and removes the temp dir afterwards (also when the command fails or is
# interrupted). Exits with the command's status.
#
# PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user
# (which Debian's package creates) on a data dir owned by it.
set -euo pipefail

if (($# == 0)); then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

bindir=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 | xargs -r dirname)
if [[ -z $bindir ]]; then
    echo "error: PostgreSQL server binaries not found; run scripts/system-packages.sh postgresql" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tongban-pg.XXXXXX")
as_postgres=()
if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$tmp"
    as_postgres=(runuser -u postgres --)
fi

pg() {  # run a PostgreSQL binary as the cluster's owner, from a directory it can read
    (cd "$tmp" && "${as_postgres[@]}" "$bindir/$1" "${@:2}")
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -f $tmp/data/postmaster.pid ]]; then
        pg pg_ctl -D "$tmp/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || pg pg_ctl -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

if ! pg initdb -D "$tmp/data" -A trust -U tongban -E UTF8 --locale=C.UTF-8 >"$tmp/initdb.log" 2>&1; then
    cat "$tmp/initdb.log" >&2
    exit 1
fi
# A throwaway test server: durability settings off for speed.
options="-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
options+=" -c full_page_writes=off -c max_connections=50 ${TONGBAN_PG_OPTIONS:-}"
if ! pg pg_ctl -D "$tmp/data" -o "$options" -l "$tmp/server.log" -w -t 60 start >/dev/null; then
    cat "$tmp/server.log" >&2
    exit 1
fi

export DATABASE_URL="postgres://tongban@127.0.0.1:$port/postgres"
echo "==> PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($tmp)"
"$@"
