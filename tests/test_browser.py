"""A real browser (Debian's Chromium via Playwright) drives the app: upload, send, see the overlay."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, launch_chromium, send_photo
from PIL import Image
from test_agent_fixtures import make_product, served_app, write_query

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]
OUT = Path(__file__).resolve().parents[1] / "test-output" / "browser"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("browser")
    with served_app(root) as (agent, url):
        yield url, root, agent


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        yield page
        browser.close()


def test_upload_send_and_see_overlay(app_url, page) -> None:
    url, root, _ = app_url
    OUT.mkdir(parents=True, exist_ok=True)
    # the first agent step shows, then the overlay (how fast: bench/bench_app.py)
    send_photo(page, url, write_query(root, "browser.png", stain=True))
    assert page.get_by_text("Verdict: DEFECTIVE").first.is_visible()
    assert page.locator("#verdict-badge .verdict-defective").is_visible()
    page.screenshot(path=str(OUT / "inspect.png"), full_page=True)
    for tab in ("Knowledge", "History", "Showcase"):
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUT / f"{tab.lower()}.png"), full_page=True)
    page.get_by_role("tab", name="History").click()  # the log is shown on arrival, no "Show"
    page.get_by_text("1 inspection", exact=True).wait_for(timeout=10_000)


def test_showcase_shows_plots_of_an_evaluation_run_while_the_app_is_up(app_url, page) -> None:
    url, _, agent = app_url
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#chat-input textarea").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Showcase").click()
    page.get_by_text("No evaluation plots yet").wait_for(timeout=10_000)
    run = agent.context.settings.eval_dir / "widgets"
    (run / "seed-1").mkdir(parents=True)
    Image.new("RGB", (120, 90), "navy").save(run / "seed-1" / "roc.png")
    try:
        page.get_by_role("tab", name="History").click()
        page.get_by_role("tab", name="Showcase").click()  # coming back reads the plots again
        page.locator("#showcase-plots img").first.wait_for(timeout=10_000)
        assert page.get_by_text("widgets, seed 1: ROC curves").count() >= 1
        assert page.get_by_text("No evaluation plots yet").count() == 0
    finally:
        shutil.rmtree(run)


def test_bad_file_gets_a_reply_not_a_spinner(app_url, page) -> None:
    url, root, _ = app_url
    fake = root / "fake.png"
    fake.write_text("this is not an image")
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#chat-input textarea").wait_for(timeout=30_000)
    page.locator("#chat-input input[type=file]").set_input_files(str(fake))
    page.wait_for_timeout(500)
    page.locator("#chat-input textarea").fill("Is this part OK?")
    page.locator("#chat-input textarea").press("Enter")
    page.get_by_text("I cannot use that file").first.wait_for(timeout=20_000)
    assert page.get_by_text("Working…").count() == 0


def test_a_product_taught_meanwhile_is_offered_without_a_reload(app_url, page) -> None:
    url, root, agent = app_url
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#chat-input textarea").wait_for(timeout=30_000)
    agent.context.kb.add_product(make_product(root / "later", "hinge", references=2))
    try:
        for tab in ("History", "Inspect"):  # coming back to a tab refreshes its product list
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(500)
            page.locator("input[aria-label='Product']:visible").click()
            page.get_by_role("option", name="Hinge B-7").wait_for(timeout=10_000)
            page.keyboard.press("Escape")
    finally:
        agent.context.kb.remove_product("hinge")
