"""Ingest or remove a product atomically: build the new version beside the old, then switch.

A product's record in the ``kb_products`` collection is the pointer: it names the version
folder and the document and image keys that are live. New chunks and images are added under
new keys (invisible to readers until the record is switched); old keys and folders are removed
afterwards. A failure half-way leaves the previous record, chunks and files untouched.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspector_agent.atomic_files import replaced_folder
from inspector_agent.errors import InspectorError
from inspector_agent.kb.embeddings import embed_image, embed_texts
from inspector_agent.kb.folder import ProductFolder, read_product_folder
from inspector_agent.kb.store import Store
from inspector_agent.settings import Settings
from inspector_agent.wording import counted

Progress = Callable[[str, int, int], None]
BATCH = 256


class DuplicateProductError(InspectorError):
    """A different product already uses this id."""


@dataclass
class IngestReport:
    """What an ingestion changed."""

    product_id: str
    version: str
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    references: int = 0
    references_added: int = 0
    calibration: dict[str, Any] | None = None
    advice: str = ""  # for the engineer: see :func:`coverage_advice`
    unchanged: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for the CLI and the app."""
        if self.unchanged:
            return f"{self.product_id}: unchanged (version {self.version})"
        cal = self.calibration or {}
        threshold = (
            f", image threshold {cal['image_threshold']:.3f}" if "image_threshold" in cal else ""
        )
        return (
            f"{self.product_id}: {counted(self.chunks_added, 'chunk')} added, "
            f"{self.chunks_unchanged} unchanged, {self.chunks_removed} removed; "
            f"{counted(self.references, 'reference')} "
            f"({self.references_added} new){threshold} in {self.seconds:.1f} s"
            + (f". Note: {self.advice}." if self.advice else "")
        )


def chunk_id(doc_key: str, index: int) -> str:
    """The store id of a document's ``index``-th chunk: ``<doc_key>:<index>``."""
    return f"{doc_key}:{index}"


def doc_key_of(chunk: str) -> str:
    """The document key inside a chunk id (inverse of :func:`chunk_id`)."""
    return chunk.rsplit(":", 1)[0]


def product_record(store: Store, product_id: str) -> dict[str, Any] | None:
    """The live record of a product (its metadata with JSON fields decoded), or ``None``."""
    got = store.products.get(ids=[product_id], include=["metadatas"])
    if not got["ids"]:
        return None
    return decode_record(got["metadatas"][0])


def decode_record(meta: dict[str, Any]) -> dict[str, Any]:
    """A product record's metadata with its JSON-encoded fields decoded."""
    out = dict(meta)
    for name in ("doc_keys", "image_keys", "references", "calibration", "manifest"):
        out[name] = json.loads(out.get(name) or "null")
    return out


def _notify(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)


def _existing_keys(collection: Any, product_id: str, field: str) -> dict[str, list[str]]:
    got = collection.get(where={"product_id": product_id}, include=["metadatas"])
    keys: dict[str, list[str]] = {}
    for item_id, meta in zip(got["ids"], got["metadatas"], strict=True):
        keys.setdefault(meta[field], []).append(item_id)
    return keys


def _write_files(product: ProductFolder, target: Path) -> None:
    with replaced_folder(target) as staging:  # replaces a leftover of an attempt never live
        for relative, data in product.files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def calibrate(
    paths: list[Path], settings: Settings, expert: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The expert grounder's thresholds for these references, with the product's own
    ``expert`` settings (``None`` without references)."""
    if not paths:
        return None
    from inspector_agent.grounding.expert import make_expert

    grounder = make_expert(settings).for_product(expert or {})
    return grounder.memory_bank(paths).calibration.to_dict()


def coverage_advice(calibration: dict[str, Any] | None, paths: list[Path]) -> str:
    """A sentence for the engineer when one of the references ``paths`` is unlike the others
    (the calibration set it aside), else ``""``."""
    if not calibration:
        return ""
    from inspector_agent.grounding.memory_bank import ExpertCalibration

    odd = ExpertCalibration.from_dict(calibration).set_aside_reference(paths)
    if odd is None:
        return ""
    return (
        f"{odd.name} is unlike the other good images, so it does not set the threshold; if the "
        "product comes in variants, add a few good images of each"
    )


def ingest_product(
    store: Store,
    folder: Path,
    *,
    replace: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Add or update the product in ``folder``; unchanged content is not re-embedded."""
    start = time.perf_counter()
    settings = store.settings
    product = read_product_folder(folder, settings.max_image_pixels)
    pid, version = product.manifest.id, product.version
    report = IngestReport(pid, version, references=len(product.references))
    current = product_record(store, pid)
    if current and current["name"] != product.manifest.name and not replace:
        raise DuplicateProductError(
            f"{folder}: product id {pid!r} is already used by {current['name']!r}; "
            f"remove it first (inspector kb remove {pid}) or choose another id"
        )
    if current and current["version"] == version:
        report.unchanged = True
        report.chunks_unchanged = sum(len(d.chunks) for d in product.documents)
        report.calibration = current["calibration"]
        return report
    store.begin_write()
    doc_ids = _existing_keys(store.chunks, pid, "doc_key")
    fresh = [d for d in product.documents if len(doc_ids.get(d.key, [])) != len(d.chunks)]
    report.chunks_unchanged = sum(len(d.chunks) for d in product.documents if d not in fresh)
    rows = [(d, i, c) for d in fresh for i, c in enumerate(d.chunks)]
    for begin in range(0, len(rows), BATCH):
        batch = rows[begin : begin + BATCH]
        vectors = embed_texts(
            [f"{product.manifest.name} | {c.section} | {c.text}" for _, _, c in batch]
        )
        store.chunks.upsert(
            ids=[chunk_id(d.key, i) for d, i, _ in batch],
            embeddings=vectors,
            documents=[c.text for _, _, c in batch],
            metadatas=[
                {"product_id": pid, "doc_key": d.key, "source": c.source, "section": c.section}
                | ({"page": c.page} if c.page is not None else {})
                for d, _, c in batch
            ],
        )
        report.chunks_added += len(batch)
        _notify(progress, "chunks", report.chunks_added, len(rows))
    image_ids = _existing_keys(store.images, pid, "image_key")
    new_refs = [r for r in product.references if r.key not in image_ids]
    for done, ref in enumerate(new_refs, start=1):
        store.images.upsert(
            ids=[ref.key],
            embeddings=embed_image(ref.image)[np.newaxis],
            metadatas=[{"product_id": pid, "image_key": ref.key, "file": ref.name}],
        )
        _notify(progress, "references", done, len(new_refs))
    report.references_added = len(new_refs)
    product_dir = settings.products_dir / pid
    _write_files(product, product_dir / version)
    _notify(progress, "calibration", 0, 1)
    paths = [product_dir / version / r.name for r in product.references]
    report.calibration = calibrate(paths, settings, product.manifest.expert)
    report.advice = coverage_advice(report.calibration, paths)
    _notify(progress, "calibration", 1, 1)
    live_docs = [d.key for d in product.documents]
    live_images = [r.key for r in product.references]
    manifest = product.manifest
    store.products.upsert(  # the switch: readers see the new version from here on
        ids=[pid],
        embeddings=embed_texts([f"{manifest.name}. {manifest.description}"]),
        documents=[manifest.description],
        metadatas=[
            {
                "name": manifest.name,
                "version": version,
                "doc_keys": json.dumps(live_docs),
                "image_keys": json.dumps(live_images),
                "references": json.dumps([r.name for r in product.references]),
                "calibration": json.dumps(report.calibration),
                "manifest": json.dumps(manifest.to_dict()),
                "updated": time.time(),
            }
        ],
    )
    report.chunks_removed = _collect_garbage(store, pid, set(live_docs), set(live_images), version)
    report.seconds = time.perf_counter() - start
    return report


def _collect_garbage(store: Store, pid: str, docs: set[str], images: set[str], version: str) -> int:
    """Delete chunks, images and folders of ``pid`` that the live record no longer names."""
    stale = [
        i
        for k, ids in _existing_keys(store.chunks, pid, "doc_key").items()
        if k not in docs
        for i in ids
    ]
    if stale:
        store.chunks.delete(ids=stale)
    stale_images = [
        i
        for k, ids in _existing_keys(store.images, pid, "image_key").items()
        if k not in images
        for i in ids
    ]
    if stale_images:
        store.images.delete(ids=stale_images)
    root = store.settings.products_dir / pid
    for entry in root.iterdir() if root.is_dir() else []:
        if entry.name != version:
            shutil.rmtree(entry, ignore_errors=True)
    return len(stale)


def remove_product(store: Store, product_id: str) -> bool:
    """Remove a product's record, chunks, images and files; ``False`` if it was not there."""
    if product_record(store, product_id) is None:
        return False
    store.begin_write()
    store.products.delete(ids=[product_id])  # invisible from here on
    _collect_garbage(store, product_id, set(), set(), version="")
    shutil.rmtree(store.settings.products_dir / product_id, ignore_errors=True)
    return True
