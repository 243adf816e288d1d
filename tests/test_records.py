"""The SQLite inspection log: idempotent recording, history queries, feedback and exports."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import pytest
from PIL import Image

from inspector_agent.cli import main as cli_main
from inspector_agent.geometry import Box
from inspector_agent.records import RecordsError, RecordStore, store_upload
from inspector_agent.records_export import export_corrections_jsonl, export_csv
from inspector_agent.schema import Defect, InspectionResult, Verdict


def _result(defective: bool) -> InspectionResult:
    defects = [Defect("scratch", Box(10, 12, 30, 40), 0.9, area_px=120)] if defective else []
    return InspectionResult(
        verdict=Verdict.DEFECTIVE if defective else Verdict.OK,
        pred_score=0.8 if defective else 0.1,
        defects=defects,
        grounder="expert",
        model="efficientnet-lite0",
        latency_ms=42.0,
        image_size=(64, 64),
    )


def _upload(tmp_path: Path, name: str, colour: int) -> Path:
    path = tmp_path / name
    Image.new("RGB", (64, 64), (colour, colour, colour)).save(path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    s = RecordStore(tmp_path / "data" / "records.sqlite")
    yield s
    s.close()


def _log(store: RecordStore, tmp_path: Path, rid: str, defective: bool, **kw: str) -> int:
    digest, stored = store_upload(_upload(tmp_path, f"{rid}.png", len(rid) * 20), tmp_path / "up")
    return store.record(
        rid,
        _result(defective),
        product_id=kw.pop("product_id", "bracket"),
        image_hash=digest,
        image_path=stored,
        reference_paths=["/refs/good1.png"],
        **kw,
    )


def test_store_upload_is_content_addressed(tmp_path: Path) -> None:
    a = _upload(tmp_path, "a.png", 10)
    b = _upload(tmp_path, "b.png", 10)
    ha, pa = store_upload(a, tmp_path / "up")
    hb, pb = store_upload(b, tmp_path / "up")
    assert ha == hb and pa == pb and pa.read_bytes() == a.read_bytes()
    assert store_upload(_upload(tmp_path, "c.png", 99), tmp_path / "up")[0] != ha


def test_record_is_idempotent_and_round_trips(store: RecordStore, tmp_path: Path) -> None:
    first = _log(store, tmp_path, "req-1", True, serial="1234", user="ann")
    again = _log(store, tmp_path, "req-1", True, serial="1234", user="ann")
    assert first == again
    assert store.count() == 1
    row = store.get(first)
    assert (row.verdict, row.serial, row.user, row.labels) == (
        "defective",
        "1234",
        "ann",
        ["scratch"],
    )
    assert row.defects[0]["bbox"] == [10.0, 12.0, 30.0, 40.0]
    assert row.reference_paths == ["/refs/good1.png"]


def test_history_queries(store: RecordStore, tmp_path: Path) -> None:
    _log(store, tmp_path, "a", True, serial="1234")
    _log(store, tmp_path, "bb", False, serial="1234")
    _log(store, tmp_path, "ccc", True, product_id="gear", lot="L7")
    assert [r.request_id for r in store.query(serial="1234")] == ["bb", "a"]
    assert store.count(product_id="bracket", verdict="defective") == 1
    assert store.count(serial="L7") == 1
    assert store.count(since="2000-01-01") == 3
    assert store.count(until="2000-01-01") == 0
    with pytest.raises(RecordsError, match="not a date"):
        store.query(since="yesterday")
    with pytest.raises(RecordsError, match="unknown verdict"):
        store.query(verdict="maybe")


def test_concurrent_writers_from_threads(store: RecordStore, tmp_path: Path) -> None:
    digest, stored = store_upload(_upload(tmp_path, "x.png", 5), tmp_path / "up")

    def work(i: int) -> None:
        for j in range(10):
            store.record(
                f"t{i}-{j % 5}", _result(True), product_id="p", image_hash=digest, image_path=stored
            )

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 20


def test_feedback_and_corrections_export(store: RecordStore, tmp_path: Path) -> None:
    confirmed = _log(store, tmp_path, "a", True)
    wrong_ok = _log(store, tmp_path, "bb", True)
    corrected = _log(store, tmp_path, "ccc", False)
    _log(store, tmp_path, "dddd", False)  # never reviewed: not exported
    store.add_feedback(confirmed, True, user="sup")
    store.add_feedback(wrong_ok, False, user="sup")
    store.add_feedback(
        corrected, False, verdict="defective", defects=[{"label": "dent", "bbox": [1, 2, 3, 4]}]
    )
    with pytest.raises(RecordsError, match="bbox"):
        store.add_feedback(corrected, False, defects=[{"label": "dent"}])
    with pytest.raises(RecordsError, match="no inspection"):
        store.add_feedback(999, True)

    out = tmp_path / "exports" / "corrections.jsonl"
    assert export_corrections_jsonl(store, out) == 3
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [ex["anomaly"] for ex in lines] == [True, False, True]
    assert lines[0]["defects"] == [{"label": "scratch", "bbox": [10.0, 12.0, 30.0, 40.0]}]
    assert lines[1]["defects"] == []
    assert lines[2]["defects"] == [{"label": "dent", "bbox": [1, 2, 3, 4]}]
    assert Path(lines[0]["image_path"]).exists()
    assert set(lines[0]) == {"image_path", "reference_paths", "product_id", "anomaly", "defects"}
    assert export_corrections_jsonl(store, out, include_confirmed=False) == 2


def test_csv_export(store: RecordStore, tmp_path: Path) -> None:
    first = _log(store, tmp_path, "a", True, serial="S1")
    _log(store, tmp_path, "bb", False, product_id="gear")
    store.add_feedback(first, False)
    out = tmp_path / "history.csv"
    assert export_csv(store, out, product_id="bracket") == 1
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["serial"] == "S1" and rows[0]["feedback"] == "wrong"
    assert rows[0]["defects"] == "scratch"


def test_records_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    s = RecordStore(data / "records.sqlite")
    rid = _log(s, tmp_path, "a", True, serial="77")
    s.add_feedback(rid, True)
    s.close()
    assert cli_main(["--data-dir", str(data), "records", "list", "--serial", "77"]) == 0
    assert "defective" in capsys.readouterr().out
    csv_path = tmp_path / "h.csv"
    assert cli_main(["--data-dir", str(data), "records", "export-csv", str(csv_path)]) == 0
    assert csv_path.read_text().count("\n") == 2
    jsonl = tmp_path / "c.jsonl"
    assert cli_main(["--data-dir", str(data), "records", "export-corrections", str(jsonl)]) == 0
    assert json.loads(jsonl.read_text())["anomaly"] is True
    assert cli_main(["--data-dir", str(data), "records", "list", "--since", "nope"]) == 2
    assert "not a date" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["export-csv", "export-corrections"])
@pytest.mark.parametrize(
    ("target", "message"),
    [(".", "is a folder; give the export a file name"), ("taken/out", "is a file, not a folder")],
)
def test_records_cli_refuses_unwritable_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str, target: str, message: str
) -> None:
    data = tmp_path / "data"
    s = RecordStore(data / "records.sqlite")
    s.add_feedback(_log(s, tmp_path, "a", True), True)
    s.close()
    (tmp_path / "taken").write_text("a file where a folder is asked for\n")
    code = cli_main(["--data-dir", str(data), "records", action, str(tmp_path / target)])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "data", "taken", "up"]
