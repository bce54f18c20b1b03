#!/usr/bin/env bash
# Create .venv and install visagent with its test extra. Idempotent; safe to re-run.
# torch is installed first at a pinned version so that pip keeps it (a later open range would otherwise
# pull a multi-GB CUDA build); torchvision is never installed (it breaks beside this torch).
# Prints a few lines saying what it does; pip's own output goes to .venv/setup.log (shown when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
  || { echo "visagent needs Python 3.11 or newer (found $("$PY" --version 2>&1)); set PYTHON=python3.11" >&2; exit 2; }
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating the virtual environment .venv ($("$PY" --version 2>&1))"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
LOG=.venv/setup.log
: > "$LOG"
# step "what it does" command...: the command's output goes to the log; on failure its last lines are shown.
step() {
  local what="$1"; shift
  echo "setup: $what"
  if ! "$@" >>"$LOG" 2>&1; then
    echo "setup: FAILED while $what; the last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
}
PIP=("$VPY" -m pip --disable-pip-version-check --no-input -q)
stamp=.venv/.visagent-installed
want="$(sha1sum pyproject.toml | cut -c1-40)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  step "upgrading pip" "${PIP[@]}" install --upgrade pip
  if ! $VPY -c 'import torch' 2>/dev/null; then
    step "installing torch (${VISAGENT_TORCH_SPEC:-torch==2.13.0}, CPU build unless you chose another)" \
      "${PIP[@]}" install "${VISAGENT_TORCH_SPEC:-torch==2.13.0}"
  fi
  step "installing visagent and its dependencies (editable, with the test extra)" "${PIP[@]}" install -e ".[test]"
  if $VPY -m pip show torchvision >/dev/null 2>&1; then
    step "removing torchvision (it breaks beside this torch)" "${PIP[@]}" uninstall -y torchvision
  fi
  echo "$want" > "$stamp"
else
  echo "setup: .venv is up to date with pyproject.toml (nothing to install)"
fi
# SGLang's tool-call parser for the differential test (tests/test_toolcall_reference.py); own stamp.
step "checking the reference tool-call parser for the tests (scripts/reference-parsers.sh)" \
  env VPY="$VPY" bash scripts/reference-parsers.sh
echo "setup: done in $((SECONDS - start)) s; run .venv/bin/visagent --help (or bash scripts/quickstart.sh)"
