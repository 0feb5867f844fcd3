"""The upstream simulator speaks each API's wire format well enough for the official SDKs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest
from aiohttp import web
from anthropic.types import MessageParam, ToolParam
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageParam
from openai.types.responses import FunctionToolParam

from pipeline.simulator import (
    DEFAULT_TEXT,
    SIM_STATS,
    SimStats,
    SimulatorSettings,
    bound_port,
    make_simulator_app,
    start_simulator,
)

RECORDED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "recorded"
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ANTHROPIC_TOOL: ToolParam = {
    "name": "get_weather",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
RESPONSES_TOOL: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello"}]
CLAUDE_USER: list[MessageParam] = [{"role": "user", "content": "Hello"}]
SETTINGS = SimulatorSettings(text="Mail jane.doe@example.com today.")


@pytest.fixture
async def runner() -> AsyncIterator[web.AppRunner]:
    """A simulator on a free loopback port."""
    started = await start_simulator("127.0.0.1", 0, SETTINGS)
    yield started
    await started.cleanup()


@pytest.fixture
def base_url(runner: web.AppRunner) -> str:
    return f"http://127.0.0.1:{bound_port(runner)}"


@pytest.fixture
def stats(runner: web.AppRunner) -> SimStats:
    app = runner.app
    assert isinstance(app, web.Application)
    return app[SIM_STATS]


@pytest.fixture
async def oai(base_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="x", max_retries=0) as c:
        yield c


@pytest.fixture
async def claude(base_url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="x", max_retries=0) as c:
        yield c


async def post_raw(base_url: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    """POST ``body`` and return the status and the whole raw body."""
    async with aiohttp.ClientSession() as session, session.post(base_url + path, json=body) as r:
        return r.status, await r.read()


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) per event of a well-formed stream that uses ``\\n`` line ends."""
    events = []
    for block in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line)
        if "data" in fields:
            events.append((fields.get("event"), fields["data"]))
    return events


def shape(value: Any) -> Any:
    """The key structure of a JSON value (keys in order, lists by their first item)."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


# --- OpenAI chat completions ------------------------------------------------------------


async def test_chat_stream_reassembles_default_text_in_several_deltas() -> None:
    """With default settings the stream spells DEFAULT_TEXT over many word-piece deltas."""
    started = await start_simulator("127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(started)}/v1"
        async with openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=USER, stream=True
            )
            chunks = [chunk async for chunk in stream]
    finally:
        await started.cleanup()
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert DEFAULT_TEXT == "".join(deltas)
    assert "jane.doe@example.com" in DEFAULT_TEXT
    assert len(deltas) > 40
    assert 4 >= max(len(delta) for delta in deltas)


async def test_chat_stream_chunks_share_ids_and_end_with_finish(oai: openai.AsyncOpenAI) -> None:
    """Every chunk repeats one id, model and fingerprint; role comes first, stop comes last."""
    stream = await oai.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    assert 1 == len({(c.id, c.created, c.model, c.system_fingerprint) for c in chunks})
    assert "gpt-4o" == chunks[0].model
    assert "assistant" == chunks[0].choices[0].delta.role
    assert "stop" == chunks[-1].choices[0].finish_reason
    assert SETTINGS.text == "".join(c.choices[0].delta.content or "" for c in chunks)


async def test_chat_stream_ends_with_done_line(base_url: str) -> None:
    """The raw stream ends with the ``data: [DONE]`` sentinel."""
    status, raw = await post_raw(base_url, "/v1/chat/completions", {"model": "m", "stream": True})
    assert 200 == status
    assert raw.endswith(b"\n\ndata: [DONE]\n\n")


async def test_chat_chunks_are_streamed_exactly(oai: openai.AsyncOpenAI) -> None:
    """sim.chunks become exactly those deltas, so a test controls where a secret is cut."""
    chunks = ["Mail john@exa", "mple.com", " now"]
    stream = await oai.chat.completions.create(
        model="m", messages=USER, stream=True, extra_body={"sim": {"chunks": chunks}}
    )
    assert chunks == [
        c.choices[0].delta.content async for c in stream if c.choices[0].delta.content
    ]


async def test_chat_non_streaming_returns_completion(oai: openai.AsyncOpenAI) -> None:
    """Without ``stream`` the reply is one chat.completion object with usage."""
    completion = await oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert "chat.completion" == completion.object
    assert SETTINGS.text == completion.choices[0].message.content
    assert "stop" == completion.choices[0].finish_reason
    assert completion.usage is not None
    assert completion.usage.prompt_tokens + completion.usage.completion_tokens == (
        completion.usage.total_tokens
    )


async def test_chat_n2_interleaves_choices(oai: openai.AsyncOpenAI) -> None:
    """n=2 streams both choices chunk by chunk, each with its own text and finish."""
    stream = await oai.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        n=2,
        stream=True,
        extra_body={"sim": {"choices": ["Alpha beta gamma", "One two three"]}},
    )
    chunks = [chunk async for chunk in stream]
    texts = ["", ""]
    finishes: list[str | None] = [None, None]
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            finishes[choice.index] = choice.finish_reason or finishes[choice.index]
    assert ["Alpha beta gamma", "One two three"] == texts
    assert ["stop", "stop"] == finishes
    order = [c.choices[0].index for c in chunks]
    assert [0, 0, 1, 1, 0, 1] == order[:6]


async def test_chat_include_usage_adds_usage_chunk(oai: openai.AsyncOpenAI) -> None:
    """stream_options.include_usage adds a final chunk with no choices and the usage."""
    stream = await oai.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"sim": {"chunks": ["a", "b", "c"]}},
    )
    chunks = [chunk async for chunk in stream]
    assert [] == chunks[-1].choices
    assert chunks[-1].usage is not None
    assert 3 == chunks[-1].usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


async def test_chat_tool_calls_stream_to_parseable_arguments(oai: openai.AsyncOpenAI) -> None:
    """Tool calls stream name first, then argument pieces, and finish with tool_calls."""
    calls = [
        {"name": "get_weather", "arguments": '{"city": "Edinburgh"}'},
        {
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
            "chunks": ['{"ci', 'ty": "Paris"}'],
        },
    ]
    async with oai.chat.completions.stream(
        model="gpt-4o",
        messages=USER,
        tools=[WEATHER_TOOL],
        extra_body={"sim": {"tool_calls": calls}},
    ) as stream:
        completion = await stream.get_final_completion()
    choice = completion.choices[0]
    assert "tool_calls" == choice.finish_reason
    assert choice.message.content is None
    tool_calls = choice.message.tool_calls or []
    assert [{"city": "Edinburgh"}, {"city": "Paris"}] == [
        json.loads(call.function.arguments) for call in tool_calls
    ]
    assert 2 == len({call.id for call in tool_calls})


async def test_chat_tool_calls_without_tools_are_refused(oai: openai.AsyncOpenAI) -> None:
    """Asking for tool calls on a request that offers no tools is a 400, not silent text."""
    with pytest.raises(openai.BadRequestError, match="needs `tools`"):
        await oai.chat.completions.create(
            model="gpt-4o",
            messages=USER,
            extra_body={"sim": {"tool_calls": [{"name": "f", "arguments": "{}"}]}},
        )


async def test_chat_logprobs_repeat_each_delta(oai: openai.AsyncOpenAI) -> None:
    """logprobs=true gives every content chunk one logprob entry whose token is the delta."""
    stream = await oai.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, logprobs=True
    )
    chunks = [chunk async for chunk in stream]
    content = [c.choices[0] for c in chunks if c.choices[0].delta.content]
    assert content
    for choice in content:
        assert choice.logprobs is not None
        assert choice.logprobs.content is not None
        assert [choice.delta.content] == [entry.token for entry in choice.logprobs.content]
        assert choice.logprobs.content[0].logprob <= 0


async def test_chat_finish_reason_override(oai: openai.AsyncOpenAI) -> None:
    """sim.finish_reason replaces the natural finish reason."""
    completion = await oai.chat.completions.create(
        model="gpt-4o", messages=USER, extra_body={"sim": {"finish_reason": "length"}}
    )
    assert "length" == completion.choices[0].finish_reason


async def test_chat_seed_replays_ids(base_url: str) -> None:
    """Two requests with the same sim.seed get the same ids and fingerprint."""
    body = {"model": "m", "sim": {"seed": 7}}
    first = json.loads((await post_raw(base_url, "/v1/chat/completions", body))[1])
    second = json.loads((await post_raw(base_url, "/v1/chat/completions", body))[1])
    assert (first["id"], first["system_fingerprint"]) == (
        second["id"],
        second["system_fingerprint"],
    )


# --- Wire-format parity with the recorded streams -----------------------------------------


@pytest.fixture(scope="module")
def recorded() -> Path:
    """The directory of recorded real upstream streams."""
    if not RECORDED.is_dir():
        pytest.skip(f"recorded upstream fixtures not found at {RECORDED}")
    return RECORDED


async def test_chat_chunk_shapes_match_recording(base_url: str, recorded: Path) -> None:
    """Role, content, finish and usage chunks have the recorded field sets in order."""
    real = [
        json.loads(d)
        for _, d in sse_events((recorded / "openai-chat/plain-text-with-usage.sse").read_bytes())[
            :-1
        ]
    ]
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    ours = [
        json.loads(d)
        for _, d in sse_events((await post_raw(base_url, "/v1/chat/completions", body))[1])[:-1]
    ]
    for index in (0, 1, -2, -1):
        assert shape(real[index]) == shape(ours[index])


async def test_chat_tool_chunk_shapes_match_recording(base_url: str, recorded: Path) -> None:
    """Tool-call role, opening and argument chunks have the recorded field sets in order."""
    raw = (recorded / "openai-chat/parallel-tool-calls.sse").read_bytes()
    real = [json.loads(d) for _, d in sse_events(raw)[:3]]
    sim = {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}]}
    body = {"model": "m", "stream": True, "tools": [WEATHER_TOOL], "sim": sim}
    ours = [
        json.loads(d)
        for _, d in sse_events((await post_raw(base_url, "/v1/chat/completions", body))[1])[:3]
    ]
    assert [shape(chunk) for chunk in real] == [shape(chunk) for chunk in ours]


async def test_chat_logprob_chunk_shapes_match_recording(base_url: str, recorded: Path) -> None:
    """With logprobs, role and content chunks have the recorded field sets in order."""
    raw = (recorded / "openai-chat/logprobs-content.sse").read_bytes()
    real = [json.loads(d) for _, d in sse_events(raw)[:3]]
    body = {"model": "m", "stream": True, "logprobs": True}
    ours = [
        json.loads(d)
        for _, d in sse_events((await post_raw(base_url, "/v1/chat/completions", body))[1])[:3]
    ]
    assert [shape(chunk) for chunk in real] == [shape(chunk) for chunk in ours]


async def test_anthropic_event_shapes_match_recording(base_url: str, recorded: Path) -> None:
    """A tool-use reply has the recorded event sequence and per-event field sets."""
    real = sse_events((recorded / "anthropic-messages/tool_use_response.sse").read_bytes())
    sim = {"text": "I'll check.", "tool_calls": [{"name": "get_weather", "arguments": '{"a": 1}'}]}
    body = {"model": "m", "stream": True, "tools": [ANTHROPIC_TOOL], "sim": sim}
    ours = sse_events((await post_raw(base_url, "/v1/messages", body))[1])

    def squeeze(events: list[tuple[str | None, str]]) -> list[tuple[str | None, Any]]:
        seen: list[tuple[str | None, Any]] = []
        for name, data in events:
            item = (name, shape(json.loads(data)))
            if not seen or seen[-1] != item:
                seen.append(item)
        return seen

    assert squeeze(real) == squeeze(ours)


# --- OpenAI legacy completions -------------------------------------------------------------


async def test_completions_stream_and_non_stream(oai: openai.AsyncOpenAI) -> None:
    """Legacy completions stream text_completion chunks and return one object otherwise."""
    stream = await oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", stream=True)
    chunks = [chunk async for chunk in stream]
    assert SETTINGS.text == "".join(c.choices[0].text for c in chunks)
    assert "stop" == chunks[-1].choices[0].finish_reason
    assert {"text_completion"} == {c.object for c in chunks}
    whole = await oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Hi", n=2)
    assert [SETTINGS.text, SETTINGS.text] == [choice.text for choice in whole.choices]


# --- Anthropic Messages --------------------------------------------------------------------


async def test_anthropic_stream_text(claude: anthropic.AsyncAnthropic) -> None:
    """messages.stream yields the text and a final message that ended its turn."""
    async with claude.messages.stream(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=CLAUDE_USER,
    ) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert SETTINGS.text == "".join(pieces)
    assert len(pieces) > 3
    assert "end_turn" == final.stop_reason
    assert "claude-sonnet-4-20250514" == final.model
    assert final.usage.output_tokens == len(pieces)


async def test_anthropic_stream_tool_use(claude: anthropic.AsyncAnthropic) -> None:
    """A tool-use reply streams input_json_delta pieces that the SDK assembles into input."""
    sim = {
        "text": "Checking.",
        "tool_calls": [{"name": "get_weather", "arguments": '{"city": "Paris"}'}],
    }
    async with claude.messages.stream(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=CLAUDE_USER,
        tools=[ANTHROPIC_TOOL],
        extra_body={"sim": sim},
    ) as stream:
        final = await stream.get_final_message()
    assert "tool_use" == final.stop_reason
    assert ["text", "tool_use"] == [block.type for block in final.content]
    tool = final.content[1]
    assert tool.type == "tool_use"
    assert ("get_weather", {"city": "Paris"}) == (tool.name, tool.input)
    assert tool.id.startswith("toolu_")


async def test_anthropic_non_streaming_message(claude: anthropic.AsyncAnthropic) -> None:
    """Without ``stream`` the reply is one message object."""
    message = await claude.messages.create(
        model="claude-sonnet-4-20250514",
        max_tokens=100,
        messages=CLAUDE_USER,
    )
    assert [SETTINGS.text] == [b.text for b in message.content if b.type == "text"]
    assert "end_turn" == message.stop_reason


async def test_anthropic_non_streaming_tool_use(claude: anthropic.AsyncAnthropic) -> None:
    """A non-streaming tool-use reply carries the parsed input object."""
    sim = {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Rome"}'}]}
    message = await claude.messages.create(
        model="m",
        max_tokens=100,
        messages=CLAUDE_USER,
        tools=[ANTHROPIC_TOOL],
        extra_body={"sim": sim},
    )
    block = message.content[0]
    assert block.type == "tool_use"
    assert ("tool_use", {"city": "Rome"}) == (message.stop_reason, block.input)


async def test_anthropic_errors_use_anthropic_shape(base_url: str) -> None:
    """A body that is not JSON gets Anthropic's error object on /v1/messages."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + "/v1/messages", data=b"{not json") as response,
    ):
        body = await response.json()
    assert (400, "error", "invalid_request_error") == (
        response.status,
        body["type"],
        body["error"]["type"],
    )


async def test_anthropic_truncation_maps_to_max_tokens(base_url: str) -> None:
    """finish_reason=length becomes max_tokens and, as recorded, the cut block never stops."""
    body = {"model": "m", "stream": True, "sim": {"finish_reason": "length"}}
    events = sse_events((await post_raw(base_url, "/v1/messages", body))[1])
    names = [name for name, _ in events]
    assert "content_block_stop" not in names
    assert ["message_delta", "message_stop"] == names[-2:]
    assert "max_tokens" == json.loads(events[-2][1])["delta"]["stop_reason"]


# --- OpenAI Responses ------------------------------------------------------------------------


async def test_responses_stream_events_in_sequence(oai: openai.AsyncOpenAI) -> None:
    """responses.create(stream=True) yields the lifecycle events with increasing numbers."""
    stream = await oai.responses.create(model="gpt-4o", input="Hi", stream=True)
    events = [event async for event in stream]
    assert list(range(len(events))) == [e.sequence_number for e in events]
    types = [e.type for e in events]
    assert ["response.created", "response.in_progress", "response.output_item.added"] == types[:3]
    assert "response.completed" == types[-1]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert SETTINGS.text == "".join(deltas)


async def test_responses_stream_final_response(oai: openai.AsyncOpenAI) -> None:
    """responses.stream(...).get_final_response() assembles the text."""
    async with oai.responses.stream(model="gpt-4o", input="Hi") as stream:
        final = await stream.get_final_response()
    assert SETTINGS.text == final.output_text
    assert "completed" == final.status


async def test_responses_stream_function_call(oai: openai.AsyncOpenAI) -> None:
    """A function call streams its arguments and lands in the final response output."""
    sim = {"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Oslo"}'}]}
    async with oai.responses.stream(
        model="gpt-4o",
        input="Hi",
        tools=[RESPONSES_TOOL],
        extra_body={"sim": sim},
    ) as stream:
        final = await stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call"
    assert ("get_weather", {"city": "Oslo"}) == (call.name, json.loads(call.arguments))


async def test_responses_text_then_function_call(oai: openai.AsyncOpenAI) -> None:
    """Explicit text plus a tool call gives a message item, then a function_call item."""
    sim = {"text": "Let me look.", "tool_calls": [{"name": "get_weather", "arguments": "{}"}]}
    result = await oai.responses.create(
        model="m", input="Hi", tools=[RESPONSES_TOOL], extra_body={"sim": sim}
    )
    assert ["message", "function_call"] == [item.type for item in result.output]
    assert "Let me look." == result.output_text


async def test_responses_non_streaming(oai: openai.AsyncOpenAI) -> None:
    """Without ``stream`` the reply is one response object with usage."""
    result = await oai.responses.create(model="gpt-4o", input="Hi")
    assert SETTINGS.text == result.output_text
    assert result.usage is not None
    assert result.usage.output_tokens > 0


async def test_responses_truncation_ends_incomplete(oai: openai.AsyncOpenAI) -> None:
    """finish_reason=length ends the stream with response.incomplete (max_output_tokens)."""
    stream = await oai.responses.create(
        model="gpt-4o", input="Hi", stream=True, extra_body={"sim": {"finish_reason": "length"}}
    )
    events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert "max_output_tokens" == last.response.incomplete_details.reason


# --- Faults and control ----------------------------------------------------------------------


async def test_error_status_in_each_api_shape(
    oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    """sim.status answers with that HTTP error in the API's own error body."""
    sim = {"status": 429, "error": "slow down"}
    with pytest.raises(openai.RateLimitError, match="slow down") as oai_error:
        await oai.chat.completions.create(model="m", messages=USER, extra_body={"sim": sim})
    assert "rate_limit_exceeded" == oai_error.value.code
    with pytest.raises(anthropic.RateLimitError, match="slow down") as claude_error:
        await claude.messages.create(
            model="m",
            max_tokens=5,
            messages=CLAUDE_USER,
            extra_body={"sim": sim},
        )
    body = claude_error.value.body
    assert isinstance(body, dict)
    assert {"type": "rate_limit_error", "message": "slow down"} == body["error"]


async def test_invalid_sim_object_is_a_400(oai: openai.AsyncOpenAI) -> None:
    """An unknown sim key is refused with a message naming it."""
    with pytest.raises(openai.BadRequestError, match="colour"):
        await oai.chat.completions.create(
            model="m", messages=USER, extra_body={"sim": {"colour": "red"}}
        )


async def test_fail_after_breaks_openai_stream(oai: openai.AsyncOpenAI, stats: SimStats) -> None:
    """fail_after drops the connection after that many deltas; the SDK raises, not hangs."""
    received: list[str] = []

    async def consume() -> None:
        stream = await oai.chat.completions.create(
            model="m", messages=USER, stream=True, extra_body={"sim": {"fail_after": 2}}
        )
        async with asyncio.timeout(5):
            async for chunk in stream:
                # Appended one by one: what arrived before the error is the point.
                received.append(chunk.choices[0].delta.content or "")  # noqa: PERF401

    with pytest.raises(openai.APIConnectionError):
        await consume()
    assert 2 == sum(1 for piece in received if piece)
    assert 0 == stats.completed_streams


async def test_fail_after_breaks_anthropic_stream(claude: anthropic.AsyncAnthropic) -> None:
    """The Anthropic SDK raises the transport's error when the chunked body is cut short."""
    with pytest.raises(httpx2.RemoteProtocolError):
        async with (
            asyncio.timeout(5),
            claude.messages.stream(
                model="m",
                max_tokens=5,
                messages=CLAUDE_USER,
                extra_body={"sim": {"fail_after": 1}},
            ) as stream,
        ):
            await stream.get_final_message()


async def test_fail_after_beyond_reply_still_drops(base_url: str) -> None:
    """A fail_after larger than the reply cuts after the last delta, before the finish."""
    body = {"model": "m", "stream": True, "sim": {"chunks": ["a", "b"], "fail_after": 10}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + "/v1/chat/completions", json=body) as response,
    ):
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_byte_split_reassembles_same_text(oai: openai.AsyncOpenAI) -> None:
    """sse_split=bytes writes tiny pieces, yet every SDK sees the same text."""
    text = "Ünïcode — jane.doe@example.com 😀 done."
    stream = await oai.chat.completions.create(
        model="m",
        messages=USER,
        stream=True,
        extra_body={"sim": {"text": text, "sse_split": "bytes", "seed": 3}},
    )
    assert text == "".join([c.choices[0].delta.content or "" async for c in stream])


async def test_byte_split_arrives_in_many_reads(base_url: str) -> None:
    """sse_split=bytes makes the body arrive over many small network reads."""
    body = {"model": "m", "stream": True, "sim": {"sse_split": "bytes", "inter_token_delay_ms": 1}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + "/v1/chat/completions", json=body) as response,
    ):
        reads = [piece async for piece in response.content.iter_any()]
    assert len(reads) > 10
    assert b"data: [DONE]\n\n" == b"".join(reads)[-14:]


async def test_first_token_delay_holds_first_delta(oai: openai.AsyncOpenAI) -> None:
    """first_token_delay_ms delays the first content chunk by at least that long."""
    started = time.perf_counter()
    stream = await oai.chat.completions.create(
        model="m", messages=USER, stream=True, extra_body={"sim": {"first_token_delay_ms": 150}}
    )
    async for chunk in stream:
        if chunk.choices[0].delta.content:
            break
    await stream.close()
    assert time.perf_counter() - started >= 0.15


async def test_client_disconnect_counts_cancelled_stream(base_url: str, stats: SimStats) -> None:
    """A client that leaves mid-stream is counted as a cancelled stream."""
    body = {"model": "m", "stream": True, "sim": {"inter_token_delay_ms": 20}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(base_url + "/v1/chat/completions", json=body) as response,
    ):
        await response.content.readuntil(b"\n\n")
        response.close()
    async with asyncio.timeout(5):
        await stats.wait_cancelled()
    assert (1, 0) == (stats.cancelled_streams, stats.completed_streams)


async def test_stats_record_last_request(oai: openai.AsyncOpenAI, stats: SimStats) -> None:
    """The app counts requests and keeps the last one's path, headers and body."""
    await oai.chat.completions.create(model="m", messages=USER, extra_headers={"X-Trace": "t1"})
    assert 1 == stats.requests
    assert stats.last_request is not None
    assert "/v1/chat/completions" == stats.last_request["path"]
    assert "t1" == stats.last_request["headers"]["X-Trace"]
    assert USER == stats.last_request["json"]["messages"]


# --- Pass-through endpoints and routing -------------------------------------------------------


async def test_embeddings_are_stable_vectors(oai: openai.AsyncOpenAI) -> None:
    """Embeddings (base64 as the SDK asks by default) decode to equal vectors for equal input."""
    result = await oai.embeddings.create(model="text-embedding-3-small", input=["a", "b", "a"])
    vectors = [item.embedding for item in result.data]
    assert [8, 8, 8] == [len(v) for v in vectors]
    assert vectors[0] == vectors[2]
    assert vectors[0] != vectors[1]


async def test_models_list_in_each_shape(
    oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic
) -> None:
    """GET /v1/models answers OpenAI clients and Anthropic clients in their own shapes."""
    assert "gpt-4o" in [model.id async for model in oai.models.list()]
    assert "claude-sonnet-4-20250514" in [model.id async for model in claude.models.list()]


async def test_unknown_path_is_openai_404(oai: openai.AsyncOpenAI) -> None:
    """Any other path is a 404 in the OpenAI error shape."""
    with pytest.raises(openai.NotFoundError, match="Invalid URL"):
        await oai.post("/nowhere", cast_to=object, body={})


async def test_app_serves_through_aiohttp_test_server(aiohttp_server: Any) -> None:
    """make_simulator_app runs under any aiohttp server, with its own settings."""
    server = await aiohttp_server(make_simulator_app(SimulatorSettings(text="Tiny.")))
    status, raw = await post_raw(
        str(server.make_url("")).rstrip("/"), "/v1/chat/completions", {"model": "m"}
    )
    assert (200, "Tiny.") == (status, json.loads(raw)["choices"][0]["message"]["content"])
