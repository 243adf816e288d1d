"""The Chroma store: embedded under the data directory (one writing process) or a server URL."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from inspector_agent.errors import InspectorError
from inspector_agent.settings import Settings

CHUNKS, IMAGES, PRODUCTS = "kb_chunks", "kb_images", "kb_products"
LOCK_NAME = "inspector-writer.lock"
_HELD: dict[Path, int] = {}  # lock file -> open descriptor, one per process (flock is per file)
_HELD_GUARD = threading.Lock()


class StoreError(InspectorError):
    """The knowledge store cannot be opened or written."""


def acquire_write_lock(directory: Path) -> None:
    """Hold the embedded store's writer lock for this process, or raise naming the holder."""
    path = (directory / LOCK_NAME).resolve()
    with _HELD_GUARD:
        if path in _HELD:
            return
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"the knowledge base at {directory} is being written by another process "
                f"(pid {holder}); if that is a running app, teach products in its Knowledge tab "
                "or stop it first; for several writers use a Chroma server (INSPECTOR_CHROMA_URL)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _HELD[path] = fd


def release_write_lock(directory: Path) -> None:
    """Give the writer lock back (a no-op when this process does not hold it)."""
    path = (directory / LOCK_NAME).resolve()
    with _HELD_GUARD:
        fd = _HELD.pop(path, None)
        if fd is not None:
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor releases the flock


def _client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(
            settings.chroma_url if "//" in settings.chroma_url else f"http://{settings.chroma_url}"
        )
        if not url.hostname:
            raise StoreError(
                f"chroma_url {settings.chroma_url!r} is not a URL like http://host:8000"
            )
        ssl = url.scheme == "https"
        port = url.port or (443 if ssl else 8000)
        try:
            return chromadb.HttpClient(
                host=url.hostname, port=port, ssl=ssl, settings=chroma_settings
            )
        except (ValueError, OSError) as exc:  # chromadb raises ValueError when unreachable
            raise StoreError(
                f"cannot reach the Chroma server at {settings.chroma_url} ({exc})"
            ) from None
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


@contextmanager
def chroma_errors(location: str) -> Iterator[None]:
    """Turn Chroma's own errors (a damaged database, a store changed under this process) into
    one line naming the store, for the CLI and the app alike."""
    from chromadb.errors import ChromaError

    try:
        yield
    except ChromaError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StoreError(
            f"the knowledge base at {location} failed ({reason}); if it is damaged, move it "
            "away and teach the products again"
        ) from exc


class GuardedCollection:
    """A Chroma collection whose calls raise :class:`StoreError` instead of Chroma's errors."""

    def __init__(self, collection: Any, location: str) -> None:
        self._collection = collection
        self._location = location

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._collection, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with chroma_errors(self._location):
                return attr(*args, **kwargs)

        return call


class Store:
    """The three collections (chunks, reference images, products) with our own embeddings."""

    chunks: Any
    images: Any
    products: Any

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded = not settings.chroma_url
        self.location = str(settings.chroma_url or settings.chroma_dir)
        with chroma_errors(self.location):
            self.client = _client(settings)
            self.chunks, self.images, self.products = (
                GuardedCollection(self._collection(name), self.location)
                for name in (CHUNKS, IMAGES, PRODUCTS)
            )

    def _collection(self, name: str) -> Any:
        return self.client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )

    def begin_write(self) -> None:
        """Claim the right to write (embedded stores allow one writing process)."""
        if self.embedded:
            acquire_write_lock(self.settings.chroma_dir)

    def close(self) -> None:
        """Release the writer lock if this process holds it."""
        if self.embedded:
            release_write_lock(self.settings.chroma_dir)
