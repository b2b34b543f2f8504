#!/usr/bin/env bash
# The whole test suite: set-up, lint (ruff), types (mypy --strict), then pytest against
# a real PostgreSQL that the tests start on free ports in a folder of their own.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k rollback`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || exit 1

status=0
.venv/bin/ruff check src cli tests benchmarks scripts || status=1
.venv/bin/ruff format --check src cli tests benchmarks scripts >/dev/null || {
  echo "ruff format: files need formatting (run .venv/bin/ruff format)"; status=1; }
.venv/bin/mypy src/carbook_sdk src/carbook_stack cli/carbook_cli || status=1
.venv/bin/python -m pytest "$@"
rc=$?
[ $rc -ne 0 ] && status=$rc
exit $status
