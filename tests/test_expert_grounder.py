"""The expert grounder on small synthetic textures: detection, boxes, calibration and caching."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from inspector_agent.geometry import Box, boxes_from_mask, iou
from inspector_agent.grounding import GroundingError, GroundingRequest, ReferenceSet, make_grounder
from inspector_agent.grounding.expert import ExpertCalibration, ExpertConfig, ExpertGrounder
from inspector_agent.schema import Verdict
from inspector_agent.settings import Settings
from tests.mvtec_helpers import make_mvtec, textured

SMALL = ExpertConfig(pixels=160 * 160, max_bank=800)


@pytest.fixture(scope="module")
def category(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mvtec(tmp_path_factory.mktemp("mvtec"), n_train=4, n_good=1, n_bad=2)


def _refs(category: Path) -> ReferenceSet:
    return ReferenceSet("widget", sorted((category / "train/good").iterdir()))


def test_registered_as_expert(settings: Settings) -> None:
    assert isinstance(make_grounder("expert", settings), ExpertGrounder)


def test_detects_and_boxes_a_blob(settings: Settings, category: Path) -> None:
    grounder = ExpertGrounder(settings, SMALL)
    refs = _refs(category)
    good = grounder.ground(
        GroundingRequest(Image.open(next((category / "test/good").iterdir())), refs)
    )
    for path in sorted((category / "test/blob").iterdir()):
        result = grounder.ground(GroundingRequest(Image.open(path), refs))
        truth = boxes_from_mask(
            np.asarray(Image.open(category / "ground_truth/blob" / f"{path.stem}_mask.png")) > 0
        )
        assert result.verdict == Verdict.DEFECTIVE
        assert result.pred_score > good.pred_score
        assert result.anomaly_map.shape == (96, 96) and result.pred_mask.dtype == bool
        assert max(iou(d.box, truth[0]) for d in result.defects) >= 0.3
        assert all(isinstance(d.box, Box) and d.score > 0 for d in result.defects)
        assert json.dumps(result.to_dict())


def test_calibration_is_serialisable_and_from_references_only(
    settings: Settings, category: Path
) -> None:
    grounder = ExpertGrounder(settings, SMALL)
    cal = grounder.memory_bank(_refs(category).paths).calibration
    assert cal.mode == "aligned"  # the stripes line up across references
    assert len(cal.reference_scores) == 4 and cal.image_threshold == max(cal.reference_scores)
    again = ExpertCalibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal


def test_bank_cached_on_disk(settings: Settings, category: Path, monkeypatch) -> None:
    refs = _refs(category)
    first = ExpertGrounder(settings, SMALL).memory_bank(refs.paths)
    cached = list((settings.cache_dir / "expert").iterdir())
    assert cached and all(p.suffix == ".pt" for p in cached)  # no temporary left behind

    def boom(*_args, **_kwargs):
        raise AssertionError("reference features recomputed")

    monkeypatch.setattr(ExpertGrounder, "_build", boom)
    second = ExpertGrounder(settings, SMALL).memory_bank(refs.paths)
    assert second.calibration == first.calibration
    with pytest.raises(AssertionError):  # a different config is a different cache entry
        ExpertGrounder(settings, ExpertConfig(pixels=80 * 80)).memory_bank(refs.paths)


def test_unaligned_references_use_global_bank(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    paths = []
    for i, size in enumerate([(64, 80), (80, 64), (72, 72)]):
        noise = rng.integers(60, 200, (size[1], size[0], 3), dtype=np.uint8)
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(noise).save(paths[-1])
    bank = ExpertGrounder(settings, SMALL).memory_bank(paths)
    assert bank.calibration.mode == "global" and bank.bank.shape[0] > 0


def test_no_references_is_a_clear_error(settings: Settings) -> None:
    grounder = ExpertGrounder(settings, SMALL)
    with pytest.raises(GroundingError, match="no reference images"):
        grounder.ground(GroundingRequest(Image.new("RGB", (32, 32)), ReferenceSet("p", [])))


def _with_glare(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bright highlight of random strength and shape in the top-left corner (varies on good
    parts too, like the light on a tyre)."""
    out = image.astype(float)
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    cy, cx = rng.integers(14, 22, 2)
    spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(4, 9) ** 2))
    out += rng.uniform(40, 120) * spot[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def test_score_discounts_places_that_vary_on_good_parts(settings: Settings, tmp_path: Path) -> None:
    """Per-position baseline: a strong glare where references have glare too stays well below
    the threshold and far below a small blob elsewhere; without the baseline it comes closer."""
    rng = np.random.default_rng(3)
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"ref{i}.png")
        Image.fromarray(_with_glare(textured(rng), rng)).save(paths[-1])
    refs = ReferenceSet("glare", paths)
    glare = textured(rng).astype(float)
    yy, xx = np.mgrid[:96, :96]
    glare += 115 * np.exp(-((yy - 18) ** 2 + (xx - 18) ** 2) / (2 * 8.0**2))[..., None]
    good = Image.fromarray(np.clip(glare, 0, 255).astype(np.uint8))
    blob = textured(rng)
    blob[60:66, 60:66] = (95, 95, 95)
    bad = Image.fromarray(blob)
    relative = {}  # score / calibrated threshold of (glare, blob), with and without the baseline
    for flag in (True, False):
        grounder = ExpertGrounder(settings, ExpertConfig(pixels=96 * 96, relative_decisions=flag))
        results = [grounder.ground(GroundingRequest(im, refs)) for im in (good, bad)]
        assert [r.verdict for r in results] == [Verdict.OK, Verdict.DEFECTIVE]
        relative[flag] = [r.pred_score / r.threshold for r in results]
    assert relative[True][0] < relative[False][0]
    assert relative[True][1] / relative[True][0] > 2 * relative[False][1] / relative[False][0]


def test_coarse_pass_decides_and_fine_pass_outlines(settings: Settings, category: Path) -> None:
    """The verdict and score are the one-pass grounder's; the heatmap is the finer pass's."""
    one_pass = ExpertGrounder(settings, replace(SMALL, detail_area=1.0))
    two_pass = ExpertGrounder(settings, SMALL)
    assert SMALL.detail_area == 2.0
    assert two_pass._detail.config.max_aligned == SMALL.detail_max_aligned == 3
    refs = _refs(category)
    for path in sorted((category / "test/blob").iterdir()):
        truth = np.asarray(Image.open(category / "ground_truth/blob" / f"{path.stem}_mask.png")) > 0
        a = one_pass.ground(GroundingRequest(Image.open(path), refs))
        b = two_pass.ground(GroundingRequest(Image.open(path), refs))
        assert b.pred_score == pytest.approx(a.pred_score) and b.verdict == a.verdict
        assert b.anomaly_map.shape == a.anomaly_map.shape
        assert not np.allclose(a.anomaly_map, b.anomaly_map)
        assert truth.flat[int(np.argmax(b.anomaly_map))]  # the finer map peaks on the blob


def test_a_pass_close_to_the_threshold_asks_for_a_look(settings: Settings, category: Path) -> None:
    """A good part scoring above the configured share of the threshold gets a close-call note;
    below it, or flagged defective, none."""
    refs = _refs(category)
    good = Image.open(next((category / "test/good").iterdir()))
    plain = ExpertGrounder(settings, replace(SMALL, detail_area=1.0)).ground(
        GroundingRequest(good, refs)
    )
    share = plain.pred_score / plain.threshold
    assert plain.verdict == Verdict.OK and 0 < share < 1

    assert replace(SMALL, borderline=0.5).key() == SMALL.key()  # the banks are shared

    def close_calls(borderline: float, image: Image.Image = good) -> list[str]:
        grounder = ExpertGrounder(settings, replace(SMALL, detail_area=1.0, borderline=borderline))
        result = grounder.ground(GroundingRequest(image, refs))
        notes = [n for n in result.notes if n.startswith("close call")]
        assert result.close_call == bool(notes) and result.to_dict()["close_call"] == bool(notes)
        return notes

    (note,) = close_calls(share * 0.9)
    assert f"{plain.pred_score:.3f}" in note and f"{plain.threshold:.3f}" in note
    assert f" {int(100 * share)}% " in note
    assert close_calls(share * 1.1) == []
    blob = Image.open(sorted((category / "test/blob").iterdir())[0])
    assert close_calls(0.0, blob) == []  # flagged defective: no close call


def test_a_ring_shaped_response_is_outlined_whole(settings: Settings) -> None:
    """A large uniform defect lights up at its rim only; its pieces become one outline, while
    separate defects keep their own boxes."""
    grounder = ExpertGrounder(settings, replace(SMALL, detail_area=1.0))
    y, x = np.mgrid[0:160, 0:160].astype(float)
    radius, angle = np.hypot(y - 60, x - 60), np.arctan2(y - 60, x - 60)
    ring = np.exp(-((radius - 25) ** 2) / 18) * (0.8 + 0.2 * np.cos(4 * angle))
    cut = grounder.config.peak_fraction
    assert ndimage.label((ring >= cut * ring.max()) & (radius < 40))[1] > 1  # pieces at the cut
    boxes = boxes_from_mask(grounder._mask(ring.astype(np.float32)))
    assert len(boxes) == 1
    assert iou(boxes[0], Box(33, 33, 88, 88)) > 0.8  # the ring's extent, not one arc
    dots = np.exp(-((y - 30) ** 2 + (x - 30) ** 2) / 20) + np.exp(
        -((y - 120) ** 2 + (x - 130) ** 2) / 20
    )
    assert len(boxes_from_mask(grounder._mask(dots.astype(np.float32)))) == 2


def test_a_rim_that_stands_out_on_one_side_is_outlined_whole(settings: Settings) -> None:
    """A worn patch whose rim lights up strongly on one side only: the two strong arcs are two
    pieces at the cut, but the fainter rest of the rim joins them in one candidate region, and
    the outline covers the whole patch, not the arcs' corner of it."""
    grounder = ExpertGrounder(settings, replace(SMALL, detail_area=1.0))
    y, x = np.mgrid[0:160, 0:160].astype(float)
    radius, angle = np.hypot(y - 60, x - 60), np.arctan2(y - 60, x - 60)
    arcs = np.exp(-((angle - 0.5) ** 2) / 0.05) + np.exp(-((angle + 0.5) ** 2) / 0.05)
    rim = ((0.6 + 0.4 * arcs) * np.exp(-((radius - 25) ** 2) / 18)).astype(np.float32)
    assert ndimage.label(rim >= grounder.config.peak_fraction * rim.max())[1] == 2
    boxes = boxes_from_mask(grounder._mask(rim))
    assert len(boxes) == 1 and iou(boxes[0], Box(33, 33, 88, 88)) > 0.8


def test_a_lone_defect_outranks_crests_of_a_rough_backdrop(settings: Settings) -> None:
    """Glints on a textured backdrop stand as high as the defect but no higher than their
    neighbours; the second box goes to the defect, the first to the strongest response."""
    grounder = ExpertGrounder(settings, replace(SMALL, detail_area=1.0, max_regions=2))
    y, x = np.mgrid[0:200, 0:200].astype(float)
    rng = np.random.default_rng(0)
    crests = np.zeros_like(y)
    for cy in range(146, 200, 12):
        for cx in range(6, 200, 12):
            height = rng.uniform(0.95, 1.0)
            crests = np.maximum(crests, height * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 8))
    backdrop = np.where(y >= 140, 0.3 + 0.7 * crests, 0.0)
    defect = 0.9 * np.exp(-((y - 50) ** 2 + (x - 100) ** 2) / 32)
    amap = np.maximum(backdrop, defect).astype(np.float32)
    boxes = boxes_from_mask(grounder._mask(amap))
    assert len(boxes) == 2
    assert max(iou(b, Box(96, 46, 105, 55)) for b in boxes) > 0.3  # the defect is outlined
    strongest = np.unravel_index(int(np.argmax(amap)), amap.shape)
    assert any(b.y1 <= strongest[0] <= b.y2 and b.x1 <= strongest[1] <= b.x2 for b in boxes)


def test_reference_rewritten_in_place_is_read_again(
    settings: Settings, category: Path, tmp_path: Path
) -> None:
    paths = [tmp_path / p.name for p in _refs(category).paths]
    for src, dst in zip(_refs(category).paths, paths, strict=True):
        dst.write_bytes(src.read_bytes())
    first = ExpertGrounder(settings, SMALL).memory_bank(paths)
    Image.fromarray(textured(np.random.default_rng(9))).save(paths[0])
    os.utime(paths[0], ns=(1, 1))  # a new mtime even on coarse file-system clocks
    second = ExpertGrounder(settings, SMALL).memory_bank(paths)
    assert second.calibration.reference_scores != first.calibration.reference_scores


def test_mirrored_context_makes_border_features_match_the_uncropped_scene(
    settings: Settings,
) -> None:
    """A crop's border cells, extracted with mirrored context, are much closer to the same cells
    seen inside the larger image than with the network's own padding (a crop edge is not a
    defect)."""
    rng = np.random.default_rng(0)
    scene = ndimage.gaussian_filter(rng.normal(0, 1, (192, 192, 3)), (2, 2, 0))
    big = Image.fromarray(np.clip(128 + 60 * scene / scene.std(), 0, 255).astype(np.uint8))
    crop = big.crop((48, 48, 144, 144))  # offsets on the stride-8 grid: cells 6..17
    truth = ExpertGrounder(settings, replace(SMALL, context=0))._features(big, 1.0)[:, 6:18, 6:18]
    ring = np.ones((12, 12), bool)
    ring[2:-2, 2:-2] = False
    border = {}
    for context in (0, 4):
        cells = ExpertGrounder(settings, replace(SMALL, context=context))._features(crop, 1.0)
        assert cells.shape == truth.shape
        border[context] = float((cells - truth).norm(dim=0).numpy()[ring].mean())
    assert border[4] < 0.8 * border[0]


def _tile(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """A stripe tile whose brightness varies from part to part (unaligned: sizes differ)."""
    x = np.arange(width)
    base = 120 + 40 * np.sin(x / 3.0)[None, :] + rng.normal(0, 4, (height, width))
    gray = base * rng.uniform(0.6, 1.4)
    return Image.fromarray(np.clip(np.repeat(gray[..., None], 3, 2), 0, 255).astype(np.uint8))


def test_unaligned_parts_are_matched_in_whitened_features(
    settings: Settings, tmp_path: Path
) -> None:
    """The verdict pass of a global bank matches whitened features. Each reference is scored
    under a whitening fitted without it, so new good parts score like the references did: a
    whitening fitted on the scored reference too set the threshold below every good part."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(96, 110), (110, 96), (100, 100), (90, 120)]):
        paths.append(tmp_path / f"ref{i}.png")
        _tile(rng, h, w).save(paths[-1])
    config = ExpertConfig(pixels=96 * 96, max_bank=800)
    grounder = ExpertGrounder(settings, config)
    bank = grounder.memory_bank(paths)
    channels = bank.bank.shape[1]
    assert bank.calibration.mode == "global" and bank.whitening.shape == (channels, channels)
    assert grounder._detail.memory_bank(paths).whitening is None  # the outline pass: plain
    reloaded = ExpertGrounder(settings, config).memory_bank(paths)
    assert torch.equal(reloaded.whitening, bank.whitening)
    refs = ReferenceSet("tile", paths)
    scores = [
        grounder.ground(GroundingRequest(_tile(rng, 100, 104), refs)).pred_score for _ in "abc"
    ]
    assert float(np.median(scores)) < bank.calibration.image_threshold
    plain = ExpertGrounder(settings, replace(config, whiten=False)).memory_bank(paths)
    assert plain.whitening is None
