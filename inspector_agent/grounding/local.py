"""The ``local`` grounder: the same prompt and parser, with the model loaded in-process.

``transformers`` ``AutoModelForImageTextToText`` + ``AutoProcessor`` on the CPU or a GPU,
greedy decoding. Loaded models are cached per path. The checkpoint must be an
image-text-to-text model (checked on ``config.model_type``, never on the path's name). Prompts
take the style the checkpoint was trained with (its ``inspector_prompt.json``, full by default).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

from inspector_agent.grounding.base import GroundingError, register_grounder
from inspector_agent.grounding.model_io import ModelGrounder, Progress, model_pixels
from inspector_agent.prompts import PromptBundle, compact_prompt_of
from inspector_agent.settings import Settings

MAX_NEW_TOKENS = 512


class LocalBackend:
    """A model and its processor in this process; a :class:`TextBackend`."""

    for_openai = False

    def __init__(
        self,
        path: str,
        max_new_tokens: int = MAX_NEW_TOKENS,
        generate_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.model = path
        self.max_new_tokens = max_new_tokens
        self.generate_kwargs = generate_kwargs or {}  # extra ``generate()`` options
        self.processor, self.network = _load(path)
        size = getattr(self.processor.image_processor, "size", None) or {}
        self.max_pixels = model_pixels(size.get("longest_edge"))
        try:
            self.compact = compact_prompt_of(path)
        except ValueError as exc:
            raise GroundingError(f"The model at {path} cannot be used: {exc}") from None
        self._lock = threading.Lock()  # one generate() at a time per loaded model

    def _one(self, bundle: PromptBundle) -> str:
        text = self.processor.apply_chat_template(bundle.messages, add_generation_prompt=True)
        inputs = self.processor(text=[text], images=bundle.images, return_tensors="pt")
        inputs = inputs.to(self.network.device)
        with self._lock, torch.inference_mode():
            out = self.network.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                **self.generate_kwargs,
            )
        new = out[0, inputs["input_ids"].shape[1] :]
        return self.processor.tokenizer.decode(new, skip_special_tokens=True)

    def generate(
        self, prompts: Sequence[PromptBundle], concurrency: int = 1, on_done: Progress | None = None
    ) -> list[str | GroundingError]:
        """Outputs in order, one prompt at a time (``concurrency`` has no effect in-process)."""
        outputs: list[str | GroundingError] = []
        for index, bundle in enumerate(prompts):
            try:
                outputs.append(self._one(bundle))
            except (RuntimeError, ValueError) as exc:
                outputs.append(GroundingError(f"The local model failed on this image: {exc}"))
            if on_done:
                on_done(index)
        return outputs


@cache
def _load(path: str) -> tuple[Any, Any]:
    """Processor and model of a checkpoint, loaded once per path (GPU when available)."""
    if not Path(path).exists() and Path(path).is_absolute():
        raise GroundingError(f"The model checkpoint {path} does not exist.")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise GroundingError(f"The model at {path} cannot be loaded: {_first_line(exc)}") from None
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise GroundingError(
            f"The model at {path} is a {config.model_type!r} model, not an image-and-text model."
        )
    try:
        processor = AutoProcessor.from_pretrained(path)
        network = AutoModelForImageTextToText.from_pretrained(path, dtype="auto")
    except (OSError, ValueError) as exc:
        raise GroundingError(f"The model at {path} cannot be loaded: {_first_line(exc)}") from None
    processor.tokenizer.padding_side = "left"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return processor, network.to(device).eval()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def local_backend(settings: Settings, **options: Any) -> LocalBackend:
    """A backend for ``settings.model_path`` (a clear error when none is set)."""
    if not settings.model_path:
        raise GroundingError("No local model is configured (set INSPECTOR_MODEL_PATH or --model).")
    return LocalBackend(settings.model_path, **options)


@register_grounder("local")
def make_local(settings: Settings, **options: Any) -> ModelGrounder:
    """Registry factory: the in-process model, with the expert grounder as fallback."""
    return ModelGrounder("local", settings, lambda: local_backend(settings, **options))
