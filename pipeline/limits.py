"""Request limits the proxy enforces itself: body size and time, concurrency, the drain gate.

Upstream timeouts live with the upstream (``connect_timeout_s``, ``idle_timeout_s``) because
aiohttp's client enforces them; the client's header timeout is :mod:`pipeline.serving`'s.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiohttp import web

_READ_CHUNK = 64 * 1024


class BodyTimeoutError(Exception):
    """The client did not send its whole body within ``limits.client_body_timeout_s``."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"the request body did not arrive within {timeout_s:g} s")


class BodyTooLargeError(Exception):
    """The request body is over ``limits.max_body_bytes``; answered with 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the proxy's limit of {limit} bytes")
        self.limit = limit


async def read_body(request: web.Request, limit: int, timeout_s: float | None = None) -> bytes:
    """The whole request body, refusing it as soon as it passes ``limit`` bytes.

    Read here rather than with aiohttp's ``client_max_size`` so the limit follows a config
    reload and the refusal can be written in the client's protocol shape, not as plain text.
    A declared ``Content-Length`` over the limit is refused before reading anything, and a
    body still incomplete after ``timeout_s`` (a client trickling bytes to hold a slot) is
    :class:`BodyTimeoutError`.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLargeError(limit)
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.read(_READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLargeError(limit)
                parts.append(chunk)
    except TimeoutError:
        assert timeout_s is not None
        raise BodyTimeoutError(timeout_s) from None
    return b"".join(parts)


class Level(Protocol):
    """Something that mirrors the in-flight count (a Prometheus gauge)."""

    def inc(self, amount: float = 1) -> None: ...

    def dec(self, amount: float = 1) -> None: ...


class Admission:
    """Counts requests being proxied, turns away the excess, and closes the gate on drain.

    Requests are refused rather than queued: a queued LLM request would only add its wait
    to a time to first token the client already finds too long, while a 503 with
    ``Retry-After`` lets a load balancer or SDK retry try another instance at once.
    """

    __slots__ = ("_gauge", "_idle", "draining", "in_flight")

    def __init__(self, gauge: Level | None = None) -> None:
        self._gauge = gauge
        self.in_flight = 0
        self.draining = False
        """Set at shutdown: every new request is refused so clients go elsewhere."""
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self, limit: int | None) -> bool:
        """Admit one request unless draining or ``limit`` requests are already in flight."""
        if self.draining or (limit is not None and self.in_flight >= limit):
            return False
        self.in_flight += 1
        self._idle.clear()
        if self._gauge is not None:
            self._gauge.inc()
        return True

    def leave(self) -> None:
        """One admitted request finished (whatever its outcome)."""
        self.in_flight -= 1
        if self._gauge is not None:
            self._gauge.dec()
        if self.in_flight == 0:
            self._idle.set()

    async def wait_idle(self, within_s: float) -> bool:
        """Whether every admitted request finished within ``within_s`` seconds."""
        try:
            async with asyncio.timeout(within_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
