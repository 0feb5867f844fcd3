"""Calls to the classifier: one pooled session, a process-wide call limit, a breaker.

Everything here is shared by all streams of one stage in one process: the aiohttp session
(made on first use, inside the running loop, and closed when the config is retired), the
semaphore that caps concurrent calls, and the circuit breaker. :meth:`Classifier.judge`
never raises for a failed call: it returns an ``error`` verdict, so the stage applies
``on_error`` to that window alone and the other windows of the stream keep their answers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from prometheus_client import CollectorRegistry

from filters.moderation.breaker import CircuitBreaker
from filters.moderation.config import ModerationConfig
from filters.moderation.metrics import ModerationMetrics


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classifier's answer about one window, or why there is none."""

    kind: Literal["ok", "flagged", "error"]
    categories: tuple[str, ...] = ()
    """The classifier's own category names (OpenAI's ``violence``, Llama Guard's ``S1``)."""
    reason: str = ""
    """For ``error``: ``timed out``, ``HTTP 503``, ``breaker open``..."""


class MalformedReplyError(Exception):
    """A classifier reply without the fields its API promises."""


class Classifier:
    """One classifier endpoint as every stream of a stage shares it."""

    def __init__(self, config: ModerationConfig, headers: Mapping[str, str]) -> None:
        self.config = config
        self.headers = dict(headers)
        self.breaker = CircuitBreaker(config.breaker_failures, config.breaker_reset_ms / 1000.0)
        self.metrics = ModerationMetrics(CollectorRegistry())
        """Until the proxy hands over its registry, metrics go to one nobody reads."""
        self.labels: tuple[str, str] = ("", config.id or config.type)
        """``route`` and ``stage`` labels, set when the proxy registers the metrics."""
        self._timeout_s = config.timeout_ms / 1000.0
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._calls = 0
        self._retired = False

    @property
    def session_open(self) -> bool:
        """Whether the pooled session is open (made on the first call, closed when retired)."""
        return self._session is not None and not self._session.closed

    async def judge(self, text: str) -> Verdict:
        """The verdict on ``text``, within ``timeout_ms`` of being asked (queueing included)."""
        started = time.perf_counter()
        if not self.breaker.allow():
            self.count("breaker_open")
            return Verdict("error", reason="circuit breaker open")
        try:
            async with asyncio.timeout(self._timeout_s):
                verdict = await self._call(text)
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        except TimeoutError:
            verdict = Verdict("error", reason="timed out")
        except (aiohttp.ClientError, MalformedReplyError, ValueError) as exc:
            verdict = Verdict("error", reason=str(exc)[:200] or type(exc).__name__)
        self.breaker.record(verdict.kind != "error")
        route, stage = self.labels
        self.metrics.latency.labels(route, stage, verdict.kind).observe(
            time.perf_counter() - started
        )
        self.count(verdict.kind)
        return verdict

    def count(self, verdict: str) -> None:
        """One more window decided with ``verdict`` (the stage counts cached ones)."""
        route, stage = self.labels
        self.metrics.verdicts.labels(route, stage, verdict).inc()

    async def _call(self, text: str) -> Verdict:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.max_concurrent_calls)
        async with self._slots:
            session = self._session_for_call()
            try:
                async with session.post(self.config.url, json=self._body(text)) as reply:
                    if reply.status >= 300:
                        raise aiohttp.ClientError(f"HTTP {reply.status}")
                    payload = await reply.json(content_type=None)
            finally:
                await self._call_done()
        return self._read(payload)

    def _body(self, text: str) -> dict[str, Any]:
        model = self.config.model
        if self.config.api == "openai":
            return {"input": text} | ({"model": model} if model else {})
        return {
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "temperature": 0,
            "max_tokens": 32,
        }

    def _read(self, payload: Any) -> Verdict:
        try:
            if self.config.api == "openai":
                return _openai_verdict(payload)
            return _llama_guard_verdict(payload)
        except (KeyError, IndexError, TypeError, AttributeError):
            raise MalformedReplyError(f"malformed {self.config.api} reply") from None

    def _session_for_call(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.config.max_concurrent_calls)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self.headers, raise_for_status=False
            )
        self._calls += 1
        return self._session

    async def _call_done(self) -> None:
        self._calls -= 1
        if self._retired and not self._calls:
            await self._close()

    async def aclose(self) -> None:
        """The config that built this stage is no longer in force (reload or shutdown).

        The session closes now if no call is running, else when the last one ends. A stream
        that started on this config and outlives it may still call: it gets a session of
        its own for that call, closed again when the call ends.
        """
        self._retired = True
        if not self._calls:
            await self._close()

    async def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _openai_verdict(payload: Any) -> Verdict:
    result: Mapping[str, Any] = payload["results"][0]
    if not result["flagged"]:
        return Verdict("ok")
    categories = result.get("categories") or {}
    return Verdict(
        "flagged", tuple(sorted(k for k, hit in categories.items() if hit)) or ("flagged",)
    )


def _llama_guard_verdict(payload: Any) -> Verdict:
    content: str = payload["choices"][0]["message"]["content"]
    lines = [line.strip() for line in content.strip().splitlines() if line.strip()]
    if lines and lines[0].lower() == "safe":
        return Verdict("ok")
    if lines and lines[0].lower() == "unsafe":
        codes = lines[1].split(",") if len(lines) > 1 else []
        return Verdict("flagged", tuple(c.strip() for c in codes if c.strip()) or ("unsafe",))
    raise MalformedReplyError("llama-guard reply is neither 'safe' nor 'unsafe'")
