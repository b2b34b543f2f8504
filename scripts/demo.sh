#!/usr/bin/env bash
# The main job: set up, start the local stack (a new database is migrated and seeded),
# verify the schema, and race 20 users for one car through supabase-py. The stack is
# stopped at the end unless CARBOOK_KEEP_STACK=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
carbook=.venv/bin/carbook
if [ "${CARBOOK_KEEP_STACK:-0}" != "1" ]; then
  trap '$carbook stack stop' EXIT
fi
$carbook stack start
$carbook db verify --failed
.venv/bin/python scripts/demo.py
