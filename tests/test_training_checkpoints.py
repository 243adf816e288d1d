"""The entry point end to end on a tiny model: its checkpoints are served the prompt they learnt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector_agent.grounding.local import LocalBackend
from inspector_agent.prompts import PROMPT_STYLE_FILE
from training.config import TrainConfig
from training.train import run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("compact", [True, False])
def test_checkpoints_record_the_prompt_style_the_grounders_read(
    tmp_path: Path, compact: bool
) -> None:
    config = TrainConfig(
        output_dir=str(tmp_path), train_count=4, eval_count=2, image_size=56, tiny_layers=1,
        compact_prompt=compact, sft_steps=1, sft_batch_size=2, grpo_steps=1, num_generations=2,
        max_completion_length=4, max_regenerations=0, logging_steps=1, torch_threads=1,
    )  # fmt: skip
    report = run(config)
    assert set(report) >= {"after_sft", "after_grpo", "fixed_box_iou"}
    for stage in ("sft", "grpo"):
        style = json.loads((tmp_path / stage / PROMPT_STYLE_FILE).read_text("utf-8"))
        assert style == {"compact": compact}
        assert LocalBackend(str(tmp_path / stage), max_new_tokens=4).compact is compact
