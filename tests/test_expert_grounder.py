"""The expert grounder on small synthetic textures: detection, boxes, calibration and caching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspector_agent.geometry import Box, boxes_from_mask, iou
from inspector_agent.grounding import GroundingError, GroundingRequest, ReferenceSet, make_grounder
from inspector_agent.grounding.expert import ExpertCalibration, ExpertConfig, ExpertGrounder
from inspector_agent.schema import Verdict
from inspector_agent.settings import Settings
from tests.mvtec_helpers import make_mvtec

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
    assert list((settings.cache_dir / "expert").glob("*.pt"))

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
