"""Box and mask geometry: IoU, one-to-one matching, boxes from masks, coordinate mapping."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage
from scipy.optimize import linear_sum_assignment
from scipy.spatial import ConvexHull, QhullError

ORIGINAL = "original"
MODEL = "model"


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``(x1, y1, x2, y2)`` in pixels, tagged with the space it lives in."""

    x1: float
    y1: float
    x2: float
    y2: float
    space: str = ORIGINAL

    @property
    def width(self) -> float:
        """Width, zero for a degenerate box."""
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        """Height, zero for a degenerate box."""
        return max(0.0, self.y2 - self.y1)

    @property
    def area(self) -> float:
        """Area in square pixels."""
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        """Centre point ``(cx, cy)``."""
        return (self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0

    def normalized(self) -> Box:
        """The same box with corners ordered so that ``x1 <= x2`` and ``y1 <= y2``."""
        return replace(
            self,
            x1=min(self.x1, self.x2),
            y1=min(self.y1, self.y2),
            x2=max(self.x1, self.x2),
            y2=max(self.y1, self.y2),
        )

    def clip(self, width: float, height: float) -> Box:
        """The box clipped to an image of ``width`` x ``height``."""
        b = self.normalized()
        return replace(
            b,
            x1=min(max(b.x1, 0.0), width),
            y1=min(max(b.y1, 0.0), height),
            x2=min(max(b.x2, 0.0), width),
            y2=min(max(b.y2, 0.0), height),
        )

    def to_list(self) -> list[float]:
        """``[x1, y1, x2, y2]`` rounded to 0.1 px, the JSON form."""
        return [round(v, 1) for v in (self.x1, self.y1, self.x2, self.y2)]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes in the same space (0 when both are empty)."""
    if a.space != b.space:
        raise ValueError(f"cannot compare a box in {a.space!r} space with one in {b.space!r}")
    a, b = a.normalized(), b.normalized()
    iw = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    ih = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = iw * ih
    union = a.area + b.area - inter
    return float(inter / union) if union > 0 else 0.0


def iou_matrix(preds: list[Box], truths: list[Box]) -> np.ndarray:
    """IoU of every predicted box (rows) against every true box (columns)."""
    out = np.zeros((len(preds), len(truths)), dtype=np.float64)
    for i, p in enumerate(preds):
        for j, t in enumerate(truths):
            out[i, j] = iou(p, t)
    return out


def match_boxes(
    preds: list[Box], truths: list[Box], score: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """One-to-one matching maximising total ``score`` (IoU by default); returns (pred, truth) pairs."""
    if not preds or not truths:
        return []
    matrix = iou_matrix(preds, truths) if score is None else score
    rows, cols = linear_sum_assignment(-matrix)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]


def mask_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 8-connected components of a binary mask; returns ``(labels, count)``."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=np.ones((3, 3), bool))
    return labels, int(count)


def boxes_from_mask(mask: np.ndarray, min_area: int = 1) -> list[Box]:
    """One box per 8-connected component of ``mask`` with at least ``min_area`` pixels.

    Boxes use pixel-edge coordinates: a single pixel at (x, y) becomes ``(x, y, x + 1, y + 1)``.
    """
    labels, count = mask_components(mask)
    if count == 0:
        return []
    areas = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    boxes = []
    for index, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None or areas[index] < min_area:
            continue
        ys, xs = sl
        boxes.append(Box(float(xs.start), float(ys.start), float(xs.stop), float(ys.stop)))
    return boxes


def convex_hull_mask(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its convex hull filled in: one connected outline around all of its pixels
    (a line between the extremes when they lie on a line)."""
    mask = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(mask & ~ndimage.binary_erosion(mask))  # the hull needs only the rim
    points = sorted(zip(xs.tolist(), ys.tolist(), strict=True))
    if len(points) < 2:
        return mask.copy()
    canvas = Image.new("1", (mask.shape[1], mask.shape[0]))
    try:
        hull = ConvexHull(np.asarray(points, float))
        outline = [points[v] for v in hull.vertices]
        draw = ImageDraw.Draw(canvas)
        draw.polygon(outline, fill=1, outline=1)
        draw.line(outline + outline[:1], fill=1)  # a thin spike's fill can miss its tip
    except QhullError:  # all on one line: sorted, its ends are the first and last point
        ImageDraw.Draw(canvas).line([points[0], points[-1]], fill=1)
    return np.asarray(canvas, dtype=bool) | mask


def box_to_mask(box: Box, height: int, width: int) -> np.ndarray:
    """A boolean ``height`` x ``width`` mask that is true inside ``box`` (rounded outward)."""
    b = box.clip(width, height)
    out = np.zeros((height, width), dtype=bool)
    x1, y1 = int(np.floor(b.x1)), int(np.floor(b.y1))
    x2, y2 = int(np.ceil(b.x2)), int(np.ceil(b.y2))
    out[y1:y2, x1:x2] = True
    return out


@dataclass(frozen=True)
class CoordinateMap:
    """Maps boxes between original image pixels and the pixels of the image the model received."""

    original_width: int
    original_height: int
    model_width: int
    model_height: int

    def _scale(self, box: Box, sx: float, sy: float, space: str) -> Box:
        return Box(box.x1 * sx, box.y1 * sy, box.x2 * sx, box.y2 * sy, space)

    def to_model(self, box: Box) -> Box:
        """Original-pixel box -> model-input-pixel box."""
        if box.space != ORIGINAL:
            raise ValueError(f"expected a box in original space, got {box.space!r}")
        sx = self.model_width / self.original_width
        sy = self.model_height / self.original_height
        return self._scale(box, sx, sy, MODEL).clip(self.model_width, self.model_height)

    def to_original(self, box: Box) -> Box:
        """Model-input-pixel box -> original-pixel box, clipped to the original image."""
        if box.space != MODEL:
            raise ValueError(f"expected a box in model space, got {box.space!r}")
        sx = self.original_width / self.model_width
        sy = self.original_height / self.model_height
        return self._scale(box, sx, sy, ORIGINAL).clip(self.original_width, self.original_height)
