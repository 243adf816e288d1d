"""The grounder benchmark on an MVTec-shaped folder: a row per K, and one line for a bad folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.mvtec_helpers import make_mvtec

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_grounder.py"


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(BENCH), *args, "--repeats", "1", "--threads", "1"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_latency_is_printed_per_number_of_references(tmp_path: Path) -> None:
    category = make_mvtec(tmp_path, n_train=3, n_good=1, n_bad=1)
    run = _bench(str(category), "--shots", "1,3,8")
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line.split() for line in run.stdout.splitlines()[1:]]
    assert [row[1] for row in rows] == ["1", "3"]  # K = 8 is more than the folder holds
    assert all(row[0] == "widget" and float(row[-1]) > 0 for row in rows)


def test_a_folder_that_is_not_a_category_is_one_line(tmp_path: Path) -> None:
    run = _bench(str(tmp_path / "missing"))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip() == f"error: {tmp_path / 'missing'}: no reference images in train/good"


def test_a_bad_number_of_references_is_a_usage_error(tmp_path: Path) -> None:
    run = _bench(str(tmp_path), "--shots", "0,4")
    assert run.returncode == 2 and "--shots: must be 1 or more, got 0" in run.stderr
    assert "Traceback" not in run.stderr
