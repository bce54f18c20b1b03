#!/usr/bin/env bash
# Install the real tool-call parser of a server users run, for the differential test
# tests/test_toolcall_reference.py: SGLang's `qwen3_coder` detector (sglang/srt/function_call/, pure Python)
# and the one small package it imports that the venv lacks (partial-json-parser). Only those source files are
# kept (~0.7 MB) under <venv>/reference-parsers/; nothing of SGLang is imported by visagent itself.
# The sglang wheel is ~39 MB (it carries compiled parts we do not use); pip's cache keeps it after the first
# download, and a stamp skips all of this once installed. Idempotent; run by scripts/setup.sh.
#
# vLLM's parser is not installed: its wheel is ~336 MB and its qwen3_coder parser sits on vLLM's whole
# request stack (see docs/actions.md, "Tool-call parsing").
set -euo pipefail
cd "$(dirname "$0")/.."
VPY="${VPY:-.venv/bin/python}"
SGLANG=0.5.23
PJP=0.2.1.1.post7
dest="$("$VPY" -c 'import sys; print(sys.prefix)')/reference-parsers"
want="sglang==$SGLANG partial-json-parser==$PJP"
if [ -f "$dest/.installed" ] && [ "$(cat "$dest/.installed")" = "$want" ]; then exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The wheel is built for CPython 3.11 on manylinux; only its .py files are used, so fetch that build whatever
# this interpreter is.
"$VPY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux_2_34_x86_64 -d "$tmp" "sglang==$SGLANG"
"$VPY" -m pip download -q --no-deps -d "$tmp" "partial-json-parser==$PJP"
rm -rf "$dest"
mkdir -p "$dest"
"$VPY" -m pip install -q --no-deps --no-compile --target "$dest" "$tmp"/partial_json_parser-*.whl
"$VPY" - "$tmp"/sglang-"$SGLANG"-*.whl "$dest" <<'PY'
import sys
import zipfile

wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    keep = [n for n in z.namelist()
            if (n.startswith("sglang/srt/function_call/") and n.endswith(".py"))
            or n == "sglang/srt/environ.py" or n.endswith(".dist-info/licenses/LICENSE")]
    z.extractall(dest, keep)
PY
echo "$want" > "$dest/.installed"
