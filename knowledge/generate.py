"""Regenerate the demo products' reference images, or write a defective test set with masks.

python -m knowledge.generate references            # knowledge/products/*/references
python -m knowledge.generate testset --out DIR     # MVTec layout: DIR/<product>/test, ground_truth
"""

from __future__ import annotations

import argparse
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from knowledge.defects import PAINTERS
from knowledge.pdf import write_text_pdf
from knowledge.textures import RENDERERS, SIZE

PRODUCTS_DIR = Path(__file__).resolve().parent / "products"
DEFECTS = {
    "brushed-alu-panel": ("scratch", "stain", "hole"),
    "woven-tech-fabric": ("hole", "stain", "scratch"),
    "ceramic-tile-decor": ("crack", "missing_print", "stain"),
}
REFERENCE_COUNT = 8
JPEG_QUALITY = 92


def _rng(product: str, index: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(product.encode()), index])


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8))
    if path.suffix == ".jpg":
        image.save(path, quality=JPEG_QUALITY)
    else:
        image.save(path, optimize=True)


def good_image(product: str, index: int) -> np.ndarray:
    """Good part number ``index`` of ``product`` (deterministic)."""
    return RENDERERS[product](_rng(product, index), SIZE)[0]


def defective_image(product: str, defect: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """A part of ``product`` with one ``defect`` painted on it, and the defect's mask."""
    rng = _rng(product, 100_000 + index * 17 + sorted(PAINTERS).index(defect))
    image, print_mask, unprinted = RENDERERS[product](rng, SIZE)
    mask = PAINTERS[defect](rng, image, unprinted, print_mask)
    return image, mask


def write_references(products_dir: Path = PRODUCTS_DIR, count: int = REFERENCE_COUNT) -> list[Path]:
    """Write ``count`` good references (JPEG, small) into each demo product's ``references/``."""
    written = []
    for product in RENDERERS:
        folder = products_dir / product / "references"
        for old in folder.glob("good_*"):
            old.unlink()
        for index in range(count):
            path = folder / f"good_{index:03d}.jpg"
            _save(good_image(product, index), path)
            written.append(path)
    return written


GLAZE_DATASHEET = [
    [
        "Glaze datasheet CT-GL-07 (cream gloss) for decor tile CT-20-ROSA",
        "Composition: zircon-opacified alkaline glaze with iron-bearing kiln speckle.",
        "Application: 380 g per m2 by bell, dry film 0.35 mm.",
        "Firing: single fast firing, peak 1120 C, cycle 52 minutes.",
    ],
    [
        "Thermal shock and crazing",
        "Cooling faster than 50 K per minute between 600 C and 500 C causes hairline crazing.",
        "Crazing shows as a fine network of dark lines under low-angle light.",
        "Autoclave test: no crazing after 5 cycles at 5 bar (EN ISO 10545-11).",
    ],
    [
        "Cobalt decor ink CB-12",
        "Screen mesh 77 threads per cm; ink viscosity 45 s (Ford cup 4).",
        "A blocked screen leaves gaps in the border; check the screen every 2000 tiles.",
    ],
]


def write_documents(products_dir: Path = PRODUCTS_DIR) -> Path:
    """Write the ceramic tile's PDF glaze datasheet (a demo of page-aware PDF ingestion)."""
    return write_text_pdf(
        GLAZE_DATASHEET, products_dir / "ceramic-tile-decor" / "glaze-datasheet.pdf"
    )


def write_testset(out: Path, good: int = 4, per_defect: int = 4) -> int:
    """Write an MVTec-layout test set (test/good, test/<defect>, ground_truth masks); returns images."""
    total = 0
    for product, defects in DEFECTS.items():
        for index in range(good):
            _save(
                good_image(product, 1000 + index),
                out / product / "test" / "good" / f"{index:03d}.png",
            )
            total += 1
        for defect in defects:
            for index in range(per_defect):
                image, mask = defective_image(product, defect, index)
                _save(image, out / product / "test" / defect / f"{index:03d}.png")
                _save(
                    mask.astype(float),
                    out / product / "ground_truth" / defect / f"{index:03d}_mask.png",
                )
                total += 1
    return total


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m knowledge.generate", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="what", required=True)
    refs = sub.add_parser("references", help="regenerate references/ and generated documents")
    refs.add_argument("--products-dir", type=Path, default=PRODUCTS_DIR)
    refs.add_argument("--count", type=int, default=REFERENCE_COUNT)
    test = sub.add_parser("testset", help="write defective test images with masks (MVTec layout)")
    test.add_argument("--out", type=Path, required=True)
    test.add_argument("--good", type=int, default=4)
    test.add_argument("--per-defect", type=int, default=4)
    args = parser.parse_args(argv)
    if args.what == "references":
        print(f"wrote {len(write_references(args.products_dir, args.count))} reference images")
        print(f"wrote {write_documents(args.products_dir)}")
    else:
        print(
            f"wrote {write_testset(args.out, args.good, args.per_defect)} test images to {args.out}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
