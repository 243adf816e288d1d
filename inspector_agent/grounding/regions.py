"""Defect regions of an anomaly map: the strongest responses, outlined whatever their scale."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from inspector_agent.geometry import convex_hull_mask, mask_components


def outline(
    amap: np.ndarray,
    region_fraction: float,
    peak_fraction: float,
    max_regions: int,
    prominence_window: float,
) -> np.ndarray:
    """Boolean mask of the most anomalous regions of ``amap`` (scale-free).

    The map's median is its normal level. Candidate regions lie above ``region_fraction`` of
    the way from that level to the global peak. The region of the global peak is kept, and the
    other ``max_regions - 1`` that stand highest above their surroundings (the map minus its
    grey opening, ``prominence_window`` of the shorter side wide): a lone defect on a quiet part
    outranks a crest of a rough backdrop (a glinting cloth) that is as high but no higher than
    its neighbours. Each is cut at ``peak_fraction`` of the way to its own peak, so a box
    follows the blob around each maximum rather than a fixed calibrated level (which misses
    most real defects whose maps stay below the references' extreme quantile). Where one
    region's cut leaves several pieces (the rim of a large uniform defect lights up, its inside
    matches plain surface), the region is outlined by the convex hull of the whole candidate
    region, which holds the rest of the rim too, not only of the pieces above the cut.
    """
    eight = np.ones((3, 3), bool)
    base, peak = float(np.median(amap)), float(amap.max())
    if not peak > base:
        return np.zeros(amap.shape, bool)
    labels, n = ndimage.label(amap >= base + region_fraction * (peak - base), eight)
    index = np.arange(1, n + 1)
    peaks = np.asarray(ndimage.maximum(amap, labels, index), float)
    keep = np.zeros(n + 1, bool)
    if n <= max_regions:  # every region is kept: no ranking needed
        keep[1:] = True
    else:
        side = max(3, int(prominence_window * min(amap.shape)) | 1)
        prominence = amap - ndimage.grey_opening(amap, size=(side, side))
        rank = np.asarray(ndimage.maximum(prominence, labels, index), float)
        rank[np.argmax(peaks)] = np.inf  # the strongest response is always outlined
        keep[np.argsort(-rank)[:max_regions] + 1] = True
    own = np.r_[np.inf, peaks][labels]
    cores = keep[labels] & (amap >= base + peak_fraction * (own - base))
    mask = cores.copy()  # hulls go here, so one region's hull never joins another's pieces
    for region in np.flatnonzero(keep):
        if mask_components(cores & (labels == region))[1] > 1:
            mask |= convex_hull_mask(labels == region)
    return mask
