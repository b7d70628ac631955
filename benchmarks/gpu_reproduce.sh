#!/usr/bin/env bash
# One variant's paper reproduction on the lent GPU (JAX, no TensorFlow), one call each:
#
#   benchmarks/gpu_reproduce.sh VARIANT [SEEDS]      e.g. shallow 0,1,2; efficient 0
#
# in order of cost: shallow (30 epochs), narrow_deep (80), reduced, deep, efficient (200).
# From the repo root, with .whl/ (../shared/tools/gpu-wheels.sh) and .data/cifar10-jpeg.tar.gz
# carried (both ignored by git). It runs `python -m keras_resnet.reproduce VARIANT --no-int8`
# (int8 needs TensorFlow, which the GPU machine lacks) against a deadline under the 10-minute
# call, and brings back in $OUT: log.txt, reproduce.log, bench.jsonl and run.tar.gz, the run
# folder (with its checkpoints when a seed is unfinished, so a later call can resume it).
# Back on the CPU machine:
#
#   mkdir -p runs/reproduce/VARIANT && tar -xzf FILES_AT/run.tar.gz -C runs/reproduce/VARIANT
#   python -m keras_resnet.reproduce VARIANT --seeds SEEDS --data-dir data/cifar10-jpeg
#
# which skips the finished seeds, adds flip TTA and the int8 model's accuracy, and writes the
# row. For efficient, the call first benches the paper's step (batch 128) in bf16, in fp16,
# and in fp16 with 27 steps per compiled call (GroupedSteps; 351 steps an epoch = 13 x 27),
# so the 200 epochs run with the fastest measured in the same call.
# SMOKE=1 runs it small on a CPU (tiny, 1 epoch; DATA=<image folder> skips the archive).
set -u
VARIANT=${1:?usage: gpu_reproduce.sh VARIANT [SEEDS]}
SEEDS=${2:-0}
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
START=$(date +%s); BUDGET=${BUDGET:-560}
left() { echo $(( START + BUDGET - $(date +%s) - $1 )); }
log() { echo "[$(( $(date +%s) - START ))s] $*" | tee -a "$OUT/log.txt"; }
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax XDG_CACHE_HOME=/tmp/cache
RUN=/tmp/reproduce/$VARIANT
if [ "${SMOKE:-0}" = 1 ]; then
  FLAGS=(--epochs 1 --batch-size 16 --jit on); BENCH=(--steps 3 --warmup-steps 1); GROUP=3
else
  [ -d /tmp/site/keras ] || python3 -m pip install -q --no-index --no-deps --no-compile \
    --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  FLAGS=(); BENCH=(--steps 100 --repeats 2); GROUP=27
fi
DATA=${DATA:-}
if [ -z "$DATA" ]; then
  [ -d /tmp/data/cifar10-jpeg ] || { mkdir -p /tmp/data && tar -xzf .data/cifar10-jpeg.tar.gz -C /tmp/data; }
  DATA=/tmp/data/cifar10-jpeg
fi
{ nvidia-smi -L; python3 -c 'import sys, jax, keras; print(sys.version.split()[0], "jax", jax.__version__, jax.devices(), "keras", keras.__version__)'; } 2>&1 | tee -a "$OUT/log.txt"

if [ "$VARIANT" = efficient ]; then
  best=0; choice=()
  for flags in "--precision mixed_bfloat16" "--precision mixed_float16" \
               "--precision mixed_float16 --steps-per-execution $GROUP"; do
    line=$(timeout 70 python3 -m keras_resnet.bench --variant efficient --skip-inference \
      --batch-size 128 "${BENCH[@]}" $flags 2>>"$OUT/log.txt" | tail -1)
    echo "$line" >> "$OUT/bench.jsonl"
    speed=$(python3 -c 'import json, sys; print(int(json.loads(sys.argv[1])["train_images_per_sec"]))' "$line" 2>/dev/null || echo 0)
    log "bench $flags: $speed images/s"
    (( speed > best )) && { best=$speed; read -ra choice <<< "$flags"; }
  done
  FLAGS+=("${choice[@]}")
fi

log "reproduce $VARIANT seeds $SEEDS ${FLAGS[*]} ($(left 25) s left)"
timeout "$(left 25)" python3 -m keras_resnet.reproduce "$VARIANT" --seeds "$SEEDS" --no-int8 \
  --data-dir "$DATA" --output "$RUN" --results "$OUT/reproduction.json" "${FLAGS[@]}" \
  > "$OUT/reproduce.log" 2>&1
log "reproduce rc=$?"
# A finished seed needs no checkpoints here; an unfinished one needs them to resume.
exclude=(); ls "$RUN"/seed-*/metrics.json >/dev/null 2>&1 && [ -f "$RUN/summary.json" ] && exclude=(--exclude=checkpoints)
tar -czf "$OUT/run.tar.gz" "${exclude[@]}" --exclude=.lock -C "$RUN" . && log "run.tar.gz $(du -h "$OUT/run.tar.gz" | cut -f1)"
log "done"
