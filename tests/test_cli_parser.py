"""The ``inspector`` parser as a whole: every subcommand has --help, none shadows a global option."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from inspector_agent.cli import build_parser


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command words, parser) pair below ``parser``, depth first."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(((*path, name), sub))
                found.extend(_subcommands(sub, (*path, name)))
    return found


SUBCOMMANDS = _subcommands(build_parser())
GLOBAL_DESTS = {a.dest for a in build_parser()._actions} - {"help", "version", "command"}


def test_the_tree_holds_every_command() -> None:
    words = {" ".join(path) for path, _ in SUBCOMMANDS}
    assert {"inspect", "eval localization", "eval mmad", "kb import-mvtec", "records list"} <= words


@pytest.mark.parametrize("path", [p for p, _ in SUBCOMMANDS], ids=" ".join)
def test_every_subcommand_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*path, "--help"])
    assert exc.value.code == 0
    assert f"usage: inspector {' '.join(path)}" in capsys.readouterr().out


@pytest.mark.parametrize(("path", "sub"), SUBCOMMANDS, ids=[" ".join(p) for p, _ in SUBCOMMANDS])
def test_no_subcommand_argument_shadows_a_global_option(
    path: tuple[str, ...], sub: argparse.ArgumentParser
) -> None:
    # a subcommand's argument with the dest of a global option (--data-dir, --config) silently
    # replaces it: the dataset folder of `eval localization` once became the data directory
    clashes = {a.dest for a in sub._actions} & GLOBAL_DESTS
    assert not clashes, f"inspector {' '.join(path)} shadows {clashes}"


def test_eval_dataset_and_data_directory_stay_apart() -> None:
    args = build_parser().parse_args(
        ["--data-dir", "/tmp/store", "eval", "localization", "/data/mvtec", "--json", "o.json"]
    )
    assert (args.data_dir, args.dataset) == ("/tmp/store", "/data/mvtec")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "not a whole number: 'a'"),
        ("1,1", "give distinct numbers"),
        ("-1", "must be 0 or more, got -1"),
        (",", "give distinct numbers"),
    ],
)
def test_bad_seed_lists_are_usage_errors(
    text: str, message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["eval", "localization", "d", "--json", "o", f"--seed={text}"])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_seed_lists_keep_their_order() -> None:
    args = build_parser().parse_args(["eval", "localization", "d", "--json", "o", "--seed", "2,0"])
    assert args.seed == [2, 0]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["kb", "--help"],
        ["inspect", "missing.png", "--references", "refs"],
        ["eval", "localization", "missing", "--json", "out.json"],
        ["records", "list", "--limit", "0"],
    ],
    ids=" ".join,
)
def test_help_and_input_errors_do_not_load_the_models(argv: list[str], tmp_path) -> None:
    # torch, transformers and Chroma take seconds to import: a typo must be answered at once
    code = (
        "import sys\n"
        "from inspector_agent.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({'torch', 'transformers', 'chromadb'} & set(sys.modules)))\n"
    )
    env = {**os.environ, "INSPECTOR_DATA_DIR": str(tmp_path / "data")}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert run.stdout.strip().splitlines()[-1] == "[]", run.stderr[-1000:]
