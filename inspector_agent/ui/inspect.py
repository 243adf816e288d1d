"""The Inspect tab: multimodal chat with live agent steps, verdict badge, feedback and corrections."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr

from inspector_agent.agent.service import InspectorAgent
from inspector_agent.errors import InspectorError
from inspector_agent.imaging import IMAGE_SUFFIXES
from inspector_agent.records import RecordsError

log = logging.getLogger(__name__)
BADGE = '<div class="verdict-badge verdict-{cls}">{text}</div>'


def badge(result: dict[str, Any] | None) -> str:
    """An HTML verdict badge for the last result (empty without one)."""
    if not result:
        return ""
    verdict = result["verdict"]
    text = f"{verdict.upper()} &middot; score {result['pred_score']:.2f}"
    if result.get("close_call"):
        return BADGE.format(cls="close-call", text=text + " &middot; close call")
    return BADGE.format(cls=verdict, text=text)


def history_from_state(values: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat as Gradio messages, rebuilt from a checkpointed thread (text and image paths)."""
    chat: list[dict[str, Any]] = []
    for message in values.get("messages", []):
        role = "user" if message.type == "human" else "assistant"
        extra = message.additional_kwargs or {}
        if role == "user" and extra.get("image"):
            chat.append({"role": role, "content": {"path": extra["image"]}})
        chat.append({"role": role, "content": message.content})
        chat += [{"role": role, "content": {"path": p}} for p in extra.get("images", []) if p]
    return chat


def run_turn(
    agent: InspectorAgent,
    message: dict[str, Any] | None,
    history: list[Any],
    product: str | None,
    serial: str | None,
    camera: str | None,
    thread_id: str,
    user: str,
) -> Iterator[tuple[list[Any], dict[str, Any] | None, int | None]]:
    """Yield the chat after each agent step, then with the final answer; never raises."""
    text = (message or {}).get("text", "") or ""
    files = [f if isinstance(f, str) else f.get("path") for f in (message or {}).get("files", [])]
    image = files[0] if files else camera
    history = list(history or [])
    if image:
        history.append({"role": "user", "content": {"path": image}})
    history.append({"role": "user", "content": text or "(photo)"})
    pending = gr.ChatMessage(content="", metadata={"title": "Working…", "status": "pending"})
    history.append(pending)
    yield list(history), None, None
    try:
        for step in agent.stream(thread_id, text, image, product=product, serial=serial, user=user):
            history[-1] = gr.ChatMessage(
                content=step.detail,
                metadata={
                    "title": step.title,
                    "status": "done",
                    "duration": round(step.seconds, 2),
                },
            )
            history.append(pending)
            yield list(history), None, None
        values = agent.state(thread_id)
        reply, images = values.get("reply", ""), values.get("reply_images", [])
        result = values.get("result")
        record = (values.get("last") or {}).get("record_id") if result else None
    except InspectorError as exc:
        reply, images, result, record = f"Sorry, I could not do that: {exc}", [], None, None
    except Exception as exc:  # the chat must always end with an answer, never a stuck spinner
        log.exception("chat turn failed")
        reply, images, result, record = (
            f"Sorry, something went wrong on the server ({type(exc).__name__}). Please try again.",
            [],
            None,
            None,
        )
    history.pop()
    history.append({"role": "assistant", "content": reply})
    history += [{"role": "assistant", "content": {"path": p}} for p in images]
    yield history, result, record


def parse_defects(text: str) -> list[dict[str, Any]]:
    """``label x1 y1 x2 y2`` per line into corrected defects, or :class:`RecordsError`."""
    defects = []
    for n, line in enumerate(filter(None, (s.strip() for s in (text or "").splitlines())), 1):
        parts = line.replace(",", " ").split()
        try:
            box = [float(v) for v in parts[-4:]]
        except ValueError:
            box = []
        if len(parts) < 5 or len(box) != 4:
            raise RecordsError(f"line {n}: write 'label x1 y1 x2 y2', e.g. 'scratch 10 20 40 60'")
        defects.append({"label": " ".join(parts[:-4]), "bbox": box})
    return defects


# The input box is cleared with a plain value: a component or gr.update() here is a property
# update, for which Gradio builds a new component per call that the session keeps (memory grew
# by about 60 kB per chat turn under load).
CLEARED = {"text": "", "files": []}


START_HINT = """**Attach a photo of the part** (the clip below, or the camera) and ask *"Is this part
OK?"*. Inspector compares it with good parts of the product, reads its spec and answers with a
verdict, the defect marked on the photo and the spec clause that applies.

Then ask *"how big is it?"*, *"why?"*, *"show me a good one"*; about the spec, *"which defects
are rejected on this panel?"*; about past parts, *"how many rejects today?"*"""


def product_choices(agent: InspectorAgent) -> list[tuple[str, str]]:
    """(name, id) of every product, for the product selectors."""
    return [(p.name, p.id) for p in agent.context.kb.list_products()]


def filter_choices(agent: InspectorAgent) -> list[tuple[str, str]]:
    """A product filter's choices: all products, then each one."""
    return [("all products", ""), *product_choices(agent)]


def build_inspect_tab(
    agent: InspectorAgent, thread_secret: str
) -> tuple[gr.BrowserState, gr.Chatbot, gr.Dropdown, Callable[[str], list[dict[str, Any]]]]:
    """Lay out the Inspect tab and wire its events; returns what the page load refreshes."""
    records = agent.context.records
    record_id = gr.State(None)
    thread = gr.BrowserState("", storage_key="inspector-thread", secret=thread_secret)
    with gr.Row():
        product = gr.Dropdown(
            choices=product_choices(agent),
            value=None,
            label="Product",
            info="Leave empty and Inspector suggests one from the photo",
            allow_custom_value=True,
            scale=2,
        )
        serial = gr.Textbox(label="Serial / lot", max_length=64, scale=1)
        verdict = gr.HTML(elem_id="verdict-badge")
    chatbot = gr.Chatbot(
        label="Inspector",
        elem_id="chat",
        height=520,
        reasoning_tags=[("<think>", "</think>")],
        feedback_options=("Like", "Dislike"),
        placeholder=START_HINT,
    )
    box = gr.MultimodalTextbox(
        placeholder="Attach a photo and ask: is this part OK?",
        file_types=list(IMAGE_SUFFIXES),
        file_count="single",
        sources=["upload"],
        elem_id="chat-input",
        show_label=False,
    )
    with gr.Accordion("Camera", open=False):
        camera = gr.Image(sources=["webcam"], type="filepath", label="Take a photo")
    with gr.Accordion("Correct the last verdict", open=False):
        fixed = gr.Radio(["ok", "defective"], label="Correct verdict")
        fixed_defects = gr.Textbox(label="Defects (one per line: label x1 y1 x2 y2)", lines=3)
        comment = gr.Textbox(label="Comment")
        send_fix = gr.Button("Save correction")
        fix_status = gr.Markdown()

    def respond(message, history, product_id, serial_no, photo, thread_id, request: gr.Request):
        thread_id = thread_id or uuid.uuid4().hex
        user = getattr(request, "username", None) or ""
        for chat, result, rec in run_turn(
            agent, message, history, product_id, serial_no, photo, thread_id, user
        ):
            yield (
                chat,
                CLEARED,
                badge(result) if result else gr.skip(),
                rec if rec else gr.skip(),
                thread_id,
            )

    def restore(thread_id):
        return history_from_state(agent.state(thread_id)) if thread_id else []

    def like(data: gr.LikeData, rec, request: gr.Request):
        if rec is None:
            gr.Info("Feedback is for inspections; there is none in this chat yet.")
            return
        records.add_feedback(rec, data.liked is True, user=getattr(request, "username", "") or "")
        gr.Info(f"Thanks: inspection #{rec} marked {'right' if data.liked is True else 'wrong'}.")

    def correct(rec, verdict_value, defects_text, note, request: gr.Request):
        if rec is None:
            return "There is no inspection in this chat to correct yet."
        try:
            defects = parse_defects(defects_text) if defects_text.strip() else None
            records.add_feedback(
                rec,
                False,
                user=getattr(request, "username", "") or "",
                verdict=verdict_value or None,
                defects=defects,
                comment=note or "",
            )
        except RecordsError as exc:
            return f"Not saved: {exc}"
        return f"Correction saved for inspection #{rec}."

    box.submit(
        respond,
        [box, chatbot, product, serial, camera, thread],
        [chatbot, box, verdict, record_id, thread],
        api_name=False,
        show_progress="hidden",
    )
    chatbot.like(like, [record_id], None, api_name=False)
    send_fix.click(correct, [record_id, fixed, fixed_defects, comment], fix_status, api_name=False)
    return thread, chatbot, product, restore
