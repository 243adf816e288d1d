"""The Gradio app served for real on 127.0.0.1 and driven through ``gradio_client``."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_raw import RawApp
from PIL import Image
from test_agent_fixtures import make_product, part_image, served_app, write_query

from inspector_agent.kb.manifest import load_manifest
from inspector_agent.ui.auth import AuthError, Users, load_users
from inspector_agent.ui.inspect import badge, parse_defects, run_turn
from inspector_agent.ui.knowledge import TAXONOMY_HELP, stage_folder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """The app with one small product, on a free port; closed at the end."""
    root = tmp_path_factory.mktemp("app")
    with served_app(root, max_upload_mb=2) as (agent, url):
        yield agent, url, root


def test_inspect_endpoint(served) -> None:
    agent, url, root = served
    client = Client(url, verbose=False)
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == [
        "/inspect"
    ]
    image = write_query(root, "line.png", stain=True)
    result, overlay = client.predict(
        handle_file(str(image)), "bracket", "Is this part OK?", "SN-77", api_name="/inspect"
    )
    if isinstance(result, str):
        result = json.loads(result)
    assert result["verdict"] == "defective" and result["product_id"] == "bracket"
    assert result["defects"][0]["size_mm"] > 0 and result["record_id"] >= 1
    assert Image.open(overlay).format == "PNG"
    assert agent.context.records.get(result["record_id"]).serial == "SN-77"


@pytest.mark.parametrize(
    ("name", "product", "expected"),
    [
        ("notes.txt", "bracket", "not a supported image"),
        ("line.png", "nope", "Unknown product 'nope'"),
        ("big.bmp", "bracket", "exceeds the maximum file size"),
    ],
)
def test_inspect_endpoint_bad_input(served, name: str, product: str, expected: str) -> None:
    _, url, root = served
    (root / "notes.txt").write_text("hello")
    Image.new("RGB", (1100, 1000)).save(root / "big.bmp")  # 3.3 MB, over the 2 MB upload limit
    write_query(root, "line.png", stain=True)
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match=expected):
        client.predict(handle_file(str(root / name)), product, "", "", api_name="/inspect")


def test_concurrent_clients(served) -> None:
    _, url, root = served
    image = handle_file(str(write_query(root, "c.png", stain=True)))

    def one(i: int) -> str:
        result, _ = Client(url, verbose=False).predict(
            image, "bracket", "OK?", f"C{i}", api_name="/inspect"
        )
        return (json.loads(result) if isinstance(result, str) else result)["verdict"]

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(4))) == ["defective"] * 4


def test_chat_turn_streams_steps_then_answer_with_overlay(served) -> None:
    agent, _, root = served
    image = str(write_query(root, "chat.png", stain=True))
    frames = list(
        run_turn(
            agent,
            {"text": "Is this part OK?", "files": [image]},
            [],
            "bracket",
            "",
            None,
            "ui-1",
            "",
        )
    )
    first_chat = frames[0][0]
    assert first_chat[-1].metadata["status"] == "pending"
    titles = [m.metadata["title"] for m in frames[-2][0] if getattr(m, "metadata", None)]
    assert "Comparing with the references" in titles
    chat, result, record = frames[-1]
    assert result["verdict"] == "defective" and record >= 1
    assert chat[-1]["content"]["path"].endswith(".png")
    # A failing turn ends with a message, not an exception.
    *_, (chat, result, _) = run_turn(
        agent,
        {"text": "is this ok?", "files": [str(root / "missing.png")]},
        [],
        "bracket",
        "",
        None,
        "ui-2",
        "",
    )
    assert result is None and "Sorry" in chat[-1]["content"]


def test_auth_file_and_roles(tmp_path: Path) -> None:
    auth = tmp_path / "users.json"
    auth.write_text(
        json.dumps(
            {"users": {"eve": {"password": "pw", "role": "engineer"}, "sam": {"password": "pw2"}}}
        )
    )
    users = load_users(auth)
    assert (
        users.check("eve", "pw") and not users.check("eve", "nope") and not users.check("x", "pw")
    )
    users.require_engineer("eve")
    with pytest.raises(AuthError, match="only engineers"):
        users.require_engineer("sam")
    assert Users({}).role(None) == "engineer"
    auth.write_text(json.dumps({"users": {"bob": {"password": "x", "role": "admin"}}}))
    with pytest.raises(AuthError, match="unknown role 'admin'"):
        load_users(auth)


def test_knowledge_form_ingests(served, tmp_path: Path) -> None:
    agent = served[0]
    src = make_product(tmp_path / "src", "gear")
    folder = stage_folder(
        tmp_path / "stage",
        "gear",
        "Gear G-1",
        "A gear.",
        0.05,
        "- name: dent\n  description: a dent\n  severity: major\n  acceptance: reject\n",
        [str(src / "spec.md")],
        [str(p) for p in sorted((src / "references").iterdir())],
    )
    report = agent.context.kb.add_product(folder)
    assert report.references == 4 and report.chunks_added > 0
    assert agent.context.kb.get_product("gear").defects[0].name == "dent"
    agent.context.kb.remove_product("gear")


def test_knowledge_form_sets_keeps_and_clears_expert_settings(served, tmp_path: Path) -> None:
    agent, url, _ = served
    kb = agent.context.kb
    good = tmp_path / "good.png"
    part_image(5).save(good)
    raw = RawApp(url)
    index = raw.fn_index("ingest-summary")

    def ingest(description: str, expert: str) -> str:
        data = [
            "valve",
            "Valve V-2",
            description,
            None,
            "",
            expert,
            None,
            [raw.upload(good)],
            False,
        ]
        ok, out = raw.call(index, data)
        assert ok, out
        return out[0]

    try:
        assert ingest("A valve.", "top_k: 0.002").startswith("**Ingested.**")
        assert kb.get_product("valve").expert == {"top_k": 0.002}
        assert kb.reference_set("valve").expert == {"top_k": 0.002}
        assert ingest("A valve body.", "").startswith("**Ingested.**")  # blank keeps them
        assert kb.get_product("valve").description == "A valve body."
        assert kb.get_product("valve").expert == {"top_k": 0.002}
        refused = ingest("A valve housing.", "top_kk: 1")
        assert refused.startswith("**Not ingested:**") and "unknown expert setting" in refused
        assert "\n" not in refused and kb.get_product("valve").description == "A valve body."
        assert "YAML mapping" in ingest("A valve housing.", "- top_k")
        assert ingest("A valve.", "{}").startswith("**Ingested.**")  # {} clears them
        assert kb.get_product("valve").expert == {}
        assert ingest("A valve.", "top_k: 0.002").startswith("**Ingested.**")
        data = ["valve", "Valve V-3", "Another valve.", None, "", "", None, [raw.upload(good)]]
        ok, out = raw.call(index, [*data, True])  # a different product replaces it
        assert ok and out[0].startswith("**Ingested.**"), out
        assert kb.get_product("valve").expert == {}  # and does not inherit its settings
    finally:
        raw.close()
        kb.remove_product("valve")


def test_the_untouched_taxonomy_example_adds_no_defect_types(tmp_path: Path) -> None:
    folder = stage_folder(tmp_path, "gear", "Gear G-1", "A gear.", None, TAXONOMY_HELP, [], [])
    assert load_manifest(folder).defects == []


def test_correction_parser() -> None:
    assert parse_defects("scratch 1 2 3 4\n\nbig dent, 5, 6, 7, 8") == [
        {"label": "scratch", "bbox": [1.0, 2.0, 3.0, 4.0]},
        {"label": "big dent", "bbox": [5.0, 6.0, 7.0, 8.0]},
    ]
    with pytest.raises(Exception, match="line 1"):
        parse_defects("scratch 1 2")


def test_badge_marks_a_close_call() -> None:
    passed = {"verdict": "ok", "pred_score": 0.3}
    assert "verdict-ok" in badge(passed) and "close call" not in badge(passed)
    close = badge({**passed, "close_call": True})
    assert "verdict-close-call" in close and "OK &middot; score 0.30 &middot; close call" in close
    assert "verdict-defective" in badge({"verdict": "defective", "pred_score": 0.9})
    assert badge(None) == ""


def test_showcase_case_and_demo_photo(served, tmp_path: Path) -> None:
    from inspector_agent.ui.showcase import run_case, write_demo_photo

    agent, _, root = served
    photo = write_demo_photo("brushed-alu-panel", "scratch", 0, tmp_path / "demo.png")
    assert Image.open(photo).mode == "RGB" and Image.open(photo).getextrema()[0][1] > 0
    query = write_query(root, "sc.png", True)
    logged = agent.context.records.count()
    reference, shown, overlay, answer = run_case(agent, "bracket", query)
    assert shown == str(query)
    assert "/references/" in reference and Path(overlay).exists()
    assert "Verdict: DEFECTIVE" in answer
    assert agent.context.records.count() == logged  # a demo does not count as an inspection


def test_evaluation_plots_newest_run_first_with_captions(tmp_path: Path) -> None:
    from inspector_agent.ui.showcase import MAX_PLOTS, evaluation_plots

    def plot(relative: str, stamp: int) -> None:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(path)
        os.utime(path, (stamp, stamp))

    plot("realdata/seed-0/examples_tire.png", 200)
    plot("realdata/seed-0/roc.png", 200)
    plot("realdata/seed-1/roc.png", 200)
    plot("older/roc.png", 100)
    plot(".realdata.staging/roc.png", 300)  # a run still writing
    plot("loose.png", 50)
    captions = [caption for _, caption in evaluation_plots(tmp_path)]
    assert captions == [
        "realdata, seed 0: ROC curves",
        "realdata, seed 0: examples, tire",
        "realdata, seed 1: ROC curves",
        "older: ROC curves",
        "loose",
    ]
    assert evaluation_plots(tmp_path / "missing") == []
    for seed in range(30):
        plot(f"many/seed-{seed}/roc.png", 400)
    many = evaluation_plots(tmp_path)
    assert len(many) == MAX_PLOTS and all("many, seed" in caption for _, caption in many)


def test_chat_turns_do_not_accumulate_components(served) -> None:
    """Each chat turn's updates must not leave Gradio components behind in the session (they
    did: a component built in a handler was rendered into the session's blocks, ~60 kB/turn)."""
    import gc

    import gradio as gr
    from gradio_raw import RawApp

    _, url, _ = served
    raw = RawApp(url)
    chat_fn = raw.fn_index("chat-input")

    def components() -> int:
        gc.collect()
        return sum(isinstance(o, gr.components.Component) for o in gc.get_objects())

    def turn() -> None:
        message = {"text": "What about stains?", "files": []}
        ok, out = raw.call(chat_fn, [message, [], "bracket", "", None, ""])
        assert ok, out

    try:
        turn()  # the first turn may build what later ones reuse
        before = components()
        for _ in range(6):
            turn()
        assert components() - before < 3
    finally:
        raw.close()
