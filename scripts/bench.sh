#!/usr/bin/env bash
# All benchmarks, in their own local stack (free ports, a temporary folder), stopped at
# the end. Writes benchmarks/results/latest.{json,md} (or tiny.* with --tiny).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python -m benchmarks.run "$@"
