"""The ``vlm`` grounder: the multimodal model behind an OpenAI-compatible server (vLLM).

Images travel as base64 PNG data URLs only. Sampling is explicit (greedy), every request has
a timeout and a bounded number of retries, batches run concurrently under a semaphore, and
any failure becomes a supervisor-readable message (never the server's address or key) after
which the inspection is answered by the expert grounder. Prompts take the style the served
checkpoint was trained with (its ``inspector_prompt.json``), read from the checkpoint directory:
``checkpoint`` when given (``INSPECTOR_MODEL_PATH``), else the served model's name when it is a
local directory (vLLM names a model after the path it was started with).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import openai

from inspector_agent.grounding.base import GroundingError, register_grounder
from inspector_agent.grounding.model_io import ModelGrounder, Progress
from inspector_agent.prompts import DEFAULT_MAX_PIXELS, PromptBundle, compact_prompt_of
from inspector_agent.settings import Settings

T = TypeVar("T")
MAX_TOKENS = 512
SERVER = "the model server"


def api_base(url: str) -> str:
    """The ``/v1`` base of an OpenAI-compatible server given with or without it."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def describe_error(exc: BaseException, timeout_s: float) -> str:
    """A one-line message for a failed request, without the server's address or key."""
    if isinstance(exc, openai.APITimeoutError):
        return f"{SERVER.capitalize()} did not answer within {timeout_s:g} s."
    if isinstance(exc, openai.APIConnectionError):
        return f"{SERVER.capitalize()} is unreachable or closed the connection."
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return f"{SERVER.capitalize()} refused the configured API key."
    if isinstance(exc, openai.APIStatusError):
        return f"{SERVER.capitalize()} returned an error (HTTP {exc.status_code})."
    if isinstance(exc, openai.APIResponseValidationError | ValueError | TypeError):
        return f"{SERVER.capitalize()} sent a response that is not a chat completion."
    return f"{SERVER.capitalize()} failed: {type(exc).__name__}."


class _EventLoop:
    """A private event loop in a daemon thread, so sync callers can run the async client
    from any thread (Gradio workers, the CLI) and connections are reused between calls."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="vlm-client").start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


class VlmBackend:
    """Chat completions against one server; a :class:`TextBackend` for :class:`ModelGrounder`."""

    for_openai = True

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        model: str | None = None,
        *,
        timeout_s: float = 60.0,
        retries: int = 2,
        max_tokens: int = MAX_TOKENS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        extra_body: dict[str, Any] | None = None,
        checkpoint: str | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.max_pixels = max_pixels
        self.extra_body = extra_body or {}
        self._loop = _EventLoop()
        self.client = self._loop.run(self._client(url, api_key, timeout_s, retries))
        self._model = model
        self._checkpoint = checkpoint
        self._compact: bool | None = None

    @staticmethod
    async def _client(url: str, key: str | None, timeout_s: float, retries: int) -> Any:
        """The client is created inside the private loop that will use it."""
        return openai.AsyncOpenAI(
            base_url=api_base(url), api_key=key or "EMPTY", timeout=timeout_s, max_retries=retries
        )

    @property
    def model(self) -> str:
        """The served model's name (asked of the server when not configured)."""
        if self._model is None:
            self._model = self._loop.run(self._discover())
        return self._model

    @property
    def compact(self) -> bool:
        """Whether the served checkpoint was trained on the compact prompt (asked once)."""
        if self._compact is None:
            try:
                self._compact = compact_prompt_of(self._checkpoint or self.model)
            except ValueError as exc:
                raise GroundingError(f"The served model cannot be used: {exc}") from None
        return self._compact

    async def _discover(self) -> str:
        try:
            models = await self.client.models.list()
            names = [m.id for m in models.data]
        except Exception as exc:
            raise GroundingError(describe_error(exc, self.timeout_s)) from None
        if not names:
            raise GroundingError(f"{SERVER.capitalize()} serves no model.")
        return names[0]

    def health(self, timeout_s: float = 5.0) -> str | None:
        """``None`` when the server lists models within ``timeout_s``, else the problem."""

        async def probe() -> None:
            quick = self.client.with_options(timeout=timeout_s, max_retries=0)
            await quick.models.list()

        try:
            self._loop.run(probe())
        except Exception as exc:
            return describe_error(exc, timeout_s)
        return None

    async def complete(self, bundle: PromptBundle) -> str:
        """The model's text for one prompt; raises :class:`GroundingError` in plain words."""
        if self._model is None:
            self._model = await self._discover()
        try:
            response = await self.client.chat.completions.create(
                model=self._model,
                messages=bundle.messages,
                temperature=0.0,
                top_p=1.0,
                max_tokens=self.max_tokens,
                seed=0,
                extra_body=self.extra_body or None,
            )
        except Exception as exc:  # every client failure becomes a plain message
            raise GroundingError(describe_error(exc, self.timeout_s)) from None
        choices = getattr(response, "choices", None)
        message = (
            getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
        )
        if message is None:
            raise GroundingError(
                f"{SERVER.capitalize()} sent a response that is not a chat completion."
            )
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            raise GroundingError(f"{SERVER.capitalize()} sent an empty answer.")
        return text

    async def _generate(
        self, prompts: Sequence[PromptBundle], concurrency: int, on_done: Progress | None
    ) -> list[str | GroundingError]:
        if self._model is None:
            try:
                self._model = await self._discover()
            except GroundingError as exc:
                return [exc] * len(prompts)
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(index: int, bundle: PromptBundle) -> str | GroundingError:
            async with gate:
                try:
                    return await self.complete(bundle)
                except GroundingError as exc:
                    return exc
                finally:
                    if on_done:
                        on_done(index)

        return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(prompts))))

    def close(self) -> None:
        """Close the connections and stop the private event loop."""
        self._loop.run(self.client.close())
        self._loop.close()

    def generate(
        self, prompts: Sequence[PromptBundle], concurrency: int = 1, on_done: Progress | None = None
    ) -> list[str | GroundingError]:
        """One output (or the error that prevented it) per prompt, ``concurrency`` at a time."""
        return self._loop.run(self._generate(prompts, concurrency, on_done))


def vlm_backend(settings: Settings, **options: Any) -> VlmBackend:
    """A backend for the server in ``settings.model_url`` (a clear error when none is set)."""
    if not settings.model_url:
        raise GroundingError(
            "No model server is configured (set INSPECTOR_MODEL_URL or --model-url)."
        )
    return VlmBackend(
        settings.model_url,
        settings.model_api_key,
        settings.model_name,
        timeout_s=settings.model_timeout_s,
        retries=settings.model_retries,
        checkpoint=settings.model_path,
        **options,
    )


@register_grounder("vlm")
def make_vlm(settings: Settings, **options: Any) -> ModelGrounder:
    """Registry factory: the served model, with the expert grounder as fallback."""
    return ModelGrounder("vlm", settings, lambda: vlm_backend(settings, **options))
