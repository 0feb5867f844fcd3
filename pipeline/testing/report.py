"""What the compliance kit reports: the properties, their failures, the report."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.stage import Release
from pipeline.testing.run import split_at

__all__ = ["Check", "ComplianceReport", "Failure"]


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
    JSON = "json"
    """On a JSON channel, a text that is a JSON document still parses after the stage."""
    OVERLAP = "overlap"
    """Texts built from the stage's own patterns (a scanning stage's rules), overlapping
    and cut short, give the same output for every split."""


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
MAX_CUTS = 200
"""The most single-cut chunkings tried per text (spread evenly over its positions)."""


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
    step = max(1, (len(text) - 1) // MAX_CUTS)
    return [split_at(text, [cut]) for cut in range(1, len(text), step)] + [list(text)]
