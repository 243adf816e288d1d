"""Start and stop a vLLM OpenAI-compatible server for the multimodal model as a child process.

vLLM lives in its own environment (``scripts/vllm-env`` builds ``.venv-vllm``); its Python is
``$INSPECTOR_VLLM_PYTHON`` or ``.venv-vllm/bin/python`` next to this repository. The server
listens on 127.0.0.1 only. On a machine without a GPU the CPU flags of FIELD-NOTES apply.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from inspector_agent.errors import InspectorError

VLLM_PYTHON_ENV = "INSPECTOR_VLLM_PYTHON"
REPO_ROOT = Path(__file__).resolve().parent.parent


class ServingError(InspectorError):
    """The model server could not be started or did not become healthy."""


def vllm_python() -> Path:
    """The Python of the separate vLLM environment."""
    return Path(os.environ.get(VLLM_PYTHON_ENV) or REPO_ROOT / ".venv-vllm" / "bin" / "python")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def has_gpu(python: Path) -> bool:
    """Whether the vLLM environment's torch sees a CUDA device."""
    probe = [str(python), "-c", "import torch; print(int(torch.cuda.is_available()))"]
    try:
        return (
            subprocess.run(probe, capture_output=True, text=True, timeout=120).stdout.strip() == "1"
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class ServeOptions:
    """Flags for ``vllm.entrypoints.openai.api_server`` (CPU defaults from FIELD-NOTES)."""

    max_model_len: int = 2048
    images_per_prompt: int = 4
    max_num_seqs: int = 8
    tensor_parallel_size: int = 1
    gpu: bool = False
    served_model_name: str | None = None
    extra_args: tuple[str, ...] = ()


def vllm_command(
    python: Path, model: str, port: int, api_key: str | None, options: ServeOptions
) -> list[str]:
    """The command line that serves ``model`` on 127.0.0.1:``port``."""
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", model]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--max-model-len", str(options.max_model_len)]
    cmd += ["--max-num-seqs", str(options.max_num_seqs)]
    cmd += ["--limit-mm-per-prompt", json.dumps({"image": options.images_per_prompt})]
    cmd += ["--generation-config", "vllm"]  # sampling is always explicit in our requests
    if options.served_model_name:
        cmd += ["--served-model-name", options.served_model_name]
    if api_key:
        cmd += ["--api-key", api_key]
    if options.gpu:
        cmd += ["--tensor-parallel-size", str(options.tensor_parallel_size)]
    else:
        cmd += ["--dtype", "float32", "--enforce-eager"]
    return cmd + list(options.extra_args)


@dataclass
class ModelServer:
    """A running vLLM server; a context manager that stops it on exit."""

    process: subprocess.Popen[bytes]
    url: str  # base URL without ``/v1``
    api_key: str | None
    log_path: Path
    _log: object = field(default=None, repr=False)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_healthy(self, timeout_s: float) -> None:
        """Block until ``GET /health`` answers 200; raise if the process dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServingError(
                    f"the model server exited with code {self.process.returncode} while "
                    f"starting; its log ends with:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise ServingError(f"the model server did not become ready within {timeout_s:.0f} s")

    def stop(self, grace_s: float = 20.0) -> None:
        """Terminate the server and its worker processes (kill after ``grace_s``)."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the server's process group (it was started in a session of its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def start_vllm_server(
    model: str | Path,
    port: int | None = None,
    api_key: str | None = None,
    *,
    python: Path | None = None,
    options: ServeOptions | None = None,
    startup_timeout_s: float = 600.0,
    log_path: Path | None = None,
) -> ModelServer:
    """Start ``vllm`` serving ``model`` on 127.0.0.1, wait until healthy, return the handle.

    Use it as a context manager (``with start_vllm_server(path) as server: ...``) so the server
    stops with the caller.
    """
    python = python or vllm_python()
    if not python.exists():
        raise ServingError(
            f"no vLLM environment at {python}; build it with scripts/vllm-env "
            f"or set {VLLM_PYTHON_ENV}"
        )
    if options is None:
        options = ServeOptions(gpu=has_gpu(python))
    port = port or free_port()
    log_path = log_path or Path(tempfile.mkstemp(prefix="vllm-", suffix=".log")[1])
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    if not options.gpu:
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    log = open(log_path, "wb")  # noqa: SIM115  (closed by ModelServer.stop)
    process = subprocess.Popen(
        vllm_command(python, str(model), port, api_key, options),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    server = ModelServer(process, f"http://127.0.0.1:{port}", api_key, log_path, log)
    try:
        server.wait_healthy(startup_timeout_s)
    except BaseException:
        server.stop()
        raise
    return server
