"""What the ``vlm`` and ``local`` grounders share: prompt in, parsed answer out, expert fallback.

A backend only turns built prompts into text; :class:`ModelGrounder` builds the prompts with
the shared builder (in the style the checkpoint was trained with: full or compact), reads the
answers with the shared parser, maps boxes back to original pixels, and answers with the
expert grounder (saying why) when the model cannot.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Protocol

from PIL import Image

from inspector_agent.answer import ParsedAnswer, parse_answer
from inspector_agent.grounding.base import Grounder, GroundingError, GroundingRequest, make_grounder
from inspector_agent.imaging import ImageError, load_image, resize_for_model
from inspector_agent.prompts import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    DEFAULT_QUESTION,
    PromptBundle,
    build_messages,
    image_data_url,
)
from inspector_agent.schema import Defect, InspectionResult, ParseStatus, Verdict
from inspector_agent.settings import Settings

Progress = Callable[[int], None]  # called with the index of each finished item
MAX_CACHED_URLS = 256
_DATA_URLS: dict[str, str] = {}  # pixel digest -> base64 PNG data URL
UNUSABLE = (ParseStatus.INVALID, ParseStatus.EMPTY, ParseStatus.OPTION)


class TextBackend(Protocol):
    """Turns built prompts into model text; failures come back as ``GroundingError`` items."""

    model: str
    for_openai: bool
    max_pixels: int
    compact: bool  # the checkpoint was trained on the builder's compact prompt

    def generate(
        self, prompts: Sequence[PromptBundle], concurrency: int = 1, on_done: Progress | None = None
    ) -> list[str | GroundingError]:
        """One output (or the error that prevented it) per prompt, in order."""
        ...


@dataclass
class Answered:
    """A model answer read against the prompt it came from."""

    text: str
    parsed: ParsedAnswer
    bundle: PromptBundle


def build_prompt(
    request: GroundingRequest, for_openai: bool, max_pixels: int, compact: bool = False
) -> PromptBundle:
    """The shared prompt for one request (references loaded safely from disk, then cached)."""
    references = []
    for path in request.references.paths:
        try:
            references.append(_reference(str(path), path.stat().st_mtime_ns, max_pixels))
        except (ImageError, OSError) as exc:
            raise GroundingError(f"reference image {path.name} cannot be read: {exc}") from None
    bundle = build_messages(
        references,
        request.query,
        request.question or DEFAULT_QUESTION,
        request.knowledge,
        max_pixels=max_pixels,
        compact=compact,
    )
    return with_data_urls(bundle) if for_openai else bundle


@lru_cache(maxsize=256)
def _reference(path: str, mtime_ns: int, max_pixels: int) -> Image.Image:
    """A reference image at its model size, decoded and resized once per file version."""
    return resize_for_model(load_image(path), DEFAULT_MIN_PIXELS, max_pixels)[0]


def with_data_urls(bundle: PromptBundle) -> PromptBundle:
    """The bundle with each image placeholder replaced by a base64 PNG ``image_url`` part.

    Encodings are cached by pixel content, so a product's references are encoded once.
    """
    images = iter(bundle.images)
    messages = []
    for message in bundle.messages:
        content = message["content"]
        if isinstance(content, list):
            content = [_url_part(next(images)) if p.get("type") == "image" else p for p in content]
        messages.append({**message, "content": content})
    return replace(bundle, messages=messages)


def _url_part(image: Image.Image) -> dict[str, Any]:
    digest = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() + f"{image.size}"
    url = _DATA_URLS.get(digest)
    if url is None:
        if len(_DATA_URLS) >= MAX_CACHED_URLS:
            _DATA_URLS.pop(next(iter(_DATA_URLS)))  # oldest first
        url = _DATA_URLS[digest] = image_data_url(image)
    return {"type": "image_url", "image_url": {"url": url}}


def result_from_answer(answer: Answered, grounder: str, model: str) -> InspectionResult:
    """An inspection result from a readable answer, boxes in original pixels."""
    cmap = answer.bundle.query_map
    width, height = cmap.original_width, cmap.original_height
    defects = []
    for label, box in answer.parsed.original_defects(cmap):
        clipped = box.clip(width, height)
        if clipped.area > 0:
            defects.append(Defect(label, clipped, 1.0, round(clipped.area)))
    anomaly = bool(answer.parsed.anomaly)
    notes = []
    if anomaly and not defects:
        notes.append("The model reports a defect but gave no usable box.")
    return InspectionResult(
        verdict=Verdict.DEFECTIVE if anomaly else Verdict.OK,
        pred_score=1.0 if anomaly else 0.0,
        defects=defects,
        threshold=0.5,
        grounder=grounder,
        model=model,
        reasoning=answer.parsed.think,
        parse_status=answer.parsed.status,
        notes=notes,
        image_size=(width, height),
    )


class ModelGrounder:
    """A grounder whose answers come from a multimodal model through a :class:`TextBackend`."""

    def __init__(self, name: str, settings: Settings, backend: Callable[[], TextBackend]) -> None:
        self.name = name
        self.settings = settings
        self._make_backend = backend
        self._backend: TextBackend | None = None
        self._expert: Grounder | None = None

    @property
    def backend(self) -> TextBackend:
        """The backend, created on first use (loading a model or opening a client)."""
        if self._backend is None:
            self._backend = self._make_backend()
        return self._backend

    def ground(self, request: GroundingRequest) -> InspectionResult:
        """Inspect one query; falls back to the expert grounder when the model cannot answer."""
        return self.ground_many([request])[0]

    def ground_many(
        self,
        requests: Sequence[GroundingRequest],
        concurrency: int = 1,
        on_done: Progress | None = None,
    ) -> list[InspectionResult]:
        """Inspect several queries, up to ``concurrency`` at once; results in request order."""
        start = time.perf_counter()
        try:
            backend = self.backend
            compact = backend.compact  # a served model may have to be asked which it is
        except GroundingError as exc:
            return [self._fallback(r, str(exc), ParseStatus.EMPTY) for r in requests]
        bundles = [
            build_prompt(r, backend.for_openai, backend.max_pixels, compact) for r in requests
        ]
        outputs = backend.generate(bundles, concurrency, on_done)
        elapsed = (time.perf_counter() - start) * 1000.0 / max(1, len(requests))
        results = []
        # Only ask for the model's name when it answered: when the server is down, asking
        # again raises past the fallback.
        failed = all(isinstance(o, GroundingError) for o in outputs)
        model = "" if failed else backend.model
        for request, bundle, output in zip(requests, bundles, outputs, strict=True):
            result = self._read(request, bundle, output, model)
            result.latency_ms = result.latency_ms or elapsed
            results.append(result)
        return results

    def _read(
        self,
        request: GroundingRequest,
        bundle: PromptBundle,
        output: str | GroundingError,
        model: str,
    ) -> InspectionResult:
        if isinstance(output, GroundingError):
            return self._fallback(request, str(output), ParseStatus.EMPTY)
        parsed = parse_answer(output)
        if parsed.status in UNUSABLE or parsed.anomaly is None:
            reason = (
                f"The model's answer could not be read ({parsed.error or parsed.status.value})."
            )
            return self._fallback(request, reason, parsed.status, parsed.raw)
        return result_from_answer(Answered(output, parsed, bundle), self.name, model)

    def _fallback(
        self,
        request: GroundingRequest,
        reason: str,
        status: ParseStatus,
        raw: str = "",
    ) -> InspectionResult:
        """The expert's answer, marked as a fallback with the reason in supervisor words."""
        if self._expert is None:
            self._expert = make_grounder("expert", self.settings)
        result = self._expert.ground(replace(request, references=request.expert_references))
        result.fell_back = True
        result.parse_status = status
        result.notes.insert(0, f"{reason} Answered with the expert grounder instead.")
        if raw:
            result.notes.append(f"model output (unreadable): {raw[:200]}")
        return result


def model_pixels(processor_max: int | None) -> int:
    """The prompt's pixel budget: the builder's default, capped by the model's processor."""
    return min(DEFAULT_MAX_PIXELS, processor_max) if processor_max else DEFAULT_MAX_PIXELS
