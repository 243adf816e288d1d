"""The MMAD protocol: option reading, balanced accuracy, averaging, and a run with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_model_helpers import KINDS, YES_NO, forcing_bias, write_mmad

from inspector_agent.cli import main
from inspector_agent.evaluation.mmad import (
    Outcome,
    Question,
    choose_option,
    evaluate_mmad,
    load_questions,
    score,
)
from inspector_agent.grounding.local import LocalBackend
from training.tiny_model import build_tiny_model


def test_option_reading_tag_letter_fuzzy_and_none() -> None:
    assert choose_option("<think>x</think><answer>B</answer>", YES_NO) == "B"
    assert choose_option("The answer is (C).", KINDS) == "C"
    assert choose_option("It looks like a scratch on the surface", KINDS) == "B"
    assert choose_option("Yes, there is a defect.", YES_NO) == "A"
    assert choose_option("AAAAAAAA", YES_NO) is None
    assert choose_option("", YES_NO) is None


def _outcome(subset: str, task: str, answer: str, chosen: str | None) -> Outcome:
    options = YES_NO if task == "Anomaly Detection" else KINDS
    return Outcome(Question(subset, task, "q.png", ("t.png",), "?", options, answer), "", chosen)


def test_balanced_accuracy_and_averages_over_subsets_then_tasks() -> None:
    outcomes = [
        # S1 discrimination: anomalous 1/1 right, normal 1/3 right -> (100 + 33.33) / 2
        _outcome("S1", "Anomaly Detection", "A", "A"),
        _outcome("S1", "Anomaly Detection", "B", "B"),
        _outcome("S1", "Anomaly Detection", "B", "A"),
        _outcome("S1", "Anomaly Detection", "B", None),
        # S1 classification: 1/2
        _outcome("S1", "Defect Classification", "A", "A"),
        _outcome("S1", "Defect Classification", "C", "D"),
        # S2 discrimination: only anomalous, 0/1 -> 0
        _outcome("S2", "Anomaly Detection", "A", "B"),
    ]
    report = score(outcomes)
    s1 = (100 + 100 / 3) / 2
    assert report.subsets["S1"]["Anomaly Detection"] == pytest.approx(s1)
    assert report.subsets["S2"]["Anomaly Detection"] == 0.0
    assert report.tasks["Anomaly Detection"] == pytest.approx(s1 / 2)
    assert report.tasks["Defect Classification"] == pytest.approx(50.0)
    assert report.average == pytest.approx((s1 / 2 + 50.0) / 2)
    assert (report.questions, report.unanswered) == (7, 1)


def test_tiny_model_answering_always_a(tmp_path: Path) -> None:
    mmad_json = write_mmad(tmp_path / "mmad")
    tiny = build_tiny_model(tmp_path / "tiny")
    backend = LocalBackend(
        str(tiny), 24, forcing_bias(tiny, "<think>yes</think><answer>A</answer>")
    )
    done: list[int] = []
    report = evaluate_mmad(mmad_json, tmp_path / "mmad", backend, on_done=done.append)
    assert len(done) == report.questions == 6 and report.unanswered == 0
    # "A" everywhere: MVTec-AD discrimination right on anomalous (1/1), wrong on normal (0/2)
    # -> 50 balanced; VisA 100 (only anomalous); classification MVTec 1/1, VisA 0/1.
    assert report.subsets == {
        "MVTec-AD": {"Anomaly Detection": 50.0, "Defect Classification": 100.0},
        "VisA": {"Anomaly Detection": 100.0, "Defect Classification": 0.0},
    }
    assert report.average == pytest.approx((75.0 + 50.0) / 2)


def test_limit_and_bad_files(tmp_path: Path) -> None:
    mmad_json = write_mmad(tmp_path / "mmad")
    assert len(load_questions(mmad_json, limit=3)) == 3
    (tmp_path / "bad.json").write_text("{not json")
    code = main(["eval", "mmad", "--mmad-json", str(tmp_path / "bad.json"),
                 "--images-root", str(tmp_path), "--grounder", "local", "--model", "x"])  # fmt: skip
    assert code == 2


def test_cli_runs_the_local_model_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mmad_json = write_mmad(tmp_path / "mmad")
    tiny = build_tiny_model(tmp_path / "tiny")
    out = tmp_path / "report.json"
    args = ["eval", "mmad", "--mmad-json", str(mmad_json), "--images-root", str(tmp_path / "mmad"),
            "--grounder", "local", "--model", str(tiny), "--max-tokens", "8", "--limit", "3",
            "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["questions"] == 3 and set(report["tasks"]) <= {
        "Anomaly Detection",
        "Defect Classification",
    }
    assert "average" in capsys.readouterr().out
