"""The agent's ``StateGraph`` and its SQLite checkpointer (threads survive restarts)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from inspector_agent.agent import answers, nodes, routing
from inspector_agent.agent.context import AgentContext
from inspector_agent.agent.state import InspectorState, TurnInput

STEP_TITLES = {
    "understand": "Understanding the request",
    "resolve_product": "Resolving the product",
    "retrieve": "Reading the spec",
    "pick_references": "Picking good references",
    "ground": "Comparing with the references",
    "explain": "Explaining",
    "record": "Recording",
    "answer_from_spec": "Answering from the spec",
    "follow_up": "Looking at the last inspection",
    "history": "Searching the inspection log",
    "help": "Help",
    "fail": "Problem",
}


def build_graph() -> StateGraph:
    """The uncompiled graph: nodes, deterministic routers and edges."""
    g = StateGraph(InspectorState, context_schema=AgentContext, input_schema=TurnInput)
    for name in (
        "understand",
        "resolve_product",
        "retrieve",
        "pick_references",
        "ground",
        "explain",
        "record",
    ):
        g.add_node(name, getattr(nodes, name))
    g.add_node("answer_from_spec", answers.answer_from_spec)
    g.add_node("follow_up", answers.follow_up)
    g.add_node("history", answers.history)
    g.add_node("help", answers.help_node)
    g.add_node("fail", answers.fail)
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", routing.route_request)
    g.add_conditional_edges("resolve_product", routing.route_after_product)
    g.add_conditional_edges("retrieve", routing.route_after_retrieve)
    g.add_conditional_edges("pick_references", routing.route_after_references)
    g.add_conditional_edges("ground", routing.route_after_ground)
    g.add_edge("explain", "record")
    for terminal in ("record", "answer_from_spec", "follow_up", "history", "help", "fail"):
        g.add_edge(terminal, END)
    return g


def open_checkpointer(path: Path) -> SqliteSaver:
    """A SQLite checkpointer usable from Gradio's worker threads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    return SqliteSaver(conn)


def compile_graph(checkpointer: Any | None = None) -> Any:
    """The compiled graph with an optional checkpointer."""
    return build_graph().compile(checkpointer=checkpointer, name="inspector")


def graph(config: dict[str, Any] | None = None) -> Any:
    """Factory for ``langgraph.json``: the server supplies its own checkpointer."""
    return compile_graph()
