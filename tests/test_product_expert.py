"""A product manifest's own ``expert`` settings: checked when read, used to teach and inspect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from kb_helpers import make_product
from PIL import Image

from inspector_agent.grounding import GroundingRequest, ReferenceSet
from inspector_agent.grounding.expert import make_expert
from inspector_agent.grounding.expert_config import expert_config
from inspector_agent.kb import KnowledgeBase
from inspector_agent.kb.manifest import ManifestError, load_manifest, manifest_from_dict
from inspector_agent.settings import Settings

BASE = {"id": "p", "name": "P", "description": "A part."}


def _with_expert(folder: Path, expert: object) -> Path:
    path = folder / "manifest.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["expert"] = expert
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def test_manifest_expert_settings_are_kept_and_round_trip() -> None:
    manifest = manifest_from_dict({**BASE, "expert": {"top_k": 0.002, "blocks": [4, 10]}}, "m")
    assert manifest.expert == {"top_k": 0.002, "blocks": [4, 10]}
    assert manifest_from_dict(manifest.to_dict(), "m") == manifest
    plain = manifest_from_dict(BASE, "m")
    assert plain.expert == {} and "expert" not in plain.to_dict()  # older manifests unchanged


@pytest.mark.parametrize(
    ("expert", "message"),
    [
        ({"top_kk": 0.01}, "field 'expert': unknown expert setting 'top_kk'"),
        ({"top_k": 2}, "field 'expert': expert setting top_k must be between 0 and 1"),
        ({"alignment": "sideways"}, "alignment must be one of auto, aligned, global"),
        ({"whiten": "maybe"}, "field 'expert'"),
        ([0.01], "field 'expert' must be a mapping"),
    ],
)
def test_bad_manifest_expert_settings_name_the_file(
    tmp_path: Path, expert: object, message: str
) -> None:
    folder = _with_expert(make_product(tmp_path, references=1, size=32), expert)
    with pytest.raises(ManifestError, match=r"manifest\.yaml: ") as caught:
        load_manifest(folder)
    assert message in str(caught.value)


@pytest.mark.slow
def test_a_product_is_taught_and_inspected_with_its_own_settings(tmp_path: Path) -> None:
    small = (("pixels", 128 * 128), ("max_bank", 800))
    settings = Settings(data_dir=tmp_path / "data", expert=small)
    own = _with_expert(make_product(tmp_path / "src", "own", references=3), {"top_k": 0})
    plain = make_product(tmp_path / "src", "plain", references=3)
    kb = KnowledgeBase(settings)
    try:
        kb.add_product(own)
        kb.add_product(plain)
        refs, plain_refs = kb.reference_set("own"), kb.reference_set("plain")
    finally:
        kb.close()
    base = expert_config(dict(small))
    assert refs.expert == {"top_k": 0} and plain_refs.expert == {}
    assert refs.calibration["config_key"] == expert_config({"top_k": 0}, base).key()
    assert plain_refs.calibration["config_key"] == base.key()

    query = np.asarray(Image.open(refs.paths[0]).convert("RGB")).copy()
    query[40:52, 30:90] = 0  # a dark groove across the panel
    request = GroundingRequest(query=Image.fromarray(query), references=refs)
    grounder = make_expert(settings)
    result = grounder.ground(request)
    # the threshold the inspection used is the one taught with the product's settings
    assert result.threshold == pytest.approx(refs.calibration["image_threshold"])
    assert "product settings: top_k=0" in result.notes
    default = grounder.ground(
        GroundingRequest(query=request.query, references=ReferenceSet("own", refs.paths))
    )
    assert default.threshold != pytest.approx(result.threshold)
    assert result.pred_score > default.pred_score  # the map's maximum, not its top 1 %
    assert grounder.for_product(refs.expert) is grounder.for_product({"top_k": 0.0})
