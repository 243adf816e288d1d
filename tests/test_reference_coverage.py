"""The image threshold when one reference is unlike the others (a lone product variant)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspector_agent.grounding import GroundingRequest, ReferenceSet
from inspector_agent.grounding.expert import ExpertCalibration, ExpertConfig, ExpertGrounder
from inspector_agent.grounding.memory_bank import image_threshold
from inspector_agent.kb.ingest import coverage_advice
from inspector_agent.schema import Verdict
from inspector_agent.settings import Settings
from tests.mvtec_helpers import textured


@pytest.mark.parametrize(
    ("scores", "peers", "expected"),
    [
        # 0.90 > 3 x median(0.10, 0.11, 0.12): the fourth is set aside, the highest peer counts
        ([0.10, 0.12, 0.11, 0.90], [0.10, 0.12, 0.11], (0.12, 3)),
        ([0.50, 0.12, 0.11, 0.10], [0.12, 0.11, 0.10], (0.12, 0)),
        ([1.2, 1.4, 1.3, 1.6], [1.2, 1.4, 1.3], (1.6, None)),  # 1.6 < 3 x 1.3
        ([0.10, 0.11, 0.33], [0.10, 0.11], (0.11, 2)),  # 0.33 > 3 x 0.105
        ([0.10, 0.11, 0.31], [0.10, 0.11], (0.31, None)),  # 0.31 < 3 x 0.105
        # among themselves the peers score higher than with the odd one in their baseline
        ([-0.2, -0.1, 0.7], [0.15, 0.25], (0.25, 2)),
        ([0.2, 0.9], [], (0.9, None)),  # two references: nothing to compare the top one with
        ([0.9], [], (0.9, None)),
        ([], [], (float("inf"), None)),
        ([-0.1, 0.0, 0.4], [-0.1, 0.0], (0.4, None)),  # no positive median to scale
    ],
)
def test_image_threshold(
    scores: list[float], peers: list[float], expected: tuple[float, int | None]
) -> None:
    assert image_threshold(scores, peers, 3.0) == pytest.approx(expected)


def test_calibration_stored_before_set_aside_existed_still_loads() -> None:
    old = {
        "mode": "aligned",
        "scale": 0.5,
        "image_threshold": 0.3,
        "pixel_threshold": 0.2,
        "reference_scores": [0.1, 0.3],
        "aligned_fraction": 0.9,
        "config_key": "abc",
    }
    cal = ExpertCalibration.from_dict(old)
    assert cal.set_aside is None and cal.set_aside_reference([Path("a.png")]) is None
    refs = [Path("b.png"), Path("a.png")]
    assert coverage_advice(old, refs) == ""
    assert "b.png is unlike" in coverage_advice(old | {"set_aside": 1}, refs)


def _tinted(image: np.ndarray) -> np.ndarray:
    """The same part in another colour (a product variant)."""
    return (image * np.array([1.0, 0.55, 0.25])).astype(np.uint8)


def _faint_disc(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small disc 20 grey levels darker: a defect weaker than a whole part in another colour."""
    out = image.astype(float)
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    cy, cx = rng.integers(20, image.shape[0] - 20, 2)
    out[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] -= 20
    return np.clip(out, 0, 255).astype(np.uint8)


def test_a_lone_variant_does_not_set_the_threshold(settings: Settings, tmp_path: Path) -> None:
    """Three grey parts and one amber part: the amber one's leave-one-out score stands far above
    the others' and is left out of the threshold, so a faint defect that scores below it is
    found, which the plain highest-score rule misses; new amber parts now match the amber
    reference and score like grey ones."""
    rng = np.random.default_rng(5)
    paths = []
    for name in ("a_grey", "b_grey", "c_amber", "d_grey"):
        image = textured(rng)
        paths.append(tmp_path / f"{name}.png")
        Image.fromarray(_tinted(image) if "amber" in name else image).save(paths[-1])
    refs = ReferenceSet("variants", list(reversed(paths)))  # any order: indices are by name
    grounder = ExpertGrounder(settings, ExpertConfig(pixels=96 * 96))
    cal = grounder.memory_bank(refs.paths).calibration
    amber = cal.reference_scores[2]
    assert cal.set_aside == 2 and cal.set_aside_reference(refs.paths) == paths[2]
    assert cal.image_threshold < amber / 4

    def inspect(image: np.ndarray, grounder: ExpertGrounder = grounder):
        return grounder.ground(GroundingRequest(Image.fromarray(image), refs))

    faint = [inspect(_faint_disc(textured(rng), rng)) for _ in range(3)]
    assert all(r.verdict == Verdict.DEFECTIVE and r.pred_score < amber for r in faint)
    assert any("c_amber.png is unlike" in note for note in faint[0].notes)
    plain_rule = ExpertGrounder(settings, ExpertConfig(pixels=96 * 96, outlier_factor=np.inf))
    assert plain_rule.memory_bank(refs.paths).calibration.image_threshold == amber
    assert all(
        inspect(_faint_disc(textured(rng), rng), plain_rule).verdict == Verdict.OK for _ in range(3)
    )
    good = [inspect(textured(rng)).pred_score for _ in range(3)]
    good_amber = [inspect(_tinted(textured(rng))).pred_score for _ in range(3)]
    assert max(good + good_amber) < min(r.pred_score for r in faint) / 2
    assert max(good_amber) < amber / 4
