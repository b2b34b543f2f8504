#!/usr/bin/env bash
# The main job, as real CLI commands: start the local stack (a new database is migrated
# and seeded), sign in as the seeded admin, add a car with an image, publish it, and race
# 20 users for it. The stack is stopped at the end unless CARBOOK_KEEP_STACK=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# The demo's sign-in goes to a folder of its own, not to your ~/.config/carbook.
export CARBOOK_CONFIG_DIR="$PWD/.carbook/demo-config"
if [ "${CARBOOK_KEEP_STACK:-0}" != "1" ]; then
  trap 'carbook stack stop' EXIT
fi

carbook stack start
carbook db migrate
carbook db verify --failed
carbook auth login --email admin@carbook.local --password carbook-admin
car_id=$(carbook cars add --make Tata --model "Nexon EV" --year 2024 --price 1499.00 --currency INR \
  --image supabase/images/sample-car.png --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["id"])')
carbook cars publish "$car_id"
carbook cars show "$car_id"
carbook race "$car_id" --clients 20
