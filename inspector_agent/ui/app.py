"""The Gradio app: four tabs, the ``inspect`` API, roles, upload limits and launching."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import gradio as gr

from inspector_agent.agent.context import build_context
from inspector_agent.agent.service import InspectorAgent
from inspector_agent.settings import Settings
from inspector_agent.ui.api import build_api
from inspector_agent.ui.auth import Users
from inspector_agent.ui.history import build_history_tab
from inspector_agent.ui.inspect import build_inspect_tab, product_choices
from inspector_agent.ui.knowledge import build_knowledge_tab
from inspector_agent.ui.showcase import build_showcase_tab

CSS = """
.verdict-badge {font-size: 1.4em; font-weight: 700; padding: .4em .8em; border-radius: .4em;
  text-align: center; color: white}
.verdict-ok {background: #1b7f3b}
.verdict-defective {background: #b3261e}
.verdict-close-call {background: #b06000}
"""
# Only these folders of the data directory are served to browsers: never the records, thread
# store, browser secret or Chroma files beside them (any logged-in user could download them).
SERVED_DIRS = ("overlays", "uploads", "products", "showcase", "eval")
QUEUE_MAX = 64  # waiting events beyond this get "queue full" (HTTP 503), which clients retry


def browser_secret(data_dir: Path) -> str:
    """A per-installation secret so chat threads in the browser survive server restarts."""
    path = data_dir / ".browser-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def build_app(agent: InspectorAgent, users: Users) -> gr.Blocks:
    """All tabs and the API on one ``gr.Blocks``."""
    with gr.Blocks(title="Inspector") as demo:
        gr.Markdown("## Inspector: visual inspection assistant")
        with gr.Tabs():
            with gr.Tab("Inspect", id="inspect") as inspect_tab:
                thread, chatbot, product, restore = build_inspect_tab(
                    agent, browser_secret(agent.context.settings.data_dir)
                )
            with gr.Tab("Knowledge", id="knowledge", visible=not users.enabled) as knowledge:
                build_knowledge_tab(agent, users)
            with gr.Tab("History", id="history") as history_tab:
                build_history_tab(agent, history_tab)
            with gr.Tab("Showcase", id="showcase") as showcase_tab:
                build_showcase_tab(agent, showcase_tab)
        build_api(agent)

        def on_load(thread_id: str, request: gr.Request) -> tuple[Any, Any, Any]:
            engineer = users.role(getattr(request, "username", None)) == "engineer"
            return (
                restore(thread_id),
                gr.Tab(visible=engineer),
                gr.Dropdown(choices=product_choices(agent)),
            )

        demo.load(on_load, [thread], [chatbot, knowledge, product], api_name=False)
        # a product taught in the Knowledge tab (or elsewhere) is offered without a reload
        inspect_tab.select(
            lambda: gr.Dropdown(choices=product_choices(agent)), None, product, api_name=False
        )
    return demo


def create_agent(settings: Settings, ingest_demo: bool = True) -> InspectorAgent:
    """The agent over the configured backends; the demo products are ingested on a fresh store."""
    import torch

    from inspector_agent.kb import ensure_demo_products

    torch.set_num_threads(max(1, settings.torch_threads))
    context = build_context(settings)
    context.kb.begin_write()  # the app writes (Knowledge tab) and must be the only writer
    if ingest_demo:
        ensure_demo_products(settings, context.kb)
    return InspectorAgent(context)


def launch(
    settings: Settings,
    users: Users,
    agent: InspectorAgent | None = None,
    *,
    block: bool = True,
    queue_max: int = QUEUE_MAX,
) -> tuple[gr.Blocks, str]:
    """Serve the app on ``settings.host:port``; returns the app and its local URL."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    agent = agent or create_agent(settings)
    demo = build_app(agent, users)
    demo.queue(default_concurrency_limit=8, max_size=queue_max)
    _, url, _ = demo.launch(
        server_name=settings.host,
        server_port=settings.port,
        auth=users.check if users.enabled else None,
        max_file_size=f"{settings.max_upload_mb}mb",
        allowed_paths=[str(settings.data_dir / name) for name in SERVED_DIRS],
        prevent_thread_lock=not block,
        show_error=True,
        quiet=not block,
        css=CSS,
    )
    return demo, url
