"""The expert grounder's method settings, and how an ``[expert]`` settings table overrides them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from inspector_agent.settings import SettingsError


@dataclass(frozen=True)
class ExpertConfig:
    """Method settings, each measured in docs/expert-grounder.md ("docs" below); every field
    but ``borderline`` (which only words the answer) is part of the cache key."""

    pixels: int = 320 * 256  # model-input area of a median-sized reference
    blocks: tuple[int, ...] = (4, 10)  # EfficientNet blocks whose outputs are concatenated
    alignment: str = "auto"  # auto | aligned | global
    radius: int = 4  # aligned search window of the verdict pass, grid cells
    detail_radius: int = 2  # aligned search window of the outline pass, grid cells
    alignment_radius: int = 2  # auto: window of the "is this product aligned?" test
    normalize: bool = False  # aligned: subtract the references' mean map per position
    relative_decisions: bool = True  # aligned: score and mask from the map minus that mean map
    max_aligned: int = 5  # aligned: match against the references closest to the query
    detail_max_aligned: int = 3  # aligned: the outline pass matches only the 3 closest
    aligned_min_fraction: float = 0.5  # auto: share of patches whose NN lies in the window
    max_bank: int = 6000  # global memory bank size after coreset subsampling
    whiten: bool = True  # global, verdict pass: Mahalanobis matching (docs, "Whitened
    # features for unaligned parts")
    whiten_shrinkage: float = 0.1  # share by which the references' patch covariance is shrunk
    top_k: float = 0.01  # image score: mean of the top 1% of the map (0: its maximum)
    outlier_factor: float = 3.0  # aligned: a reference scoring this far above the others'
    # median does not set the image threshold (docs, "A reference unlike the others")
    context: int = 4  # verdict pass: grid cells of image mirrored around each side
    sigma: float = 4.0  # Gaussian smoothing of the map, model pixels
    mask_quantile: float = 0.999  # calibrated pixel level: this quantile of reference maps
    region_fraction: float = 0.5  # candidate regions: above this share from median to peak
    peak_fraction: float = 0.7  # each region is cut at this share from median to its own peak
    max_regions: int = 3  # keep the highest peak's region and the most prominent others
    prominence_window: float = 0.15  # others rank by height above their surroundings, this
    # share of the map's shorter side wide (docs, "Boxes on a rough backdrop")
    detail_area: float = 2.0  # heatmap, mask and boxes from a pass at this multiple of `pixels`
    borderline: float = 0.8  # an OK part scoring above this share of the threshold is a close
    # call, and the notes ask for a look by eye (docs, "Close calls")

    def key(self) -> str:
        """A short stable digest of the settings the memory bank and calibration depend on."""
        values = asdict(self)
        del values["borderline"]
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]


_KINDS = {f.name: str(f.type) for f in fields(ExpertConfig)}
_CHOICES = {"alignment": ("auto", "aligned", "global")}
_POSITIVE = {
    "pixels",
    "max_bank",
    "max_aligned",
    "detail_max_aligned",
    "max_regions",
    "detail_area",
}
_SHARES = {
    "aligned_min_fraction",
    "whiten_shrinkage",
    "top_k",
    "mask_quantile",
    "region_fraction",
    "peak_fraction",
    "prominence_window",
    "borderline",
}
_BLOCKS = 16  # EfficientNet-Lite0's blocks, numbered 0-15


def expert_config(overrides: Mapping[str, Any], base: ExpertConfig | None = None) -> ExpertConfig:
    """``base`` (default: the defaults) with ``overrides`` applied: the settings' ``[expert]``
    table, or a product manifest's ``expert`` mapping on top of it.

    Values may be typed (from TOML) or text (from ``INSPECTOR_EXPERT``); an unknown name or a
    value of the wrong type is a :class:`SettingsError` naming it.
    """
    unknown = sorted(set(overrides) - set(_KINDS))
    if unknown:
        raise SettingsError(
            f"unknown expert setting {unknown[0]!r}; known: {', '.join(sorted(_KINDS))}"
        )
    values = {k: _coerce(k, _KINDS[k], v) for k, v in overrides.items()}
    for name, value in values.items():
        problem = _out_of_range(name, value)
        if problem:
            raise SettingsError(f"expert setting {name} must be {problem}, got {value!r}")
    return replace(base or ExpertConfig(), **values)


def settings_text(overrides: Mapping[str, Any]) -> str:
    """``top_k=0.002, sigma=2`` for notes and tables."""
    return ", ".join(f"{name}={value}" for name, value in overrides.items())


def _out_of_range(name: str, value: Any) -> str | None:
    """What ``value`` should be, if it is outside the setting's meaningful range."""
    if name in _CHOICES:
        return None if value in _CHOICES[name] else "one of " + ", ".join(_CHOICES[name])
    if name == "blocks":
        return None if all(0 <= b < _BLOCKS for b in value) else f"numbers 0-{_BLOCKS - 1}"
    if name in _SHARES:
        return None if 0 <= value <= 1 else "between 0 and 1"
    if name in _POSITIVE:
        return None if value > 0 else "above 0"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return None if value >= 0 else "0 or more"
    return None


def _coerce(name: str, kind: str, value: Any) -> Any:
    """``value`` as the field's type (bool, int, float, str or a tuple of ints)."""
    text = value.strip() if isinstance(value, str) else None
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if text is not None and text.lower() in ("true", "false", "1", "0", "yes", "no"):
                return text.lower() in ("true", "1", "yes")
        elif kind.startswith("tuple"):
            items = re.split(r"[,\s]+", text) if text is not None else value
            if isinstance(items, list | tuple) and items:
                return tuple(_number(int, item) for item in items)
        elif kind == "str":
            if text is not None:
                return text
        else:
            return _number(int if kind == "int" else float, value)
    except (TypeError, ValueError):
        pass
    wanted = {"bool": "true or false", "str": "text", "int": "a whole number"}.get(
        kind, "a list of whole numbers" if kind.startswith("tuple") else "a number"
    )
    raise SettingsError(f"expert setting {name} must be {wanted}, got {value!r}")


def _number(kind: type, value: Any) -> Any:
    """``value`` as an int or float; bools, fractions for ints and non-finite numbers refused."""
    if isinstance(value, bool):
        raise TypeError(value)
    number = kind(value.strip() if isinstance(value, str) else value)
    if kind is int and isinstance(value, float) and number != value:
        raise ValueError(value)
    if kind is float and not float("-inf") < number < float("inf"):
        raise ValueError(value)
    return number
