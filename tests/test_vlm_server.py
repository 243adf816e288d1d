"""The vlm grounder against a real vLLM CPU server serving the tiny Qwen2.5-VL checkpoint."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from PIL import Image
from tiny_model_helpers import part_image, write_mmad, write_references

from inspector_agent.cli import main
from inspector_agent.evaluation.mmad import evaluate_mmad
from inspector_agent.grounding import GroundingRequest, ReferenceSet
from inspector_agent.grounding.model_io import ModelGrounder, build_prompt
from inspector_agent.grounding.vlm import VlmBackend
from inspector_agent.schema import ParseStatus, Verdict
from inspector_agent.serving import ModelServer, ServeOptions, start_vllm_server, vllm_python
from inspector_agent.settings import Settings
from training.tiny_model import build_tiny_model

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
if not vllm_python().exists() and os.environ.get("CI", "").lower() != "true":
    pytest.skip("no vLLM environment (build it with scripts/vllm-env)", allow_module_level=True)

API_KEY = "test-key-123"
# The random tiny model only writes the answer format under a grammar: the real server's
# structured outputs produce real model tokens inside the format.
ANSWER_REGEX = (
    r'<think>[a-z ]{1,12}</think><answer>\{"anomaly": true, "defects": \[\{"label": '
    r'"(stain|crack)", "bbox_2d": \[[1-9][0-9], [1-9][0-9], 1[0-4][0-9], 1[0-1][0-9]\]\}\]\}</answer>'
)
FORMAT = {"extra_body": {"structured_outputs": {"regex": ANSWER_REGEX}}, "max_tokens": 200}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    root = tmp_path_factory.mktemp("vllm")
    model = build_tiny_model(root / "tiny")
    options = ServeOptions(max_num_seqs=8)
    with start_vllm_server(
        model, api_key=API_KEY, options=options, log_path=root / "vllm.log"
    ) as s:
        yield s


@pytest.fixture
def references(tmp_path: Path) -> ReferenceSet:
    return ReferenceSet("part", write_references(tmp_path / "refs", count=3))


def backend(server: ModelServer, max_tokens: int = 64, **options: Any) -> VlmBackend:
    return VlmBackend(
        server.url, API_KEY, timeout_s=30, retries=1, max_tokens=max_tokens, **options
    )


def grounder(server: ModelServer, settings: Settings, **options: Any) -> ModelGrounder:
    return ModelGrounder("vlm", settings, lambda: backend(server, **options))


class Recorder:
    """httpx event hooks that keep request bodies and count requests in flight."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()

    async def on_request(self, request: httpx2.Request) -> None:
        if request.url.path.endswith("/chat/completions"):
            with self.lock:
                self.bodies.append(json.loads(request.content))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)

    async def on_response(self, response: httpx2.Response) -> None:
        if response.request.url.path.endswith("/chat/completions"):
            with self.lock:
                self.in_flight -= 1

    def attach(self, vlm: VlmBackend) -> None:
        hooks = {"request": [self.on_request], "response": [self.on_response]}
        vlm.client = vlm.client.with_options(http_client=httpx2.AsyncClient(event_hooks=hooks))


def test_model_name_comes_from_the_server_and_health_is_ok(server: ModelServer) -> None:
    vlm = backend(server)
    assert vlm.health() is None
    assert vlm.model.endswith("tiny")
    assert "refused the configured API key" in VlmBackend(server.url, "wrong").health()


def test_request_carries_two_base64_png_images_references_first(
    server: ModelServer, references: ReferenceSet, settings: Settings
) -> None:
    recorder = Recorder()
    vlm = backend(server)
    recorder.attach(vlm)
    request = GroundingRequest(part_image(9, True), ReferenceSet("p", references.paths[:1]))
    output = vlm.generate([build_prompt(request, True, vlm.max_pixels)])[0]
    assert isinstance(output, str)  # the server accepted the request
    [body] = recorder.bodies
    assert body["temperature"] == 0.0 and body["max_tokens"] == 64 and body["model"] == vlm.model
    system, user = body["messages"]
    assert system["role"] == "system" and "<answer>" in str(system["content"])
    parts = user["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 2 and all(u.startswith("data:image/png;base64,") for u in images)
    decoded = [Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))) for u in images]
    assert decoded[1].size == (168, 112)  # the query last, at its smart size
    texts = [p["text"] for p in parts if p["type"] == "text"]
    assert texts[0].startswith("Reference image 1") and "Query image (168x112" in texts[1]


def test_answer_is_parsed_and_boxes_map_to_original_pixels(
    server: ModelServer, references: ReferenceSet, settings: Settings
) -> None:
    query = part_image(9, True, size=(1200, 800))  # above the pixel budget: sent smaller
    request = GroundingRequest(query, references)
    vlm = backend(server, **FORMAT)
    bundle = build_prompt(request, True, vlm.max_pixels)
    text = vlm.generate([bundle])[0]
    assert isinstance(text, str)
    box = re.search(r"\[(\d+), (\d+), (\d+), (\d+)\]", text)
    assert box, text
    x1, y1, x2, y2 = map(int, box.groups())
    cmap = bundle.query_map
    assert cmap.model_width < 1200 and cmap.model_height < 800
    sx, sy = 1200 / cmap.model_width, 800 / cmap.model_height
    result = grounder(server, settings, **FORMAT).ground(request)
    assert (result.grounder, result.fell_back, result.parse_status) == (
        "vlm",
        False,
        ParseStatus.OK,
    )
    assert result.verdict == Verdict.DEFECTIVE and result.model.endswith("tiny")
    assert result.defects[0].box.to_list() == pytest.approx(
        [x1 * sx, y1 * sy, x2 * sx, y2 * sy], abs=0.06
    )


def test_batch_of_eight_runs_four_at_a_time_in_order(
    server: ModelServer, references: ReferenceSet, settings: Settings
) -> None:
    recorder = Recorder()
    vlm = backend(server, **FORMAT)
    recorder.attach(vlm)
    queries = [part_image(i, True, size=(140 + 28 * (i % 3), 112)) for i in range(8)]
    done: list[int] = []
    vlm_grounder = ModelGrounder("vlm", settings, lambda: vlm)
    results = vlm_grounder.ground_many(
        [GroundingRequest(q, references) for q in queries], concurrency=4, on_done=done.append
    )
    assert len(recorder.bodies) == 8 and recorder.max_in_flight == 4
    assert sorted(done) == list(range(8))
    assert [r.image_size for r in results] == [q.size for q in queries]
    assert all(r.grounder == "vlm" and not r.fell_back for r in results), results[0].notes


def test_cli_batch_inspects_a_folder_as_jsonl_in_order(
    server: ModelServer,
    references: ReferenceSet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "queries"
    folder.mkdir()
    for i in range(4):
        part_image(20 + i, defect=i % 2 == 1).save(folder / f"q{i}.png")
    args = ["--data-dir", str(tmp_path / "data"), "inspect", str(folder), "--references",
            str(references.paths[0].parent), "--grounder", "vlm", "--model-url", server.url,
            "--concurrency", "4"]  # fmt: skip
    monkeypatch.setenv("INSPECTOR_MODEL_API_KEY", API_KEY)
    assert main(args) == 0
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [Path(r["image"]).name for r in rows] == [f"q{i}.png" for i in range(4)]
    # The random model's free text is unreadable: every row says it fell back to the expert.
    assert all(r["fell_back"] and r["parse_status"] == "invalid" for r in rows)
    assert "4/4" in captured.err  # the progress bar finished


def test_mmad_protocol_runs_against_the_server(server: ModelServer, tmp_path: Path) -> None:
    mmad_json = write_mmad(tmp_path / "mmad")
    recorder = Recorder()
    vlm = backend(server, max_tokens=16)
    recorder.attach(vlm)
    report = evaluate_mmad(mmad_json, tmp_path / "mmad", vlm, concurrency=4)
    assert report.questions == 6 and report.errors == []
    assert len(recorder.bodies) == 6  # one question per request
    assert all(
        len([p for p in b["messages"][1]["content"] if p["type"] == "image_url"]) == 2
        for b in recorder.bodies
    )
    assert set(report.subsets) == {"MVTec-AD", "VisA"}


def test_server_killed_mid_request_falls_back_to_expert(
    server: ModelServer, references: ReferenceSet, settings: Settings
) -> None:
    """Runs last: it stops the module's server."""
    vlm = VlmBackend(server.url, API_KEY, timeout_s=30, retries=2, max_tokens=1500)
    assert vlm.model  # connected before the kill
    group = server.process.pid
    killer = threading.Timer(0.5, os.killpg, (group, signal.SIGKILL))

    async def freeze(request: httpx2.Request) -> None:
        # the server is frozen as our request leaves, so it can never answer, then killed:
        # a death mid-request whatever the machine's speed (a timer alone raced the answer)
        if request.url.path.endswith("/chat/completions") and killer.ident is None:
            os.killpg(group, signal.SIGSTOP)
            killer.start()

    hooks = {"request": [freeze]}
    vlm.client = vlm.client.with_options(http_client=httpx2.AsyncClient(event_hooks=hooks))
    start = time.monotonic()
    result = ModelGrounder("vlm", settings, lambda: vlm).ground(
        GroundingRequest(part_image(5, True), references)
    )
    killer.join()
    assert time.monotonic() - start < 60
    assert result.fell_back and result.grounder == "expert"
    assert result.notes[0] == (
        "The model server is unreachable or closed the connection. "
        "Answered with the expert grounder instead."
    )
    assert server.url not in " ".join(result.notes) and API_KEY not in " ".join(result.notes)
    assert result.verdict == Verdict.DEFECTIVE
    assert vlm.health() is not None
