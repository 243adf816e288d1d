"""Retrieval quality on the demo products and product suggestion from generated test photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector_agent.imaging import load_image
from inspector_agent.kb import DEMO_PRODUCTS, KnowledgeBase, ensure_demo_products
from inspector_agent.settings import Settings
from knowledge.generate import write_testset

pytestmark = pytest.mark.slow

# (question a supervisor asks, sections that answer it: any one in the top 3 is a hit)
QUESTIONS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "brushed-alu-panel": [
        ("How long can a scratch be before the panel is rejected?", ("4.1 Scratches", "> scratch")),
        ("Two short scratches far apart, is that acceptable?", ("4.1 Scratches", "> scratch")),
        (
            "There is a fingerprint on the panel, what do I do?",
            ("4.2 Stains", "3.2 Stains", "> stain"),
        ),
        ("What size of permanent stain means reject?", ("4.2 Stains", "> stain")),
        ("Is a small pit in the surface acceptable?", ("4.3 Holes", "3.3 Holes", "> hole")),
        ("How deep may a dent be?", ("4.4 Dents", "> dent")),
        ("What lighting should be used for inspection?", ("5.1 Lighting",)),
        ("Which direction should the brushing grain run?", ("2.1 Brushing grain",)),
        ("Is colour variation between panels a defect?", ("2.2 Colour",)),
        ("How do I handle panels, gloves?", ("5.2 Handling",)),
        ("Are mounting holes and the back face part of this inspection?", ("1 Scope",)),
        ("How many panels must be inspected, sampling plan?", ("5.3 Sampling",)),
    ],
    "woven-tech-fabric": [
        ("Is a small hole in the fabric acceptable?", ("4.1 Holes", "3.1 Holes", "> hole")),
        ("How much fabric must be cut out around a hole?", ("4.1 Holes", "> hole")),
        ("Oil stain of 15 mm on the roll: accept or reject?", ("4.2 Stains", "> stain")),
        ("How long can a pulled yarn be?", ("4.3 Pulled yarns", "> scratch")),
        ("What is a missing pick?", ("3.4 Weave faults", "> weave_fault")),
        ("When is a weave fault rejected?", ("4.4 Weave faults", "> weave_fault")),
        ("When is a roll downgraded to second quality?", ("4.5 Roll grading",)),
        ("How are defects marked on the roll?", ("5.2 Marking",)),
        ("What does the normal weave structure look like?", ("2.1 Weave structure",)),
        ("Is shade variation across the width normal?", ("2.2 Colour",)),
        ("At what speed is the fabric inspected?", ("5.1 Inspection frame",)),
        ("Are tensile tests part of this specification?", ("1 Scope",)),
    ],
    "ceramic-tile-decor": [
        ("Are the small dark spots in the glaze a defect?", ("2.1 Glaze", "4.3 Stains")),
        ("What do we do with a cracked tile?", ("4.1 Cracks", "> crack", "5.2 Destination")),
        ("How much crazing is allowed?", ("4.1 Cracks", "> crack", "page 2")),
        ("How long may a gap in the printed border be?", ("4.2 Missing print", "> missing_print")),
        (
            "Why is part of the blue decor missing?",
            ("3.2 Missing print", "page 3", "> missing_print"),
        ),
        ("What stain size means reject?", ("4.3 Stains", "> stain")),
        ("Can tiles with missing print be sold as second quality?", ("5.2 Destination",)),
        ("What does the cobalt decor look like?", ("2.2 Printed decor",)),
        ("At what cooling rate does crazing appear?", ("page 2",)),
        ("What is the peak firing temperature of the glaze?", ("page 1",)),
        ("Are flatness and water absorption checked here?", ("1 Scope",)),
        ("How are tiles sorted by shade?", ("4.4 Shade sorting",)),
    ],
}


@pytest.fixture(scope="module")
def demo_kb(tmp_path_factory: pytest.TempPathFactory):
    kb = KnowledgeBase(Settings(data_dir=tmp_path_factory.mktemp("demo") / "data"))
    reports = ensure_demo_products(kb.settings, kb)
    assert {r.product_id for r in reports} == {p.name for p in DEMO_PRODUCTS.iterdir()}
    yield kb
    kb.close()


def test_first_start_ingests_demo_products_once(demo_kb: KnowledgeBase) -> None:
    assert len(demo_kb.list_products()) >= 3
    assert ensure_demo_products(demo_kb.settings, demo_kb) == []  # not empty any more
    for product in demo_kb.list_products():
        assert len(product.defects) >= 3 and product.mm_per_pixel
        assert len(demo_kb.reference_set(product.id).paths) >= 8


@pytest.mark.parametrize("product", sorted(QUESTIONS))
def test_questions_retrieve_the_right_section(demo_kb: KnowledgeBase, product: str) -> None:
    assert len(QUESTIONS[product]) >= 10
    misses = []
    for question, expected in QUESTIONS[product]:
        top = demo_kb.search(question, product_id=product, k=3)
        if not any(any(e in p.section for e in expected) for p in top):
            misses.append((question, [p.section for p in top]))
    hit_rate = 1 - len(misses) / len(QUESTIONS[product])
    assert hit_rate >= 0.9, misses


def test_pdf_passages_cite_their_page(demo_kb: KnowledgeBase) -> None:
    top = demo_kb.search("cooling rate that causes crazing", product_id="ceramic-tile-decor", k=3)
    pdf = [p for p in top if p.source.endswith(".pdf")]
    assert pdf and pdf[0].page == 2 and pdf[0].citation().endswith("§ page 2")


def test_product_suggested_from_a_photo(demo_kb: KnowledgeBase, tmp_path: Path) -> None:
    write_testset(tmp_path, good=3, per_defect=3)
    images = sorted(tmp_path.glob("*/test/*/*.png"))
    right = sum(
        demo_kb.suggest_product(load_image(path))[0][0] == path.parts[-4] for path in images
    )
    assert len(images) == 36
    assert right / len(images) >= 0.95
