"""The inspection result and defect schema shared by grounders, the agent, the CLI and records."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from inspector_agent.geometry import Box


class Verdict(StrEnum):
    """The verdict on one part."""

    OK = "ok"
    DEFECTIVE = "defective"


class ParseStatus(StrEnum):
    """How a model's text answer was read (``ok`` for grounders that do not parse text)."""

    OK = "ok"  # our <think>/<answer> JSON
    DIFFERAD = "differad_box"  # DifferAD-R1's (x1,y1),(x2,y2) form, zero box = normal
    BARE_BOX = "bare_box"  # a bare [x1, y1, x2, y2] list
    OPTION = "option_letter"  # an MMAD-style option letter
    NO_ANSWER_TAGS = "no_answer_tags"  # readable content but no <answer> tags
    INVALID = "invalid"  # nothing usable
    EMPTY = "empty"  # empty output


@dataclass
class Defect:
    """One defect: a label, a box in original pixels, a score and optionally its size."""

    label: str
    box: Box
    score: float
    area_px: int | None = None
    size_mm: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {
            "label": self.label,
            "bbox": self.box.to_list(),
            "score": round(float(self.score), 4),
        }
        if self.area_px is not None:
            out["area_px"] = int(self.area_px)
        if self.size_mm is not None:
            out["size_mm"] = round(float(self.size_mm), 2)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Defect:
        """Inverse of :meth:`to_dict`."""
        return cls(
            label=str(data["label"]),
            box=Box(*map(float, data["bbox"])),
            score=float(data.get("score", 0.0)),
            area_px=data.get("area_px"),
            size_mm=data.get("size_mm"),
        )


@dataclass
class InspectionResult:
    """A grounder's answer for one query image (anomalib names for score, map and mask)."""

    verdict: Verdict
    pred_score: float
    defects: list[Defect] = field(default_factory=list)
    threshold: float | None = None
    grounder: str = ""
    model: str = ""
    latency_ms: float = 0.0
    reasoning: str = ""
    parse_status: ParseStatus = ParseStatus.OK
    fell_back: bool = False
    disagreement: bool = False  # fusion: the model and the expert disagree (see notes)
    close_call: bool = False  # verdict OK, but scored near the threshold: worth a look (notes)
    notes: list[str] = field(default_factory=list)
    image_size: tuple[int, int] = (0, 0)  # (width, height) of the original image
    anomaly_map: np.ndarray | None = None  # HxW float32 at original size
    pred_mask: np.ndarray | None = None  # HxW bool at original size

    @property
    def pred_label(self) -> bool:
        """True when the part is judged defective (anomalib's ``pred_label``)."""
        return self.verdict == Verdict.DEFECTIVE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the heatmap and mask are left out; they travel as images)."""
        return {
            "verdict": self.verdict.value,
            "pred_score": round(float(self.pred_score), 4),
            "threshold": None if self.threshold is None else round(float(self.threshold), 4),
            "defects": [d.to_dict() for d in self.defects],
            "grounder": self.grounder,
            "model": self.model,
            "latency_ms": round(float(self.latency_ms), 1),
            "reasoning": self.reasoning,
            "parse_status": self.parse_status.value,
            "fell_back": self.fell_back,
            "disagreement": self.disagreement,
            "close_call": self.close_call,
            "notes": list(self.notes),
            "image_size": list(self.image_size),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InspectionResult:
        """Inverse of :meth:`to_dict` (without heatmap and mask)."""
        return cls(
            verdict=Verdict(data["verdict"]),
            pred_score=float(data["pred_score"]),
            threshold=data.get("threshold"),
            defects=[Defect.from_dict(d) for d in data.get("defects", [])],
            grounder=data.get("grounder", ""),
            model=data.get("model", ""),
            latency_ms=float(data.get("latency_ms", 0.0)),
            reasoning=data.get("reasoning", ""),
            parse_status=ParseStatus(data.get("parse_status", "ok")),
            fell_back=bool(data.get("fell_back", False)),
            disagreement=bool(data.get("disagreement", False)),
            close_call=bool(data.get("close_call", False)),
            notes=list(data.get("notes", [])),
            image_size=tuple(data.get("image_size", (0, 0))),
        )
