"""Paint realistic defects on a rendered surface and return the exact mask of each."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Painter = Callable[
    [np.random.Generator, np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray
]


def _polyline_mask(size: int, points: np.ndarray, width: int) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).line([tuple(p) for p in points], fill=255, width=width, joint="curve")
    return np.asarray(canvas) > 0


def _walk(
    rng: np.random.Generator, size: int, steps: int, step: float, wiggle: float
) -> np.ndarray:
    start = rng.uniform(0.25, 0.75, 2) * size
    heading = rng.uniform(0, 2 * np.pi)
    points = [start]
    for _ in range(steps):
        heading += rng.normal(0, wiggle)
        points.append(points[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    return np.clip(np.array(points), 2, size - 3)


def scratch(
    rng: np.random.Generator,
    image: np.ndarray,
    _clean: np.ndarray | None,
    _print: np.ndarray | None,
) -> np.ndarray:
    """A thin, nearly straight bright groove with a dark shadow edge."""
    size = image.shape[0]
    mask = _polyline_mask(size, _walk(rng, size, 12, rng.uniform(6, 11), 0.05), 2)
    shadow = ndimage.shift(mask.astype(float), (1, 1), order=0) > 0
    image[shadow & ~mask] *= 0.55
    image[mask] = np.clip(image[mask] * 0.4 + 0.6, 0, 1)
    return mask | shadow


def crack(
    rng: np.random.Generator,
    image: np.ndarray,
    _clean: np.ndarray | None,
    _print: np.ndarray | None,
) -> np.ndarray:
    """A dark jagged fracture with one branch."""
    size = image.shape[0]
    trunk = _walk(rng, size, 22, 5.0, 0.5)
    mask = _polyline_mask(size, trunk, 2)
    branch_from = trunk[rng.integers(5, len(trunk) - 5)]
    branch = branch_from + np.cumsum(rng.normal(0, 4, (8, 2)), axis=0)
    mask |= _polyline_mask(size, np.clip(np.vstack([branch_from, branch]), 2, size - 3), 1)
    image[mask] *= 0.25
    return mask


def hole(
    rng: np.random.Generator,
    image: np.ndarray,
    _clean: np.ndarray | None,
    _print: np.ndarray | None,
) -> np.ndarray:
    """A round puncture: near-black core with a lighter torn rim."""
    size = image.shape[0]
    cy, cx = rng.uniform(0.2, 0.8, 2) * size
    radius = rng.uniform(6, 14)
    y, x = np.mgrid[0:size, 0:size]
    wobble = 1 + 0.15 * np.sin(5 * np.arctan2(y - cy, x - cx) + rng.uniform(0, 6))
    distance = np.hypot(y - cy, x - cx) / wobble
    core, rim = distance < radius, (distance >= radius) & (distance < radius + 3)
    image[core] = image[core] * 0.1 + 0.03
    image[rim] = np.clip(image[rim] * 1.25, 0, 1)
    return core | rim


def stain(
    rng: np.random.Generator,
    image: np.ndarray,
    _clean: np.ndarray | None,
    _print: np.ndarray | None,
) -> np.ndarray:
    """An oily or rusty blob with a soft edge that tints and darkens the surface."""
    size = image.shape[0]
    cy, cx = rng.uniform(0.25, 0.75, 2) * size
    y, x = np.mgrid[0:size, 0:size]
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * rng.uniform(14, 26) ** 2))
    blob *= 1 + 0.5 * ndimage.gaussian_filter(rng.standard_normal((size, size)), 8) * 8
    alpha = np.clip((blob - 0.35) * 2.5, 0, 0.85)
    colour = np.array([0.42, 0.30, 0.15]) if rng.random() < 0.5 else np.array([0.25, 0.25, 0.22])
    image[:] = image * (1 - alpha[..., None]) + colour * alpha[..., None]
    return alpha > 0.1


def missing_print(
    rng: np.random.Generator,
    image: np.ndarray,
    clean: np.ndarray | None,
    print_mask: np.ndarray | None,
) -> np.ndarray:
    """A patch of the printed decor absent (the unprinted glaze shows through)."""
    if clean is None or print_mask is None:
        raise ValueError("missing_print needs a printed surface")
    size = image.shape[0]
    ys, xs = np.nonzero(print_mask > 0.5)
    pick = rng.integers(len(ys))
    half = int(rng.uniform(14, 26))
    region = np.zeros((size, size), bool)
    region[max(0, ys[pick] - half) : ys[pick] + half, max(0, xs[pick] - half) : xs[pick] + half] = (
        True
    )
    image[region] = clean[region]
    return region & (print_mask > 0.2)


PAINTERS: dict[str, Painter] = {
    "scratch": scratch,
    "crack": crack,
    "hole": hole,
    "stain": stain,
    "missing_print": missing_print,
}
