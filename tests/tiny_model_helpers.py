"""Test helpers for the model grounders: synthetic parts and forcing the tiny model's answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from transformers import AutoTokenizer

BLOB = (60, 40, 84, 64)  # where the synthetic defect is drawn, original pixels


def part_image(seed: int, defect: bool = False, size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A grey textured part; with ``defect`` a dark blob at :data:`BLOB`."""
    rng = np.random.default_rng(seed)
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    base = 128 + 30 * np.sin(xx / 6.0) * np.cos(yy / 9.0) + rng.normal(0, 4, (height, width))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).convert("RGB")
    if defect:
        ImageDraw.Draw(image).ellipse(BLOB, fill=(15, 10, 10))
    return image


def write_references(folder: Path, count: int = 3) -> list[Path]:
    """``count`` good parts saved as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"good_{index}.png"
        part_image(100 + index).save(path)
        paths.append(path)
    return paths


def forcing_bias(model_dir: Path, text: str) -> dict[str, Any]:
    """``generate()`` options that make greedy decoding of the tiny model write ``text``.

    Each prefix of the target's tokens biases its next token more than any shorter prefix,
    so the real model, processor and decoding path produce exactly ``text`` then stop.
    """
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = [*tokenizer(text).input_ids, tokenizer.convert_tokens_to_ids("<|im_end|>")]
    return {"sequence_bias": [[ids[: k + 1], 50.0 * (k + 1)] for k in range(len(ids))]}


YES_NO = {"A": "Yes.", "B": "No."}
KINDS = {"A": "Crack.", "B": "Scratch.", "C": "Stain.", "D": "Hole."}


def write_mmad(root: Path) -> Path:
    """Two subsets, normal and defective queries, two task types; gold letters chosen by hand."""
    records = {}
    plan = [  # subset, image, defective, discrimination gold, classification gold
        ("MVTec-AD", "bottle/test/broken/000.png", True, "A", "A"),
        ("MVTec-AD", "bottle/test/good/001.png", False, "B", None),
        ("MVTec-AD", "bottle/test/good/002.png", False, "B", None),
        ("VisA", "pcb/test/bad/003.png", True, "A", "C"),
    ]
    for index, (subset, rel, defective, gold, kind) in enumerate(plan):
        key = f"{subset}/{rel}"
        part_image(index, defective).save(_mk(root / key))
        templates = [f"{subset}/good/{index}_{k}.png" for k in range(2)]
        for k, template in enumerate(templates):
            part_image(50 + k).save(_mk(root / template))
        turns = [
            {
                "type": "Anomaly Detection",
                "Question": "Is there any defect?",
                "Options": YES_NO,
                "Answer": gold,
            }
        ]
        if kind:
            turns.append(
                {
                    "type": "Defect Classification",
                    "Question": "Which defect?",
                    "Options": KINDS,
                    "Answer": kind,
                }
            )
        records[key] = {"image_path": key, "random_templates": templates, "conversation": turns}
    path = root / "mmad.json"
    path.write_text(json.dumps(records))
    return path


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
