"""Box-pair scores for the localisation reward: DifferAD-R1's DCLR and a monotone variant."""

from __future__ import annotations

import math

import numpy as np

from inspector_agent.geometry import Box, iou, match_boxes

MONOTONE_FLOOR = 0.2


def centre_consistency(pred: Box, truth: Box) -> float:
    """1 minus the centre distance over the diagonal of the smallest box enclosing both.

    >>> centre_consistency(Box(0, 0, 2, 2), Box(2, 0, 4, 2))
    0.5527864045000421
    """
    (px, py), (tx, ty) = pred.center, truth.center
    ex1, ey1 = min(pred.x1, truth.x1), min(pred.y1, truth.y1)
    ex2, ey2 = max(pred.x2, truth.x2), max(pred.y2, truth.y2)
    diagonal = math.hypot(ex2 - ex1, ey2 - ey1)
    if diagonal == 0:
        return 1.0
    return max(0.0, 1.0 - math.hypot(px - tx, py - ty) / diagonal)


def area_consistency(pred: Box, truth: Box) -> float:
    """Smaller area over larger area (1 for equal sizes, 0 when either box is empty)."""
    big = max(pred.area, truth.area)
    return min(pred.area, truth.area) / big if big > 0 else 0.0


def dclr(pred: Box, truth: Box) -> float:
    """DCLR: ``IoU + (1 - IoU) * (0.6 * centre + 0.4 * area)``, dense even when boxes miss."""
    overlap = iou(pred, truth)
    shape = 0.6 * centre_consistency(pred, truth) + 0.4 * area_consistency(pred, truth)
    return overlap + (1.0 - overlap) * shape


def monotone(pred: Box, truth: Box) -> float:
    """DCLR's shaping kept only below every overlapping box: never ranks a lower IoU higher.

    A miss scores ``MONOTONE_FLOOR * shape``; any overlap scores ``floor + (1 - floor) * IoU``.
    """
    overlap = iou(pred, truth)
    if overlap > 0:
        return MONOTONE_FLOOR + (1.0 - MONOTONE_FLOOR) * overlap
    shape = 0.6 * centre_consistency(pred, truth) + 0.4 * area_consistency(pred, truth)
    return MONOTONE_FLOOR * shape


PAIR_SCORES = {"dclr": dclr, "monotone": monotone, "iou": iou}


def match_score(preds: list[Box], truths: list[Box], pair: str = "dclr") -> float:
    """Mean pair score over a one-to-one matching; unmatched boxes on either side count 0."""
    if not preds or not truths:
        return 0.0
    scorer = PAIR_SCORES[pair]
    matrix = np.array([[scorer(p, t) for t in truths] for p in preds], dtype=np.float64)
    pairs = match_boxes(preds, truths, score=matrix)
    return float(sum(matrix[i, j] for i, j in pairs) / max(len(preds), len(truths)))
