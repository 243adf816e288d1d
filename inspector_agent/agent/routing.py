"""Deterministic request classification and the graph's routing functions."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from inspector_agent.agent.context import ChatModel
from inspector_agent.agent.state import FollowUp, InspectorState, Intent

SERIAL_RE = re.compile(
    r"\b(?:serial|s/n|sn|lot|batch)\s*(?:number|no\.?|nr\.?|#)?\s*[:#=]?\s*([A-Za-z0-9][\w-]*)",
    re.IGNORECASE,
)
SPEC_RE = re.compile(
    r"what counts|which defects|what defects|criteri|\bspec|acceptance|accept(?:ed|able)? (?:on|for)"
    r"|\ballowed\b|tolerance|\brejected\b|what is a |what's a |definition",
    re.IGNORECASE,
)
HISTORY_RE = re.compile(
    r"how many|\brejects?\b.*\b(?:today|yesterday|this week)|\bhistory\b|what did we find"
    r"|found on|inspected on|\blast (?:week|inspections?)\b",
    re.IGNORECASE,
)
FOLLOW_UPS: list[tuple[FollowUp, re.Pattern[str]]] = [
    ("size", re.compile(r"how (?:big|large|long|wide)|\bsize\b|dimension|\bmm\b", re.I)),
    ("reference", re.compile(r"good one|good part|reference|normal one|example|compare", re.I)),
    ("critical", re.compile(r"critical|severe|severity|serious|reject it|acceptable|scrap", re.I)),
    ("why", re.compile(r"\bwhy\b|reason|how do you know|explain|sure\b|confiden", re.I)),
]
INSPECT_RE = re.compile(r"\bok\b|okay|defect|inspect|check|good|bad|damag|anomal", re.I)
HELP_RE = re.compile(r"^\s*(?:hi|hello|hey|help|what can you do)\b", re.I)

ROUTES = Literal["resolve_product", "follow_up", "history", "help", "fail"]


def extract_serial(text: str) -> str | None:
    """A serial or lot number named in the text (``serial 1234``, ``lot: L-7``), if any."""
    match = SERIAL_RE.search(text or "")
    return match.group(1) if match else None


def classify(
    text: str, *, has_image: bool, has_last: bool, chat: ChatModel | None = None
) -> tuple[Intent, FollowUp | None]:
    """The request's intent (and follow-up kind) from keywords; the chat model only breaks ties."""
    if has_image:
        return "inspect", None
    if SPEC_RE.search(text):
        return "spec", None
    if HISTORY_RE.search(text) or (extract_serial(text) and not INSPECT_RE.search(text)):
        return "history", None
    if has_last:
        for kind, pattern in FOLLOW_UPS:
            if pattern.search(text):
                return "follow_up", kind
    if HELP_RE.search(text) or not text.strip():
        return "help", None
    if INSPECT_RE.search(text) and re.search(r"\b(?:this|part|photo|image)\b", text, re.I):
        return "inspect", None
    guessed = _ask_chat(chat, text) if chat else None
    return guessed if guessed is not None else ("spec", None)


def _ask_chat(chat: ChatModel, text: str) -> tuple[Intent, FollowUp | None] | None:
    """Ask the chat model for one label; anything but a known label is ignored."""
    labels = ["spec", "history", "help", *(f"follow_up:{k}" for k in get_args(FollowUp))]
    answer = (
        chat.complete(
            "Classify the user's request for an inspection assistant. Reply with exactly one of: "
            + ", ".join(labels),
            text,
        )
        .strip()
        .lower()
    )
    if answer in ("spec", "history", "help"):
        return answer, None  # type: ignore[return-value]
    if answer.startswith("follow_up:") and answer.split(":", 1)[1] in get_args(FollowUp):
        return "follow_up", answer.split(":", 1)[1]  # type: ignore[return-value]
    return None


def route_request(state: InspectorState) -> ROUTES:
    """After ``understand``: to product resolution, a follow-up, history, help or the error reply."""
    if state.error:
        return "fail"
    routes: dict[str, ROUTES] = {
        "inspect": "resolve_product",
        "spec": "resolve_product",
        "follow_up": "follow_up",
        "history": "history",
        "help": "help",
    }
    if state.intent not in routes:
        raise ValueError(f"unknown intent {state.intent!r}")
    return routes[state.intent]


def route_after_product(state: InspectorState) -> Literal["retrieve", "fail"]:
    """After ``resolve_product``: retrieve knowledge unless no product could be found."""
    return "fail" if state.error else "retrieve"


def route_after_retrieve(state: InspectorState) -> Literal["pick_references", "answer_from_spec"]:
    """After ``retrieve``: inspections go on to references, spec questions are answered."""
    if state.intent == "inspect":
        return "pick_references"
    if state.intent == "spec":
        return "answer_from_spec"
    raise ValueError(f"unexpected intent {state.intent!r} after retrieve")


def route_after_references(state: InspectorState) -> Literal["ground", "fail"]:
    """After ``pick_references``: ground unless the product has no references."""
    return "fail" if state.error else "ground"


def route_after_ground(state: InspectorState) -> Literal["explain", "fail"]:
    """After ``ground``: explain a validated result, or reply with the grounder's problem."""
    return "fail" if state.error or state.result is None else "explain"


def mentioned_product(text: str, products: list[Any]) -> str | None:
    """The id of a product named in the text by id or name (longest match wins), if any."""
    lowered = f" {(text or '').lower()} "
    best: tuple[int, str] | None = None
    for product in products:
        for name in {product.id, product.id.replace("_", " ").replace("-", " "), product.name}:
            pattern = rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])"
            if name and re.search(pattern, lowered) and (best is None or len(name) > best[0]):
                best = (len(name), product.id)
    return best[1] if best else None
