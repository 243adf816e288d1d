"""Confine files named by users (uploads, form fields) to a directory the app owns."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from inspector_agent.errors import InspectorError

MAX_NAME_BYTES = 200  # below the 255-byte limit of common file systems, leaving room for suffixes
_FORBIDDEN = set('/\\:*?"<>|') | {chr(c) for c in range(32)} | {"\x7f"}


class UnsafePathError(InspectorError):
    """A file name that would leave its directory or cannot be stored."""


def safe_filename(name: str) -> str:
    """``name`` reduced to one safe path component (no directories, ``..``, controls or NUL).

    Unicode is normalised (NFC) and kept; directory parts of either slash style are dropped.

    >>> safe_filename("../../etc/passwd")
    'passwd'
    >>> safe_filename("C:\\\\photos\\\\Prüfteil 7.png")
    'Prüfteil 7.png'
    """
    if not isinstance(name, str) or "\x00" in name:
        raise UnsafePathError(f"file name {name!r} is not allowed (empty or contains NUL)")
    base = unicodedata.normalize("NFC", name).replace("\\", "/").split("/")[-1]
    cleaned = "".join("_" if ch in _FORBIDDEN else ch for ch in base)
    while len(cleaned.encode("utf-8")) > MAX_NAME_BYTES:
        cleaned = cleaned[:-1]
    # Leading dots and spaces (hidden files, ". ." tricks) and trailing spaces go, after the
    # cut, so that cleaning a cleaned name changes nothing.
    cleaned = cleaned.lstrip(". ").rstrip()
    if not cleaned.strip("._ "):
        raise UnsafePathError(f"file name {name!r} is not allowed (no usable characters)")
    return cleaned


def confined_path(root: str | Path, untrusted_name: str) -> Path:
    """``root / safe_filename(untrusted_name)``, checked to resolve inside ``root``."""
    base = Path(root).resolve()
    candidate = (base / safe_filename(untrusted_name)).resolve()
    if candidate.parent != base:  # a symlink planted in root could still point outside
        raise UnsafePathError(f"file name {untrusted_name!r} would leave the upload folder")
    return candidate
