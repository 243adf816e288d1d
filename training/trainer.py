"""Difficulty-aware GRPO (DifferAD-R1) as the smallest subclass of TRL's ``GRPOTrainer``.

Two switchable additions, both logged with TRL's metrics:
- a per-group loss weight ``w = (exp(1 - mean_reward) + sqrt(1 + p_err)) / 2`` applied to the
  advantages (``p_err``: share of the group scoring under ``error_threshold``);
- regeneration of generation batches holding a group whose rewards are all equal and not all
  correct, up to ``max_regenerations`` times (with one group per generation batch, as in our
  recipes, exactly that group is redrawn).
Rewards are normalised to [0, 1] as the weighted mean of the reward functions.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer


def difficulty_weights(group_rewards: torch.Tensor, error_threshold: float = 0.3) -> torch.Tensor:
    """DifferAD-R1's weight per group (rows: groups, columns: normalised rewards in [0, 1]).

    >>> round(float(difficulty_weights(torch.tensor([[1.0, 1.0]]))[0]), 4)
    1.0
    """
    mean = group_rewards.mean(dim=1)
    p_err = (group_rewards < error_threshold).float().mean(dim=1)
    return (torch.exp(1.0 - mean) + torch.sqrt(1.0 + p_err)) / 2.0


def degenerate_groups(group_rewards: torch.Tensor, correct: float = 0.99) -> torch.Tensor:
    """True for groups whose rewards are all equal and not all correct (zero-advantage groups)."""
    equal = (group_rewards.max(dim=1).values - group_rewards.min(dim=1).values) < 1e-6
    return equal & (group_rewards.min(dim=1).values < correct)


class DifficultyAwareGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` plus DifferAD-R1's difficulty weighting and regeneration of stuck groups."""

    def __init__(
        self,
        *args: Any,
        difficulty_weighting: bool = True,
        max_regenerations: int = 0,
        error_threshold: float = 0.3,
        correct_threshold: float = 0.99,
        **kwargs: Any,
    ) -> None:
        """Same arguments as ``GRPOTrainer`` plus the two switches and their thresholds."""
        super().__init__(*args, **kwargs)
        self.difficulty_weighting = difficulty_weighting
        self.max_regenerations = max_regenerations
        self.error_threshold = error_threshold
        self.correct_threshold = correct_threshold
        self._last_rewards: torch.Tensor | None = None

    def _calculate_rewards(
        self,
        inputs: list[dict[str, Any]],
        prompts: list[Any],
        completions: list[Any],
        completion_ids_list: list[list[int]],
    ) -> torch.Tensor:
        """TRL's rewards per completion and function, kept for the group statistics."""
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards = rewards
        return rewards

    def _group_rewards(self) -> torch.Tensor:
        """Normalised rewards of the last scored batch, shaped (groups, num_generations)."""
        assert self._last_rewards is not None
        weights = self.reward_weights.to(self._last_rewards.device)
        valid = ~torch.isnan(self._last_rewards)
        total = (torch.nan_to_num(self._last_rewards) * weights).sum(dim=1)
        norm = (valid.float() * weights.abs()).sum(dim=1).clamp(min=1e-8)
        return (total / norm).view(-1, self.num_generations)

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        mode = "train" if self.model.training else "eval"
        output = super()._generate_and_score_completions(inputs)
        if mode != "train":
            return output
        regenerated = 0
        stuck = int(degenerate_groups(self._group_rewards(), self.correct_threshold).sum())
        for _ in range(self.max_regenerations):
            if stuck == 0:
                break
            regenerated += stuck
            output = super()._generate_and_score_completions(inputs)
            stuck = int(degenerate_groups(self._group_rewards(), self.correct_threshold).sum())
        self._metrics[mode]["difficulty/regenerated_groups"].append(float(regenerated))
        self._metrics[mode]["difficulty/stuck_groups"].append(float(stuck))
        if self.difficulty_weighting:
            weights = difficulty_weights(self._group_rewards(), self.error_threshold)
            per_completion = weights.repeat_interleave(self.num_generations)
            start = self.accelerator.process_index * len(inputs)
            local = per_completion[start : start + len(inputs)].to(output["advantages"].device)
            output["advantages"] = output["advantages"] * local
            self._metrics[mode]["difficulty/weight_mean"].append(float(weights.mean()))
            self._metrics[mode]["difficulty/weight_max"].append(float(weights.max()))
        return output
