"""Benchmark the app: chat-turn overhead except the grounder, first visible step in a browser,
and simultaneous ``gradio_client`` users of the ``inspect`` endpoint.

python bench/bench_app.py [--turns 20] [--users 8] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the demo generator in knowledge/
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # driving Chromium
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from browser_helpers import launch_chromium, send_photo

from inspector_agent.agent.service import InspectorAgent
from inspector_agent.cli import at_least
from inspector_agent.settings import Settings
from inspector_agent.ui.app import create_agent, launch
from inspector_agent.ui.auth import Users
from inspector_agent.ui.showcase import write_demo_photo


def demo_queries(agent: InspectorAgent, folder: Path) -> list[tuple[str, Path]]:
    """One defective photo per demo product (the knowledge generator's painted defects)."""
    from knowledge.generate import DEFECTS

    return [
        (product, write_demo_photo(product, defects[0], 1, folder / f"{product}.png"))
        for product, defects in DEFECTS.items()
    ]


def turn_overhead(agent: InspectorAgent, queries: list[tuple[str, Path]], turns: int) -> dict:
    """Median wall time of a chat turn minus the grounder's own latency, and of follow-ups."""
    inspect_ms, follow_ms = [], []
    for i in range(turns):
        product, photo = queries[i % len(queries)]
        thread = f"bench-{i}"
        start = time.perf_counter()
        list(agent.stream(thread, "Is this part OK?", photo, product=product))
        wall = (time.perf_counter() - start) * 1000
        inspect_ms.append(wall - agent.state(thread)["result"]["latency_ms"])
        start = time.perf_counter()
        list(agent.stream(thread, "how big is it?"))
        follow_ms.append((time.perf_counter() - start) * 1000)
    return {
        "inspect_overhead_ms_median": round(statistics.median(inspect_ms), 1),
        "follow_up_ms_median": round(statistics.median(follow_ms), 1),
        "turns": turns,
    }


def first_step_in_browser(url: str, photo: Path, tries: int = 3) -> dict:
    """Seconds from Enter to the first agent step rendered in Chromium, and to the overlay."""
    from playwright.sync_api import sync_playwright

    firsts, overlays = [], []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        for _ in range(tries):
            page = browser.new_page()
            first, overlay = send_photo(page, url, photo, overlay_ms=120_000)
            firsts.append(first)
            overlays.append(overlay)
            page.close()
        browser.close()
    return {
        "first_step_s_median": round(statistics.median(firsts), 3),
        "overlay_s_median": round(statistics.median(overlays), 2),
    }


def concurrent_users(url: str, queries: list[tuple[str, Path]], users: int, each: int) -> dict:
    """``users`` gradio_client users, ``each`` inspections apiece, all at once."""
    from gradio_client import Client, handle_file

    def user(i: int) -> list[float]:
        client = Client(url, verbose=False)
        times = []
        for j in range(each):
            product, photo = queries[(i + j) % len(queries)]
            start = time.perf_counter()
            client.predict(handle_file(str(photo)), product, "OK?", f"U{i}", api_name="/inspect")
            times.append(time.perf_counter() - start)
        return times

    errors, latencies = 0, []
    start = time.perf_counter()
    with ThreadPoolExecutor(users) as pool:
        for future in [pool.submit(user, i) for i in range(users)]:
            try:
                latencies += future.result()
            except Exception as exc:  # counted and reported, the benchmark goes on
                errors += 1
                print(f"user failed: {exc}")
    return {
        "users": users,
        "requests": users * each,
        "errors": errors,
        "latency_s_median": round(statistics.median(latencies), 2) if latencies else None,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    """Run the three measurements and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--turns", type=at_least(1), default=20, help="chat turns timed for overhead (default 20)"
    )
    parser.add_argument(
        "--users", type=at_least(1), default=8, help="simultaneous API users (default 8)"
    )
    parser.add_argument(
        "--each", type=at_least(1), default=2, help="inspections per user (default 2)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="skip the first-visible-step browser timing"
    )
    parser.add_argument(
        "--data-dir", help="reuse a data directory (default: a fresh temporary one)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inspector-bench-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(data_dir=Path(args.data_dir) if args.data_dir else root / "data", port=port)
    agent = create_agent(settings)  # ingests the demo products
    queries = demo_queries(agent, root)
    list(agent.stream("warm-up", "Is this part OK?", queries[0][1], product=queries[0][0]))
    report = {"chat_turn": turn_overhead(agent, queries, args.turns)}
    demo, url = launch(settings, Users({}), agent, block=False)
    try:
        if not args.no_browser:
            report["browser"] = first_step_in_browser(url, queries[0][1])
        report["concurrency"] = concurrent_users(url, queries, args.users, args.each)
    finally:
        demo.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
