"""Driving the app in Debian's headless Chromium (Playwright): shared by the browser tests and
``bench/bench_app.py``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium from a ``sync_playwright()`` context, without background networking."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def send_photo(
    page: Any, url: str, photo: Path, text: str = "Is this part OK?", overlay_ms: int = 60_000
) -> tuple[float, float]:
    """Upload ``photo`` in the chat and send ``text``; wait for the first agent step, then the
    overlay. Returns (seconds to the first step, seconds to the overlay)."""
    page.goto(url, wait_until="domcontentloaded")
    box = page.locator("#chat-input textarea")
    box.wait_for(timeout=30_000)
    page.locator("#chat-input input[type=file]").set_input_files(str(photo))
    page.locator("#chat-input .thumbnail-item, #chat-input img").first.wait_for(timeout=15_000)
    box.fill(text)
    started = time.perf_counter()
    box.press("Enter")
    page.get_by_text("Working…").or_(page.get_by_text("Understanding the request")).first.wait_for(
        timeout=10_000
    )
    first = time.perf_counter() - started
    page.locator("#chat img").nth(1).wait_for(timeout=overlay_ms)  # the photo, then the overlay
    return first, time.perf_counter() - started
