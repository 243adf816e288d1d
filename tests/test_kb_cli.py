"""``inspector kb ...`` end to end in-process: add, list, show, search, remove and the importers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kb_helpers import make_product
from PIL import Image

from inspector_agent.cli import main
from inspector_agent.kb import KnowledgeBase
from inspector_agent.kb.importers import DatasetError, mvtec_product_folder
from inspector_agent.settings import Settings
from knowledge.textures import RENDERERS
from tests.mvtec_helpers import textured

pytestmark = pytest.mark.slow

MMAD = {
    "MVTec": {
        "hazelnut": {
            "good": " <Normal Characteristics>\n Description: Whole brown hazelnuts with a smooth shell.",
            "crack": " <Shell Crack>\n Description: A dark fracture line runs across the shell. It exposes the kernel.",
            "print": " <Ink Print>\n Description: Unwanted printed marks on the shell surface.",
        }
    },
    "VisA": {
        "candle": {
            "good": " <Normal>\n Description: White candles.",
            "bad": " <Wax Defect>\n Description: Melted wax spots.",
        }
    },
}


def _run(capsys: pytest.CaptureFixture[str], data: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(data), "kb", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _mvtec(root: Path) -> Path:
    category = root / "metal_plate"
    for index in range(3):
        image = RENDERERS["brushed-alu-panel"](np.random.default_rng(index), 96)[0]
        path = category / "train" / "good" / f"{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255).astype(np.uint8)).save(path)
    for defect in ("scratch", "dent", "good"):
        (category / "test" / defect).mkdir(parents=True)
    return category


def test_kb_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = make_product(tmp_path / "src")
    code, out, _ = _run(capsys, data, "add", str(folder))
    assert code == 0 and out.startswith("test-panel: 5 chunks added")
    code, out, _ = _run(capsys, data, "add", str(folder))
    assert code == 0 and out.startswith("test-panel: unchanged (version ")
    code, out, _ = _run(capsys, data, "list")
    assert code == 0 and out.startswith("test-panel") and "(1 defect type, 3 references)" in out
    code, out, _ = _run(capsys, data, "show", "test-panel")
    assert "name: Test panel" in out and "references: 3" in out and "image threshold" in out
    code, out, _ = _run(
        capsys, data, "search", "scratch length", "--product", "test-panel", "-k", "2"
    )
    assert code == 0 and out.count("test-panel / ") == 2
    code, _, err = _run(capsys, data, "show", "nope")
    assert code == 2 and err.strip() == "error: unknown product 'nope' (known: test-panel)"
    code, out, _ = _run(capsys, data, "remove", "test-panel")
    assert code == 0 and KnowledgeBase(Settings(data_dir=data)).list_products() == []


def test_a_lone_variant_among_the_references_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Teaching a product whose good images include one of another colour tells the engineer."""
    data = tmp_path / "data"
    folder = make_product(tmp_path / "src", references=4)
    rng = np.random.default_rng(0)
    for index in range(4):  # a part that lines up from photo to photo, one of them amber
        image = textured(rng, 320) * (np.array([1.0, 0.55, 0.25]) if index == 2 else 1.0)
        Image.fromarray(image.astype(np.uint8)).save(folder / "references" / f"ref_{index}.png")
    code, out, _ = _run(capsys, data, "add", str(folder))
    assert code == 0 and "Note: ref_2.png is unlike the other good images" in out
    code, out, _ = _run(capsys, data, "show", "test-panel")
    assert "note: ref_2.png is unlike the other good images" in out
    scores = [line.split() for line in out.splitlines() if "leave-one-out score" in line]
    assert [row[0] for row in scores] == [f"ref_{i}.png:" for i in range(4)]
    assert [row[-1] == "aside)" for row in scores] == [False, False, True, False]


def test_import_mvtec_category(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, _ = _run(
        capsys, data, "import-mvtec", str(_mvtec(tmp_path)), "--product", "metal-plate"
    )
    assert code == 0 and "3 references" in out
    product = KnowledgeBase(Settings(data_dir=data)).get_product("metal-plate")
    assert product.name == "Metal plate" and [d.name for d in product.defects] == [
        "dent",
        "scratch",
    ]
    code, _, err = _run(capsys, data, "import-mvtec", str(tmp_path / "missing"), "--product", "x")
    assert code == 2 and "no images in train/good" in err


def test_import_mmad(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = tmp_path / "domain_knowledge.json"
    source.write_text(json.dumps(MMAD))
    data = tmp_path / "data"
    code, out, _ = _run(capsys, data, "import-mmad", str(source))
    assert code == 0 and "imported 2 products" in out
    kb = KnowledgeBase(Settings(data_dir=data))
    hazelnut = kb.get_product("hazelnut")
    assert hazelnut.name == "Hazelnut (MVTec)" and hazelnut.description.startswith(
        "Whole brown hazelnuts"
    )
    assert [d.name for d in hazelnut.defects] == ["crack", "print"]
    top = kb.search("fracture across the shell", k=2)
    assert {p.product_id for p in top} == {"hazelnut"}
    assert {p.section for p in top} == {"Defects > crack: Shell Crack", "Defect taxonomy > crack"}
    source.write_text(json.dumps({"MVTec": ["not", "a", "mapping"]}))
    code, _, err = _run(capsys, data, "import-mmad", str(source))
    assert code == 2 and "not MMAD domain knowledge" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-references", "0"], "--max-references: must be 1 or more, got 0"),
        (["--max-references", "-2"], "--max-references: must be 1 or more, got -2"),
        (["--max-references", "two"], "--max-references: not a whole number: 'two'"),
    ],
)
def test_import_mvtec_refuses_a_count_below_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    data = tmp_path / "data"
    category = str(_mvtec(tmp_path))
    with pytest.raises(SystemExit) as exc:  # argparse's usage error
        _run(capsys, data, "import-mvtec", category, "--product", "plate", *args)
    assert exc.value.code == 2 and message in capsys.readouterr().err
    assert KnowledgeBase(Settings(data_dir=data)).list_products() == []
    with pytest.raises(DatasetError, match="at least 1 reference"):  # callers other than the CLI
        mvtec_product_folder(Path(category), "plate", tmp_path / "out", max_references=0)
    assert not (tmp_path / "out").exists()
