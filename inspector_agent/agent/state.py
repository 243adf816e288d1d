"""The agent's typed state: paths and hashes of images only (never pixels), JSON-ready values."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

Intent = Literal["inspect", "follow_up", "spec", "history", "help"]
FollowUp = Literal["size", "why", "reference", "critical", "general"]


@dataclass
class TurnInput:
    """What one chat turn brings in; every field is sent on every turn (no stale image)."""

    text: str = ""
    image_path: str | None = None  # the stored upload (content-addressed), never pixels
    image_hash: str | None = None
    product_hint: str | None = None  # the product selector
    serial: str | None = None
    user: str = ""
    request_id: str = ""
    demo: bool = False  # a showcase run: answered like any other, not logged as an inspection


@dataclass
class InspectorState(TurnInput):
    """The whole thread state; ``messages`` grows through its reducer, the rest is per turn."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    intent: str = ""
    follow_up: str = ""
    product_id: str | None = None  # the thread's current product, kept across turns
    product_note: str = ""
    passages: list[dict[str, Any]] = field(default_factory=list)
    reference_paths: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    overlay_path: str | None = None
    last: dict[str, Any] | None = None  # the last inspection of this thread, for follow-ups
    step: str = ""  # what the latest node did, shown to the user as a live step
    error: str = ""
    reply: str = ""
    reply_images: list[str] = field(default_factory=list)
