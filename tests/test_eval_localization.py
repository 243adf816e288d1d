"""Localisation evaluation end to end on a synthetic MVTec-shaped folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inspector_agent.cli import main
from inspector_agent.evaluation.localization import METRIC_NAMES, evaluate, evaluate_category
from inspector_agent.evaluation.mvtec import find_categories
from inspector_agent.geometry import boxes_from_mask
from inspector_agent.grounding.base import GroundingRequest
from inspector_agent.grounding.expert import ExpertConfig, ExpertGrounder
from inspector_agent.imaging import load_image
from inspector_agent.schema import Defect, InspectionResult, Verdict
from inspector_agent.settings import Settings
from tests.mvtec_helpers import make_mvtec

pytestmark = pytest.mark.usefixtures("small_expert")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    make_mvtec(root, n_train=4, n_good=2, n_bad=2)
    return root


def test_reader_pairs_images_and_masks(data_dir: Path) -> None:
    (cat,) = find_categories(data_dir)
    assert cat.name == "widget" and len(cat.train) == 4
    bad = [s for s in cat.test if s.is_anomalous]
    assert len(bad) == 2 and all(s.mask_path is not None for s in bad)
    assert cat.references(2, seed=0) == cat.references(2, seed=0)
    assert len(cat.references(2, seed=0)) == 2
    with pytest.raises(FileNotFoundError, match="nope"):
        find_categories(data_dir, ["nope"])


def test_evaluate_report_shape_and_plots(
    settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    grounder = ExpertGrounder(settings, ExpertConfig(pixels=160 * 160))
    report = evaluate(data_dir, grounder, shots=3, seed=0, plots_dir=tmp_path / "plots")
    assert set(report) == {"categories", "overall", "config"}
    assert set(report["categories"]["widget"]) == set(METRIC_NAMES) == set(report["overall"])
    widget = report["categories"]["widget"]
    assert widget["image_auroc"] == 1.0 and widget["pixel_auroc"] > 0.95
    assert widget["box_acc_iou30"] == 1.0
    assert (tmp_path / "plots" / "roc.png").is_file()
    assert (tmp_path / "plots" / "examples_widget.png").is_file()


def test_example_rows_show_a_good_part_and_each_defect_type(
    settings: Settings, tmp_path: Path
) -> None:
    cat = make_mvtec(tmp_path, n_train=3, n_good=2, n_bad=2)
    for sub in ("test", "ground_truth"):  # a second defect type, sorted before the others
        shutil.copytree(cat / sub / "blob", cat / sub / "another")
    (category,) = find_categories(tmp_path)
    grounder = ExpertGrounder(settings, ExpertConfig(pixels=160 * 160))
    run = evaluate_category(category, grounder, 2, 0, keep_examples=4)
    assert [e["kind"] for e in run.examples] == ["good", "another", "blob"]
    run = evaluate_category(category, grounder, 2, 0, keep_examples=2)
    assert [e["kind"] for e in run.examples] == ["good", "another"]


def test_cli_writes_json(data_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r.json"
    code = main(
        [
            "--data-dir",
            str(tmp_path / "d"),
            "eval",
            "localization",
            str(data_dir),
            "--shots",
            "2",
            "--categories",
            "widget",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["config"]["shots"] == 2 and list(report["categories"]) == ["widget"]
    assert "defect_types" not in report  # the documented shape unless asked for more
    assert main(["eval", "localization", str(data_dir), "--by-defect", "--json", str(out)]) == 0
    kinds = json.loads(out.read_text())["defect_types"]["widget"]
    assert set(kinds) == {"good", "blob"} and kinds["blob"]["images"] == 2
    assert kinds["blob"]["defect_pixel_share"] == 1.0
    assert "widget/blob" in capsys.readouterr().err
    assert main(["eval", "localization", str(tmp_path / "missing"), "--json", str(out)]) == 2


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (["--json", "."], "is a folder; give the report a file name"),
        (["--json", "taken/out.json"], "taken is a file, not a folder"),
        (["--json", "out.json", "--plots", "taken"], "is a file; the plots need a folder"),
        (["--json", "out.json", "--plots", "taken/plots"], "taken is a file, not a folder"),
    ],
)
def test_cli_refuses_unwritable_outputs_before_evaluating(
    data_dir: Path,
    tmp_path: Path,
    capsys,
    monkeypatch: pytest.MonkeyPatch,
    outputs: list[str],
    message: str,
) -> None:
    import inspector_agent.evaluation.localization as localization

    def never(*_args, **_kwargs):
        raise AssertionError("evaluated although the results could not be written")

    monkeypatch.setattr(localization, "evaluate", never)
    monkeypatch.chdir(tmp_path)
    Path("taken").write_text("a file where a folder is asked for\n")
    argv = ["--data-dir", str(tmp_path / "d"), "eval", "localization", str(data_dir)]
    assert main([*argv, *outputs]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not Path("out.json").exists()


class BoxOnly:
    """A grounder that answers like the model grounders: boxes (here the true ones), no mask."""

    name = "box-only"

    def __init__(self, data_dir: Path) -> None:
        (category,) = find_categories(data_dir)
        self.boxes = {}  # query pixels -> true boxes (file names repeat across folders)
        for sample in category.test:
            image = load_image(sample.path)
            mask = sample.load_mask(image.size)
            self.boxes[image.tobytes()] = boxes_from_mask(mask) if sample.is_anomalous else []

    def ground(self, request: GroundingRequest) -> InspectionResult:
        boxes = self.boxes[request.query.tobytes()]
        return InspectionResult(
            verdict=Verdict.DEFECTIVE if boxes else Verdict.OK,
            pred_score=float(bool(boxes)),
            defects=[Defect("stain", b, 1.0) for b in boxes],
        )


def test_box_only_answers_are_scored_by_their_boxes(data_dir: Path) -> None:
    widget = evaluate(data_dir, BoxOnly(data_dir), shots=1)["categories"]["widget"]
    assert widget["box_miou"] == 1.0 and widget["box_acc_iou30"] == 1.0
    assert widget["image_auroc"] == 1.0 and widget["f1"] == 1.0


def test_loco_region_folders_are_one_mask(tmp_path: Path) -> None:
    """MVTec LOCO keeps one file per region in ground_truth/<defect>/<stem>/; the mask is their
    union, and the reader takes the folder when there is no <stem>_mask.png."""
    cat = make_mvtec(tmp_path, n_train=2, n_good=1, n_bad=1)
    flat = cat / "ground_truth/blob/000_mask.png"
    blob = np.asarray(Image.open(flat)) > 127
    flat.unlink()
    regions = cat / "ground_truth/blob/000"
    regions.mkdir()
    Image.fromarray((blob * 255).astype(np.uint8)).save(regions / "000.png")
    corner = np.zeros_like(blob)
    corner[:5, :7] = True
    Image.fromarray((corner * 250).astype(np.uint8)).save(regions / "001.png")  # LOCO-style value
    (category,) = find_categories(tmp_path)
    (sample,) = [s for s in category.test if s.is_anomalous]
    assert sample.mask_path == regions
    size = (blob.shape[1], blob.shape[0])
    assert np.array_equal(sample.load_mask(size), blob | corner)


def _eval(data_dir: Path, tmp_path: Path) -> int:
    out = tmp_path / "r.json"
    argv = ["--data-dir", str(tmp_path / "d"), "eval", "localization", str(data_dir)]
    return main([*argv, "--shots", "2", "--json", str(out)])


def test_ground_truth_gaps_and_unreadable_masks_are_one_line(tmp_path: Path, capsys) -> None:
    """A defect image without its mask would be scored as all normal: refused before any work,
    naming the image; a mask that is not an image is named too; neither writes a report."""
    cat = make_mvtec(tmp_path / "data", n_train=3, n_good=1, n_bad=2)
    (cat / "ground_truth/blob/001_mask.png").unlink()
    assert _eval(tmp_path / "data", tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert "test/blob/001.png: no ground-truth mask" in err and "Traceback" not in err
    (cat / "ground_truth/blob/001_mask.png").write_bytes(b"not a png")
    assert _eval(tmp_path / "data", tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "001_mask.png: not a supported image" in err[-1] and "Traceback" not in "".join(err)
    assert not (tmp_path / "r.json").exists()


def test_a_category_without_ground_truth_gets_image_metrics_only(tmp_path: Path, capsys) -> None:
    cat = make_mvtec(tmp_path / "data", n_train=3, n_good=2, n_bad=2)
    shutil.rmtree(cat / "ground_truth")
    assert _eval(tmp_path / "data", tmp_path) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    widget = report["categories"]["widget"]
    assert 0.0 <= widget["image_auroc"] <= 1.0 and widget["f1"] is not None
    assert widget["pixel_auroc"] is None and widget["box_acc_iou30"] is None
    assert report["config"]["without_masks"] == ["widget"]
    assert "widget: no ground-truth masks" in capsys.readouterr().err


def test_several_seeds_give_the_median_of_the_draws(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["--data-dir", str(tmp_path / "d"), "eval", "localization", str(data_dir)]
    argv += ["--shots", "2", "--seed", "0,1,2", "--json", str(out), "--plots", str(tmp_path / "p")]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert report["config"]["seeds"] == [0, 1, 2] and "seed" not in report["config"]
    assert set(report["seeds"]) == {"0", "1", "2"}
    for name in METRIC_NAMES:
        draws = [report["seeds"][s]["categories"]["widget"][name] for s in ("0", "1", "2")]
        assert report["categories"]["widget"][name] == pytest.approx(float(np.median(draws)))
        overall = [report["seeds"][s]["overall"][name] for s in ("0", "1", "2")]
        assert report["overall"][name] == pytest.approx(float(np.median(overall)))
    assert all((tmp_path / "p" / f"seed-{s}" / "roc.png").is_file() for s in (0, 1, 2))
    assert (
        main([*argv[:5], "--shots", "2", "--seed", "1", "--json", str(tmp_path / "one.json")]) == 0
    )
    single = json.loads((tmp_path / "one.json").read_text())
    same = [m for m in METRIC_NAMES if m != "latency_ms_median"]  # the clock is not repeatable
    one, draw = single["categories"]["widget"], report["seeds"]["1"]["categories"]["widget"]
    assert {m: one[m] for m in same} == {m: draw[m] for m in same}
    assert single["config"]["seed"] == 1 and "seeds" not in single


def test_median_report_skips_missing_values_and_keeps_counts() -> None:
    from inspector_agent.evaluation.seeds import median_report

    def report(seed: int, pixel: float | None, images: int) -> dict:
        kinds = {"widget": {"blob": {"images": images, "recall": seed / 4}}}
        values = {"image_auroc": 0.5 + seed / 10, "pixel_auroc": pixel}
        return {
            "categories": {"widget": values},
            "overall": values,
            "config": {"seed": seed},
            "defect_types": kinds,
        }

    merged = median_report({0: report(0, None, 3), 1: report(1, 0.8, 3), 2: report(2, 0.6, 3)})
    assert merged["categories"]["widget"]["image_auroc"] == pytest.approx(0.6)
    assert merged["categories"]["widget"]["pixel_auroc"] == pytest.approx(0.7)  # None left out
    assert merged["defect_types"]["widget"]["blob"] == {"images": 3, "recall": 0.25}
    assert merged["config"] == {"seeds": [0, 1, 2]}


def test_plots_go_to_the_data_directory_unless_asked_elsewhere(tmp_path: Path) -> None:
    """Without --plots, plots land where the app's Showcase tab reads them, replacing the last
    run's, and a run that fails leaves the last run's plots as they were."""
    data_dir = tmp_path / "data"  # its own: a mask is spoilt below
    make_mvtec(data_dir, n_train=3, n_good=1, n_bad=1)
    store = tmp_path / "d"
    argv = ["--data-dir", str(store), "eval", "localization", str(data_dir), "--shots", "2"]
    assert main([*argv, "--seed", "0,1", "--json", str(tmp_path / "r.json")]) == 0
    run = store / "eval" / data_dir.name
    assert (run / "seed-1" / "roc.png").is_file()
    assert (run / "seed-0" / "examples_widget.png").is_file()
    assert main([*argv, "--json", str(tmp_path / "r.json")]) == 0
    assert sorted(p.name for p in run.iterdir()) == ["examples_widget.png", "roc.png"]
    first = (run / "roc.png").read_bytes()
    mask = next((data_dir / "widget" / "ground_truth").rglob("*_mask.png"))
    mask.write_bytes(b"not a png")
    assert main([*argv, "--json", str(tmp_path / "r.json")]) == 2
    assert (run / "roc.png").read_bytes() == first
    assert sorted(p.name for p in (store / "eval").iterdir()) == [data_dir.name]
