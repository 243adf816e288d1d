"""Benchmark the vlm grounder against a vLLM server: client overhead and batch throughput.

Client overhead = a full ``ground()`` (reference loading, resizing, PNG/base64 encoding,
serialising, parsing, box mapping) minus the time between the request leaving the HTTP client
and its response arriving (the server's own time); on a busy machine the client's CPU time
per request is reported too. Throughput = requests per second at ``--concurrency`` over sequential.

    .venv/bin/python bench/bench_vlm.py                 # starts vLLM CPU with the tiny model
    .venv/bin/python bench/bench_vlm.py --model-url URL --api-key KEY
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inspector_agent.cli import at_least
from inspector_agent.grounding import GroundingRequest, ReferenceSet
from inspector_agent.grounding.model_io import ModelGrounder
from inspector_agent.grounding.vlm import VlmBackend
from inspector_agent.serving import ServeOptions, start_vllm_server
from inspector_agent.settings import Settings

# A grammar keeps the random tiny model's answers readable, so no request falls back.
FORMAT = {
    "structured_outputs": {
        "regex": r'<think>[a-z ]{1,12}</think><answer>\{"anomaly": true, "defects": \[\{"label": '
        r'"stain", "bbox_2d": \[[1-9][0-9], [1-9][0-9], 1[0-4][0-9], 1[0-1][0-9]\]\}\]\}</answer>'
    }
}


def images(folder: Path, count: int) -> list:
    """Synthetic parts (grey texture with a dark blob) and saved references."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        pixels = rng.normal(128, 12, (240, 320)).clip(0, 255).astype("uint8")
        image = Image.fromarray(pixels).convert("RGB")
        ImageDraw.Draw(image).ellipse((100 + i, 80, 140 + i, 120), fill=(10, 10, 10))
        out.append(image)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(2):
        Image.fromarray(rng.normal(128, 12, (240, 320)).clip(0, 255).astype("uint8")).save(
            folder / f"good_{i}.png"
        )
    return out


class Timer:
    """httpx event hooks: when each chat request went out and its response came back."""

    def __init__(self) -> None:
        self.sent = self.waited = 0.0

    async def on_request(self, request: httpx2.Request) -> None:
        self.sent = time.perf_counter()

    async def on_response(self, response: httpx2.Response) -> None:
        self.waited += time.perf_counter() - self.sent


def run(url: str, api_key: str | None, requests: int, concurrency: int) -> dict[str, float]:
    """Measure overhead and throughput against the server at ``url``."""
    root = Path(tempfile.mkdtemp(prefix="bench-vlm-"))
    queries = images(root / "refs", requests)
    refs = ReferenceSet("bench", sorted((root / "refs").glob("*.png")))
    settings = Settings(data_dir=root / "data")
    backend = VlmBackend(url, api_key, max_tokens=120, extra_body=FORMAT)
    timer = Timer()
    hooks = {"request": [timer.on_request], "response": [timer.on_response]}
    backend.client = backend.client.with_options(http_client=httpx2.AsyncClient(event_hooks=hooks))
    grounder = ModelGrounder("vlm", settings, lambda: backend)
    reqs = [GroundingRequest(q, refs) for q in queries]
    grounder.ground(reqs[0])  # warm-up (model name, connections, server caches)
    overheads, totals, cpu = [], [], []
    for request in reqs:
        timer.waited = 0.0
        start, start_cpu = time.perf_counter(), time.process_time()
        result = grounder.ground(request)
        totals.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        overheads.append(totals[-1] - timer.waited)
        assert not result.fell_back, result.notes
    start = time.perf_counter()
    grounder.ground_many(reqs, concurrency=1)
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    grounder.ground_many(reqs, concurrency=concurrency)
    concurrent = time.perf_counter() - start
    overheads.sort()
    return {
        "requests": requests,
        "ground_ms_median": 1000 * statistics.median(totals),
        "client_overhead_ms_median": 1000 * statistics.median(overheads),
        "client_overhead_ms_p90": 1000 * overheads[int(0.9 * (len(overheads) - 1))],
        "client_cpu_ms_median": 1000 * statistics.median(cpu),
        "sequential_rps": requests / sequential,
        f"concurrency_{concurrency}_rps": requests / concurrent,
        "speedup": sequential / concurrent,
    }


def main() -> int:
    """Command line: start a server (or use ``--model-url``), measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-url", help="an existing server (default: start vLLM CPU)")
    parser.add_argument("--api-key", default=None, help="the server's API key, if it has one")
    parser.add_argument("--model", help="checkpoint to serve (default: a fresh tiny model)")
    parser.add_argument(
        "--requests", type=at_least(1), default=16, help="requests timed (default 16)"
    )
    parser.add_argument(
        "--concurrency", type=at_least(1), default=8, help="parallel requests (default 8)"
    )
    args = parser.parse_args()
    if args.model_url:
        report = run(args.model_url, args.api_key, args.requests, args.concurrency)
    else:
        from training.tiny_model import build_tiny_model

        model = args.model or build_tiny_model(Path(tempfile.mkdtemp(prefix="tiny-")))
        with start_vllm_server(model, api_key="bench", options=ServeOptions(max_num_seqs=8)) as s:
            report = run(s.url, "bench", args.requests, args.concurrency)
    print(json.dumps({k: round(v, 2) for k, v in report.items()}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
