"""Test helpers for stage authors, shipped in the package so third parties test alike.

``run_stage`` drives a stage through any chunking exactly as the engine would, and
``chunkings`` is a hypothesis strategy that splits a text at random points (down to one
character per piece). Together they state the main property of a stage: the output does
not depend on where the upstream happened to split the text.

The compliance kit (:func:`check_stage`, :func:`assert_compliant`, :func:`acheck_stage`)
checks every property of the contract at once, for any factory, from any pytest suite::

    from pipeline.testing import assert_compliant

    def test_my_stage_is_compliant() -> None:
        assert_compliant(MyFactory(MyConfig(type="my_stage")), ["text with a match", "none"])
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import inspect
import itertools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import strategies as st

from pipeline.driver import StreamDriver
from pipeline.plugins import StageLoadError, check_open
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


# The compliance kit: the properties every stage must have, built-in or custom.


class Check(enum.StrEnum):
    """One property the compliance kit verifies; a :class:`Failure` names the one it broke."""

    CONTRACT = "contract"
    """``open`` returns a stage with ``held``/``feed``/``finish`` matching ``is_async``."""
    ERROR = "error"
    """The stage raised, or returned something that is not a :class:`Release`."""
    REOPEN = "reopen"
    """A stage opened after another one ran gives the same result for the same input."""
    CHUNKING = "chunking"
    """The output (text, block reason, findings' rule and span) is the same for every split."""
    HOLDBACK = "holdback"
    """``held`` never exceeds the factory's ``max_holdback`` after a ``feed``."""
    FINISH = "finish"
    """``held`` is 0 after ``finish``: everything held was released or decided."""
    EMPTY_FEED = "empty-feed"
    """``feed("")`` changes nothing."""
    ISOLATION = "isolation"
    """Two stages open at once (two channels or streams) do not affect each other."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One broken property, with a message that says what happened and on which input."""

    check: Check
    message: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.message}"


@dataclass(slots=True)
class ComplianceReport:
    """What :func:`check_stage` found for one factory."""

    stage: str
    """The factory's class name."""
    failures: list[Failure] = field(default_factory=list)
    runs: int = 0
    """Stages opened and driven to the end, for a sense of how much was tried."""

    @property
    def ok(self) -> bool:
        return not self.failures

    def of(self, check: Check) -> list[Failure]:
        """The failures of one property."""
        return [f for f in self.failures if f.check is check]

    def assert_ok(self) -> None:
        """Raise AssertionError listing every failure (for async tests, after acheck_stage)."""
        if self.failures:
            raise AssertionError(str(self))

    def __str__(self) -> str:
        if self.ok:
            return f"{self.stage}: compliant ({self.runs} runs)"
        lines = [f"{self.stage}: {len(self.failures)} compliance failure(s) in {self.runs} runs"]
        lines.extend(f"  {failure}" for failure in self.failures)
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What a run produced, in the terms chunking must not change."""

    text: str
    block: str | None
    findings: tuple[tuple[str, int, int], ...]

    def difference(self, expected: _Outcome) -> str:
        """How this outcome differs from ``expected``, in one phrase."""
        if self.text != expected.text:
            at = _common_prefix(self.text, expected.text)
            return (
                f"text {_clip(self.text, at)} instead of {_clip(expected.text, at)} "
                f"(first difference at character {at})"
            )
        if self.block != expected.block:
            return f"block reason {self.block!r} instead of {expected.block!r}"
        return f"findings (rule, start, end) {self.findings} instead of {expected.findings}"


@dataclass(slots=True)
class _Trace:
    """One run of one opened stage, with the numbers the checks look at."""

    chunks: Sequence[str]
    outcome: _Outcome
    max_held: int
    """The most ``held`` reported after any ``feed`` (``finish`` is checked separately)."""
    held_after_finish: int
    error: str | None = None


_EXCERPT = 24
_MAX_CUTS = 200


def _clip(text: str, at: int) -> str:
    """``text`` around offset ``at``, short enough for a failure message."""
    start = max(0, at - _EXCERPT)
    head = "…" if start else ""
    tail = "…" if at + _EXCERPT < len(text) else ""
    return head + repr(text[start : at + _EXCERPT]) + tail


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix of ``a`` and ``b``."""
    size = min(len(a), len(b))
    return next((i for i in range(size) if a[i] != b[i]), size)


def _show(chunks: Sequence[str]) -> str:
    shown = repr(list(chunks))
    return shown if len(shown) <= 120 else shown[:117] + "..."


class _BrokenError(Exception):
    """Raised inside the hypothesis property so it shrinks to the smallest bad chunking."""

    def __init__(self, check: Check, message: str) -> None:
        super().__init__(message)
        self.check = check
        self.message = message


class _Kit:
    """Runs the checks for one factory on one channel and collects the failures."""

    def __init__(
        self,
        factory: StageFactory[Any],
        channel: Channel,
        end: ChannelEnd,
        driver: _Driver,
        report: ComplianceReport,
    ) -> None:
        self.factory = factory
        self.channel = channel
        self.other_channel = dataclasses.replace(channel, key=f"{channel.key}.other")
        self.end = end
        self.driver = driver
        self.report = report
        self.bound = factory.max_holdback
        self.repeats: dict[Check, int] = {}

    def fail(self, check: Check, message: str) -> None:
        """Record the first failure of ``check``; later ones are only counted."""
        if check in self.repeats:
            self.repeats[check] += 1
        else:
            self.repeats[check] = 0
            self.report.failures.append(Failure(check, message))

    def close(self) -> None:
        """Note on each failure how many more times its property broke."""
        self.report.failures = [
            Failure(f.check, f"{f.message} (and {n} more time(s) on other inputs)")
            if (n := self.repeats[f.check])
            else f
            for f in self.report.failures
        ]

    def call(self, result: Release | Awaitable[Release], method: str) -> Release:
        release = self.driver.call(result)
        if not isinstance(release, Release):
            raise TypeError(f"{method} returned {type(release).__name__}, not a Release")
        return release

    def run(self, chunks: Sequence[str], channel: Channel | None = None) -> _Trace:
        """Open a fresh stage and drive it through ``chunks`` and ``finish``."""
        self.report.runs += 1
        stage = self.factory.open(fresh(channel or self.channel))
        text, block, max_held = "", None, 0
        findings: list[Finding] = []
        try:
            for chunk in chunks:
                release = self.call(stage.feed(chunk), "feed")
                text += release.text
                findings.extend(release.findings)
                max_held = max(max_held, stage.held)
                if release.block:
                    block = release.block
                    break
            else:
                release = self.call(stage.finish(self.end), "finish")
                text += release.text
                findings.extend(release.findings)
                block = release.block
        except Exception as exc:  # a stage's bug is a finding of the kit, not a crash of it
            outcome = _Outcome(text, block, ())
            return _Trace(chunks, outcome, max_held, 0, f"{type(exc).__name__}: {exc}")
        spans = tuple((f.rule, f.start, f.end) for f in findings)
        held_after = 0 if block else stage.held
        return _Trace(chunks, _Outcome(text, block, spans), max_held, held_after)

    def problems(self, trace: _Trace, expected: _Outcome | None) -> list[tuple[Check, str]]:
        """Every property ``trace`` breaks on its own, and against ``expected`` if given."""
        fed = f"when fed {_show(trace.chunks)}"
        if trace.error is not None:
            return [(Check.ERROR, f"raised {trace.error} {fed}")]
        found: list[tuple[Check, str]] = []
        if trace.max_held > self.bound:
            found.append(
                (
                    Check.HOLDBACK,
                    f"held {trace.max_held} characters after a feed, more than the "
                    f"factory's declared max_holdback of {self.bound}, {fed}",
                )
            )
        if trace.held_after_finish:
            found.append(
                (
                    Check.FINISH,
                    f"still held {trace.held_after_finish} characters after finish(); finish "
                    f"must release or decide everything, {fed}",
                )
            )
        if expected is not None and trace.outcome != expected:
            found.append(
                (
                    Check.CHUNKING,
                    f"output depends on chunking: {trace.outcome.difference(expected)} "
                    f"{fed} (compared with the whole text in one feed)",
                )
            )
        return found

    def report_first(self, traces: Sequence[_Trace], expected: _Outcome) -> set[Check]:
        """Record the first failure of each property over ``traces``; the checks that failed."""
        failed: set[Check] = set()
        for trace in traces:
            for check, message in self.problems(trace, expected):
                if check not in failed:
                    failed.add(check)
                    self.fail(check, message)
        return failed

    def check_text(self, text: str, other: str, examples: int) -> None:
        """Every property for one text; ``other`` runs beside it for isolation."""
        first = self.run([text] if text else [])
        if Check.ERROR in self.report_first([first], first.outcome):
            return
        again = self.run([text] if text else [])
        if again.outcome != first.outcome:
            self.fail(
                Check.REOPEN,
                f"a second stage opened from the same factory gave "
                f"{again.outcome.difference(first.outcome)} for the same input "
                f"{_clip(text, 0)}: state is kept across streams (on the factory or a class "
                "attribute); later checks skipped, they would only repeat this",
            )
            return
        failed = self.report_first([self.run(c) for c in _fixed_chunkings(text)], first.outcome)
        if len(text) > 1 and not failed & {Check.ERROR, Check.CHUNKING}:
            self.explore(text, first.outcome, examples, failed)
        self.check_empty_feeds(text)
        self.check_isolation(text, other)

    def check_empty_feeds(self, text: str) -> None:
        """The same split with ``""`` fed before, between and after the pieces."""
        pieces = split_at(text, [len(text) // 2])
        plain = self.run(pieces)
        empty = self.run(["", *itertools.chain.from_iterable((p, "") for p in pieces)])
        if plain.error is None and empty.error is None and empty.outcome != plain.outcome:
            self.fail(
                Check.EMPTY_FEED,
                f"feed('') changed the output: {empty.outcome.difference(plain.outcome)} "
                f"when fed {_show(empty.chunks)} (compared with {_show(plain.chunks)})",
            )

    def explore(self, text: str, expected: _Outcome, examples: int, failed: set[Check]) -> None:
        """Random chunkings by hypothesis, shrunk to the smallest one that breaks something."""

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            verbosity=Verbosity.quiet,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
        )
        @given(chunkings(text))
        def prop(chunks: list[str]) -> None:
            for check, message in self.problems(self.run(chunks), expected):
                if check not in failed:
                    raise _BrokenError(check, message)

        try:
            prop()
        except _BrokenError as exc:
            self.fail(exc.check, exc.message)
        except Exception as exc:  # hypothesis' own verdicts (a flaky stage) are failures too
            self.fail(Check.CHUNKING, f"random chunkings: {type(exc).__name__}: {exc}")

    def check_isolation(self, text: str, other: str) -> None:
        """Two stages fed alternately, one character each, must match each run alone."""
        alone = (self.run(list(text)), self.run(list(other), self.other_channel))
        if any(trace.error for trace in alone):
            return  # already reported by the chunking checks
        self.report.runs += 2
        # Two streams, each with its own response scope: nothing may pass between them.
        stages = (
            self.factory.open(fresh(self.channel)),
            self.factory.open(fresh(self.other_channel)),
        )
        inputs = (text, other)
        outputs: list[list[Release]] = [[], []]
        try:
            for index in range(max(len(text), len(other))):
                for which in (0, 1):
                    if index < len(inputs[which]) and not _blocked(outputs[which]):
                        feed = stages[which].feed(inputs[which][index])
                        outputs[which].append(self.call(feed, "feed"))
            for which in (0, 1):
                if not _blocked(outputs[which]):
                    finish = stages[which].finish(self.end)
                    outputs[which].append(self.call(finish, "finish"))
        except Exception as exc:  # only raised when interleaved: that is the isolation bug
            self.fail(
                Check.ISOLATION,
                f"raised {type(exc).__name__}: {exc} while another stage from the same "
                "factory was open: state is shared between opened stages",
            )
            return
        for which, trace in enumerate(alone):
            got = _outcome_of(outputs[which])
            if got != trace.outcome:
                channel = (self.channel, self.other_channel)[which].key
                self.fail(
                    Check.ISOLATION,
                    f"on channel {channel!r} with another stage from the same factory open "
                    f"and fed alternately, it gave {got.difference(trace.outcome)}: state is "
                    "shared between opened stages (class attribute, module global or the "
                    "factory)",
                )
                return


def _blocked(releases: Sequence[Release]) -> bool:
    return bool(releases) and bool(releases[-1].block)


def _outcome_of(releases: Sequence[Release]) -> _Outcome:
    findings = tuple((f.rule, f.start, f.end) for r in releases for f in r.findings)
    block = releases[-1].block if releases else None
    return _Outcome("".join(r.text for r in releases), block, findings)


def _fixed_chunkings(text: str) -> list[list[str]]:
    """The text cut once at each position (at most 200), and one character per feed.

    Deterministic, so the most common faults (a match cut in two) show up on every run
    whatever hypothesis draws.
    """
    if len(text) < 2:
        return []
    step = max(1, (len(text) - 1) // _MAX_CUTS)
    return [split_at(text, [cut]) for cut in range(1, len(text), step)] + [list(text)]


def _check_contract(factory: StageFactory[Any], channel: Channel) -> str | None:
    """What is wrong with the stages ``factory`` opens, or None."""
    try:
        check_open(factory, "stage")
    except StageLoadError as exc:
        return str(exc)
    if not factory.applies_to(channel):
        return (
            f"does not apply to channel {channel.key!r} ({channel.kind}); pass a channel "
            "it filters (TEXT_CHANNEL or JSON_CHANNEL)"
        )
    return None


def check_stage(
    factory: StageFactory[Any],
    texts: Sequence[str],
    channel: Channel = TEXT_CHANNEL,
    examples: int = 25,
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> ComplianceReport:
    """Check that ``factory``'s stages keep the stage contract on each of ``texts``.

    For each text: the same output (text, block reason, findings' rule/start/end) for
    every chunking — one character per feed, one cut at each position, and ``examples``
    random chunkings from hypothesis, shrunk to the smallest failing one; ``held`` never
    above ``max_holdback`` after a feed and 0 after ``finish``; a stage opened later gives
    the same result (nothing kept across streams); ``feed("")`` changes nothing; and two
    stages open at once, fed alternately, match their runs alone (nothing shared between
    channels). Pick texts that exercise the stage: matches, near-matches, text at the end.

    Async stages run on a private event loop; inside a running loop (an async test) use
    :func:`acheck_stage`. Do not call it from a hypothesis ``@given`` test: it runs
    hypothesis itself.
    """
    if not texts:
        raise ValueError("check_stage needs at least one text")
    if factory.is_async and _in_event_loop():
        raise RuntimeError(
            "check_stage() cannot drive an async stage inside a running event loop; "
            "use 'await acheck_stage(...)' in async tests"
        )
    report = ComplianceReport(type(factory).__name__)
    problem = _check_contract(factory, channel)
    if problem is not None:
        report.failures.append(Failure(Check.CONTRACT, problem))
        return report
    with _Driver() as driver:
        kit = _Kit(factory, channel, end, driver, report)
        for index, text in enumerate(texts):
            kit.check_text(text, texts[(index + 1) % len(texts)], examples)
            if report.of(Check.REOPEN):
                break  # every later comparison would only repeat it
        kit.close()
    return report


async def acheck_stage(
    factory: StageFactory[Any],
    texts: Sequence[str],
    channel: Channel = TEXT_CHANNEL,
    examples: int = 25,
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> ComplianceReport:
    """:func:`check_stage` from async code: runs in a worker thread with its own loop.

    The calling loop stays free meanwhile, so a fake service the stage calls may run on it.
    """
    return await asyncio.to_thread(check_stage, factory, texts, channel, examples, end)


def assert_compliant(
    factory: StageFactory[Any],
    texts: Sequence[str],
    channel: Channel = TEXT_CHANNEL,
    examples: int = 25,
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> ComplianceReport:
    """:func:`check_stage`, raising AssertionError that lists every failure."""
    report = check_stage(factory, texts, channel, examples, end)
    report.assert_ok()
    return report


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
