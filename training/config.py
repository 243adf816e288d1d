"""The training recipe: a dataclass whose fields carry help texts, read from YAML plus overrides."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from inspector_agent.errors import InspectorError
from training.rewards import REWARDS
from training.tiny_spec import TinySpec, TinySpecError


class RecipeError(InspectorError):
    """A recipe that cannot be used, naming the file or key and the problem."""


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


# The smallest value of each numeric knob; below it a run fails late or silently does nothing.
_LEAST: dict[str, int] = {
    "seed": 0,
    "train_count": 1,
    "eval_count": 1,
    "image_size": 28,
    "sft_steps": 0,
    "sft_batch_size": 1,
    "grpo_steps": 0,
    "prompts_per_step": 1,
    "max_completion_length": 1,
    "max_regenerations": 0,
    "lora_r": 1,
    "logging_steps": 1,
    "save_steps": 0,
    "torch_threads": 0,
    "beta": 0,
    "good_jitter": 0,
}
LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo")  # TRL's, as our trainer subclass uses them
_CHOICES = {
    "data": ("synthetic", "mvtec", "mmad", "corrections"),
    "loss_type": LOSS_TYPES,
    "vllm_mode": ("colocate", "server"),
}
_ABOVE_ZERO = ("sft_lr", "learning_rate", "temperature", "tiny_rope_theta")


@dataclass
class TrainConfig:
    """Every knob of ``python -m training.train``; YAML recipes set them, ``key=value`` overrides."""

    model: str = _f(
        "tiny", "checkpoint path or hub id on your machine; 'tiny' builds a tiny Qwen2.5-VL"
    )
    output_dir: str = _f(
        "runs/tiny", "where checkpoints, metrics.jsonl, rewards.png and eval.json go"
    )
    seed: int = _f(0, "random seed for data, model init and training")
    # data
    data: str = _f("synthetic", "synthetic | mvtec | mmad | corrections")
    data_path: str = _f("", "MVTec root, mmad.json, or corrections JSONL (not for synthetic)")
    image_root: str = _f("", "MMAD image root (mmad only)")
    train_count: int = _f(2000, "synthetic training pairs")
    eval_count: int = _f(60, "held-out synthetic pairs for eval.json (half normal)")
    image_size: int = _f(
        112, "synthetic image side in pixels (a multiple of 28 aligns to image tokens)"
    )
    kinds: list[str] = field(
        default_factory=lambda: ["cell"],
        metadata={"help": "synthetic anomaly kinds: cell, stain, patch, scratch"},
    )
    normal_fraction: float = _f(0.5, "share of normal pairs (class balance)")
    good_jitter: float = _f(40.0, "synthetic good parts' base colour spread (small: one product)")
    compact_prompt: bool = _f(False, "the prompt builder's compact mode (tiny CPU models)")
    curriculum: bool = _f(True, "order GRPO anomalies from large to small defects")
    # tiny model
    tiny_layers: int = _f(4, "text layers of the tiny model")
    tiny_hidden: int = _f(128, "text hidden size of the tiny model")
    tiny_rope_theta: float = _f(
        10.0, "rotary base of the tiny model (small: image rows/columns apart)"
    )
    # SFT warm start
    sft_steps: int = _f(0, "SFT warm-start steps on the answer format (0 skips)")
    sft_lr: float = _f(1e-3, "SFT learning rate")
    sft_batch_size: int = _f(16, "SFT batch size")
    # GRPO
    grpo_steps: int = _f(0, "GRPO optimiser steps (0 skips)")
    learning_rate: float = _f(1e-6, "GRPO learning rate")
    lr_scheduler_type: str = _f("constant", "GRPO learning-rate schedule")
    num_generations: int = _f(8, "completions per prompt (group size)")
    prompts_per_step: int = _f(1, "prompt groups per optimiser step")
    beta: float = _f(0.04, "KL coefficient against the reference model")
    loss_type: str = _f("grpo", f"TRL loss type: {', '.join(LOSS_TYPES)}")
    temperature: float = _f(1.0, "sampling temperature for GRPO generations")
    max_completion_length: int = _f(256, "longest generated answer in tokens")
    rewards: list[str] = field(
        default_factory=lambda: ["format", "verdict", "localization", "roam"],
        metadata={"help": "reward names (training.rewards)"},
    )
    reward_weights: list[float] = field(
        default_factory=list, metadata={"help": "one weight per reward (empty: all 1)"}
    )
    difficulty_weighting: bool = _f(True, "DifferAD-R1 loss weight per group")
    max_regenerations: int = _f(2, "redraws of groups whose rewards are all equal and wrong")
    lora: bool = _f(False, "train a LoRA adapter instead of all weights")
    lora_r: int = _f(64, "LoRA rank")
    use_vllm: bool = _f(False, "generate with vLLM (GPU recipes)")
    vllm_mode: str = _f("colocate", "vLLM mode: colocate or server")
    bf16: bool = _f(False, "bfloat16 training (GPU)")
    gradient_checkpointing: bool = _f(False, "trade compute for memory (large models)")
    use_cpu: bool = _f(True, "train on the CPU")
    logging_steps: int = _f(5, "log metrics every N steps")
    save_steps: int = _f(0, "checkpoint every N GRPO steps (0: only at the end)")
    torch_threads: int = _f(0, "torch threads (0: leave the default)")

    def __post_init__(self) -> None:
        """Check the values that would otherwise fail deep inside a run."""
        for name, least in _LEAST.items():
            value = getattr(self, name)
            if value < least:
                raise RecipeError(f"{name} must be {least} or more, got {value}")
        for name in _ABOVE_ZERO:
            if not getattr(self, name) > 0:
                raise RecipeError(f"{name} must be above 0, got {getattr(self, name)}")
        if self.model == "tiny":
            try:
                TinySpec(
                    layers=self.tiny_layers,
                    hidden=self.tiny_hidden,
                    rope_theta=self.tiny_rope_theta,
                )
            except TinySpecError as exc:
                raise RecipeError(f"tiny model: {exc}") from None
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                options = (
                    " or ".join(allowed) if len(allowed) == 2 else "one of " + ", ".join(allowed)
                )
                raise RecipeError(f"{name} must be {options}, not {getattr(self, name)!r}")
        if self.data != "synthetic" and not self.data_path:
            raise RecipeError(f"data={self.data} needs data_path")
        from transformers import SchedulerType

        if self.lr_scheduler_type not in {kind.value for kind in SchedulerType}:
            raise RecipeError(
                f"lr_scheduler_type {self.lr_scheduler_type!r} is not a transformers schedule "
                "(constant, linear, cosine, ...)"
            )
        unknown = [name for name in self.rewards if name not in REWARDS]
        if unknown:
            raise RecipeError(f"unknown rewards {', '.join(unknown)} (known: {', '.join(REWARDS)})")
        if self.num_generations < 2:
            raise RecipeError("num_generations must be at least 2 (GRPO compares a group)")
        if self.reward_weights and len(self.reward_weights) != len(self.rewards):
            raise RecipeError("reward_weights needs one weight per reward")
        if not 0.0 <= self.normal_fraction <= 1.0:
            raise RecipeError("normal_fraction must be between 0 and 1")


def _read_recipe(path: Path) -> dict[str, Any]:
    """The mapping a YAML recipe file holds; a one-line :class:`RecipeError` for anything else."""
    try:
        values = yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read recipe ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise RecipeError(f"{path}: not a recipe (not UTF-8 text)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise RecipeError(f"{path}: not valid YAML{where} ({problem})") from None
    if values is None:
        raise RecipeError(f"{path}: the recipe is empty")
    if not isinstance(values, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys to values")
    return values


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    """Read a YAML recipe and apply ``key=value`` overrides (values parsed as YAML)."""
    values: dict[str, Any] = {}
    if path is not None:
        values = _read_recipe(Path(path))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise RecipeError(f"override {item!r} is not key=value")
        values[key.strip()] = yaml.safe_load(raw)
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise RecipeError(f"unknown recipe keys: {', '.join(unknown)}")
    for key, value in values.items():
        default = known[key].default
        expected = type(default) if default is not MISSING else list
        if expected is float and isinstance(value, int | str) and not isinstance(value, bool):
            try:  # YAML reads 1e-4 (no dot) as a string
                values[key] = float(value)
            except ValueError:
                raise RecipeError(f"{key} must be float, got {value!r}") from None
        elif not isinstance(values[key], expected) or (expected is int and isinstance(value, bool)):
            raise RecipeError(f"{key} must be {expected.__name__}, got {value!r}")
    return TrainConfig(**values)
