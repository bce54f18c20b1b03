#!/usr/bin/env bash
# The GPU checks of docs/gpu.md, as one script for a lent GPU machine with no network (the device tool runs it in
# the repository root; $OUT is the folder whose files come back). It needs, carried beside the tree:
#   .whl/   transformers 5.25 (+ huggingface_hub 2.4, kernels, httpx2, httpcore2, truststore, tomlkit, hf-xet) and
#           flash-linear-attention + fla-core 0.6.0, downloaded here with `pip download --no-deps --python-version
#           3.12 --platform manylinux_2_28_x86_64 ...` (the machine's image has torch 2.11 + CUDA 13, transformers 5.17)
#   .gpu/fonts/  DejaVuSans*.ttf and DejaVuSansMono*.ttf (the image has no fonts; the sim world draws with them)
# Each stage has its own time limit so one slow stage cannot eat the lease; results go to $OUT as they come.
set -u
OUT="${OUT:-/tmp/gpu-out}"; mkdir -p "$OUT"
T0=$(date +%s)
stamp() { echo "== $(( $(date +%s) - T0 )) s: $*"; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 VISAGENT_FONT_DIR=$PWD/.gpu/fonts HF_HUB_OFFLINE=1
{
  stamp env
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
  python3 -c "import sys, torch, transformers, triton, fla; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__, 'triton', triton.__version__, 'fla', fla.__version__)"
  python3 -c "import vllm" 2>&1 | tail -1
  python3 -c "import causal_conv1d" 2>&1 | tail -1
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

LAYERS="${LAYERS:-4}"; W="${W:-1920}"; H="${H:-1080}"
gen() {  # gen NAME TIMEOUT IMAGES [ARGS...]: bench/engine_generate.py on the random 35B-A3B-shaped checkpoint
  local name=$1 limit=$2 images=$3; shift 3
  stamp "generate $name: ${LAYERS} layers of the 35B-A3B shape, $images screenshot(s) of ${W}x${H} $*"
  timeout "$limit" python3 bench/engine_generate.py --device cuda --scaled-35b "$LAYERS" --build-dir /tmp/s35 \
    --width "$W" --height "$H" --images "$images" --tokens 64 --repeats 3 "$@" > "$OUT/gen_$name.log" 2>&1
  echo "rc $?" >> "$OUT/gen_$name.log"; tail -5 "$OUT/gen_$name.log"
}
gen fla4 130 4                    # builds the checkpoint first (weights drawn on the GPU, ~9 GB written)
gen torch4 80 4 --kernels torch
gen fla1 50 1
gen torch1 50 1 --kernels torch

train() {  # train NAME TIMEOUT ARGS...: train-tiny --device cuda from the shipped model, 30 steps, no evaluations
  local name=$1 limit=$2; shift 2
  stamp "train-tiny --device cuda $name: $*"
  mkdir -p "/tmp/$name"; [ -d /tmp/data-made ] && cp -r /tmp/data-made/. "/tmp/$name/"
  timeout "$limit" python3 -m visagent train-tiny --out "/tmp/$name" --device cuda --base tiny --seeds 1 \
    --grounding-seeds 2 --steps 30 --workers 16 --prep-threads 14 --eval-every 0 --final-eval-seeds 0 \
    --no-progress "$@" > "$OUT/train_$name.log" 2>&1
  echo "rc $?" >> "$OUT/train_$name.log"; tail -3 "$OUT/train_$name.log"
  [ -d /tmp/data-made ] || { mkdir -p /tmp/data-made && cp -r "/tmp/$name/data" "/tmp/$name/recipe-inputs.json" /tmp/data-made/; }
  { echo "$name $*"; cat "/tmp/$name/model/curve.json" 2>/dev/null; echo; } >> "$OUT/curves.txt"
}
# flash-linear-attention 0.6 refuses the backward pass on Hopper with Triton < 3.7.1 (docs/gpu.md): train without it
rm -rf /tmp/site/fla /tmp/site/fla_core* /tmp/site/flash_linear*
train b8 120 --batch 8                                     # the recipe's settings (pointer loss, one example a forward)
train b32 90 --batch 32 --micro-batch 32 --pointer-weight 0   # padded batches of 32 (plain target loss only)
stamp done
