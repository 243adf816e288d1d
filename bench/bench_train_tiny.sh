#!/usr/bin/env bash
# Tiny end-to-end training benchmark on CPU: build the tiny Qwen2.5-VL, SFT warm start, GRPO with
# our rewards (difficulty weighting + regeneration), greedy evaluation on held-out synthetic pairs.
# Writes OUT/eval.json (after_sft, after_grpo, fixed_box_iou), OUT/metrics.jsonl, OUT/rewards.png,
# and the sft/ and grpo/ checkpoints (serve grpo/ with the local grounder or vLLM).
# Usage: bench/bench_train_tiny.sh [OUT_DIR] [key=value overrides of training/recipes/tiny-cpu.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/bench-tiny}"
shift || true
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)
.venv/bin/python -m training.train --config training/recipes/tiny-cpu.yaml output_dir="$out" "$@"
echo "wall time: $(( $(date +%s) - start )) s; results in $out/eval.json, curves in $out/rewards.png"
