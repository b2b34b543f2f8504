#!/usr/bin/env bash
# The whole test suite: set-up, lint (ruff), types (mypy --strict), the docs (mkdocs
# --strict), then pytest against a real PostgreSQL that the tests start on free ports in
# a folder of their own.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k rollback`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || exit 1

# supabase-js (the seed's front-end client) for tests/stack/test_supabase_js.py and the
# browser tier, at the versions tests/js/package-lock.json pins; Node.js and npm from apt
# when missing.
source scripts/apt.sh
if { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; } && have_apt; then
  apt_install "carbook tests: installing Node.js and npm (apt-get install nodejs npm)" nodejs npm
fi
if ! cmp -s tests/js/package-lock.json tests/js/node_modules/.carbook-lock 2>/dev/null; then
  npm ci --prefix tests/js --no-audit --no-fund --silent || exit 1
  cp tests/js/package-lock.json tests/js/node_modules/.carbook-lock
fi

# Chromium for the browser tier (tests/browser): Debian's own, driven by Playwright (from
# .[dev]) through CARBOOK_CHROMIUM or `chromium` on PATH; Playwright downloads no browser.
if [ -z "${CARBOOK_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 && have_apt; then
  apt_install "carbook tests: installing Chromium (apt-get install chromium)" chromium
fi

status=0
.venv/bin/ruff check src cli tests benchmarks scripts || status=1
.venv/bin/ruff format --check src cli tests benchmarks scripts >/dev/null || {
  echo "ruff format: files need formatting (run .venv/bin/ruff format)"; status=1; }
.venv/bin/mypy src/carbook_sdk src/carbook_stack cli/carbook_cli || status=1
# The reference in docs/ (MkDocs, the SDK's API from its docstrings): any warning fails.
site="$(mktemp -d)"
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$site" || {
  echo "mkdocs build --strict failed: fix the docs above"; status=1; }
rm -rf "$site"
.venv/bin/python -m pytest "$@"
rc=$?
[ $rc -ne 0 ] && status=$rc
exit $status
