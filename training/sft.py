"""SFT warm start on the answer format: a short AdamW loop over the rows' ``solution`` targets."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import PreTrainedModel, ProcessorMixin

from training.batches import collate, encode_sft, to_device


def sft_warm_start(
    model: PreTrainedModel,
    processor: ProcessorMixin,
    rows: Sequence[dict[str, Any]],
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    log: Callable[[dict[str, float]], None] | None = None,
    log_every: int = 10,
) -> float:
    """Train ``steps`` batches of next-token loss on the answers; returns the last mean loss.

    Each row is encoded once (the image processor costs as much as a tiny model's step).
    """
    rng = random.Random(seed)
    encoded: dict[int, Any] = {}
    pad_id = processor.tokenizer.pad_token_id or 0
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, steps // 20)) * max(0.05, 1 - s / steps)
    )
    device = next(model.parameters()).device
    losses: list[float] = []
    start = time.monotonic()
    for step in range(1, steps + 1):
        picked = rng.sample(range(len(rows)), min(batch_size, len(rows)))
        for i in picked:
            if i not in encoded:
                encoded[i] = encode_sft(processor, [rows[i]])
        batch = to_device(collate([encoded[i] for i in picked], pad_id), device)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log is not None and (step % log_every == 0 or step == steps):
            recent = losses[-log_every:]
            log(
                {
                    "stage": "sft",
                    "step": step,
                    "loss": sum(recent) / len(recent),
                    "seconds": time.monotonic() - start,
                }
            )
    model.eval()
    return sum(losses[-log_every:]) / max(1, len(losses[-log_every:]))
