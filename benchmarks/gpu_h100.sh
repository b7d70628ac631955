#!/usr/bin/env bash
# The GPU table (benchmarks/results/gpu_h100.md) in one call on one H100 with JAX and no
# TensorFlow, in two calls of 9 and 3 minutes (BUDGET seconds each), most valuable first:
#   1. python train.py --variant efficient: paper 002's 200-epoch recipe (Lookahead, cosine,
#      weight decay 5e-4, clip 0.1, batch 128), auto precision and XLA;
#   2. bench of the same step in bf16 and fp16;
#   3. PyTorch on the same network (bf16 autocast, channels-last, eager), same batch;
#   4. bench bf16 again: a second run of the same configuration, compiled from the cache;
#      then fp16 with 27 steps per compiled call (GroupedSteps, not yet measured on a GPU);
#   5. a tuner search on tiny.
# From the repo root, with .whl/ (../shared/tools/gpu-wheels.sh) and
# .data/cifar10-jpeg.tar.gz beside the code (both ignored by git, carried by the call).
# `gpu_h100.sh 1` runs steps 1-2, `gpu_h100.sh 2` steps 3-5 (on the machine still warm
# from part 1: one call may last 10 minutes); no argument runs all.
# SMOKE=1 runs every step small (the tiny variant, a few steps), for a dry run on a CPU
# (DATA=<image folder> to skip the archive). Each step has its own time limit against one deadline, so a failing step
# cannot spend the others' time. What comes back lies in $OUT (at most 8 files).
set -u
PART=${1:-all}
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
START=$(date +%s); BUDGET=${BUDGET:-565}
# Seconds a step may take: at most $1, leaving $2 for the steps after it.
limit() { local left=$(( START + BUDGET - $(date +%s) - $2 )); (( left < $1 )) && echo $(( left > 5 ? left : 5 )) || echo "$1"; }
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/log.txt"; }
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
export XDG_CACHE_HOME=/tmp/cache  # a fresh compile cache: the first compile is measured
VARIANT=efficient
if [ "${SMOKE:-0}" = 1 ]; then
  VARIANT=tiny; EPOCHS=(--epochs 2 --steps-per-epoch 3); BENCH=(--steps 3 --warmup-steps 1)
  TUNE=(--max-trials 2 --epochs 1 --steps-per-epoch 2); TORCH=(--device cpu --steps 2); GROUP=3
else
  [ -d /tmp/site/keras ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  EPOCHS=(); BENCH=(--steps 100 --repeats 2); TUNE=(--max-trials 4 --epochs 3)
  TORCH=(--device cuda --steps 100 --repeats 2); GROUP=27  # 351 steps an epoch = 13 x 27
fi
DATA=${DATA:-}
if [ -z "$DATA" ]; then
  [ -d /tmp/data/cifar10-jpeg ] || { mkdir -p /tmp/data && tar -xzf .data/cifar10-jpeg.tar.gz -C /tmp/data; }
  DATA=/tmp/data/cifar10-jpeg
fi
{ nvidia-smi -L; python3 -c 'import sys, jax, keras; print(sys.version.split()[0], "jax", jax.__version__, jax.devices(), "keras", keras.__version__); import importlib.util as u; print("tensorflow installed:", u.find_spec("tensorflow") is not None)'; } 2>&1 | tee -a "$OUT/log.txt"

bench() {
  local precision=$1 want=$2 reserve=$3 start; start=$(date +%s); shift 3
  timeout "$(limit "$want" "$reserve")" python3 -m keras_resnet.bench --variant $VARIANT \
    --batch-size 128 --precision "$precision" --skip-inference "${BENCH[@]}" "$@" \
    2>>"$OUT/log.txt" | tail -1 >> "$OUT/results.jsonl"
  log "bench $precision $* rc=${PIPESTATUS[0]} in $(( $(date +%s) - start ))s (process)"
}

if [ "$PART" != 2 ]; then
  log "1. train.py --variant $VARIANT (paper recipe)"
  timeout "$(limit 380 130)" python3 train.py --variant $VARIANT --data-dir "$DATA" \
    --output /tmp/run-efficient "${EPOCHS[@]}" > "$OUT/train.log" 2>&1
  log "train rc=$?"
  cp /tmp/run-efficient/history.csv "$OUT/history.csv" 2>/dev/null
  cp /tmp/run-efficient/metrics.json "$OUT/metrics.json" 2>/dev/null
  log "2. bench $VARIANT, the paper's batch 128: bf16 then fp16 (each compiles anew)"
  bench mixed_bfloat16 65 65
  bench mixed_float16 65 0
fi
if [ "$PART" != 1 ]; then
  log "3. PyTorch, same network and batch (bf16 autocast, eager)"
  timeout "$(limit 30 110)" python3 benchmarks/torch_reference.py --variant $VARIANT \
    --batch-size 128 --precisions bf16_autocast "${TORCH[@]}" 2>>"$OUT/log.txt" | tail -1 \
    >> "$OUT/results.jsonl"
  log "torch rc=${PIPESTATUS[0]}"
  log "4. bench bf16 again: the same configuration, compiled from the cache"
  bench mixed_bfloat16 35 150
  log "4b. bench fp16, $GROUP steps per compiled call (GroupedSteps: one dispatch per $GROUP steps)"
  bench mixed_float16 65 90 --steps-per-execution $GROUP
  log "5. tuner on tiny"
  timeout "$(limit 150 0)" python3 -m tuner --variant tiny --data-dir "$DATA" \
    --output /tmp/tune "${TUNE[@]}" > "$OUT/tuner.log" 2>&1
  log "tuner rc=$?"
  tail -1 "$OUT/tuner.log" >> "$OUT/results.jsonl"
fi
log "done"
