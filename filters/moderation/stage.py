"""One channel of ``type: moderation``: windows, verdicts in flight, and what may go out.

The channel's text is cut into windows (:mod:`filters.moderation.windows`); each window is
sent to the classifier as soon as it closes, with up to ``max_in_flight`` calls
outstanding, so in ``hold`` mode the stream lags its classifier by about one round trip
rather than one per window. What may be released is one rule for all three modes: text
whose verdict is in goes out in order, and text still awaiting its verdict goes out only
within the mode's budget (``hold`` 0, ``bounded`` ``max_unverified_chars``, ``monitor``
unlimited). So exposure is bounded by construction, whenever verdicts arrive.

Verdicts that arrived since the last call are applied at every ``feed`` and ``finish``: the
stage contract has no call between two upstream pieces, so a verdict reached while the
upstream is silent takes effect with its next piece, or at the channel's end, which waits
for every outstanding verdict. A flagged window then blocks (the response ends the
protocol's way, nothing unreleased goes out), masks what of it is still unreleased, or is
only recorded (``action: flag``); a failed call does what ``on_error`` says.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque

import structlog

from filters.moderation.client import Classifier, Verdict
from filters.moderation.config import ModerationConfig
from filters.moderation.windows import split_windows
from pipeline.stage import NOTHING, Channel, ChannelEnd, ErrorPolicy, Finding, Release

log = structlog.get_logger("streamsieve.moderation")


class _Status(enum.Enum):
    PENDING = "pending"
    RELEASE = "release"
    MASK = "mask"
    BLOCK = "block"


class _Window:
    """A closed window: its place in the channel, its call, and how much of it went out."""

    __slots__ = ("context", "key", "sent", "start", "status", "task", "text")

    def __init__(self, start: int, text: str, context: str) -> None:
        self.start = start
        self.text = text
        self.context = len(context)
        self.key = context + text
        """What the classifier is asked: the context before the window, then the window."""
        self.task: asyncio.Future[Verdict] | None = None
        self.sent = 0
        """Characters of the window released so far (ahead of its verdict, or after it)."""
        self.status = _Status.PENDING

    @property
    def end(self) -> int:
        return self.start + len(self.text)


class ModerationStage:
    """One channel's windows, verdicts and release accounting."""

    __slots__ = (
        "_block",
        "_cache",
        "_classifier",
        "_clean_from",
        "_config",
        "_context",
        "_fed",
        "_findings",
        "_held",
        "_limit",
        "_open",
        "_open_sent",
        "_windows",
    )

    def __init__(self, classifier: Classifier, channel: Channel, limit: int) -> None:
        self._classifier = classifier
        self._config: ModerationConfig = classifier.config
        self._limit = limit
        """Most characters held when a call returns (the factory's ``max_holdback``)."""
        self._cache: dict[str, asyncio.Future[Verdict]] = channel.scope.setdefault(classifier, {})
        """Calls by what they ask, shared by every channel of the response."""
        self._windows: deque[_Window] = deque()
        self._open = ""
        self._open_sent = 0
        self._context = ""
        self._fed = 0
        self._held = 0
        self._findings: list[Finding] = []
        self._block: str | None = None
        self._clean_from = 0
        """Where context may start: after the last window flagged but let through (masked
        or only flagged), so that window does not make the ones after it look flagged."""

    @property
    def held(self) -> int:
        return self._held

    async def feed(self, text: str) -> Release:
        self._fed += len(text)
        self._held += len(text)
        self._close_windows(self._open + text)
        self._launch()
        self._collect()
        out = [self._emit()]
        # Backpressure: a channel keeps at most max_in_flight windows, so what it holds
        # stays within its bound; meanwhile the upstream is simply not read further.
        while self._block is None and self._windows and self._over_bound():
            await self._wait_any()
            out.append(self._emit())
            self._launch()
        return self._result("".join(out))

    async def finish(self, end: ChannelEnd) -> Release:
        if self._open:
            start = self._fed - len(self._open)
            self._add_window(start, self._open)
            self._windows[-1].sent = self._open_sent
            self._open, self._open_sent = "", 0
        self._launch()
        out: list[str] = []
        while self._block is None and self._windows:
            await self._wait_any()
            out.append(self._emit())
            self._launch()
        return self._result("".join(out))

    def _over_bound(self) -> bool:
        return len(self._windows) > self._config.max_in_flight or self._held > self._limit

    def _close_windows(self, text: str) -> None:
        closed, rest = split_windows(text, self._config.window_chars)
        start = self._fed - len(text)
        sent = self._open_sent
        for piece in closed:
            window = self._add_window(start, piece)
            window.sent = min(sent, len(piece))
            sent -= window.sent
            start += len(piece)
        self._open, self._open_sent = rest, sent

    def _add_window(self, start: int, text: str) -> _Window:
        context = self._context[max(0, self._clean_from - (start - len(self._context))) :]
        window = _Window(start, text, context)
        self._windows.append(window)
        if self._config.context_chars:
            self._context = (self._context + text)[-self._config.context_chars :]
        return window

    def _launch(self) -> None:
        """Start the calls of the oldest ``max_in_flight`` windows that have none yet."""
        for index, window in enumerate(self._windows):
            if index >= self._config.max_in_flight:
                return
            if window.task is not None:
                continue
            task = self._cache.get(window.key)
            if task is None:
                task = asyncio.ensure_future(self._classifier.judge(window.key))
                self._cache[window.key] = task
            else:
                self._classifier.count("cached")
            window.task = task

    async def _wait_any(self) -> None:
        """Until the oldest window still waiting has its verdict; then apply what is in.

        ``asyncio.wait`` rather than awaiting the call: a call may be shared with another
        channel (the cache), and being cancelled here must never cancel it for that one.
        """
        for window in self._windows:
            if window.status is _Status.PENDING:
                if window.task is not None:
                    await asyncio.wait({window.task})
                break
        self._collect()

    def _collect(self) -> None:
        """Apply the verdicts that have arrived, in window order, up to one still awaited.

        In order, so a window flagged only for the flagged window in its context is known
        to be so, and asked again without it (:meth:`_apply`).
        """
        for window in self._windows:
            if window.status is not _Status.PENDING:
                continue
            task = window.task
            if task is None or not task.done():
                return
            self._apply(window, task.result())
            if window.status is _Status.PENDING:
                return

    def _apply(self, window: _Window, verdict: Verdict) -> None:
        config = self._config
        stage = self._classifier.labels[1]
        if verdict.kind == "ok":
            self._settle(window, _Status.RELEASE)
            return
        if verdict.kind == "error":
            if self._cache.get(window.key) is window.task:
                del self._cache[window.key]  # a failed call is no answer to reuse
            status = _ON_ERROR[config.on_error]
            rule, reason = "moderation_error", f"classifier {verdict.reason}"
            log.warning(
                "moderation_failed",
                stage=stage,
                reason=verdict.reason,
                policy=config.on_error.value,
            )
        else:
            trim = self._clean_from - (window.start - window.context)
            if trim > 0:
                # Its context holds a window already flagged and dealt with: ask again
                # about the window with only the context after that one.
                window.context = max(0, window.context - trim)
                window.key = window.key[len(window.key) - len(window.text) - window.context :]
                window.task = None
                self._launch()
                return
            status = _ON_FLAG[config.action]
            rule = f"moderation:{','.join(verdict.categories)}"
            reason = f"flagged {','.join(verdict.categories)}"
        self._settle(window, status)
        if status is _Status.BLOCK:
            action = "blocked"
            if self._block is None:
                self._block = f"{stage}: {reason}"
                self._cancel_calls()
        elif status is _Status.MASK and window.sent < len(window.text):
            action = "masked"
        else:
            action = "passed" if verdict.kind == "error" else "flagged"
        if verdict.kind == "flagged":
            self._clean_from = window.end
        self._findings.append(Finding(rule, action, window.start, window.end))

    def _cancel_calls(self) -> None:
        """The response ends: calls still running answer nobody, so they are stopped.

        Safe for calls shared through the cache, since a block ends every channel of the
        response and channels are driven one at a time (none is waiting on one now).
        """
        for window in self._windows:
            if window.task is not None and not window.task.done():
                window.task.cancel()

    def _settle(self, window: _Window, status: _Status) -> None:
        route, stage = self._classifier.labels
        self._classifier.metrics.ahead.labels(route, stage, self._config.mode).observe(window.sent)
        window.status = status

    def _emit(self) -> str:
        """Everything the mode allows out now, in order (only verdicts' text once blocked)."""
        budget = 0 if self._block is not None else self._config.budget
        remaining: int | None = None
        if budget is not None:
            ahead = self._open_sent + sum(
                w.sent for w in self._windows if w.status is _Status.PENDING
            )
            remaining = max(0, budget - ahead)
        out: list[str] = []
        for window in self._windows:
            rest = len(window.text) - window.sent
            if window.status is _Status.BLOCK:
                break
            if not rest:
                continue
            if window.status is _Status.PENDING:
                take = rest if remaining is None else min(rest, remaining)
                out.append(window.text[window.sent : window.sent + take])
                window.sent += take
                self._held -= take
                if remaining is not None:
                    remaining -= take
                if window.sent < len(window.text):
                    break
                continue
            out.append(
                self._config.mask if window.status is _Status.MASK else window.text[window.sent :]
            )
            window.sent = len(window.text)
            self._held -= rest
        else:
            rest = len(self._open) - self._open_sent
            take = rest if remaining is None else min(rest, remaining)
            out.append(self._open[self._open_sent : self._open_sent + take])
            self._open_sent += take
            self._held -= take
        while self._windows and self._windows[0].status in _SETTLED:
            if self._windows[0].sent < len(self._windows[0].text):
                break
            self._windows.popleft()
        return "".join(out)

    def _result(self, text: str) -> Release:
        findings, self._findings = tuple(self._findings), []
        if self._block is not None:
            return Release(text, self._block, findings)
        if not text and not findings:
            return NOTHING
        return Release(text, findings=findings)


_ON_ERROR = {
    ErrorPolicy.BLOCK: _Status.BLOCK,
    ErrorPolicy.MASK: _Status.MASK,
    ErrorPolicy.PASS: _Status.RELEASE,
}
_ON_FLAG = {"block": _Status.BLOCK, "mask": _Status.MASK, "flag": _Status.RELEASE}
_SETTLED = frozenset({_Status.RELEASE, _Status.MASK})
