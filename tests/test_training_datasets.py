"""Training rows from synthetic anomalies, MVTec folders, MMAD records and app corrections."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspector_agent.answer import parse_answer
from inspector_agent.geometry import boxes_from_mask
from training.datasets import (
    DatasetError,
    correction_rows,
    mmad_records,
    mvtec_pairs,
    synthetic_pairs,
    to_dataset,
)
from training.synthetic import KINDS, good_image, perlin_mask, synthesize


@pytest.mark.parametrize("kind", KINDS)
def test_synthetic_anomaly_mask_is_exact(kind: str) -> None:
    rng = np.random.default_rng(3)
    good = good_image(112, rng)
    bad, mask = synthesize(good, kind, rng)
    changed = np.abs(np.asarray(bad, np.int16) - np.asarray(good, np.int16)).sum(axis=2) > 0
    assert mask.any()
    assert not changed[~mask].any()  # nothing outside the mask changed
    assert changed[mask].mean() > 0.9  # (almost) every masked pixel changed


def test_perlin_mask_varies_with_seed() -> None:
    a = perlin_mask(64, 64, np.random.default_rng(0))
    b = perlin_mask(64, 64, np.random.default_rng(1))
    assert a.any() and b.any() and not np.array_equal(a, b)


def test_synthetic_pairs_are_balanced_and_labelled() -> None:
    rows = synthetic_pairs(10, size=112, kinds=["cell"], seed=0)
    assert sum(r["anomaly"] for r in rows) == 5
    for row in rows:
        assert len(row["images"]) == 2 and row["images"][1].size == (112, 112)
        answer = parse_answer(row["solution"])
        assert answer.anomaly == row["anomaly"]
        assert [d.box.to_list() for d in answer.defects] == row["boxes"]
        reference, query = (np.array(im, dtype=float) for im in row["images"])
        for x1, y1, x2, y2 in row["boxes"]:  # cells align to the 28-pixel token grid
            assert all(v % 28 == 0 for v in (x1, y1, x2, y2))
            inside = (slice(int(y1), int(y2)), slice(int(x1), int(x2)))
            assert query[inside].max() < 70 < reference[inside].min()  # a dark stain
            query[inside] = reference[inside]
        assert np.array_equal(query, reference)  # the stain is the only difference
    with pytest.raises(ValueError, match="unknown synthetic anomaly"):
        synthetic_pairs(2, kinds=["lava"])


def _mvtec(root: Path) -> Path:
    cat = root / "widget"
    for folder in ("train/good", "test/good", "test/bent_lead", "ground_truth/bent_lead"):
        (cat / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        good_image(64, rng).save(cat / "train/good" / f"{i:03d}.png")
    good_image(64, rng).save(cat / "test/good/000.png")
    bad, mask = synthesize(good_image(64, rng), "cell", rng)
    bad = bad.resize((128, 128))
    bad.save(cat / "test/bent_lead/000.png")
    Image.fromarray(mask.astype(np.uint8) * 255).resize((128, 128), Image.NEAREST).save(
        cat / "ground_truth/bent_lead/000_mask.png"
    )
    return root


def test_mvtec_pairs_boxes_from_mask_components(tmp_path: Path) -> None:
    rows = mvtec_pairs(_mvtec(tmp_path), shots=1)
    normal, anomalous = sorted(rows, key=lambda r: r["anomaly"])
    assert normal["boxes"] == [] and normal["labels"] == []
    assert anomalous["labels"] == ["bent lead"]
    mask = np.asarray(Image.open(tmp_path / "widget/ground_truth/bent_lead/000_mask.png")) > 127
    side = anomalous["images"][-1].width
    expected = [[v * side / 128 for v in b.to_list()] for b in boxes_from_mask(mask)]
    flat = [v for b in anomalous["boxes"] for v in b]
    assert flat == pytest.approx([v for b in expected for v in b], abs=0.05)  # original -> model
    dataset = to_dataset(rows)
    assert dataset[0]["prompt"][1]["content"][1]["type"] == "image"
    with pytest.raises(DatasetError, match="no MVTec-style category"):
        mvtec_pairs(tmp_path / "widget" / "test")


def test_mmad_records(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    good_image(64, rng).save(tmp_path / "t.png")
    good_image(64, rng).save(tmp_path / "q.png")
    conversation = [
        {
            "Question": "Is there any defect?",
            "Answer": "B",
            "Options": {"A": "Yes", "B": "No"},
            "type": "Anomaly Detection",
        }
    ]
    (tmp_path / "mmad.json").write_text(
        json.dumps(
            {"q.png": {"image_path": "q.png", "templates": ["t.png"], "conversation": conversation}}
        )
    )
    [row] = mmad_records(tmp_path / "mmad.json", tmp_path)
    assert (row["option"], row["anomaly"], row["task"]) == ("B", None, "mmad/Anomaly Detection")
    assert parse_answer(row["solution"]).option == "B"
    assert len(row["images"]) == 2


def test_correction_rows_and_bad_lines(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    good_image(100, rng).save(tmp_path / "q.png")
    good_image(100, rng).save(tmp_path / "r.png")
    record = {
        "image_path": str(tmp_path / "q.png"), "reference_paths": [str(tmp_path / "r.png")],
        "product_id": "p", "anomaly": True, "defects": [{"label": "dent", "bbox": [10, 10, 50, 30]}],
    }  # fmt: skip
    path = tmp_path / "corrections.jsonl"
    path.write_text(
        json.dumps(record) + "\n\n" + json.dumps({**record, "anomaly": False, "defects": []}) + "\n"
    )
    rows = correction_rows(path)
    assert [r["anomaly"] for r in rows] == [True, False] and rows[0]["labels"] == ["dent"]
    width = rows[0]["images"][-1].width
    assert rows[0]["boxes"][0] == pytest.approx(
        [10 * width / 100, 10 * width / 100, 50 * width / 100, 30 * width / 100]
    )
    path.write_text(json.dumps(record) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"corrections.jsonl:2: not a correction record"):
        correction_rows(path)
    with pytest.raises(DatasetError, match="cannot read corrections"):
        correction_rows(tmp_path / "none.jsonl")


def test_compact_prompt_is_shorter_and_keeps_the_answer() -> None:
    full = synthetic_pairs(2, normal_fraction=0.0, seed=5)
    compact = synthetic_pairs(2, normal_fraction=0.0, seed=5, compact=True)
    text = [
        " ".join(p["text"] or "" for m in row["prompt"] for p in m["content"])
        for row in (full[0], compact[0])
    ]
    assert len(text[1]) * 4 < len(text[0])
    assert [r["solution"] for r in compact] == [r["solution"] for r in full]
    assert [len(r["images"]) for r in compact] == [2, 2]
