"""The conversational branches: spec questions, follow-ups, history, help and error replies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from inspector_agent.agent import explain as explain_text
from inspector_agent.agent.context import AgentContext, context_of
from inspector_agent.agent.nodes import load_stored_image
from inspector_agent.agent.routing import extract_serial, mentioned_product
from inspector_agent.agent.state import InspectorState
from inspector_agent.wording import counted

Update = dict[str, Any]
HELP = (
    "I inspect photos of parts against known-good references and the product's spec.\n"
    "- Attach a photo and ask **Is this part OK?** (pick the product, add a serial if you like).\n"
    "- Then ask **how big is it?**, **why?**, **show me a good one** or **is that critical?**\n"
    "- Ask about a product: **what counts as a critical scratch on <product>?**\n"
    "- Ask about history: **what did we find on serial 1234?**, **how many rejects today on <product>?**"
)


def _reply(text: str, step: str, images: list[str] | None = None) -> Update:
    images = [i for i in images or [] if i]
    return {
        "reply": text,
        "reply_images": images,
        "messages": [AIMessage(text, additional_kwargs={"images": images})],
        "step": step,
    }


def fail(state: InspectorState) -> Update:
    """Reply with the problem found by an earlier node (bad input, no product, grounder error)."""
    return _reply(state.error or "Something went wrong; please try again.", "Could not continue")


def help_node(state: InspectorState) -> Update:
    """What the assistant can do."""
    return _reply(HELP, "Explained what I can do")


def answer_from_spec(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """Answer a product question from its taxonomy and spec passages, or say "I don't know"."""
    ctx = context_of(runtime)
    manifest = ctx.kb.get_product(state.product_id)
    text = explain_text.spec_reply(state.text, manifest, state.passages)
    return _reply(text, f"Answered from the spec of {manifest.name}")


def follow_up(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """Answer about the thread's last inspection: size, reasons, reference, criticality."""
    last = state.last
    if not last:
        return _reply(
            "There is no inspection in this conversation yet: attach a photo and ask "
            "whether the part is OK first.",
            "No earlier inspection",
        )
    ctx = context_of(runtime)
    manifest = ctx.kb.get_product(last["product_id"])
    result = last["result"]
    defects = result.get("defects", [])
    kind = state.follow_up or "general"
    if kind == "reference":
        photo = load_stored_image(
            last["image_path"], ctx.settings.max_image_pixels, ctx.settings.max_upload_mb
        )
        refs = [str(p) for p in ctx.kb.closest_references(photo, last["product_id"], k=1)]
        return _reply(
            "Here is the known-good reference closest to your photo (left) and your photo's overlay.",
            "Showed the reference",
            [*refs, last.get("overlay_path")],
        )
    if not defects:
        verdict = result["verdict"].upper()
        return _reply(
            f"The last part (verdict {verdict}, score {result['pred_score']:.2f}) had no boxed "
            "defect, so there is nothing to measure or grade.",
            "Answered a follow-up",
        )
    if kind == "size":
        lines = [_size_line(d, manifest.mm_per_pixel) for d in defects]
    elif kind == "critical":
        lines = [_severity_line(d, manifest) for d in defects]
        if note := explain_text.untyped_note(manifest, [d["label"] for d in defects]):
            lines += ["", note]  # a blank line ends the list above
    elif kind == "why":
        lines = [_why(result)]
    else:
        number = f" #{last['record_id']}" if last.get("record_id") is not None else ""
        lines = [f"Last inspection{number}: verdict {result['verdict'].upper()}."]
        lines += [_severity_line(d, manifest) for d in defects]
    return _reply("\n".join(lines), f"Answered a follow-up ({kind})", [last.get("overlay_path")])


def _size_line(defect: dict[str, Any], mm_per_pixel: float | None) -> str:
    x1, y1, x2, y2 = defect["bbox"]
    px = f"{x2 - x1:.0f} x {y2 - y1:.0f} px"
    if defect.get("size_mm") is None or not mm_per_pixel:
        return f"- {defect['label']}: {px} (the product has no pixel scale, so no size in mm)"
    w, h = (x2 - x1) * mm_per_pixel, (y2 - y1) * mm_per_pixel
    return (
        f"- {defect['label']}: about {defect['size_mm']:.1f} mm long ({w:.1f} x {h:.1f} mm, {px})"
    )


def _severity_line(defect: dict[str, Any], manifest: Any) -> str:
    entry = explain_text.defect_type(manifest, defect["label"])
    if entry is None:
        return f"- {defect['label']} at {explain_text.box_text(defect['bbox'])}: its type is not named, so I don't know its severity."
    critical = "critical" if entry.severity == "critical" else f"not critical ({entry.severity})"
    return f"- {defect['label']}: {critical}. Criterion: {entry.acceptance}"


def _why(result: dict[str, Any]) -> str:
    reasons = result.get("reasoning") or ""
    threshold = result.get("threshold")
    basis = (
        f"The anomaly score {result['pred_score']:.2f} is "
        f"{'above' if result['verdict'] == 'defective' else 'below'} the calibrated threshold "
        f"{threshold:.2f}"
        if threshold is not None
        else f"The anomaly score is {result['pred_score']:.2f}"
    )
    text = f"{basis} from the {result.get('grounder', '')} grounder, comparing your photo with known-good references; the boxes mark the regions that differ most."
    return text + (f"\n\n<think>{reasons}</think>" if reasons else "")


def history(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """Past inspections by serial/lot, or counts per product and period."""
    ctx = context_of(runtime)
    text = state.text
    serial = extract_serial(text) or state.serial
    if serial and not re.search(r"how many", text, re.I):
        rows = ctx.records.query(serial=serial, limit=20)
        if not rows:
            return _reply(f"No inspection is recorded for serial/lot {serial}.", "Searched the log")
        lines = [f"{counted(len(rows), 'inspection')} of serial/lot {serial}:"]
        lines += [_row_line(r) for r in rows]
        return _reply("\n".join(lines), "Searched the log")
    pid = mentioned_product(text, ctx.kb.list_products()) or state.product_hint or None
    since, period = _period(text)
    verdict = "defective" if re.search(r"reject|defect|fail|bad", text, re.I) else None
    count = ctx.records.count(product_id=pid, verdict=verdict, since=since)
    where = f" on {pid}" if pid else ""
    lines = [f"{counted(count, 'reject' if verdict else 'inspection')}{where} {period}."]
    lines += [
        _row_line(r)
        for r in ctx.records.query(product_id=pid, verdict=verdict, since=since, limit=5)
    ]
    return _reply("\n".join(lines), "Counted in the log")


def _row_line(r: Any) -> str:
    labels = ", ".join(r.labels) or "no defect"
    return f"- #{r.id} {r.ts[:16].replace('T', ' ')} {r.product_id}: **{r.verdict}** ({labels})"


def _period(text: str) -> tuple[str | None, str]:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if re.search(r"yesterday", text, re.I):
        return (today - timedelta(days=1)).isoformat(), "since yesterday"
    if re.search(r"this week|last 7 days", text, re.I):
        return (today - timedelta(days=today.weekday())).isoformat(), "this week"
    if re.search(r"today", text, re.I):
        return today.isoformat(), "today"
    return None, "in total"
