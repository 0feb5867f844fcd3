"""Run helpers: drive a stage, a factory or a protocol driver the way the proxy does.

No hypothesis here: these work in a plain install, for trying a stage by hand and for
tests that fix their chunkings themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import itertools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.driver import StreamDriver
from pipeline.sse import SSEDecoder
from pipeline.stage import (
    AsyncStage,
    Channel,
    ChannelEnd,
    ChannelKind,
    Finding,
    Release,
    Stage,
    StageFactory,
)

__all__ = [
    "JSON_CHANNEL",
    "TEXT_CHANNEL",
    "StageRun",
    "arun_stage",
    "drive_stream",
    "fresh",
    "run_factory",
    "run_stage",
    "split_at",
]

TEXT_CHANNEL = Channel(key="choice0.content", kind=ChannelKind.TEXT)
JSON_CHANNEL = Channel(key="choice0.tool0.arguments", kind=ChannelKind.JSON)


@dataclass(slots=True)
class StageRun:
    """What one stage did with one chunked channel."""

    text: str = ""
    """Everything released, in order, until the end or the block."""
    block: str | None = None
    findings: list[Finding] = field(default_factory=list)
    max_held: int = 0
    """The most characters the stage held after any single call."""
    held_after_finish: int = 0
    releases: list[str] = field(default_factory=list)
    """What each call released (the last entry is ``finish``'s), for latency assertions."""


class _Driver:
    """Calls stage methods; awaits async ones on one private event loop, made on first need.

    One loop for a whole run (not one per call) so an async stage may keep loop-bound
    objects, such as an HTTP client, across its calls.
    """

    __slots__ = ("_runner",)

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None

    def __enter__(self) -> _Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._runner.close()

    def call(self, value: Release | Awaitable[Release]) -> Release:
        if not inspect.isawaitable(value):
            return value
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(_awaited(value))


async def _awaited(value: Awaitable[Release]) -> Release:
    return await value


def run_stage(
    stage: Stage | AsyncStage,
    chunks: Sequence[str],
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> StageRun:
    """Feed ``chunks`` one by one, then ``finish``; stop at the first block.

    Works for sync stages directly and for async stages outside a running event loop (use
    :func:`arun_stage` inside one).
    """
    run = StageRun()
    with _Driver() as driver:
        for chunk in chunks:
            if _absorb(run, driver.call(stage.feed(chunk)), stage):
                return run
        _absorb(run, driver.call(stage.finish(end)), stage)
    run.held_after_finish = stage.held
    return run


async def arun_stage(
    stage: Stage | AsyncStage,
    chunks: Sequence[str],
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> StageRun:
    """:func:`run_stage` for use inside a running event loop (async or sync stages)."""
    run = StageRun()
    for chunk in chunks:
        result: Any = stage.feed(chunk)
        if _absorb(run, await result if inspect.isawaitable(result) else result, stage):
            return run
    result = stage.finish(end)
    _absorb(run, await result if inspect.isawaitable(result) else result, stage)
    run.held_after_finish = stage.held
    return run


def _absorb(run: StageRun, release: Release, stage: Stage | AsyncStage) -> bool:
    run.text += release.text
    run.releases.append(release.text)
    run.findings.extend(release.findings)
    run.max_held = max(run.max_held, stage.held)
    if release.block:
        run.block = release.block
        return True
    return False


def drive_stream(driver: StreamDriver, raw: bytes, cuts: Sequence[int] = ()) -> bytes:
    """What a client receives when ``raw`` (an upstream SSE body) reaches ``driver`` in
    network reads cut at the byte offsets ``cuts``: the proxy's read loop, without sockets.
    """
    out = bytearray()
    decoder = SSEDecoder()

    async def run() -> None:
        points = [0, *sorted({c for c in cuts if 0 < c < len(raw)}), len(raw)]
        for a, b in itertools.pairwise(points):
            out.extend(await driver.feed(decoder.feed(raw[a:b])))
            if driver.done:
                return
        out.extend(await driver.feed(decoder.close()))
        out.extend(await driver.end())

    asyncio.run(run())
    return bytes(out)


def fresh(channel: Channel) -> Channel:
    """``channel`` as the first channel of a new response (its own ``scope``), as the
    engine opens it: module-level channels like :data:`TEXT_CHANNEL` must not carry state
    from one run into the next."""
    return dataclasses.replace(channel, scope={})


def run_factory(
    factory: StageFactory[Any],
    chunks: Sequence[str],
    channel: Channel = TEXT_CHANNEL,
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> StageRun:
    """Open a fresh stage from ``factory`` for ``channel`` and :func:`run_stage` it."""
    return run_stage(factory.open(fresh(channel)), chunks, end)


def split_at(text: str, cuts: Sequence[int]) -> list[str]:
    """``text`` cut at the given offsets (sorted, deduplicated, clipped to the text)."""
    points = sorted({c for c in cuts if 0 < c < len(text)})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]
