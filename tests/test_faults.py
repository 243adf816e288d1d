"""Faults and what the user sees: a model server that refuses, hangs, sends garbage or dies
mid-batch; a store locked by another process; a full disk; a process killed mid-ingestion."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_agent_fixtures import SPEC, make_product, write_query

from inspector_agent import atomic_files
from inspector_agent.agent.context import build_context
from inspector_agent.agent.service import InspectorAgent
from inspector_agent.cli import main
from inspector_agent.errors import InspectorError
from inspector_agent.grounding import GroundingRequest, make_grounder
from inspector_agent.imaging import load_image
from inspector_agent.kb import KnowledgeBase
from inspector_agent.kb.store import StoreError
from inspector_agent.settings import Settings
from inspector_agent.ui.app import create_agent
from launch import main as launcher

TESTS = str(Path(__file__).resolve().parent)
SECRET_KEY = "sk-FAULTS-SECRET"
GOOD = '<think>a dark blob top right</think><answer>{"anomaly": true, "defects": [{"label": "stain", "bbox_2d": [58, 20, 80, 42]}]}</answer>'


def completion(text: str) -> bytes:
    """A well-formed OpenAI chat completion carrying ``text``."""
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


class FakeModel(BaseHTTPRequestHandler):
    """Lists model ``m``; answers completions as ``server.mode`` says (``delay`` s first)."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(
            json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
        )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.server.delay)  # type: ignore[attr-defined]
        mode = self.server.mode  # type: ignore[attr-defined]
        body = {
            "malformed-json": b'{"choices": [{"message": ',
            "unparseable": completion("Looks fine to me, honestly, no idea what the boxes are."),
            "good": completion(GOOD),
        }[mode]
        self._send(body)


def serve(mode: str, delay: float = 0.0, port: int = 0) -> ThreadingHTTPServer:
    """The fake model server on 127.0.0.1, serving in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), FakeModel)
    server.daemon_threads = True
    server.mode, server.delay = mode, delay  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def product_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_product(tmp_path_factory.mktemp("product"))


@pytest.fixture
def model_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A model server URL that refuses, hangs, or misbehaves as the test's parameter says."""
    mode = request.param
    if mode == "refusing":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1"
    elif mode == "hanging":  # a real socket that accepts connections and never answers
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            yield f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    else:
        server = serve(mode)
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("model_url", "told"),
    [
        ("refusing", "unreachable"),
        ("hanging", "did not answer within 1 s"),
        ("malformed-json", "not a chat completion|unreachable"),
        ("unparseable", "could not be read"),
    ],
    indirect=["model_url"],
)
def test_model_server_faults_fall_back_to_the_expert(
    product_root: Path, tmp_path: Path, model_url: str, told: str
) -> None:
    """Outcome: the expert answers, the reply says why, one record, no address or key shown."""
    settings = Settings(
        data_dir=tmp_path / "data",
        grounder="vlm",
        model_url=model_url,
        model_api_key=SECRET_KEY,
        model_timeout_s=1.0,
        model_retries=0,
    )
    context = build_context(settings)
    context.kb.add_product(product_root)
    agent = InspectorAgent(context)
    started = time.perf_counter()
    state = agent.ask(
        "t", "Is this part OK?", write_query(tmp_path, "q.png", True), product="bracket"
    )
    assert time.perf_counter() - started < 60
    result = state["result"]
    assert result["fell_back"] and result["grounder"] == "expert"
    note = result["notes"][0]
    assert any(word in note for word in told.split("|")) and "expert grounder instead" in note
    assert "expert" in state["reply"].lower()
    shown = json.dumps([state["reply"], result])
    assert SECRET_KEY not in shown and model_url.split("//")[1].split("/")[0] not in shown
    assert context.records.count() == 1
    context.kb.close()


CHILD_SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from test_faults import serve
server = serve("good", delay=0.4)
print(server.server_address[1], flush=True)
time.sleep(600)
"""


def test_model_server_dying_mid_batch(product_root: Path, tmp_path: Path) -> None:
    """Outcome: answers before the death are the model's, the rest the expert's, in order."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_SERVER.format(tests=TESTS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(child.stdout.readline())
        settings = Settings(
            data_dir=tmp_path / "data",
            model_url=f"http://127.0.0.1:{port}",
            model_timeout_s=5.0,
            model_retries=1,
        )
        kb = KnowledgeBase(settings)
        kb.add_product(product_root)
        refs = kb.reference_set("bracket")
        grounder = make_grounder("vlm", settings)
        query = load_image(write_query(tmp_path, "q.png", True))
        requests = [GroundingRequest(query, refs, query_name=f"q{i}") for i in range(6)]
        done: list[int] = []

        def on_done(index: int) -> None:
            done.append(index)
            if len(done) == 2:
                child.send_signal(signal.SIGKILL)

        results = grounder.ground_many(requests, concurrency=1, on_done=on_done)
    finally:
        child.kill()
        child.wait()
    assert len(results) == 6
    assert [r.fell_back for r in results[:2]] == [False, False]
    assert [r.grounder for r in results[:2]] == ["vlm", "vlm"]
    assert all(r.fell_back and r.grounder == "expert" for r in results[2:])
    assert all(r.verdict.value in ("ok", "defective") for r in results)
    kb.close()


HOLDER = """
import sys, time
from pathlib import Path
from inspector_agent.kb.store import acquire_write_lock
acquire_write_lock(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(600)
"""


def test_store_locked_by_another_process(product_root: Path, tmp_path: Path, capsys) -> None:
    """Outcome: writes are refused with a message naming the other process; reads still work."""
    settings = Settings(data_dir=tmp_path / "data")
    kb = KnowledgeBase(settings)
    kb.add_product(product_root)
    kb.close()  # give the writer lock back, as a finished `inspector kb add` does
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.chroma_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        v2 = make_product(tmp_path / "v2")
        (v2 / "spec.md").write_text(SPEC + "\n## Dents\nDents are major.\n", encoding="utf-8")
        with pytest.raises(StoreError, match=f"another process \\(pid {holder.pid}\\)"):
            kb.add_product(v2)
        code = main(["--data-dir", str(settings.data_dir), "kb", "add", str(v2)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "another process" in err, err
        assert kb.search("scratch", "bracket") and len(kb.reference_set("bracket").paths) == 4
        assert "Dents" not in json.dumps([p.text for p in kb.search("dents", "bracket")])
    finally:
        holder.kill()
        holder.wait()
    assert kb.add_product(v2).chunks_added > 0  # the lock died with its holder
    kb.close()


def test_a_running_app_keeps_other_writers_off_its_store(
    product_root: Path, tmp_path: Path
) -> None:
    """Outcome: while the app runs on a store taught earlier, `kb add` from another process is
    refused in one line that says what to do, and the app's searches keep working. Before, the
    app claimed the store only at its own first write: another process's write left the app's
    open store stale, and every search of the product failed with a Chroma internal error."""
    settings = Settings(data_dir=tmp_path / "data")
    taught = KnowledgeBase(settings)
    taught.add_product(product_root)
    taught.close()  # as a finished `inspector kb add` leaves it
    agent = create_agent(settings, ingest_demo=False)
    try:
        v2 = make_product(tmp_path / "v2")
        (v2 / "spec.md").write_text(SPEC + "\n## Dents\nDents are major.\n", encoding="utf-8")
        code = (
            "import sys; from inspector_agent.cli import main; "
            f"sys.exit(main(['--data-dir', {str(settings.data_dir)!r}, 'kb', 'add', {str(v2)!r}]))"
        )
        env = dict(os.environ, PYTHONPATH=str(Path(TESTS).parent))
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 2, done.stderr
        assert f"another process (pid {os.getpid()})" in done.stderr
        assert "Knowledge tab" in done.stderr and "Traceback" not in done.stderr
        passages = agent.context.kb.search("dents", "bracket")
        assert passages and "Dents" not in json.dumps([p.text for p in passages])
    finally:
        agent.context.kb.close()


def test_a_damaged_store_is_one_line_in_the_cli_and_the_launcher(tmp_path: Path, capsys) -> None:
    """Outcome: a knowledge base whose database file is garbage stops `kb list` and the app's
    launcher with one line naming the store and what to do, exit code 2, no traceback."""
    data = tmp_path / "data"
    (data / "chroma").mkdir(parents=True)
    (data / "chroma" / "chroma.sqlite3").write_bytes(os.urandom(20_000))
    assert main(["--data-dir", str(data), "kb", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a database" in err and "move it away" in err
    other = tmp_path / "other"  # Chroma keeps a store that failed to open for the process
    shutil.copytree(data, other)
    assert launcher(["--data-dir", str(other), "--port", "7999"]) == 2  # refused before binding
    err = capsys.readouterr().err
    assert err.startswith("error: the knowledge base at") and "Traceback" not in err


def test_disk_full_while_saving_an_upload(
    product_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outcome: a plain 'could not be saved' error, no partial file, nothing recorded."""
    settings = Settings(data_dir=tmp_path / "data")
    context = build_context(settings)
    context.kb.add_product(product_root)
    agent = InspectorAgent(context)
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle) -> None:
            self.handle = handle

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def write(self, data: bytes) -> int:
            self.handle.write(data[: len(data) // 2])  # half of it reached the disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd: int, mode: str = "r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(handle) if mode == "wb" else handle

    monkeypatch.setattr(atomic_files.os, "fdopen", fdopen)  # the one whole-or-nothing writer
    query = write_query(tmp_path, "q.png", True)
    with pytest.raises(InspectorError) as caught:
        agent.ask("t", "Is this part OK?", query, product="bracket")
    message = str(caught.value)
    assert "\n" not in message and "could not be saved" in message and "space" in message
    assert [p for p in settings.uploads_dir.rglob("*") if p.is_file()] == []
    assert context.records.count() == 0
    monkeypatch.undo()
    state = agent.ask("t2", "Is this part OK?", query, product="bracket")  # disk freed: works
    assert state["result"]["verdict"] == "defective" and context.records.count() == 1
    context.kb.close()


APP_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_agent_fixtures import write_query
from inspector_agent.agent.context import build_context
from inspector_agent.agent.service import InspectorAgent
from inspector_agent.settings import Settings

root = Path(sys.argv[1])
context = build_context(Settings(data_dir=root / "data"))
agent = InspectorAgent(context)
for i in range(3):
    query = write_query(root, f"q{{i}}.png", stain=True)
    state = agent.ask(f"t{{i}}", "Is this part OK?", query, product="bracket", request_id=f"req-{{i}}")
    print("recorded", state["last"]["record_id"], flush=True)
context.kb.add_product(
    root / "v2" / "bracket",
    replace=True,
    progress=lambda stage, done, total: print("stage", stage, flush=True),
)
print("ingested", flush=True)
"""

CHECK = """
import json, sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_agent_fixtures import write_query
from inspector_agent.agent.context import build_context
from inspector_agent.agent.service import InspectorAgent
from inspector_agent.settings import Settings

root = Path(sys.argv[1])
settings = Settings(data_dir=root / "data")
context = build_context(settings)
kb, records = context.kb, context.records

def snapshot():
    refs = kb.reference_set("bracket").paths
    return {{
        "refs": len(refs),
        "refs_exist": all(p.is_file() for p in refs),
        "texts": " ".join(p.text for p in kb.search("dents scratches stains", "bracket", k=20)),
        "folders": sorted(p.name for p in (settings.products_dir / "bracket").iterdir()),
    }}

before = snapshot()
agent = InspectorAgent(context)
again = agent.ask("t2", "Is this part OK?", write_query(root, "q2.png", stain=True),
                  product="bracket", request_id="req-2")
rows = sorted(r.request_id for r in records.query(limit=100))
kb.add_product(root / "v2" / "bracket", replace=True)
print(json.dumps({{"before": before, "after": snapshot(), "rows": rows,
                  "again": again["last"]["record_id"]}}))
"""


def test_killed_during_ingestion_then_restarted(tmp_path: Path) -> None:
    """Outcome: the previous version stays whole, records are all there once, re-ingest works."""
    settings = Settings(data_dir=tmp_path / "data")
    kb = KnowledgeBase(settings)
    kb.add_product(make_product(tmp_path / "v1"))
    kb.close()
    v2 = make_product(tmp_path / "v2", references=6)
    (v2 / "spec.md").write_text(SPEC + "\n## Dents\nDents deeper than 1 mm are major.\n")
    child = subprocess.Popen(
        [sys.executable, "-c", APP_CHILD.format(tests=TESTS), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = []
    try:
        for line in child.stdout:
            lines.append(line.strip())
            if line.startswith("stage calibration"):  # files written, record not yet switched
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait()
    assert [x for x in lines if x.startswith("recorded")] == [f"recorded {i}" for i in (1, 2, 3)]
    assert "ingested" not in lines
    check = subprocess.run(
        [sys.executable, "-c", CHECK.format(tests=TESTS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    report = json.loads(check.stdout.strip().splitlines()[-1])
    before, after = report["before"], report["after"]
    assert before["refs"] == 4 and before["refs_exist"] and "Dents" not in before["texts"]
    assert report["rows"] == ["req-0", "req-1", "req-2"] and report["again"] == 3
    assert after["refs"] == 6 and after["refs_exist"] and "Dents" in after["texts"]
    assert len(after["folders"]) == 1  # the half-built version was cleaned up


def test_overload_answers_busy_and_clients_retry() -> None:
    """Outcome: with a queue of one, extra requests get "queue full", the client says "busy,
    retrying" and every request still succeeds; the server never crashes."""
    bench = Path(TESTS).parent / "bench" / "bench_load.py"
    run = subprocess.run(
        [sys.executable, str(bench), "--users", "8", "--seconds", "8", "--queue-max", "1"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout[run.stdout.index("{") :])
    assert report["errors"] == 0 and report["requests"] >= 8
    assert report["busy_retries"] > 0 and "busy, retrying" in run.stderr
    assert report["records"] == report["inspections"] + 1  # the warm-up, then one per inspection
