"""Settings: defaults < TOML file < ``INSPECTOR_*`` environment < flags, and the ``[expert]`` table."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from inspector_agent.cli import main
from inspector_agent.grounding import make_grounder
from inspector_agent.grounding.expert_config import ExpertConfig, expert_config
from inspector_agent.settings import Settings, SettingsError, load_settings
from tests.mvtec_helpers import make_mvtec


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inspector.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch) -> None:
    config = _file(tmp_path, 'port = 7000\ngrounder = "vlm"\nmodel_timeout_s = 5\n')
    monkeypatch.delenv("INSPECTOR_GROUNDER", raising=False)
    monkeypatch.delenv("INSPECTOR_PORT", raising=False)
    s = load_settings(config)
    assert (s.port, s.grounder, s.model_timeout_s) == (7000, "vlm", 5.0)
    monkeypatch.setenv("INSPECTOR_PORT", "7100")
    assert load_settings(config).port == 7100
    assert load_settings(config, port=7200).port == 7200
    monkeypatch.setenv("INSPECTOR_PORT", "seven")
    with pytest.raises(SettingsError, match="port must be a number"):
        load_settings(config)


def test_unknown_setting_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="unknown setting 'prot'"):
        load_settings(_file(tmp_path, "prot = 1\n"))
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings(_file(tmp_path, "port = \n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 99999\n", "port must be 65535 or less, got 99999"),
        ("port = 0\n", "port must be 1 or more, got 0"),
        ("torch_threads = 0\n", "torch_threads must be 1 or more"),
        ("max_upload_mb = -1\n", "max_upload_mb must be 1 or more"),
        ("model_timeout_s = 0\n", "model_timeout_s must be above 0"),
        ('data_dir = "taken"\n', "taken is a file, not a folder"),
        ('data_dir = "taken/inspector"\n', "taken is a file, not a folder"),
    ],
)
def test_values_that_could_only_fail_later_are_refused(
    tmp_path: Path, monkeypatch, text: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INSPECTOR_DATA_DIR")  # the file's data_dir would lose to it
    Path("taken").write_text("a file where a folder is asked for\n")
    with pytest.raises(SettingsError, match=message):
        load_settings(_file(tmp_path, text))


def test_a_file_for_the_data_directory_is_one_line(tmp_path: Path, capsys) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file where a folder is asked for\n")
    assert main(["--data-dir", str(taken), "kb", "list"]) == 2
    err = capsys.readouterr().err
    assert f"data directory {taken}: {taken} is a file" in err and "Traceback" not in err


def test_expert_table_reaches_the_grounder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("INSPECTOR_EXPERT", raising=False)
    text = "[expert]\ntop_k = 0\nblocks = [4, 10, 15]\nwhiten = false\nalignment = 'global'\n"
    settings = load_settings(_file(tmp_path, text), data_dir=tmp_path / "data")
    config = make_grounder("expert", settings).config
    assert (config.top_k, config.blocks, config.whiten, config.alignment) == (
        0.0,
        (4, 10, 15),
        False,
        "global",
    )
    assert config.pixels == ExpertConfig().pixels  # the rest keep their defaults
    assert config.key() != ExpertConfig().key()  # so banks and calibrations are kept apart
    assert make_grounder("expert", Settings(data_dir=tmp_path)).config == ExpertConfig()
    every_default = {f.name: getattr(ExpertConfig(), f.name) for f in fields(ExpertConfig)}
    assert expert_config(every_default) == ExpertConfig()  # the defaults pass their own checks


def test_expert_overrides_from_the_environment_are_typed(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INSPECTOR_EXPERT", "top_k=0.002, sigma=8,whiten=no, blocks=4 10 15")
    config = expert_config(dict(load_settings().expert))
    assert (config.top_k, config.sigma, config.whiten, config.blocks) == (
        0.002,
        8.0,
        False,
        (4, 10, 15),
    )
    monkeypatch.setenv("INSPECTOR_EXPERT", "top_k")
    with pytest.raises(SettingsError, match="name=value"):
        load_settings()


def test_an_expert_value_that_is_not_a_table(tmp_path: Path) -> None:
    for text in ("expert = [1, 2]\n", "expert = 5\n"):
        with pytest.raises(SettingsError, match=r"\[expert\] settings must be a table"):
            load_settings(_file(tmp_path, text))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("topk = 0.01", "unknown expert setting 'topk'; known: .*top_k"),
        ("top_k = 'abc'", "expert setting top_k must be a number, got 'abc'"),
        ("max_bank = 10.5", "max_bank must be a whole number"),
        ("whiten = 'maybe'", "whiten must be true or false"),
        ("blocks = 4", "blocks must be a list of whole numbers"),
        ("sigma = true", "sigma must be a number"),
        ("top_k = nan", "top_k must be a number"),
        ("alignment = 'globl'", "alignment must be one of auto, aligned, global, got 'globl'"),
        ("pixels = 0", "pixels must be above 0"),
        ("top_k = 1.5", "top_k must be between 0 and 1"),
        ("sigma = -1", "sigma must be 0 or more"),
        ("blocks = [4, 16]", "blocks must be numbers 0-15"),
    ],
)
def test_bad_expert_settings_are_named(tmp_path: Path, table: str, message: str) -> None:
    settings = load_settings(_file(tmp_path, f"[expert]\n{table}\n"), data_dir=tmp_path)
    with pytest.raises(SettingsError, match=message):
        make_grounder("expert", settings)


def test_cli_evaluates_with_the_file_config_and_reports_it(tmp_path: Path, capsys) -> None:
    data = make_mvtec(tmp_path / "mvtec", n_train=3, n_good=1, n_bad=1)
    config = _file(tmp_path, "[expert]\npixels = 25600\nmax_bank = 800\ntop_k = 0\n")
    out = tmp_path / "report.json"
    argv = ["--data-dir", str(tmp_path / "data"), "--config", str(config), "eval"]
    code = main([*argv, "localization", str(data), "--shots", "3", "--json", str(out)])
    assert code == 0
    grounder_config = json.loads(out.read_text())["config"]["grounder_config"]
    assert (grounder_config["pixels"], grounder_config["top_k"]) == (25600, 0.0)

    _file(tmp_path, "[expert]\npixel = 25600\n")
    code = main([*argv, "localization", str(data), "--json", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("error: unknown expert setting 'pixel'")
    assert "Traceback" not in "\n".join(err)
