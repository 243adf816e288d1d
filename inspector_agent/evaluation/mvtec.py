"""Read MVTec-AD-layout folders: ``train/good`` references, ``test/*`` queries, ``ground_truth`` masks."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


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
        """Boolean ground-truth mask of ``size`` (width, height); all false without a mask file."""
        if self.mask_path is None:
            return np.zeros((size[1], size[0]), dtype=bool)
        with Image.open(self.mask_path) as im:
            mask = im.convert("L")
            if mask.size != size:
                mask = mask.resize(size, Image.Resampling.NEAREST)
            return np.asarray(mask) > 127


@dataclass(frozen=True)
class Category:
    """One category folder: its name, reference images and test samples."""

    name: str
    root: Path
    train: list[Path]
    test: list[TestSample]

    def references(self, shots: int, seed: int) -> list[Path]:
        """``shots`` training images sampled with ``seed`` (all of them when ``shots`` <= 0)."""
        if shots <= 0 or shots >= len(self.train):
            return list(self.train)
        return sorted(random.Random(seed).sample(self.train, shots))


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _mask_for(root: Path, defect: str, image: Path) -> Path | None:
    folder = root / "ground_truth" / defect
    for suffix in (".png", image.suffix):
        candidate = folder / f"{image.stem}_mask{suffix}"
        if candidate.is_file():
            return candidate
    return None


def read_category(root: Path) -> Category:
    """Read one category folder; raises ``FileNotFoundError`` naming what is missing."""
    train = _images(root / "train" / "good")
    if not train:
        raise FileNotFoundError(f"{root}: no reference images in train/good")
    test_dir = root / "test"
    if not test_dir.is_dir():
        raise FileNotFoundError(f"{root}: no test folder")
    samples = []
    for defect_dir in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        defect = defect_dir.name
        for image in _images(defect_dir):
            mask = None if defect == "good" else _mask_for(root, defect, image)
            samples.append(TestSample(image, defect, mask))
    if not samples:
        raise FileNotFoundError(f"{root}: no test images")
    return Category(root.name, root, train, samples)


def find_categories(data_dir: Path, names: list[str] | None = None) -> list[Category]:
    """Categories under ``data_dir`` (folders holding ``train/good``), optionally only ``names``."""
    data_dir = Path(data_dir)
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
