"""The grounder interface: a request in, an :class:`InspectionResult` out, and a registry by kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from inspector_agent.errors import InspectorError
from inspector_agent.schema import InspectionResult
from inspector_agent.settings import Settings


class GrounderKind(StrEnum):
    """The grounder backends users choose between."""

    EXPERT = "expert"
    VLM = "vlm"
    LOCAL = "local"
    FUSION = "fusion"


class GroundingError(InspectorError):
    """A grounder could not answer; the message is meant for a line supervisor."""


@dataclass
class ReferenceSet:
    """Known-good images of one product and the expert grounder's calibration for them."""

    product_id: str
    paths: list[Path]
    calibration: dict[str, Any] | None = None
    expert: dict[str, Any] = field(default_factory=dict)  # the manifest's expert settings


@dataclass
class GroundingRequest:
    """One query image to compare with a product's references."""

    query: Image.Image
    references: ReferenceSet
    question: str = ""
    knowledge: list[str] = field(default_factory=list)
    query_name: str = ""
    # The product's whole reference set when ``references`` holds only the closest few: an
    # expert fallback needs all of them (one reference cannot calibrate a threshold).
    all_references: ReferenceSet | None = None

    @property
    def expert_references(self) -> ReferenceSet:
        """The references the expert grounder should compare with."""
        return self.all_references or self.references


class Grounder(Protocol):
    """Anything that turns a :class:`GroundingRequest` into an :class:`InspectionResult`."""

    name: str

    def ground(self, request: GroundingRequest) -> InspectionResult:
        """Inspect the query against the references."""
        ...


GrounderFactory = Callable[[Settings], Grounder]
_REGISTRY: dict[GrounderKind, GrounderFactory] = {}
_BACKENDS = ("expert", "vlm", "local", "fusion")  # modules under inspector_agent.grounding


def register_grounder(kind: GrounderKind | str) -> Callable[[GrounderFactory], GrounderFactory]:
    """Class or factory decorator: ``@register_grounder("expert")``."""

    def wrap(factory: GrounderFactory) -> GrounderFactory:
        _REGISTRY[GrounderKind(kind)] = factory
        return factory

    return wrap


def make_grounder(kind: GrounderKind | str, settings: Settings) -> Grounder:
    """Build the grounder of ``kind`` for ``settings`` (importing the backends on first use)."""
    for name in _BACKENDS:  # importing a backend registers it
        if find_spec(f"inspector_agent.grounding.{name}") is not None:
            import_module(f"inspector_agent.grounding.{name}")
    try:
        key = GrounderKind(kind)
    except ValueError:
        names = ", ".join(k.value for k in GrounderKind)
        raise GroundingError(f"unknown grounder {kind!r}; choose one of {names}") from None
    if key not in _REGISTRY:
        raise GroundingError(f"the {key.value} grounder is not available in this installation")
    return _REGISTRY[key](settings)
