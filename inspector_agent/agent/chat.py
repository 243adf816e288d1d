"""An optional OpenAI-compatible chat model that phrases answers (facts stay the agent's)."""

from __future__ import annotations

from dataclasses import dataclass

from openai import OpenAI, OpenAIError

from inspector_agent.settings import Settings


@dataclass
class OpenAIChat:
    """Chat completions against ``chat_model_url``; any failure returns an empty string."""

    client: OpenAI
    model: str

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChat:
        """The client for the configured chat model."""
        client = OpenAI(
            base_url=settings.chat_model_url,
            api_key=settings.model_api_key or "none",
            timeout=settings.model_timeout_s,
            max_retries=settings.model_retries,
        )
        return cls(client=client, model=settings.chat_model_name or "default")

    def complete(self, system: str, user: str) -> str:
        """The model's reply, or ``""`` when the server fails (the caller keeps its own text)."""
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                temperature=0.0,
            )
        except OpenAIError:
            return ""
        return (response.choices[0].message.content or "").strip()
