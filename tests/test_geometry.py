"""Boxes, IoU, matching, masks and coordinate maps, against hand-computed values and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from inspector_agent.geometry import (
    Box,
    CoordinateMap,
    box_to_mask,
    boxes_from_mask,
    convex_hull_mask,
    iou,
    iou_matrix,
    mask_components,
    match_boxes,
)


def test_iou_hand_computed():
    a, b = Box(0, 0, 10, 10), Box(5, 5, 15, 15)
    assert iou(a, b) == pytest.approx(25 / 175)
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 5)) == pytest.approx(0.5)
    assert iou(Box(0, 0, 1, 1), Box(2, 2, 3, 3)) == 0.0
    assert iou(Box(10, 10, 0, 0), Box(0, 0, 10, 10)) == 1.0  # corners in any order
    assert iou(Box(3, 3, 3, 3), Box(3, 3, 3, 3)) == 0.0  # empty boxes


def test_iou_refuses_mixed_spaces():
    with pytest.raises(ValueError, match="space"):
        iou(Box(0, 0, 1, 1), Box(0, 0, 1, 1, space="model"))


def test_iou_matrix_and_one_to_one_matching():
    truths = [Box(0, 0, 10, 10), Box(20, 20, 30, 30)]
    preds = [Box(21, 21, 31, 31), Box(1, 1, 11, 11), Box(100, 100, 101, 101)]
    matrix = iou_matrix(preds, truths)
    assert matrix.shape == (3, 2)
    assert matrix[0, 1] == pytest.approx(81 / 119)
    assert sorted(match_boxes(preds, truths)) == [(0, 1), (1, 0)]
    # Greedy would give truth 0 to pred 0 (0.5 > 0.45); the optimum pairs them crosswise.
    score = np.array([[0.5, 0.4], [0.45, 0.0]])
    assert sorted(match_boxes([Box(0, 0, 1, 1)] * 2, truths, score)) == [(0, 1), (1, 0)]
    assert match_boxes([], truths) == [] and match_boxes(preds, []) == []


def test_boxes_from_mask_uses_pixel_edges_and_8_connectivity():
    mask = np.zeros((10, 12), dtype=bool)
    mask[1:3, 2:5] = True  # 2x3 block
    mask[3, 5] = True  # touches the block diagonally: same component
    mask[8, 10] = True  # a lone pixel
    labels, count = mask_components(mask)
    assert count == 2 and labels.shape == mask.shape
    boxes = boxes_from_mask(mask)
    assert [b.to_list() for b in boxes] == [[2, 1, 6, 4], [10, 8, 11, 9]]
    assert [b.to_list() for b in boxes_from_mask(mask, min_area=2)] == [[2, 1, 6, 4]]
    assert boxes_from_mask(np.zeros((4, 4), bool)) == []


def test_box_to_mask_rounds_outward_and_clips():
    mask = box_to_mask(Box(1.5, 0.2, 3.1, 2.0), height=4, width=5)
    expected = np.zeros((4, 5), bool)
    expected[0:2, 1:4] = True
    np.testing.assert_array_equal(mask, expected)
    assert box_to_mask(Box(-5, -5, 50, 50), 3, 3).all()


def test_convex_hull_mask_closes_an_outline_and_leaves_a_line():
    c_shape = np.zeros((20, 20), bool)
    c_shape[2:4, 2:18] = c_shape[16:18, 2:18] = c_shape[2:18, 2:4] = True  # open on the right
    hull = convex_hull_mask(c_shape)
    expected = np.zeros((20, 20), bool)
    expected[2:18, 2:18] = True
    np.testing.assert_array_equal(hull, expected)
    pieces = np.zeros((30, 30), bool)
    pieces[5:8, 5:8] = pieces[5:8, 20:23] = pieces[20:23, 12:15] = True  # three separate dots
    assert mask_components(convex_hull_mask(pieces))[1] == 1
    assert convex_hull_mask(pieces)[12, 13]  # inside the triangle they span
    dots = np.zeros((5, 9), bool)
    dots[0, 0] = dots[2, 4] = dots[4, 8] = True  # on one line: joined, nothing else filled
    line = convex_hull_mask(dots)
    assert mask_components(line)[1] == 1 and line.sum() == 9 and line[1, 2]
    assert not convex_hull_mask(np.zeros((4, 4), bool)).any()


def test_coordinate_map_hand_computed():
    cmap = CoordinateMap(
        original_width=1000, original_height=500, model_width=500, model_height=250
    )
    model = cmap.to_model(Box(100, 50, 300, 150))
    assert model.space == "model" and model.to_list() == [50, 25, 150, 75]
    assert cmap.to_original(model).to_list() == [100, 50, 300, 150]
    assert cmap.to_original(Box(400, 200, 900, 900, space="model")).to_list() == [
        800,
        400,
        1000,
        500,
    ]
    with pytest.raises(ValueError, match="model space"):
        cmap.to_original(Box(0, 0, 1, 1))
    with pytest.raises(ValueError, match="original space"):
        cmap.to_model(Box(0, 0, 1, 1, space="model"))


coord = st.floats(0, 1000, allow_nan=False)
boxes = st.builds(Box, coord, coord, coord, coord)


@settings(max_examples=200, deadline=None)
@given(boxes, boxes)
def test_iou_symmetric_and_bounded(a, b):
    value = iou(a, b)
    assert value == pytest.approx(iou(b, a))
    assert 0.0 <= value <= 1.0 + 1e-12


@settings(max_examples=200, deadline=None)
@given(boxes)
def test_iou_with_itself_is_one(a):
    if a.area > 1e-6:
        assert iou(a, a) == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 24), st.integers(0, 31)), min_size=1, max_size=12))
@example(pixels=[(0, 6), (1, 0), (4, 0)])  # a thin spike whose filled polygon missed its tip
def test_convex_hull_mask_covers_the_mask_within_its_box(pixels):
    mask = np.zeros((25, 32), bool)
    for y, x in pixels:
        mask[y, x] = True
    hull = convex_hull_mask(mask)
    assert (hull >= mask).all()
    ys, xs = np.nonzero(mask)
    hys, hxs = np.nonzero(hull)
    assert (hys.min(), hys.max(), hxs.min(), hxs.max()) == (ys.min(), ys.max(), xs.min(), xs.max())
    assert mask_components(hull)[1] == 1


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.integers(28, 2000),
    st.integers(28, 2000),
    st.tuples(coord, coord, coord, coord),
)
def test_coordinate_map_round_trip(ow, oh, mw, mh, corners):
    cmap = CoordinateMap(ow, oh, mw, mh)
    x1, y1, x2, y2 = (c / 1000 for c in corners)
    box = Box(x1 * ow, y1 * oh, x2 * ow, y2 * oh)
    back = cmap.to_original(cmap.to_model(box))
    expected = box.normalized()
    for got, want in zip(back.to_list(), expected.to_list(), strict=True):
        assert got == pytest.approx(want, abs=0.11)
