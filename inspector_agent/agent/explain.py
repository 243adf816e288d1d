"""Answer text from validated facts only: verdicts, sizes, severities, criteria and citations."""

from __future__ import annotations

from typing import Any

from inspector_agent.kb import Passage
from inspector_agent.kb.manifest import DefectType, ProductManifest
from inspector_agent.wording import counted

MIN_PASSAGE_SCORE = 0.4  # cosine similarity below which a passage does not answer the question
SEVERITY_ORDER = {"minor": 0, "major": 1, "critical": 2}


def citation(passage: dict[str, Any] | None) -> str:
    """``[product / source § section, p. N]`` for a retrieved passage, or ``""``."""
    return f"[{Passage(**passage).citation()}]" if passage else ""


def defect_type(manifest: ProductManifest | None, label: str) -> DefectType | None:
    """The taxonomy entry for a defect label (exact, then by containment), if any."""
    if manifest is None:
        return None
    wanted = label.strip().lower()
    for entry in manifest.defects:
        if entry.name.lower() == wanted:
            return entry
    for entry in manifest.defects:
        if entry.name.lower() in wanted or (wanted and wanted in entry.name.lower()):
            return entry
    return None


def size_mm(bbox: list[float], mm_per_pixel: float | None) -> float | None:
    """The longest side of a box in millimetres, when the product has a pixel scale."""
    if not mm_per_pixel:
        return None
    x1, y1, x2, y2 = bbox
    return max(abs(x2 - x1), abs(y2 - y1)) * float(mm_per_pixel)


def describe_defect(
    defect: dict[str, Any], manifest: ProductManifest | None, passage: dict[str, Any] | None
) -> str:
    """One bullet: label, size, severity and the acceptance criterion with its citation."""
    text = f"- **{defect['label']}** at {box_text(defect['bbox'])}"
    if defect.get("size_mm") is not None:
        text += f", about {defect['size_mm']:.1f} mm long"
    entry = defect_type(manifest, defect["label"])
    if entry is None:
        return text
    text += f"; severity **{entry.severity}**; criterion: {entry.acceptance}"
    cite = citation(passage)
    return text + (f" {cite}" if cite else "")


def untyped_note(manifest: ProductManifest | None, labels: list[str]) -> str:
    """For defects the grounder located but did not name: the taxonomy that may apply."""
    if manifest is None or all(defect_type(manifest, label) for label in labels):
        return ""
    if not manifest.defects:
        return f"The grounder does not name the defect type, and {manifest.name} has no defect taxonomy."
    kinds = "; ".join(f"{d.name} ({d.severity}: {d.acceptance})" for d in manifest.defects)
    return f"The grounder locates the defect but does not name its type. Defect types of {manifest.name}: {kinds}."


def inspection_reply(
    result: dict[str, Any],
    manifest: ProductManifest | None,
    citations: dict[str, dict[str, Any] | None],
    product_note: str = "",
) -> str:
    """The answer to "is this part OK?" from a grounding result."""
    name = manifest.name if manifest else "the part"
    verdict = result["verdict"]
    head = f"**Verdict: {verdict.upper()}** for {name} (anomaly score {result['pred_score']:.2f}"
    if result.get("threshold") is not None:
        head += f", threshold {result['threshold']:.2f}"
    lines = [head + ")."]
    if product_note:
        lines.append(product_note)
    defects = result.get("defects", [])
    if verdict == "defective" and defects:
        lines.append(f"Found {counted(len(defects), 'defect')}:")
        lines += [describe_defect(d, manifest, citations.get(d["label"])) for d in defects]
        lines.append("")  # ends the list: Markdown would carry the next line into its last item
        if note := untyped_note(manifest, [d["label"] for d in defects]):
            lines.append(note)
    elif verdict == "defective":
        lines.append("The part differs from the references but no region could be boxed.")
    else:
        lines.append("No region differs from the known-good references beyond the threshold.")
    notes = list(result.get("notes", []))
    if result.get("fell_back"):
        notes.insert(0, "the configured model was unavailable; the expert heatmap answered.")
    if notes:  # a list, or Markdown runs the notes into one line
        lines += ["", "Notes:", *(f"- {n}" for n in notes), ""]
    lines.append(
        f"_({result.get('grounder', '?')} grounder, {result.get('latency_ms', 0):.0f} ms)_"
    )
    return "\n".join(lines)


def spec_reply(question: str, manifest: ProductManifest, passages: list[dict[str, Any]]) -> str:
    """An answer to a product question from the taxonomy and passages, or "I don't know"."""
    asked = [d for d in manifest.defects if d.name.lower() in question.lower()]
    lines: list[str] = []
    relevant = [p for p in passages if float(p.get("score", 0.0)) >= MIN_PASSAGE_SCORE]
    if "reject" in question.lower() and not asked:
        rejected = [d for d in manifest.defects if SEVERITY_ORDER.get(d.severity, 0) >= 1]
        if rejected:
            lines.append(f"Defects that lead to rejection on {manifest.name}:")
            lines += [f"- **{d.name}** ({d.severity}): {d.acceptance}" for d in rejected]
    for entry in asked:
        lines.append(
            f"**{entry.name}** on {manifest.name}: severity {entry.severity}. "
            f"Criterion: {entry.acceptance}"
        )
    if relevant:
        if lines:  # a blank line ends the list above, so the quote does not join its last item
            lines.append("")
        lines.append("From the specification:")
        for p in relevant[:3]:
            lines.append(f"> {_excerpt(p['text'])} {citation(p)}")
    if not lines:
        return (
            f"I don't know: the specification of {manifest.name} does not say anything about "
            "that. Ask an engineer to add it to the product's spec."
        )
    return "\n".join(lines)


def box_text(bbox: list[float]) -> str:
    """``[x1, y1, x2, y2]`` in whole pixels."""
    return "[" + ", ".join(f"{v:.0f}" for v in bbox) + "]"


def _excerpt(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"
