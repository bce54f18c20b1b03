#!/usr/bin/env bash
# Set up and run the main job on the embedded default (tiny model + simulated desktop; no GPU, no downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/visagent ui "$@"
