"""Load: many simultaneous ``gradio_client`` sessions on the expert grounder for a fixed time.

Each session alternates inspections and spec questions through the ``inspect`` endpoint; a
"queue full" answer is reported as "busy, retrying" and retried after a pause. The app runs in
its own process, so its memory is measured alone: RSS after warm-up and at the end, every 10 s
in between, and the growth over the second half of the run (a leak keeps growing there; caches
and allocator pools level off). Prints errors (must be 0), median and p95 latency, as JSON.

python bench/bench_load.py [--users 16] [--seconds 120] [--queue-max 64]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np
from gradio_client import Client, handle_file
from gradio_raw import RawApp
from test_agent_fixtures import make_product, write_query

from inspector_agent.cli import at_least
from inspector_agent.records import RecordStore
from inspector_agent.serving import free_port
from inspector_agent.settings import Settings

QUESTIONS = [  # "Is this part ..." are inspections with a photo; the others spec questions
    "Is this part OK?",
    "What does the spec say about stains?",
    "Is this part defective? Which defects and how big?",
    "What is the acceptance rule for scratches?",
]
BUSY = ("queue is full", "503", "too many")


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sample_rss(pid: int, timeline: list[float], until: float, every: float) -> None:
    """Append the app's RSS every ``every`` seconds until ``until`` (warm-up vs a leak)."""
    while time.monotonic() < until:
        time.sleep(every)
        timeline.append(round(rss_mb(pid), 1))


def ask(client: Client, raw: RawApp, chat_fn: int, image: Path, question: str, tag: str) -> None:
    """An inspection through the ``inspect`` API, or a spec question through the chat event."""
    if question.startswith("Is this part"):
        client.predict(handle_file(str(image)), "bracket", question, tag, api_name="/inspect")
        return
    message = {"text": question, "files": []}
    ok, out = raw.call(chat_fn, [message, [], "bracket", "", None, ""])
    if not ok:
        raise RuntimeError(str(out))
    if "bracket" not in json.dumps(out).lower():
        raise RuntimeError(f"answer does not cite the spec: {json.dumps(out)[:200]}")


def session(url: str, images: list[Path], user: int, until: float, out: dict) -> None:
    """One simulated supervisor: requests back to back until ``until``."""
    client, raw = Client(url, verbose=False), RawApp(url)
    chat_fn = raw.fn_index("chat-input")
    i = 0
    while time.monotonic() < until:
        image = images[(user + i) % len(images)]
        question = QUESTIONS[(user + i) % len(QUESTIONS)]
        start = time.perf_counter()
        while True:
            try:
                ask(client, raw, chat_fn, image, question, f"U{user}-{i}")
                break
            except Exception as exc:  # the client raises its own AppError / httpx errors
                text = str(exc).lower()
                if any(word in text for word in BUSY) and time.monotonic() < until + 30:
                    with out["lock"]:
                        out["busy"] += 1
                    print(f"user {user}: busy, retrying", file=sys.stderr)
                    time.sleep(0.5)
                    continue
                with out["lock"]:
                    out["errors"].append(f"{type(exc).__name__}: {str(exc)[:200]}")
                break
        with out["lock"]:
            out["latencies"].append(time.perf_counter() - start)
            out["kinds"][question.startswith("Is this part")] += 1
        i += 1
    raw.close()


def serve(root: Path, port: int, queue_max: int) -> None:
    """The app process: a small product, the expert grounder, no login, until killed."""
    from inspector_agent.ui.app import create_agent, launch
    from inspector_agent.ui.auth import Users

    settings = Settings(data_dir=root / "data", port=port)
    agent = create_agent(settings, ingest_demo=False)
    agent.context.kb.add_product(make_product(root / "src"))
    launch(settings, Users({}), agent, block=True, queue_max=queue_max)


def start_app(root: Path, queue_max: int) -> tuple[subprocess.Popen, str]:
    """This script in ``--serve`` mode as a child process, once it answers on its port."""
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(root), str(port), "--queue-max", str(queue_max)],
        env=os.environ | {"MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2")},
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the app exited with code {child.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return child, url
        except OSError:
            time.sleep(0.5)
    child.kill()
    raise SystemExit("the app did not start within 180 s")


def growth_per_minute(timeline: list[float], every: float) -> float:
    """Least-squares RSS slope over the second half of the samples, MB per minute."""
    half = timeline[len(timeline) // 2 :]
    if len(half) < 3:
        return float("nan")
    minutes = np.arange(len(half)) * every / 60.0
    return round(float(np.polyfit(minutes, half, 1)[0]), 1)


def main() -> None:
    """Start the app on 127.0.0.1 in a child process, drive it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=at_least(1), default=16, help="simultaneous sessions (default 16)"
    )
    parser.add_argument(
        "--seconds", type=at_least(1), default=120, help="how long to keep them busy (default 120)"
    )
    parser.add_argument(
        "--queue-max", type=at_least(1), default=64, help="the app's queue bound (default 64)"
    )
    parser.add_argument("--serve", nargs=2, metavar=("ROOT", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.queue_max)
        return
    root = Path(tempfile.mkdtemp(prefix="inspector-load-"))
    images = [write_query(root, f"q{i}{'x' * i}.png", stain=i % 2 == 0) for i in range(4)]
    child, url = start_app(root, args.queue_max)
    try:
        report = drive(child.pid, url, images, args)
    finally:
        child.terminate()
        child.wait(30)
    report["records"] = RecordStore(Settings(data_dir=root / "data").records_path).count()
    print(json.dumps(report, indent=2))
    sys.exit(1 if report["errors"] else 0)


def drive(pid: int, url: str, images: list[Path], args: argparse.Namespace) -> dict:
    """Warm the app up, run the sessions, and collect latency and memory figures."""
    Client(url, verbose=False).predict(  # warm-up: model weights and the reference bank
        handle_file(str(images[0])), "bracket", "", "", api_name="/inspect"
    )
    rss_start = rss_mb(pid)
    out = {"lock": threading.Lock(), "errors": [], "latencies": [], "busy": 0, "kinds": [0, 0]}
    until = time.monotonic() + args.seconds
    began = time.perf_counter()
    timeline: list[float] = []
    sampler = threading.Thread(target=sample_rss, args=(pid, timeline, until, 10.0), daemon=True)
    sampler.start()
    with ThreadPoolExecutor(args.users) as pool:
        for user in range(args.users):
            pool.submit(session, url, images, user, until, out)
    wall = time.perf_counter() - began
    sampler.join()
    latencies = sorted(out["latencies"])
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else 0.0
    return {
        "users": args.users,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "inspections": out["kinds"][1],
        "questions": out["kinds"][0],
        "errors": len(out["errors"]),
        "error_samples": out["errors"][:3],
        "busy_retries": out["busy"],
        "median_s": round(statistics.median(latencies), 2) if latencies else None,
        "p95_s": round(p95, 2),
        "throughput_per_min": round(60 * len(latencies) / wall, 1),
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_mb(pid), 1),
        "rss_slope_second_half_mb_per_min": growth_per_minute(timeline, 10.0),
        "rss_every_10s_mb": timeline,
    }


if __name__ == "__main__":
    main()
