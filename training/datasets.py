"""Training rows for TRL: MVTec pairs, MMAD multiple choice, synthetic anomalies, corrections.

Every row has a conversational ``prompt`` (image placeholders, references first, query last),
``images``, and the solution columns the rewards read: ``anomaly``, ``boxes`` (in the pixels of
the image the model receives), ``labels``, ``option`` and ``solution`` (the SFT target).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from inspector_agent.answer import format_answer
from inspector_agent.errors import InspectorError
from inspector_agent.evaluation.mvtec import find_categories
from inspector_agent.geometry import Box, boxes_from_mask
from inspector_agent.imaging import load_image
from inspector_agent.prompts import DEFAULT_QUESTION, build_messages, build_mmad_messages
from training.synthetic import LABELS, good_image, synthesize

FEATURES = Features(
    {
        "prompt": List(
            {
                "role": Value("string"),
                "content": List({"type": Value("string"), "text": Value("string")}),
            }
        ),
        "images": List(Image()),
        "anomaly": Value("bool"),
        "boxes": List(List(Value("float32"))),
        "labels": List(Value("string")),
        "option": Value("string"),
        "solution": Value("string"),
        "task": Value("string"),
    }
)


class DatasetError(InspectorError):
    """Training data that cannot be read, with the file and the reason."""


def _placeholders(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages with image payloads replaced by bare ``{"type": "image"}`` placeholders."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = [
            {"type": "image", "text": None}
            if p.get("type") == "image"
            else {"type": "text", "text": p.get("text", "")}
            for p in content
        ]
        out.append({"role": message["role"], "content": parts})
    return out


def think_for(anomaly: bool, labels: Sequence[str]) -> str:
    """A short reasoning whose conclusion matches the answer (so ROAM credits the SFT target)."""
    if not anomaly:
        return "The query matches the reference. The part is normal."
    return f"The query differs from the reference: {', '.join(sorted(set(labels)))}. The part is defective."


def grounding_row(
    references: Sequence[PILImage.Image],
    query: PILImage.Image,
    boxes: Sequence[Box],
    labels: Sequence[str],
    *,
    anomaly: bool | None = None,
    question: str = DEFAULT_QUESTION,
    knowledge: Sequence[str] = (),
    compact: bool = False,
) -> dict[str, Any]:
    """One grounding row; ``boxes`` are in original query pixels and mapped to model space."""
    bundle = build_messages(list(references), query, question, list(knowledge), compact=compact)
    model_boxes = [bundle.query_map.to_model(b) for b in boxes]
    anomaly = bool(model_boxes) if anomaly is None else anomaly
    return {
        "prompt": _placeholders(bundle.messages),
        "images": bundle.images,
        "anomaly": anomaly,
        "boxes": [b.to_list() for b in model_boxes],
        "labels": list(labels),
        "option": None,
        "solution": format_answer(
            anomaly, list(zip(labels, model_boxes, strict=True)), think_for(anomaly, labels)
        ),
        "task": "grounding",
    }


def to_dataset(rows: Sequence[dict[str, Any]]) -> Dataset:
    """A Hugging Face dataset with the shared training columns."""
    if not rows:
        raise DatasetError("no training rows were built (empty or unreadable source)")
    return Dataset.from_list(list(rows), features=FEATURES)


def mvtec_pairs(
    data_dir: str | Path, categories: list[str] | None = None, shots: int = 1, seed: int = 0
) -> list[dict[str, Any]]:
    """Reference/query rows from MVTec-AD-layout folders: boxes from mask components."""
    try:
        found = find_categories(Path(data_dir), categories)
    except FileNotFoundError as exc:
        raise DatasetError(str(exc)) from None
    rows = []
    for category in found:
        references = [load_image(p) for p in category.references(shots, seed)]
        for sample in category.test:
            query = load_image(sample.path)
            boxes = boxes_from_mask(sample.load_mask(query.size)) if sample.is_anomalous else []
            labels = [sample.defect.replace("_", " ")] * len(boxes)
            rows.append(
                grounding_row(references, query, boxes, labels, anomaly=sample.is_anomalous)
            )
    return rows


def synthetic_pairs(
    count: int,
    *,
    size: int = 112,
    kinds: Sequence[str] = ("stain", "patch", "scratch"),
    normal_fraction: float = 0.5,
    seed: int = 0,
    goods: Sequence[PILImage.Image] = (),
    compact: bool = False,
    jitter: float = 40.0,
) -> list[dict[str, Any]]:
    """``count`` rows on good images (given, or generated with base colour jitter ``jitter``),
    with exact masks; half normal by default."""
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        reference = goods[index % len(goods)] if goods else good_image(size, rng, jitter)
        query = reference.copy()
        if index >= round(count * normal_fraction):
            kind = str(kinds[index % len(kinds)])
            query, mask = synthesize(reference, kind, rng)
            boxes = boxes_from_mask(mask)
            labels = [LABELS[kind]] * len(boxes)
            rows.append(grounding_row([reference], query, boxes, labels, compact=compact))
        else:
            rows.append(grounding_row([reference], query, [], [], anomaly=False, compact=compact))
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def mmad_records(
    mmad_json: str | Path, image_root: str | Path, limit: int | None = None
) -> list[dict[str, Any]]:
    """Multiple-choice rows from MMAD's ``mmad.json`` (one-shot: first template as reference)."""
    root = Path(image_root)
    try:
        records = json.loads(Path(mmad_json).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{mmad_json}: cannot read MMAD records ({exc})") from None
    rows = []
    for key, record in records.items():
        query = load_image(root / record.get("image_path", key))
        templates = record.get("templates") or []
        if not templates:
            raise DatasetError(f"{mmad_json}: record {key} has no template image")
        template = load_image(root / templates[0])
        for turn in record.get("conversation", []):
            bundle = build_mmad_messages(template, query, turn["Question"], turn["Options"])
            rows.append(
                {
                    "prompt": _placeholders(bundle.messages),
                    "images": bundle.images,
                    "anomaly": None,
                    "boxes": None,
                    "labels": [],
                    "option": turn["Answer"],
                    "solution": f"<think>The answer is {turn['Answer']}.</think><answer>{turn['Answer']}</answer>",
                    "task": f"mmad/{turn.get('type', 'question')}",
                }
            )
            if limit is not None and len(rows) >= limit:
                return rows
    return rows


def correction_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows from supervisors' corrections exported by the app (JSONL, boxes in original pixels)."""
    rows = []
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read corrections ({exc.strerror})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            query = load_image(item["image_path"])
            references = [load_image(p) for p in item["reference_paths"]]
            boxes = [Box(*map(float, d["bbox"])) for d in item["defects"]]
            labels = [str(d["label"]) for d in item["defects"]]
            anomaly = bool(item["anomaly"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: not a correction record ({exc})") from None
        rows.append(grounding_row(references, query, boxes, labels, anomaly=anomaly))
    return rows
