"""Run-time services injected into the nodes (settings, knowledge base, grounder, records, chat)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from inspector_agent.grounding import Grounder, GrounderKind, make_grounder
from inspector_agent.records import RecordStore
from inspector_agent.settings import Settings, load_settings

if TYPE_CHECKING:
    from inspector_agent.kb import KnowledgeBase


class ChatModel(Protocol):
    """A chat model that phrases answers and classifies requests; never decides verdicts."""

    def complete(self, system: str, user: str) -> str:
        """One completion for a system and a user message."""
        ...


@dataclass
class AgentContext:
    """Everything a node needs besides the state."""

    settings: Settings
    kb: KnowledgeBase
    grounder: Grounder
    records: RecordStore
    chat: ChatModel | None = None
    references_per_query: int | None = None  # None: the whole reference set


def build_context(settings: Settings, grounder: Grounder | None = None) -> AgentContext:
    """Open the knowledge base, records and grounder that ``settings`` describe."""
    from inspector_agent.agent.chat import OpenAIChat
    from inspector_agent.kb import KnowledgeBase

    grounder = grounder or make_grounder(settings.grounder, settings)
    chat = OpenAIChat.from_settings(settings) if settings.chat_model_url else None
    expert = getattr(grounder, "name", "") == GrounderKind.EXPERT.value
    return AgentContext(
        settings=settings,
        kb=KnowledgeBase(settings),
        grounder=grounder,
        records=RecordStore(settings.records_path),
        chat=chat,
        references_per_query=None if expert else 1,
    )


@functools.cache
def default_context() -> AgentContext:
    """The context built from the environment (for LangGraph tooling that passes none)."""
    return build_context(load_settings())


def context_of(runtime: Any) -> AgentContext:
    """The run's injected context, or the environment's default."""
    return runtime.context if getattr(runtime, "context", None) else default_context()
