#!/usr/bin/env bash
# Issue 23's levers, one at a time against the shipped candidate's recipe (`edge_seeds.sh`:
# blocks 1,2,1 x 16,32,48, SGD Nesterov one-cycle to 0.2, batch 128, label smoothing 0.1,
# crop and flip, 15 epochs on ONE core), each changing one thing, seed 0, in the same hour:
#
#   benchmarks/edge_levers.sh b512 both    both cores at batch 512 (1.5x the images an hour,
#                                          `edge_cpu_levers.md`): 24 epochs, one-cycle to 0.4
#   benchmarks/edge_levers.sh ls0 1        label smoothing off (core 1)
#   benchmarks/edge_levers.sh lookahead 0  Lookahead (k=5, alpha=0.5) around the SGD (core 0)
#
# The second argument is the core (`both`: no pinning, TensorFlow's default threads). Rerun
# the same line to resume a killed run. Rows go to benchmarks/results/edge_levers.json (.md
# and the accuracy-against-minutes plot beside it); run folders to runs/edge/levers/.
set -euo pipefail
LEVER=${1:?usage: edge_levers.sh b512|ls0|lookahead CORE|both}
CORE=${2:-1}
DATA=${DATA_DIR:-data/cifar10-jpeg}
RESULTS=${RESULTS:-benchmarks/results/edge_levers.json}
export TF_CPP_MIN_LOG_LEVEL=3
PIN=()
if [[ $CORE != both ]]; then
  export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
  PIN=(taskset -c "$CORE")
fi
# The candidate's row of edge_seeds.sh; each lever overrides one part of it (argparse keeps
# the last value given).
source "$(dirname "$0")/edge_recipe.sh"
BASE=(--config benchmarks/edge_blocks_1_2_1.json "${OURS[@]}" --epochs 15)
case $LEVER in
  b512) NAME=blocks_1_2_1_b512; CHANGE=(--batch-size 512 --learning-rate 0.4 --epochs 24) ;;
  ls0) NAME=blocks_1_2_1_ls0; CHANGE=(--label-smoothing 0) ;;
  lookahead) NAME=blocks_1_2_1_lookahead; CHANGE=(--lookahead) ;;
  *) echo "edge_levers.sh: unknown lever $LEVER; expected b512, ls0 or lookahead" >&2; exit 2 ;;
esac
"${PIN[@]}" python -m keras_resnet.reproduce resnet8 --name "$NAME" --seeds 0 --tflm --tta \
  --data-dir "$DATA" --results "$RESULTS" --output "runs/edge/levers/$NAME" \
  "${BASE[@]}" "${CHANGE[@]}"
