"""Read a product folder: manifest, spec documents and reference images, validated up front."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from inspector_agent.imaging import load_image
from inspector_agent.kb.chunking import DOC_SUFFIXES, Chunk, chunk_document, chunk_manifest
from inspector_agent.kb.guard import check_chunks
from inspector_agent.kb.manifest import MANIFEST_NAME, ManifestError, ProductManifest, load_manifest

REFERENCES = "references"
CHUNKER_VERSION = "1"  # bump when chunking changes so documents are re-embedded


@dataclass
class Document:
    """One spec document (or the manifest) with its chunks and content key."""

    name: str
    key: str
    chunks: list[Chunk]


@dataclass
class Reference:
    """One good-part image (``name`` is its path in the folder) with its content key."""

    name: str
    key: str
    image: Image.Image


@dataclass
class ProductFolder:
    """Everything of one product, read and checked, not yet stored."""

    root: Path
    manifest: ProductManifest
    documents: list[Document] = field(default_factory=list)
    references: list[Reference] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> content

    @property
    def version(self) -> str:
        """A digest of every file, so unchanged content maps to the same version."""
        digest = hashlib.sha256(CHUNKER_VERSION.encode())
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + hashlib.sha256(self.files[name]).digest())
        return digest.hexdigest()[:16]


def _key(product_id: str, *parts: bytes) -> str:
    digest = hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]
    return f"{product_id}:{digest}"


def read_product_folder(folder: Path, max_pixels: int = 40_000_000) -> ProductFolder:
    """Validate a product folder completely (any problem names its file) before anything is stored."""
    root = Path(folder)
    if not root.is_dir():
        raise ManifestError(f"{root}: not a product folder")
    manifest = load_manifest(root)
    product = ProductFolder(root, manifest)
    manifest_bytes = (root / MANIFEST_NAME).read_bytes()
    product.files[MANIFEST_NAME] = manifest_bytes
    check_chunks(product_chunks := chunk_manifest(manifest))
    product.documents.append(
        Document(
            MANIFEST_NAME,
            _key(manifest.id, manifest_bytes, CHUNKER_VERSION.encode()),
            product_chunks,
        )
    )
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_dir() or relative == MANIFEST_NAME or path.name.startswith("."):
            continue
        label = f"{root.name}/{relative}"
        if relative.startswith(REFERENCES + "/"):
            image = load_image(path, name=label, max_pixels=max_pixels)
            data = path.read_bytes()
            product.references.append(Reference(relative, _key(manifest.id, data), image))
        elif path.suffix.lower() in DOC_SUFFIXES or "/" not in relative:
            chunks = chunk_document(path, source=relative)
            check_chunks(chunks)
            data = path.read_bytes()
            key = _key(
                manifest.id,
                relative.encode(),
                data,
                manifest.name.encode(),
                CHUNKER_VERSION.encode(),
            )
            product.documents.append(Document(relative, key, chunks))
        else:
            raise ManifestError(
                f"{label}: unexpected file (specs go at the top, images in references/)"
            )
        product.files[relative] = path.read_bytes()
    return product
