"""The vlm client's answers to what a real vLLM server cannot be made to do on demand:
garbage bodies, malformed completions, hangs, errors. A small local HTTP server plays them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from mvtec_helpers import textured, with_blob
from PIL import Image
from tiny_model_helpers import part_image, write_references

from inspector_agent.grounding import GroundingRequest, ReferenceSet, make_grounder
from inspector_agent.grounding.model_io import ModelGrounder
from inspector_agent.grounding.vlm import VlmBackend, api_base
from inspector_agent.prompts import COMPACT_SYSTEM_PROMPT, SYSTEM_PROMPT, save_prompt_style
from inspector_agent.schema import Verdict
from inspector_agent.settings import Settings

MODELS = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()
NORMAL_ANSWER = '<think>same</think><answer>{"anomaly": false, "defects": []}</answer>'
NORMAL_COMPLETION = json.dumps(
    {
        "id": "c", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [
            {
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": NORMAL_ANSWER},
            }
        ],
    }
).encode()  # fmt: skip


class Misbehaving(BaseHTTPRequestHandler):
    """Lists one model; answers chat completions the way ``server.mode`` says."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, getattr(self.server, "models", MODELS))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.hits += 1  # type: ignore[attr-defined]
        mode = self.server.mode  # type: ignore[attr-defined]
        if mode == "normal":  # keeps the request, answers "normal part"
            self.server.bodies.append(json.loads(body))  # type: ignore[attr-defined]
            self._send(200, NORMAL_COMPLETION)
        elif mode == "garbage":
            self._send(200, b"<html>proxy error</html>", "text/html")
        elif mode == "malformed":
            self._send(200, b'{"id": "x", "choices": "nope"}')
        elif mode == "error":
            self._send(500, b'{"error": {"message": "boom"}}')
        elif mode == "hang":
            time.sleep(3)
            self._send(200, b"{}")


@pytest.fixture
def fake() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.daemon_threads = True
    server.hits = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def request_(tmp_path: Path) -> GroundingRequest:
    refs = ReferenceSet("part", write_references(tmp_path / "refs", count=2))
    return GroundingRequest(part_image(4, True), refs)


def ground(fake: ThreadingHTTPServer, settings: Settings, request: GroundingRequest, mode: str):
    fake.mode = mode  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{fake.server_port}"
    vlm = VlmBackend(url, "secret-key", timeout_s=1.0, retries=1)
    return ModelGrounder("vlm", settings, lambda: vlm).ground(request), url


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("garbage", "The model server sent a response that is not a chat completion."),
        ("malformed", "The model server sent a response that is not a chat completion."),
        ("error", "The model server returned an error (HTTP 500)."),
        ("hang", "The model server did not answer within 1 s."),
    ],
)
def test_bad_server_answers_fall_back_with_a_plain_message(
    fake: ThreadingHTTPServer,
    settings: Settings,
    request_: GroundingRequest,
    mode: str,
    message: str,
) -> None:
    result, url = ground(fake, settings, request_, mode)
    assert result.fell_back and result.grounder == "expert"
    assert result.notes[0] == f"{message} Answered with the expert grounder instead."
    notes = " ".join(result.notes)
    assert url not in notes and "secret-key" not in notes and "127.0.0.1" not in notes


def test_retries_are_bounded(
    fake: ThreadingHTTPServer, settings: Settings, request_: GroundingRequest
) -> None:
    ground(fake, settings, request_, "error")
    assert fake.hits == 2  # type: ignore[attr-defined]  # one try + one retry


def test_no_server_configured_is_a_plain_message(
    settings: Settings, request_: GroundingRequest
) -> None:
    result = make_grounder("vlm", settings).ground(request_)
    assert result.fell_back
    assert result.notes[0].startswith("No model server is configured")


def test_api_base_accepts_urls_with_or_without_v1() -> None:
    assert api_base("http://h:8000") == "http://h:8000/v1"
    assert api_base("http://h:8000/v1/") == "http://h:8000/v1"


def test_fallback_uses_the_whole_reference_set(
    fake: ThreadingHTTPServer, settings: Settings, tmp_path: Path
) -> None:
    """One closest reference cannot calibrate the expert: the fallback must use all of them."""
    rng = np.random.default_rng(3)
    ref_dir = tmp_path / "good"
    ref_dir.mkdir()
    paths = []
    for i in range(4):
        paths.append(ref_dir / f"{i}.png")
        Image.fromarray(textured(rng)).save(paths[-1])
    stained, _ = with_blob(textured(rng), rng)
    request = GroundingRequest(
        Image.fromarray(stained),
        ReferenceSet("part", paths[:1]),
        all_references=ReferenceSet("part", paths),
    )
    result, _ = ground(fake, settings, request, "error")
    assert result.fell_back
    assert result.threshold is not None and np.isfinite(result.threshold)
    assert result.verdict == Verdict.DEFECTIVE


@pytest.mark.parametrize(
    ("served", "configured", "compact"),
    [
        ("checkpoint", None, True),  # vLLM names the model after the checkpoint's path
        ("m", "checkpoint", True),  # a renamed model: the checkpoint set as model_path
        ("m", None, False),  # nothing says how it was trained: the full prompt
    ],
)
def test_served_checkpoint_gets_the_prompt_style_it_was_trained_with(
    fake: ThreadingHTTPServer,
    settings: Settings,
    request_: GroundingRequest,
    tmp_path: Path,
    served: str,
    configured: str | None,
    compact: bool,
) -> None:
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    save_prompt_style(checkpoint, compact=True)
    name = str(checkpoint) if served == "checkpoint" else served
    fake.models = json.dumps({"object": "list", "data": [{"id": name, "object": "model"}]}).encode()  # type: ignore[attr-defined]
    fake.mode, fake.bodies = "normal", []  # type: ignore[attr-defined]
    settings = settings.with_overrides(
        model_url=f"http://127.0.0.1:{fake.server_port}",
        model_path=str(checkpoint) if configured else None,
    )
    result = make_grounder("vlm", settings).ground(request_)
    assert (result.fell_back, result.verdict) == (False, Verdict.OK)
    [body] = fake.bodies  # type: ignore[attr-defined]
    [system] = body["messages"][0]["content"]
    assert system["text"] == (COMPACT_SYSTEM_PROMPT if compact else SYSTEM_PROMPT)
