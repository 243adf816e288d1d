"""What a product's references taught the expert grounder: features, calibration, disk cache."""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from inspector_agent.atomic_files import write_bytes_atomic


@dataclass
class ExpertCalibration:
    """What the references taught: matching mode, scale and thresholds (JSON-serialisable)."""

    mode: str
    scale: float  # model pixels per original pixel
    image_threshold: float
    pixel_threshold: float
    reference_scores: list[float]
    aligned_fraction: float
    config_key: str
    set_aside: int | None = None  # the reference (index in path order) left out of the threshold

    def to_dict(self) -> dict:
        """JSON-ready form, stored with the product."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ExpertCalibration:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def set_aside_reference(self, paths: list[Path]) -> Path | None:
        """The reference left out of the image threshold, among the ``paths`` calibrated."""
        if self.set_aside is None:
            return None
        return reference_order(paths)[self.set_aside]


def reference_order(paths: list[Path]) -> list[Path]:
    """References in the order their features and scores are kept."""
    return sorted(paths, key=str)


def image_threshold(
    scores: list[float], peers: list[float], outlier_factor: float
) -> tuple[float, int | None]:
    """The image threshold from the references' leave-one-out ``scores``, and the reference
    set aside, if any.

    ``peers`` are the scores of the other references among themselves, without the
    highest-scoring one. The threshold is the highest score, unless that score exceeds
    ``outlier_factor`` times the peers' median (at least two peers, median above 0). That
    reference is then unlike the rest, for example the only one of a product variant: its score
    says how a good part of a kind no reference shows would look, which a query of its kind no
    longer is once it is a reference. The highest peer score is the threshold then. (Queries
    are still matched against it, and its map stays in an aligned product's baseline: without it
    there, juice_bottle image AUROC fell on two draws of six. That baseline lowers a query's
    score a little against the peers', so the threshold errs towards fewer false alarms.)
    """
    if not scores:
        return float("inf"), None
    top = int(np.argmax(scores))
    median = float(np.median(peers)) if len(peers) >= 2 else 0.0
    if median > 0 and scores[top] > outlier_factor * median:
        return float(max(peers)), top
    return float(scores[top]), None


@dataclass
class MemoryBank:
    """Reference features: per-image grids (aligned) or a flat coreset (global) + calibration."""

    grids: torch.Tensor  # (K, C, H, W) of the unaugmented references at a common size
    bank: torch.Tensor  # (N, C) global bank
    calibration: ExpertCalibration
    baseline: torch.Tensor | None = None  # aligned: mean reference map, subtracted per position
    whitening: torch.Tensor | None = None  # global: (C, C) map applied to every patch feature

    def save(self, file: Path) -> None:
        """Write the bank to ``file``, whole or not at all."""
        buffer = io.BytesIO()
        torch.save(
            {
                "grids": self.grids,
                "bank": self.bank,
                "calibration": asdict(self.calibration),
                "baseline": self.baseline,
                "whitening": self.whitening,
            },
            buffer,
        )
        write_bytes_atomic(file, buffer.getvalue())

    @classmethod
    def load(cls, file: Path) -> MemoryBank:
        """Inverse of :meth:`save`."""
        data = torch.load(file, weights_only=True)
        calibration = ExpertCalibration.from_dict(data["calibration"])
        return cls(
            data["grids"], data["bank"], calibration, data.get("baseline"), data.get("whitening")
        )


@lru_cache(maxsize=4096)
def _file_digest(path: str, mtime_ns: int, size: int) -> bytes:
    return hashlib.sha256(Path(path).read_bytes()).digest()


def content_hash(paths: list[Path], config_key: str) -> str:
    """Digest of a reference set's file contents and the method configuration (cache key)."""
    digest = hashlib.sha256(config_key.encode())
    for path in sorted(paths, key=str):
        stat = Path(path).stat()  # a file rewritten in place gets a new mtime: hashed again
        digest.update(_file_digest(str(path), stat.st_mtime_ns, stat.st_size))
    return digest.hexdigest()[:24]
