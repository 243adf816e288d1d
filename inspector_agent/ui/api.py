"""The ``inspect`` API endpoint for line software: image, product, question, serial in; JSON and
overlay file out. Errors reach the client as one-line ``gr.Error`` messages."""

from __future__ import annotations

import uuid
from typing import Any

import gradio as gr

from inspector_agent.agent.service import InspectorAgent
from inspector_agent.errors import InspectorError


def inspect_endpoint(
    agent: InspectorAgent,
    image: str | None,
    product_id: str | None,
    question: str | None,
    serial: str | None,
    user: str = "",
) -> tuple[dict[str, Any], str]:
    """One stateless inspection; returns (result JSON, overlay path) or raises ``gr.Error``."""
    if not image:
        raise gr.Error("send an image file of the part", print_exception=False)
    thread = f"api-{uuid.uuid4().hex}"
    try:
        state = agent.ask(
            thread,
            question or "Is this part OK?",
            image,
            product=product_id or None,
            serial=serial or None,
            user=user,
        )
    except InspectorError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    result = state.get("result")
    if state.get("intent") != "inspect" or not result:
        raise gr.Error(state.get("reply") or "no inspection was made", print_exception=False)
    payload = {
        **result,
        "product_id": state.get("product_id"),
        "serial": state.get("serial"),
        "record_id": (state.get("last") or {}).get("record_id"),
        "reference_paths": state.get("reference_paths", []),
        "answer": state.get("reply", ""),
    }
    return payload, state["overlay_path"]


def build_api(agent: InspectorAgent) -> None:
    """Hidden components wired to the ``inspect`` endpoint (invisible in the UI)."""
    with gr.Row(visible=False):
        image = gr.File(label="image", type="filepath")
        product = gr.Textbox(label="product_id")
        question = gr.Textbox(label="question")
        serial = gr.Textbox(label="serial")
        result = gr.JSON(label="result")
        overlay = gr.File(label="overlay")
        trigger = gr.Button("inspect")

    def run(image_path, product_id, text, serial_no, request: gr.Request):
        user = getattr(request, "username", None) or ""
        return inspect_endpoint(agent, image_path, product_id, text, serial_no, user)

    trigger.click(
        run,
        [image, product, question, serial],
        [result, overlay],
        api_name="inspect",
        concurrency_limit=4,
    )
