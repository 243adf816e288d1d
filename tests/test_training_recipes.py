"""Every shipped recipe parses into TrainConfig; overrides and bad recipes give clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import RecipeError, TrainConfig, load_config
from training.rewards import get_rewards

RECIPES = sorted((Path(__file__).parents[1] / "training" / "recipes").glob("*.yaml"))


def test_recipes_exist() -> None:
    assert {p.stem for p in RECIPES} >= {"qwen2.5-vl-3b", "tiny-cpu"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_parses(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, TrainConfig)
    assert len(get_rewards(config.rewards)) == len(config.rewards)
    assert config.num_generations >= 2


def test_gpu_recipe_has_the_papers_settings() -> None:
    config = load_config(Path(RECIPES[0]).with_name("qwen2.5-vl-3b.yaml"))
    assert (config.num_generations, config.beta, config.learning_rate) == (8, 0.04, 1e-6)
    assert (
        config.max_completion_length == 256 and config.use_vllm and config.vllm_mode == "colocate"
    )


def test_overrides_are_typed(tmp_path: Path) -> None:
    config = load_config(
        None, ["grpo_steps=3", "learning_rate=1e-4", "kinds=[stain, scratch]", "lora=true"]
    )
    assert (config.grpo_steps, config.learning_rate, config.kinds, config.lora) == (
        3,
        1e-4,
        ["stain", "scratch"],
        True,
    )
    assert load_config(None, ["beta=0"]).beta == 0.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["nope=1"], "unknown recipe keys: nope"),
        (["grpo_steps=many"], "grpo_steps must be int"),
        (["grpo_steps"], "not key=value"),
        (["num_generations=1"], "at least 2"),
        (["data=mvtec"], "needs data_path"),
        (["rewards=[format]", "reward_weights=[1, 2]"], "one weight per reward"),
    ],
)
def test_bad_recipes(overrides: list[str], message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_config(None, overrides)


def test_unreadable_recipe(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n", "utf-8")
    with pytest.raises(RecipeError, match="mapping"):
        load_config(bad)
    with pytest.raises(RecipeError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
