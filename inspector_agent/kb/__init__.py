"""The knowledge base: products, spec passages and reference images behind one facade."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inspector_agent.errors import InspectorError
from inspector_agent.grounding.base import ReferenceSet
from inspector_agent.kb.embeddings import embed_image, embed_texts
from inspector_agent.kb.ingest import (
    IngestReport,
    Progress,
    decode_record,
    doc_key_of,
    ingest_product,
    product_record,
    remove_product,
)
from inspector_agent.kb.manifest import ProductManifest, manifest_from_dict
from inspector_agent.kb.store import Store
from inspector_agent.settings import Settings

DEMO_PRODUCTS = Path(__file__).resolve().parents[2] / "knowledge" / "products"


class UnknownProductError(InspectorError):
    """A product id that is not in the knowledge base."""


@dataclass(frozen=True)
class Passage:
    """A retrieved spec passage with its citation (file, section path, PDF page)."""

    text: str
    product_id: str
    source: str
    section: str
    page: int | None
    score: float

    def citation(self) -> str:
        """``product / file § section, p. N`` for answers."""
        where = f" § {self.section}" if self.section else ""
        page = f", p. {self.page}" if self.page is not None and "page" not in self.section else ""
        return f"{self.product_id} / {self.source}{where}{page}"


# A photo is taken for a product only when it looks like that product's own good images: at
# least as similar as they are to each other less GUESS_MARGIN, and never below GUESS_FLOOR.
# Measured (bench_kb.py --realdata): a product's own photos 0.77-0.99 to its references (the
# varied magnetic tiles lowest), other products' photos at most 0.76.
GUESS_FLOOR = 0.8
GUESS_MARGIN = 0.1


class KnowledgeBase:
    """Products, specs and reference images in Chroma; safe to share between threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings)
        self._write = threading.Lock()

    def begin_write(self) -> None:
        """Claim the embedded store's writes for this process now, not at its first write: a
        long-running app does, since another process writing under it leaves its open store
        stale (Chroma then fails on every search of the changed product)."""
        self.store.begin_write()

    def close(self) -> None:
        """Release the embedded store's writer lock."""
        self.store.close()

    # ---- products --------------------------------------------------------------------------
    def _records(self) -> dict[str, dict[str, Any]]:
        got = self.store.products.get(include=["metadatas"])
        return {pid: decode_record(m) for pid, m in zip(got["ids"], got["metadatas"], strict=True)}

    def _record(self, product_id: str) -> dict[str, Any]:
        record = product_record(self.store, product_id)
        if record is None:
            known = ", ".join(sorted(self._records())) or "none yet"
            raise UnknownProductError(f"unknown product {product_id!r} (known: {known})")
        return record

    def list_products(self) -> list[ProductManifest]:
        """Every product's manifest, sorted by id."""
        records = self._records()
        return [manifest_from_dict(records[p]["manifest"], p) for p in sorted(records)]

    def get_product(self, product_id: str) -> ProductManifest:
        """One product's manifest, or :class:`UnknownProductError`."""
        return manifest_from_dict(self._record(product_id)["manifest"], product_id)

    def product_dir(self, product_id: str) -> Path:
        """The folder of the product's live version (manifest, specs, references/)."""
        return self.settings.products_dir / product_id / self._record(product_id)["version"]

    def reference_set(self, product_id: str) -> ReferenceSet:
        """The product's reference image paths, the expert calibration stored with them and
        the product's own expert settings."""
        record = self._record(product_id)
        folder = self.settings.products_dir / product_id / record["version"]
        paths = [folder / name for name in record["references"]]
        expert = record["manifest"].get("expert") or {}
        return ReferenceSet(product_id, paths, record["calibration"], dict(expert))

    # ---- writes ----------------------------------------------------------------------------
    def add_product(
        self, folder: str | Path, *, replace: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Ingest a product folder (a no-op when nothing changed)."""
        with self._write:
            return ingest_product(self.store, Path(folder), replace=replace, progress=progress)

    def remove_product(self, product_id: str) -> None:
        """Remove a product and everything of it."""
        with self._write:
            if not remove_product(self.store, product_id):
                raise UnknownProductError(f"unknown product {product_id!r}")

    # ---- retrieval -------------------------------------------------------------------------
    def search(self, query: str, product_id: str | None = None, k: int = 5) -> list[Passage]:
        """The ``k`` spec passages closest to ``query`` (of one product, or of all)."""
        records = self._records()
        if product_id is not None and product_id not in records:
            raise UnknownProductError(f"unknown product {product_id!r}")
        chosen = records.values() if product_id is None else [records[product_id]]
        wanted = {key for r in chosen for key in r["doc_keys"]}
        if not wanted or not query.strip():
            return []
        vector = embed_texts([query])
        scope = sorted(records) if product_id is None else [product_id]
        hits = self._closest_chunks(vector, wanted, {"product_id": {"$in": scope}}, k)
        if not hits:
            return []
        got = self.store.chunks.get(ids=[i for i, _ in hits], include=["documents", "metadatas"])
        rows = {
            i: (text, m)
            for i, text, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        return [
            Passage(text, m["product_id"], m["source"], m["section"], m.get("page"), 1.0 - d)
            for i, d in hits
            if i in rows
            for text, m in [rows[i]]
        ]

    def _closest_chunks(
        self, vector: np.ndarray, wanted: set[str], where: dict[str, Any], k: int
    ) -> list[tuple[str, float]]:
        """Ids and distances of the ``k`` nearest chunks whose document is in ``wanted``.

        Chunk ids are ``<doc_key>:<n>``, so candidates are screened by id without reading their
        metadata. A product's best chunks are nearly always among a few hundred global nearest
        neighbours, which a plain HNSW query returns in milliseconds. When they are not (a
        product buried under a larger one's closer chunks), the product's own chunks are read
        and ranked exactly: Chroma's filtered HNSW query can come back short when the graph
        around the query is crowded, and a missing spec clause is worse than a slower answer.
        """
        for n in (k + 8, 256, 2048):
            fetched = self.store.chunks.query(
                query_embeddings=vector, n_results=n, include=["distances"]
            )
            ids = fetched["ids"][0]
            hits = [
                (i, d)
                for i, d in zip(ids, fetched["distances"][0], strict=True)
                if doc_key_of(i) in wanted
            ]
            if len(hits) >= k:
                return hits[:k]
            if len(ids) < n:  # a small store, or HNSW came back short (it does on duplicates)
                break
        return self._exact_closest(vector, wanted, where, k)

    def _exact_closest(
        self, vector: np.ndarray, wanted: set[str], where: dict[str, Any], k: int
    ) -> list[tuple[str, float]]:
        """Cosine distances of ``vector`` to every chunk matching ``where``: the ``k`` nearest."""
        got = self.store.chunks.get(where=where, include=["embeddings"])
        keep = [n for n, i in enumerate(got["ids"]) if doc_key_of(i) in wanted]
        if not keep:
            return []
        rows = np.asarray(got["embeddings"], np.float32)[keep]
        rows /= np.linalg.norm(rows, axis=1, keepdims=True).clip(1e-12)
        query = np.asarray(vector, np.float32).ravel()
        distances = 1.0 - rows @ (query / max(float(np.linalg.norm(query)), 1e-12))
        order = np.argsort(distances, kind="stable")[:k]
        return [(got["ids"][keep[n]], float(distances[n])) for n in order]

    def _nearest_references(
        self, image: Image.Image, product_id: str | None
    ) -> list[tuple[dict[str, Any], float]]:
        """Live reference images nearest ``image`` (of one product, or of all), as (metadata,
        similarity in [-1, 1]), nearest first."""
        if product_id is None:
            live = {key for r in self._records().values() for key in r["image_keys"]}
            n, where = min(len(live), 64), None
        else:
            live = set(self._record(product_id)["image_keys"])
            n, where = len(live) + 4, {"product_id": product_id}
        if not live:
            return []
        found = self.store.images.query(
            query_embeddings=embed_image(image)[np.newaxis],
            n_results=n,
            where=where,
            include=["metadatas", "distances"],
        )
        pairs = zip(found["metadatas"][0], found["distances"][0], strict=True)
        return [(meta, 1.0 - float(d)) for meta, d in pairs if meta["image_key"] in live]

    def closest_references(self, image: Image.Image, product_id: str, k: int = 4) -> list[Path]:
        """The product's ``k`` reference images that look most like ``image``."""
        folder = self.product_dir(product_id)
        return [folder / m["file"] for m, _ in self._nearest_references(image, product_id)][:k]

    def suggest_product(self, image: Image.Image, k: int = 3) -> list[tuple[str, float]]:
        """Products ranked by their closest reference image to ``image`` (similarity in [-1, 1])."""
        best: dict[str, float] = {}
        for meta, similarity in self._nearest_references(image, None):
            best.setdefault(meta["product_id"], similarity)
        return sorted(best.items(), key=lambda item: -item[1])[:k]

    def resemblance(self, image: Image.Image, product_id: str) -> float:
        """How alike ``image`` is to the closest of ``product_id``'s reference images, in [-1, 1]."""
        return max((s for _, s in self._nearest_references(image, product_id)), default=-1.0)

    def recognition_floor(self, product_id: str) -> float:
        """The least similarity at which a photo is taken for ``product_id`` (``GUESS_FLOOR``,
        or its references' least similarity to each other less ``GUESS_MARGIN`` if higher)."""
        keys = list(self._record(product_id)["image_keys"])
        vectors = np.asarray(self.store.images.get(ids=keys, include=["embeddings"])["embeddings"])
        if len(vectors) < 2:
            return GUESS_FLOOR
        similarity = vectors @ vectors.T
        np.fill_diagonal(similarity, -1.0)
        return max(GUESS_FLOOR, float(similarity.max(axis=1).min()) - GUESS_MARGIN)


def references_for_product(product_id: str, settings: Settings) -> ReferenceSet:
    """The reference set of ``product_id`` (used by ``inspector inspect --product``)."""
    kb = KnowledgeBase(settings)
    return kb.reference_set(product_id)


def ensure_demo_products(settings: Settings, kb: KnowledgeBase | None = None) -> list[IngestReport]:
    """Ingest the bundled demo products when the store has no product yet (the app's first start)."""
    kb = kb or KnowledgeBase(settings)
    if kb.list_products() or not DEMO_PRODUCTS.is_dir():
        return []
    return [kb.add_product(folder) for folder in sorted(DEMO_PRODUCTS.iterdir()) if folder.is_dir()]


__all__ = [
    "IngestReport",
    "KnowledgeBase",
    "Passage",
    "UnknownProductError",
    "ensure_demo_products",
    "references_for_product",
]
