"""The generic SSE adapter: any event stream's ``data`` filtered per event name."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.driver import Driver, StreamDriver
from pipeline.engine import Chain, ResponseFilter, RoutePlan, build_plans
from pipeline.protocols.generic import BLOCKED_MESSAGE, GenericBody, GenericStream
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Comment, Event, SSEDecoder, encode
from pipeline.stage import Channel
from pipeline.testing import chunkings
from tests.conftest import StackFactory

NO_STAGES = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'
MASK = NO_STAGES + (
    '    stages:\n      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret"}\n'
)
BLOCK = NO_STAGES + (
    "    stages:\n"
    '      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret", block: true}\n'
)
PROXY_ROUTES = """
routes:
  - name: generic
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    protocol: generic-sse
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
"""


def replay(
    items: Sequence[Event | Comment], routes: str, cuts: Sequence[int] = ()
) -> tuple[list[Event | Comment], StreamDriver]:
    """What a client gets for these upstream items, read in pieces cut at ``cuts``."""
    raw = b"".join(encode(item) for item in items)
    plan = build_plans(parse_config(routes))["r"]
    adapter = StreamDriver(GenericStream, ResponseFilter(plan), RequestInfo())

    async def run() -> bytes:
        decoder = SSEDecoder()
        out = []
        points = [0, *sorted({c for c in cuts if 0 < c < len(raw)}), len(raw)]
        for a, b in itertools.pairwise(points):
            out.append(await adapter.feed(decoder.feed(raw[a:b])))
        return b"".join(out) + await adapter.feed(decoder.close()) + await adapter.end()

    return SSEDecoder().feed(asyncio.run(run())), adapter


def texts(items: Sequence[Event | Comment]) -> dict[str, str]:
    """The data a client concatenates per event name."""
    out: dict[str, str] = {}
    for item in items:
        if isinstance(item, Event):
            out[item.event] = out.get(item.event, "") + item.data
    return out


def test_events_keep_their_name_id_and_retry() -> None:
    """An event goes out with its own event, id and retry fields and the filtered data."""
    out, _ = replay([Event("hello secret", "token", "7", 3000), Event("ok", "", "8")], MASK)
    assert [Event("hello [MASKED]", "token", "7", 3000), Event("ok", "", "8")] == out


def test_a_word_split_across_events_is_masked() -> None:
    """Consecutive events of one name are one text, so a split word is still caught."""
    out, _ = replay([Event("a sec"), Event("ret b")], MASK)
    assert [Event("a "), Event("[MASKED] b")] == out


def test_event_names_are_separate_channels() -> None:
    """Text held from one event name only ever comes out under that name."""
    out, _ = replay([Event("x sec", "token"), Event("ret", "meta")], MASK)
    assert [Event("x ", "token"), Event("ret", "meta"), Event("sec", "token")] == out


def test_end_of_body_flushes_and_completes() -> None:
    """The end of the body finishes every channel: held text comes out, and no error."""
    out, adapter = replay([Event("the sec")], MASK)
    assert [Event("the "), Event("sec")] == out
    assert adapter.completed
    assert adapter.blocked is None


def test_done_sentinel_comes_after_the_flushed_text() -> None:
    """``data: [DONE]`` ends the stream, after the text still held."""
    out, adapter = replay([Event("a sec"), Event("[DONE]"), Event("late")], MASK)
    assert [Event("a "), Event("sec"), Event("[DONE]")] == out
    assert adapter.completed


def test_comments_and_empty_data_pass_through() -> None:
    """Keep-alive comments and events with empty data are forwarded as they are."""
    out, _ = replay([Comment(" keep-alive"), Event("", "ping"), Event("x")], MASK)
    assert [Comment(" keep-alive"), Event("", "ping"), Event("x")] == out


def test_block_ends_with_an_error_event_and_drops_held_text() -> None:
    """A block releases the text before it, then ``event: error`` of type content_filter."""
    out, adapter = replay([Event("ok sec"), Event("ret"), Event("more")], BLOCK)
    assert [Event("ok ")] == out[:1]
    error = out[1]
    assert isinstance(error, Event)
    assert "error" == error.event
    assert "content_filter" == json.loads(error.data)["error"]["type"]
    assert 2 == len(out)
    assert "word 'secret'" == adapter.blocked


def test_proxy_error_shape() -> None:
    """Proxy failures are ``event: error`` with message, type and code."""
    plan = build_plans(parse_config(NO_STAGES))["r"]
    adapter = StreamDriver(GenericStream, ResponseFilter(plan), RequestInfo())
    (event,) = SSEDecoder().feed(adapter.fail("upstream broke", "upstream_error"))
    assert isinstance(event, Event)
    expected = {
        "error": {"message": "upstream broke", "type": "proxy_error", "code": "upstream_error"}
    }
    assert ("error", expected) == (event.event, json.loads(event.data))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), text=st.text(alphabet="secrt a\u00e9\U0001f600\n", min_size=1, max_size=40))
def test_any_event_split_and_byte_split_give_the_same_text(data: st.DataObject, text: str) -> None:
    """However the text is cut into events and the bytes into reads, the client text is the
    masked text."""
    pieces = data.draw(chunkings(text))
    events = [Event(piece, data.draw(st.sampled_from(["", "token"]))) for piece in pieces]
    raw_size = sum(len(encode(e)) for e in events)
    cuts = data.draw(st.lists(st.integers(1, max(1, raw_size - 1)), max_size=30))
    out, adapter = replay(events, MASK, cuts)
    sent = texts(events)
    assert {k: v.replace("secret", "[MASKED]") for k, v in sent.items()} == texts(out)
    assert adapter.completed


# --- JSON bodies ---------------------------------------------------------------------------


class RecordingFilter(ResponseFilter):
    """A response's chains, and every channel a chain was asked for (closed ones too)."""

    def __init__(self, plan: RoutePlan) -> None:
        super().__init__(plan)
        self.opened: dict[str, Channel] = {}

    def chain(self, channel: Channel) -> Chain:
        self.opened.setdefault(channel.key, channel)
        return super().chain(channel)


def filter_body(body: dict[str, Any], routes: str) -> tuple[dict[str, Any], Driver]:
    """What a client gets for this non-streamed JSON body, and the adapter that filtered it."""
    plan = build_plans(parse_config(routes))["r"]
    adapter = Driver(RecordingFilter(plan), RequestInfo())
    return asyncio.run(GenericBody(adapter).filter(body)), adapter


def replace(word: str, replacement: str) -> str:
    """A route whose only stage replaces ``word`` (any characters) with ``replacement``."""
    stage = (
        '{type: "tests.stages_for_tests:MaskWordFactory", '
        f"word: {json.dumps(word)}, replacement: {json.dumps(replacement)}}}"
    )
    return NO_STAGES + f"    stages:\n      - {stage}\n"


def test_body_strings_are_walked_each_on_its_own_channel() -> None:
    """Every string value of a JSON body goes through the stages, each on a text channel of
    its own named after its place; keys are structure and never filtered.

    Adapted: the body used to be serialised and filtered as one JSON document on a single
    ``body`` channel, so stages saw ids, URLs, base64 payloads and keys (redact turned the
    ``127.0.0.1`` of a batch's ``results_url`` into ``[IPV4]``). Now the walker filters the
    strings one by one, as known codecs do for fields they don't know.
    """
    body: dict[str, Any] = {"choices": [{"message": {"content": "a secret b"}}], "note": "secreté"}
    body["secret"] = {"secret": "kept as a key"}
    out, adapter = filter_body(body, MASK)
    expected = {
        "choices": [{"message": {"content": "a [MASKED] b"}}],
        "note": "[MASKED]é",
        "secret": {"secret": "kept as a key"},
    }
    assert expected == out
    assert adapter.blocked is None
    assert isinstance(adapter.response, RecordingFilter)
    channels = {key.split("#")[0]: c for key, c in adapter.response.opened.items()}
    assert {"body.choices.0.message.content", "body.note", "body.secret.secret"} == set(channels)
    assert {("text", "generic-sse")} == {(c.kind.value, c.protocol) for c in channels.values()}


def test_body_without_a_match_is_returned_as_is() -> None:
    """A body the stages leave alone is the upstream's own object, not a re-parsed copy."""
    body = {"text": "nothing here", "n": 1}
    out, adapter = filter_body(body, MASK)
    assert body is out
    assert adapter.blocked is None


def test_blocked_body_becomes_the_generic_error() -> None:
    """A block answers with the stream's error object (content_filter), not the body."""
    out, adapter = filter_body({"text": "ok secret"}, BLOCK)
    expected = {
        "error": {"message": BLOCKED_MESSAGE, "type": "content_filter", "code": "content_filter"}
    }
    assert expected == out
    assert "word 'secret'" == adapter.blocked


@pytest.mark.parametrize("replacement", ['"}{', "[1]", '\\"'])
def test_a_stage_cannot_break_the_json(replacement: str) -> None:
    """Whatever a stage writes, it replaces a string with a string: the body stays valid
    JSON of the same shape, and the key beside it is left as it was.

    Adapted: when the body was filtered as one JSON document, a stage could turn it into
    invalid JSON or a non-object, which failed closed with a block. Each string is now
    replaced as a string, so there is nothing left to break.
    """
    out, adapter = filter_body({"b": "a b c", "n": [1, "b"]}, replace("b", replacement))
    assert {"b": f"a {replacement} c", "n": [1, replacement]} == out
    assert out == json.loads(json.dumps(out))
    assert adapter.blocked is None


# --- through the proxy ---------------------------------------------------------------------


async def test_generic_route_filters_an_event_stream_and_bodies(stack: StackFactory) -> None:
    """A generic-sse route masks event data (here a chat stream read as plain text) and the
    strings of a JSON body alike."""
    s = await stack(PROXY_ROUTES)
    sim = {"chunks": ["a secret b"]}
    body = {"model": "m", "messages": [], "stream": True, "sim": sim}
    url = f"{s.proxy_url}/v1/chat/completions"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body) as reply:
            raw = await reply.read()
        async with session.post(url, json={**body, "stream": False}) as reply:
            whole = await reply.json()
    events = [e for e in SSEDecoder().feed(raw) if isinstance(e, Event)]
    assert "[DONE]" == events[-1].data
    contents = [json.loads(e.data)["choices"][0]["delta"].get("content") for e in events[:-1]]
    assert "a [MASKED] b" in contents
    assert b"secret" not in raw
    assert "a [MASKED] b" == whole["choices"][0]["message"]["content"]


def test_a_long_json_stream_keeps_no_chain_per_string() -> None:
    """Each string of a walked JSON event is a whole text on a chain of its own; once it is
    decided the chain is let go (its findings kept), so a long stream's memory stays flat."""
    items = [Event(json.dumps({"token": f"word {n} secret"})) for n in range(300)]
    out, driver = replay(items, MASK)
    assert 300 == sum("[MASKED]" in item.data for item in out if isinstance(item, Event))
    assert len(driver.response.chains) <= 2
    assert 300 == len(driver.findings)
