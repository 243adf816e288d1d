"""Synthetic MVTec-shaped folders for the expert grounder and localisation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def textured(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A grey stripe texture with mild noise (a stand-in for a good part)."""
    x = np.arange(size)
    base = 120 + 40 * np.sin(x / 3.0)[None, :] + rng.normal(0, 4, (size, size))
    return np.clip(np.repeat(base[..., None], 3, axis=2), 0, 255).astype(np.uint8)


def with_blob(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The image with a dark disc pasted at a random place, and the disc's mask."""
    h, w = image.shape[:2]
    r = int(rng.integers(7, 11))
    cy, cx = int(rng.integers(r + 4, h - r - 4)), int(rng.integers(r + 4, w - r - 4))
    yy, xx = np.mgrid[:h, :w]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    out = image.copy()
    out[mask] = (20, 200, 30)
    return out, mask


def make_mvtec(
    root: Path, n_train: int = 4, n_good: int = 2, n_bad: int = 3, seed: int = 0
) -> Path:
    """Write ``root/widget`` in MVTec layout; returns the category folder."""
    rng = np.random.default_rng(seed)
    cat = root / "widget"
    for sub in ("train/good", "test/good", "test/blob", "ground_truth/blob"):
        (cat / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n_train):
        Image.fromarray(textured(rng)).save(cat / "train/good" / f"{i:03d}.png")
    for i in range(n_good):
        Image.fromarray(textured(rng)).save(cat / "test/good" / f"{i:03d}.png")
    for i in range(n_bad):
        image, mask = with_blob(textured(rng), rng)
        Image.fromarray(image).save(cat / "test/blob" / f"{i:03d}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(
            cat / "ground_truth/blob" / f"{i:03d}_mask.png"
        )
    return cat
