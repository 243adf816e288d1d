"""Localisation metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inspector_agent.evaluation import metrics


def test_auroc_hand_computed() -> None:
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 3 of 4
    assert metrics.auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


def test_auroc_ties_count_half_and_perfect() -> None:
    assert metrics.auroc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert metrics.auroc(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.9])) == 1.0
    assert math.isnan(metrics.auroc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_roc_curve_points() -> None:
    fpr, tpr = metrics.roc_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]))
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]


def test_aupro_perfect_and_hand_computed() -> None:
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    perfect = mask.astype(float)
    assert metrics.aupro([mask], [perfect]) == pytest.approx(1.0)
    # region pixel scores lowest of all: PRO stays 0 until FPR reaches 1 -> area 0 up to 0.3
    assert metrics.aupro([mask], [1.0 - perfect]) == pytest.approx(0.0)


def test_aupro_region_half_detected() -> None:
    # region of 2 pixels: one scores 1.0 (above all normals), one 0.0 (below all normals).
    # normals score 0.5, so PRO = 0.5 from FPR 0 until FPR 1: normalised area up to 0.3 = 0.5
    mask = np.zeros((2, 5), bool)
    mask[0, :2] = True
    amap = np.full(mask.shape, 0.5)
    amap[0, 0], amap[0, 1] = 1.0, 0.0
    # the curve jumps from (0, 0.5) to (1, 0.5) in one step: interpolated PRO at 0.3 is 0.5
    assert metrics.aupro([mask], [amap]) == pytest.approx(0.5)


def test_aupro_regions_weigh_equally() -> None:
    # two regions (1 px and 3 px) in two images; only the small one is found before any FPR
    m1, m2 = np.zeros((3, 3), bool), np.zeros((3, 3), bool)
    m1[0, 0] = True
    m2[0, :3] = True
    a1, a2 = np.where(m1, 2.0, 1.0), np.where(m2, 0.0, 1.0)
    assert metrics.aupro([m1, m2], [a1, a2]) == pytest.approx(0.5)


def test_box_scores_definition() -> None:
    gt = np.zeros((10, 10), bool)
    gt[0:2, 0:2] = True  # box (0,0,2,2)
    gt[5:10, 5:10] = True  # box (5,5,10,10), area 25
    pred = np.zeros((10, 10), bool)
    pred[5:10, 5:8] = True  # IoU 15/25 = 0.6 with the second box, 0 with the first
    out = metrics.box_scores([pred], [gt])
    assert out["box_miou"] == pytest.approx(0.3)
    assert out["box_acc_iou30"] == pytest.approx(0.5)
    assert math.isnan(metrics.box_scores([pred], [np.zeros_like(gt)])["box_miou"])


def test_f1() -> None:
    assert metrics.f1_score(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])) == 0.5
    assert metrics.f1_score(np.array([1, 0]), np.array([0, 0])) == 0.0
    assert metrics.f1_score(np.array([1, 0]), np.array([1, 0])) == 1.0


def test_defect_type_breakdown_hand_computed() -> None:
    """Two good images, two 'dent' images, one 'scratch' image on 4x4 maps."""
    from inspector_agent.evaluation.breakdown import defect_type_metrics

    empty = np.zeros((4, 4), bool)
    dent = empty.copy()
    dent[0, 0] = True  # one defect pixel, found by the map and the predicted mask
    scratch = empty.copy()
    scratch[2:4, :] = True  # eight defect pixels, the map is flat: not found
    found = np.where(dent, 1.0, 0.0)
    types = ["good", "good", "dent", "dent", "scratch"]
    scores = [0.1, 0.5, 0.4, 0.9, 0.2]
    verdicts = [False, True, False, True, False]
    gts = [empty, empty, dent, dent, scratch]
    maps = [np.zeros((4, 4)), np.zeros((4, 4)), found, found, np.zeros((4, 4))]
    preds = [empty, empty, dent, empty, empty]
    out = defect_type_metrics(types, scores, verdicts, gts, maps, preds)
    assert out["good"] == {"images": 2, "false_alarm_rate": 0.5}
    # dent scores 0.4, 0.9 against good 0.1, 0.5: pairs won 1 + 0 + 1 + 1 = 3 of 4
    assert out["dent"]["image_auroc"] == 0.75
    assert out["dent"]["pixel_auroc"] == 1.0
    assert out["dent"]["box_acc_iou30"] == 0.5 and out["dent"]["recall"] == 0.5
    assert out["dent"]["defect_pixel_share"] == pytest.approx(2 / 10)
    assert out["scratch"]["image_auroc"] == 0.5  # 0.2 beats 0.1, loses to 0.5
    assert out["scratch"]["pixel_auroc"] == 0.5  # a flat map ranks nothing
    assert out["scratch"]["box_miou"] == 0.0 and out["scratch"]["recall"] == 0.0
    assert out["scratch"]["defect_pixel_share"] == pytest.approx(8 / 10)
