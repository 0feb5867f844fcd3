"""Runs: lone text events of one upstream read go through the chains as one text.

Properties checked here, for the three protocols whose codecs find lone events (chat,
Anthropic messages, Responses): whatever the reads, the client reads the same text as
when every event is fed on its own; an unchanged release puts every event out byte for
byte; a replacement comes out in the event where the replaced text began; a block ends
the stream the protocol's way after the run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.driver import StreamDriver, spread
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols.anthropic import AnthropicStream
from pipeline.protocols.base import StreamCodec
from pipeline.protocols.openai_chat import OpenAIChatStream
from pipeline.protocols.request import RequestInfo
from pipeline.protocols.responses import ResponsesStream
from pipeline.sse import Event, SSEDecoder, encode

ROUTE = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'
MASK = (
    ROUTE
    + '    stages:\n      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret"}\n'
)
BLOCK = ROUTE + (
    "    stages:\n"
    '      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret", block: true}\n'
)
QUIET = (
    ROUTE + '    stages:\n      - {type: "tests.stages_for_tests:MaskWordFactory", word: "zzzz"}\n'
)


# --- spread ------------------------------------------------------------------------------


def test_spread_gives_each_piece_its_own_text_when_nothing_changed() -> None:
    assert ["ab", "c", "de"] == spread(["ab", "c", "de"], "abcde")


def test_spread_of_a_held_tail_empties_the_pieces_after_it() -> None:
    assert ["ab", "c", ""] == spread(["ab", "c", "de"], "abc")
    assert ["ab", "", ""] == spread(["ab", "cd", "e"], "ab")
    assert ["a", "", ""] == spread(["ab", "cd", "e"], "a")


def test_spread_puts_a_replacement_where_the_replaced_text_began() -> None:
    pieces = ["mail ", "a@b", ".c", " ok"]
    assert ["mail ", "[EMAIL]", "", " ok"] == spread(pieces, "mail [EMAIL] ok")
    assert ["mail ", "[EMAIL]", "", ""] == spread(pieces, "mail [EMAIL]")  # " ok" still held
    assert ["m[X]", "", ""] == spread(["ma", "b", "c"], "m[X]")
    assert ["ab", "[X]d", "ef"] == spread(["ab", "cd", "ef"], "ab[X]def")  # an insertion


def test_spread_keeps_an_addition_at_the_end_in_the_last_piece() -> None:
    assert ["ab", "c!"] == spread(["ab", "c"], "abc!")


@given(st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=8), st.text(max_size=30))
def test_spread_always_adds_up_to_the_release(pieces: list[str], released: str) -> None:
    assert released == "".join(spread(pieces, released))
    assert len(pieces) == len(spread(pieces, released))


# --- through the codecs ---------------------------------------------------------------------


def chat_events(pieces: Sequence[str]) -> list[Event]:
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    first = head | {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    out = [Event(json.dumps(first))]
    for piece in pieces:
        choice = {"index": 0, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}
        out.append(Event(json.dumps(head | {"choices": [choice]}, separators=(",", ":"))))
    last = head | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    return [*out, Event(json.dumps(last)), Event("[DONE]")]


def anthropic_events(pieces: Sequence[str]) -> list[Event]:
    def event(payload: dict[str, object]) -> Event:
        return Event(json.dumps(payload), str(payload["type"]))

    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    out = [
        event({"type": "message_start", "message": message}),
        event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
    ]
    for piece in pieces:
        delta = {"type": "text_delta", "text": piece}
        out.append(event({"type": "content_block_delta", "index": 0, "delta": delta}))
    out.append(event({"type": "content_block_stop", "index": 0}))
    out.append(event({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}}))
    return [*out, event({"type": "message_stop"})]


def responses_events(pieces: Sequence[str]) -> list[Event]:
    number = itertools.count()

    def event(payload: dict[str, object]) -> Event:
        kind = str(payload["type"])
        return Event(json.dumps({"type": kind, "sequence_number": next(number), **payload}), kind)

    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress"}
    text = "".join(pieces)
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    out = [
        event(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": item | {"content": []},
            }
        ),
        event(
            {"type": "response.content_part.added", **where}
            | {"part": {"type": "output_text", "text": "", "annotations": []}}
        ),
    ]
    kind = "response.output_text.delta"
    out.extend(event({"type": kind, **where, "delta": piece, "logprobs": []}) for piece in pieces)
    out.append(event({"type": "response.output_text.done", **where, "text": text, "logprobs": []}))
    return out


CODECS: dict[str, tuple[type[StreamCodec], Callable[[Sequence[str]], list[Event]]]] = {
    "chat": (OpenAIChatStream, chat_events),
    "anthropic": (AnthropicStream, anthropic_events),
    "responses": (ResponsesStream, responses_events),
}


def through(
    codec: type[StreamCodec], events: Sequence[Event], routes: str, reads: Sequence[int]
) -> bytes:
    """The client bytes for ``events`` fed in reads of ``reads`` events each (the rest in one)."""
    plan = build_plans(parse_config(routes))["r"]
    driver = StreamDriver(codec, ResponseFilter(plan), RequestInfo(stream=True))

    async def run() -> bytes:
        out, at = [], 0
        for size in [*reads, len(events)]:
            out.append(await driver.feed(events[at : at + size]))
            at += size
        return b"".join(out) + await driver.end()

    return asyncio.run(run())


def client_text(protocol: str, raw: bytes) -> str:
    """The text a client concatenates from the stream's deltas."""
    out: list[str] = []
    for item in SSEDecoder().feed(raw):
        if not isinstance(item, Event) or item.data == "[DONE]":
            continue
        payload = json.loads(item.data)
        if protocol == "chat":
            out.extend(c.get("delta", {}).get("content") or "" for c in payload.get("choices", []))
        elif protocol == "anthropic" and payload.get("type") == "content_block_delta":
            out.append(payload["delta"].get("text", ""))
        elif protocol == "responses" and payload.get("type") == "response.output_text.delta":
            out.append(payload["delta"])
    return "".join(out)


PIECES = ["Keep ", "the se", "cr", "et safe, ", "said ", "the ", "gard", "ener."]


def test_an_unchanged_run_puts_every_event_out_byte_for_byte() -> None:
    for name, (codec, make) in CODECS.items():
        events = make(PIECES)
        one_by_one = through(codec, events, QUIET, [1] * len(events))
        in_one_read = through(codec, events, QUIET, [])
        assert one_by_one == in_one_read, name
        for event in events:
            assert encode(event) in in_one_read, (name, event)


def test_a_replacement_comes_out_in_the_event_where_it_began() -> None:
    raw = through(OpenAIChatStream, chat_events(PIECES), MASK, [])
    contents = [
        json.loads(e.data)["choices"][0]["delta"].get("content")
        for e in SSEDecoder().feed(raw)
        if isinstance(e, Event) and e.data != "[DONE]"
    ]
    # "cr" lay wholly inside the replaced word: its event is empty, so it is not written.
    assert [
        "",
        "Keep ",
        "the [MASKED]",
        " safe, ",
        "said ",
        "the ",
        "gard",
        "ener.",
        None,
    ] == contents


def test_a_block_in_a_run_ends_the_stream_after_the_safe_text() -> None:
    for name, (codec, make) in CODECS.items():
        raw = through(codec, make(PIECES), BLOCK, [])
        assert b"secret" not in raw, name
        assert b"safe" not in raw, name
        assert "Keep the " == client_text(name, raw), name
        assert b"content_filter" in raw or b"refusal" in raw, name


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(CODECS)),
    st.lists(
        st.sampled_from(["se", "cr", "et", " ", "a", "secret", "s", "ecre", "t."]),
        min_size=1,
        max_size=12,
    ),
    st.lists(st.integers(min_value=1, max_value=5), max_size=8),
)
def test_any_reads_give_the_text_of_one_event_per_read(
    protocol: str, pieces: list[str], reads: list[int]
) -> None:
    codec, make = CODECS[protocol]
    events = make(pieces)
    expected = client_text(protocol, through(codec, events, MASK, [1] * len(events)))
    assert expected == client_text(protocol, through(codec, events, MASK, reads))
    assert "secret" not in expected
