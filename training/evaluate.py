"""Greedy evaluation of a checkpoint on held-out grounding rows, and the blind fixed-box baseline."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, ProcessorMixin

from inspector_agent.answer import parse_answer
from inspector_agent.geometry import MODEL, Box, iou
from inspector_agent.schema import ParseStatus
from training.batches import encode_prompts, to_device


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    rows: Sequence[dict[str, Any]],
    max_new_tokens: int = 96,
    batch_size: int = 16,
) -> list[str]:
    """Greedy completions for ``rows``."""
    model.eval()
    device = next(model.parameters()).device
    texts: list[str] = []
    for start in range(0, len(rows), batch_size):
        batch = to_device(encode_prompts(processor, rows[start : start + batch_size]), device)
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[:, batch["input_ids"].shape[1] :]
        texts.extend(processor.batch_decode(new, skip_special_tokens=True))
    return texts


def _truths(row: dict[str, Any]) -> list[Box]:
    return [Box(*b, space=MODEL) for b in row["boxes"] or []]


def best_box_iou(preds: Sequence[Box], truths: Sequence[Box]) -> float:
    """The highest IoU between any predicted and any true box (0 without predictions)."""
    return max((iou(p, t) for p in preds for t in truths), default=0.0)


def score(rows: Sequence[dict[str, Any]], texts: Sequence[str]) -> dict[str, float]:
    """``format_rate``, ``verdict_accuracy`` and ``iou_anomalous`` (mean best-box IoU)."""
    parsed = [parse_answer(t) for t in texts]
    formatted = [p.status == ParseStatus.OK for p in parsed]
    right = [
        p.anomaly is not None and p.anomaly == bool(r["anomaly"])
        for p, r in zip(parsed, rows, strict=True)
    ]
    ious = [
        best_box_iou([d.box for d in p.defects], _truths(r))
        for p, r in zip(parsed, rows, strict=True)
        if r["anomaly"]
    ]
    return {
        "format_rate": float(np.mean(formatted)),
        "verdict_accuracy": float(np.mean(right)),
        "iou_anomalous": float(np.mean(ious)) if ious else 0.0,
    }


def fixed_box_iou(rows: Sequence[dict[str, Any]], size: int, steps: int = 16) -> float:
    """IoU of the best image-independent box on the anomalous rows (what a blind model can get)."""
    truths = [_truths(r) for r in rows if r["anomaly"]]
    if not truths:
        return 0.0
    grid = np.linspace(0, size, steps + 1)
    best = 0.0
    for x1, x2 in itertools.combinations(grid, 2):
        for y1, y2 in itertools.combinations(grid, 2):
            box = Box(x1, y1, x2, y2, space=MODEL)
            best = max(best, float(np.mean([best_box_iou([box], t) for t in truths])))
    return best
