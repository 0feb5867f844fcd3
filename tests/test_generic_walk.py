"""The generic codecs walk JSON: every string filtered on its own, structure left byte-exact.

A generic route (and every other path of a known route: ``GET /v1/messages/batches/x``,
stored responses, upstream error bodies) used to filter a JSON body as one document, so
stages saw ids, URLs, signatures and base64 payloads. These tests pin the walk: prose in any
field, however nested, is filtered; structural fields and keys are not; an unchanged body or
event goes out as the upstream's own bytes; errors on an Anthropic route are Anthropic's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import anthropic
import pytest
from aiohttp import web

from pipeline.config import Protocol, parse_config
from pipeline.driver import Driver, StreamDriver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols import error_protocol
from pipeline.protocols.anthropic import error_object
from pipeline.protocols.generic import BLOCKED_MESSAGE, GenericBody, GenericStream
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Event, SSEDecoder
from pipeline.testing import drive_stream
from tests.edge_support import LEAK, redacting_proxy

ROUTE = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n    stages:\n'
REDACT = ROUTE + "      - type: redact\n"
MASK = ROUTE + '      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret"}\n'
BLOCK = ROUTE + (
    '      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret", block: true}\n'
)
ANTHROPIC_BLOCKED = {
    "type": "error",
    "error": {"type": "content_filter", "message": BLOCKED_MESSAGE},
}


def walk(body: Any, routes: str = REDACT, request: RequestInfo | None = None) -> tuple[Any, Driver]:
    """The filtered body and the driver that filtered it."""
    plan = build_plans(parse_config(routes))["r"]
    driver = Driver(ResponseFilter(plan), request or RequestInfo())
    return asyncio.run(GenericBody(driver).filter(body)), driver


def stream(raw: bytes, routes: str = MASK, request: RequestInfo | None = None) -> bytes:
    """What a client receives for this upstream event stream."""
    plan = build_plans(parse_config(routes))["r"]
    driver = StreamDriver(GenericStream, ResponseFilter(plan), request or RequestInfo())
    return drive_stream(driver, raw)


# --- bodies --------------------------------------------------------------------------------

STRUCTURE = {
    "id": f"msg_{LEAK}",
    "type": f"type-{LEAK}",
    "model": f"model-{LEAK}",
    "custom_id": f"user-{LEAK}",
    "signature": f"sig-{LEAK}",
    "data": "bWFpbCBhbGljZUBleGFtcGxlLmNvbQ==",
    "image_b64": f"b64-{LEAK}",
    "next_token": f"tok-{LEAK}",
}
"""Structural fields whose values redact would change if it saw them (each names LEAK)."""


def test_structural_fields_stay_byte_exact_while_nested_prose_is_redacted() -> None:
    """ids, ``type``, ``model``, ``*_id``, signatures, base64 ``data``, ``*_b64``, ``*_token``
    pass as sent at every depth; prose in unknown fields, in dicts and lists, is redacted."""
    body = {
        **STRUCTURE,
        "summary": f"write to {LEAK}",
        "result": {**STRUCTURE, "notes": [f"cc {LEAK}", {"text": f"bcc {LEAK}", **STRUCTURE}]},
        "count": 3,
    }
    out, driver = walk(json.loads(json.dumps(body)))
    assert "write to [EMAIL]" == out["summary"]
    assert ["cc [EMAIL]", {"text": "bcc [EMAIL]", **STRUCTURE}] == out["result"]["notes"]
    assert STRUCTURE == {k: out[k] for k in STRUCTURE}
    assert STRUCTURE == {k: out["result"][k] for k in STRUCTURE}
    assert 3 == out["count"]
    assert driver.blocked is None


def test_urls_are_text_and_filtered() -> None:
    """The ``*_url`` rule (walker.py): a URL can carry PII in its path or query, so it is
    filtered like prose; ``localhost`` links survive redact, an IP address does not."""
    body = {
        "results_url": f"http://localhost:8080/v1/results?to={LEAK}",
        "url": "http://localhost:8080/v1/messages/batches/msgbatch_1/results",
        "mirror_url": "http://127.0.0.1:8080/r",
    }
    out, _ = walk(body)
    assert "http://localhost:8080/v1/results?to=[EMAIL]" == out["results_url"]
    assert "http://localhost:8080/v1/messages/batches/msgbatch_1/results" == out["url"]
    assert "127.0.0.1" not in out["mirror_url"]


def test_top_level_array_and_string_bodies_are_walked() -> None:
    """A top-level array is walked like an object; a bare string is one text; numbers,
    booleans and null carry none and come back as given."""
    array = [{"id": f"a-{LEAK}", "text": f"to {LEAK}"}, f"cc {LEAK}", 3, None]
    out, _ = walk(array)
    assert [{"id": f"a-{LEAK}", "text": "to [EMAIL]"}, "cc [EMAIL]", 3, None] == out
    assert out is not array  # changed: a new container, so the proxy re-encodes it
    text, _ = walk(f"mail {LEAK}")
    assert "mail [EMAIL]" == text
    for scalar in ("nothing to see", 7, True, None):
        same, _ = walk(scalar)
        assert same is scalar


def test_an_unchanged_body_is_the_very_object_and_a_changed_one_is_not() -> None:
    """``filtered is body`` is the proxy's test for sending the upstream's bytes: it must
    hold exactly when no string changed, although the walk edits nested strings in place."""
    quiet = {"a": [{"b": "nothing"}], "c": "here"}
    out, _ = walk(quiet, MASK)
    assert out is quiet
    loud = {"a": [{"b": "a secret"}], "c": "here"}
    out, _ = walk(loud, MASK)
    assert out is not loud
    assert {"a": [{"b": "a [MASKED]"}], "c": "here"} == out


def test_walked_strings_are_counted_as_unknown_fields() -> None:
    """Each walked string is counted (``streamsieve_unknown_fields``) by place, list
    positions dropped; structural fields are not counted."""
    body = {"id": "x", "items": [{"text": "a", "id": "i1"}, {"text": "b"}], "note": "n"}
    _, driver = walk(body, MASK)
    assert {"body.items.text": 2, "body.note": 1} == driver.unknown_fields


def test_a_block_answers_the_request_error_shape() -> None:
    """A block answers with the generic error object, or the shape the request carries."""
    out, driver = walk({"a": ["x", "a secret"]}, BLOCK)
    assert {"message", "type", "code"} == set(out["error"])
    assert "word 'secret'" == driver.blocked
    out, _ = walk({"a": "a secret"}, BLOCK, RequestInfo(error_shape=error_object))
    assert ANTHROPIC_BLOCKED == out


# --- streams -------------------------------------------------------------------------------


def test_json_events_are_walked_and_unchanged_ones_pass_byte_exact() -> None:
    """A JSON event's prose is masked and its ids kept; an event no stage changed goes out
    with the upstream's exact bytes (spacing and key order included)."""
    quiet = b'event: item\nid: 7\ndata: {"id" : "it_secret",  "text": "fine"}\n\n'
    loud = b'data: [{"id": "it_secret", "text": "a secret", "n": 1}]\n\n'
    out = stream(quiet + loud + b"data: [DONE]\n\n")
    assert out.startswith(quiet)
    events = [e for e in SSEDecoder().feed(out) if isinstance(e, Event)]
    assert [{"id": "it_secret", "text": "a [MASKED]", "n": 1}] == json.loads(events[1].data)
    assert "[DONE]" == events[2].data


def test_plain_text_and_scalar_events_stay_one_continuous_channel() -> None:
    """Data that is not a JSON container (text, a bare JSON string) stays on the
    ``stream.data`` channel, so a word split across two such events is still caught."""
    out = stream(b'data: "a sec\n\ndata: {"x": "secret"}\n\ndata: ret"\n\n')
    texts = [e.data for e in SSEDecoder().feed(out) if isinstance(e, Event)]
    assert ['"a ', '{"x":"[MASKED]"}', '[MASKED]"'] == texts


def test_a_blocked_json_event_is_replaced_by_the_error_event() -> None:
    """The blocking event is not sent half-blanked: the stream ends with ``event: error``,
    in Anthropic's shape when the request carries it."""
    raw = b'data: {"id": "1", "text": "ok"}\n\ndata: {"text": "a secret", "more": "x"}\n\n'
    generic = {"message": BLOCKED_MESSAGE, "type": "content_filter", "code": "content_filter"}
    for request, expected in [
        (RequestInfo(), {"error": generic}),
        (RequestInfo(error_shape=error_object), ANTHROPIC_BLOCKED),
    ]:
        events = [e for e in SSEDecoder().feed(stream(raw, BLOCK, request)) if isinstance(e, Event)]
        assert ['{"id": "1", "text": "ok"}', "error"] == [events[0].data, events[1].event]
        assert expected == json.loads(events[1].data)
        assert 2 == len(events)


# --- which errors are Anthropic's ----------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "method", "path", "expected"),
    [
        (Protocol.AUTO, "GET", "/v1/messages/batches/x", Protocol.ANTHROPIC_MESSAGES),
        (Protocol.AUTO, "POST", "/v1/messages/count_tokens", Protocol.ANTHROPIC_MESSAGES),
        (Protocol.AUTO, "GET", "/anthropic/v1/messages", Protocol.ANTHROPIC_MESSAGES),
        (Protocol.ANTHROPIC_MESSAGES, "GET", "/v1/models", Protocol.ANTHROPIC_MESSAGES),
        (Protocol.AUTO, "GET", "/v1/chat/completions/c1/messages", Protocol.GENERIC_SSE),
        (Protocol.AUTO, "GET", "/v1/threads/t1/messages", Protocol.GENERIC_SSE),
        (Protocol.OPENAI_CHAT, "GET", "/v1/messages/x", Protocol.GENERIC_SSE),
        (Protocol.AUTO, "POST", "/v1/messages", Protocol.ANTHROPIC_MESSAGES),
        (Protocol.AUTO, "POST", "/v1/chat/completions", Protocol.OPENAI_CHAT),
    ],
)
def test_error_protocol(configured: Protocol, method: str, path: str, expected: Protocol) -> None:
    """Anthropic's error shape for a route configured so, or an ``auto`` route's paths
    under ``/v1/messages``; OpenAI's ``…/messages`` paths and explicit protocols keep theirs."""
    assert expected is error_protocol(configured, method, path)


# --- through the proxy ---------------------------------------------------------------------

BLOCKING = """
routes:
  - name: api
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - {{type: "tests.stages_for_tests:MaskWordFactory", word: "secret", block: true}}
{extra}
"""


async def test_top_level_array_body_through_the_proxy() -> None:
    """A top-level JSON array is filtered (it used to be refused with 502); unchanged, its
    bytes go out exactly as the upstream sent them."""
    replies = [
        json.dumps([{"id": "f1", "note": f"from {LEAK}"}]).encode(),
        b'[ {"id" : "f2",   "note": "nothing"} ]',
    ]

    async def reply(request: web.Request) -> web.StreamResponse:
        return web.Response(body=replies.pop(0), content_type="application/json")

    async with redacting_proxy() as p:
        p.upstream.reply = reply
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{p.url}/v1/files") as changed:
                assert 200 == changed.status
                assert [{"id": "f1", "note": "from [EMAIL]"}] == await changed.json()
            async with http.get(f"{p.url}/v1/files") as unchanged:
                assert b'[ {"id" : "f2",   "note": "nothing"} ]' == await unchanged.read()


def _batch(note: str) -> dict[str, object]:
    return {
        "id": "msgbatch_1",
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": {"processing": 0, "succeeded": 1, "errored": 0},
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "results_url": None,
        "note": note,
    }


@pytest.mark.parametrize(
    ("extra", "call"),
    [
        ("", "batch"),
        ("    protocol: anthropic-messages\n", "models"),
    ],
    ids=["auto-route-messages-path", "anthropic-route-other-path"],
)
async def test_blocked_generic_reply_on_an_anthropic_route_is_an_anthropic_error(
    extra: str, call: str
) -> None:
    """A blocked ``GET`` on an Anthropic route answers 400 with Anthropic's error object, on
    which the ``anthropic`` SDK raises ``BadRequestError`` carrying it (under the upstream's
    200 it would have returned a batch with every field missing)."""

    async def reply(request: web.Request) -> web.StreamResponse:
        if call == "models":
            return web.json_response({"data": [{"id": "m", "display_name": "a secret"}]})
        return web.json_response(_batch("a secret"))

    async with redacting_proxy(BLOCKING, extra) as p:
        p.upstream.reply = reply
        sdk = anthropic.AsyncAnthropic(base_url=p.url, api_key="sk-ant-test", max_retries=0)

        async def fetch() -> object:
            if call == "models":
                return await sdk.models.list()
            return await sdk.messages.batches.retrieve("msgbatch_1")

        try:
            with pytest.raises(anthropic.BadRequestError) as raised:
                await fetch()
        finally:
            await sdk.close()
    assert 400 == raised.value.status_code
    assert ANTHROPIC_BLOCKED == raised.value.body


async def test_unblocked_batch_passes_and_blocked_stream_ends_anthropic_style() -> None:
    """On the same route a batch no stage touches reaches the SDK intact, and a generic
    event stream that blocks ends with Anthropic's ``event: error`` object."""

    async def reply(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/events"):
            body = b'data: {"id": "e1", "text": "a secret"}\n\n'
            return web.Response(body=body, content_type="text/event-stream")
        return web.json_response(_batch("all fine"))

    async with redacting_proxy(BLOCKING) as p:
        p.upstream.reply = reply
        sdk = anthropic.AsyncAnthropic(base_url=p.url, api_key="sk-ant-test", max_retries=0)
        try:
            batch = await sdk.messages.batches.retrieve("msgbatch_1")
        finally:
            await sdk.close()
        url = f"{p.url}/v1/messages/batches/msgbatch_1/events"
        async with aiohttp.ClientSession() as http, http.get(url) as events:
            raw = await events.read()
    assert ("msgbatch_1", "ended") == (batch.id, batch.processing_status)
    [error] = [e for e in SSEDecoder().feed(raw) if isinstance(e, Event)]
    assert ("error", ANTHROPIC_BLOCKED) == (error.event, json.loads(error.data))


def test_keys_that_are_data_never_name_a_channel() -> None:
    """A map keyed by data (an address, free text) is filtered as usual, but its keys
    reach neither channel names (findings in the logs) nor the metric's labels."""
    body = {"scores": {LEAK: "a secret", "plain_key": "secret too", "two words": "secret"}}
    out, driver = walk(body, MASK)
    assert {LEAK: "a [MASKED]", "plain_key": "[MASKED] too", "two words": "[MASKED]"} == (
        out["scores"]
    )
    assert {"body.scores.*": 2, "body.scores.plain_key": 1} == driver.unknown_fields
    assert not any(LEAK in key or " " in key for key in driver.response.chains)


ONLY_CHAT = """
routes:
  - name: chat
    match: {{path: "/v1/chat/*"}}
    upstream: {{url: "{upstream}"}}
{extra}
"""


async def test_no_route_on_an_anthropic_path_is_an_anthropic_404() -> None:
    """A request no route takes answers 404 in the shape its path's SDK reads: the
    ``anthropic`` SDK raises ``NotFoundError`` with Anthropic's error object."""
    async with redacting_proxy(ONLY_CHAT) as p:
        sdk = anthropic.AsyncAnthropic(base_url=p.url, api_key="sk-ant-test", max_retries=0)
        try:
            with pytest.raises(anthropic.NotFoundError) as raised:
                await sdk.messages.create(
                    model="claude", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
                )
        finally:
            await sdk.close()
        async with aiohttp.ClientSession() as http, http.get(f"{p.url}/v1/files") as openai_path:
            assert "not_found" == (await openai_path.json())["error"]["code"]
    assert 404 == raised.value.status_code
    body = raised.value.body
    assert isinstance(body, dict)
    assert "error" == body["type"]
    assert "not_found" == body["error"]["type"]
    assert [] == p.upstream.seen
