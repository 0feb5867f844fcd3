"""The compliance kit: broken stages are caught with a message naming the fault; good ones pass."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import pytest

from filters.registry import BUILTIN_STAGES
from pipeline.plugins import resolve_stage
from pipeline.stage import NOTHING, Channel, ChannelEnd, Finding, Release, StageConfig, StageFactory
from pipeline.testing import (
    JSON_CHANNEL,
    TEXT_CHANNEL,
    Check,
    ComplianceReport,
    acheck_stage,
    assert_compliant,
    check_stage,
)
from tests.stages_for_tests import (
    ExplodeConfig,
    ExplodeFactory,
    MaskWordConfig,
    MaskWordFactory,
    MaskWordStage,
    SlowConfig,
    SlowFactory,
)

TEXTS = ["a secret here", "secre", "no match at all", "top secretsecret s", ""]
EXAMPLES = 20


class BrokenConfig(StageConfig):
    type: str = "broken"
    declared: int = 1


class _Factory(StageFactory[BrokenConfig]):
    """A factory opening ``stage_class`` and declaring ``declared`` as its bound."""

    config_model = BrokenConfig
    stage_class: ClassVar[Any]

    def __init__(self, config: BrokenConfig | None = None) -> None:
        super().__init__(config or BrokenConfig())

    @property
    def max_holdback(self) -> int:
        return self.config.declared

    def open(self, channel: Channel) -> Any:
        return self.stage_class()


class TailStage:
    """Passes text through, always holding the last ``keep`` characters."""

    __slots__ = ("_buffer",)
    keep: ClassVar[int] = 3

    def __init__(self) -> None:
        self._buffer = ""

    @property
    def held(self) -> int:
        return len(self._buffer)

    def feed(self, text: str) -> Release:
        buffer = self._buffer + text
        cut = max(0, len(buffer) - self.keep)
        self._buffer = buffer[cut:]
        return Release(buffer[:cut])

    def finish(self, end: ChannelEnd) -> Release:
        rest, self._buffer = self._buffer, ""
        return Release(rest)


class OverHoldingFactory(_Factory):
    """Holds three characters but declares one."""

    stage_class = TailStage


class KeepsAfterFinishStage(TailStage):
    """Never lets go of its tail: ``finish`` returns nothing and keeps holding it."""

    __slots__ = ()
    keep = 1

    def finish(self, end: ChannelEnd) -> Release:
        return NOTHING


class KeepsAfterFinishFactory(_Factory):
    stage_class = KeepsAfterFinishStage


class PerChunkMaskStage:
    """Masks ``secret`` within each chunk only: the per-chunk check users complain about."""

    __slots__ = ()

    @property
    def held(self) -> int:
        return 0

    def feed(self, text: str) -> Release:
        return Release(text.replace("secret", "[MASKED]"))

    def finish(self, end: ChannelEnd) -> Release:
        return NOTHING


class PerChunkFactory(_Factory):
    stage_class = PerChunkMaskStage


class SharedLagStage:
    """Holds one character back, but in a class attribute every opened stage shares."""

    pending: ClassVar[list[str]] = []

    @property
    def held(self) -> int:
        return len(self.pending)

    def feed(self, text: str) -> Release:
        if not text:
            return NOTHING
        out = "".join(self.pending) + text[:-1]
        self.pending[:] = [text[-1]]
        return Release(out)

    def finish(self, end: ChannelEnd) -> Release:
        out = "".join(self.pending)
        self.pending.clear()
        return Release(out)


class SharedClassAttributeFactory(_Factory):
    stage_class = SharedLagStage


class CountingStage:
    """Reports every ``e`` as a finding, offset by a count kept on its factory."""

    __slots__ = ("_factory",)

    def __init__(self, factory: FactoryStateFactory) -> None:
        self._factory = factory

    @property
    def held(self) -> int:
        return 0

    def feed(self, text: str) -> Release:
        base = self._factory.seen
        self._factory.seen += len(text)
        hits = [i for i, char in enumerate(text) if char == "e"]
        return Release(
            text, findings=tuple(Finding("e", "flagged", base + i, base + i + 1) for i in hits)
        )

    def finish(self, end: ChannelEnd) -> Release:
        return NOTHING


class FactoryStateFactory(_Factory):
    """Keeps a per-stream counter on the factory, shared by every stream of the route."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def open(self, channel: Channel) -> CountingStage:
        return CountingStage(self)


class EmptyFlushStage(MaskWordStage):
    """Treats ``feed("")`` as end of stream and flushes what it holds: the magic empty chunk."""

    __slots__ = ()

    def feed(self, text: str) -> Release:
        if not text:
            return self.finish(ChannelEnd.COMPLETE)
        return super().feed(text)


class EmptyFlushFactory(MaskWordFactory):
    def open(self, channel: Channel) -> EmptyFlushStage:
        return EmptyFlushStage(self.config)


class NoFinishStage:
    """Lacks ``finish`` altogether."""

    held = 0

    def feed(self, text: str) -> Release:
        return Release(text)


class NoFinishFactory(_Factory):
    stage_class = NoFinishStage


class SecretlyAsyncStage:
    """Has async methods behind a factory that says it is synchronous."""

    held = 0

    async def feed(self, text: str) -> Release:
        return Release(text)

    async def finish(self, end: ChannelEnd) -> Release:
        return NOTHING


class SecretlyAsyncFactory(_Factory):
    stage_class = SecretlyAsyncStage


class NoneStage(PerChunkMaskStage):
    """Returns None from ``feed`` instead of a Release."""

    __slots__ = ()

    def feed(self, text: str) -> Release:
        return None  # type: ignore[return-value]


class NoneFactory(_Factory):
    stage_class = NoneStage


def only(report: ComplianceReport, check: Check) -> str:
    """The message of the report's one failure, which must be of ``check``."""
    assert [check] == [f.check for f in report.failures], str(report)
    return report.failures[0].message


def test_over_holding_stage_is_reported_with_its_declared_bound() -> None:
    """A stage holding more than max_holdback fails the holdback check, naming both numbers."""
    message = only(check_stage(OverHoldingFactory(), TEXTS, examples=EXAMPLES), Check.HOLDBACK)
    assert "held 3 characters" in message
    assert "declared max_holdback of 1" in message


def test_over_holding_stage_passes_when_it_declares_enough() -> None:
    """The same stage declaring its real bound is compliant: the check is about honesty."""
    assert check_stage(OverHoldingFactory(BrokenConfig(declared=3)), TEXTS, examples=EXAMPLES).ok


def test_chunk_dependent_stage_is_reported_with_a_minimal_split() -> None:
    """A stage that only masks within one chunk fails the chunking check and shows the split."""
    message = only(check_stage(PerChunkFactory(), TEXTS, examples=EXAMPLES), Check.CHUNKING)
    assert "output depends on chunking" in message
    assert "[MASKED]" in message
    assert "when fed [" in message


def test_class_attribute_state_is_reported_as_shared_between_stages() -> None:
    """A buffer kept in a class attribute only shows when two stages interleave: isolation."""
    report = check_stage(SharedClassAttributeFactory(), TEXTS, examples=EXAMPLES)
    message = only(report, Check.ISOLATION)
    assert "state is shared between opened stages" in message
    assert "choice0.content" in message


def test_factory_state_is_reported_as_kept_across_streams() -> None:
    """A per-stream counter on the factory makes a re-opened stage differ: reopen."""
    message = only(check_stage(FactoryStateFactory(), TEXTS, examples=EXAMPLES), Check.REOPEN)
    assert "state is kept across streams" in message
    assert "findings" in message


def test_text_kept_after_finish_is_reported() -> None:
    """A stage still holding text after finish fails the finish check."""
    message = only(check_stage(KeepsAfterFinishFactory(), TEXTS, examples=EXAMPLES), Check.FINISH)
    assert "still held 1 characters after finish()" in message


def test_empty_feed_treated_as_end_of_stream_is_reported() -> None:
    """Flushing on feed("") leaks a held prefix, which the empty-feed check names."""
    report = check_stage(EmptyFlushFactory(MaskWordConfig()), TEXTS, examples=EXAMPLES)
    message = only(report, Check.EMPTY_FEED)
    assert "feed('') changed the output" in message


def test_stage_without_finish_fails_the_contract_check() -> None:
    """open() returning an object without finish is refused before any text is fed."""
    report = check_stage(NoFinishFactory(), TEXTS, examples=EXAMPLES)
    assert "lacks held, feed or finish" in only(report, Check.CONTRACT)
    assert 0 == report.runs


def test_async_methods_behind_a_sync_factory_fail_the_contract_check() -> None:
    """is_async must agree with the methods the stage really has."""
    message = only(check_stage(SecretlyAsyncFactory(), TEXTS, examples=EXAMPLES), Check.CONTRACT)
    assert "feed is async but the factory declares is_async = False" in message


def test_non_release_return_is_an_error() -> None:
    """A feed returning None is reported as an error naming the wrong type."""
    message = only(check_stage(NoneFactory(), TEXTS, examples=EXAMPLES), Check.ERROR)
    assert "feed returned NoneType, not a Release" in message


def test_raising_stage_is_an_error_with_the_input() -> None:
    """An exception inside a stage becomes a failure naming it and the chunks fed."""
    report = check_stage(ExplodeFactory(ExplodeConfig(after_chars=3)), TEXTS, examples=EXAMPLES)
    assert "raised RuntimeError: stage bug when fed ['a secret here']" in only(report, Check.ERROR)


def test_assert_compliant_lists_every_failure() -> None:
    """assert_compliant raises one AssertionError that names each broken property."""
    with pytest.raises(AssertionError) as caught:
        assert_compliant(PerChunkFactory(BrokenConfig(declared=0)), TEXTS, examples=EXAMPLES)
    assert "[chunking]" in str(caught.value)
    assert "PerChunkFactory: 1 compliance failure(s)" in str(caught.value)


@pytest.mark.parametrize(
    "factory",
    [
        MaskWordFactory(MaskWordConfig()),
        MaskWordFactory(MaskWordConfig(block=True)),
        MaskWordFactory(MaskWordConfig(word="s")),
        SlowFactory(SlowConfig()),
        ExplodeFactory(ExplodeConfig(after_chars=10_000)),
    ],
    ids=["mask", "mask-block", "mask-one-char", "slow-async", "explode-never"],
)
def test_correct_toy_stages_pass(factory: StageFactory[Any]) -> None:
    """The toy stages the engine tests use keep the contract."""
    report = assert_compliant(factory, TEXTS, examples=EXAMPLES)
    assert report.runs > len(TEXTS)


def test_check_stage_refuses_async_stage_inside_running_loop() -> None:
    """Inside an event loop check_stage points to acheck_stage instead of deadlocking."""

    async def inside() -> None:
        check_stage(SlowFactory(SlowConfig()), TEXTS)

    with pytest.raises(RuntimeError, match="acheck_stage"):
        asyncio.run(inside())


async def test_acheck_stage_runs_async_stages_from_async_tests() -> None:
    """acheck_stage checks an async stage while the calling loop keeps running."""
    report = await acheck_stage(SlowFactory(SlowConfig(delay_ms=0.1)), TEXTS[:2], examples=5)
    assert report.ok, str(report)


TEXT_SAMPLES = [
    "Reach jane.doe@example.com or +1 (555) 010-4477 today.",
    "My key is sk-proj-abcdefghijklmnopqrstuvwx1234 and that is that",
    "What the hell is this damn thing",
    "Plain text with nothing to hide.",
    "",
]
JSON_SAMPLES = [
    '{"note": "mail jane.doe@example.com", "n": [1, 2.5, true, null]}',
    '{"a": {"b": "c"}, "d": []}',
    "[1, 2",
    '{"bad": tru}',
]


SERVICE_STAGES = {"moderation"}
"""Built-ins with no default config (they need a service's URL); each runs the kit against
its service in its own tests (tests/test_moderation_stage.py)."""


@pytest.mark.parametrize("name", sorted(set(BUILTIN_STAGES) - SERVICE_STAGES))
def test_builtin_stage_is_compliant(name: str) -> None:
    """Every registered built-in stage, with its default config, passes the kit."""
    factory_class = resolve_stage(name)
    factory = factory_class(factory_class.config_model.model_validate({"type": name}))
    checked = 0
    for channel, texts in ((TEXT_CHANNEL, TEXT_SAMPLES), (JSON_CHANNEL, JSON_SAMPLES)):
        if factory.applies_to(channel):
            assert_compliant(factory, texts, channel=channel, examples=EXAMPLES)
            checked += 1
    assert checked >= 1


THIRD_PARTY_TEST = '''
"""A moderation team's own suite: only the installed streamsieve package is used."""
import sys

from pipeline.stage import NOTHING, Channel, ChannelEnd, Release, StageConfig, StageFactory
from pipeline.testing import assert_compliant


class UpperConfig(StageConfig):
    type: str = "upper"


class UpperStage:
    held = 0

    def feed(self, text: str) -> Release:
        return Release(text.upper())

    def finish(self, end: ChannelEnd) -> Release:
        return NOTHING


class UpperFactory(StageFactory[UpperConfig]):
    config_model = UpperConfig

    def open(self, channel: Channel) -> UpperStage:
        return UpperStage()


def test_upper_is_compliant() -> None:
    assert_compliant(UpperFactory(UpperConfig()), ["hello", "world!"], examples=5)
    assert not [name for name in sys.modules if name.split(".")[0] == "tests"]
'''


def test_kit_works_from_a_third_party_suite_without_our_tests(tmp_path: Path) -> None:
    """A separate pytest run in another directory uses the kit with only the package."""
    (tmp_path / "test_upper.py").write_text(textwrap.dedent(THIRD_PARTY_TEST))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_upper.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "1 passed" in result.stdout
