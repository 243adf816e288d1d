"""Product manifests (``manifest.yaml``): name, description, pixel scale, defect taxonomy and
the product's own expert grounder settings."""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from inspector_agent.errors import InspectorError
from inspector_agent.grounding.expert_config import expert_config
from inspector_agent.settings import SettingsError

MANIFEST_NAME = "manifest.yaml"
SEVERITIES = ("minor", "major", "critical")
PRODUCT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
Severity = Literal["minor", "major", "critical"]
FIELDS = ("id", "name", "description", "mm_per_pixel", "defects", "expert")
DEFECT_FIELDS = ("name", "description", "severity", "acceptance")


class ManifestError(InspectorError):
    """A product folder or manifest that cannot be used; the message names the file and field."""


@dataclass(frozen=True)
class DefectType:
    """One entry of a product's defect taxonomy."""

    name: str
    description: str
    severity: Severity
    acceptance: str


@dataclass(frozen=True)
class ProductManifest:
    """What a product is and which defects matter on it."""

    id: str
    name: str
    description: str
    mm_per_pixel: float | None = None
    defects: list[DefectType] = field(default_factory=list)
    expert: dict[str, Any] = field(default_factory=dict)  # this product's expert settings

    def to_dict(self) -> dict[str, Any]:
        """YAML/JSON-ready form (the inverse of :func:`manifest_from_dict`)."""
        data = asdict(self)
        if not self.expert:
            del data["expert"]
        return data

    def to_yaml(self) -> str:
        """The manifest as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


def check_product_id(product_id: str, where: str = "product id") -> str:
    """Return ``product_id`` or raise if it is not lower-case letters, digits, ``-`` or ``_``."""
    if not isinstance(product_id, str) or not PRODUCT_ID.match(product_id):
        raise ManifestError(
            f"{where}: {product_id!r} is not a valid product id "
            "(lower-case letters, digits, '-' and '_', at most 64 characters)"
        )
    return product_id


def _text(data: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = data.get(key)
    if not required and (value is None or value == ""):
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ManifestError(f"{where}: field '{key}' must be a non-empty text")
    return value.strip()


def _known_fields(data: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    """Refuse a field the manifest does not have: a misspelt one would otherwise be dropped
    without a word (a taxonomy under ``defect_types:`` would silently teach none)."""
    unknown = [key for key in data if key not in allowed]
    if unknown:
        key = str(unknown[0])
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ManifestError(
            f"{where}: unknown field '{key}'{hint}; the fields are {', '.join(allowed)}"
        )


def manifest_from_dict(data: Any, where: str, default_id: str | None = None) -> ProductManifest:
    """Validate a parsed manifest; ``where`` (usually the file path) prefixes every error."""
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: the manifest must be a mapping of fields")
    _known_fields(data, FIELDS, where)
    product_id = check_product_id(data.get("id", default_id), f"{where}: field 'id'")
    scale = data.get("mm_per_pixel")
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0
    ):
        raise ManifestError(f"{where}: field 'mm_per_pixel' must be a positive number")
    raw_defects = data.get("defects") or []
    if not isinstance(raw_defects, list):
        raise ManifestError(f"{where}: field 'defects' must be a list")
    defects: list[DefectType] = []
    for index, item in enumerate(raw_defects):
        spot = f"{where}: defects[{index}]"
        if not isinstance(item, dict):
            raise ManifestError(f"{spot} must be a mapping with name, description, severity")
        _known_fields(item, DEFECT_FIELDS, spot)
        severity = item.get("severity")
        if severity not in SEVERITIES:
            raise ManifestError(f"{spot}: field 'severity' must be one of {', '.join(SEVERITIES)}")
        defects.append(
            DefectType(
                name=_text(item, "name", spot),
                description=_text(item, "description", spot),
                severity=severity,
                acceptance=_text(item, "acceptance", spot, required=False),
            )
        )
    names = [d.name for d in defects]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ManifestError(f"{where}: defect type {duplicates[0]!r} is listed twice")
    expert = data.get("expert") or {}
    if not isinstance(expert, dict):
        raise ManifestError(f"{where}: field 'expert' must be a mapping of expert settings")
    try:  # the same names, types and ranges as the settings file's [expert] table
        expert_config(expert)
    except SettingsError as exc:
        raise ManifestError(f"{where}: field 'expert': {exc}") from None
    return ProductManifest(
        id=product_id,
        name=_text(data, "name", where),
        description=_text(data, "description", where),
        mm_per_pixel=float(scale) if scale is not None else None,
        defects=defects,
        expert=dict(expert),
    )


def load_manifest(folder: Path) -> ProductManifest:
    """Read and validate ``folder/manifest.yaml`` (the id defaults to the folder name)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ManifestError(f"{path}: cannot read the manifest ({reason})") from None
    return manifest_from_dict(data, str(path), default_id=Path(folder).resolve().name)
