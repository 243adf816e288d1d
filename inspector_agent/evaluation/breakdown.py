"""Per-defect-type breakdown of a category's evaluation: which kinds of defect a grounder misses.

A category's pixel AUROC weighs every defect pixel alike, so one large defect type can decide
it; its image AUROC mixes easy and hard types. Splitting by the ``test/<defect>`` folder shows
where a method fails and what share of the category's defect pixels each type carries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inspector_agent.evaluation import metrics


def defect_type_metrics(
    types: Sequence[str],
    scores: Sequence[float],
    verdicts: Sequence[bool],
    gt_masks: Sequence[np.ndarray],
    maps: Sequence[np.ndarray],
    pred_masks: Sequence[np.ndarray],
) -> dict[str, dict[str, float]]:
    """Metrics per defect type, each type against the category's good images.

    For a defect type: ``images``; ``image_auroc`` (its images against the good ones);
    ``pixel_auroc`` (pixels of its images and of the good images); ``box_miou`` and
    ``box_acc_iou30`` as in :func:`metrics.box_scores`; ``recall`` (share flagged defective at
    the calibrated threshold); ``defect_pixel_share`` (its share of all defect pixels). For
    ``good``: ``images`` and ``false_alarm_rate``.
    """
    kinds = np.asarray(types)
    s = np.asarray(scores, float)
    flagged = np.asarray(verdicts, bool)
    good = np.flatnonzero(kinds == "good")
    total_defect_pixels = sum(int(np.count_nonzero(m)) for m in gt_masks)
    out: dict[str, dict[str, float]] = {}
    if good.size:
        out["good"] = {"images": int(good.size), "false_alarm_rate": float(flagged[good].mean())}
    for kind in sorted(set(kinds.tolist()) - {"good"}):
        own = np.flatnonzero(kinds == kind)
        both = np.r_[good, own]
        pixels = sum(int(np.count_nonzero(gt_masks[i])) for i in own)
        out[kind] = {
            "images": int(own.size),
            "image_auroc": metrics.auroc(
                np.r_[np.zeros(good.size, bool), np.ones(own.size, bool)], s[both]
            ),
            "pixel_auroc": metrics.auroc(
                np.concatenate([np.ravel(gt_masks[i]) for i in both]),
                np.concatenate([np.ravel(maps[i]) for i in both]),
            ),
            **metrics.box_scores([pred_masks[i] for i in own], [gt_masks[i] for i in own]),
            "recall": float(flagged[own].mean()),
            "defect_pixel_share": pixels / total_defect_pixels
            if total_defect_pixels
            else float("nan"),
        }
    return out
