"""Test helpers for stage authors, shipped in the package so third parties test alike.

``run_stage`` drives a stage through any chunking exactly as the engine would, and
``chunkings`` is a hypothesis strategy that splits a text at random points (down to one
character per piece). Together they state the main property of a stage: the output does
not depend on where the upstream happened to split the text.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

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


def _resolve(value: Release | Awaitable[Release]) -> Release:
    if inspect.isawaitable(value):

        async def _await() -> Release:
            return await value

        return asyncio.run(_await())
    return value


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
    for chunk in chunks:
        if _absorb(run, _resolve(stage.feed(chunk)), stage):
            return run
    _absorb(run, _resolve(stage.finish(end)), stage)
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


def run_factory(
    factory: StageFactory[Any],
    chunks: Sequence[str],
    channel: Channel = TEXT_CHANNEL,
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> StageRun:
    """Open a fresh stage from ``factory`` for ``channel`` and :func:`run_stage` it."""
    return run_stage(factory.open(channel), chunks, end)


def split_at(text: str, cuts: Sequence[int]) -> list[str]:
    """``text`` cut at the given offsets (sorted, deduplicated, clipped to the text)."""
    points = sorted({c for c in cuts if 0 < c < len(text)})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


@st.composite
def chunkings(draw: st.DrawFn, text: str) -> list[str]:
    """A random split of ``text`` into non-empty pieces, down to one character each."""
    if len(text) <= 1:
        return [text] if text else []
    mode = draw(st.sampled_from(["random", "chars", "whole"]))
    if mode == "chars":
        return list(text)
    if mode == "whole":
        return [text]
    cuts = draw(st.lists(st.integers(min_value=1, max_value=len(text) - 1), max_size=len(text)))
    return split_at(text, cuts)
