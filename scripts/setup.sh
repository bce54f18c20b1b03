#!/usr/bin/env bash
# Create .venv and install visagent with its test extra. Idempotent; safe to re-run.
# torch is installed first at a pinned version so that pip keeps it (a later open range would otherwise
# pull a multi-GB CUDA build); torchvision is never installed (it breaks beside this torch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "visagent needs Python 3.11 or newer (found $("$PY" --version 2>&1)); set PYTHON=python3.11" >&2; exit 2; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
stamp=.venv/.visagent-installed
want="$(sha1sum pyproject.toml | cut -c1-40)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  $VPY -m pip install -q --upgrade pip
  $VPY -c 'import torch' 2>/dev/null || $VPY -m pip install -q "${VISAGENT_TORCH_SPEC:-torch==2.13.0}"
  $VPY -m pip install -q -e ".[test]"
  if $VPY -m pip show torchvision >/dev/null 2>&1; then $VPY -m pip uninstall -y -q torchvision; fi
  echo "$want" > "$stamp"
fi
# SGLang's tool-call parser for the differential test (tests/test_toolcall_reference.py); own stamp.
VPY="$VPY" bash scripts/reference-parsers.sh
