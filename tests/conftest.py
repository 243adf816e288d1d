"""Shared test setup: offline mode, one torch thread, and an isolated data directory per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from inspector_agent.grounding import base
from inspector_agent.grounding.base import GrounderKind
from inspector_agent.grounding.expert import ExpertConfig, ExpertGrounder
from inspector_agent.settings import Settings


@pytest.fixture(autouse=True)
def _default_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Commands run without ``--data-dir`` keep their store and caches here, not in ``~``."""
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path_factory.mktemp("default-data")))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data directory is a fresh temporary folder."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def small_expert(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry's expert grounder with a small input size, so CLI and eval tests stay fast."""
    small = ExpertConfig(pixels=160 * 160, max_bank=800)
    monkeypatch.setitem(base._REGISTRY, GrounderKind.EXPERT, lambda s: ExpertGrounder(s, small))
