"""serving.py without a GPU or vLLM: the command line and the failure messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector_agent.serving import ServeOptions, ServingError, start_vllm_server, vllm_command


def test_cpu_command_binds_localhost_with_the_field_notes_flags() -> None:
    cmd = vllm_command(Path("py"), "/m", 8123, "k", ServeOptions(images_per_prompt=3))
    assert cmd[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    flags = dict(zip(cmd[3::2], cmd[4::2], strict=False))
    assert flags["--host"] == "127.0.0.1" and flags["--port"] == "8123"
    assert json.loads(flags["--limit-mm-per-prompt"]) == {"image": 3}
    assert flags["--api-key"] == "k" and flags["--dtype"] == "float32"
    assert "--enforce-eager" in cmd and "--tensor-parallel-size" not in cmd


def test_gpu_command_uses_tensor_parallel_and_no_cpu_flags() -> None:
    cmd = vllm_command(
        Path("py"), "org/model", 8000, None, ServeOptions(gpu=True, tensor_parallel_size=2)
    )
    assert cmd[cmd.index("--tensor-parallel-size") + 1] == "2"
    assert "--enforce-eager" not in cmd and "--api-key" not in cmd


def test_missing_environment_is_a_plain_message(tmp_path: Path) -> None:
    with pytest.raises(ServingError, match="build it with scripts/vllm-env"):
        start_vllm_server(tmp_path / "m", python=tmp_path / "no-python")


def test_a_server_that_exits_while_starting_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ServingError, match="exited with code 1 while starting"):
        start_vllm_server(tmp_path / "m", python=Path("/bin/false"), options=ServeOptions())
