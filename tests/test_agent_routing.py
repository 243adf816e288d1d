"""Deterministic request routing, serial/product extraction and the optional chat model's limits."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from inspector_agent.agent.explain import inspection_reply, spec_reply
from inspector_agent.agent.routing import (
    classify,
    extract_serial,
    mentioned_product,
    route_after_retrieve,
    route_request,
)
from inspector_agent.agent.state import InspectorState
from inspector_agent.kb.manifest import DefectType, ProductManifest


@dataclass
class ScriptedChat:
    """A fake chat model that answers from a script and remembers what it was asked."""

    answers: list[str]
    asked: list[str] = field(default_factory=list)

    def complete(self, system: str, user: str) -> str:
        self.asked.append(user)
        return self.answers.pop(0)


@pytest.mark.parametrize(
    ("text", "has_image", "has_last", "expected"),
    [
        ("Is this part OK?", True, False, ("inspect", None)),
        ("what did we find on serial 1234?", True, True, ("inspect", None)),
        ("Is this part OK?", False, False, ("inspect", None)),
        ("how big is it?", False, True, ("follow_up", "size")),
        ("why do you think so?", False, True, ("follow_up", "why")),
        ("show me a good one", False, True, ("follow_up", "reference")),
        ("is that critical?", False, True, ("follow_up", "critical")),
        ("what counts as a critical scratch on bracket?", False, True, ("spec", None)),
        ("which defects are rejected?", False, False, ("spec", None)),
        ("what did we find on serial 1234?", False, True, ("history", None)),
        ("how many rejects today on bracket?", False, False, ("history", None)),
        ("lot L-77", False, False, ("history", None)),
        ("hello", False, False, ("help", None)),
        ("", False, False, ("help", None)),
        ("how big is it?", False, False, ("spec", None)),
        ("what paint is used?", False, True, ("spec", None)),
    ],
)
def test_classify(text: str, has_image: bool, has_last: bool, expected: tuple) -> None:
    assert classify(text, has_image=has_image, has_last=has_last) == expected


def test_chat_model_only_breaks_ties_and_is_validated() -> None:
    chat = ScriptedChat(["history", "follow_up:size", "Verdict: defective!"])
    assert classify("anything from line 3 lately", has_image=False, has_last=True, chat=chat) == (
        "history",
        None,
    )
    assert classify("and its extent", has_image=False, has_last=True, chat=chat) == (
        "follow_up",
        "size",
    )
    # Free text that is not a known label is ignored: the deterministic default wins.
    assert classify("tell me more", has_image=False, has_last=True, chat=chat) == ("spec", None)
    # Keyword rules never consult the model.
    assert classify("how big is it?", has_image=False, has_last=True, chat=chat)[0] == "follow_up"
    assert len(chat.asked) == 3


def test_extract_serial_and_product() -> None:
    assert extract_serial("what did we find on serial 1234?") == "1234"
    assert extract_serial("S/N: AB-99 please") == "AB-99"
    assert extract_serial("lot #L7") == "L7"
    assert extract_serial("is this OK?") is None
    products = [
        ProductManifest("bracket", "Bracket B-7", "d"),
        ProductManifest("bracket-xl", "Big bracket", "d"),
        ProductManifest("gear_wheel", "Gear", "d"),
    ]
    assert mentioned_product("scratch on bracket-xl?", products) == "bracket-xl"
    assert mentioned_product("scratch on the Bracket?", products) == "bracket"
    assert mentioned_product("rejects on gear wheel today", products) == "gear_wheel"
    assert mentioned_product("rejects today", products) is None


def test_routers_fail_loudly_on_unknown_intent() -> None:
    assert route_request(InspectorState(intent="inspect")) == "resolve_product"
    assert route_request(InspectorState(intent="inspect", error="bad file")) == "fail"
    with pytest.raises(ValueError, match="unknown intent"):
        route_request(InspectorState(intent="dance"))
    with pytest.raises(ValueError, match="unexpected intent"):
        route_after_retrieve(InspectorState(intent="history"))


def test_langgraph_json_graph_loads() -> None:
    import importlib.util
    import json
    from pathlib import Path

    config = json.loads((Path(__file__).parents[1] / "langgraph.json").read_text())
    file, attr = config["graphs"]["inspector"].split(":")
    spec = importlib.util.spec_from_file_location("lg_graph", Path(__file__).parents[1] / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    nodes = set(getattr(module, attr)().get_graph().nodes)
    assert {"understand", "resolve_product", "retrieve", "pick_references", "ground"} <= nodes
    assert {"explain", "record", "answer_from_spec", "follow_up", "history"} <= nodes


def test_spec_reply_keeps_the_quotes_out_of_the_list() -> None:
    manifest = ProductManifest(
        "panel",
        "Panel",
        "A panel.",
        defects=[DefectType("hole", "a pit", "critical", "Reject any hole.")],
    )
    passage = {
        "text": "Reject any hole deeper than 0.1 mm.",
        "product_id": "panel",
        "source": "spec.md",
        "section": "4 Acceptance > 4.3 Holes",
        "page": None,
        "score": 0.8,
    }
    reply = spec_reply("which defects are rejected?", manifest, [passage])
    lines = reply.splitlines()
    # Markdown would carry a line right after a list item into that item
    assert lines[:4] == [
        "Defects that lead to rejection on Panel:",
        "- **hole** (critical): Reject any hole.",
        "",
        "From the specification:",
    ]
    assert lines[4].endswith("[panel / spec.md § 4 Acceptance > 4.3 Holes]")


def test_inspection_reply_ends_the_defect_list_before_its_notes() -> None:
    manifest = ProductManifest("panel", "Panel", "A panel.")
    result = {
        "verdict": "defective",
        "pred_score": 2.0,
        "threshold": 1.0,
        "defects": [{"label": "anomaly", "bbox": [1, 2, 30, 40]}],
        "notes": ["matching: global"],
    }
    lines = inspection_reply(result, manifest, {}).splitlines()
    found = lines.index("Found 1 defect:")
    assert lines[found + 1].startswith("- **anomaly** at ")
    assert lines[found + 2] == ""  # or Markdown runs the next line into the bullet
    notes = lines.index("Notes:")
    assert lines[notes - 1] == "" and lines[notes + 1 : notes + 3] == ["- matching: global", ""]
