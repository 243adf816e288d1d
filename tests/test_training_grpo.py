"""A few real GRPO steps of the tiny Qwen2.5-VL with our rewards and the difficulty-aware trainer."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from training.config import TrainConfig
from training.datasets import synthetic_pairs, to_dataset
from training.grpo import make_trainer
from training.trainer import degenerate_groups, difficulty_weights

pytestmark = pytest.mark.slow


def test_difficulty_weight_by_hand() -> None:
    groups = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.2, 1.0]])
    expected = [1.0, (math.e + math.sqrt(2)) / 2, (math.exp(0.4) + math.sqrt(1.5)) / 2]
    assert difficulty_weights(groups).tolist() == pytest.approx(expected)
    assert degenerate_groups(groups).tolist() == [False, True, False]
    assert degenerate_groups(torch.tensor([[0.5, 0.5]])).tolist() == [True]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.tiny_model import TinySpec, build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"), TinySpec(layers=2))


class Recorder:
    """A reward that records its columns; the first call of each step scores all zeros."""

    __name__ = "recorder"

    def __init__(self, stuck_first: bool = True) -> None:
        self.calls: list[dict[str, Any]] = []
        self.stuck_first = stuck_first

    def __call__(self, completions: list, **columns: Any) -> list[float]:
        self.calls.append(columns)
        if (
            self.stuck_first and len(self.calls) % 2 == 1
        ):  # stuck: equal and wrong, must be regenerated
            return [0.0] * len(completions)
        return [len(c[0]["content"]) / 10.0 for c in completions]


def _trainer(tiny: Path, tmp_path: Path, recorder: Recorder, **overrides: Any):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForImageTextToText, AutoProcessor

    config = TrainConfig(
        output_dir=str(tmp_path), grpo_steps=2, num_generations=4, max_completion_length=8,
        learning_rate=1e-2, beta=0.0, loss_type="dapo", logging_steps=1, curriculum=False,
        **overrides,
    )  # fmt: skip
    model = AutoModelForImageTextToText.from_pretrained(tiny)
    processor = AutoProcessor.from_pretrained(tiny)
    rows = synthetic_pairs(4, size=56, kinds=["cell"], seed=1)
    return make_trainer(
        config, model, processor, to_dataset(rows), tmp_path, extra_rewards=[recorder]
    )


def test_grpo_steps_change_weights_and_use_both_paths(tiny: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    trainer = _trainer(tiny, tmp_path, recorder, max_regenerations=1, difficulty_weighting=True)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed, "no parameter moved"
    first = recorder.calls[0]
    assert {"anomaly", "boxes", "labels", "option", "solution", "task"} <= set(first)
    assert len(first["anomaly"]) == 4 and all(isinstance(a, bool) for a in first["anomaly"])
    assert all(isinstance(b, list) for b in first["boxes"])
    logged = {k for r in trainer.state.log_history for k in r}
    assert len(recorder.calls) == 4  # each of 2 steps: one stuck batch, one regeneration
    assert {
        "difficulty/regenerated_groups",
        "difficulty/weight_mean",
        "rewards/recorder/mean",
    } <= logged
    regenerated = [
        r["difficulty/regenerated_groups"]
        for r in trainer.state.log_history
        if "difficulty/regenerated_groups" in r
    ]
    assert regenerated and all(v == 1.0 for v in regenerated)


def test_switches_turn_both_paths_off(tiny: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    trainer = _trainer(tiny, tmp_path, recorder, max_regenerations=0, difficulty_weighting=False)
    trainer.train()
    logged = {k for r in trainer.state.log_history for k in r}
    assert len(recorder.calls) == 2  # no regeneration
    assert "difficulty/weight_mean" not in logged
    assert all(
        r.get("difficulty/regenerated_groups", 0.0) == 0.0 for r in trainer.state.log_history
    )


def test_weighting_scales_advantages(tiny: Path, tmp_path: Path) -> None:
    recorder = Recorder(stuck_first=False)
    trainer = _trainer(tiny, tmp_path, recorder, max_regenerations=0, difficulty_weighting=True)
    trainer.model.train()
    output = trainer._generate_and_score_completions([trainer.train_dataset[0]] * 4)
    rewards = trainer._last_rewards.nansum(dim=1)  # TRL's summed reward, all weights 1
    centred = rewards - rewards.mean()
    unweighted = centred / (rewards.std() + 1e-4)
    weight = difficulty_weights(trainer._group_rewards())[0]
    assert unweighted.abs().sum() > 0
    assert output["advantages"] == pytest.approx((unweighted * weight).tolist(), rel=1e-4, abs=1e-5)
