"""The json stage: strict RFC 8259 checking while the document streams, under any split."""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from filters.json import HELD_END_CHARS, JsonConfig, JsonFactory
from pipeline.config import parse_config
from pipeline.engine import ResponseFilter, build_plans
from pipeline.stage import Channel, ChannelEnd, ChannelKind, Finding
from pipeline.testing import (
    JSON_CHANNEL,
    TEXT_CHANNEL,
    StageRun,
    assert_compliant,
    chunkings,
    run_factory,
)
from tests.conftest import recorded_dir


def factory(**config: Any) -> JsonFactory:
    """A factory from YAML-style keys (``schema`` included)."""
    return JsonFactory(JsonConfig.model_validate(config))


def run_both(
    fac: JsonFactory,
    doc: str,
    channel: Channel = JSON_CHANNEL,
    end: ChannelEnd = ChannelEnd.COMPLETE,
) -> StageRun:
    """Run ``doc`` whole and one character at a time; both runs must agree exactly."""
    whole = run_factory(fac, [doc], channel, end)
    chars = run_factory(fac, list(doc), channel, end)
    assert (whole.block, whole.text, whole.findings) == (chars.block, chars.text, chars.findings)
    return whole


def expected_reason(message: str, offset: int | None) -> str:
    """The block reason for ``message`` at ``offset`` (``None``: found at the end)."""
    return f"json: {message} " + ("at end" if offset is None else f"at char {offset}")


JSON_WHITESPACE = " \t\n\r"
NUMBER_STARTS = frozenset("-0123456789")


def released_by_block(doc: str, offset: int | None) -> str:
    """What a block releases with a lookahead of 1 or more: the text before the breaking
    character, stopped before the document's end (its close, or a top-level number)."""
    before = doc if offset is None else doc[:offset]
    body = before.lstrip(JSON_WHITESPACE)
    if body[:1] in NUMBER_STARTS:
        return before[: len(before) - len(body)]
    try:
        json.loads(before)
    except ValueError:
        return before
    return before.rstrip(JSON_WHITESPACE)[:-1]


OK = "ok"

SYNTAX_CASES = [
    # Accepted documents.
    pytest.param("{}", OK, None, id="empty-object"),
    pytest.param("[]", OK, None, id="empty-array"),
    pytest.param('{"a": 1}', OK, None, id="object"),
    pytest.param(' \t\n\r{"a":[1,2,3]}\r\n ', OK, None, id="whitespace-around"),
    pytest.param('"just text"', OK, None, id="top-level-string"),
    pytest.param("0", OK, None, id="zero"),
    pytest.param("-0", OK, None, id="negative-zero"),
    pytest.param("-12.5e+3", OK, None, id="full-number"),
    pytest.param("1E-7", OK, None, id="capital-exponent"),
    pytest.param("0.0", OK, None, id="zero-fraction"),
    pytest.param("true", OK, None, id="true"),
    pytest.param("false", OK, None, id="false"),
    pytest.param("null", OK, None, id="null"),
    pytest.param('"\\u00e9\\ud83d\\ude00"', OK, None, id="unicode-escapes-and-pair"),
    pytest.param('"\\uD83D\\uDE00"', OK, None, id="uppercase-surrogate-pair"),
    pytest.param('"\\"\\\\\\/\\b\\f\\n\\r\\t"', OK, None, id="every-short-escape"),
    pytest.param('"\\u0000"', OK, None, id="escaped-nul"),
    pytest.param('"é☃😀\x7f"', OK, None, id="raw-non-ascii-and-del"),
    pytest.param("[[[[]]]]", OK, None, id="nested-arrays"),
    pytest.param('{"a":{"b":{"c":[true,false,null]}}}', OK, None, id="nested-objects"),
    pytest.param('{"a":1,"a":2}', OK, None, id="duplicate-keys"),
    pytest.param('{"":""}', OK, None, id="empty-key"),
    pytest.param("[1,-1,0.5,1e10,1E+2,-0.0e-0]", OK, None, id="number-forms"),
    # Commas.
    pytest.param('{"a":1,}', "trailing comma", 7, id="trailing-comma-object"),
    pytest.param("[1,2,]", "trailing comma", 5, id="trailing-comma-array"),
    pytest.param("[1,\n  ]", "trailing comma", 6, id="trailing-comma-before-ws"),
    pytest.param("[,1]", "expected a value", 1, id="leading-comma"),
    pytest.param("{,}", "expected a quoted property name", 1, id="comma-in-empty-object"),
    pytest.param("[1 2]", "expected ',' or ']'", 3, id="missing-comma-array"),
    pytest.param('{"a":1 "b":2}', "expected ',' or '}'", 7, id="missing-comma-object"),
    pytest.param("[1}", "expected ',' or ']'", 2, id="mismatched-closer-array"),
    pytest.param('{"a":1]', "expected ',' or '}'", 6, id="mismatched-closer-object"),
    pytest.param("[true false]", "expected ',' or ']'", 6, id="missing-comma-literals"),
    # Colons and keys.
    pytest.param('{"a" 1}', "expected ':' after property name", 5, id="missing-colon"),
    pytest.param('{"a"}', "expected ':' after property name", 4, id="key-without-value"),
    pytest.param('{"a":}', "expected a value", 5, id="colon-without-value"),
    pytest.param("{a:1}", "expected a quoted property name", 1, id="unquoted-key"),
    pytest.param("{'a':1}", "single-quoted property name", 1, id="single-quoted-key"),
    pytest.param('{"a":1,b:2}', "expected a quoted property name", 7, id="unquoted-second-key"),
    # Numbers.
    pytest.param("01", "leading zero in number", 1, id="leading-zero"),
    pytest.param("-01", "leading zero in number", 2, id="negative-leading-zero"),
    pytest.param("00", "leading zero in number", 1, id="double-zero"),
    pytest.param('{"a":01}', "leading zero in number", 6, id="leading-zero-in-object"),
    pytest.param("NaN", "expected a value", 0, id="nan"),
    pytest.param("Infinity", "expected a value", 0, id="infinity"),
    pytest.param("-Infinity", "'-' without digits", 1, id="negative-infinity"),
    pytest.param("-", "document incomplete", None, id="lone-minus"),
    pytest.param("[-]", "'-' without digits", 2, id="minus-then-bracket"),
    pytest.param("1.", "document incomplete", None, id="dot-at-end"),
    pytest.param("[1.]", "digit expected after '.'", 3, id="dot-without-digits"),
    pytest.param("[1.e5]", "digit expected after '.'", 3, id="dot-then-exponent"),
    pytest.param(".5", "expected a value", 0, id="leading-dot"),
    pytest.param("[.5]", "expected a value", 1, id="leading-dot-in-array"),
    pytest.param("1e", "document incomplete", None, id="exponent-at-end"),
    pytest.param("[1e]", "digit expected in exponent", 3, id="exponent-without-digits"),
    pytest.param("[1e+]", "digit expected in exponent", 4, id="signed-exponent-without-digits"),
    pytest.param("+1", "expected a value", 0, id="plus-sign"),
    pytest.param("0x10", "trailing data after the document", 1, id="hex-number"),
    # Strings.
    pytest.param("'a'", "single-quoted string", 0, id="single-quoted-string"),
    pytest.param('"a\x01b"', "unescaped control character in string", 2, id="raw-control"),
    pytest.param('"a\nb"', "unescaped control character in string", 2, id="raw-newline"),
    pytest.param('"\\x"', "invalid escape in string", 2, id="bad-escape"),
    pytest.param('"\\u12G4"', "invalid \\u escape", 5, id="bad-hex-digit"),
    pytest.param('"\\u12"', "invalid \\u escape", 5, id="short-unicode-escape"),
    pytest.param('"\\ud800"', "unpaired surrogate in \\u escape", 7, id="lone-high"),
    pytest.param('"\\ud800\\u0041"', "unpaired surrogate in \\u escape", 9, id="high-then-bmp"),
    pytest.param('"\\ud800\\n"', "unpaired surrogate in \\u escape", 8, id="high-then-escape"),
    pytest.param('"\\ud800\\ud800"', "unpaired surrogate in \\u escape", 10, id="high-high"),
    pytest.param('"\\udc00"', "unpaired surrogate in \\u escape", 4, id="lone-low"),
    pytest.param('"abc', "document incomplete", None, id="unterminated-string"),
    # Literals.
    pytest.param("tru", "document incomplete", None, id="partial-literal"),
    pytest.param("trux", "invalid literal", 3, id="bad-literal"),
    pytest.param("[nul]", "invalid literal", 4, id="short-literal"),
    pytest.param("True", "expected a value", 0, id="capitalised-literal"),
    pytest.param("nulll", "trailing data after the document", 4, id="long-literal"),
    # Document boundaries.
    pytest.param("{} {}", "second top-level value", 3, id="second-value"),
    pytest.param("1 2", "second top-level value", 2, id="second-number"),
    pytest.param("{}x", "trailing data after the document", 2, id="trailing-garbage"),
    pytest.param('{"a":1}}', "trailing data after the document", 7, id="extra-closer"),
    pytest.param('{"a":1}\u00a0', "trailing data after the document", 7, id="nbsp-after"),
    pytest.param("\u00a0{}", "expected a value", 0, id="nbsp-before"),
    pytest.param("// note\n{}", "expected a value", 0, id="comment"),
    pytest.param("\ufeff{}", "byte order mark", 0, id="bom"),
    pytest.param("", "empty document", None, id="empty"),
    pytest.param(" \n\t ", "empty document", None, id="whitespace-only"),
    pytest.param('{"a":[1,2', "document incomplete", None, id="unclosed-containers"),
]


@pytest.mark.parametrize(("doc", "verdict", "offset"), SYNTAX_CASES)
@pytest.mark.parametrize("lookahead", [0, 1], ids=["no-lookahead", "default"])
def test_syntax_case(doc: str, verdict: str, offset: int | None, lookahead: int) -> None:
    """Each case gets its verdict and error offset both whole and one character at a time."""
    run = run_both(factory(lookahead_chars=lookahead), doc)
    if verdict == OK:
        assert (None, doc) == (run.block, run.text)
        return
    assert expected_reason(verdict, offset) == run.block
    assert (released_by_block(doc, offset) if lookahead else doc[:offset]) == run.text
    assert [("json_syntax", "blocked")] == [(f.rule, f.action) for f in run.findings]


def test_error_finding_spans_the_breaking_character() -> None:
    """A block's finding points at the character that broke the document."""
    run = run_both(factory(), '{"a":1,}')
    assert [Finding("json_syntax", "blocked", 7, 8)] == run.findings


COMPLIANCE_TEXTS = [
    '{"name": "Ada", "tags": ["x", "y"], "n": -1.5e3, "ok": true, "none": null}',
    '{"name": "Ada", "tags": ["x", "y",], "n": 1}',
    '{"name": "\\ud83d\\ude00 caf\u00e9", "n": 01}',
    '{"name": "Ada"} trailing',
    '[1, 2, {"deep": [',
    "",
]


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"lookahead_chars": 0},
        {"lookahead_chars": 5},
        {"whole": True},
        {"action": "flag"},
        {"schema": {"type": "object", "required": ["n"], "additionalProperties": False}},
        {"max_chars": 40, "max_depth": 2},
    ],
    ids=["default", "no-lookahead", "lookahead-5", "whole", "flag", "schema", "limits"],
)
@pytest.mark.parametrize("end", [ChannelEnd.COMPLETE, ChannelEnd.TRUNCATED])
def test_stage_passes_the_compliance_kit(config: dict[str, Any], end: ChannelEnd) -> None:
    """Every mode keeps the stage contract: split-invariant, bounded, fully finished."""
    assert_compliant(factory(**config), COMPLIANCE_TEXTS, JSON_CHANNEL, examples=15, end=end)


# Lookahead and whole-document mode.


def test_default_lookahead_holds_one_character() -> None:
    """By default the stage keeps only the newest validated character back mid-document."""
    stage = factory().open(JSON_CHANNEL)
    doc = '{"message": "' + "x" * 30
    assert doc[:-1] == stage.feed(doc).text
    assert 1 == stage.held


def test_zero_lookahead_releases_each_piece_at_once() -> None:
    """With ``lookahead_chars: 0`` every valid piece goes out in the call that fed it."""
    doc = '{"a": [1, 2.5, "x"], "b": null}'
    run = run_factory(factory(lookahead_chars=0), list(doc), JSON_CHANNEL)
    assert [*doc, ""] == run.releases
    assert 0 == run.max_held


@pytest.mark.parametrize("lookahead", [0, 1, 16])
def test_closing_brace_is_checked_before_it_is_released(lookahead: int) -> None:
    """With any lookahead, none included, a ``}`` revealing a missing property is withheld."""
    schema = {"type": "object", "required": ["a", "b"]}
    run = run_both(factory(lookahead_chars=lookahead, schema=schema), '{"a": 1}')
    assert ('{"a": 1', expected_reason("missing required property 'b'", 7)) == (
        run.text,
        run.block,
    )


def test_lookahead_keeps_a_complete_document_back_until_the_verdict() -> None:
    """Once the close arrives all before it goes out, whatever N; the close never does."""
    run = run_factory(factory(lookahead_chars=16), ['{"a": 1}', " x"], JSON_CHANNEL)
    assert ['{"a": 1', ""] == run.releases
    assert expected_reason("trailing data after the document", 9) == run.block


@pytest.mark.parametrize("lookahead", [1, 3])
def test_valid_document_holds_the_lookahead_then_only_its_end(lookahead: int) -> None:
    """Token by token, at most N characters wait until the close; then only the close and
    the whitespace after it wait, until the channel finishes."""
    body = ['{"', "name", '":', ' "', "Ada", '",', ' "', "tags", '":', " [", '"x', '"]']
    stage = factory(lookahead_chars=lookahead).open(JSON_CHANNEL)
    held = []
    for piece in [*body, "}", "\n", " "]:
        stage.feed(piece)
        held.append(stage.held)
    assert all(count <= lookahead for count in held[: len(body)])
    assert [1, 2, 3] == held[len(body) :]
    assert "}\n " == stage.finish(ChannelEnd.COMPLETE).text
    assert 0 == stage.held


def test_trailing_garbage_after_the_close_never_releases_the_close() -> None:
    """Garbage after a held close blocks the stream; the client never saw the close."""
    run = run_factory(factory(), ['{"a": [1]', "}", "\n", " x"], JSON_CHANNEL)
    assert ('{"a": [1]', expected_reason("trailing data after the document", 12)) == (
        run.text,
        run.block,
    )
    assert [Finding("json_syntax", "blocked", 12, 13)] == run.findings


def test_second_document_after_the_close_is_blocked_before_the_close() -> None:
    """A model that writes two documents is stopped with the first still unclosed."""
    run = run_both(factory(), '{"a": 1}\n{"a": 2}')
    assert ('{"a": 1', expected_reason("second top-level value", 9)) == (run.text, run.block)


def test_top_level_number_is_held_whole_until_the_channel_ends() -> None:
    """Every prefix of a number is a number, so a top-level one waits from its first digit."""
    run = run_factory(factory(), [" 1", "2", "3"], JSON_CHANNEL)
    assert [" ", "", "", "123"] == run.releases
    over = run_factory(factory(schema={"maximum": 100}), ["1", "2", "3"], JSON_CHANNEL)
    assert ("", expected_reason("number above maximum 100", None)) == (over.text, over.block)


def test_zero_lookahead_releases_the_close_at_once() -> None:
    """With ``lookahead_chars: 0`` the close goes out with its piece: validate and flag only."""
    run = run_factory(factory(lookahead_chars=0), ['{"a": 1', "}", "\n"], JSON_CHANNEL)
    assert ['{"a": 1', "}", "\n", ""] == run.releases


OVERFLOW_BLOCKS = """
routes:
  - name: r
    upstream: {url: "http://127.0.0.1:1"}
    stages:
      - {type: json, on_overflow: block}
"""


@pytest.mark.parametrize("pad", [" " * 100, "\n" * 5000, "\r\n" * 20 + "\t" * 300])
def test_trailing_whitespace_of_any_length_reaches_the_client_intact(pad: str) -> None:
    """Whitespace after the close is valid RFC 8259 and is held as runs: never an overflow."""
    chain = ResponseFilter(build_plans(parse_config(OVERFLOW_BLOCKS))["r"]).chain(JSON_CHANNEL)
    released = chain.feed('{"a": 1}').text + "".join(chain.feed(c).text for c in pad)
    assert ('{"a": 1', None) == (released, None)
    assert chain.held < HELD_END_CHARS
    assert '{"a": 1}' + pad == released + chain.finish(ChannelEnd.COMPLETE).text


def test_garbage_after_long_trailing_whitespace_still_withholds_the_close() -> None:
    """A hundred spaces then garbage: blocked, and the client never saw the close."""
    run = run_factory(factory(), ['{"a": 1}', " " * 100, "x"], JSON_CHANNEL)
    reason = expected_reason("trailing data after the document", 108)
    assert ('{"a": 1', reason) == (run.text, run.block)


def test_whitespace_alternating_past_the_bound_meets_the_overflow_policy() -> None:
    """The documented limit: more alternating whitespace runs than the bound overflows."""
    chain = ResponseFilter(build_plans(parse_config(OVERFLOW_BLOCKS))["r"]).chain(JSON_CHANNEL)
    released = chain.feed('{"a": 1}').text + chain.feed(" \n" * ((HELD_END_CHARS - 1) // 2)).text
    assert ('{"a": 1', HELD_END_CHARS - 1) == (released, chain.held)
    release = chain.feed("  \n")
    assert ("", "json: held text over its chars bound") == (release.text, release.block)


def test_trailing_whitespace_counts_against_max_chars() -> None:
    """Padding is held in constant memory but still counted by the document size limit."""
    run = run_factory(factory(max_chars=50), ['{"a": 1}', " " * 60], JSON_CHANNEL)
    assert ('{"a": 1', expected_reason("document longer than 50 characters", 50)) == (
        run.text,
        run.block,
    )


def test_without_lookahead_garbage_only_stops_what_follows() -> None:
    """With no lookahead the document is already out when trailing garbage arrives."""
    run = run_factory(factory(lookahead_chars=0), ['{"a": 1}', " x"], JSON_CHANNEL)
    assert ['{"a": 1}', " "] == run.releases
    assert expected_reason("trailing data after the document", 9) == run.block


def test_whole_mode_releases_only_at_the_end() -> None:
    """``whole: true`` holds the full document and releases it once it validated."""
    doc = '{"items": [1, 2, 3], "ok": true}'
    run = run_factory(factory(whole=True), list(doc), JSON_CHANNEL)
    assert [""] * len(doc) + [doc] == run.releases
    assert (len(doc), 0) == (run.max_held, run.held_after_finish)


def test_whole_mode_releases_nothing_after_trailing_garbage() -> None:
    """Whole mode is unchanged by the close rule: trailing garbage still releases nothing."""
    run = run_both(factory(whole=True), '{"a": 1} x')
    assert ("", expected_reason("trailing data after the document", 9)) == (run.text, run.block)


def test_whole_mode_releases_nothing_of_an_invalid_document() -> None:
    """An invalid document in whole mode reaches the client not at all."""
    run = run_both(factory(whole=True), '{"items": [1, 2,]}')
    assert ("", expected_reason("trailing comma", 16)) == (run.text, run.block)


def test_max_holdback_follows_the_mode() -> None:
    """The bound covers the lookahead or the held end, the document in whole mode, 0 to flag."""
    bounds = (
        factory().max_holdback,
        factory(lookahead_chars=100).max_holdback,
        factory(lookahead_chars=0).max_holdback,
        factory(whole=True, max_chars=500).max_holdback,
        factory(action="flag").max_holdback,
    )
    assert (HELD_END_CHARS, 100, 0, 500, 0) == bounds


# End of channel.


def test_truncated_document_is_flagged_not_blocked() -> None:
    """A model cut off by its token limit gets a ``json_truncated`` finding, not a block."""
    doc = '{"a": "hel'
    run = run_both(factory(), doc, end=ChannelEnd.TRUNCATED)
    assert (doc, None) == (run.text, run.block)
    assert [Finding("json_truncated", "flagged", 10, 10)] == run.findings
    assert 0 == run.held_after_finish


def test_truncated_in_whole_mode_still_releases_the_text() -> None:
    """Truncation releases what was held in whole mode too; the finish reason tells the rest."""
    run = run_both(factory(whole=True), "[1, 2", end=ChannelEnd.TRUNCATED)
    assert ("[1, 2", None) == (run.text, run.block)
    assert ["json_truncated"] == [f.rule for f in run.findings]


def test_complete_document_cut_by_length_is_just_valid() -> None:
    """A document that closed before the token limit hit needs no finding."""
    run = run_both(factory(), '{"a": 1}', end=ChannelEnd.TRUNCATED)
    assert ('{"a": 1}', None, []) == (run.text, run.block, run.findings)


def test_top_level_number_ends_with_the_channel() -> None:
    """A bare number is complete only when the channel ends (``12`` may become ``123``)."""
    stage = factory(lookahead_chars=0, schema={"maximum": 100}).open(JSON_CHANNEL)
    assert "12" == stage.feed("12").text
    assert "3" == stage.feed("3").text
    reason = stage.finish(ChannelEnd.COMPLETE).block
    assert expected_reason("number above maximum 100", None) == reason


# Flag action.


def test_flag_releases_everything_and_records_the_first_error() -> None:
    """``action: flag`` never changes the text and reports only the first error."""
    doc = '{"a": 01, "b": [1,], }trailing'
    run = run_both(factory(action="flag"), doc)
    assert (doc, None) == (run.text, run.block)
    assert [Finding("json_syntax", "flagged", 7, 8)] == run.findings
    assert 0 == run.max_held


def test_flag_reports_an_incomplete_document_at_the_end() -> None:
    """A flagged document that never closes gets its finding from ``finish``."""
    run = run_both(factory(action="flag"), '{"a": [1')
    assert ('{"a": [1', None) == (run.text, run.block)
    assert [Finding("json_syntax", "flagged", 8, 8)] == run.findings


def test_flag_reports_schema_violations() -> None:
    """Flag mode records schema violations with their own rule name."""
    run = run_both(factory(action="flag", schema={"type": "array"}), '{"a": 1}')
    assert ('{"a": 1}', [Finding("json_schema", "flagged", 0, 1)]) == (run.text, run.findings)


# Limits.


def test_depth_limit_is_a_clear_error() -> None:
    """Nesting beyond ``max_depth`` stops at the bracket that goes one level too deep."""
    fac = factory(max_depth=3)
    assert run_both(fac, "[[[1]]]").block is None
    run = run_both(fac, '[{"a": [[1]]}]')
    assert expected_reason("nesting deeper than 3 levels", 8) == run.block
    assert [("json_limit", 8)] == [(f.rule, f.start) for f in run.findings]


def test_default_depth_limit_is_64() -> None:
    """64 nested arrays are fine; the 65th opening bracket is refused."""
    assert run_both(factory(), "[" * 64 + "]" * 64).block is None
    run = run_both(factory(), "[" * 65 + "]" * 65)
    assert expected_reason("nesting deeper than 64 levels", 64) == run.block


def test_size_limit_counts_every_character() -> None:
    """A document longer than ``max_chars`` stops at the first character past the limit."""
    fac = factory(max_chars=10, lookahead_chars=0)
    assert run_both(fac, "[1,2,3,45]").block is None
    run = run_both(fac, "[1,2,3,4,5]")
    assert ("[1,2,3,4,5", expected_reason("document longer than 10 characters", 10)) == (
        run.text,
        run.block,
    )
    assert ["json_limit"] == [f.rule for f in run.findings]


def test_default_size_limit_is_one_mebibyte() -> None:
    """The default limit admits a 1 MiB document and refuses one character more."""
    body = '"' + "x" * (1024 * 1024 - 2) + '"'
    fac = factory()
    assert run_factory(fac, [body], JSON_CHANNEL).block is None
    run = run_factory(fac, [body, " "], JSON_CHANNEL)
    assert expected_reason("document longer than 1048576 characters", 1048576) == run.block


# Channels and schemas.


def test_applies_to_json_channels_by_default() -> None:
    """``apply: detected`` filters JSON channels and leaves prose alone."""
    fac = factory()
    assert (True, False) == (fac.applies_to(JSON_CHANNEL), fac.applies_to(TEXT_CHANNEL))


def test_apply_always_and_never() -> None:
    """``always`` includes prose channels; ``never`` switches the stage off."""
    always, never = factory(apply="always"), factory(apply="never")
    assert (True, True) == (always.applies_to(JSON_CHANNEL), always.applies_to(TEXT_CHANNEL))
    assert (False, False) == (never.applies_to(JSON_CHANNEL), never.applies_to(TEXT_CHANNEL))


def test_channels_key_still_narrows_apply_always() -> None:
    """The common ``channels`` key is honoured before ``apply``."""
    fac = factory(apply="always", channels="text")
    assert (False, True) == (fac.applies_to(JSON_CHANNEL), fac.applies_to(TEXT_CHANNEL))


def test_request_schema_wins_over_config_schema() -> None:
    """The schema the request declared is used in preference to the configured one."""
    fac = factory(schema={"type": "array"})
    channel = Channel("choice0.content", ChannelKind.JSON, json_schema={"type": "object"})
    assert run_both(fac, '{"a": 1}', channel).block is None
    assert run_both(fac, '{"a": 1}').block is not None


def test_config_schema_when_request_schemas_are_ignored() -> None:
    """``schema_from_request: false`` applies the configured schema to every channel."""
    fac = factory(schema={"type": "array"}, schema_from_request=False)
    channel = Channel("choice0.content", ChannelKind.JSON, json_schema={"type": "object"})
    run = run_both(fac, '{"a": 1}', channel)
    assert expected_reason("expected array, got object", 0) == run.block


def test_unusable_request_schema_falls_back_to_syntax_with_a_finding() -> None:
    """A request schema with a remote ``$ref`` leaves syntax checking on and says so once."""
    channel = Channel("c", ChannelKind.JSON, json_schema={"$ref": "https://example.com/s"})
    run = run_both(factory(), '{"any": "thing"}', channel)
    assert ('{"any": "thing"}', None) == (run.text, run.block)
    assert [Finding("json_schema_unusable", "flagged", 0, 0)] == run.findings
    broken = run_both(factory(), '{"any": }', channel)
    assert expected_reason("expected a value", 8) == broken.block
    assert ["json_schema_unusable", "json_syntax"] == [f.rule for f in broken.findings]


def test_config_rejects_an_unusable_schema() -> None:
    """A configured schema is compiled when the config is validated."""
    with pytest.raises(ValidationError, match="unknown type 'text'"):
        JsonConfig.model_validate({"type": "json", "schema": {"type": "text"}})


@pytest.mark.parametrize(
    "config",
    [
        {"whole": True, "lookahead_chars": 4},
        {"action": "flag", "whole": True},
        {"action": "flag", "lookahead_chars": 4},
        {"unknown_key": 1},
        {"lookahead_chars": -1},
    ],
)
def test_config_rejects_settings_without_effect(config: dict[str, Any]) -> None:
    """Settings that would silently do nothing, or unknown keys, are refused."""
    with pytest.raises(ValidationError):
        JsonConfig.model_validate(config)


# Recorded provider streams, in the pieces the providers sent.


def recorded_channels(path: Path) -> dict[str, list[str]]:
    """Per-channel text pieces of a recorded SSE body (content, tool args, tool input)."""
    channels: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("data: {"):
            continue
        event = json.loads(line[len("data: ") :])
        for key, piece in _event_pieces(event):
            if piece:
                channels.setdefault(key, []).append(piece)
    return channels


def _event_pieces(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for choice in event.get("choices", []):
        delta = choice["delta"]
        yield f"choice{choice['index']}.content", delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            arguments = call.get("function", {}).get("arguments") or ""
            yield f"choice{choice['index']}.tool{call['index']}.arguments", arguments
    delta = event.get("delta", {})
    if event.get("type") == "content_block_delta" and delta.get("type") == "input_json_delta":
        yield f"block{event['index']}.input", delta["partial_json"]


@pytest.mark.parametrize(
    "name",
    [
        "openai-chat/json-object-format-long.sse",
        "openai-chat/json-schema-content.sse",
        "openai-chat/tool-call-args-split.sse",
        "openai-chat/parallel-tool-calls.sse",
        "openai-chat/tool-call-strict-schema.sse",
        "openai-chat/tool-call-two-args.sse",
        "anthropic-messages/tool_use_response.sse",
    ],
)
def test_recorded_json_channels_pass_unchanged(name: str) -> None:
    """Real JSON streams, split the way providers split them, pass through unchanged."""
    channels = recorded_channels(recorded_dir() / name)
    assert channels
    for pieces in channels.values():
        run = run_factory(factory(), pieces, JSON_CHANNEL)
        assert ("".join(pieces), None, []) == (run.text, run.block, run.findings)


@pytest.mark.parametrize(
    "name",
    [
        "openai-chat/json-cut-by-length.sse",
        "anthropic-messages/incomplete_partial_json_response.sse",
    ],
)
def test_recorded_length_cut_is_flagged_as_truncated(name: str) -> None:
    """Recorded streams cut by the token limit end with a truncation finding only."""
    channels = recorded_channels(recorded_dir() / name)
    (pieces,) = channels.values()
    run = run_factory(factory(), pieces, JSON_CHANNEL, ChannelEnd.TRUNCATED)
    assert ("".join(pieces), None) == (run.text, run.block)
    assert ["json_truncated"] == [f.rule for f in run.findings]


# Property tests: random schemas, valid documents, single breaking mutations.

KEYS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=5)
"""Property names start with a letter, so deleting their opening quote always breaks."""
WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\n  ", "\t", "\r\n"])
ENUM_MEMBERS = st.one_of(st.text(max_size=4), st.integers(-5, 5), st.booleans(), st.none())


@st.composite
def schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    """A random schema from the supported subset."""
    kinds = ["string", "integer", "number", "boolean", "null", "enum", "nullable"]
    if depth < 3:
        kinds += ["object", "array", "anyOf"]
    kind = draw(st.sampled_from(kinds))
    if kind == "string":
        low = draw(st.integers(0, 3))
        return {"type": "string", "minLength": low, "maxLength": low + draw(st.integers(0, 6))}
    if kind == "integer":
        low = draw(st.integers(-1000, 1000))
        return {"type": "integer", "minimum": low, "maximum": low + draw(st.integers(0, 10**6))}
    if kind == "number":
        bottom = draw(st.floats(-1e6, 1e6))
        return {"type": "number", "minimum": bottom, "maximum": bottom + draw(st.floats(0, 1e6))}
    if kind in ("boolean", "null"):
        return {"type": kind}
    if kind == "enum":
        return {"enum": draw(st.lists(ENUM_MEMBERS, min_size=1, max_size=4))}
    if kind == "nullable":
        return {"type": [draw(st.sampled_from(["string", "integer", "boolean"])), "null"]}
    if kind == "array":
        low = draw(st.integers(0, 2))
        items = draw(schemas(depth + 1))
        return {"type": "array", "items": items, "minItems": low, "maxItems": low + 3}
    if kind == "anyOf":
        return {"anyOf": draw(st.lists(schemas(depth + 1), min_size=2, max_size=3))}
    properties = draw(st.dictionaries(KEYS, schemas(depth + 1), max_size=4))
    required = (
        draw(st.lists(st.sampled_from(sorted(properties)), unique=True)) if properties else []
    )
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required}
    if draw(st.booleans()):
        schema["additionalProperties"] = False
    return schema


@st.composite
def values(draw: st.DrawFn, schema: dict[str, Any]) -> Any:
    """A value valid for a schema drawn from :func:`schemas`."""
    if "anyOf" in schema:
        return draw(values(draw(st.sampled_from(schema["anyOf"]))))
    if "enum" in schema:
        return draw(st.sampled_from(schema["enum"]))
    kind = schema["type"]
    if isinstance(kind, list):
        kind = draw(st.sampled_from(kind))
    scalars: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
        "string": lambda: st.text(
            min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 8)
        ),
        "integer": lambda: st.integers(schema.get("minimum"), schema.get("maximum")),
        "number": lambda: st.floats(schema["minimum"], schema["maximum"]),
        "boolean": st.booleans,
        "null": st.none,
    }
    if kind in scalars:
        return draw(scalars[kind]())
    if kind == "array":
        strategy = values(schema["items"])
        return draw(st.lists(strategy, min_size=schema["minItems"], max_size=schema["maxItems"]))
    properties: dict[str, Any] = schema["properties"]
    chosen = [k for k in properties if k in schema["required"] or draw(st.booleans())]
    result = {key: draw(values(properties[key])) for key in chosen}
    if "additionalProperties" not in schema:
        undeclared = KEYS.filter(lambda k: k not in properties)
        result.update(draw(st.dictionaries(undeclared, ENUM_MEMBERS, max_size=2)))
    return result


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical piece of a rendered document, so mutations know what they touch."""

    text: str
    kind: str
    """``ws``, ``open``, ``close``, ``close-empty``, ``comma``, ``colon``, ``key``,
    ``string``, ``number`` or ``literal``."""


def render(draw: st.DrawFn, value: Any, out: list[Token]) -> None:
    """Serialise ``value`` with random whitespace and escaping into ``out``."""
    ws = draw(WHITESPACE)
    if ws:
        out.append(Token(ws, "ws"))
    if isinstance(value, dict | list):
        render_container(draw, value, out)
    elif isinstance(value, str):
        out.append(Token(json.dumps(value, ensure_ascii=draw(st.booleans())), "string"))
    elif value is None or isinstance(value, bool):
        out.append(Token(json.dumps(value), "literal"))
    elif isinstance(value, int) and draw(st.booleans()):
        out.append(Token(f"{value}.0", "number"))
    else:
        out.append(Token(json.dumps(value), "number"))


def render_container(draw: st.DrawFn, value: dict[str, Any] | list[Any], out: list[Token]) -> None:
    """Render an object or array, its members separated by commas."""
    is_object = isinstance(value, dict)
    out.append(Token("{" if is_object else "[", "open"))
    members = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
    for index, (key, member) in enumerate(members):
        if index:
            out.append(Token(",", "comma"))
        if key is not None:
            ws = draw(WHITESPACE)
            if ws:
                out.append(Token(ws, "ws"))
            out.append(Token(json.dumps(key, ensure_ascii=draw(st.booleans())), "key"))
            out.append(Token(":", "colon"))
        render(draw, member, out)
    ws = draw(WHITESPACE)
    if ws:
        out.append(Token(ws, "ws"))
    out.append(Token("}" if is_object else "]", "close" if members else "close-empty"))


@st.composite
def documents(draw: st.DrawFn) -> tuple[dict[str, Any], list[Token]]:
    """A random schema (sometimes behind ``$ref``) and a valid document for it, as tokens."""
    schema = draw(schemas())
    value = draw(values(schema))
    if draw(st.booleans()):
        schema = {"$defs": {"main": schema}, "$ref": "#/$defs/main"}
    tokens: list[Token] = []
    render(draw, value, tokens)
    tokens.append(Token(draw(WHITESPACE), "ws"))
    return schema, tokens


def json_channel(schema: dict[str, Any]) -> Channel:
    """A JSON channel whose request declared ``schema``."""
    return Channel("choice0.content", ChannelKind.JSON, json_schema=schema)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_valid_documents_pass_unchanged_under_any_split(data: st.DataObject) -> None:
    """A document valid for its random schema comes out unchanged, however it is split."""
    schema, tokens = data.draw(documents())
    doc = "".join(token.text for token in tokens)
    json.loads(doc)
    fac = factory(lookahead_chars=data.draw(st.integers(0, 24)))
    run = run_factory(fac, data.draw(chunkings(doc)), json_channel(schema))
    assert (doc, None, []) == (run.text, run.block, run.findings)
    assert run.max_held <= fac.max_holdback
    assert 0 == run.held_after_finish


Mutation = Callable[[st.DrawFn, list[Token], list[int], str], tuple[str, int] | None]


def comma_before_closer(
    draw: st.DrawFn, tokens: list[Token], starts: list[int], doc: str
) -> tuple[str, int] | None:
    """``[1,]``: the closer breaks it; ``[,]``: the comma itself does."""
    closers = [i for i, t in enumerate(tokens) if t.kind in ("close", "close-empty")]
    if not closers:
        return None
    index = draw(st.sampled_from(closers))
    at = starts[index]
    return doc[:at] + "," + doc[at:], at + (tokens[index].kind == "close")


def garbage_between_tokens(
    draw: st.DrawFn, tokens: list[Token], starts: list[int], doc: str
) -> tuple[str, int] | None:
    """A character no JSON token may contain, inserted outside any string."""
    at = draw(st.sampled_from([*starts, len(doc)]))
    return doc[:at] + draw(st.sampled_from("x#;=@'")) + doc[at:], at


def unquoted_key(
    draw: st.DrawFn, tokens: list[Token], starts: list[int], doc: str
) -> tuple[str, int] | None:
    """Dropping a key's opening quote exposes its first letter where a quote must be."""
    keys = [starts[i] for i, t in enumerate(tokens) if t.kind == "key"]
    if not keys:
        return None
    at = draw(st.sampled_from(keys))
    return doc[:at] + doc[at + 1 :], at


def misspelt_literal(
    draw: st.DrawFn, tokens: list[Token], starts: list[int], doc: str
) -> tuple[str, int] | None:
    """``true`` becomes ``trux``: broken at its last character."""
    ends = [starts[i] + len(t.text) - 1 for i, t in enumerate(tokens) if t.kind == "literal"]
    if not ends:
        return None
    at = draw(st.sampled_from(ends))
    return doc[:at] + "x" + doc[at + 1 :], at


def leading_zero(
    draw: st.DrawFn, tokens: list[Token], starts: list[int], doc: str
) -> tuple[str, int] | None:
    """A ``0`` before a number's first digit: the digit after it breaks the number."""
    numbers = [
        starts[i] + t.text.startswith("-") for i, t in enumerate(tokens) if t.kind == "number"
    ]
    if not numbers:
        return None
    at = draw(st.sampled_from(numbers))
    return doc[:at] + "0" + doc[at:], at + 1


def control_in_string(
    draw: st.DrawFn, tokens: list[Token], starts: list[int], doc: str
) -> tuple[str, int] | None:
    """A raw control character anywhere inside a string or key (escapes included)."""
    inside = [
        starts[i] + k
        for i, t in enumerate(tokens)
        if t.kind in ("string", "key")
        for k in range(1, len(t.text))
    ]
    if not inside:
        return None
    at = draw(st.sampled_from(inside))
    return doc[:at] + draw(st.sampled_from("\n\t\x00\x1f")) + doc[at:], at


def missing_colon(
    draw: st.DrawFn, tokens: list[Token], starts: list[int], doc: str
) -> tuple[str, int] | None:
    """Without its colon a property breaks at the next non-blank character."""
    colons = [starts[i] for i, t in enumerate(tokens) if t.kind == "colon"]
    if not colons:
        return None
    at = draw(st.sampled_from(colons))
    broken = doc[:at] + doc[at + 1 :]
    return broken, len(broken) - len(broken[at:].lstrip(" \t\r\n"))


MUTATIONS: list[Mutation] = [
    comma_before_closer,
    garbage_between_tokens,
    unquoted_key,
    misspelt_literal,
    leading_zero,
    control_in_string,
    missing_colon,
]


@st.composite
def broken_documents(draw: st.DrawFn) -> tuple[dict[str, Any], str, int]:
    """A valid document with one mutation, and the offset of the character that breaks it."""
    schema, tokens = draw(documents())
    doc = "".join(token.text for token in tokens)
    starts = [0]
    for token in tokens[:-1]:
        starts.append(starts[-1] + len(token.text))
    for mutation in draw(st.permutations(MUTATIONS)):
        result = mutation(draw, tokens, starts, doc)
        if result is not None:
            return schema, *result
    raise AssertionError("garbage_between_tokens always applies")


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_broken_document_never_releases_the_breaking_character(data: st.DataObject) -> None:
    """The stream stops at the breaking character, or before the document's end if that came
    first; nothing from either on is released."""
    schema, doc, breaking = data.draw(broken_documents())
    whole = data.draw(st.booleans())
    lookahead = data.draw(st.integers(0, 24))
    fac = factory(whole=True) if whole else factory(lookahead_chars=lookahead)
    run = run_factory(fac, data.draw(chunkings(doc)), json_channel(schema))
    assert run.block is not None
    assert run.block.endswith(f" at char {breaking}")
    if whole:
        assert "" == run.text
    else:
        assert (released_by_block(doc, breaking) if lookahead else doc[:breaking]) == run.text


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


EDITS = ["", *'{}[]":,\\ 0-.eE+tfnux\n\x01d8']
"""Characters that matter to JSON (and ``d8`` to make surrogate escapes); ``""`` deletes."""


def python_accepts(doc: str) -> bool:
    """Python's parser as an oracle, made strict: no NaN/Infinity, no lone surrogates."""

    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        value = json.loads(doc, parse_constant=no_constants)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    value=JSON_VALUES,
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(EDITS)), max_size=2),
    data=st.data(),
)
def test_verdict_matches_a_strict_reference_parser(
    value: Any,
    indent: int | None,
    ascii_only: bool,
    edits: list[tuple[int, str]],
    data: st.DataObject,
) -> None:
    """On lightly corrupted JSON the stage accepts exactly what a strict parser accepts."""
    doc = json.dumps(value, indent=indent, ensure_ascii=ascii_only)
    for position, char in edits:
        at = position % (len(doc) + 1)
        # An empty edit deletes the character at ``at``; any other inserts before it.
        doc = doc[:at] + char + doc[at + (not char) :]
    whole = run_factory(factory(), [doc], JSON_CHANNEL)
    assert python_accepts(doc) == (whole.block is None)
    split = run_factory(factory(), data.draw(chunkings(doc)), JSON_CHANNEL)
    assert (whole.block, whole.text) == (split.block, split.text)
