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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sft_batch_size=0", "sft_batch_size must be 1 or more, got 0"),
        ("grpo_steps=-1", "grpo_steps must be 0 or more"),
        ("seed=-1", "seed must be 0 or more"),
        ("image_size=10", "image_size must be 28 or more"),
        ("temperature=0", "temperature must be above 0"),
        ("learning_rate=-1e-6", "learning_rate must be above 0"),
        ("tiny_hidden=100", "tiny model: hidden / heads"),
        ("tiny_layers=0", "tiny model: layers must be 1 or more"),
        ("rewards=[format, nope]", "unknown rewards nope"),
        ("loss_type=ppo", "loss_type must be one of grpo, dapo"),
        ("lr_scheduler_type=sometimes", "not a transformers schedule"),
        ("vllm_mode=remote", "vllm_mode must be colocate or server"),
    ],
)
def test_values_a_run_could_only_fail_on_later_are_refused(override: str, message: str) -> None:
    with pytest.raises(RecipeError, match=message):
        load_config(None, [override])


def test_a_tiny_dimension_is_not_checked_for_another_model() -> None:
    assert load_config(None, ["model=/some/checkpoint", "tiny_hidden=100"]).tiny_hidden == 100


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the recipe is empty"),
        ("foo: [\n", "not valid YAML at line 2"),
        ("a: 1\n\tb: 2\n", "not valid YAML"),
    ],
)
def test_a_bad_recipe_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text, "utf-8")
    with pytest.raises(RecipeError, match=message) as caught:
        load_config(recipe)
    assert "\n" not in str(caught.value)


def test_train_cli_refuses_an_unusable_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from training.train import main

    (tmp_path / "afile").write_text("x", "utf-8")
    code = main([f"output_dir={tmp_path / 'afile' / 'run'}", "train_count=2", "eval_count=2"])
    err = capsys.readouterr().err
    assert code == 2 and "is a file, not a folder" in err and "Traceback" not in err
    code = main([f"output_dir={tmp_path / 'afile'}"])
    assert code == 2 and "is a file; the checkpoints and metrics need a folder" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=mvtec", "data_path={tmp}/missing"], "missing: folder not found"),
        (["data=mvtec", "data_path={tmp}/afile"], "afile: is a file, not a folder"),
        (["data=corrections", "data_path={tmp}/empty.jsonl"], "empty.jsonl: no training rows"),
        (["model={tmp}/missing"], "missing: no such checkpoint folder"),
        (["model={tmp}/emptydir"], "emptydir: cannot load it"),
    ],
)
def test_train_cli_names_unusable_data_and_models(
    tmp_path: Path, capsys: pytest.CaptureFixture, overrides: list[str], message: str
) -> None:
    from training.train import main

    (tmp_path / "afile").write_text("x", "utf-8")
    (tmp_path / "empty.jsonl").write_text("\n", "utf-8")
    (tmp_path / "emptydir").mkdir()
    argv = [o.format(tmp=tmp_path) for o in overrides]
    code = main([*argv, f"output_dir={tmp_path / 'run'}", "train_count=2", "eval_count=2"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
