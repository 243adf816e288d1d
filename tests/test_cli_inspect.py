"""``inspector inspect``: one image, a folder, and bad input (one line, exit code 2)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from PIL import Image

from inspector_agent.cli import main
from inspector_agent.cli.inspect_cmd import folder_summary
from inspector_agent.schema import InspectionResult, Verdict
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
    assert err.rstrip().endswith("inspected 1 image: 1 defective, 0 ok")


def test_folder_summary_counts_close_calls_and_unreadable_files() -> None:
    ok, close = (
        InspectionResult(Verdict.OK, 0.1),
        InspectionResult(Verdict.OK, 0.3, close_call=True),
    )
    bad = InspectionResult(Verdict.DEFECTIVE, 0.9)
    assert folder_summary([ok, close, close, bad], 1) == (
        "inspected 5 images: 1 defective, 2 close calls (ok, worth a look), 1 ok, "
        "1 could not be read"
    )
    assert folder_summary([ok], 0) == "inspected 1 image: 0 defective, 1 ok"


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


def test_a_file_for_references_is_named_as_such(capsys, tmp_path: Path, category: Path) -> None:
    query = next((category / "test/good").iterdir())
    code, _, err = _run(capsys, tmp_path, str(query), "--references", str(query))
    assert code == 2 and "is a file; --references takes a folder" in err
    assert len(err.strip().splitlines()) == 1


def test_folder_overlays_go_to_a_folder_one_per_image(
    capsys, tmp_path: Path, category: Path
) -> None:
    out_dir = tmp_path / "made" / "overlays"  # created on demand, parents included
    folder = category / "test/blob"
    code, out, _ = _run(
        capsys, tmp_path, str(folder), "--references", str(category / "train/good"),
        "--overlay", str(out_dir),
    )  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    names = sorted(Path(line["overlay"]).name for line in lines)
    assert names == sorted(f"{p.stem}_overlay.png" for p in folder.iterdir())
    with Image.open(lines[0]["overlay"]) as written:
        assert written.format == "PNG"
        assert written.size[0] >= Image.open(lines[0]["image"]).size[0]
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temporary left


def test_overlays_never_go_into_the_inspected_folder(
    capsys, tmp_path: Path, category: Path
) -> None:
    folder = tmp_path / "queries"
    folder.mkdir()
    for path in (category / "test/blob").iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    before = sorted(folder.iterdir())
    code, out, err = _run(
        capsys, tmp_path, str(folder), "--references", str(category / "train/good"),
        "--overlay", str(folder),
    )  # fmt: skip
    assert code == 2 and out == "" and "folder being inspected" in err
    assert sorted(folder.iterdir()) == before


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ("out.gif", "must end in one of"),
        ("", "is a folder"),
        ("taken/out.png", "taken is a file, not a folder"),
    ],
)
def test_bad_overlay_path_is_refused_before_inspecting(
    capsys, tmp_path: Path, category: Path, overlay: str, message: str
) -> None:
    query = next((category / "test/blob").iterdir())
    (tmp_path / "taken").write_text("a file where a folder is asked for\n")
    target = tmp_path / overlay if overlay else tmp_path
    code, out, err = _run(
        capsys, tmp_path, str(query), "--references", str(category / "train/good"),
        "--overlay", str(target),
    )  # fmt: skip
    assert code == 2 and out == ""  # no verdict computed, nothing half-written
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.gif").exists()


def test_human_output_says_when_the_model_server_was_down(
    capsys, tmp_path: Path, category: Path
) -> None:
    """A dead model server: the verdict still comes (from the expert), and the user is told."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    query = next((category / "test/blob").iterdir())
    code, out, err = _run(
        capsys,
        tmp_path,
        str(query),
        "--references",
        str(category / "train/good"),
        "--grounder",
        "vlm",
        "--model-url",
        f"http://127.0.0.1:{port}/v1",
    )
    assert code == 0 and out.startswith(f"{query.name}: defective")
    assert "  note: The model server is unreachable" in out
    assert "Answered with the expert grounder instead." in out and not err.strip()


def test_a_folder_says_what_it_leaves_out(capsys, tmp_path: Path, category: Path) -> None:
    """Photos in a subfolder or under an unknown name are not inspected, and the user is told;
    hidden files (.DS_Store, macOS '._' copies) are left out silently."""
    photos = tmp_path / "photos"
    (photos / "shift-2").mkdir(parents=True)
    query = next((category / "test/blob").iterdir())
    (photos / "part.png").write_bytes(query.read_bytes())
    (photos / "shift-2" / "part.png").write_bytes(query.read_bytes())
    (photos / "notes.txt").write_text("lot 7")
    (photos / "._part.png").write_bytes(b"resource fork")
    (photos / ".DS_Store").write_bytes(b"\0")
    code, out, err = _run(
        capsys, tmp_path, str(photos), "--references", str(category / "train/good")
    )
    assert code == 0 and len(out.splitlines()) == 1
    assert "directly in the folder are inspected, not notes.txt, shift-2/\n" in err
    assert "._part.png" not in err and ".DS_Store" not in err
