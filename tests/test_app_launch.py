"""``launch.py`` from the shell: help text, one-line errors, and a login-protected server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

from inspector_agent.serving import free_port
from inspector_agent.settings import Settings
from inspector_agent.ui.app import create_agent, launch
from inspector_agent.ui.auth import load_users

ROOT = Path(__file__).resolve().parents[1]


def run_launch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_help_lists_the_options() -> None:
    out = run_launch("--help")
    assert out.returncode == 0
    for option in ("--host", "--port", "--data-dir", "--grounder", "--model-url", "--auth-file"):
        assert option in out.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read auth file"),
        ('{"users": {"bob": {"password": "x", "role": "admin"}}}', "unknown role 'admin'"),
    ],
)
def test_bad_auth_file_is_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    auth = tmp_path / "users.json"
    if content is not None:
        auth.write_text(content)
    out = run_launch("--auth-file", str(auth), "--data-dir", str(tmp_path / "data"))
    assert out.returncode == 2
    assert expected in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_login_is_required_when_auth_is_configured(tmp_path: Path) -> None:
    auth = tmp_path / "users.json"
    auth.write_text(json.dumps({"users": {"sam": {"password": "s3cret", "role": "supervisor"}}}))
    settings = Settings(data_dir=tmp_path / "data", port=free_port(), auth_file=auth)
    demo, url = launch(
        settings, load_users(auth), create_agent(settings, ingest_demo=False), block=False
    )
    try:
        assert demo.auth is not None
        with pytest.raises(Exception, match="credentials were not provided"):
            Client(url, verbose=False)
        client = Client(url, auth=("sam", "s3cret"), verbose=False)
        assert (
            "/inspect" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        )
        with pytest.raises(Exception, match="Could not login"):
            Client(url, auth=("sam", "nope"), verbose=False)
    finally:
        demo.close()
