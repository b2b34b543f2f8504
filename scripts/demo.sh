#!/usr/bin/env bash
# The main job: set up, then migrate + seed + verify + a 20-user booking race on a
# private PostgreSQL that is stopped again at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
