"""Grounders: expert (few-shot heatmap), vlm (served model), local (in-process model), fusion."""

from importlib import import_module
from importlib.util import find_spec

from inspector_agent.grounding.base import (
    Grounder,
    GrounderKind,
    GroundingError,
    GroundingRequest,
    ReferenceSet,
    make_grounder,
    register_grounder,
)

# Importing a backend registers it with the registry.
for _module in ("expert", "vlm", "local", "fusion"):
    if find_spec(f"inspector_agent.grounding.{_module}") is not None:
        import_module(f"inspector_agent.grounding.{_module}")

__all__ = [
    "Grounder",
    "GrounderKind",
    "GroundingError",
    "GroundingRequest",
    "ReferenceSet",
    "make_grounder",
    "register_grounder",
]
