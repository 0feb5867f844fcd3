"""``WindowFactory``: an async stage that judges whole windows of text (a moderation call).

The framework cuts the channel into windows that depend only on the text — a sentence
(``.``, ``!`` or ``?`` and the whitespace after, or a line break) or ``window_chars``
characters, whichever comes first — holds each until it is complete, asks the subclass's
``on_window`` about all complete windows at once, and applies the decisions in order. So
the service sees the same windows however the upstream chunked the stream, and the author
writes only the call.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from pipeline.scanner.decisions import Action, Decision, Hit
from pipeline.stage import (
    NOTHING,
    Channel,
    ChannelEnd,
    ChannelKind,
    Finding,
    Release,
    StageConfig,
    StageFactory,
)

__all__ = ["WindowFactory", "WindowStage", "windows"]

ConfigT = TypeVar("ConfigT", bound=StageConfig)
_SENTENCE_END = re.compile(r"[.!?]+\s|\n")


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


class WindowFactory(StageFactory[ConfigT]):
    """An async stage factory: subclasses set ``window_chars`` and write ``on_window``."""

    is_async: ClassVar[bool] = True
    rule: ClassVar[str] = "window"
    """The rule name of findings on a window."""

    @property
    def window_chars(self) -> int:
        """The longest window, and so the most a stage holds back (default 400)."""
        return 400

    @property
    def max_holdback(self) -> int:
        return self.window_chars

    async def on_window(self, window: Hit) -> Decision:
        """What to do with one complete window (``KEEP`` lets it out unchanged)."""
        raise NotImplementedError

    async def on_windows(self, ready: Sequence[Hit]) -> Sequence[Decision]:
        """Decisions for several windows that completed together (default: concurrently)."""
        return await asyncio.gather(*(self.on_window(window) for window in ready))

    def open(self, channel: Channel) -> WindowStage:
        return WindowStage(self, channel)


class WindowStage:
    """One channel: the text waiting for its window to close, and its offset."""

    __slots__ = ("_buffer", "_channel", "_factory", "_json", "_offset")

    def __init__(self, factory: WindowFactory[Any], channel: Channel) -> None:
        self._factory = factory
        self._channel = channel
        self._buffer = ""
        self._offset = 0
        self._json = channel.kind is ChannelKind.JSON

    @property
    def held(self) -> int:
        return len(self._buffer)

    async def feed(self, text: str) -> Release:
        ready, self._buffer = windows(self._buffer + text, self._factory.window_chars)
        return await self._judge(ready)

    async def finish(self, end: ChannelEnd) -> Release:
        rest, self._buffer = self._buffer, ""
        return await self._judge([rest] if rest else [])

    async def _judge(self, ready: list[str]) -> Release:
        """Ask about every window at once; release them in order up to a blocked one."""
        if not ready:
            return NOTHING
        hits, at = [], self._offset
        for window in ready:
            hits.append(Hit(self._factory.rule, window, at, at + len(window), self._channel))
            at += len(window)
        self._offset = at
        decisions = await self._factory.on_windows(hits)
        out: list[str] = []
        findings: list[Finding] = []
        for hit, decision in zip(hits, decisions, strict=True):
            action = decision.action
            if self._json and action in (Action.MASK, Action.REPLACE):
                # A window of a JSON document spans its quotes and brackets: rewriting it
                # cannot keep the document parseable, so failing closed means ending it.
                decision = Decision(Action.BLOCK)
                action = Action.BLOCK
            if action is not Action.KEEP:
                findings.append(
                    Finding(decision.rule or hit.rule, action.value, hit.start, hit.end)
                )
            if action is Action.BLOCK:
                self._buffer = ""
                reason = (
                    decision.text or f"{self._factory.config.type}: {decision.rule or hit.rule}"
                )
                return Release("".join(out), block=reason, findings=tuple(findings))
            out.append(self._written(hit.text, decision))
        return Release("".join(out), findings=tuple(findings))

    def _written(self, window: str, decision: Decision) -> str:
        """What goes out for a window that is not blocked."""
        if decision.action in (Action.KEEP, Action.FLAG):
            return window
        return self._factory.config.mask if decision.action is Action.MASK else decision.text
