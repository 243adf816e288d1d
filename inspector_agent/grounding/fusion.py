"""The ``fusion`` grounder: the model's verdict and boxes, masks from the expert's heatmap.

The model (``vlm`` when a server is configured, else ``local``) decides and names defects;
inside each of its boxes the expert's thresholded heatmap gives the pixel mask. When the two
disagree (the model says normal but the expert finds a strong anomaly, or the model boxes a
region where the expert sees nothing) the result says so in ``notes`` and ``disagreement``.
"""

from __future__ import annotations

import time

import numpy as np

from inspector_agent.geometry import Box, box_to_mask
from inspector_agent.grounding.base import (
    Grounder,
    GroundingRequest,
    make_grounder,
    register_grounder,
)
from inspector_agent.schema import Defect, InspectionResult, Verdict
from inspector_agent.settings import Settings


def _where(box: Box) -> str:
    return f"({box.x1:.0f}, {box.y1:.0f})-({box.x2:.0f}, {box.y2:.0f})"


def fuse(model: InspectionResult, expert: InspectionResult) -> InspectionResult:
    """Model verdict and boxes, each box's mask cut from the expert mask, disagreements noted."""
    width, height = model.image_size
    flagged = expert.verdict == Verdict.DEFECTIVE and expert.pred_mask is not None
    # the expert's mask marks its most anomalous regions even on normal images: use it only
    # when the expert itself flags the image
    expert_mask = expert.pred_mask if flagged else np.zeros((height, width), bool)
    amap = expert.anomaly_map
    notes: list[str] = []
    defects: list[Defect] = []
    mask = np.zeros((height, width), bool)
    for defect in model.defects:
        region = expert_mask & box_to_mask(defect.box, height, width)
        mask |= region
        inside = box_to_mask(defect.box, height, width)
        peak = float(amap[inside].max()) if amap is not None and inside.any() else 0.0
        defects.append(Defect(defect.label, defect.box, peak, int(region.sum()), defect.size_mm))
        if not region.any():
            notes.append(
                f"The model reports {defect.label} at {_where(defect.box)} but the expert "
                "heatmap shows nothing unusual there."
            )
    if model.verdict == Verdict.OK and expert.verdict == Verdict.DEFECTIVE:
        where = _where(expert.defects[0].box) if expert.defects else "somewhere in the image"
        notes.append(
            f"The model says normal but the expert finds a strong anomaly at {where} "
            f"(score {expert.pred_score:.2f}, threshold {expert.threshold or 0:.2f})."
        )
        mask = expert_mask.copy()  # shown, so the supervisor can judge it
    elif model.verdict == Verdict.DEFECTIVE and expert.verdict == Verdict.OK and not notes:
        notes.append(
            f"The model says defective but the expert's score is below its threshold "
            f"({expert.pred_score:.2f} < {expert.threshold or 0:.2f})."
        )
    return InspectionResult(
        verdict=model.verdict,
        pred_score=model.pred_score,
        defects=defects,
        threshold=model.threshold,
        grounder="fusion",
        model=f"{model.model} + {expert.model}",
        reasoning=model.reasoning,
        parse_status=model.parse_status,
        disagreement=bool(notes),
        notes=notes + model.notes,
        image_size=model.image_size,
        anomaly_map=amap,
        pred_mask=mask,
    )


class FusionGrounder:
    """Runs the model grounder and the expert on the same request and fuses their answers."""

    name = "fusion"

    def __init__(self, model: Grounder, expert: Grounder) -> None:
        self.model = model
        self.expert = expert

    def ground(self, request: GroundingRequest) -> InspectionResult:
        """Inspect one query with both grounders; the expert alone when the model cannot answer."""
        start = time.perf_counter()
        answer = self.model.ground(request)
        # A fallback answer is already the expert's, with the reason in its notes.
        result = answer if answer.fell_back else fuse(answer, self.expert.ground(request))
        result.latency_ms = (time.perf_counter() - start) * 1000.0
        return result


@register_grounder("fusion")
def make_fusion(settings: Settings) -> FusionGrounder:
    """Registry factory: ``vlm`` when a model server is configured, else ``local``."""
    model_kind = "vlm" if settings.model_url else "local"
    return FusionGrounder(make_grounder(model_kind, settings), make_grounder("expert", settings))
