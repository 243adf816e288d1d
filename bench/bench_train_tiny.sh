#!/usr/bin/env bash
# Tiny end-to-end training benchmark on CPU: build the tiny Qwen2.5-VL (rotary base 10), SFT warm
# start (800 x 16: format, verdict and boxes), GRPO with our rewards (80 steps, difficulty
# weighting + regeneration, temperature 0.7), greedy evaluation on 50 held-out synthetic pairs.
# Targets (issue #6): whole run <= 20 min on 2 cores; after SFT format >= 0.95 and verdict >= 0.9;
# after GRPO iou_anomalous >= fixed_box_iou + 0.1 and verdict not below its SFT value.
# Writes OUT/eval.json (after_sft, after_grpo, fixed_box_iou), OUT/metrics.jsonl, OUT/rewards.png,
# and the sft/ and grpo/ checkpoints with their prompt style (serve grpo/ with the local grounder
# or vLLM: `inspector eval localization DIR --grounder local --model OUT/grpo`).
# Usage: bench/bench_train_tiny.sh [OUT_DIR] [key=value overrides of training/recipes/tiny-cpu.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/bench-tiny}"
shift || true
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)
.venv/bin/python -m training.train --config training/recipes/tiny-cpu.yaml output_dir="$out" "$@"
echo "wall time: $(( $(date +%s) - start )) s; results in $out/eval.json, curves in $out/rewards.png"
