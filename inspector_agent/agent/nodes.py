"""The inspection pipeline's nodes: understand, resolve the product, retrieve, pick references,
ground, explain and record. Each returns a partial state update with a ``step`` for the user."""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import asdict, is_dataclass, replace
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.runtime import Runtime

from inspector_agent.agent import explain as explain_text
from inspector_agent.agent.context import AgentContext, context_of
from inspector_agent.agent.routing import classify, extract_serial, mentioned_product
from inspector_agent.agent.state import InspectorState
from inspector_agent.errors import InspectorError
from inspector_agent.grounding import GroundingRequest
from inspector_agent.imaging import load_image
from inspector_agent.overlay import render_overlay
from inspector_agent.schema import InspectionResult

log = logging.getLogger(__name__)
Update = dict[str, Any]


def _query_image(state: InspectorState, ctx: AgentContext) -> Any:
    return load_stored_image(
        state.image_path or "", ctx.settings.max_image_pixels, ctx.settings.max_upload_mb
    )


@functools.lru_cache(maxsize=8)
def load_stored_image(path: str, max_pixels: int, max_upload_mb: int) -> Any:
    """A stored upload, decoded once per turn (paths are content-addressed, so never stale)."""
    return load_image(
        path, name="the photo", max_pixels=max_pixels, max_bytes=max_upload_mb * 1024 * 1024
    )


def passage_dict(passage: Any) -> dict[str, Any]:
    """A retrieved passage as plain JSON (the state never holds library objects)."""
    data = asdict(passage) if is_dataclass(passage) else dict(passage)
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}


def understand(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """Classify the request, pick up a serial number, and check the photo can be read."""
    ctx = context_of(runtime)
    text = state.text.strip()
    has_image = bool(state.image_path)
    intent, kind = classify(
        text, has_image=has_image, has_last=state.last is not None, chat=ctx.chat
    )
    update: Update = {
        "messages": [
            HumanMessage(text or "(photo)", additional_kwargs={"image": state.image_path})
        ],
        "intent": intent,
        "follow_up": kind or "",
        "serial": state.serial or (extract_serial(text) if intent == "inspect" else None),
        "request_id": state.request_id or uuid.uuid4().hex,
        "error": "",
        "reply": "",
        "reply_images": [],
        "result": None,
        "overlay_path": None,
        "passages": [],
        "reference_paths": [],
        "step": f"Understood the request as: {intent.replace('_', ' ')}"
        + (f" ({kind})" if kind else ""),
    }
    if intent == "inspect" and not has_image:
        update["error"] = (
            "Please attach a photo of the part (use the upload button), then ask again."
        )
    elif has_image:
        try:
            _query_image(state, ctx)
        except InspectorError as exc:
            update["error"] = f"I cannot use that file: {exc}."
    return update


def resolve_product(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """The product from the message, the selector, the photo, or the conversation so far."""
    ctx = context_of(runtime)
    products = ctx.kb.list_products()
    known = {p.id for p in products}
    names = ", ".join(sorted(known)) or "none yet"
    hint = (state.product_hint or "").strip()
    if pid := mentioned_product(state.text, products):
        return _product(pid, f"Product {pid}: named in the message.", _unlike(state, ctx, pid))
    if hint:
        if hint not in known:
            return {"error": f"Unknown product {hint!r}. Known products: {names}.", "step": ""}
        return _product(hint, f"Product {hint}: chosen in the selector.", _unlike(state, ctx, hint))
    if state.intent == "inspect" and known:
        suggestions = ctx.kb.suggest_product(_query_image(state, ctx), k=1)
        if suggestions:
            pid, score = suggestions[0]
            if score < ctx.kb.recognition_floor(pid):  # never inspect against a stranger's parts
                return {
                    "error": f"This photo does not look like any product I know (the closest, "
                    f"{pid}, only {score:.2f} alike). Choose the product in the selector, or "
                    f"teach it in the Knowledge tab with good images. Known products: {names}.",
                    "step": "",
                }
            note = f"Product {pid}: guessed from the photo (similarity {score:.2f}); pick it in the selector if this is wrong."
            return _product(pid, note, note)
    if state.intent == "spec" and state.product_id in known:
        return _product(state.product_id, f"Product {state.product_id}: from the conversation.")
    if state.intent == "spec" and len(known) == 1:
        only = next(iter(known))
        return _product(only, f"Product {only}: the only product in the knowledge base.")
    return {
        "error": f"Which product is this about? Choose one in the selector or name it. Known products: {names}.",
        "step": "",
    }


def _unlike(state: InspectorState, ctx: AgentContext, pid: str) -> str:
    """A warning when the photo to inspect looks unlike every good image of the chosen product."""
    if state.intent != "inspect" or not state.image_path:
        return ""
    alike = ctx.kb.resemblance(_query_image(state, ctx), pid)
    if alike >= ctx.kb.recognition_floor(pid):
        return ""
    return (
        f"This photo looks unlike every good image of {pid} (only {alike:.2f} alike): "
        "check that the right product is chosen before acting on the verdict."
    )


def _product(pid: str, step: str, note: str = "") -> Update:
    return {"product_id": pid, "product_note": note, "step": step}


def retrieve(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """Spec passages for the question (or the acceptance criteria, for an inspection)."""
    ctx = context_of(runtime)
    query = state.text.strip()
    if state.intent == "inspect" or not query:
        query = "defect acceptance criteria severity reject"
    passages = [passage_dict(p) for p in ctx.kb.search(query, state.product_id, k=4)]
    cited = {explain_text.citation(p) for p in passages}
    return {
        "passages": passages,
        "step": f"Read {len(passages)} spec passage(s): {', '.join(sorted(cited)) or 'none'}",
    }


def pick_references(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """The references to compare with: the closest few, or all of them for the expert."""
    ctx = context_of(runtime)
    if ctx.references_per_query:
        paths = ctx.kb.closest_references(
            _query_image(state, ctx), state.product_id, k=ctx.references_per_query
        )
        step = "Closest good reference: " + ", ".join(Path(p).name for p in paths)
    else:
        paths = ctx.kb.reference_set(state.product_id).paths
        step = f"Comparing with all {len(paths)} good references of {state.product_id}"
    if not paths:
        return {
            "error": f"Product {state.product_id} has no reference images yet; an engineer must add known-good photos in the Knowledge tab.",
            "step": "",
        }
    return {"reference_paths": [str(p) for p in paths], "step": step}


def ground(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """Run the configured grounder; failures become a reply, never a traceback."""
    ctx = context_of(runtime)
    name = getattr(ctx.grounder, "name", "configured")
    try:
        image = _query_image(state, ctx)
        product_references = ctx.kb.reference_set(state.product_id)
        references = product_references
        if ctx.references_per_query:
            references = replace(product_references, paths=[Path(p) for p in state.reference_paths])
        request = GroundingRequest(
            query=image,
            references=references,
            all_references=product_references,
            question=state.text,
            knowledge=[p["text"] for p in state.passages],
            query_name=Path(state.image_path or "").name,
        )
        result = ctx.grounder.ground(request)
    except InspectorError as exc:
        return {"error": f"The inspection could not be done: {exc}", "step": ""}
    except Exception as exc:  # a broken backend must not leave the user with a stuck spinner
        log.exception("grounder %s failed", name)
        return {
            "error": f"The {name} grounder failed ({type(exc).__name__}: {exc}). Nothing was recorded; try again or tell an engineer.",
            "step": "",
        }
    manifest = ctx.kb.get_product(state.product_id)
    result = _validated(result, image.size, manifest.mm_per_pixel)
    overlay = ctx.settings.data_dir / "overlays" / f"{state.request_id}.png"
    overlay.parent.mkdir(parents=True, exist_ok=True)
    render_overlay(image, result).save(overlay, compress_level=1)  # fast: it is shown at once
    return {
        "result": result.to_dict(),
        "overlay_path": str(overlay),
        "step": f"{result.grounder or name} grounder: {result.verdict.value}, score {result.pred_score:.2f}, {len(result.defects)} region(s) in {result.latency_ms:.0f} ms",
    }


def _validated(
    result: InspectionResult, size: tuple[int, int], mm_per_pixel: float | None
) -> InspectionResult:
    """Boxes clipped to the image and sized in mm; the verdict stays the grounder's own."""
    width, height = size
    defects = []
    for d in result.defects:
        box = d.box.clip(width, height)
        mm = (
            d.size_mm
            if d.size_mm is not None
            else explain_text.size_mm(box.to_list(), mm_per_pixel)
        )
        defects.append(replace(d, box=box, size_mm=mm))
    return replace(result, defects=defects, image_size=(width, height))


def explain(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """The answer text: verdict, defects, sizes, severity and criterion with citations."""
    ctx = context_of(runtime)
    result = state.result or {}
    manifest = ctx.kb.get_product(state.product_id)
    citations: dict[str, dict[str, Any] | None] = {}
    for d in result.get("defects", []):
        entry = explain_text.defect_type(manifest, d["label"])
        if entry is not None and d["label"] not in citations:
            found = ctx.kb.search(f"{entry.name}: {entry.acceptance}", state.product_id, k=1)
            citations[d["label"]] = passage_dict(found[0]) if found else None
    reply = explain_text.inspection_reply(result, manifest, citations, state.product_note)
    if ctx.chat is not None:
        reply = _phrased(ctx, reply, result)
    return {"reply": reply, "reply_images": [state.overlay_path], "step": "Wrote the answer"}


def _phrased(ctx: AgentContext, reply: str, result: dict[str, Any]) -> str:
    """The chat model's rewording, kept only if it still states the verdict and every label."""
    text = ctx.chat.complete(  # type: ignore[union-attr]
        "Reword this inspection report for a line supervisor. Keep every fact, number, "
        "verdict and citation exactly; add nothing.",
        reply,
    )
    needed = [result["verdict"], *(d["label"] for d in result.get("defects", []))]
    return text if text and all(n.lower() in text.lower() for n in needed) else reply


def _thread_id(runtime: Runtime[AgentContext]) -> str:
    info = getattr(runtime, "execution_info", None)
    return str(getattr(info, "thread_id", None) or "")


def record(state: InspectorState, runtime: Runtime[AgentContext]) -> Update:
    """Log the inspection (once per request id; a showcase demo is not logged) and remember it
    for follow-ups."""
    ctx = context_of(runtime)
    result = state.result or {}
    record_id = None
    if not state.demo:
        record_id = ctx.records.record(
            state.request_id,
            InspectionResult.from_dict(result),
            product_id=state.product_id or "",
            image_hash=state.image_hash or "",
            image_path=state.image_path or "",
            reference_paths=state.reference_paths,
            overlay_path=state.overlay_path,
            user=state.user,
            serial=state.serial or "",
            thread_id=_thread_id(runtime),
        )
    last = {
        "record_id": record_id,
        "product_id": state.product_id,
        "image_path": state.image_path,
        "overlay_path": state.overlay_path,
        "reference_paths": state.reference_paths,
        "serial": state.serial,
        "result": result,
    }
    message = AIMessage(
        state.reply, additional_kwargs={"images": state.reply_images, "record_id": record_id}
    )
    step = "A demo: not logged" if record_id is None else f"Recorded as inspection #{record_id}"
    return {"last": last, "messages": [message], "step": step}
