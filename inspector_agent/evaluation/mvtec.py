"""Read MVTec-AD-layout folders: ``train/good`` references, ``test/*`` queries, ``ground_truth`` masks.

A defect image's mask is ``ground_truth/<defect>/<stem>_mask.png`` (MVTec AD) or a folder
``ground_truth/<defect>/<stem>/`` of region masks whose union is the mask (MVTec LOCO AD).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from inspector_agent.imaging import image_files, load_image


@dataclass(frozen=True)
class TestSample:
    """One test image: its defect type (``good`` for normal) and mask path, if any."""

    path: Path
    defect: str
    mask_path: Path | None

    @property
    def is_anomalous(self) -> bool:
        """True for every defect type except ``good``."""
        return self.defect != "good"

    def load_mask(self, size: tuple[int, int]) -> np.ndarray:
        """Boolean ground-truth mask of ``size`` (width, height); all false without a mask.

        Raises :class:`~inspector_agent.imaging.ImageError` naming a mask file that cannot be read.
        """
        mask = np.zeros((size[1], size[0]), dtype=bool)
        if self.mask_path is None:
            return mask
        regions = self.mask_path.is_dir()  # LOCO: one file per region, any non-zero value
        for file in image_files(self.mask_path) if regions else [self.mask_path]:
            region = load_image(file).convert("L")
            if region.size != size:
                region = region.resize(size, Image.Resampling.NEAREST)
            mask |= np.asarray(region) > (0 if regions else 127)
        return mask


@dataclass(frozen=True)
class Category:
    """One category folder: its name, reference images and test samples."""

    name: str
    root: Path
    train: list[Path]
    test: list[TestSample]

    @property
    def has_masks(self) -> bool:
        """False for a category without ground truth (image metrics only)."""
        return any(s.mask_path is not None for s in self.test)

    def references(self, shots: int, seed: int) -> list[Path]:
        """``shots`` training images sampled with ``seed`` (all of them when ``shots`` <= 0)."""
        if shots <= 0 or shots >= len(self.train):
            return list(self.train)
        return sorted(random.Random(seed).sample(self.train, shots))


def _mask_for(root: Path, defect: str, image: Path) -> Path | None:
    folder = root / "ground_truth" / defect
    for suffix in (".png", image.suffix):
        candidate = folder / f"{image.stem}_mask{suffix}"
        if candidate.is_file():
            return candidate
    regions = folder / image.stem
    return regions if image_files(regions) else None


def read_category(root: Path) -> Category:
    """Read one category folder; raises ``FileNotFoundError`` naming what is missing."""
    train = image_files(root / "train" / "good")
    if not train:
        raise FileNotFoundError(f"{root}: no reference images in train/good")
    test_dir = root / "test"
    if not test_dir.is_dir():
        raise FileNotFoundError(f"{root}: no test folder")
    samples = []
    for defect_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        defect = defect_dir.name
        for image in image_files(defect_dir):
            mask = None if defect == "good" else _mask_for(root, defect, image)
            samples.append(TestSample(image, defect, mask))
    if not samples:
        raise FileNotFoundError(f"{root}: no test images")
    category = Category(root.name, root, train, samples)
    unmasked = [s for s in samples if s.is_anomalous and s.mask_path is None]
    if category.has_masks and unmasked:  # a partial ground truth would score its gaps as normal
        image = unmasked[0].path
        raise FileNotFoundError(
            f"{image}: no ground-truth mask (expected ground_truth/{unmasked[0].defect}/"
            f"{image.stem}_mask.png); give every defect image its mask, or none for image "
            "metrics only"
        )
    return category


def find_categories(data_dir: Path, names: list[str] | None = None) -> list[Category]:
    """Categories under ``data_dir`` (folders holding ``train/good``), optionally only ``names``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        problem = "is a file, not a folder" if data_dir.exists() else "folder not found"
        raise FileNotFoundError(f"{data_dir}: {problem}")
    if (data_dir / "train" / "good").is_dir():
        found = [data_dir]
    else:
        found = sorted(p for p in data_dir.iterdir() if (p / "train" / "good").is_dir())
    if names:
        by_name = {p.name: p for p in found}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise FileNotFoundError(f"{data_dir}: no category {', '.join(missing)}")
        found = [by_name[n] for n in names]
    if not found:
        raise FileNotFoundError(f"{data_dir}: no MVTec-style category (train/good) found")
    return [read_category(p) for p in found]
