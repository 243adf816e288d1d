"""The local grounder: real tiny Qwen2.5-VL in-process, the shared prompt and parser, fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_model_helpers import forcing_bias, part_image, write_references

from inspector_agent.cli import main
from inspector_agent.grounding import GroundingRequest, ReferenceSet, make_grounder
from inspector_agent.grounding.local import make_local
from inspector_agent.imaging import smart_resize
from inspector_agent.prompts import (
    COMPACT_SYSTEM_PROMPT,
    DEFAULT_MAX_PIXELS,
    SYSTEM_PROMPT,
    PromptBundle,
    save_prompt_style,
)
from inspector_agent.schema import ParseStatus, Verdict
from inspector_agent.settings import Settings
from training.tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def references(tmp_path: Path) -> ReferenceSet:
    return ReferenceSet("part", write_references(tmp_path / "refs"))


def test_forced_answer_is_parsed_and_mapped_to_original_pixels(
    tiny: Path, references: ReferenceSet, settings: Settings
) -> None:
    query = part_image(7, defect=True, size=(300, 200))
    height, width = smart_resize(200, 300, 28, 56 * 56, DEFAULT_MAX_PIXELS)
    answer = (
        "<think>a dark stain differs</think><answer>"
        '{"anomaly": true, "defects": [{"label": "stain", "bbox_2d": [28, 56, 112, 84]}]}</answer>'
    )
    grounder = make_local(
        Settings(data_dir=settings.data_dir, model_path=str(tiny)),
        max_new_tokens=80,
        generate_kwargs=forcing_bias(tiny, answer),
    )
    result = grounder.ground(GroundingRequest(query, references))
    assert (result.grounder, result.fell_back, result.parse_status) == (
        "local",
        False,
        ParseStatus.OK,
    )
    assert result.verdict == Verdict.DEFECTIVE and result.model == str(tiny)
    assert result.reasoning == "a dark stain differs"
    sx, sy = 300 / width, 200 / height
    [defect] = result.defects
    assert defect.label == "stain" and defect.box.space == "original"
    assert defect.box.to_list() == pytest.approx([28 * sx, 56 * sy, 112 * sx, 84 * sy], abs=0.06)
    assert result.image_size == (300, 200) and (width, height) != (300, 200)
    assert json.loads(json.dumps(result.to_dict()))["parse_status"] == "ok"


def test_random_model_output_falls_back_to_expert_and_says_so(
    tiny: Path, references: ReferenceSet, settings: Settings
) -> None:
    grounder = make_local(
        Settings(data_dir=settings.data_dir, model_path=str(tiny)), max_new_tokens=24
    )
    result = grounder.ground(GroundingRequest(part_image(7, defect=True), references))
    assert result.fell_back and result.grounder == "expert"
    assert result.parse_status in (ParseStatus.INVALID, ParseStatus.EMPTY)
    assert "could not be read" in result.notes[0]
    assert "expert grounder instead" in result.notes[0]
    assert result.verdict == Verdict.DEFECTIVE  # the expert still finds the blob


def test_non_multimodal_checkpoint_is_refused_by_model_type(
    tmp_path: Path, references: ReferenceSet, settings: Settings
) -> None:
    # The folder name says "qwen2_5_vl"; only config.model_type counts.
    fake = tmp_path / "qwen2_5_vl-looking-name"
    fake.mkdir()
    (fake / "config.json").write_text(json.dumps({"model_type": "bert"}))
    grounder = make_grounder("local", Settings(data_dir=settings.data_dir, model_path=str(fake)))
    result = grounder.ground(GroundingRequest(part_image(3), references))
    assert result.fell_back
    assert "'bert' model, not an image-and-text model" in result.notes[0]


def test_missing_model_setting_is_a_plain_message(
    references: ReferenceSet, settings: Settings
) -> None:
    result = make_grounder("local", settings).ground(GroundingRequest(part_image(3), references))
    assert result.fell_back
    assert result.notes[0].startswith("No local model is configured")


def test_cli_inspect_with_local_model_reports_grounder_status_and_fallback(
    tiny: Path, references: ReferenceSet, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    image = tmp_path / "query.png"
    part_image(8, defect=True).save(image)
    args = ["--data-dir", str(tmp_path / "data"), "inspect", str(image), "--references",
            str(references.paths[0].parent), "--grounder", "local", "--model", str(tiny), "--json"]  # fmt: skip
    assert main(args) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["grounder"] == "expert" and row["fell_back"] is True
    assert row["parse_status"] == "invalid"
    assert "expert grounder instead" in row["notes"][0]


@pytest.mark.parametrize("compact", [True, False, None])
def test_checkpoint_gets_the_prompt_style_it_was_trained_with(
    tiny: Path, references: ReferenceSet, settings: Settings, tmp_path: Path, compact: bool | None
) -> None:
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(tiny, checkpoint)
    if compact is not None:  # None: no inspector_prompt.json, a checkpoint from elsewhere
        save_prompt_style(checkpoint, compact=compact)
    grounder = make_local(
        Settings(data_dir=settings.data_dir, model_path=str(checkpoint)), max_new_tokens=4
    )
    seen: list[PromptBundle] = []
    backend = grounder.backend
    generate = backend.generate
    backend.generate = lambda prompts, *args: seen.extend(prompts) or generate(prompts, *args)  # type: ignore[method-assign]
    grounder.ground(GroundingRequest(part_image(3), references))
    [bundle] = seen
    assert bundle.system == (COMPACT_SYSTEM_PROMPT if compact else SYSTEM_PROMPT)
    texts = [p["text"] for p in bundle.messages[1]["content"] if p["type"] == "text"]
    assert texts[0] == ("Reference 1:" if compact else "Reference image 1 (known good):")
