"""Synthetic anomalies on good images (Perlin stains, pasted patches, scratches) with exact masks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("stain", "patch", "scratch", "cell")
LABELS = {"stain": "stain", "patch": "contamination", "scratch": "scratch", "cell": "stain"}


def perlin_noise(height: int, width: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Classic 2-D gradient (Perlin) noise in about [-1, 1] on a ``cells`` x ``cells`` lattice."""
    angles = rng.uniform(0, 2 * np.pi, (cells + 1, cells + 1))
    grads = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    ys, xs = np.meshgrid(
        np.linspace(0, cells, height, endpoint=False),
        np.linspace(0, cells, width, endpoint=False),
        indexing="ij",
    )
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = ys - y0, xs - x0

    def corner(dy: int, dx: int) -> np.ndarray:
        g = grads[y0 + dy, x0 + dx]
        return g[..., 0] * (fx - dx) + g[..., 1] * (fy - dy)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    u, v = fade(fx), fade(fy)
    top = corner(0, 0) * (1 - u) + corner(0, 1) * u
    bottom = corner(1, 0) * (1 - u) + corner(1, 1) * u
    return np.sqrt(2) * (top * (1 - v) + bottom * v)


def perlin_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A blob-shaped mask: thresholded Perlin noise inside a random ellipse (never empty)."""
    noise = perlin_noise(height, width, int(rng.integers(2, 6)), rng)
    cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    ry, rx = rng.uniform(0.08, 0.25) * height, rng.uniform(0.08, 0.25) * width
    yy, xx = np.mgrid[0:height, 0:width]
    ellipse = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    mask = ellipse & (noise > np.quantile(noise[ellipse], 0.3))
    if not mask.any():
        mask = ellipse
    return mask


def _blend(image: Image.Image, mask: np.ndarray, colour: np.ndarray, alpha: float) -> Image.Image:
    arr = np.asarray(image, dtype=np.float32).copy()
    arr[mask] = (1 - alpha) * arr[mask] + alpha * colour
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def _contrast_colour(image: Image.Image, mask: np.ndarray) -> np.ndarray:
    mean = np.asarray(image, dtype=np.float32)[mask].mean(axis=0)
    return np.where(mean > 128, mean - 110, mean + 110)


def stain(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray]:
    """A Perlin-shaped stain of a contrasting colour."""
    mask = perlin_mask(image.height, image.width, rng)
    return _blend(image, mask, _contrast_colour(image, mask), rng.uniform(0.7, 0.95)), mask


def patch(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray]:
    """A rotated, colour-shifted patch of the image pasted elsewhere under a Perlin mask."""
    mask = perlin_mask(image.height, image.width, rng)
    source = np.asarray(image.rotate(float(rng.choice([90, 180, 270]))), dtype=np.float32)
    shifted = np.roll(source, (image.height // 3, image.width // 3), axis=(0, 1))
    shifted = (255 - shifted) if rng.random() < 0.5 else shifted * rng.uniform(0.3, 0.6)
    arr = np.asarray(image, dtype=np.float32).copy()
    arr[mask] = shifted[mask]
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)), mask


def scratch(image: Image.Image, rng: np.random.Generator) -> tuple[Image.Image, np.ndarray]:
    """A thin curved line of contrasting colour."""
    w, h = image.size
    layer = Image.new("L", (w, h), 0)
    start = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h])
    heading, points = rng.uniform(0, 2 * np.pi), [tuple(start)]
    for _ in range(int(rng.integers(4, 9))):
        heading += rng.normal(0, 0.3)
        start = start + rng.uniform(0.03, 0.08) * min(w, h) * np.array(
            [np.cos(heading), np.sin(heading)]
        )
        points.append(tuple(start.clip([0, 0], [w - 1, h - 1])))
    ImageDraw.Draw(layer).line(points, fill=255, width=max(2, min(w, h) // 64))
    mask = np.asarray(layer) > 0
    return _blend(image, mask, _contrast_colour(image, mask), 0.9), mask


def cell(
    image: Image.Image, rng: np.random.Generator, grid: int = 28
) -> tuple[Image.Image, np.ndarray]:
    """A dark stain filling one or two adjacent ``grid``-pixel cells: defects aligned to image
    tokens, always dark (a tiny model detects one kind of contrast long before every colour)."""
    rows, cols = image.height // grid, image.width // grid
    r, c = int(rng.integers(rows)), int(rng.integers(cols))
    r2 = min(rows - 1, r + 1) if rng.random() < 0.3 else r
    c2 = min(cols - 1, c + 1) if rng.random() < 0.3 else c
    mask = np.zeros((image.height, image.width), dtype=bool)
    mask[r * grid : (r2 + 1) * grid, c * grid : (c2 + 1) * grid] = True
    return _blend(image, mask, np.full(3, rng.uniform(10.0, 40.0)), rng.uniform(0.8, 0.95)), mask


SYNTHESIZERS: dict[str, Callable[..., tuple[Image.Image, np.ndarray]]] = {
    "stain": stain,
    "patch": patch,
    "scratch": scratch,
    "cell": cell,
}


def synthesize(
    image: Image.Image, kind: str, rng: np.random.Generator
) -> tuple[Image.Image, np.ndarray]:
    """Apply the anomaly ``kind`` to an RGB image; returns the new image and its exact mask."""
    if kind not in SYNTHESIZERS:
        raise ValueError(f"unknown synthetic anomaly {kind!r} (known: {', '.join(KINDS)})")
    return SYNTHESIZERS[kind](image.convert("RGB"), rng)


def good_image(size: int, rng: np.random.Generator, jitter: float = 40.0) -> Image.Image:
    """A defect-free textured part: a smooth grey or tinted gradient with mild Perlin texture.

    The base colour is 130 +- ``jitter`` per channel: a small jitter is one product line whose
    good parts look alike, a large one a mix of products.
    """
    base = 130.0 + rng.uniform(-jitter, jitter, size=3)
    texture = perlin_noise(size, size, 4, rng)[..., None] * 12.0
    yy = np.linspace(-1, 1, size)[:, None, None] * rng.uniform(-10, 10)
    arr = base[None, None, :] + texture + yy
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))
