"""Patch matching: the tiled matrix-product search equals a direct search; the closest
references are the ones retrieved; whitened matching discounts what good parts vary in; the
channels-last backbone reads as the usual one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from inspector_agent.grounding.features import (
    FeatureExtractor,
    knn_distance,
    nearest_grids,
    positional_distance,
    transform,
    whitening,
)


def _direct(query: np.ndarray, refs: np.ndarray, radius: int) -> np.ndarray:
    """Nearest reference patch within the window, by looping over every cell and offset."""
    _, _, h, w = refs.shape
    out = np.full((h, w), np.inf)
    for y in range(h):
        for x in range(w):
            for ry in range(max(0, y - radius), min(h, y + radius + 1)):
                for rx in range(max(0, x - radius), min(w, x + radius + 1)):
                    d = np.sqrt(((refs[:, :, ry, rx] - query[:, y, x]) ** 2).sum(1)).min()
                    out[y, x] = min(out[y, x], d)
    return out


@pytest.mark.parametrize(("radius", "tile"), [(0, 3), (1, 4), (3, 4), (4, 8)])
def test_tiled_search_equals_direct_search(radius: int, tile: int) -> None:
    gen = torch.Generator().manual_seed(radius)
    query = torch.randn(6, 9, 11, generator=gen)
    refs = torch.randn(3, 6, 9, 11, generator=gen)
    got = positional_distance(query, refs, radius, tile=tile).numpy()
    np.testing.assert_allclose(got, _direct(query.numpy(), refs.numpy(), radius), atol=1e-4)


def test_a_shifted_copy_matches_once_the_window_reaches_it() -> None:
    gen = torch.Generator().manual_seed(0)
    refs = torch.randn(1, 32, 12, 12, generator=gen)
    query = torch.roll(refs[0], shifts=3, dims=1)  # the part moved 3 cells down
    inner = (slice(3, None), slice(None))  # rows whose original lies inside the grid
    assert float(positional_distance(query, refs, 2)[inner].min()) > 3.0
    assert float(positional_distance(query, refs, 3)[inner].max()) < 1e-2


def test_nearest_grids_keeps_the_references_closest_to_the_query() -> None:
    """References are retrieved by their mean feature; with too few, all are kept."""
    levels = [5.0, 0.0, 3.0, 1.0, 2.0]
    grids = torch.stack([torch.full((4, 3, 3), v) for v in levels])
    query = torch.full((4, 3, 3), 2.2)
    picked = nearest_grids(query, grids, 3)
    assert sorted(float(g.mean()) for g in picked) == [1.0, 2.0, 3.0]
    assert torch.equal(nearest_grids(query, grids, 5), grids)


def test_whitened_patches_have_unit_covariance() -> None:
    gen = torch.Generator().manual_seed(0)
    patches = torch.randn(4000, 6, generator=gen) @ torch.randn(6, 6, generator=gen)
    white = transform(patches, whitening(patches, 0.0))
    cov = torch.cov(white.T)
    torch.testing.assert_close(cov / cov.diagonal().mean(), torch.eye(6), atol=0.02, rtol=0)
    shrunk = whitening(patches, 1.0)  # full shrinkage: every direction counts alike
    torch.testing.assert_close(shrunk / shrunk[0, 0], torch.eye(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(whitening(torch.ones(50, 6), 0.1), torch.eye(6))  # blank part
    grid = patches[:12].T.reshape(6, 3, 4)  # a (C, H, W) grid is mapped patch by patch
    torch.testing.assert_close(transform(grid, shrunk).reshape(6, -1).T, patches[:12] @ shrunk.T)


def test_whitened_matching_discounts_what_good_parts_vary_in() -> None:
    """References vary widely in a few feature directions (brightness, say) and barely in the
    rest. A good part far out along those directions is nearer than a small change in a
    direction no reference varies in, once distances are whitened; in plain distances, the
    other way round."""
    gen = torch.Generator().manual_seed(1)
    spread = torch.ones(8)
    spread[:2] = 10.0
    refs = torch.randn(2000, 8, generator=gen) * spread * 0.1
    good = torch.randn(200, 8, generator=gen) * spread * 0.1
    bad = good.clone()
    bad[:, -1] += 0.8  # eight times the references' spread in that direction
    good[:, :2] *= 3.0  # good parts further out along the directions references vary in
    plain = [knn_distance(x, refs).mean() for x in (good, bad)]
    matrix = whitening(refs, 0.1)
    white = [
        knn_distance(transform(x, matrix), transform(refs, matrix)).mean() for x in (good, bad)
    ]
    assert plain[0] > 1.3 * plain[1]
    assert white[1] > 1.3 * white[0]


def test_channels_last_backbone_gives_the_plain_layouts_features() -> None:
    """The backbone runs channels-last for speed; the features are those of the usual layout."""
    extractor = FeatureExtractor((4, 10))
    batch = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    fast = extractor(batch)
    assert fast.is_contiguous()  # so a grid flattens to (C, H*W) without a copy
    extractor.net = copy.deepcopy(extractor.net).to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(fast, extractor(batch), atol=1e-5, rtol=1e-4)
