"""``type: moderation_service``: ask an external moderation HTTP service about each window.

The framework (:class:`pipeline.scanner.WindowFactory`) holds text until a sentence ends
(``.``, ``!`` or ``?`` and the whitespace after them, or a line break) or ``window_chars``
characters have gathered; this stage POSTs each window to the service, and the window is
released only if the service did not flag it. Windows depend only on the
text, never on how it was split, so the service sees the same windows however the upstream
chunked the stream.

The request and reply follow OpenAI's moderation API, so the stage works with it and with
any service speaking the same shape: it sends ``{"input": window}`` (plus ``model`` when
set) and reads ``results[0].flagged`` and ``results[0].categories``.

Time-outs and failures are the engine's business: each call is bounded by the stage's
``timeout_ms`` and a raised error or a time-out applies ``on_error`` — ``block`` (the
default, fail closed), ``mask``, or ``pass`` (fail open).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import aiohttp
from pydantic import Field, field_validator

from pipeline.scanner import KEEP, Action, Decision, Hit, WindowFactory
from pipeline.stage import StageConfig

__all__ = ["ModerationServiceConfig", "ModerationServiceFactory"]


class ModerationServiceConfig(StageConfig):
    """Keys of ``type: moderation_service``."""

    type: str = "moderation_service"
    url: str
    """The service's endpoint, e.g. ``https://api.openai.com/v1/moderations``."""
    model: str | None = None
    """Sent as ``model`` when set (OpenAI: ``omni-moderation-latest``)."""
    api_key_env: str | None = None
    """Environment variable holding the service's key, sent as ``Authorization: Bearer``."""
    window_chars: int = Field(default=400, ge=1)
    """Longest window sent at once, and so the most this stage holds back."""
    action: Literal["block", "mask"] = "block"
    """``block`` ends the response at a flagged window; ``mask`` replaces it with ``mask``."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url


class ModerationServiceFactory(WindowFactory[ModerationServiceConfig]):
    """Holds the endpoint and credentials; the framework windows each channel."""

    config_model = ModerationServiceConfig

    def __init__(self, config: ModerationServiceConfig) -> None:
        super().__init__(config)
        self.headers = {"Content-Type": "application/json"}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ValueError(f"environment variable {config.api_key_env} is not set")
            self.headers["Authorization"] = f"Bearer {key}"

    @property
    def window_chars(self) -> int:
        return self.config.window_chars

    async def on_windows(self, ready: Sequence[Hit]) -> list[Decision]:
        """One service call per window, all at once; a flagged window is blocked or masked."""
        verdicts = await self.moderate([window.text for window in ready])
        return [self._decide(categories) for categories in verdicts]

    def _decide(self, categories: list[str] | None) -> Decision:
        if categories is None:
            return KEEP
        rule = f"moderation:{','.join(categories)}"
        if self.config.action == "mask":
            return Decision(Action.MASK, rule=rule)
        return Decision(Action.BLOCK, f"moderation service: {rule}", rule)

    async def moderate(self, texts: list[str]) -> list[list[str] | None]:
        """Per text, the flagged categories (sorted), or None when it is not flagged.

        A session per call keeps the example free of lifecycle hooks: the stage contract
        has no shutdown call to close a pooled session on. Any HTTP or format error raises,
        so the engine applies ``on_error``.
        """
        async with aiohttp.ClientSession(headers=self.headers) as session:
            replies = await asyncio.gather(*(self._ask(session, text) for text in texts))
        return [_flagged(reply) for reply in replies]

    async def _ask(self, session: aiohttp.ClientSession, text: str) -> Any:
        body: dict[str, Any] = {"input": text}
        if self.config.model:
            body["model"] = self.config.model
        async with session.post(self.config.url, json=body, raise_for_status=True) as reply:
            return await reply.json()


def _flagged(reply: Any) -> list[str] | None:
    """The flagged categories of a moderation reply, or None; ValueError if malformed."""
    try:
        result: Mapping[str, Any] = reply["results"][0]
        flagged = bool(result["flagged"])
        categories: Mapping[str, bool] = result.get("categories") or {}
    except (KeyError, IndexError, TypeError):
        raise ValueError("the moderation service's reply has no results[0].flagged") from None
    if not flagged:
        return None
    return sorted(name for name, hit in categories.items() if hit) or ["flagged"]
