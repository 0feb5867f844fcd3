"""The kit's newer checks: JSON output still parses, overlapping rules under any chunking,
and ``import pipeline.testing`` without hypothesis."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import regex

from pipeline.scanner import Decision, Hit, MatchFactory, Rules, replace
from pipeline.stage import Channel, ChannelEnd, Release, StageConfig
from pipeline.testing import JSON_CHANNEL, Check, check_stage


class NaiveScan:
    """The hand-written loop of the old guide: one partial search, hold from a partial match.

    ``regex`` prefers a complete match to an earlier partial one, so this leaks when rules
    overlap: ``['you son of a', ' gun']`` comes out as ``you son [FILTERED] a gun``.
    """

    def __init__(self, pattern: regex.Pattern[str], mask: str) -> None:
        self._pattern, self._mask, self._buffer = pattern, mask, ""

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        return self._scan(self._buffer + text, final=False)

    def finish(self, end: ChannelEnd) -> Release:
        return self._scan(self._buffer, final=True)

    def _scan(self, text: str, final: bool) -> Release:
        out, done, hold = [], 0, len(text)
        for match in self._pattern.finditer(text, partial=not final):
            if match.partial or (not final and match.end() == len(text)):
                hold = match.start()
                break
            out.append(text[done : match.start()] + self._mask)
            done = match.end()
        out.append(text[done:hold])
        self._buffer = text[hold:]
        return Release("".join(out))


class NaiveFactory(MatchFactory[StageConfig]):
    """Rules declared the framework's way, scanned by the naive loop."""

    def __init__(self) -> None:
        rules = Rules.from_phrases({"rude": ["son of a gun", "of"]}, whole_words=False)
        super().__init__(StageConfig(type="naive"), rules, normalise=False)

    def open(self, channel: Channel) -> NaiveScan:  # type: ignore[override]
        return NaiveScan(self.rules.pattern, self.config.mask)


def test_overlapping_rules_are_tried_even_when_the_texts_do_not_overlap() -> None:
    """The kit builds texts from the stage's own rules and finds the naive loop's leak."""
    report = check_stage(NaiveFactory(), ["plain text, nothing to see"], examples=60)
    (failure,) = report.of(Check.OVERLAP)
    assert "on a text built from the stage's own rules" in failure.message
    assert [] == [f for f in report.failures if f.check is not Check.OVERLAP]


def test_the_framework_scan_passes_the_same_overlap_check() -> None:
    """The same rules through MatchFactory's own scan: no failure."""
    rules = Rules.from_phrases({"rude": ["son of a gun", "of"]}, whole_words=False)
    factory = MatchFactory[StageConfig](StageConfig(type="scan"), rules)
    report = check_stage(factory, ["plain text, nothing to see"], examples=60)
    assert report.ok, str(report)


class RawMask(MatchFactory[StageConfig]):
    """Masks competitor names; ``open`` is the framework's, the decision a custom mask."""

    def __init__(self) -> None:
        super().__init__(StageConfig(type="raw"), Rules.from_phrases({"vendor": ["Acme"]}))

    def on_match(self, hit: Hit) -> Decision:
        return replace('the "other" vendor')


class RawInsert:
    """A stage that writes its mask into the text as is, quotes and all."""

    held = 0

    def feed(self, text: str) -> Release:
        return Release(text.replace("Acme", 'the "other" vendor'))

    def finish(self, end: ChannelEnd) -> Release:
        return Release()


class RawFactory(RawMask):
    def open(self, channel: Channel) -> RawInsert:  # type: ignore[override]
        return RawInsert()


TOOL_CALL = '{"vendor": "Acme", "note": "not Acme"}'


def test_json_output_that_no_longer_parses_is_reported() -> None:
    """A raw quote inserted into a JSON string breaks the tool call: the kit says so."""
    report = check_stage(RawFactory(), [TOOL_CALL], JSON_CHANNEL, examples=5)
    (failure,) = report.of(Check.JSON)
    assert "output is not valid JSON any more" in failure.message
    assert check_stage(RawMask(), [TOOL_CALL], JSON_CHANNEL, examples=5).ok


def test_pipeline_testing_imports_without_hypothesis() -> None:
    """In a plain install the run helpers work and the kit says what to install."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["hypothesis"] = None  # as if it were not installed
        import pipeline.testing as testing
        from pipeline.scanner import MatchFactory, Rules
        from pipeline.stage import StageConfig
        factory = MatchFactory(StageConfig(type="x"), Rules.from_phrases({"w": ["Acme"]}))
        print(testing.run_factory(factory, ["Ac", "me!"]).text)
        try:
            testing.check_stage
        except ImportError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == result.returncode, result.stderr
    lines = result.stdout.splitlines()
    assert "[FILTERED]!" == lines[0]
    assert "install it with pip install 'streamsieve[testing]'" in lines[1]
