"""Small product folders for the knowledge-base tests, made in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from knowledge.textures import RENDERERS

SPEC = """# Test panel spec

## 1 Scope
Covers the anodised test panel TP-1 used in the knowledge base tests.

## 2 Acceptance criteria
### 2.1 Scratches
Reject scratches longer than {limit} mm on the visible face.
### 2.2 Dents
Reject dents deeper than 0.2 mm.
"""


def make_product(
    root: Path,
    product_id: str = "test-panel",
    *,
    name: str = "Test panel",
    texture: str = "brushed-alu-panel",
    references: int = 3,
    size: int = 128,
    limit: str = "3",
    seed: int = 0,
) -> Path:
    """A valid product folder: manifest, spec.md and ``references`` rendered at ``size`` px."""
    folder = root / product_id
    (folder / "references").mkdir(parents=True, exist_ok=True)
    manifest = {
        "id": product_id,
        "name": name,
        "description": f"{name} for tests.",
        "mm_per_pixel": 0.5,
        "defects": [
            {
                "name": "scratch",
                "description": "A thin groove.",
                "severity": "major",
                "acceptance": f"Reject if longer than {limit} mm.",
            }
        ],
    }
    (folder / "manifest.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    (folder / "spec.md").write_text(SPEC.format(limit=limit), encoding="utf-8")
    for index in range(references):
        rng = np.random.default_rng([seed, index])
        image = RENDERERS[texture](rng, size)[0]
        Image.fromarray((image * 255).astype(np.uint8)).save(
            folder / "references" / f"ref_{index}.png"
        )
    return folder
