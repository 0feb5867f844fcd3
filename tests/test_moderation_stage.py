"""One moderation channel driven directly, against the simulator's classifier on loopback.

The properties that must hold for any chunking of the reply and any timing of the
verdicts: hold mode releases exactly the approved text; bounded mode never shows more
than ``max_unverified_chars`` of a flagged window; the stage never holds more than its
``max_holdback``; the classifier sees the same windows however the text was split.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from filters.moderation import ModerationConfig, ModerationFactory
from filters.moderation.windows import split_windows
from pipeline.testing import TEXT_CHANNEL, StageRun, acheck_stage, arun_stage, chunkings, fresh
from tests.moderation_support import FLAGGED, REPLY, classifier

BEFORE = REPLY[: REPLY.index(FLAGGED)]
EXAMPLES = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def factory(url: str, **keys: Any) -> ModerationFactory:
    return ModerationFactory(ModerationConfig(url=url, **keys))


async def run(made: ModerationFactory, chunks: list[str]) -> StageRun:
    """Feed ``chunks`` to a fresh channel of ``made`` and finish it; retire the factory
    and let the calls a block cancelled wind down, so the session is closed after."""
    try:
        return await arun_stage(made.open(fresh(TEXT_CHANNEL)), chunks)
    finally:
        await made.aclose()
        for _ in range(200):
            if not made.classifier.session_open:
                break
            await asyncio.sleep(0.005)


@EXAMPLES
@given(st.data(), st.sampled_from([0.0, 2.0]))
def test_hold_releases_the_approved_text_for_any_chunking(
    data: st.DataObject, latency_ms: float
) -> None:
    """Whatever the chunking and the verdicts' timing: the two approved sentences, a block,
    nothing of the flagged one, and only whole windows asked about."""
    chunks = data.draw(chunkings(REPLY))

    async def scenario() -> tuple[StageRun, list[str]]:
        async with classifier(latency_ms) as c:
            result = await run(factory(c.url, window_chars=60, context_chars=0), chunks)
            return result, list(c.calls.inputs)

    result, inputs = asyncio.run(scenario())
    closed, rest = split_windows(REPLY, 60)
    windows = [*closed, rest]
    assert (BEFORE, True) == (result.text, result.block is not None)
    assert set(windows[:3]) <= set(inputs) <= set(windows)


@EXAMPLES
@given(st.data(), st.sampled_from([0.0, 3.0]), st.integers(min_value=0, max_value=40))
def test_bounded_never_shows_more_than_its_budget(
    data: st.DataObject, latency_ms: float, budget: int
) -> None:
    """At most ``max_unverified_chars`` of the flagged sentence are ever released."""
    chunks = data.draw(chunkings(REPLY))
    keys = {"mode": "bounded", "max_unverified_chars": budget, "window_chars": 60}

    async def scenario() -> StageRun:
        async with classifier(latency_ms) as c:
            return await run(factory(c.url, **keys), chunks)

    result = asyncio.run(scenario())
    assert result.block is not None
    assert result.text.startswith(BEFORE)
    leaked = result.text[len(BEFORE) :]
    assert FLAGGED.startswith(leaked)
    assert len(leaked) <= budget


@EXAMPLES
@given(st.data())
def test_monitor_releases_everything_at_once(data: st.DataObject) -> None:
    """Monitor mode releases each piece as it comes and holds nothing."""
    text = "Plain words. Nothing to see here. " * 4
    chunks = data.draw(chunkings(text))

    async def scenario() -> StageRun:
        async with classifier(2.0) as c:
            return await run(factory(c.url, mode="monitor", window_chars=20), chunks)

    result = asyncio.run(scenario())
    assert (text, None, 0) == (result.text, result.block, result.max_held)
    assert chunks == [r for r in result.releases if r][: len(chunks)]


async def test_backpressure_keeps_what_is_held_within_max_holdback() -> None:
    """Ten windows fed at once with two calls allowed: never more than 3 windows held."""
    text = "".join(f"Sentence {i} is plain. " for i in range(10))
    async with classifier(5.0) as c:
        made = factory(c.url, window_chars=24, max_in_flight=2)
        result = await run(made, [text])
        assert 2 >= c.calls.peak_in_flight
    assert (text, 0) == (result.text, result.held_after_finish)
    assert result.max_held <= made.max_holdback == 24 * 3


async def test_a_flagged_window_does_not_flag_the_next_through_its_context() -> None:
    """``action: mask``: only the flagged sentence is masked, although the next window's
    context still held it when it was first asked about."""
    async with classifier() as c:
        made = factory(c.url, action="mask", window_chars=60, context_chars=100)
        result = await run(made, [REPLY])
    assert BEFORE + "[FILTERED]" + REPLY[len(BEFORE + FLAGGED) :] == result.text
    assert ["masked"] == [f.action for f in result.findings]


async def test_findings_carry_the_classifiers_categories() -> None:
    """A window flagged for two categories names both, sorted, in the rule."""
    words = {"forbidden": "violence", "part": "harassment"}
    async with classifier(flag_words=words) as c:
        result = await run(factory(c.url, window_chars=60), [REPLY])
    finding = result.findings[0]
    assert ("moderation:harassment,violence", "blocked") == (finding.rule, finding.action)
    assert (len(BEFORE), len(BEFORE + FLAGGED)) == (finding.start, finding.end)


async def test_the_session_closes_when_retired_and_reopens_for_a_late_call() -> None:
    """``aclose`` closes the pooled session; a stream outliving its config still gets a
    verdict, on a session closed again right after."""
    async with classifier() as c:
        made = factory(c.url)
        await arun_stage(made.open(fresh(TEXT_CHANNEL)), ["Fine. "])
        assert made.classifier.session_open
        await made.aclose()
        assert not made.classifier.session_open
        late = await arun_stage(made.open(fresh(TEXT_CHANNEL)), ["Still fine."])
        assert not made.classifier.session_open
    assert "Still fine." == late.text


async def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``api_key_env`` names the variable; its value is sent as a bearer token."""
    monkeypatch.setenv("MODERATION_TEST_KEY", "sk-mod-123")
    async with classifier() as c:
        made = factory(c.url, api_key_env="MODERATION_TEST_KEY")
        assert "Bearer sk-mod-123" == made.classifier.headers["Authorization"]
        await run(made, ["Fine."])
        assert 1 == c.calls.calls


def test_a_missing_key_variable_refuses_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unset ``api_key_env`` stops the stage from being built, with the name."""
    monkeypatch.delenv("MODERATION_TEST_KEY", raising=False)
    with pytest.raises(ValueError, match="MODERATION_TEST_KEY"):
        factory("http://127.0.0.1:9/v1/moderations", api_key_env="MODERATION_TEST_KEY")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"api": "llama-guard"}, "needs 'model'"),
        ({"mode": "monitor", "action": "mask"}, "nothing left to replace"),
        ({"max_holdback_chars": 100, "window_chars": 400}, "at least window_chars"),
        ({"api_key": "sk-in-yaml"}, "Extra inputs are not permitted"),
        ({"mode": "stream-first"}, "'hold', 'bounded' or 'monitor'"),
    ],
)
def test_inconsistent_keys_are_refused(keys: dict[str, Any], message: str) -> None:
    """Keys that cannot work together (or a key in YAML) are refused with the reason."""
    with pytest.raises(ValidationError, match=message):
        ModerationConfig(url="http://127.0.0.1:9/v1/moderations", **keys)


async def test_hold_mode_passes_the_compliance_kit() -> None:
    """The kit every built-in passes (any chunking, bound, finish, isolation), run against
    the simulator's classifier: hold mode's output depends on the text alone."""
    async with classifier() as c:
        made = factory(c.url)
        # Retired first, so each call's session lives and closes on the kit's own loop.
        await made.aclose()
        report = await acheck_stage(made, [REPLY, "Plain text. Nothing to hide", ""])
    assert report.ok, str(report)
