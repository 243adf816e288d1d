"""Small synthetic products for the agent and app tests (no files from the repository needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, ImageDraw

SPEC = """# Bracket inspection specification

## Scratches
A scratch longer than 2 mm on the mounting face is critical and the part is rejected.
Scratches up to 2 mm are accepted.

## Stains
Dark stains from oil are a minor defect; clean the part and accept it.
"""


def part_image(seed: int, stain: bool = False, size: int = 96) -> Image.Image:
    """A grey textured part with stripes; ``stain`` adds a dark blob off centre."""
    rng = np.random.default_rng(seed)
    base = np.full((size, size), 150.0) + rng.normal(0, 4, (size, size))
    base[:, ::8] -= 40
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).convert("RGB")
    if stain:
        ImageDraw.Draw(image).ellipse((58, 20, 80, 42), fill=(25, 20, 20))
    return image


def make_product(root: Path, product_id: str = "bracket", references: int = 4) -> Path:
    """A product folder: manifest with a pixel scale and taxonomy, a spec, good references."""
    folder = root / product_id
    (folder / "references").mkdir(parents=True)
    manifest = {
        "id": product_id,
        "name": f"{product_id.title()} B-7",
        "description": "A stamped steel mounting bracket.",
        "mm_per_pixel": 0.1,
        "defects": [
            {
                "name": "scratch",
                "description": "a line in the surface",
                "severity": "critical",
                "acceptance": "reject if longer than 2 mm",
            },
            {
                "name": "stain",
                "description": "a dark blob",
                "severity": "minor",
                "acceptance": "clean and accept",
            },
        ],
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    (folder / "spec.md").write_text(SPEC, encoding="utf-8")
    for i in range(references):
        part_image(i).save(folder / "references" / f"good_{i}.png")
    return folder


def write_query(root: Path, name: str, stain: bool) -> Path:
    """A query photo on disk."""
    path = root / name
    part_image(100 + len(name), stain=stain).save(path)
    return path


@contextmanager
def served_app(root: Path, **overrides: Any) -> Iterator[tuple[Any, str]]:
    """The app with the ``bracket`` product on a free 127.0.0.1 port, no login; closed on exit.

    Yields the agent and the app's URL; ``overrides`` are extra ``Settings`` fields.
    """
    from inspector_agent.serving import free_port
    from inspector_agent.settings import Settings
    from inspector_agent.ui.app import create_agent, launch
    from inspector_agent.ui.auth import Users

    settings = Settings(data_dir=root / "data", port=free_port(), **overrides)
    agent = create_agent(settings, ingest_demo=False)
    try:
        agent.context.kb.add_product(make_product(root / "src"))
        demo, url = launch(settings, Users({}), agent, block=False)
        try:
            yield agent, url
        finally:
            demo.close()
    finally:
        agent.context.kb.close()
