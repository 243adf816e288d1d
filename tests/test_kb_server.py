"""The HttpClient path against a real ``chroma run`` server on 127.0.0.1, and concurrent writers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kb_helpers import make_product

from inspector_agent.kb import KnowledgeBase
from inspector_agent.kb.store import StoreError
from inspector_agent.settings import Settings

pytestmark = pytest.mark.slow
CHROMA = Path(sys.executable).with_name("chroma")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "chroma.log").open("w")
    server = subprocess.Popen(
        [
            str(CHROMA),
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--path",
            str(tmp_path / "server"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert server.poll() is None, (tmp_path / "chroma.log").read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_http_store_ingests_searches_and_removes(chroma_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_url)
    kb = KnowledgeBase(settings)
    assert not kb.store.embedded and not settings.chroma_dir.exists()
    folders = [
        make_product(tmp_path / "src", "panel-a", name="Panel A"),
        make_product(
            tmp_path / "src", "panel-b", name="Panel B", texture="woven-tech-fabric", limit="9"
        ),
    ]
    with ThreadPoolExecutor(2) as pool:  # two writers at once are fine through a server
        reports = list(pool.map(kb.add_product, folders))
    assert [r.chunks_added for r in reports] == [5, 5]
    other = KnowledgeBase(settings)  # a second client sees the same store
    assert [p.id for p in other.list_products()] == ["panel-a", "panel-b"]
    top = other.search("scratch limit", product_id="panel-b", k=2)
    assert top and all(p.product_id == "panel-b" for p in top)
    assert any("9 mm" in p.text for p in top)
    other.remove_product("panel-a")
    assert [p.id for p in kb.list_products()] == ["panel-b"]
    assert kb.store.chunks.get(where={"product_id": "panel-a"})["ids"] == []


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(StoreError, match=r"cannot reach the Chroma server at http://127\.0\.0\.1"):
        KnowledgeBase(settings)
