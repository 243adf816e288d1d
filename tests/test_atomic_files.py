"""Files written whole or not at all: a failed write leaves the old content and no litter."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector_agent.atomic_files import (
    replaced_folder,
    write_atomic,
    write_bytes_atomic,
    write_text_atomic,
)


def test_writes_create_parents_and_replace_content(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "report.json"
    write_text_atomic(target, "first\n")
    write_bytes_atomic(target, b"second\n")
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "records.csv"
    target.write_text("old\n")

    def half_then_fail(handle) -> None:
        handle.write("new, partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, half_then_fail, text=True)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["records.csv"]


def test_a_new_file_is_absent_after_a_failed_write(tmp_path: Path) -> None:
    def fail(_handle) -> None:
        raise OSError("no space left on device")

    with pytest.raises(OSError):
        write_atomic(tmp_path / "out.png", fail, text=False)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_replaced_whole_or_kept(tmp_path: Path) -> None:
    target = tmp_path / "plots"
    (target / "seed-5").mkdir(parents=True)
    (target / "seed-5" / "roc.png").write_text("old run")
    with pytest.raises(RuntimeError, match="killed"), replaced_folder(target) as staging:
        (staging / "roc.png").parent.mkdir(parents=True)
        (staging / "roc.png").write_text("half a run")
        raise RuntimeError("killed")
    assert (target / "seed-5" / "roc.png").read_text() == "old run"
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]
    with replaced_folder(target) as staging:
        staging.mkdir()
        (staging / "roc.png").write_text("new run")
    assert [p.name for p in target.iterdir()] == ["roc.png"]  # nothing of the old run is left
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]
