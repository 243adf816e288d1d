"""The agent graph end to end on a real knowledge base, the expert grounder and SQLite records."""

from __future__ import annotations

import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_agent_fixtures import make_product, write_query

from inspector_agent.agent.context import AgentContext, build_context
from inspector_agent.agent.service import InspectorAgent
from inspector_agent.grounding import GroundingError, GroundingRequest
from inspector_agent.schema import InspectionResult
from inspector_agent.settings import Settings


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[AgentContext, Path]:
    """One ingested product shared by the module (ingestion embeds and calibrates: seconds)."""
    root = tmp_path_factory.mktemp("agent")
    ctx = build_context(Settings(data_dir=root / "data", max_image_pixels=1_000_000))
    ctx.kb.add_product(make_product(root / "src"))
    yield ctx, root
    ctx.records.close()
    ctx.kb.close()


@pytest.fixture
def agent(world: tuple[AgentContext, Path]) -> InspectorAgent:
    return InspectorAgent(world[0])


def test_inspection_streams_steps_and_records_once(world, agent: InspectorAgent) -> None:
    ctx, root = world
    query = write_query(root, "stained.png", stain=True)
    steps = list(
        agent.stream(
            "inspect-1",
            "Is this part OK?",
            query,
            product="bracket",
            serial="SN-1",
            user="ann",
            request_id="req-a",
        )
    )
    assert [s.node for s in steps] == [
        "understand",
        "resolve_product",
        "retrieve",
        "pick_references",
        "ground",
        "explain",
        "record",
    ]
    assert all(s.detail for s in steps)
    state = agent.state("inspect-1")
    result = state["result"]
    assert result["verdict"] == "defective" and result["defects"]
    big = max(result["defects"], key=lambda d: d["score"])
    x1, y1, x2, y2 = big["bbox"]
    assert x1 <= 70 <= x2 and y1 <= 30 <= y2  # the stain is at (58..80, 20..42)
    assert big["size_mm"] == pytest.approx(max(x2 - x1, y2 - y1) * 0.1, abs=0.01)
    assert "**Verdict: DEFECTIVE**" in state["reply"] and "mm long" in state["reply"]
    assert "scratch (critical: reject if longer than 2 mm)" in state["reply"]
    overlay = Path(state["reply_images"][0])
    assert Image.open(overlay).size[0] >= 96
    # The same request again is not logged twice.
    list(
        agent.stream("inspect-1", "Is this part OK?", query, product="bracket", request_id="req-a")
    )
    rows = ctx.records.query(serial="SN-1")
    assert len(rows) == 1 and rows[0].user == "ann" and rows[0].verdict == "defective"
    assert Path(rows[0].image_path).read_bytes() == query.read_bytes()
    # Images stay out of the checkpoint: only paths and hashes.
    conn = sqlite3.connect(ctx.settings.data_dir / "threads.sqlite")
    blobs = b"".join(r[0] for r in conn.execute("SELECT checkpoint FROM checkpoints") if r[0])
    assert b"\x89PNG" not in blobs and len(blobs) < 200_000


def test_reference_image_is_ok_and_product_guessed_from_photo(world, agent: InspectorAgent) -> None:
    ctx, root = world
    good = ctx.kb.reference_set("bracket").paths[0]
    shutil.copy(good, root / "good-copy.png")
    state = agent.ask("ok-1", "is this ok?", root / "good-copy.png")
    assert state["result"]["verdict"] == "ok"
    assert "guessed from the photo" in state["reply"]
    assert "**Verdict: OK**" in state["reply"]


def test_a_photo_of_an_unknown_part_is_not_inspected_as_a_known_one(
    world, agent: InspectorAgent
) -> None:
    ctx, root = world
    rng = np.random.default_rng(5)  # a colourful blotchy scene, nothing like the grey bracket
    blotches = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
    Image.fromarray(blotches).resize((96, 96), Image.Resampling.BICUBIC).save(root / "odd.png")
    before = ctx.records.count()
    state = agent.ask("stranger-1", "is this ok?", root / "odd.png")
    assert "does not look like any product I know" in state["reply"]
    assert "Known products: bracket" in state["reply"] and not state.get("result")
    assert ctx.records.count() == before
    chosen = agent.ask("stranger-2", "is this ok?", root / "odd.png", product="bracket")
    assert chosen["result"]["verdict"] in ("ok", "defective")  # the supervisor's choice stands
    assert "looks unlike every good image of bracket" in chosen["reply"]
    usual = agent.ask(
        "stranger-3", "is this ok?", write_query(root, "u.png", False), product="bracket"
    )
    assert "looks unlike" not in usual["reply"]


def test_follow_ups_spec_and_history(world, agent: InspectorAgent) -> None:
    ctx, root = world
    agent.ask(
        "chat-1",
        "Is this part OK? serial 4321",
        write_query(root, "s2.png", True),
        product="bracket",
    )
    size = agent.ask("chat-1", "how big is it?")
    assert size["intent"] == "follow_up" and " mm long (" in size["reply"]
    why = agent.ask("chat-1", "why do you think so?")
    assert "above the calibrated threshold" in why["reply"]
    good = agent.ask("chat-1", "show me a good one")
    assert "/references/" in good["reply_images"][0]
    critical = agent.ask("chat-1", "is that critical?")
    assert "does not name its type" in critical["reply"]
    spec = agent.ask("chat-1", "what counts as a critical scratch on bracket?")
    assert "reject if longer than 2 mm" in spec["reply"]
    assert re.search(r"\[bracket / spec\.md § [^\]]*Scratches\]", spec["reply"])
    rejected = agent.ask("chat-1", "which defects are rejected?")
    assert "**scratch** (critical)" in rejected["reply"] and "**stain**" not in rejected["reply"]
    silent = agent.ask("chat-1", "what paint colour is used for the logo?")
    assert silent["reply"].startswith("I don't know")
    serial = agent.ask("chat-1", "what did we find on serial 4321?")
    assert "1 inspection of serial/lot 4321" in serial["reply"]
    count = agent.ask("chat-1", "how many rejects today on bracket?")
    expected = ctx.records.count(product_id="bracket", verdict="defective", since="2000-01-01")
    noun = "reject" if expected == 1 else "rejects"
    assert count["reply"].startswith(f"{expected} {noun} on bracket today")


def test_thread_survives_restart(world) -> None:
    ctx, root = world
    first = InspectorAgent(ctx)
    first.ask("restart-1", "Is this part OK?", write_query(root, "r.png", True), product="bracket")
    first.checkpointer.conn.close()
    second = InspectorAgent(ctx)
    assert "mm long" in second.ask("restart-1", "how big is it?")["reply"]
    assert len(second.state("restart-1")["messages"]) == 4


@pytest.mark.parametrize(
    ("text", "image", "product", "expected"),
    [
        ("Is this part OK?", None, "bracket", "Please attach a photo"),
        ("Is this part OK?", "notes.txt", "bracket", "not a supported image"),
        ("Is this part OK?", "huge.png", "bracket", "image is too large"),
        ("Is this part OK?", "q.png", "no-such-part", "Unknown product 'no-such-part'"),
        ("how big is it?", None, None, "I don't know"),
    ],
)
def test_bad_input_gets_a_helpful_reply(world, agent, text, image, product, expected) -> None:
    ctx, root = world
    paths = {
        "notes.txt": root / "notes.txt",
        "huge.png": root / "huge.png",
        "q.png": write_query(root, "q.png", True),
    }
    paths["notes.txt"].write_text("not an image")
    Image.new("RGB", (1200, 1000)).save(paths["huge.png"])
    before = ctx.records.count()
    state = agent.ask(f"bad-{expected[:8]}", text, paths.get(image), product=product)
    assert expected in state["reply"]
    assert state["result"] is None and ctx.records.count() == before


@dataclass
class BrokenGrounder:
    """A backend that fails like a crashed model server or a bug."""

    error: Exception
    name: str = "vlm"

    def ground(self, request: GroundingRequest) -> InspectionResult:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            GroundingError("the model server at http://127.0.0.1:9 is down"),
            "server at http://127.0.0.1:9 is down",
        ),
        (RuntimeError("CUDA out of memory"), "The vlm grounder failed (RuntimeError"),
    ],
)
def test_failing_grounder_gets_a_helpful_reply(world, error, expected) -> None:
    ctx, root = world
    broken = AgentContext(
        ctx.settings, ctx.kb, BrokenGrounder(error), ctx.records, references_per_query=1
    )
    before = ctx.records.count()
    state = InspectorAgent(broken).ask(
        f"broken-{type(error).__name__}",
        "Is this OK?",
        write_query(root, "b.png", True),
        product="bracket",
    )
    assert expected in state["reply"] and state["result"] is None
    assert ctx.records.count() == before


@dataclass
class RewordingChat:
    """A scripted chat model: returns its canned rewording for every request."""

    text: str

    def complete(self, system: str, user: str) -> str:
        return self.text


@pytest.mark.parametrize(
    ("rewording", "kept"),
    [
        ("The part is fine, ship it.", True),  # drops the verdict: the agent keeps its own text
        ("Verdict defective: one anomaly region on the bracket.", False),
    ],
)
def test_chat_model_only_phrases_validated_facts(world, rewording: str, kept: bool) -> None:
    ctx, root = world
    chatty = AgentContext(
        ctx.settings, ctx.kb, ctx.grounder, ctx.records, chat=RewordingChat(rewording)
    )
    state = InspectorAgent(chatty).ask(
        f"chat-{kept}", "Is this OK?", write_query(root, "p.png", True), product="bracket"
    )
    assert state["result"]["verdict"] == "defective"
    assert (state["reply"] != rewording) is kept
