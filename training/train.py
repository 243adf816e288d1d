"""Entry point: ``python -m training.train --config RECIPE [key=value ...]``.

Stages: data, optional tiny model, SFT warm start, difficulty-aware GRPO, greedy evaluation.
Writes ``sft/`` and ``grpo/`` checkpoints (loadable by ``AutoModelForImageTextToText`` and vLLM,
with the prompt style they were trained with in ``inspector_prompt.json`` for the grounders),
``metrics.jsonl``, ``rewards.png`` and ``eval.json`` under ``output_dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from inspector_agent.atomic_files import check_output_folder
from inspector_agent.errors import InspectorError
from inspector_agent.prompts import save_prompt_style
from training.config import RecipeError, TrainConfig, load_config
from training.datasets import (
    DatasetError,
    correction_rows,
    mmad_records,
    mvtec_pairs,
    synthetic_pairs,
    to_dataset,
)
from training.evaluate import fixed_box_iou, generate, score
from training.plots import plot_rewards


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and echoes a short line."""

    def __init__(self, path: Path) -> None:
        """Start a fresh log at ``path``."""
        self.path = path
        path.write_text("", "utf-8")

    def __call__(self, record: dict[str, Any]) -> None:
        """Write one record."""
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        print(
            " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()
            )
        )


def build_rows(config: TrainConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Training rows from the configured source, and held-out synthetic evaluation rows."""
    synthetic = dict(
        size=config.image_size,
        kinds=config.kinds,
        normal_fraction=config.normal_fraction,
        compact=config.compact_prompt,
        jitter=config.good_jitter,
    )
    eval_rows = synthetic_pairs(config.eval_count, seed=config.seed + 10_000, **synthetic)
    if config.data == "synthetic":
        train = synthetic_pairs(config.train_count, seed=config.seed, **synthetic)
    elif config.data == "mvtec":
        train = mvtec_pairs(config.data_path, seed=config.seed)
    elif config.data == "mmad":
        train = mmad_records(config.data_path, config.image_root or Path(config.data_path).parent)
    else:
        train = correction_rows(config.data_path)
    if not train:
        raise DatasetError(f"{config.data_path}: no training rows in it")
    return train, eval_rows


def curriculum(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ordered from large to small total defect area, normal rows interleaved evenly."""
    normal = [r for r in rows if not r["anomaly"]]
    anomalous = sorted(
        (r for r in rows if r["anomaly"]),
        key=lambda r: -sum((b[2] - b[0]) * (b[3] - b[1]) for b in r["boxes"] or []),
    )
    out, stride = [], max(1, round(len(anomalous) / max(1, len(normal))))
    for i, row in enumerate(anomalous):
        out.append(row)
        if normal and (i + 1) % stride == 0:
            out.append(normal.pop())
    return out + normal


def load_model(config: TrainConfig, out: Path) -> tuple[Any, Any, str]:
    """The starting model and processor (building the tiny model when asked) and its path."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = config.model
    if path == "tiny":
        from training.tiny_model import TinySpec, build_tiny_model

        spec = TinySpec(
            layers=config.tiny_layers,
            hidden=config.tiny_hidden,
            rope_theta=config.tiny_rope_theta,
            seed=config.seed,
        )
        path = str(build_tiny_model(out / "base", spec))
    if (Path(path).is_absolute() or path.startswith(".")) and not Path(path).is_dir():
        raise RecipeError(f"model {path}: no such checkpoint folder")
    dtype = torch.bfloat16 if config.bf16 else torch.float32
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
        processor = AutoProcessor.from_pretrained(path)
    except (OSError, ValueError) as exc:  # not found offline, or not a multimodal checkpoint
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecipeError(f"model {path}: cannot load it ({first})") from None
    return model, processor, path


def evaluate_stage(
    model: Any, processor: Any, rows: list[dict[str, Any]], max_tokens: int
) -> dict[str, float]:
    """Greedy metrics of ``model`` on ``rows``."""
    return score(rows, generate(model, processor, rows, max_new_tokens=max_tokens))


def run(config: TrainConfig) -> dict[str, Any]:
    """Run every configured stage; returns what ``eval.json`` holds."""
    out = check_output_folder(config.output_dir, "checkpoints and metrics")
    out.mkdir(parents=True, exist_ok=True)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    torch.manual_seed(config.seed)
    log = MetricsLog(out / "metrics.jsonl")
    started = time.monotonic()
    train_rows, eval_rows = build_rows(config)
    model, processor, base = load_model(config, out)
    report: dict[str, Any] = {"base_model": base, "eval_pairs": len(eval_rows)}
    report["fixed_box_iou"] = fixed_box_iou(eval_rows, config.image_size)
    if config.sft_steps:
        from training.sft import sft_warm_start

        sft_warm_start(
            model, processor, train_rows, steps=config.sft_steps, lr=config.sft_lr,
            batch_size=config.sft_batch_size, seed=config.seed, log=log,
        )  # fmt: skip
        model.save_pretrained(out / "sft")
        processor.save_pretrained(out / "sft")
        save_prompt_style(out / "sft", compact=config.compact_prompt)
        report["after_sft"] = evaluate_stage(
            model, processor, eval_rows, config.max_completion_length
        )
        log({"stage": "eval_sft", **report["after_sft"], "seconds": time.monotonic() - started})
    if config.grpo_steps:
        from training.grpo import run_grpo

        rows = curriculum(train_rows) if config.curriculum else train_rows
        model = run_grpo(config, model, processor, to_dataset(rows), out / "grpo", log)
        report["after_grpo"] = evaluate_stage(
            model, processor, eval_rows, config.max_completion_length
        )
        log({"stage": "eval_grpo", **report["after_grpo"], "seconds": time.monotonic() - started})
    report["seconds"] = round(time.monotonic() - started, 1)
    (out / "eval.json").write_text(json.dumps(report, indent=2), "utf-8")
    plot_rewards(out / "metrics.jsonl", out / "rewards.png")
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line; bad recipes and data give one line and exit code 2."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML recipe (training/recipes/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of recipe fields")
    args = parser.parse_args(argv)
    try:
        report = run(load_config(args.config, args.overrides))
    except InspectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
