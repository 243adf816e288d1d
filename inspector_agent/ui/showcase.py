"""The Showcase tab (stakeholders): one-click demo cases, reference / query / overlay side by side,
and the evaluation plots found in the data directory."""

from __future__ import annotations

import uuid
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from inspector_agent.agent.service import InspectorAgent
from inspector_agent.errors import InspectorError

MAX_PLOTS = 24  # the newest runs' plots; older ones stay on disk
NO_PLOTS = (
    "No evaluation plots yet. `inspector eval localization DATA_DIR --json out.json` on "
    "MVTec-AD-style folders writes ROC curves and example overlays that appear here."
)


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


def evaluation_plots(eval_dir: Path) -> list[tuple[str, str]]:
    """(path, caption) of the PNG plots ``inspector eval`` wrote under ``eval_dir``: the newest
    run first, each run's ROC curves before its example overlays, at most ``MAX_PLOTS``;
    staging folders skipped."""
    if not eval_dir.is_dir():
        return []
    runs: dict[str, list[tuple[Path, float]]] = {}  # top folder (one eval run) -> its plots
    for path in eval_dir.rglob("*.png"):
        parts = path.relative_to(eval_dir).parts
        if any(part.startswith(".") for part in parts):  # a run still writing
            continue
        try:
            stamp = path.stat().st_mtime
        except OSError:  # replaced by a run finishing meanwhile
            continue
        runs.setdefault(parts[0] if len(parts) > 1 else "", []).append((path, stamp))
    newest_first = sorted(runs.values(), key=lambda run: -max(stamp for _, stamp in run))
    plots = []
    for run in newest_first:
        for path, _ in sorted(
            run, key=lambda item: (item[0].parent, item[0].stem != "roc", item[0].name)
        ):
            plots.append((str(path), _caption(path.relative_to(eval_dir))))
    return plots[:MAX_PLOTS]


def _caption(relative: Path) -> str:
    """A plot's caption: realdata/seed-0/examples_tire.png is "realdata, seed 0: examples, tire"."""
    where = ", ".join(part.replace("seed-", "seed ") for part in relative.parent.parts)
    stem = relative.stem
    what = "ROC curves" if stem == "roc" else stem.replace("examples_", "examples, ", 1)
    return f"{where}: {what}" if where else what


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


def build_showcase_tab(agent: InspectorAgent, tab: gr.Tab) -> None:
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
    no_plots = gr.Markdown()
    gallery = gr.Gallery(label="Evaluation", columns=3, height="auto", elem_id="showcase-plots")

    def show_plots() -> tuple[str, list[tuple[str, str]]]:
        # plain values, not property updates: Gradio keeps a component per update in the session
        plots = evaluation_plots(agent.context.settings.eval_dir)
        return ("" if plots else NO_PLOTS), plots

    # read when the tab is opened, so an evaluation run while the app is up shows too
    tab.select(show_plots, None, [no_plots, gallery], api_name=False)
    for button, product, path in buttons:
        button.click(
            lambda product=product, path=path: run_case(agent, product, path),
            None,
            [reference, query, overlay, answer],
            api_name=False,
        )
