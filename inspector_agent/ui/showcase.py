"""The Showcase tab (stakeholders): one-click demo cases, reference / query / overlay side by side,
and the evaluation plots found in the data directory."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from inspector_agent.agent.service import InspectorAgent
from inspector_agent.errors import InspectorError

log = logging.getLogger(__name__)


def write_demo_photo(product: str, defect: str, index: int, path: Path) -> Path:
    """Save the knowledge generator's defective part (floats in [0, 1]) as a PNG photo."""
    from knowledge.generate import defective_image

    array = np.clip(defective_image(product, defect, index)[0], 0.0, 1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((array * 255).round().astype(np.uint8)).save(path)
    return path


def demo_cases(agent: InspectorAgent) -> list[tuple[str, str, Path]]:
    """(product id, defect, image path) for the demo products in the KB, generated once."""
    try:
        from knowledge.generate import DEFECTS
    except ImportError:
        return []
    folder = agent.context.settings.data_dir / "showcase"
    known = {p.id for p in agent.context.kb.list_products()}
    cases = []
    for product, defects in DEFECTS.items():
        if product not in known:
            continue
        for defect in defects:
            path = folder / f"{product}--{defect}.png"
            if not path.exists():
                write_demo_photo(product, defect, 0, path)
            cases.append((product, defect, path))
    return cases


def evaluation_plots(agent: InspectorAgent) -> list[str]:
    """PNG plots written by ``inspector eval`` under the data directory."""
    root = agent.context.settings.data_dir / "eval"
    return [str(p) for p in sorted(root.rglob("*.png"))] if root.is_dir() else []


def run_case(
    agent: InspectorAgent, product: str, image: Path
) -> tuple[str | None, str, str | None, str]:
    """Inspect one case, not logged: (reference, query, overlay, answer)."""
    try:
        state = agent.ask(
            f"showcase-{uuid.uuid4().hex}",
            "Is this part OK?",
            image,
            product=product,
            user="showcase",
            demo=True,
        )
    except InspectorError as exc:
        return None, str(image), None, f"**{exc}**"
    refs = state.get("reference_paths") or [None]
    return refs[0], str(image), state.get("overlay_path"), state.get("reply", "")


def build_showcase_tab(agent: InspectorAgent) -> None:
    """Lay out the Showcase tab: a button per case, three images, the answer, the plots."""
    cases = demo_cases(agent)
    if not cases:
        gr.Markdown("No demo products are in the knowledge base.")
    else:
        gr.Markdown(
            "Pick a case: Inspector inspects a photo of a demo part with that defect, as on the "
            "line, and shows the known-good reference it compared against, the photo, the "
            "overlay and its answer. Demo runs are not logged as inspections."
        )
    with gr.Row():
        buttons = [
            (gr.Button(f"{p}: {d.replace('_', ' ')}", size="sm"), p, path) for p, d, path in cases
        ]
    with gr.Row():
        reference = gr.Image(label="Known-good reference", type="filepath", interactive=False)
        query = gr.Image(label="Query", type="filepath", interactive=False)
        overlay = gr.Image(
            label="Overlay", type="filepath", interactive=False, elem_id="showcase-overlay"
        )
    answer = gr.Markdown()
    plots = evaluation_plots(agent)
    if plots:
        gr.Gallery(value=plots, label="Evaluation", columns=3, height="auto")
    for button, product, path in buttons:
        button.click(
            lambda product=product, path=path: run_case(agent, product, path),
            None,
            [reference, query, overlay, answer],
            api_name=False,
        )
