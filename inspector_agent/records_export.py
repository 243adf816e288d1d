"""Exports of the inspection log: CSV for quality leads, corrections as training JSONL."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from inspector_agent.atomic_files import write_atomic
from inspector_agent.records import Inspection, RecordStore
from inspector_agent.schema import Verdict

CSV_COLUMNS = (
    "id",
    "ts",
    "user",
    "product_id",
    "serial",
    "lot",
    "verdict",
    "pred_score",
    "defects",
    "grounder",
    "model",
    "latency_ms",
    "image_hash",
    "image_path",
    "feedback",
)


def export_csv(store: RecordStore, path: str | Path, **filters: Any) -> int:
    """Write the history (filters as in :meth:`RecordStore.query`) as CSV; returns the row count."""
    rows = store.query(limit=1_000_000, **filters)

    def write(handle: Any) -> None:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            last = r.feedback[-1] if r.feedback else None
            mark = "" if last is None else ("right" if last["correct"] else "wrong")
            values = {**r.__dict__, "defects": ";".join(r.labels), "feedback": mark}
            writer.writerow([values[c] for c in CSV_COLUMNS])

    write_atomic(path, write, text=True, newline="")
    return len(rows)


def export_corrections_jsonl(
    store: RecordStore, path: str | Path, *, include_confirmed: bool = True
) -> int:
    """Write reviewed inspections as training JSONL (original-pixel boxes); returns the count.

    Each line: ``{"image_path", "reference_paths", "product_id", "anomaly", "defects":
    [{"label", "bbox"}]}``. The latest feedback wins; a confirmed verdict keeps the
    grounder's defects, a correction supplies its own.
    """
    examples = []
    for r in reversed(store.query(limit=1_000_000)):
        if not r.feedback:
            continue
        example = _training_example(r, r.feedback[-1], include_confirmed)
        if example is not None:
            examples.append(example)

    def write(handle: Any) -> None:
        for example in examples:
            handle.write(json.dumps(example) + "\n")

    write_atomic(path, write, text=True)
    return len(examples)


def _training_example(
    r: Inspection, last: dict[str, Any], include_confirmed: bool
) -> dict[str, Any] | None:
    if last["correct"]:
        if not include_confirmed:
            return None
        verdict, defects = r.verdict, r.defects
    else:
        flipped = Verdict.OK.value if r.verdict == Verdict.DEFECTIVE.value else "defective"
        verdict = last["verdict"] or flipped
        defects = last["defects"] if last["defects"] is not None else []
        if verdict == Verdict.OK.value:
            defects = []
    return {
        "image_path": r.image_path,
        "reference_paths": r.reference_paths,
        "product_id": r.product_id,
        "anomaly": verdict == Verdict.DEFECTIVE.value,
        "defects": [{"label": d["label"], "bbox": list(d["bbox"])} for d in defects],
    }
