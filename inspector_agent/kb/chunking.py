"""Split spec documents into cited chunks: Markdown by heading, PDF by page, text by paragraph."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from inspector_agent.errors import InspectorError
from inspector_agent.kb.manifest import ProductManifest

MAX_CHARS = 700
DOC_SUFFIXES = (".md", ".markdown", ".txt", ".pdf")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")


class DocumentError(InspectorError):
    """A spec document that cannot be ingested; the message names the file."""


@dataclass(frozen=True)
class Chunk:
    """A passage of a document with where it came from (section path and PDF page)."""

    text: str
    source: str
    section: str = ""
    page: int | None = None


def _pieces(text: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Paragraph-packed pieces of at most ``max_chars`` (long paragraphs split at sentences)."""
    units: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split()) if not para.lstrip().startswith(("-", "*", "|")) else para
        para = para.strip()
        if not para:
            continue
        if len(para) <= max_chars:
            units.append(para)
            continue
        units.extend(s for s in _SENTENCE.split(para) if s.strip())
    pieces: list[str] = []
    current = ""
    for unit in units:
        if current and len(current) + len(unit) + 2 > max_chars:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{unit}" if current else unit
        while len(current) > max_chars:  # one very long sentence
            pieces.append(current[:max_chars])
            current = current[max_chars:]
    if current:
        pieces.append(current)
    return pieces


def _headings(lines: list[str]) -> list[tuple[int, str] | None]:
    """Per line: (level, title) for a Markdown heading outside code fences, else ``None``."""
    out: list[tuple[int, str] | None] = []
    in_code = False
    for line in lines:
        if line.strip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        out.append((len(match.group(1)), match.group(2).strip()) if match else None)
    return out


def chunk_markdown(text: str, source: str) -> list[Chunk]:
    """Chunks per section with the heading path as section, e.g. ``"3 Acceptance > 3.2 Scratches"``.

    A single level-1 heading is the document's title and is left out of the paths.
    """
    lines = text.splitlines()
    headings = _headings(lines)
    top = 2 if sum(1 for h in headings if h and h[0] == 1) == 1 else 1
    chunks: list[Chunk] = []
    stack: list[tuple[int, str]] = []
    body: list[str] = []

    def flush() -> None:
        section = " > ".join(title for level, title in stack if level >= top)
        chunks.extend(Chunk(p, source, section) for p in _pieces("\n".join(body)))
        body.clear()

    for line, heading in zip(lines, headings, strict=True):
        if heading is None:
            body.append(line)
            continue
        flush()
        while stack and stack[-1][0] >= heading[0]:
            stack.pop()
        stack.append(heading)
    flush()
    return chunks


def chunk_text(text: str, source: str) -> list[Chunk]:
    """Paragraph-packed chunks of plain text (no sections)."""
    return [Chunk(p, source) for p in _pieces(text)]


def chunk_pdf(path: Path, source: str) -> list[Chunk]:
    """Chunks per PDF page, each keeping its 1-based page number for citations."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # our message replaces its warnings
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"{source}: the PDF is encrypted; provide an unprotected copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # pypdf raises assorted errors on damaged files; the reason is for the engineer.
        raise DocumentError(f"{source}: not a readable PDF ({type(exc).__name__})") from None
    return [
        Chunk(piece, source, f"page {number}", number)
        for number, text in enumerate(pages, start=1)
        for piece in _pieces(text)
    ]


def chunk_manifest(manifest: ProductManifest) -> list[Chunk]:
    """The manifest's description and one chunk per defect type (searchable like a spec)."""
    source = "manifest.yaml"
    scale = f" Pixel scale: {manifest.mm_per_pixel} mm per pixel." if manifest.mm_per_pixel else ""
    chunks = [Chunk(f"{manifest.name}. {manifest.description}{scale}", source, "Product")]
    for defect in manifest.defects:
        text = f"{defect.name} (severity {defect.severity}): {defect.description}" + (
            f" Acceptance: {defect.acceptance}" if defect.acceptance else ""
        )
        chunks.append(Chunk(text, source, f"Defect taxonomy > {defect.name}"))
    return chunks


def chunk_document(path: Path, source: str | None = None) -> list[Chunk]:
    """Chunk one spec document by its type, or raise :class:`DocumentError` naming it."""
    label = source or path.name
    suffix = path.suffix.lower()
    if suffix not in DOC_SUFFIXES:
        allowed = ", ".join(DOC_SUFFIXES)
        raise DocumentError(
            f"{label}: unknown document type {suffix or '(none)'} (allowed: {allowed})"
        )
    if suffix == ".pdf":
        chunks = chunk_pdf(path, label)
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DocumentError(f"{label}: not UTF-8 text") from None
        except OSError as exc:
            raise DocumentError(f"{label}: cannot read ({exc.strerror})") from None
        chunks = chunk_text(text, label) if suffix == ".txt" else chunk_markdown(text, label)
    if not chunks:
        raise DocumentError(f"{label}: the document has no text")
    return chunks
