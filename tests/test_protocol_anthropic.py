"""The Anthropic Messages adapter: recorded streams re-chunked at random, and the real SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.driver import StreamDriver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols.anthropic import AnthropicStream
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Event, SSEDecoder, encode, encode_data
from pipeline.testing import drive_stream, split_at
from tests.conftest import RECORDED, StackFactory, recorded_dir
from tests.conftest import sim_chunks as sim

# Empty where the recordings are absent, which pytest reports as skipped.
RECORDINGS = sorted(p.name for p in (RECORDED / "anthropic-messages").glob("*.sse"))
NO_STAGES = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'


def mask(word: str, *, block: bool = False) -> str:
    """A one-route config whose only stage masks (or blocks on) ``word``."""
    flag = "true" if block else "false"
    stage = f'{{type: "tests.stages_for_tests:MaskWordFactory", word: "{word}", block: {flag}}}'
    return NO_STAGES + f"    stages:\n      - {stage}\n"


END_MARK = NO_STAGES + '    stages:\n      - {type: "tests.stages_for_tests:EndMarkFactory"}\n'


def finish_block(end: str) -> str:
    """Stages that block while a block finishes with ``end``: the end mark ``<{end}>`` trips
    the second stage, which releases ``<`` and blocks."""
    stage = f'{{type: "tests.stages_for_tests:MaskWordFactory", word: "{end}>", block: true}}'
    return END_MARK + f"      - {stage}\n"


PROXY_ROUTES = """
routes:
  - name: claude
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
        block: {block}
"""
USER: Any = [{"role": "user", "content": "hi"}]
TOOL: Any = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TEXT_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json"}


# --- driving the adapter directly --------------------------------------------------------


def replay(
    raw: bytes, cuts: Sequence[int], routes: str, info: RequestInfo | None = None
) -> list[Event]:
    """Feed ``raw`` to decoder + adapter in reads cut at ``cuts``; the events the client gets."""
    plan = build_plans(parse_config(routes))["r"]
    adapter = StreamDriver(AnthropicStream, ResponseFilter(plan), info or RequestInfo())
    out = drive_stream(adapter, raw, cuts)
    return decode(out)


def decode(raw: bytes) -> list[Event]:
    """The events of a whole stream."""
    decoder = SSEDecoder()
    return [e for e in decoder.feed(raw) + decoder.close() if isinstance(e, Event)]


def sse(*payloads: dict[str, Any]) -> bytes:
    """Upstream bytes for events named by their type, as the API writes them."""
    return b"".join(encode_data(json.dumps(p), p["type"]) for p in payloads)


def is_text_delta(event: Event) -> bool:
    data = json.loads(event.data)
    delta = data.get("delta") if data.get("type") == "content_block_delta" else None
    return isinstance(delta, dict) and delta.get("type") in TEXT_DELTAS


def skeleton(events: list[Event]) -> list[tuple[str, str]]:
    """Every event except text and tool-input deltas, exactly as written."""
    return [(e.event, e.data) for e in events if not is_text_delta(e)]


def block_texts(events: list[Event]) -> dict[int, str]:
    """Text or tool input per block index, as a client concatenates the deltas."""
    texts: dict[int, str] = {}
    for event in filter(is_text_delta, events):
        data = json.loads(event.data)
        field = TEXT_DELTAS[data["delta"]["type"]]
        texts[data["index"]] = texts.get(data["index"], "") + data["delta"][field]
    return texts


def late_deltas(events: list[Event]) -> list[int]:
    """Positions of text deltas after their block's ``content_block_stop`` or after
    ``message_delta``: flushed text must come before both."""
    kinds = names(events)
    message_end = kinds.index("message_delta") if "message_delta" in kinds else len(events)
    stops = {
        json.loads(e.data)["index"]: position
        for position, e in enumerate(events)
        if e.event == "content_block_stop"
    }
    return [
        position
        for position, e in enumerate(events)
        if is_text_delta(e)
        and position > min(stops.get(json.loads(e.data)["index"], message_end), message_end)
    ]


def names(events: list[Event]) -> list[str]:
    return [e.event for e in events]


def recording(name: str) -> bytes:
    """A recorded stream ending with its blank line, as a live stream does.

    Some recordings were cut from SDK test files without the final blank line, which under
    the SSE rules would drop their last event.
    """
    path = recorded_dir() / "anthropic-messages" / name
    return path.read_bytes().rstrip(b"\n") + b"\n\n"


# --- recorded streams ---------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORDINGS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_recorded_streams_pass_unchanged_without_stages(name: str, data: st.DataObject) -> None:
    """With no stages, every event of every recording reaches the client as sent, in order."""
    raw = recording(name)
    cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=80))
    expected = [(e.event, e.data) for e in decode(raw)]
    assert expected == [(e.event, e.data) for e in replay(raw, cuts, NO_STAGES)]


@pytest.mark.parametrize("name", RECORDINGS)
@settings(max_examples=30, deadline=None)
@given(data=st.data(), word=st.sampled_from(["Paris", "eclipse", "the", "Hello", "ar"]))
def test_recorded_streams_masked_in_any_chunking(name: str, data: st.DataObject, word: str) -> None:
    """Any byte split of a recording gives the masked text per block and every other event
    (ping, thinking, signature, stops, usage) untouched and in its place."""
    raw = recording(name)
    cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=80))
    source = decode(raw)
    out = replay(raw, cuts, mask(word))
    assert skeleton(source) == skeleton(out)
    expected = {i: t.replace(word, "[MASKED]") for i, t in block_texts(source).items()}
    assert expected == block_texts(out)
    assert [] == late_deltas(out)


def test_thinking_and_signature_are_never_altered() -> None:
    """A masked word inside thinking stays, so the provider's signature still verifies."""
    raw = recording("stream-a-refusal.sse")
    out = replay(raw, [], mask("eclipse"))
    deltas = [json.loads(e.data)["delta"] for e in out if e.event == "content_block_delta"]
    thinking = [d for d in deltas if d["type"] in ("thinking_delta", "signature_delta")]
    assert any("solar eclipse" in d.get("thinking", "") for d in thinking)
    assert any(d.get("type") == "signature_delta" for d in thinking)
    assert '{"type": "ping"}' in [e.data for e in out]


def test_tool_input_split_mid_word_is_masked_and_stays_json() -> None:
    """``Paris`` arriving as ``P`` + ``ar`` + ``is`` is masked and the input still parses."""
    raw = recording("tool_use_response.sse")
    out = replay(raw, [], mask("Paris"))
    assert {"location": "[MASKED]"} == json.loads(block_texts(out)[1])


def test_truncated_block_is_finished_as_truncated_before_message_delta() -> None:
    """A tool input cut by max_tokens (no content_block_stop) is finished TRUNCATED, and its
    last text arrives before message_delta; stopped blocks finish COMPLETE."""
    raw = recording("incomplete_partial_json_response.sse")
    out = replay(raw, [], END_MARK)
    texts = block_texts(out)
    assert texts[0].endswith("<complete>")
    assert texts[1].endswith("<truncated>")
    kinds = names(out)
    last_delta = max(i for i, e in enumerate(out) if is_text_delta(e))
    assert last_delta < kinds.index("message_delta")
    assert 1 == kinds.count("content_block_stop")


# --- ordering, errors and blocks at the adapter -----------------------------------------------

START = {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": {}}}
TEXT_BLOCK = {
    "type": "content_block_start",
    "index": 0,
    "content_block": {"type": "text", "text": ""},
}


def text_delta(text: str, index: int = 0) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": text},
    }


def test_held_text_is_flushed_before_its_block_stop() -> None:
    """Text held at the end of a block comes out as one more delta before content_block_stop."""
    raw = sse(START, TEXT_BLOCK, text_delta("a sec"), {"type": "content_block_stop", "index": 0})
    out = replay(raw, [], mask("secret"))
    assert ["message_start", "content_block_start", *["content_block_delta"] * 2] == names(out)[:4]
    assert ["a ", "sec"] == [json.loads(e.data)["delta"]["text"] for e in out[2:4]]
    assert "content_block_stop" == out[4].event


def test_wholly_held_delta_is_not_written() -> None:
    """A delta whose text is all held back produces no event at all."""
    raw = sse(START, TEXT_BLOCK, text_delta("x "), text_delta("se"))
    out = replay(raw, [], mask("secret"))
    assert ["x "] == [json.loads(e.data)["delta"]["text"] for e in out if is_text_delta(e)]


def test_message_stop_without_message_delta_still_flushes_first() -> None:
    """A stream ending at message_stop with text still held writes it before message_stop."""
    raw = sse(START, TEXT_BLOCK, text_delta("sec"), {"type": "message_stop"})
    out = replay(raw, [], mask("secret"))
    assert ["content_block_delta", "message_stop"] == names(out)[-2:]
    assert {0: "sec"} == block_texts(out)


def test_text_in_content_block_start_goes_through_the_stages() -> None:
    """A text block opened with text (the API opens it empty) cannot bypass the stages."""
    opening = {**TEXT_BLOCK, "content_block": {"type": "text", "text": "my secret"}}
    out = replay(sse(START, opening, {"type": "message_stop"}), [], mask("secret"))
    assert "my [MASKED]" == json.loads(out[1].data)["content_block"]["text"]


def test_upstream_error_event_passes_and_drops_held_text() -> None:
    """An upstream ``event: error`` reaches the client, ends the stream, and held text dies."""
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    raw = sse(START, TEXT_BLOCK, text_delta("x sec"), error, text_delta("ret"))
    out = replay(raw, [], mask("secret"))
    assert {0: "x "} == block_texts(out)
    assert ("error", error) == (out[-1].event, json.loads(out[-1].data))


def test_block_closes_the_open_block_then_stops_with_refusal() -> None:
    """A block writes content_block_stop, message_delta(refusal, usage) and message_stop."""
    raw = sse(START, TEXT_BLOCK, text_delta("one "), text_delta("two secret three"))
    out = replay(raw, [], mask("secret", block=True))
    assert {0: "one two "} == block_texts(out)
    tail = [json.loads(e.data) for e in out[-3:]]
    assert ["content_block_stop", "message_delta", "message_stop"] == names(out)[-3:]
    assert "refusal" == tail[1]["delta"]["stop_reason"]
    assert "refusal" == tail[1]["delta"]["stop_details"]["type"]
    assert 2 == tail[1]["usage"]["output_tokens"]


def test_unfinished_stream_ends_with_an_api_error_event() -> None:
    """An upstream that stops mid-message gets ``event: error`` of type api_error."""
    out = replay(sse(START, TEXT_BLOCK, text_delta("x")), [], NO_STAGES)
    assert "error" == out[-1].event
    body = json.loads(out[-1].data)
    assert ("error", "api_error") == (body["type"], body["error"]["type"])


def test_tool_input_channel_is_json_with_the_tools_input_schema() -> None:
    """input_json_delta text runs on a JSON channel carrying the tool's input_schema."""
    info = RequestInfo.from_json({"tools": [TOOL]})
    plan = build_plans(parse_config(NO_STAGES))["r"]
    adapter = StreamDriver(AnthropicStream, ResponseFilter(plan), info)
    opening = {"type": "tool_use", "id": "t", "name": "get_weather", "input": {}}
    delta = {"type": "input_json_delta", "partial_json": '{"city"'}
    raw = sse(
        START,
        {"type": "content_block_start", "index": 1, "content_block": opening},
        {"type": "content_block_delta", "index": 1, "delta": delta},
    )
    asyncio.run(adapter.feed(SSEDecoder().feed(raw)))
    channel = adapter.response.chains["block1.input"].channel
    assert ("json", TOOL["input_schema"]) == (channel.kind.value, channel.json_schema)


def stop(index: int = 0) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def refusal_ending(events: list[Event]) -> bool:
    """The stream ends as the API ends a refusal: one message_delta (refusal), message_stop."""
    deltas = [json.loads(e.data) for e in events if e.event == "message_delta"]
    return (
        names(events)[-2:] == ["message_delta", "message_stop"]
        and len(deltas) == 1
        and deltas[0]["delta"]["stop_reason"] == "refusal"
    )


def leaked(events: list[Event], *words: str) -> list[str]:
    """Which of ``words`` appear anywhere in the events the client got."""
    return [word for word in words if any(word in e.data for e in events)]


def test_upstream_id_and_retry_are_kept_on_every_re_emitted_event() -> None:
    """Upstream events keep their ``id:`` and ``retry:``, rewritten or passed as sent."""
    payloads: list[dict[str, Any]] = [
        START,
        TEXT_BLOCK,
        text_delta("a secret"),
        stop(),
        {"type": "message_stop"},
    ]
    raw = b"".join(
        encode(Event(json.dumps(p), p["type"], f"e{n}", 1500)) for n, p in enumerate(payloads)
    )
    out = replay(raw, [], mask("secret"))
    assert {0: "a [MASKED]"} == block_texts(out)
    assert [(f"e{n}", 1500) for n in range(len(payloads))] == [(e.id, e.retry) for e in out]


@pytest.mark.parametrize("data", ["not json", "[1, 2]"])
def test_an_event_that_is_not_a_json_object_ends_with_an_error(data: str) -> None:
    """An event whose data is not a JSON object ends the stream with an api_error event."""
    raw = sse(START) + encode_data(data, "content_block_delta") + sse(TEXT_BLOCK)
    out = replay(raw, [], NO_STAGES)
    assert ["message_start", "error"] == names(out)
    assert "api_error" == json.loads(out[-1].data)["error"]["type"]


def test_block_inside_content_block_start_text_sends_nothing_after_it() -> None:
    """A block in the text a block opens with: the opening carries the text before it, the
    block is stopped, the message ends as a refusal, and nothing later is sent."""
    opening = {**TEXT_BLOCK, "content_block": {"type": "text", "text": "ok secret REST"}}
    raw = sse(START, opening, text_delta("MORE"), stop(), {"type": "message_stop"})
    out = replay(raw, [], mask("secret", block=True))
    assert "ok " == json.loads(out[1].data)["content_block"]["text"]
    assert ["content_block_stop", "message_delta", "message_stop"] == names(out)[2:]
    assert refusal_ending(out)
    assert [] == leaked(out, "secret", "REST", "MORE")


def test_block_decided_at_content_block_stop_is_a_refusal() -> None:
    """A block decided while a block finishes: the text released with it precedes the stop,
    and the message ends as a refusal, not end_turn."""
    raw = sse(
        START,
        TEXT_BLOCK,
        text_delta("hi"),
        stop(),
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        {"type": "message_stop"},
    )
    out = replay(raw, [], finish_block("complete"))
    assert {0: "hi<"} == block_texts(out)
    assert [] == late_deltas(out)
    assert 1 == names(out).count("content_block_stop")
    assert refusal_ending(out)


def test_block_finishing_one_open_block_at_message_delta_flushes_no_other() -> None:
    """At a max_tokens message_delta, a block decided finishing block 0 ends the message as
    a refusal: block 1's held text and the upstream's stop reason never go out."""
    second = {**TEXT_BLOCK, "index": 1}
    raw = sse(
        START,
        TEXT_BLOCK,
        text_delta("hi"),
        second,
        text_delta("at", index=1),
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {}},
        {"type": "message_stop"},
    )
    out = replay(raw, [], finish_block("truncated"))
    assert {0: "hi<", 1: "a"} == block_texts(out)
    assert [] == late_deltas(out)
    assert [0, 1] == [json.loads(e.data)["index"] for e in out if e.event == "content_block_stop"]
    assert refusal_ending(out)
    assert [] == leaked(out, "max_tokens", "truncated")


def test_block_decided_at_message_stop_is_a_refusal() -> None:
    """A stream ending at message_stop with a block still open: a block decided finishing it
    writes the block's stop and a refusal before message_stop."""
    raw = sse(START, TEXT_BLOCK, text_delta("hi"), {"type": "message_stop"})
    out = replay(raw, [], finish_block("complete"))
    assert {0: "hi<"} == block_texts(out)
    assert ["content_block_stop", "message_delta", "message_stop"] == names(out)[-3:]
    assert refusal_ending(out)


# --- the real SDK through the proxy ---------------------------------------------------------


@pytest.fixture
async def claude(stack: StackFactory) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An SDK client for a proxy that masks ``secret`` in front of the simulator."""
    s = await stack(PROXY_ROUTES, block="false")
    async with anthropic.AsyncAnthropic(base_url=s.proxy_url, api_key="x", max_retries=0) as c:
        yield c


@pytest.fixture
async def claude_blocking(stack: StackFactory) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An SDK client for a proxy that blocks on ``secret``."""
    s = await stack(PROXY_ROUTES, block="true")
    async with anthropic.AsyncAnthropic(base_url=s.proxy_url, api_key="x", max_retries=0) as c:
        yield c


async def test_sdk_create_stream_masks_a_word_split_across_deltas(
    claude: anthropic.AsyncAnthropic,
) -> None:
    """messages.create(stream=True) yields deltas spelling the masked text, then end_turn."""
    stream = await claude.messages.create(
        model="claude-x",
        max_tokens=50,
        messages=USER,
        stream=True,
        extra_body=sim(["The sec", "ret is ", "out"]),
    )
    events = [event async for event in stream]
    text = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert "The [MASKED] is out" == text
    assert "message_start" == events[0].type
    assert "message_stop" == events[-1].type
    assert ["end_turn"] == [e.delta.stop_reason for e in events if e.type == "message_delta"]


async def test_sdk_stream_helper_text_stream_and_final_message(
    claude: anthropic.AsyncAnthropic,
) -> None:
    """text_stream and get_final_message agree on the masked text and keep the usage."""
    async with claude.messages.stream(
        model="claude-x",
        max_tokens=50,
        messages=USER,
        extra_body=sim(["a secret", " and ", "secr", "et"]),
    ) as stream:
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
    assert "a [MASKED] and [MASKED]" == "".join(pieces)
    assert [{"type": "text", "text": "a [MASKED] and [MASKED]"}] == [
        {"type": b.type, "text": getattr(b, "text", None)} for b in final.content
    ]
    assert ("end_turn", 4) == (final.stop_reason, final.usage.output_tokens)


async def test_sdk_tool_input_is_masked_and_still_valid_json(
    claude: anthropic.AsyncAnthropic,
) -> None:
    """A tool input split mid-word is masked and the final message's input is parsed JSON."""
    call: dict[str, Any] = {"name": "get_weather", "arguments": '{"city": "secret town"}'}
    call["chunks"] = ['{"city": "se', "cr", 'et town"}']
    async with claude.messages.stream(
        model="claude-x",
        max_tokens=50,
        messages=USER,
        tools=[TOOL],
        extra_body={"sim": {"text": "Checking.", "tool_calls": [call], "sse_split": "bytes"}},
    ) as stream:
        final = await stream.get_final_message()
    tool = final.content[1]
    assert "tool_use" == tool.type
    assert {"city": "[MASKED] town"} == tool.input
    assert "tool_use" == final.stop_reason


async def test_sdk_non_streaming_message_is_masked(claude: anthropic.AsyncAnthropic) -> None:
    """A message body runs its text and tool input through the same stages."""
    call = {"name": "get_weather", "arguments": '{"city": "secret"}'}
    message = await claude.messages.create(
        model="claude-x",
        max_tokens=50,
        messages=USER,
        tools=[TOOL],
        extra_body={"sim": {"text": "my secret", "tool_calls": [call]}},
    )
    text, tool = message.content
    assert "text" == text.type
    assert "my [MASKED]" == text.text
    assert "tool_use" == tool.type
    assert {"city": "[MASKED]"} == tool.input


async def test_sdk_block_mid_stream_ends_with_refusal(
    claude_blocking: anthropic.AsyncAnthropic,
) -> None:
    """A block mid-stream gives the text before it, then a final message with stop_reason
    refusal: no exception, no hang, the word never delivered."""
    async with (
        asyncio.timeout(10),
        claude_blocking.messages.stream(
            model="claude-x",
            max_tokens=50,
            messages=USER,
            extra_body=sim(["Safe text, ", "then a sec", "ret", " and more."]),
        ) as stream,
    ):
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
    assert "Safe text, then a " == "".join(pieces)
    assert "refusal" == final.stop_reason
    assert final.stop_details is not None
    assert "refusal" == final.stop_details.type
    assert 1 == len(final.content)


async def test_sdk_block_in_tool_input_ends_with_refusal(
    claude_blocking: anthropic.AsyncAnthropic,
) -> None:
    """A block inside a tool input ends the message with refusal, never with the word."""
    call = {"name": "get_weather", "arguments": '{"city": "secret"}'}
    async with (
        asyncio.timeout(10),
        claude_blocking.messages.stream(
            model="claude-x",
            max_tokens=50,
            messages=USER,
            tools=[TOOL],
            extra_body={"sim": {"text": "Checking.", "tool_calls": [call]}},
        ) as stream,
    ):
        final = await stream.get_final_message()
    assert "refusal" == final.stop_reason
    assert ["text", "tool_use"] == [b.type for b in final.content]
    assert "secret" not in final.model_dump_json()


async def test_sdk_block_in_non_streaming_message(
    claude_blocking: anthropic.AsyncAnthropic,
) -> None:
    """A blocked body keeps the text before the block and says refusal."""
    message = await claude_blocking.messages.create(
        model="claude-x", max_tokens=50, messages=USER, extra_body=sim(["ok then secret stuff"])
    )
    assert "refusal" == message.stop_reason
    assert ["ok then "] == [b.text for b in message.content if b.type == "text"]


async def test_sdk_raises_on_upstream_drop_and_never_sees_held_text(
    claude: anthropic.AsyncAnthropic,
) -> None:
    """An upstream that drops mid-stream becomes ``event: error``, on which the SDK raises."""
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="before the stream completed"):
        async with (
            asyncio.timeout(10),
            claude.messages.stream(
                model="claude-x",
                max_tokens=50,
                messages=USER,
                extra_body={"sim": {"chunks": ["hello ", "sec", "ret"], "fail_after": 2}},
            ) as stream,
        ):
            seen.extend([piece async for piece in stream.text_stream])
    assert "sec" not in "".join(seen)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), text=st.text(alphabet="secrt a\u00e9\U0001f600", min_size=1, max_size=30))
async def test_sdk_text_is_the_same_for_any_split(
    claude: anthropic.AsyncAnthropic, data: st.DataObject, text: str
) -> None:
    """Random deltas and byte-sized SSE writes give the same client text as one delta."""
    cuts = data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=10))
    async with claude.messages.stream(
        model="claude-x", max_tokens=50, messages=USER, extra_body=sim(split_at(text, cuts))
    ) as stream:
        pieces = [piece async for piece in stream.text_stream]
        final = await stream.get_final_message()
    assert text.replace("secret", "[MASKED]") == "".join(pieces)
    assert [text.replace("secret", "[MASKED]")] == [
        b.text for b in final.content if b.type == "text"
    ]
