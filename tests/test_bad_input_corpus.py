"""Every hostile file through the CLI, the app's ``inspect`` endpoint and the Knowledge upload:
one clear line, no traceback, nothing written half-way, the app still serving afterwards."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from badfiles import IMAGE_CASES, SPEC_CASES, TRAVERSAL_NAMES, BadFile, build_corpus
from gradio_client import Client, handle_file
from gradio_raw import RawApp
from PIL import Image
from test_agent_fixtures import make_product, part_image, served_app, write_query

from inspector_agent.cli import main
from inspector_agent.errors import InspectorError
from inspector_agent.kb import KnowledgeBase
from inspector_agent.settings import Settings

BAD_IMAGES = [c for c in IMAGE_CASES if c not in ("cmyk", "16-bit", "palette", "animated-gif")]
ODD_IMAGES = ["cmyk", "16-bit", "palette", "animated-gif", "unicode-name"]
BAD_IMAGES.remove("unicode-name")
EXPECTED = {  # what the user is told, per case
    "truncated-png": "damaged or truncated",
    "truncated-jpeg": "damaged or truncated",
    "zero-bytes": "empty",
    "text-as-png": "not a supported image",
    "bomb": "too large",
    "huge-20000": "too large",
    "encrypted-pdf": "not a supported image",
    "not-a-pdf": "not a supported image",
}
SPEC_EXPECTED = {
    "encrypted-pdf": "encrypted",
    "not-a-pdf": "locked.pdf|datasheet.pdf",
    "injected-spec": "addresses the assistant",
    "text-as-png": "notes.png",
}


def one_clear_line(message: str) -> None:
    """A message a supervisor can read: one line, no traceback, no Python internals."""
    text = message.strip()
    assert text and "\n" not in text, text
    assert "Traceback" not in text and 'File "' not in text, text


def files_under(folder: Path) -> set[str]:
    """Every file below ``folder`` (relative), SQLite journals left out."""
    if not folder.exists():
        return set()
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm", "-journal"))
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BadFile]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("refs")
    for i in range(3):
        part_image(i).save(folder / f"good_{i}.png")
    return folder


@pytest.fixture(scope="module")
def cli_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for the CLI runs, so the reference features are computed once."""
    return tmp_path_factory.mktemp("cli") / "data"


# ---- CLI ------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", IMAGE_CASES)
def test_cli_inspect(
    case: str, corpus: dict[str, BadFile], references: Path, cli_data: Path, tmp_path: Path, capsys
) -> None:
    bad = corpus[case]
    overlay = tmp_path / "overlay.png"
    argv = ["--data-dir", str(cli_data), "inspect", str(bad.path)]
    code = main([*argv, "--references", str(references), "--overlay", str(overlay)])
    err = capsys.readouterr().err
    if bad.image_ok:
        assert code == 0, err
        assert Image.open(overlay).format == "PNG"
    else:
        assert code == 2
        one_clear_line(err)
        assert err.startswith("error: ") and EXPECTED[case] in err
        assert not overlay.exists()  # nothing written half-way


@pytest.mark.parametrize("case", SPEC_CASES)
def test_cli_kb_add_refuses_bad_specs(
    case: str, corpus: dict[str, BadFile], tmp_path: Path, capsys
) -> None:
    folder = make_product(tmp_path / "src")
    shutil.copy(corpus[case].path, folder / corpus[case].path.name)
    data = tmp_path / "data"
    code = main(["--data-dir", str(data), "kb", "add", str(folder)])
    err = capsys.readouterr().err
    assert code == 2
    one_clear_line(err)
    assert any(word in err for word in SPEC_EXPECTED[case].split("|")), err
    assert files_under(data / "products") == set()


def test_real_console_process_prints_one_line(corpus: dict[str, BadFile], references: Path) -> None:
    """The installed entry point in its own process: exit 2 and one line, for a bomb."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from inspector_agent.cli import run; run()",
            "inspect",
            str(corpus["bomb"].path),
            "--references",
            str(references),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(references)},
    )
    assert proc.returncode == 2
    one_clear_line(proc.stderr)
    assert "too large" in proc.stderr


# ---- the app's inspect endpoint ------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("app")
    with served_app(root) as (agent, url):
        yield agent, url, root


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_app_inspect_endpoint(served, corpus: dict[str, BadFile], case: str) -> None:
    agent, url, _ = served
    bad = corpus[case]
    records = agent.context.records.count()
    overlays = files_under(agent.context.settings.data_dir / "overlays")
    client = Client(url, verbose=False)
    if bad.image_ok:
        result, overlay = client.predict(
            handle_file(str(bad.path)), "bracket", "", "", api_name="/inspect"
        )
        result = json.loads(result) if isinstance(result, str) else result
        assert result["verdict"] in ("ok", "defective") and Path(overlay).is_file()
        assert agent.context.records.count() == records + 1
        return
    with pytest.raises(Exception) as caught:
        client.predict(handle_file(str(bad.path)), "bracket", "", "", api_name="/inspect")
    one_clear_line(str(caught.value))
    assert EXPECTED[case] in str(caught.value)
    assert agent.context.records.count() == records  # no inspection recorded
    assert files_under(agent.context.settings.data_dir / "overlays") == overlays
    uploads = agent.context.settings.uploads_dir
    assert not [p for p in uploads.rglob(".*") if p.is_file()]  # no half-written temp file


@pytest.mark.parametrize("name", TRAVERSAL_NAMES[:3])
def test_app_upload_names_cannot_escape(served, tmp_path: Path, name: str) -> None:
    _agent, url, root = served
    good = tmp_path / "good.png"  # a reference part photographed again: good beyond doubt
    part_image(0).save(good)  # (a fresh noise draw scores at the references' own level)
    raw = RawApp(url)
    try:
        stored = raw.upload(good, name=name)
        ok, out = raw.call(raw.api_index("inspect"), [stored, "bracket", "", ""])
    finally:
        raw.close()
    assert ok, out
    assert out[0]["verdict"] == "ok"
    assert not [p for p in [root, *root.rglob("*")] if p.name in ("escape.png", "passwd")]
    assert not (root.parent / "escape.png").exists()


# ---- the Knowledge upload (facade and the app's handler) ----------------------------------
@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    """A knowledge base holding version 1 of the product."""
    root = tmp_path_factory.mktemp("kb")
    kb = KnowledgeBase(Settings(data_dir=root / "data"))
    kb.add_product(make_product(root / "v1", references=2))
    yield kb
    kb.close()


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_kb_refuses_bad_reference_images(
    kb: KnowledgeBase, corpus: dict[str, BadFile], tmp_path: Path, case: str
) -> None:
    settings = kb.settings
    before = files_under(settings.products_dir)
    folder = make_product(tmp_path / "v2", references=2)
    shutil.copy(corpus[case].path, folder / "references" / corpus[case].path.name)
    with pytest.raises(InspectorError) as caught:
        kb.add_product(folder)
    one_clear_line(str(caught.value))
    assert corpus[case].path.name in str(caught.value) and EXPECTED[case] in str(caught.value)
    assert files_under(settings.products_dir) == before  # previous version intact, no staging
    assert len(kb.reference_set("bracket").paths) == 2


def test_kb_accepts_odd_but_valid_images(
    kb: KnowledgeBase, corpus: dict[str, BadFile], tmp_path: Path
) -> None:
    folder = make_product(tmp_path / "src", "oddities", references=1)
    for case in ODD_IMAGES:
        shutil.copy(corpus[case].path, folder / "references" / corpus[case].path.name)
    report = kb.add_product(folder)
    assert report.references == 1 + len(ODD_IMAGES)
    names = {p.name for p in kb.reference_set("oddities").paths}
    assert "Prüfteil ø 🔧 №7.png" in names and "animated.gif" in names
    kb.remove_product("oddities")


def _ingest(raw: RawApp, pid: str, specs: list | None, refs: list | None) -> str:
    """The handler's summary, or Gradio's own refusal (e.g. a file type the form does not take)."""
    ok, out = raw.call(
        raw.fn_index("ingest-summary"), [pid, "Bracket B-7", "d", None, "", "", specs, refs, False]
    )
    return out[0] if ok else f"**Not ingested:** {out}"


@pytest.mark.parametrize("case", sorted(set(BAD_IMAGES) | set(SPEC_CASES)))
def test_app_knowledge_handler_refuses(served, corpus: dict[str, BadFile], case: str) -> None:
    agent, url, _ = served
    products = files_under(agent.context.settings.products_dir)
    raw = RawApp(url)
    try:
        upload = raw.upload(corpus[case].path)
        as_spec = case in SPEC_CASES
        summary = _ingest(
            raw, "widget", [upload] if as_spec else None, None if as_spec else [upload]
        )
    finally:
        raw.close()
    assert summary.startswith("**Not ingested:**")
    one_clear_line(summary)
    assert [p.id for p in agent.context.kb.list_products()] == ["bracket"]
    assert files_under(agent.context.settings.products_dir) == products


def test_app_knowledge_handler_confines_names(served, tmp_path: Path) -> None:
    agent, url, root = served
    good = tmp_path / "good.png"
    part_image(3).save(good)
    raw = RawApp(url)
    try:
        evil = _ingest(raw, "../../evil", None, [raw.upload(good)])
        refs = [raw.upload(good, name=n) for n in ("../../escape.png", "Prüfteil №1.png")]
        summary = _ingest(raw, "widget", None, refs)
    finally:
        raw.close()
    assert evil.startswith("**Not ingested:**") and "not a valid product id" in evil
    assert not (root.parent / "evil").exists() and not (root / "escape.png").exists()
    assert summary.startswith("**Ingested.**"), summary
    paths = agent.context.kb.reference_set("widget").paths
    assert all(p.resolve().is_relative_to(agent.context.settings.products_dir) for p in paths)
    agent.context.kb.remove_product("widget")


def test_app_still_serving_after_the_corpus(served) -> None:
    _agent, url, root = served
    image = write_query(root, "after.png", stain=True)
    result, _ = Client(url, verbose=False).predict(
        handle_file(str(image)), "bracket", "OK?", "S-1", api_name="/inspect"
    )
    result = json.loads(result) if isinstance(result, str) else result
    assert result["verdict"] == "defective"
