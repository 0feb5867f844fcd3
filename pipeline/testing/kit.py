"""The compliance kit: the properties every stage must have, built-in or custom.

Needs hypothesis (``pip install "streamsieve[testing]"``): it explores random chunkings
and shrinks a failing one to the smallest split that breaks a property.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
from collections.abc import Awaitable, Sequence
from typing import Any

from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import strategies as st

from pipeline.plugins import StageLoadError, check_open
from pipeline.stage import Channel, ChannelEnd, ChannelKind, Finding, Release, StageFactory
from pipeline.testing.overlap import rule_texts
from pipeline.testing.report import (
    Check,
    ComplianceReport,
    Failure,
    _blocked,
    _BrokenError,
    _clip,
    _fixed_chunkings,
    _Outcome,
    _outcome_of,
    _show,
    _Trace,
)
from pipeline.testing.run import TEXT_CHANNEL, _Driver, fresh, split_at
from pipeline.testing.strategies import chunkings

__all__ = ["acheck_stage", "assert_compliant", "check_stage"]


def _quiet(examples: int) -> settings:
    """Hypothesis settings for the kit: reproducible, silent, no database, no deadline."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        verbosity=Verbosity.quiet,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


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
        self.check_json(text, first.outcome)
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

    def check_json(self, text: str, outcome: _Outcome) -> None:
        """On a JSON channel, a document that parsed before the stage parses after it."""
        if self.channel.kind is not ChannelKind.JSON or outcome.block is not None:
            return
        try:
            json.loads(text)
        except ValueError:
            return  # not a whole document: nothing to keep parseable
        try:
            json.loads(outcome.text)
        except json.JSONDecodeError as exc:
            self.fail(
                Check.JSON,
                f"output is not valid JSON any more ({exc}): {_clip(outcome.text, exc.pos)} "
                f"from {_clip(text, 0)}; escape replacements inside JSON strings "
                "(pipeline.scanner does it for you)",
            )

    def check_overlaps(self, examples: int) -> None:
        """Texts from the stage's own rules: every chunking gives the one-feed result."""
        texts = rule_texts(self.factory)
        if texts is None:
            return

        @_quiet(examples)
        @given(st.data(), texts)
        def prop(data: st.DataObject, text: str) -> None:
            whole = self.run([text])
            chunks = data.draw(chunkings(text))
            trace = self.run(chunks)
            for check, message in self.problems(trace, whole.outcome):
                raise _BrokenError(
                    Check.OVERLAP if check is Check.CHUNKING else check,
                    f"on a text built from the stage's own rules, {message}",
                )

        try:
            prop()
        except _BrokenError as exc:
            self.fail(exc.check, exc.message)

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

        @_quiet(examples)
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
        if not report.failures:
            kit.check_overlaps(examples)
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
