"""One opened stage inside a chain: its counters, and the one helper every stage call takes.

:meth:`Slot.call` is the only place the engine calls a stage. It returns the stage's
:class:`~pipeline.stage.Release`, or an awaitable of one for an async stage, so the
engine's single loop can settle sync calls inline and leave the awaiting to its async edge.
When the route's plan has an observer, the helper also times the call and tells the
stage's watch what was fed, what came back and what is held.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple, cast

import structlog

from pipeline.plan import BoundStage, Method, StageObserver, StageWatch
from pipeline.stage import (
    NOTHING,
    AsyncStage,
    Channel,
    ChannelEnd,
    ErrorPolicy,
    Finding,
    Release,
    Stage,
)

log = structlog.get_logger("streamsieve.engine")


class _BrokenStage:
    """Stands in for a stage whose ``open`` raised: every call fails by its ``on_error``."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error

    @property
    def held(self) -> int:
        return 0

    def feed(self, text: str) -> Release:
        raise self.error

    def finish(self, end: ChannelEnd) -> Release:
        raise self.error


class Slot:
    """One opened stage inside a chain, with its running counters."""

    __slots__ = (
        "base",
        "bound",
        "fed",
        "held",
        "held_ms",
        "is_async",
        "observer",
        "stage",
        "tail",
        "watch",
    )

    def __init__(self, bound: BoundStage, channel: Channel, observer: StageObserver | None) -> None:
        self.bound = bound
        self.is_async = bound.factory.is_async
        self.observer = observer
        self.watch: StageWatch | None = None
        self.stage = self._open(channel)
        self.fed = 0
        """Characters fed since the channel opened (offsets of findings)."""
        self.base = 0
        """Offset at which the current stage instance started (after a restart)."""
        self.held = 0
        """What the stage held after its last successful call."""
        self.held_ms = 0.0
        """How long the held text has waited while the stream kept flowing."""
        self.tail: str | None = "" if bound.on_error is ErrorPolicy.PASS else None
        """The latest input, kept only under ``on_error: pass`` so a failing stage's held
        text can still be released rather than lost."""

    def _open(self, channel: Channel) -> Stage | AsyncStage | _BrokenStage:
        if self.observer is not None:
            self.watch = self.observer.watch(self.bound.id, channel)
        try:
            return self.bound.factory.open(channel)
        except Exception as exc:  # e.g. a request-supplied schema the stage refuses
            log.exception(
                "stage_open_failed", stage=self.bound.id, channel=channel.key, error=str(exc)[:200]
            )
            return _BrokenStage(exc)

    def restart(self, channel: Channel) -> None:
        self.stage = self._open(channel)
        self.base = self.fed
        self.held = 0
        self.held_ms = 0.0
        if self.tail is not None:
            self.tail = ""

    def call(self, text: str, end: ChannelEnd | None) -> object:
        """The one stage-call helper: ``feed(text)``, then ``finish(end)`` at the channel's end.

        Returns a :class:`Release`, or an awaitable of one when the stage is async (its
        feed and finish awaited together); anything else is the stage's bug, which the
        caller turns into the ``on_error`` policy.
        """
        if end is None:
            return self._invoke(True, text)
        first = self._invoke(True, text) if text else NOTHING
        if isinstance(first, Release):
            second = self._invoke(False, end)
            if isinstance(second, Release):
                return merge_releases(first, second)
            return _merged(first, cast(Awaitable[Any], second))
        return self._feed_then_finish(first, end)

    async def _feed_then_finish(self, first: object, end: ChannelEnd) -> Release:
        release = await first if inspect.isawaitable(first) else first
        last = self._invoke(False, end)
        if inspect.isawaitable(last):
            last = await last
        if not isinstance(release, Release) or not isinstance(last, Release):
            raise TypeError(f"stage {self.bound.id!r} returned {type(release).__name__}")
        return merge_releases(release, last)

    def _invoke(self, feeding: bool, arg: Any) -> object:
        """Call ``feed`` or ``finish`` once, telling the watch (if any) how it went."""
        stage: Any = self.stage
        watch = self.watch
        if watch is None:
            return stage.feed(arg) if feeding else stage.finish(arg)
        method: Method = "feed" if feeding else "finish"
        fed = arg if feeding else ""
        started = time.perf_counter()
        try:
            result = stage.feed(arg) if feeding else stage.finish(arg)
        except Exception as exc:
            watch.called(method, fed, None, 0, time.perf_counter() - started, exc)
            raise
        if type(result) is not Release and inspect.isawaitable(result):
            return _watched(watch, method, fed, result, started, stage)
        release = result if isinstance(result, Release) else None
        watch.called(method, fed, release, stage.held, time.perf_counter() - started, None)
        return result


def checked(slot: Slot, value: object) -> Release | Awaitable[Any]:
    """A stage call's result as the loop accepts it; any other type is the stage's bug."""
    if isinstance(value, Release) or inspect.isawaitable(value):
        return value
    raise TypeError(f"stage {slot.bound.id!r} returned {type(value).__name__}")


async def _merged(first: Release, second: Awaitable[Any]) -> Release:
    return merge_releases(first, await second)


async def _watched(
    watch: StageWatch,
    method: Method,
    fed: str,
    result: Awaitable[Any],
    started: float,
    stage: Any,
) -> Any:
    """Await an async stage call and tell the watch, a time-out's cancellation included."""
    try:
        release = await result
    except BaseException as exc:
        watch.called(method, fed, None, 0, time.perf_counter() - started, exc)
        raise
    done = release if isinstance(release, Release) else None
    watch.called(method, fed, done, stage.held, time.perf_counter() - started, None)
    return release


class Pending(NamedTuple):
    """Where :meth:`Chain.start` stopped: one stage's call to await, and the run so far."""

    at: int
    """The slot whose call is awaited; the loop goes on from the next one."""
    fed: str
    """What that slot was fed (its failure policy needs it)."""
    early: bool
    """The call is the early ``finish`` of a ``pass`` overflow, not the feed itself."""
    call: Awaitable[Any]
    end: ChannelEnd | None
    block: str | None
    findings: list[Finding]


def merge_releases(first: Release, second: Release) -> Release:
    """Two consecutive releases of one stage or chain as one."""
    if first is NOTHING:
        return second
    return Release(
        first.text + second.text, first.block or second.block, first.findings + second.findings
    )
