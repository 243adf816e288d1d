"""``inspector inspect``: one image, a folder, and bad input (one line, exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from inspector_agent.cli import main
from tests.mvtec_helpers import make_mvtec

pytestmark = pytest.mark.usefixtures("small_expert")


@pytest.fixture(scope="module")
def category(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mvtec(tmp_path_factory.mktemp("cli"), n_train=3, n_good=1, n_bad=1)


def _run(capsys, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(tmp_path / "data"), "inspect", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_image_json_and_overlay(capsys, tmp_path: Path, category: Path) -> None:
    query = next((category / "test/blob").iterdir())
    overlay = tmp_path / "overlay.png"
    code, out, _ = _run(
        capsys,
        tmp_path,
        str(query),
        "--references",
        str(category / "train/good"),
        "--json",
        "--overlay",
        str(overlay),
    )
    assert code == 0
    result = json.loads(out)
    assert result["verdict"] == "defective" and result["defects"] and result["grounder"] == "expert"
    assert Image.open(overlay).size[0] > 0


def test_folder_gives_one_json_line_per_image(capsys, tmp_path: Path, category: Path) -> None:
    code, out, err = _run(
        capsys, tmp_path, str(category / "test/blob"), "--references", str(category / "train/good")
    )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 1 and lines[0]["image"].endswith(".png")
    assert "inspect" in err  # the progress bar goes to stderr


@pytest.mark.parametrize("problem", ["missing", "empty", "truncated", "not_image"])
def test_bad_query_is_one_line_exit_2(capsys, tmp_path: Path, category: Path, problem: str) -> None:
    bad = tmp_path / "query.png"
    if problem == "empty":
        bad.write_bytes(b"")
    elif problem == "truncated":
        data = (next((category / "test/good").iterdir())).read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    elif problem == "not_image":
        bad.write_text("hello, not an image")
    code, out, err = _run(capsys, tmp_path, str(bad), "--references", str(category / "train/good"))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "query.png" in err and "Traceback" not in err


def test_no_references_is_exit_2(capsys, tmp_path: Path, category: Path) -> None:
    empty = tmp_path / "refs"
    empty.mkdir()
    query = next((category / "test/good").iterdir())
    code, _, err = _run(capsys, tmp_path, str(query), "--references", str(empty))
    assert code == 2 and "no reference images" in err and len(err.strip().splitlines()) == 1
