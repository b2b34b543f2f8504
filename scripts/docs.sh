#!/usr/bin/env bash
# Regenerate what the docs show of the code (every command's --help, the exit codes)
# with cog; the test command checks it with `cog --check`. Then build the site.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.venv/bin/cog -r -I scripts docs/cli.md docs/cli-reference.md
if [ "${1:-}" = "--serve" ]; then
  NO_MKDOCS_2_WARNING=1 exec .venv/bin/mkdocs serve
fi
