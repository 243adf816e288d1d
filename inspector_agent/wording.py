"""Words shown to people: counts in plain English."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """``1 reject``, ``3 rejects`` (nouns with a plain plural in -s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
