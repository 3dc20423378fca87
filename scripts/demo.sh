#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job, `kidsql demo`, on the embedded benchmark. Extra arguments go
# to `kidsql demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${VIRTUAL_ENV:-}" ]; then source .venv/bin/activate; fi
exec kidsql demo "$@"
