"""Localisation evaluation of a grounder on MVTec-AD-layout folders (per category and overall)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from inspector_agent.evaluation import metrics
from inspector_agent.evaluation.breakdown import defect_type_metrics
from inspector_agent.evaluation.mvtec import Category, find_categories
from inspector_agent.geometry import box_to_mask
from inspector_agent.grounding.base import Grounder, GroundingRequest, ReferenceSet
from inspector_agent.imaging import load_image
from inspector_agent.schema import InspectionResult

EXAMPLE_ROWS = 6  # rows of a category's example figure: a good part, then each defect type
METRIC_NAMES = (
    "image_auroc",
    "pixel_auroc",
    "aupro",
    "box_miou",
    "box_acc_iou30",
    "f1",
    "latency_ms_median",
)


@dataclass
class CategoryRun:
    """Everything one category's evaluation produced (kept for plots)."""

    name: str
    metrics: dict[str, float]
    labels: np.ndarray
    scores: np.ndarray
    examples: list[dict[str, Any]] = field(default_factory=list)
    defect_types: dict[str, dict[str, float]] | None = None


def _shows_a_new_kind(kind: str, examples: list[dict[str, Any]], rows: int) -> bool:
    """Whether an image of ``kind`` joins the examples: one good part and one image of each
    defect type, ``rows`` in all (the good part's row kept free)."""
    kinds = {e["kind"] for e in examples}
    if kind in kinds:
        return False
    return kind == "good" or len(kinds - {"good"}) < rows - 1


def predicted_mask(result: InspectionResult, shape: tuple[int, ...]) -> np.ndarray:
    """The result's predicted mask; a box-only answer (the model grounders) as its boxes filled."""
    if result.pred_mask is not None:
        return result.pred_mask
    mask = np.zeros(shape, bool)
    for defect in result.defects:
        mask |= box_to_mask(defect.box, shape[0], shape[1])
    return mask


def evaluate_category(
    category: Category,
    grounder: Grounder,
    shots: int,
    seed: int,
    keep_examples: int = 0,
    by_defect: bool = False,
) -> CategoryRun:
    """Inspect every test image of ``category`` with ``shots`` references and score the results
    (``by_defect``: also per defect type, see :mod:`inspector_agent.evaluation.breakdown`)."""
    refs = ReferenceSet(category.name, category.references(shots, seed))
    if hasattr(grounder, "memory_bank"):  # build the bank first: latency is per query, cached
        grounder.memory_bank(refs.paths)
    labels, scores, verdicts, latencies = [], [], [], []
    gt_masks, maps, pred_masks = [], [], []
    examples: list[dict[str, Any]] = []
    for sample in tqdm(category.test, desc=category.name, unit="img", leave=False):
        image = load_image(sample.path)
        start = time.perf_counter()
        result = grounder.ground(
            GroundingRequest(query=image, references=refs, query_name=sample.path.name)
        )
        latencies.append((time.perf_counter() - start) * 1000.0)
        gt = sample.load_mask(image.size)
        amap = (
            result.anomaly_map if result.anomaly_map is not None else np.zeros(gt.shape, np.float32)
        )
        pmask = predicted_mask(result, gt.shape)
        labels.append(sample.is_anomalous)
        scores.append(result.pred_score)
        verdicts.append(result.pred_label)
        gt_masks.append(gt)
        maps.append(amap)
        pred_masks.append(pmask)
        if keep_examples and _shows_a_new_kind(sample.defect, examples, keep_examples):
            examples.append(
                {
                    "path": sample.path,
                    "image": image,
                    "result": result,
                    "gt": gt,
                    "kind": sample.defect,
                }
            )
    y, s = np.array(labels, bool), np.array(scores, float)
    defect = [i for i, a in enumerate(labels) if a]
    values = {
        "image_auroc": metrics.auroc(y, s),
        "pixel_auroc": metrics.auroc(
            np.concatenate([m.ravel() for m in gt_masks]), np.concatenate([m.ravel() for m in maps])
        ),
        "aupro": metrics.aupro(gt_masks, maps),
        **metrics.box_scores([pred_masks[i] for i in defect], [gt_masks[i] for i in defect]),
        "f1": metrics.f1_score(y, np.array(verdicts, bool)),
        "latency_ms_median": float(np.median(latencies)),
    }
    examples.sort(key=lambda e: e["kind"] != "good")  # a good part first, then each defect type
    run = CategoryRun(category.name, {k: values[k] for k in METRIC_NAMES}, y, s, examples)
    if by_defect:
        types = [sample.defect for sample in category.test]
        run.defect_types = defect_type_metrics(types, s, verdicts, gt_masks, maps, pred_masks)
    return run


def overall(runs: list[CategoryRun]) -> dict[str, float]:
    """Mean of each metric over categories (NaN values ignored)."""
    out = {}
    for name in METRIC_NAMES:
        vals = [r.metrics[name] for r in runs if np.isfinite(r.metrics[name])]
        out[name] = float(np.mean(vals)) if vals else float("nan")
    return out


def evaluate(
    data_dir: Path,
    grounder: Grounder,
    categories: list[str] | None = None,
    shots: int = 4,
    seed: int = 0,
    plots_dir: Path | None = None,
    by_defect: bool = False,
) -> dict[str, Any]:
    """The JSON report ``{"categories": {...}, "overall": {...}, "config": {...}}``, plus
    ``"defect_types": {category: {type: {...}}}`` when ``by_defect`` is set."""
    found = find_categories(Path(data_dir), categories)
    runs = [
        evaluate_category(c, grounder, shots, seed, EXAMPLE_ROWS if plots_dir else 0, by_defect)
        for c in found
    ]
    if plots_dir is not None:
        from inspector_agent.evaluation.plots import save_plots

        save_plots(runs, Path(plots_dir))
    config = {
        "data_dir": str(data_dir),
        "categories": [c.name for c in found],
        "shots": shots,
        "seed": seed,
        "grounder": getattr(grounder, "name", type(grounder).__name__),
        "box_metrics": "per defect image: each ground-truth component box takes its best IoU "
        "over predicted-mask component boxes; image value = mean over its boxes; "
        "box_miou = mean over images, box_acc_iou30 = mean share of boxes with IoU >= 0.3",
        "aupro_fpr_limit": 0.3,
    }
    unmasked = [c.name for c in found if not c.has_masks]
    if unmasked:  # no ground truth: image metrics only
        config["without_masks"] = unmasked
    if hasattr(grounder, "config"):
        from dataclasses import asdict, is_dataclass

        if is_dataclass(grounder.config):
            config["grounder_config"] = asdict(grounder.config)
    report = {
        "categories": {r.name: r.metrics for r in runs},
        "overall": overall(runs),
        "config": config,
    }
    if by_defect:
        report["defect_types"] = {r.name: r.defect_types for r in runs}
    return report
