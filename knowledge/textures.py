"""Procedural good-part surfaces: brushed aluminium, woven technical fabric, printed ceramic tile."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

SIZE = 384
# (H, W, 3) floats in [0, 1]; for printed surfaces also the print mask and the unprinted surface
Surface = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-spread Gaussian-filtered noise."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-9)


def brushed_aluminium(rng: np.random.Generator, size: int = SIZE) -> Surface:
    """Anisotropic brushing streaks along x, a soft specular sheen band and slight blue tint."""
    fine = ndimage.gaussian_filter(rng.standard_normal((size, size)), (0.6, 40.0), mode="wrap")
    coarse = ndimage.gaussian_filter(rng.standard_normal((size, size)), (3.0, 90.0), mode="wrap")
    streaks = fine / (fine.std() + 1e-9) * 0.035 + coarse / (coarse.std() + 1e-9) * 0.02
    y, x = np.mgrid[0:size, 0:size] / size
    angle = rng.uniform(-0.4, 0.4)
    centre = rng.uniform(0.3, 0.7)
    band = np.exp(-(((y - centre) + angle * (x - 0.5)) ** 2) / (2 * 0.16**2))
    grey = 0.60 + 0.16 * band + streaks + 0.01 * rng.standard_normal((size, size))
    tint = np.array([0.97, 0.99, 1.03])
    return np.clip(grey[..., None] * tint, 0, 1), None, None


def woven_fabric(rng: np.random.Generator, size: int = SIZE) -> Surface:
    """Plain weave: warp and weft yarns with rounded profiles, fibre noise and thread jitter."""
    period = 12
    y, x = np.mgrid[0:size, 0:size].astype(float)
    x_j = x + 0.8 * np.sin(y / 37.0 + rng.uniform(0, 6)) + 0.6 * _smooth_noise(rng, (size, size), 6)
    y_j = y + 0.8 * np.sin(x / 41.0 + rng.uniform(0, 6)) + 0.6 * _smooth_noise(rng, (size, size), 6)
    u, v = (x_j % period) / period, (y_j % period) / period
    warp_profile = np.sin(np.pi * u) ** 0.6  # vertical yarn, bright in its middle
    weft_profile = np.sin(np.pi * v) ** 0.6
    warp_on_top = ((x_j // period) + (y_j // period)) % 2 == 0
    along_warp = np.sin(np.pi * v)  # a yarn dips where it passes under the other
    along_weft = np.sin(np.pi * u)
    shade = np.where(
        warp_on_top,
        warp_profile * (0.75 + 0.25 * along_warp),
        weft_profile * (0.75 + 0.25 * along_weft),
    )
    fibres = ndimage.gaussian_filter(rng.standard_normal((size, size)), (0.5, 2.5)) * 0.35
    fibres = np.where(warp_on_top, fibres, fibres.T)
    base = np.array([0.20, 0.27, 0.36]) + rng.uniform(-0.01, 0.01, 3)
    light = 0.45 + 0.55 * shade + 0.06 * fibres + 0.03 * _smooth_noise(rng, (size, size), 40)
    return np.clip(light[..., None] * base * 1.6, 0, 1), None, None


def ceramic_tile(rng: np.random.Generator, size: int = SIZE) -> Surface:
    """Cream glaze with mottling, kiln speckle, a gloss highlight and a printed blue border decor."""
    y, x = np.mgrid[0:size, 0:size] / size
    mottle = 0.025 * _smooth_noise(rng, (size, size), 18) + 0.012 * _smooth_noise(
        rng, (size, size), 4
    )
    hx, hy = rng.uniform(0.25, 0.75, 2)
    gloss = 0.10 * np.exp(-((x - hx) ** 2 / 0.05 + (y - hy) ** 2 / 0.02))
    glaze = np.array([0.90, 0.86, 0.78])
    image = (0.93 + mottle + gloss)[..., None] * glaze
    specks = rng.random((size, size)) < 0.0025
    speck_field = ndimage.gaussian_filter(specks.astype(float), 0.8) * 6.0
    image -= np.clip(speck_field, 0, 0.5)[..., None] * np.array([0.45, 0.45, 0.40])
    margin, width = 0.09, 0.035
    edge = np.minimum(np.minimum(x, 1 - x), np.minimum(y, 1 - y))
    border = (edge > margin) & (edge < margin + width)
    cx, cy = (x - 0.5), (y - 0.5)
    rosette = np.abs(np.hypot(cx, cy) - 0.17 - 0.03 * np.cos(8 * np.arctan2(cy, cx))) < 0.012
    print_mask = (border | rosette).astype(float)
    print_mask = ndimage.gaussian_filter(print_mask, 0.7) * (
        0.9 + 0.1 * _smooth_noise(rng, (size, size), 2)
    )
    print_mask = np.clip(print_mask, 0, 1)
    ink = np.array([0.16, 0.28, 0.58])
    base = np.clip(image + 0.006 * rng.standard_normal(image.shape), 0, 1)
    printed = base * (1 - print_mask[..., None]) + ink * print_mask[..., None]
    return printed, print_mask, base


RENDERERS: dict[str, Callable[[np.random.Generator, int], Surface]] = {
    "brushed-alu-panel": brushed_aluminium,
    "woven-tech-fabric": woven_fabric,
    "ceramic-tile-decor": ceramic_tile,
}
