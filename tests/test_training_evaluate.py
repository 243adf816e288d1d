"""Evaluation metrics of the training benchmark, and the MVTec-layout export, on hand-made rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector_agent.evaluation.mvtec import find_categories
from training.evaluate import fixed_box_iou, score
from training.export_mvtec import export_mvtec


def _answer(boxes: list[list[int]]) -> str:
    defects = [{"label": "stain", "bbox_2d": b} for b in boxes]
    return f"<think>x</think><answer>{json.dumps({'anomaly': bool(boxes), 'defects': defects})}</answer>"


def test_score_by_hand() -> None:
    rows = [
        {"anomaly": True, "boxes": [[0, 0, 28, 28]]},
        {"anomaly": True, "boxes": [[56, 56, 84, 84]]},
        {"anomaly": False, "boxes": []},
        {"anomaly": False, "boxes": []},
    ]
    texts = [
        _answer([[0, 0, 28, 56], [90, 90, 100, 100]]),  # best box IoU 0.5
        _answer([]),  # missed: IoU 0, wrong verdict
        "no tags at all",  # unreadable: wrong verdict, bad format
        _answer([]),
    ]
    assert score(rows, texts) == {
        "format_rate": 0.75,
        "verdict_accuracy": 0.5,
        "iou_anomalous": 0.25,
    }


def test_fixed_box_iou_is_the_best_blind_box() -> None:
    same = [{"anomaly": True, "boxes": [[28, 28, 56, 56]]}] * 3 + [{"anomaly": False, "boxes": []}]
    assert fixed_box_iou(same, 112, steps=4) == pytest.approx(1.0)
    corners = [{"anomaly": True, "boxes": [b]} for b in ([0, 0, 56, 56], [56, 56, 112, 112])]
    # one corner box scores 1 on one row and 0 on the other; the whole image 0.25 on both
    assert fixed_box_iou(corners, 112, steps=2) == pytest.approx(0.5)


def test_export_mvtec_reads_back(tmp_path: Path) -> None:
    export_mvtec(tmp_path, "syn", count=6, size=56, kinds=["cell"], seed=0, shots=2)
    [category] = find_categories(tmp_path)
    assert len(category.train) == 2 and len(category.test) == 6
    anomalous = [s for s in category.test if s.is_anomalous]
    assert len(anomalous) == 3 and all(s.load_mask((56, 56)).any() for s in anomalous)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0"], "--count: must be 1 or more, got 0"),
        (["--size", "8"], "--size: must be 28 or more"),
        (["--jitter", "-1"], "--jitter must be 0 or more"),
    ],
)
def test_export_cli_refuses_bad_values_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    from training.export_mvtec import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "out"), *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_export_cli_refuses_a_file_for_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from training.export_mvtec import main

    (tmp_path / "afile").write_text("x", "utf-8")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "afile"), "--count", "2"])
    assert exc.value.code == 2
    assert "is a file; the exported images need a folder" in capsys.readouterr().err
