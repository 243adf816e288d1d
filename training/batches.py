"""Turn dataset rows into model inputs with the processor's chat template (prompts, SFT targets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.functional import pad
from transformers import BatchFeature, ProcessorMixin
from trl.data_utils import prepare_multimodal_messages


def prompt_text(processor: ProcessorMixin, row: dict[str, Any]) -> str:
    """The chat-templated prompt of a row, ending with the assistant turn's opening."""
    messages = prepare_multimodal_messages(row["prompt"], row["images"])
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode_prompts(processor: ProcessorMixin, rows: Sequence[dict[str, Any]]) -> BatchFeature:
    """Left-padded prompts with their images, ready for ``generate``."""
    processor.tokenizer.padding_side = "left"
    return processor(
        text=[prompt_text(processor, r) for r in rows],
        images=[list(r["images"]) for r in rows],
        return_tensors="pt",
        padding=True,
    )


def encode_sft(processor: ProcessorMixin, rows: Sequence[dict[str, Any]]) -> BatchFeature:
    """Right-padded prompt + ``solution`` sequences; ``labels`` cover only the answer and its end.

    The processor sees the whole sequence, so ``mm_token_type_ids`` span the answer too and the
    model trains with the same M-RoPE positions it generates with.
    """
    processor.tokenizer.padding_side = "right"
    end = processor.tokenizer.eos_token or "<|im_end|>"
    prompts = [prompt_text(processor, r) for r in rows]
    images = [list(r["images"]) for r in rows]
    batch = processor(
        text=[p + r["solution"] + end for p, r in zip(prompts, rows, strict=True)],
        images=images,
        return_tensors="pt",
        padding=True,
    )
    prompt_lengths = [
        int(processor(text=[p], images=[im], return_tensors="pt")["input_ids"].shape[1])
        for p, im in zip(prompts, images, strict=True)
    ]
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    for i, length in enumerate(prompt_lengths):
        labels[i, :length] = -100
    batch["labels"] = labels
    return batch


def collate(encoded: Sequence[BatchFeature], pad_id: int) -> dict[str, torch.Tensor]:
    """Single-row encodings (``encode_sft(processor, [row])``) joined into one right-padded batch."""
    length = max(int(e["input_ids"].shape[1]) for e in encoded)
    fill = {"input_ids": pad_id, "labels": -100}
    batch = {}
    for key in encoded[0]:
        if key in ("pixel_values", "image_grid_thw"):  # flattened per image, not per sequence
            batch[key] = torch.cat([e[key] for e in encoded])
        else:
            pads = [(0, length - int(e[key].shape[1])) for e in encoded]
            batch[key] = torch.cat(
                [pad(e[key], p, value=fill.get(key, 0)) for e, p in zip(encoded, pads, strict=True)]
            )
    return batch


def to_device(batch: BatchFeature, device: torch.device | str) -> dict[str, torch.Tensor]:
    """Tensors of a batch on ``device``."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
