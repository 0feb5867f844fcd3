"""The stage engine: chaining, bounds, overflow and failure policies, whole-response mode."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import ConfigError, parse_config
from pipeline.engine import Chain, ResponseFilter, build_plans
from pipeline.stage import Channel, ChannelEnd, ChannelKind, Finding, Release
from pipeline.testing import TEXT_CHANNEL, chunkings

MASK = "tests.stages_for_tests:MaskWordFactory"
HOLD = "tests.stages_for_tests:HoldAllFactory"
BOOM = "tests.stages_for_tests:ExplodeFactory"
SLOW = "tests.stages_for_tests:SlowFactory"


def chain_for(stages: str, buffer: str = "", channel: Channel = TEXT_CHANNEL) -> Chain:
    text = f"""
routes:
  - name: r
    upstream: {{url: "http://127.0.0.1:1"}}
    stages:
{stages}
{buffer}
"""
    plan = build_plans(parse_config(text))["r"]
    return ResponseFilter(plan).chain(channel)


def run(chain: Chain, pieces: list[str], end: ChannelEnd = ChannelEnd.COMPLETE) -> Release:
    out, findings = "", list[Finding]()
    for piece in pieces:
        release = chain.feed(piece)
        out += release.text
        findings += release.findings
        if release.block:
            return Release(out, release.block, tuple(findings))
    last = chain.finish(end)
    return Release(out + last.text, last.block, (*findings, *last.findings))


def test_stages_chain_in_yaml_order() -> None:
    """Each stage sees the previous stage's output."""
    chain = chain_for(
        f'      - {{type: "{MASK}", word: cat, replacement: dog}}\n'
        f'      - {{type: "{MASK}", word: dog, replacement: "[PET]"}}'
    )
    assert "a [PET] and a [PET]" == run(chain, ["a c", "at and a d", "og"]).text


def test_findings_are_tagged_with_stage_channel_and_offsets() -> None:
    """Findings carry the stage id, the channel key and offsets into the channel's text."""
    chain = chain_for(f'      - {{type: "{MASK}", id: hush, word: secret}}')
    result = run(chain, ["my sec", "ret is a secret"])
    assert [("hush", "choice0.content", 3, 9), ("hush", "choice0.content", 15, 21)] == [
        (f.stage, f.channel, f.start, f.end) for f in result.findings
    ]


def test_repeated_type_gets_numbered_ids() -> None:
    """Two stages of one type are told apart in findings."""
    chain = chain_for(f'      - {{type: "{MASK}", word: a}}\n      - {{type: "{MASK}", word: b}}')
    assert {
        "tests.stages_for_tests:MaskWordFactory#0",
        "tests.stages_for_tests:MaskWordFactory#1",
    } == {f.stage for f in run(chain, ["a b"]).findings}


def test_overflow_mask_replaces_held_text_and_restarts() -> None:
    """Past the declared bound, ``mask`` replaces what was held and keeps streaming."""
    chain = chain_for(f'      - {{type: "{HOLD}", declared: 4, mask: "[X]"}}')
    assert "[X]" == chain.feed("abcde").text
    assert 0 == chain.held
    assert "" == chain.feed("fg").text
    assert "fg" == chain.finish(ChannelEnd.COMPLETE).text


def test_overflow_block_ends_the_channel() -> None:
    """``block`` stops the stream once a stage holds more than its bound."""
    chain = chain_for(
        f'      - {{type: "{HOLD}", declared: 100}}',
        "    buffer: {max_holdback_chars: 3, on_overflow: block}",
    )
    assert chain.feed("abc").block is None
    release = chain.feed("d")
    assert "over its chars bound" in (release.block or "")
    assert "" == release.text


def test_overflow_pass_releases_what_the_stage_decided() -> None:
    """``pass`` finishes the stage early (fail open) and starts it afresh."""
    chain = chain_for(
        f'      - {{type: "{MASK}", word: secret, on_overflow: pass, max_holdback_chars: 2}}'
    )
    assert "pay sec" == chain.feed("pay sec").text
    assert "ret" == run(chain, ["ret"]).text


def test_hold_nothing_route_releases_every_piece_at_once() -> None:
    """A bound of 0 with ``pass`` holds nothing: the explicit "hold nothing" mode."""
    chain = chain_for(
        f'      - {{type: "{MASK}", word: secret}}',
        "    buffer: {max_holdback_chars: 0, on_overflow: pass}",
    )
    assert "a se" == chain.feed("a se").text
    assert 0 == chain.held


def test_time_bound_applies_when_the_next_text_arrives() -> None:
    """Held text older than ``max_holdback_ms`` is decided by policy on the next feed."""
    chain = chain_for(
        f'      - {{type: "{MASK}", word: secret}}',
        "    buffer: {max_holdback_ms: 0, on_overflow: mask}",
    )
    assert "a " == chain.feed("a se").text  # "se" held; the clock starts
    release = chain.feed("c")
    assert "[FILTERED]" == release.text
    assert ["overflow"] == [f.rule for f in release.findings]


@pytest.mark.parametrize(
    ("policy", "expected_text", "blocked"),
    [("block", "", True), ("mask", "[FILTERED]", False), ("pass", "later text", False)],
)
def test_stage_exception_follows_on_error(policy: str, expected_text: str, blocked: bool) -> None:
    """A stage that raises is handled by its ``on_error`` policy, failing closed by default."""
    chain = chain_for(f'      - {{type: "{BOOM}", after_chars: 3, on_error: {policy}}}')
    assert "ok " == chain.feed("ok ").text
    release = chain.feed("later text")
    assert expected_text == release.text
    assert blocked == (release.block is not None)
    assert ["stage_error"] == [f.rule for f in release.findings]


def test_on_error_pass_releases_what_the_failed_stage_held() -> None:
    """Failing open loses nothing: the failed stage's held text goes on with the new text."""
    chain = chain_for(f'      - {{type: "{BOOM}", after_chars: 5, hold: 2, on_error: pass}}')
    assert "abc" == chain.feed("abcde").text
    release = chain.feed("fg")
    assert "defg" == release.text
    assert release.block is None


def test_stage_that_refuses_its_config_is_a_located_config_error() -> None:
    """A factory raising at build time names the stage's key path, not a traceback."""
    text = """
routes:
  - name: r
    upstream: {url: "http://127.0.0.1:1"}
    stages:
      - {type: "tests.stages_for_tests:RefuseFactory"}
"""
    with pytest.raises(ConfigError) as caught:
        build_plans(parse_config(text, "r.yaml"))
    assert (
        "r.yaml:6: routes[0].stages[0]: stage could not be built: "
        "model file /srv/model.bin not found"
    ) == str(caught.value)


def test_whole_response_mode_holds_until_the_end() -> None:
    """``whole_response`` feeds each stage the complete channel text at the end."""
    chain = chain_for(
        f'      - {{type: "{MASK}", word: secret}}', "    buffer: {mode: whole_response}"
    )
    assert "" == chain.feed("a sec").text
    assert 5 == chain.held
    assert "" == chain.feed("ret").text
    assert "a [MASKED]" == chain.finish(ChannelEnd.COMPLETE).text


def test_stage_channels_filter_selects_json_channels() -> None:
    """``channels: json`` keeps a stage off prose channels."""
    text_chain = chain_for(f'      - {{type: "{MASK}", word: secret, channels: json}}')
    assert text_chain.empty
    json_chain = chain_for(
        f'      - {{type: "{MASK}", word: secret, channels: json}}',
        channel=Channel("choice0.tool0.arguments", ChannelKind.JSON),
    )
    assert not json_chain.empty


async def test_async_stage_runs_and_times_out_closed() -> None:
    """An async stage is awaited; past ``timeout_ms`` the call fails by ``on_error``."""
    fast = chain_for(f'      - {{type: "{SLOW}", delay_ms: 0}}')
    assert "HI" == (await fast.afeed("hi")).text
    slow = chain_for(f'      - {{type: "{SLOW}", delay_ms: 200, timeout_ms: 10}}')
    release = await slow.afeed("hi")
    assert "" == release.text
    assert "timed out" in (release.block or "")


@settings(max_examples=150, deadline=None)
@given(data=st.data(), text=st.text(alphabet="secrt xy", max_size=40))
def test_chain_output_is_independent_of_chunking(data: st.DataObject, text: str) -> None:
    """Any split of the text gives the same output as the whole text."""
    stages = (
        f'      - {{type: "{MASK}", word: secret}}\n'
        f'      - {{type: "{MASK}", word: xy, replacement: "Z"}}'
    )
    whole = run(chain_for(stages), [text] if text else []).text
    pieces = data.draw(chunkings(text))
    assert whole == run(chain_for(stages), pieces).text


def test_channels_of_one_response_share_a_scope_and_responses_do_not() -> None:
    """``Channel.scope`` is one dict per response, the same for all its channels."""
    text = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'
    plan = build_plans(parse_config(text))["r"]
    first, second = ResponseFilter(plan), ResponseFilter(plan)
    a = first.chain(TEXT_CHANNEL).channel
    b = first.chain(Channel("choice0.tool0.arguments", ChannelKind.JSON)).channel
    c = second.chain(TEXT_CHANNEL).channel
    assert a.scope is b.scope
    assert a.scope is not c.scope


def test_time_bound_ignores_an_upstream_pause() -> None:
    """A silence longer than ``pause_ms`` does not age held text (a tool call being made)."""
    chain = chain_for(
        f'      - {{type: "{MASK}", word: secret}}',
        "    buffer: {max_holdback_ms: 5, pause_ms: 20, on_overflow: block}",
    )
    assert "a " == chain.feed("a se").text
    time.sleep(0.1)
    release = chain.feed("c")
    assert release.block is None
    assert "" == release.text
    assert "[MASKED] b" == run(chain, ["ret b"]).text


def test_pass_overflow_keeps_a_block_decided_at_the_early_finish() -> None:
    """Failing open on overflow never overrides a stage's block verdict."""
    chain = chain_for(
        "      - {type: profanity, action: block, max_holdback_chars: 2, on_overflow: pass}"
    )
    release = chain.feed("you shit")
    assert release.block is not None
    assert "you " == release.text


@pytest.mark.parametrize(
    ("policy", "text", "blocked"), [("block", "", True), ("pass", "abc", False)]
)
def test_a_stage_that_cannot_open_fails_by_its_policy(
    policy: str, text: str, blocked: bool
) -> None:
    """``open`` raising is a stage error like any other, never an escaped exception."""
    chain = chain_for(
        f'      - {{type: "tests.stages_for_tests:BadOpenFactory", on_error: {policy}}}',
        channel=Channel("choice0.content", ChannelKind.JSON, json_schema={"type": "object"}),
    )
    release = chain.feed("abc")
    assert text == release.text
    assert blocked == (release.block is not None)


def test_whole_response_overflow_applies_the_policy() -> None:
    """``whole_response`` is bounded by ``max_whole_chars`` like any buffer."""
    chain = chain_for(
        f'      - {{type: "{MASK}", word: secret}}',
        "    buffer: {mode: whole_response, max_whole_chars: 4, on_overflow: block}",
    )
    assert chain.feed("abcd").block is None
    assert "over its 4 chars bound" in (chain.feed("e").block or "")
