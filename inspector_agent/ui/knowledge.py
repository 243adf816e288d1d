"""The Knowledge tab (engineers): add or update a product, list, search and remove products."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from inspector_agent.agent.service import InspectorAgent
from inspector_agent.errors import InspectorError
from inspector_agent.grounding.expert_config import settings_text
from inspector_agent.imaging import IMAGE_SUFFIXES
from inspector_agent.kb.folder import REFERENCES
from inspector_agent.kb.manifest import MANIFEST_NAME
from inspector_agent.safepaths import confined_path
from inspector_agent.ui.auth import AuthError, Users
from inspector_agent.ui.inspect import filter_choices

SPEC_TYPES = [".md", ".markdown", ".txt", ".pdf"]
TAXONOMY_HELP = """# One entry per defect type (uncomment and edit), for example:
# - name: scratch
#   description: a thin bright line
#   severity: critical   # minor | major | critical
#   acceptance: reject if longer than 2 mm"""


def product_table(agent: InspectorAgent) -> list[list[Any]]:
    """One row per product: id, name, pixel scale, defect types, its own expert settings."""
    return [
        [
            p.id,
            p.name,
            p.mm_per_pixel or "",
            ", ".join(f"{d.name} ({d.severity})" for d in p.defects),
            settings_text(p.expert),
        ]
        for p in agent.context.kb.list_products()
    ]


def expert_settings(text: str | None, current: dict[str, Any]) -> dict[str, Any]:
    """The form's expert settings: blank keeps the product's ``current`` ones, ``{}`` clears
    them, anything else must be a YAML mapping (its names and values are checked on ingest)."""
    if not (text or "").strip():
        return dict(current)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise InspectorError(f"the expert settings are not valid YAML ({reason})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InspectorError("the expert settings must be a YAML mapping, such as 'top_k: 0.002'")
    return data


def stage_folder(
    root: Path,
    product_id: str,
    name: str,
    description: str,
    mm_per_pixel: float | None,
    taxonomy: str,
    specs: list[str],
    references: list[str],
    expert: dict[str, Any] | None = None,
) -> Path:
    """Write the form as a product folder (manifest, specs, references/) for ingestion."""
    try:
        defects = yaml.safe_load(taxonomy or "") or []
    except yaml.YAMLError as exc:
        raise InspectorError(f"the defect taxonomy is not valid YAML: {exc}") from None
    manifest = {"id": product_id.strip(), "name": name.strip(), "description": description.strip()}
    if mm_per_pixel:
        manifest["mm_per_pixel"] = float(mm_per_pixel)
    manifest["defects"] = defects
    if expert:
        manifest["expert"] = expert
    folder = confined_path(root, product_id.strip() or "product")  # the id is checked later
    (folder / REFERENCES).mkdir(parents=True)
    (folder / MANIFEST_NAME).write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")
    for spec in specs or []:
        shutil.copy(spec, confined_path(folder, Path(spec).name))
    for image in references or []:
        shutil.copy(image, confined_path(folder / REFERENCES, Path(image).name))
    return folder


def _filter(agent: InspectorAgent) -> gr.Dropdown:
    return gr.Dropdown(choices=filter_choices(agent))


def build_knowledge_tab(agent: InspectorAgent, users: Users) -> None:
    """Lay out the Knowledge tab; every handler checks the engineer role on the server."""
    kb = agent.context.kb
    with gr.Row():
        with gr.Column():
            gr.Markdown("### Add or update a product")
            product_id = gr.Textbox(label="Product id (lower-case, digits, - or _)")
            name = gr.Textbox(label="Name")
            description = gr.Textbox(label="Description", lines=2)
            scale = gr.Number(
                label="Pixel scale (mm per pixel, optional)",
                minimum=0,
                placeholder="empty: defect sizes in pixels only",
            )
            taxonomy = gr.Code(
                value=TAXONOMY_HELP, language="yaml", label="Defect taxonomy (YAML list)"
            )
            with gr.Accordion("Expert grounder settings (advanced)", open=False):
                gr.Markdown(
                    "This product's own method settings, on top of the settings file's "
                    "`[expert]` table: for example `top_k: 0.002` when its defects are tiny. "
                    "Blank keeps the settings of the product being updated; `{}` clears them."
                )
                expert = gr.Code(value="", language="yaml", label="Settings (YAML mapping)")
            specs = gr.File(
                label="Spec documents",
                file_count="multiple",
                file_types=SPEC_TYPES,
                type="filepath",
            )
            references = gr.File(
                label="Reference images of good parts",
                file_count="multiple",
                file_types=list(IMAGE_SUFFIXES),
                type="filepath",
            )
            replace = gr.Checkbox(label="Replace an existing product with a different name")
            add = gr.Button("Ingest", variant="primary")
            summary = gr.Markdown(elem_id="ingest-summary")
        with gr.Column():
            gr.Markdown("### Products")
            table = gr.Dataframe(
                headers=["id", "name", "mm/pixel", "defect types", "expert settings"],
                value=product_table(agent),
                interactive=False,
            )
            query = gr.Textbox(label="Search the specs")
            search_product = gr.Dropdown(
                choices=filter_choices(agent), value="", label="in product"
            )
            found = gr.Markdown()
            remove_id = gr.Textbox(label="Remove product id")
            remove = gr.Button("Remove", variant="stop")
            removed = gr.Markdown()

    def ingest(
        pid,
        title,
        text,
        mm,
        tax,
        own,
        spec_files,
        ref_files,
        force,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008  (Gradio injects the tracker by this default)
    ):
        try:
            users.require_engineer(getattr(request, "username", None))
            try:  # an update of the same product keeps its settings; a replacement does not
                existing = kb.get_product((pid or "").strip())
                current = existing.expert if existing.name == (title or "").strip() else {}
            except InspectorError:  # a new product (or an id the manifest check will refuse)
                current = {}
            product_expert = expert_settings(own, current)
            with tempfile.TemporaryDirectory(prefix="inspector-ingest-") as tmp:
                folder = stage_folder(
                    Path(tmp),
                    pid or "",
                    title or "",
                    text or "",
                    mm,
                    tax,
                    spec_files,
                    ref_files,
                    product_expert,
                )
                report = kb.add_product(
                    folder,
                    replace=bool(force),
                    progress=lambda stage, done, total: progress((done, total or 1), desc=stage),
                )
        except InspectorError as exc:
            return f"**Not ingested:** {exc}", gr.skip(), gr.skip()
        return f"**Ingested.** {report.summary()}", product_table(agent), _filter(agent)

    def search(text, pid, request: gr.Request):
        try:
            users.require_engineer(getattr(request, "username", None))
            passages = kb.search(text or "", (pid or "").strip() or None, k=5)
        except InspectorError as exc:
            return f"**{exc}**"
        if not passages:
            return "Nothing found."
        return "\n\n".join(
            f"**{p.citation()}** (score {p.score:.2f})\n\n> {p.text[:400]}" for p in passages
        )

    def drop(pid, request: gr.Request):
        try:
            users.require_engineer(getattr(request, "username", None))
            kb.remove_product((pid or "").strip())
        except (InspectorError, AuthError) as exc:
            return f"**Not removed:** {exc}", gr.skip(), gr.skip()
        return f"Removed {pid}.", product_table(agent), _filter(agent)

    add.click(
        ingest,
        [product_id, name, description, scale, taxonomy, expert, specs, references, replace],
        [summary, table, search_product],
        api_name=False,
    )
    query.submit(search, [query, search_product], found, api_name=False)
    remove.click(drop, remove_id, [removed, table, search_product], api_name=False)
