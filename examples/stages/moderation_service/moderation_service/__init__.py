"""``type: moderation_service``: ask an external moderation HTTP service about each window.

The stage holds text until a sentence ends (``.``, ``!`` or ``?`` and the whitespace after
them, or a line break) or ``window_chars`` characters have gathered, then POSTs the window to the
service and releases it only if the service did not flag it. Windows depend only on the
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
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import Field, field_validator

from pipeline.stage import Channel, ChannelEnd, Finding, Release, StageConfig, StageFactory

__all__ = ["ModerationServiceConfig", "ModerationServiceFactory", "ModerationServiceStage"]

_SENTENCE_END = re.compile(r"[.!?]+\s|\n")


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


def windows(text: str, size: int) -> tuple[list[str], str]:
    """The complete windows at the start of ``text``, and the rest (shorter than a window)."""
    out: list[str] = []
    start = 0
    while True:
        # Searching inside the window only: a full window ends at the same place whether or
        # not a sentence also ends on its last character.
        end = _SENTENCE_END.search(text, start, start + size)
        if end is not None:
            out.append(text[start : end.end()])
            start = end.end()
        elif len(text) - start >= size:
            out.append(text[start : start + size])
            start += size
        else:
            return out, text[start:]


class ModerationServiceStage:
    """One channel: the text waiting for its window to close, and its offset."""

    __slots__ = ("_buffer", "_factory", "_offset")

    def __init__(self, factory: ModerationServiceFactory) -> None:
        self._factory = factory
        self._buffer = ""
        self._offset = 0

    @property
    def held(self) -> int:
        return len(self._buffer)

    async def feed(self, text: str) -> Release:
        ready, self._buffer = windows(self._buffer + text, self._factory.config.window_chars)
        return await self._judge(ready)

    async def finish(self, end: ChannelEnd) -> Release:
        rest, self._buffer = self._buffer, ""
        return await self._judge([rest] if rest else [])

    async def _judge(self, ready: list[str]) -> Release:
        """Ask about every window at once; release them in order up to a blocked one."""
        if not ready:
            return Release()
        verdicts = await self._factory.moderate(ready)
        config = self._factory.config
        out: list[str] = []
        findings: list[Finding] = []
        for window, categories in zip(ready, verdicts, strict=True):
            start, self._offset = self._offset, self._offset + len(window)
            if categories is None:
                out.append(window)
                continue
            action = "blocked" if config.action == "block" else "masked"
            found = Finding(f"moderation:{','.join(categories)}", action, start, self._offset)
            findings.append(found)
            if config.action == "block":
                return Release(
                    "".join(out),
                    block=f"moderation service: {found.rule}",
                    findings=tuple(findings),
                )
            out.append(config.mask)
        return Release("".join(out), findings=tuple(findings))


class ModerationServiceFactory(StageFactory[ModerationServiceConfig]):
    """Holds the endpoint and credentials; every opened stage calls through ``moderate``."""

    config_model = ModerationServiceConfig
    is_async: ClassVar[bool] = True

    def __init__(self, config: ModerationServiceConfig) -> None:
        super().__init__(config)
        self.headers = {"Content-Type": "application/json"}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ValueError(f"environment variable {config.api_key_env} is not set")
            self.headers["Authorization"] = f"Bearer {key}"

    @property
    def max_holdback(self) -> int:
        return self.config.window_chars

    def open(self, channel: Channel) -> ModerationServiceStage:
        return ModerationServiceStage(self)

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
