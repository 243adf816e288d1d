"""The GRPO stage: TRL config from the recipe, our rewards, the difficulty-aware trainer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import PreTrainedModel, ProcessorMixin, TrainerCallback
from trl import GRPOConfig

from inspector_agent.prompts import save_prompt_style
from training.config import TrainConfig
from training.rewards import get_rewards
from training.trainer import DifficultyAwareGRPOTrainer


class _Forward(TrainerCallback):
    """Sends each of TRL's log records to our metrics log, tagged with the GRPO stage."""

    def __init__(self, log: Callable[[dict[str, Any]], None]) -> None:
        self.log = log

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any
    ) -> None:
        """Forward one record."""
        if logs:
            self.log({"stage": "grpo", "step": state.global_step, **logs})


def grpo_args(config: TrainConfig, out_dir: Path) -> GRPOConfig:
    """TRL's ``GRPOConfig`` for a recipe: one prompt group per generation batch."""
    return GRPOConfig(
        output_dir=str(out_dir),
        max_steps=config.grpo_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        per_device_train_batch_size=config.num_generations,
        gradient_accumulation_steps=config.prompts_per_step,
        steps_per_generation=1,  # one prompt group per generation batch: regeneration redraws it alone
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        loss_type=config.loss_type,
        reward_weights=config.reward_weights or None,
        shuffle_dataset=not config.curriculum,
        use_vllm=config.use_vllm,
        vllm_mode=config.vllm_mode,
        bf16=config.bf16,
        gradient_checkpointing=config.gradient_checkpointing,
        use_cpu=config.use_cpu,
        logging_steps=config.logging_steps,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        seed=config.seed,
        report_to="none",
        remove_unused_columns=False,
    )


def make_trainer(
    config: TrainConfig,
    model: PreTrainedModel,
    processor: ProcessorMixin,
    dataset: Dataset,
    out_dir: Path,
    log: Callable[[dict[str, Any]], None] | None = None,
    extra_rewards: list[Callable[..., list[float | None]]] = (),
) -> DifficultyAwareGRPOTrainer:
    """A ready-to-train difficulty-aware GRPO trainer: the recipe's rewards plus ``extra_rewards``."""
    peft_config = None
    if config.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=config.lora_r,
            lora_alpha=2 * config.lora_r,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    processor.tokenizer.padding_side = "left"
    return DifficultyAwareGRPOTrainer(
        model=model,
        reward_funcs=[*get_rewards(config.rewards), *extra_rewards],
        args=grpo_args(config, out_dir),
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config,
        callbacks=[_Forward(log)] if log else None,
        difficulty_weighting=config.difficulty_weighting,
        max_regenerations=config.max_regenerations,
    )


def run_grpo(
    config: TrainConfig,
    model: PreTrainedModel,
    processor: ProcessorMixin,
    dataset: Dataset,
    out_dir: Path,
    log: Callable[[dict[str, Any]], None],
) -> PreTrainedModel:
    """Train, save a standalone checkpoint (LoRA merged) with its processor and prompt style,
    return the model."""
    trainer = make_trainer(config, model, processor, dataset, out_dir, log)
    trainer.train()
    trained = trainer.model
    if config.lora:
        trained = trained.merge_and_unload()
    trained.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    save_prompt_style(out_dir, compact=config.compact_prompt)
    return trained
