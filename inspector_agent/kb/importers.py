"""Turn public dataset layouts into product folders: MVTec-AD categories and MMAD domain knowledge."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from inspector_agent.errors import InspectorError
from inspector_agent.imaging import image_files
from inspector_agent.kb.manifest import check_product_id

_TITLE = re.compile(r"^\s*<([^>]*)>\s*(?:Description:\s*)?", re.IGNORECASE)


class DatasetError(InspectorError):
    """A dataset that does not have the expected layout or format."""


@contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="inspector-import-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True)
    (folder / "manifest.yaml").write_text(text, encoding="utf-8")


def _spread(items: list[Path], limit: int) -> list[Path]:
    """At most ``limit`` items evenly spread over ``items``."""
    if len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def mvtec_product_folder(
    category: Path, product_id: str, out: Path, max_references: int = 32
) -> Path:
    """Write a product folder for an MVTec-AD category (train/good as references)."""
    check_product_id(product_id)
    if max_references < 1:
        raise DatasetError(f"keep at least 1 reference image, not {max_references}")
    good = category / "train" / "good"
    images = image_files(good)
    if not images:
        raise DatasetError(
            f"{category}: no images in train/good (is it an MVTec-AD category folder?)"
        )
    test = category / "test"
    defects = (
        sorted(p.name for p in test.iterdir() if p.is_dir() and p.name != "good")
        if test.is_dir()
        else []
    )
    name = category.resolve().name.replace("_", " ").strip().capitalize()
    folder = out / product_id
    _write_manifest(
        folder,
        {
            "id": product_id,
            "name": name,
            "description": f"{name}, imported from the MVTec-AD style folder {category.resolve().name}.",
            "defects": [
                {
                    "name": defect,
                    "description": f"Defect type '{defect.replace('_', ' ')}' of the {name} test set.",
                    "severity": "major",
                }
                for defect in defects
            ],
        },
    )
    references = folder / "references"
    references.mkdir()
    for image in _spread(images, max_references):
        shutil.copyfile(image, references / image.name)
    return folder


def _clean(text: str) -> tuple[str, str]:
    """MMAD's ``" <Title>\\n Description: body"`` as (title, body)."""
    match = _TITLE.match(text)
    title = match.group(1).strip() if match else ""
    body = text[match.end() :] if match else text
    return title, "\n".join(line.strip() for line in body.strip().splitlines())


def _first_sentence(text: str) -> str:
    sentence = re.split(r"(?<=\.)\s", " ".join(text.split()), maxsplit=1)[0]
    return sentence[:300]


def read_mmad(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """MMAD's ``{dataset: {category: {defect or 'good': text}}}``, checked."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read MMAD domain knowledge ({exc})") from None
    valid = isinstance(data, dict) and all(
        isinstance(cats, dict)
        and all(
            isinstance(d, dict) and all(isinstance(t, str) for t in d.values())
            for d in cats.values()
        )
        for cats in data.values()
    )
    if not valid or not data:
        raise DatasetError(
            f"{path}: not MMAD domain knowledge (expected {{dataset: {{category: {{defect: text}}}}}})"
        )
    return data


def mmad_product_folders(path: Path, out: Path) -> list[Path]:
    """One product folder per MMAD category: manifest (taxonomy) plus ``knowledge.md`` (full text)."""
    folders = []
    for dataset, categories in read_mmad(path).items():
        for category, entries in categories.items():
            product_id = check_product_id(
                re.sub(r"[^a-z0-9_-]+", "-", category.lower()).strip("-"),
                f"{path}: {dataset}/{category}",
            )
            if (out / product_id).exists():
                product_id = check_product_id(
                    f"{dataset.lower()}-{product_id}"[:64].replace(" ", "-")
                )
            name = f"{category.replace('_', ' ').capitalize()} ({dataset})"
            normal = _clean(entries.get("good", ""))[1]
            lines = [
                f"# {name}",
                "",
                "## Normal appearance",
                "",
                normal or "Not described.",
                "",
                "## Defects",
            ]
            defects = []
            for defect, text in entries.items():
                if defect == "good":
                    continue
                title, body = _clean(text)
                lines += ["", f"### {defect.replace('_', ' ')}: {title or defect}", "", body]
                defects.append(
                    {
                        "name": defect,
                        "description": _first_sentence(body) or title or defect,
                        "severity": "major",
                    }
                )
            folder = out / product_id
            _write_manifest(
                folder,
                {
                    "id": product_id,
                    "name": name,
                    "description": _first_sentence(normal) or f"{name} from MMAD.",
                    "defects": defects,
                },
            )
            (folder / "knowledge.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
            folders.append(folder)
    return folders


def import_folders(make: Callable[[Path], list[Path]], add: Callable[[Path], Any]) -> list[Any]:
    """Build product folders in a scratch directory with ``make`` and ingest each with ``add``."""
    with _workdir() as scratch:
        return [add(folder) for folder in make(scratch)]
