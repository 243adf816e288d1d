"""One chat turn end to end: store the upload, stream the graph's steps, return the final state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inspector_agent.agent.context import AgentContext
from inspector_agent.agent.graph import STEP_TITLES, compile_graph, open_checkpointer
from inspector_agent.agent.state import TurnInput
from inspector_agent.records import store_upload


@dataclass
class Step:
    """One node's visible progress: its title, what it did and how long it took."""

    node: str
    title: str
    detail: str
    seconds: float


class InspectorAgent:
    """The compiled graph with its context and checkpointer, driven one turn at a time."""

    def __init__(self, context: AgentContext) -> None:
        """Compile the graph over a checkpointer under the data directory."""
        self.context = context
        self.checkpointer = open_checkpointer(context.settings.data_dir / "threads.sqlite")
        self.graph = compile_graph(self.checkpointer)

    def stream(
        self,
        thread_id: str,
        text: str = "",
        image: str | Path | None = None,
        *,
        product: str | None = None,
        serial: str | None = None,
        user: str = "",
        request_id: str | None = None,
        demo: bool = False,
    ) -> Iterator[Step]:
        """Run one turn, yielding a :class:`Step` as each node finishes (``demo``: a showcase
        run, which the inspection log does not count)."""
        turn = TurnInput(
            text=text or "",
            product_hint=product or None,
            serial=(serial or "").strip() or None,
            user=user or "",
            request_id=request_id or uuid.uuid4().hex,
            demo=demo,
        )
        if image:
            turn.image_hash, stored = store_upload(image, self.context.settings.uploads_dir)
            turn.image_path = str(stored)
        config = {"configurable": {"thread_id": thread_id}}
        started = time.perf_counter()
        for update in self.graph.stream(
            asdict(turn), config, context=self.context, stream_mode="updates"
        ):
            for node, values in update.items():
                now = time.perf_counter()
                detail = (values or {}).get("step", "")
                yield Step(node, STEP_TITLES.get(node, node), detail, now - started)
                started = now

    def state(self, thread_id: str) -> Any:
        """The thread's current state values (a dict)."""
        return self.graph.get_state({"configurable": {"thread_id": thread_id}}).values

    def ask(
        self, thread_id: str, text: str = "", image: str | Path | None = None, **kw: Any
    ) -> dict[str, Any]:
        """Run one turn to the end and return the final state values."""
        for _ in self.stream(thread_id, text, image, **kw):
            pass
        return self.state(thread_id)
