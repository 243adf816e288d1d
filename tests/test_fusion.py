"""The fusion grounder: model verdict and boxes, masks from the expert heatmap, disagreements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_model_helpers import BLOB, forcing_bias, part_image, write_references

from inspector_agent.geometry import Box, box_to_mask
from inspector_agent.grounding import GroundingRequest, ReferenceSet, make_grounder
from inspector_agent.grounding.fusion import FusionGrounder, fuse
from inspector_agent.grounding.local import make_local
from inspector_agent.schema import Defect, InspectionResult, Verdict
from inspector_agent.settings import Settings
from training.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def expert_results(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, InspectionResult]:
    """Real expert answers for a good and a defective part."""
    root = tmp_path_factory.mktemp("fusion")
    refs = ReferenceSet("part", write_references(root / "refs"))
    expert = make_grounder("expert", Settings(data_dir=root / "data"))
    return {d: expert.ground(GroundingRequest(part_image(7, d), refs)) for d in (False, True)}


def model_answer(verdict: Verdict, boxes: list[Box]) -> InspectionResult:
    """A model grounder's answer, as ``result_from_answer`` builds it."""
    return InspectionResult(
        verdict=verdict,
        pred_score=float(verdict == Verdict.DEFECTIVE),
        defects=[Defect("stain", b, 1.0) for b in boxes],
        threshold=0.5,
        grounder="local",
        model="tiny",
        image_size=(160, 120),
    )


def test_masks_are_cut_from_the_expert_heatmap_inside_model_boxes(expert_results) -> None:
    expert = expert_results[True]
    assert expert.verdict == Verdict.DEFECTIVE
    box = Box(*BLOB)
    result = fuse(model_answer(Verdict.DEFECTIVE, [box]), expert)
    assert result.verdict == Verdict.DEFECTIVE and not result.disagreement
    inside = box_to_mask(box, 120, 160)
    assert result.pred_mask is not None and result.pred_mask.any()
    assert not (result.pred_mask & ~inside).any()  # nothing outside the model's box
    assert np.array_equal(result.pred_mask, expert.pred_mask & inside)
    assert result.defects[0].area_px == int(result.pred_mask.sum())
    assert result.defects[0].score == pytest.approx(float(expert.anomaly_map[inside].max()))
    assert result.grounder == "fusion" and result.model == f"tiny + {expert.model}"


def test_model_normal_but_expert_anomalous_is_surfaced(expert_results) -> None:
    result = fuse(model_answer(Verdict.OK, []), expert_results[True])
    assert result.verdict == Verdict.OK and result.disagreement
    assert "model says normal but the expert finds a strong anomaly" in result.notes[0]
    assert result.pred_mask is not None and result.pred_mask.any()  # shown, not hidden


def test_model_box_where_expert_sees_nothing_is_surfaced(expert_results) -> None:
    result = fuse(model_answer(Verdict.DEFECTIVE, [Box(0, 0, 20, 20)]), expert_results[False])
    assert result.disagreement
    assert "expert heatmap shows nothing unusual there" in result.notes[0]
    assert result.to_dict()["disagreement"] is True


def test_agreeing_normal_answers_have_no_disagreement(expert_results) -> None:
    result = fuse(model_answer(Verdict.OK, []), expert_results[False])
    assert not result.disagreement and result.notes == []


def test_fusion_end_to_end_with_the_tiny_model(tmp_path: Path, settings: Settings) -> None:
    tiny = build_tiny_model(tmp_path / "tiny")
    refs = ReferenceSet("part", write_references(tmp_path / "refs"))
    # 160x120 reaches the model as 168x112 (multiples of 28): boxes scale back by 160/168, 120/112.
    answer = '<think>stain</think><answer>{"anomaly": true, "defects": [{"label": "stain", "bbox_2d": [56, 28, 84, 70]}]}</answer>'
    local_settings = Settings(data_dir=settings.data_dir, model_path=str(tiny))
    model = make_local(
        local_settings, max_new_tokens=60, generate_kwargs=forcing_bias(tiny, answer)
    )
    fusion = FusionGrounder(model, make_grounder("expert", local_settings))
    result = fusion.ground(GroundingRequest(part_image(7, True), refs))
    assert result.grounder == "fusion" and not result.fell_back
    assert result.defects[0].box.to_list() == [53.3, 30.0, 80.0, 75.0]
    assert result.pred_mask is not None and result.pred_mask[45:60, 65:80].any()
    assert result.latency_ms > 0
