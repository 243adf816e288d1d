"""The tiny model's dimensions and the rules they must follow, light enough for recipe checks."""

from __future__ import annotations

from dataclasses import dataclass, fields

from inspector_agent.errors import InspectorError
from inspector_agent.prompts import DEFAULT_MAX_PIXELS


class TinySpecError(InspectorError):
    """Dimensions a tiny Qwen2.5-VL cannot be built with (one line, exit code 2)."""


@dataclass(frozen=True)
class TinySpec:
    """Dimensions of the tiny model (defaults from FIELD-NOTES: learns the answer format)."""

    hidden: int = 128
    layers: int = 4
    mlp: int = 384
    heads: int = 4
    kv_heads: int = 2
    vision_depth: int = 2
    vision_hidden: int = 64
    vision_heads: int = 2
    vocab: int = 1024
    min_pixels: int = 56 * 56
    max_pixels: int = DEFAULT_MAX_PIXELS  # the prompt builder's budget (prompts.py contract)
    max_positions: int = 4096
    rope_theta: float = 10.0  # sized to short sequences and a few-token image grid (tiny_model)
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse dimensions that would fail inside transformers with a shape error."""
        for spec_field in fields(self):
            value = getattr(self, spec_field.name)
            least = 0 if spec_field.name == "seed" else 1
            if value < least:
                raise TinySpecError(f"{spec_field.name} must be {least} or more, got {value}")
        if self.hidden % self.heads or (self.hidden // self.heads) % 16:
            raise TinySpecError(
                f"hidden / heads must be a whole multiple of 16, got {self.hidden} / {self.heads}"
            )
        if self.heads % self.kv_heads:
            raise TinySpecError(f"heads ({self.heads}) must be a multiple of kv_heads")
        if self.vision_hidden % self.vision_heads:
            raise TinySpecError("vision_hidden must be a multiple of vision_heads")
        if self.min_pixels > self.max_pixels:
            raise TinySpecError("min_pixels must not exceed max_pixels")
