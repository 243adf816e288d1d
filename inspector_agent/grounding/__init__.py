"""Grounders: expert (few-shot heatmap), vlm (served model), local (in-process model), fusion.

The backends (torch, transformers, HTTP clients) are imported by :func:`make_grounder` on first
use, so the request types here load at once.
"""

from inspector_agent.grounding.base import (
    Grounder,
    GrounderKind,
    GroundingError,
    GroundingRequest,
    ReferenceSet,
    make_grounder,
    register_grounder,
)

__all__ = [
    "Grounder",
    "GrounderKind",
    "GroundingError",
    "GroundingRequest",
    "ReferenceSet",
    "make_grounder",
    "register_grounder",
]
