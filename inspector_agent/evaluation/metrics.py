"""Anomaly-detection metrics: AUROC, ROC curve, AUPRO, box IoU scores and F1 (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inspector_agent.geometry import Box, boxes_from_mask, iou, mask_components


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve (fpr, tpr), one point per distinct score, starting at (0, 0).

    >>> fpr, tpr = roc_curve(np.array([0, 1]), np.array([0.1, 0.9]))
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 1.0], [0.0, 1.0, 1.0])
    """
    labels = np.asarray(labels, dtype=bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    tp, fp = np.cumsum(y), np.cumsum(~y)
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1] if s.size else np.array([], int)
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = np.r_[0.0, fp[last] / n_neg]
    tpr = np.r_[0.0, tp[last] / n_pos]
    return fpr, tpr


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN when only one class is present.

    >>> auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    labels = np.asarray(labels, dtype=bool).ravel()
    if labels.all() or not labels.any():
        return float("nan")
    fpr, tpr = roc_curve(labels, scores)
    return float(np.trapezoid(tpr, fpr))


def aupro(masks: Sequence[np.ndarray], maps: Sequence[np.ndarray], fpr_limit: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``fpr_limit``, divided by it (as anomalib).

    Regions are 8-connected components of each ground-truth mask; the FPR is taken over the
    normal pixels of all images. Each region weighs the same, whatever its size.
    """
    scores, weights, normal = [], [], []
    n_regions = 0
    for mask, amap in zip(masks, maps, strict=True):
        mask = np.asarray(mask, dtype=bool)
        amap = np.asarray(amap, dtype=np.float64)
        labels, n = mask_components(mask)
        w = np.zeros(mask.shape, dtype=np.float64)
        if n:
            sizes = np.bincount(labels.ravel(), minlength=n + 1).astype(np.float64)
            w = np.where(labels > 0, 1.0 / sizes[labels], 0.0)
        n_regions += n
        scores.append(amap.ravel())
        weights.append(w.ravel())
        normal.append(~mask.ravel())
    s, w, neg = np.concatenate(scores), np.concatenate(weights), np.concatenate(normal)
    if n_regions == 0 or not neg.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, w, neg = s[order], w[order], neg[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    fpr = np.r_[0.0, np.cumsum(neg)[last] / neg.sum()]
    pro = np.r_[0.0, np.cumsum(w)[last] / n_regions]
    keep = fpr <= fpr_limit
    f, p = fpr[keep], pro[keep]
    if f[-1] < fpr_limit and keep.sum() < fpr.size:
        i = int(keep.sum())
        t = (fpr_limit - fpr[i - 1]) / (fpr[i] - fpr[i - 1])
        f = np.r_[f, fpr_limit]
        p = np.r_[p, pro[i - 1] + t * (pro[i] - pro[i - 1])]
    return float(np.trapezoid(p, f) / fpr_limit)


def best_box_ious(pred: Sequence[Box], truth: Sequence[Box]) -> list[float]:
    """For each ground-truth box, the best IoU over the predicted boxes (0 when none)."""
    return [max((iou(p, g) for p in pred), default=0.0) for g in truth]


def box_scores(
    pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray], iou_threshold: float = 0.3
) -> dict[str, float]:
    """Box localisation over defect images: ``box_miou`` and ``box_acc_iou30``.

    Ground-truth boxes are the bounding boxes of the 8-connected components of each mask;
    predicted boxes those of the predicted mask. For each defect image, each ground-truth box
    takes its best IoU over the predicted boxes; the image's IoU is the mean over its
    ground-truth boxes and its accuracy the fraction of them with IoU >= ``iou_threshold``.
    Both metrics are means over defect images (images with an empty mask are skipped).
    """
    ious, hits = [], []
    for pred, gt in zip(pred_masks, gt_masks, strict=True):
        truth = boxes_from_mask(np.asarray(gt, dtype=bool))
        if not truth:
            continue
        best = best_box_ious(boxes_from_mask(np.asarray(pred, dtype=bool)), truth)
        ious.append(float(np.mean(best)))
        hits.append(float(np.mean([b >= iou_threshold for b in best])))
    if not ious:
        return {"box_miou": float("nan"), "box_acc_iou30": float("nan")}
    return {"box_miou": float(np.mean(ious)), "box_acc_iou30": float(np.mean(hits))}


def f1_score(labels: np.ndarray, predictions: np.ndarray) -> float:
    """F1 of the positive (defective) class; 0 when there is no true positive.

    >>> f1_score(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]))
    0.5
    """
    y, p = np.asarray(labels, dtype=bool), np.asarray(predictions, dtype=bool)
    tp = int((y & p).sum())
    if tp == 0:
        return 0.0
    return float(2 * tp / (2 * tp + int((~y & p).sum()) + int((y & ~p).sum())))
