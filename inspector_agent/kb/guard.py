"""Refuse spec text that addresses the assistant instead of describing the product."""

from __future__ import annotations

import re

from inspector_agent.errors import InspectorError
from inspector_agent.kb.chunking import Chunk

_PATTERNS = [
    r"\b(ignore|disregard|forget|override)\b.{0,40}\b(previous|prior|above|earlier|all|any)\b"
    r".{0,30}\b(instructions?|rules?|prompts?|directions?)\b",
    r"\b(you are|act as|pretend to be)\b.{0,30}\b(assistant|ai|model|chatbot|system)\b",
    r"\b(always|just|only)\s+(answer|respond|reply|say)\b.{0,20}\b(ok|good|pass|no defect|normal)\b",
    r"\b(system prompt|developer message|jailbreak)\b",
    r"<\s*/?\s*(system|assistant|answer|think)\s*>",
]
INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE | re.DOTALL)


class InjectionError(InspectorError):
    """A document contains text that tries to instruct the assistant."""


def check_chunks(chunks: list[Chunk]) -> None:
    """Raise :class:`InjectionError` naming the file and section of the first suspicious passage."""
    for chunk in chunks:
        match = INJECTION.search(chunk.text)
        if match:
            where = chunk.source + (f" ({chunk.section})" if chunk.section else "")
            quote = " ".join(match.group(0).split())[:60]
            raise InjectionError(
                f"{where}: text addresses the assistant instead of describing the product "
                f"({quote!r}); specs are data, not instructions: remove or rephrase it"
            )
