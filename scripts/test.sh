#!/usr/bin/env bash
# Set up everything the test suite needs and run it. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "no tests were collected: that is a failure" >&2; exit 1; fi
exit $rc
