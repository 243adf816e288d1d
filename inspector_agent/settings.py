"""One settings object, read from ``INSPECTOR_*`` environment variables and an optional TOML file.

Precedence, lowest to highest: defaults, the file (``INSPECTOR_CONFIG`` or ``--config``),
environment variables, explicit overrides (command-line flags).
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from inspector_agent.atomic_files import write_problem
from inspector_agent.errors import InspectorError

ENV_PREFIX = "INSPECTOR_"


def default_data_dir() -> Path:
    """``~/.local/share/inspector`` (or ``$XDG_DATA_HOME/inspector``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "inspector"


@dataclass(frozen=True)
class Settings:
    """Run-time configuration shared by the app, the CLI and the tests."""

    data_dir: Path = field(default_factory=default_data_dir)
    grounder: str = "expert"  # expert | vlm | local | fusion
    model_url: str | None = None  # OpenAI-compatible server of the multimodal model
    model_name: str | None = None  # None: ask the server
    model_api_key: str | None = None
    model_path: str | None = None  # checkpoint for the local grounder (or the one vLLM serves)
    model_timeout_s: float = 60.0
    model_retries: int = 2
    chat_model_url: str | None = None  # optional chat LLM that phrases answers
    chat_model_name: str | None = None
    chroma_url: str | None = None  # None: embedded store under data_dir
    host: str = "127.0.0.1"
    port: int = 7860
    auth_file: Path | None = None
    torch_threads: int = 1
    max_upload_mb: int = 25
    max_image_pixels: int = 40_000_000
    # overrides of the expert grounder's method settings: the file's [expert] table, or
    # INSPECTOR_EXPERT="top_k=0.002,blocks=4 10" (checked when the grounder is built)
    expert: tuple[tuple[str, Any], ...] = ()

    @property
    def cache_dir(self) -> Path:
        """Feature caches."""
        return self.data_dir / "cache"

    @property
    def chroma_dir(self) -> Path:
        """The embedded Chroma store."""
        return self.data_dir / "chroma"

    @property
    def eval_dir(self) -> Path:
        """Evaluation plots the app's Showcase tab shows (``inspector eval`` writes them)."""
        return self.data_dir / "eval"

    @property
    def products_dir(self) -> Path:
        """Ingested product folders (manifests, specs, reference images)."""
        return self.data_dir / "products"

    @property
    def records_path(self) -> Path:
        """The SQLite inspection log."""
        return self.data_dir / "records.sqlite"

    @property
    def uploads_dir(self) -> Path:
        """Stored query images."""
        return self.data_dir / "uploads"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-``None`` fields replaced (typed like the field, checked)."""
        kept = {k: _coerce(k, v) for k, v in overrides.items() if v is not None}
        for name, value in kept.items():
            _check(name, value)
        return replace(self, **kept)


class SettingsError(InspectorError):
    """A setting that cannot be read or has the wrong type."""


_TYPES = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any) -> Any:
    if name not in _TYPES:
        raise SettingsError(f"unknown setting {name!r}")
    if name == "expert":
        return _expert_overrides(value)
    kind = str(_TYPES[name])
    if value is None or not isinstance(value, str):
        return Path(value) if "Path" in kind and value is not None else value
    if "Path" in kind:
        return Path(value).expanduser()
    try:
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
    except ValueError:
        raise SettingsError(f"setting {name} must be a number, got {value!r}") from None
    return value


_RANGES = {  # (least, most) of whole-number settings; None: no upper bound
    "port": (1, 65535),
    "torch_threads": (1, None),
    "max_upload_mb": (1, None),
    "max_image_pixels": (1, None),
    "model_retries": (0, None),
}


def _check(name: str, value: Any) -> None:
    """Refuse a value the app could only fail on later, with a traceback far from its cause."""
    least, most = _RANGES.get(name, (None, None))
    if least is not None and value < least:
        raise SettingsError(f"setting {name} must be {least} or more, got {value}")
    if most is not None and value > most:
        raise SettingsError(f"setting {name} must be {most} or less, got {value}")
    if name == "model_timeout_s" and not value > 0:
        raise SettingsError(f"setting model_timeout_s must be above 0, got {value}")
    if name == "data_dir":
        problem = write_problem(Path(value) / "records.sqlite")
        if problem:
            raise SettingsError(f"data directory {value}: {problem}")


def _expert_overrides(value: Any) -> tuple[tuple[str, Any], ...]:
    """A table (dict) or ``name=value,name=value`` text as sorted (name, value) pairs."""
    if isinstance(value, str):
        pairs = [item.partition("=") for item in value.split(",") if item.strip()]
        if any(not sep or not key.strip() for key, sep, _ in pairs):
            raise SettingsError(f"expert settings must read name=value,name=value, got {value!r}")
        value = {key.strip(): text.strip() for key, _, text in pairs}
    if isinstance(value, tuple | list):  # (name, value) pairs, as the field holds them
        with contextlib.suppress(TypeError, ValueError):
            value = dict(value)
    if not isinstance(value, dict):
        raise SettingsError(f"the [expert] settings must be a table, got {value!r}")
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in value.items()))


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, an optional TOML file, the environment and overrides."""
    values: dict[str, Any] = {}
    path = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    if path:
        try:
            values.update(tomllib.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc}") from exc
    for name in _TYPES:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env not in (None, ""):
            values[name] = env
    settings = Settings().with_overrides(**values)
    return settings.with_overrides(**overrides)
