"""Call any event of a running Gradio app over plain HTTP, the way a browser (or an attacker) does.

``gradio_client`` refuses endpoints registered with ``api_name=False``; the browser still calls
them by ``fn_index``, so server-side checks must hold for these raw calls too.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx


class RawApp:
    """An HTTP session on the app (optionally logged in) that can upload files and run events.

    Like a browser tab, every call of one instance shares one Gradio session.
    """

    def __init__(self, url: str, login: tuple[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.session = uuid.uuid4().hex
        self.http = httpx.Client(base_url=self.url, timeout=120, follow_redirects=True)
        if login:
            reply = self.http.post("/login", data={"username": login[0], "password": login[1]})
            reply.raise_for_status()
        self.config = self.http.get("/config").json()

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()

    def fn_index(self, component: str) -> int:
        """The first event that reads or writes the component with this ``elem_id`` or label."""
        ids = {
            c["id"]
            for c in self.config["components"]
            if component in (c["props"].get("elem_id"), c["props"].get("label"))
        }
        for dep in self.config["dependencies"]:
            if ids & (set(dep["inputs"]) | set(dep["outputs"])):
                return dep["id"]
        raise LookupError(component)

    def api_index(self, api_name: str) -> int:
        """The id of the event published as ``/api_name``."""
        return next(d["id"] for d in self.config["dependencies"] if d.get("api_name") == api_name)

    def upload(self, path: Path, name: str | None = None) -> dict[str, Any]:
        """Upload a file as the browser does; returns the FileData dict to pass as an input."""
        with open(path, "rb") as handle:
            reply = self.http.post(
                "/gradio_api/upload", files={"files": (name or path.name, handle)}
            )
        reply.raise_for_status()
        stored = reply.json()[0]
        return {
            "path": stored,
            "orig_name": name or path.name,
            "meta": {"_type": "gradio.FileData"},
        }

    def call(self, fn_index: int, data: list[Any]) -> tuple[bool, Any]:
        """Run event ``fn_index`` with ``data``; returns (success, outputs or error message)."""
        session = self.session
        joined = self.http.post(
            "/gradio_api/queue/join",
            json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None},
        )
        if joined.status_code != 200:
            return False, joined.text
        with self.http.stream(
            "GET", "/gradio_api/queue/data", params={"session_hash": session}
        ) as s:
            for line in s.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    if message.get("success"):
                        return True, output.get("data")
                    return False, output.get("error") or json.dumps(output)
        return False, "stream ended without a result"
