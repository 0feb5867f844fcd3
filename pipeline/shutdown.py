"""Graceful shutdown: stop accepting, let streams finish, then end the rest properly.

Every filtered stream registers itself in :class:`ActiveStreams` while it runs. At the end
of the grace period :meth:`ActiveStreams.stop_all` cancels each stream's handler with a
reason; the handler catches that cancellation and ends its stream with the protocol's own
error event (the driver's ``fail``), so an SDK raises a clear error instead of seeing a
truncated stream that it might record as a short success.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

import structlog
from aiohttp import web

if TYPE_CHECKING:
    from pipeline.state import ProxyState
    from pipeline.stats import RequestStats

log = structlog.get_logger("streamsieve.shutdown")

SHUTDOWN_CODE = "server_shutdown"
SHUTDOWN_MESSAGE = "the proxy is shutting down; retry the request"
_STOPPED_WAIT_S = 2.0
"""How long stopped streams get to write their error event before the server closes."""


class StreamWatcher(Protocol):
    """Told when a filtered stream starts and ends (the metrics' open-streams gauge)."""

    def stream_opened(self, stats: RequestStats) -> None: ...

    def stream_closed(self, stats: RequestStats) -> None: ...


class LiveStream:
    """One running stream: its handler task, and why it was stopped, if it was."""

    __slots__ = ("stats", "stop_reason", "task")

    def __init__(self, task: asyncio.Task[object] | None, stats: RequestStats) -> None:
        self.task = task
        self.stats = stats
        self.stop_reason: str | None = None

    def stopped_by_shutdown(self, exc: BaseException) -> str | None:
        """The stop message if ``exc`` is this stream being stopped, else None.

        Un-cancels the task in that case, so the handler may still await its final write.
        """
        if self.stop_reason is None or not isinstance(exc, asyncio.CancelledError):
            return None
        if self.task is not None:
            self.task.uncancel()
        return self.stop_reason


class ActiveStreams:
    """The filtered streams running in this process."""

    def __init__(self) -> None:
        self._live: set[LiveStream] = set()
        self.watchers: list[StreamWatcher] = []

    def __len__(self) -> int:
        return len(self._live)

    def open(self, stats: RequestStats) -> LiveStream:
        """Register the calling handler's stream; pair with :meth:`close` in a ``finally``."""
        live = LiveStream(asyncio.current_task(), stats)
        self._live.add(live)
        for watcher in self.watchers:
            watcher.stream_opened(stats)
        return live

    def close(self, live: LiveStream) -> None:
        self._live.discard(live)
        for watcher in self.watchers:
            watcher.stream_closed(live.stats)

    def stop_all(self, message: str = SHUTDOWN_MESSAGE) -> int:
        """Cancel every running stream with ``message``; how many there were."""
        count = 0
        for live in self._live:
            if live.stop_reason is None and live.task is not None:
                live.stop_reason = message
                live.task.cancel()
                count += 1
        return count


async def drain(runner: web.AppRunner, state: ProxyState, grace_s: float) -> None:
    """Shut a proxy runner down gracefully within about ``grace_s`` seconds.

    New connections are refused at once (the listening sockets close) and requests arriving
    on kept-alive connections get 503, so a load balancer moves traffic elsewhere. Requests
    in flight have ``grace_s`` to finish; streams still running then end with an error
    event, and whatever remains is cancelled by aiohttp's own shutdown.
    """
    state.admission.draining = True
    for site in list(runner.sites):
        await site.stop()
    in_flight = state.admission.in_flight
    log.info("draining", in_flight=in_flight, grace_s=grace_s)
    if not await state.admission.wait_idle(grace_s):
        stopped = state.streams.stop_all()
        log.warning("grace_period_over", streams_stopped=stopped)
        await state.admission.wait_idle(_STOPPED_WAIT_S)
    await runner.cleanup()
    log.info("stopped", unfinished=state.admission.in_flight)
