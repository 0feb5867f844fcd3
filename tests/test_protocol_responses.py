"""The OpenAI Responses adapter: deltas, the aggregates that repeat them, and the real SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import aiohttp
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.driver import StreamDriver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols.request import RequestInfo
from pipeline.protocols.responses import ResponsesStream
from pipeline.sse import Event, SSEDecoder, encode, encode_data
from pipeline.testing import drive_stream, split_at
from tests.conftest import Stack, StackFactory, openai_client
from tests.conftest import sim_chunks as sim

NO_STAGES = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'
MASK = NO_STAGES + (
    '    stages:\n      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret"}\n'
)
END_MARK = NO_STAGES + '    stages:\n      - {type: "tests.stages_for_tests:EndMarkFactory"}\n'
BLOCK = NO_STAGES + (
    "    stages:\n"
    '      - {type: "tests.stages_for_tests:MaskWordFactory", word: "secret", block: true}\n'
)
# A block decided while a channel finishes: the end mark ``<complete>`` trips the second
# stage, which releases ``<`` and blocks.
FINISH_BLOCK = END_MARK + (
    '      - {type: "tests.stages_for_tests:MaskWordFactory", word: "complete>", block: true}\n'
)
PROXY_ROUTES = """
routes:
  - name: responses
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
        block: {block}
"""
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOL: Any = {"type": "function", "name": "get_weather", "parameters": SCHEMA}


# --- driving the adapter directly --------------------------------------------------------


def replay(
    raw: bytes, routes: str, info: RequestInfo | None = None, cuts: Sequence[int] = ()
) -> list[dict[str, Any]]:
    """Feed ``raw`` through decoder + adapter; the payloads of the events the client gets."""
    events = replay_events(raw, routes, info, cuts)
    assert all(e.event == json.loads(e.data)["type"] for e in events)
    return [json.loads(e.data) for e in events]


def replay_events(
    raw: bytes, routes: str, info: RequestInfo | None = None, cuts: Sequence[int] = ()
) -> list[Event]:
    """:func:`replay`, returning the client's events with every SSE field."""
    plan = build_plans(parse_config(routes))["r"]
    adapter = StreamDriver(ResponsesStream, ResponseFilter(plan), info or RequestInfo())
    out = drive_stream(adapter, raw, cuts)
    client = SSEDecoder()
    return [e for e in client.feed(out) if isinstance(e, Event)]


def sse(*payloads: dict[str, Any], first: int = 0) -> bytes:
    """Upstream bytes: named events numbered from ``first``."""
    return b"".join(
        encode_data(json.dumps({**p, "sequence_number": n}), p["type"])
        for n, p in enumerate(payloads, start=first)
    )


MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "status": "in_progress",
    "content": [],
    "role": "assistant",
}
WHERE = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
OPENING: list[dict[str, Any]] = [
    {
        "type": "response.created",
        "response": {"id": "resp_1", "status": "in_progress", "output": []},
    },
    {"type": "response.output_item.added", "output_index": 0, "item": MESSAGE},
    {"type": "response.content_part.added", **WHERE, "part": {"type": "output_text", "text": ""}},
]


def text_delta(text: str, logprobs: list[Any] | None = None) -> dict[str, Any]:
    return {
        "type": "response.output_text.delta",
        **WHERE,
        "delta": text,
        "logprobs": logprobs or [],
    }


def closing(text: str) -> list[dict[str, Any]]:
    """The aggregates that end a one-part message, each repeating ``text``."""
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    item = {**MESSAGE, "status": "completed", "content": [part]}
    response = {"id": "resp_1", "status": "completed", "output": [item]}
    return [
        {"type": "response.output_text.done", **WHERE, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **WHERE, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": response},
    ]


def aggregates(events: list[dict[str, Any]]) -> list[str]:
    """The text every aggregate event carries, in order."""
    out = []
    for e in events:
        if e["type"] == "response.output_text.done":
            out.append(e["text"])
        elif e["type"] == "response.content_part.done":
            out.append(e["part"]["text"])
        elif e["type"] == "response.output_item.done":
            out.append(e["item"]["content"][0]["text"])
        elif e["type"] in ("response.completed", "response.incomplete"):
            out.append(e["response"]["output"][0]["content"][0]["text"])
    return out


def deltas(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def test_every_aggregate_carries_exactly_what_the_deltas_delivered() -> None:
    """A word split over two deltas is masked in the deltas and in all four aggregates."""
    raw = sse(*OPENING, text_delta("my sec"), text_delta("retive"), *closing("my secretive"))
    events = replay(raw, MASK)
    texts = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert ["my ", "[MASKED]ive"] == texts
    assert ["my [MASKED]ive"] * 4 == aggregates(events)


def test_flush_delta_precedes_the_done_event() -> None:
    """A prefix held at the end (``sec``) comes out as a delta right before the done event."""
    raw = sse(*OPENING, text_delta("a sec"), *closing("a sec"))
    events = replay(raw, MASK)
    kinds = [e["type"] for e in events]
    at = kinds.index("response.output_text.done")
    assert ["a ", "sec"] == [e["delta"] for e in events[at - 2 : at]]
    assert ["a sec"] * 4 == aggregates(events)


def test_sequence_numbers_stay_contiguous_from_the_upstreams_first() -> None:
    """Events added (flush) and dropped (held) are renumbered with no gap, from the first."""
    raw = sse(*OPENING, text_delta("x se"), text_delta("c"), *closing("x sec"), first=7)
    events = replay(raw, MASK)
    assert list(range(7, 7 + len(events))) == [e["sequence_number"] for e in events]


def test_text_only_in_an_aggregate_still_goes_through_the_stages() -> None:
    """An upstream that sends the text only in the done events cannot bypass the stages."""
    raw = sse(*OPENING, *closing("the secret"))
    events = replay(raw, MASK)
    assert "the [MASKED]" == deltas(events)
    assert ["the [MASKED]"] * 4 == aggregates(events)


def test_logprobs_are_emptied_where_text_changed_or_is_held() -> None:
    """Logprobs repeat raw tokens: kept on untouched deltas, emptied on altered ones."""
    token = [{"token": "t", "logprob": -0.1, "top_logprobs": []}]
    raw = sse(*OPENING, text_delta("fine ", token), text_delta("secret", token), *closing("x"))
    events = replay(raw, MASK)
    logprobs = [e["logprobs"] for e in events if e["type"] == "response.output_text.delta"]
    assert [token, []] == logprobs


def test_item_cut_short_is_finished_as_truncated() -> None:
    """A part still open when its item is done with status incomplete is finished TRUNCATED."""
    item = {**MESSAGE, "status": "incomplete", "content": [{"type": "output_text", "text": "ab"}]}
    raw = sse(
        *OPENING,
        text_delta("ab"),
        {"type": "response.output_item.done", "output_index": 0, "item": item},
    )
    events = replay(raw, END_MARK)
    assert "ab<truncated>" == deltas(events)
    (done,) = [e for e in events if e["type"] == "response.output_item.done"]
    assert "ab<truncated>" == done["item"]["content"][0]["text"]


def test_upstream_error_event_passes_and_ends_the_stream() -> None:
    """An upstream ``error`` event reaches the client renumbered; held text is dropped."""
    error = {"type": "error", "code": "server_error", "message": "boom", "param": None}
    raw = sse(*OPENING, text_delta("a sec"), error, text_delta("ret"))
    events = replay(raw, MASK)
    assert "a " == deltas(events)
    assert {**error, "sequence_number": 4} == events[-1]


def test_proxy_error_has_the_documented_and_the_live_shape() -> None:
    """An incomplete upstream ends with ``error``: code/message flat and nested under error."""
    events = replay(sse(*OPENING, text_delta("hi")), NO_STAGES)
    error = events[-1]
    assert "error" == error["type"]
    assert 4 == error["sequence_number"]
    assert ("upstream_incomplete", None) == (error["code"], error["param"])
    assert error["message"] == error["error"]["message"]
    assert "upstream_incomplete" == error["error"]["code"]


def test_channels_carry_the_declared_schemas() -> None:
    """Function arguments get the tool's parameters; JSON text gets text.format's schema."""
    info = RequestInfo.from_json(
        {
            "tools": [TOOL],
            "text": {"format": {"type": "json_schema", "name": "w", "schema": SCHEMA}},
        }
    )
    call = {"id": "fc_1", "type": "function_call", "name": "get_weather", "arguments": ""}
    raw = sse(
        *OPENING,
        text_delta("{"),
        {"type": "response.output_item.added", "output_index": 1, "item": call},
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 1,
            "delta": "{",
        },
    )
    plan = build_plans(parse_config(NO_STAGES))["r"]
    adapter = StreamDriver(ResponsesStream, ResponseFilter(plan), info)
    asyncio.run(adapter.feed(SSEDecoder().feed(raw)))
    channels = {key: chain.channel for key, chain in adapter.response.chains.items()}
    assert ("json", SCHEMA) == (
        channels["output1.arguments"].kind.value,
        channels["output1.arguments"].json_schema,
    )
    assert ("json", SCHEMA) == (
        channels["output0.content0"].kind.value,
        channels["output0.content0"].json_schema,
    )


def test_upstream_id_and_retry_are_kept_on_every_re_emitted_event() -> None:
    """Upstream events keep their ``id:`` and ``retry:``, rewritten or passed as sent."""
    payloads = [*OPENING, text_delta("a secret"), *closing("a secret")]
    raw = b"".join(
        encode(Event(json.dumps({**p, "sequence_number": n}), p["type"], f"e{n}", 1500))
        for n, p in enumerate(payloads)
    )
    events = replay_events(raw, MASK)
    assert "a [MASKED]" == deltas([json.loads(e.data) for e in events])
    assert [(f"e{n}", 1500) for n in range(len(payloads))] == [(e.id, e.retry) for e in events]


@pytest.mark.parametrize("data", ["not json", "[1, 2]"])
def test_an_event_that_is_not_a_json_object_ends_with_an_error(data: str) -> None:
    """An event whose data is not a JSON object ends the stream with ``upstream_bad_event``."""
    raw = sse(*OPENING) + encode_data(data, "response.output_text.delta") + sse(text_delta("x"))
    events = replay(raw, NO_STAGES)
    assert ["response.created", "response.output_item.added", "response.content_part.added"] == [
        e["type"] for e in events[:-1]
    ]
    assert ("error", "upstream_bad_event") == (events[-1]["type"], events[-1]["code"])


# --- text in .added events, and blocks inside an event or while finishing -------------------

CALL = {"id": "fc_1", "type": "function_call", "status": "in_progress", "name": "get_weather"}


def added_part(text: str) -> dict[str, Any]:
    """``response.content_part.added`` opening the part with ``text`` (the API sends "")."""
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
    return {"type": "response.content_part.added", **WHERE, "part": part}


def added_item(item: dict[str, Any], output: int = 0) -> dict[str, Any]:
    return {"type": "response.output_item.added", "output_index": output, "item": item}


def only(events: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (event,) = [e for e in events if e["type"] == kind]
    return event


def leaked(events: list[dict[str, Any]], *words: str) -> list[str]:
    """Which of ``words`` appear anywhere in the events the client got."""
    dumped = json.dumps(events)
    return [word for word in words if word in dumped]


def ends_with_content_filter(events: list[dict[str, Any]]) -> bool:
    last = events[-1]
    details = last.get("response", {}).get("incomplete_details")
    return bool(last["type"] == "response.incomplete" and details == {"reason": "content_filter"})


def test_text_in_content_part_added_goes_through_the_stages() -> None:
    """A content part opened with text is filtered there, and every aggregate agrees."""
    raw = sse(*OPENING[:2], added_part("my secret"), *closing("my secret"))
    events = replay(raw, MASK)
    assert "my [MASKED]" == only(events, "response.content_part.added")["part"]["text"]
    assert "" == deltas(events)
    assert ["my [MASKED]"] * 4 == aggregates(events)


def test_text_held_at_content_part_added_follows_as_a_delta() -> None:
    """The held tail of an opening part's text comes out in the next delta, so the opening
    text plus the deltas spell what every aggregate carries."""
    raw = sse(*OPENING[:2], added_part("a sec"), text_delta("ret!"), *closing("a secret!"))
    events = replay(raw, MASK)
    assert "a " == only(events, "response.content_part.added")["part"]["text"]
    assert "[MASKED]!" == deltas(events)
    assert ["a [MASKED]!"] * 4 == aggregates(events)


def test_text_in_output_item_added_goes_through_the_stages() -> None:
    """A message item added with text in its content is filtered there, as every aggregate."""
    item = {**MESSAGE, "content": [{"type": "output_text", "annotations": [], "text": "a secret"}]}
    raw = sse(OPENING[0], added_item(item), *closing("a secret"))
    events = replay(raw, MASK)
    assert "a [MASKED]" == only(events, "response.output_item.added")["item"]["content"][0]["text"]
    assert ["a [MASKED]"] * 4 == aggregates(events)


def test_arguments_in_output_item_added_go_through_the_stages() -> None:
    """A function call added with arguments has them filtered, and every later copy agrees."""
    arguments = '{"city": "secret"}'
    done = {**CALL, "status": "completed", "arguments": arguments}
    raw = sse(
        OPENING[0],
        added_item({**CALL, "arguments": arguments}),
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_1",
            "output_index": 0,
            "arguments": arguments,
        },
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": {"id": "resp_1", "output": [done]}},
    )
    events = replay(raw, MASK)
    carried = [
        events[1]["item"]["arguments"],
        events[2]["arguments"],
        events[3]["item"]["arguments"],
        events[4]["response"]["output"][0]["arguments"],
    ]
    assert ['{"city": "[MASKED]"}'] * 4 == carried


def test_block_inside_output_item_added_sends_nothing_after_it() -> None:
    """A block in the second of three parts of an added item: the item goes out with the text
    before the block and without the third part, then is closed as content_filter."""
    texts = ["fine. ", "ok secret REST", "NEVER"]
    item = {**MESSAGE, "content": [{"type": "output_text", "text": t} for t in texts]}
    raw = sse(OPENING[0], added_item(item), *closing("x"))
    events = replay(raw, BLOCK)
    added = only(events, "response.output_item.added")["item"]
    assert ["fine. ", "ok "] == [part["text"] for part in added["content"]]
    done = only(events, "response.output_item.done")["item"]
    assert ["fine. ", "ok "] == [part["text"] for part in done["content"]]
    assert ("incomplete", "response.incomplete") == (done["status"], events[-1]["type"])
    assert ends_with_content_filter(events)
    assert [] == leaked(events, "secret", "REST", "NEVER")
    assert list(range(len(events))) == [e["sequence_number"] for e in events]


def test_block_inside_content_part_added_ends_with_response_incomplete() -> None:
    """A block in a part's opening text: the part carries the text before it, every aggregate
    agrees, and nothing later (the rest, the next delta) is sent."""
    raw = sse(*OPENING[:2], added_part("ok secret REST"), text_delta("MORE"), *closing("x"))
    events = replay(raw, BLOCK)
    assert "ok " == only(events, "response.content_part.added")["part"]["text"]
    assert ["ok "] * 4 == aggregates(events)
    assert ends_with_content_filter(events)
    assert [] == leaked(events, "secret", "REST", "MORE")


def test_block_inside_text_only_an_aggregate_carries() -> None:
    """A block in text no delta streamed: the text before it comes out as a delta, every
    aggregate carries exactly the deltas, and the rest is never sent."""
    raw = sse(*OPENING, *closing("ok secret MORE"))
    events = replay(raw, BLOCK)
    assert "ok " == deltas(events)
    assert ["ok "] * 4 == aggregates(events)
    assert ends_with_content_filter(events)
    assert [] == leaked(events, "secret", "MORE")


def test_block_decided_while_finishing_a_part_is_reported_as_content_filter() -> None:
    """A block decided when a part finishes: the text released with it is a delta, every
    aggregate carries exactly the deltas, and the stream ends incomplete, not completed."""
    raw = sse(*OPENING, text_delta("hi"), *closing("hi"))
    events = replay(raw, FINISH_BLOCK)
    assert "hi<" == deltas(events)
    assert ["hi<"] * 4 == aggregates(events)
    assert ends_with_content_filter(events)
    assert "response.completed" not in [e["type"] for e in events]


def test_block_while_finishing_the_final_response_sends_no_later_item() -> None:
    """A block finishing the first item of ``response.completed`` ends the stream there:
    text the second item carries beyond its deltas never reaches the client."""
    message = {**MESSAGE, "status": "completed", "content": [{"type": "output_text", "text": "hi"}]}
    call = {**CALL, "status": "completed", "arguments": '{"a": "LEAK"}'}
    raw = sse(
        *OPENING,
        text_delta("hi"),
        added_item({**CALL, "arguments": ""}, output=1),
        {
            "type": "response.function_call_arguments.delta",
            "item_id": "fc_1",
            "output_index": 1,
            "delta": '{"a": ',
        },
        {"type": "response.completed", "response": {"id": "r", "output": [message, call]}},
    )
    events = replay(raw, FINISH_BLOCK)
    assert ends_with_content_filter(events)
    assert [] == leaked(events, "LEAK")
    assert ['{"a": '] == [
        e["item"]["arguments"]
        for e in events
        if e["type"] == "response.output_item.done" and e["output_index"] == 1
    ]


# --- the real SDK through the proxy ---------------------------------------------------------


@pytest.fixture
async def masking(stack: StackFactory) -> Stack:
    """A proxy that masks ``secret`` in front of the simulator."""
    return await stack(PROXY_ROUTES, block="false")


@pytest.fixture
async def oai(masking: Stack) -> openai.AsyncOpenAI:
    return openai_client(masking.proxy_url)


@pytest.fixture
async def oai_blocking(stack: StackFactory) -> openai.AsyncOpenAI:
    """An SDK client for a proxy that blocks on ``secret``."""
    s = await stack(PROXY_ROUTES, block="true")
    return openai_client(s.proxy_url)


def sdk_aggregates(events: list[Any]) -> list[str]:
    """:func:`aggregates` for the SDK's event objects."""
    # The stream helper's generic ParsedResponse makes pydantic warn while dumping it.
    return aggregates([e.model_dump(warnings=False) for e in events])


async def test_sdk_create_stream_deltas_and_every_aggregate_agree(oai: openai.AsyncOpenAI) -> None:
    """create(stream=True): the deltas spell the masked text and so does every aggregate."""
    stream = await oai.responses.create(
        model="gpt-x", input="hi", stream=True, extra_body=sim(["The sec", "ret is ", "out"])
    )
    events = [event async for event in stream]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "The [MASKED] is out" == text
    assert [text] * 4 == sdk_aggregates(events)
    assert list(range(len(events))) == [e.sequence_number for e in events]
    assert "response.completed" == events[-1].type


async def test_sdk_stream_helper_final_response(oai: openai.AsyncOpenAI) -> None:
    """responses.stream(): final output_text == the concatenated deltas == the masked text."""
    async with oai.responses.stream(
        model="gpt-x", input="hi", extra_body=sim(["a secret", " and ", "secr", "et"])
    ) as stream:
        pieces = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "a [MASKED] and [MASKED]" == "".join(pieces) == final.output_text
    assert "completed" == final.status


async def test_sdk_function_call_arguments_are_masked_valid_json(oai: openai.AsyncOpenAI) -> None:
    """Arguments split mid-word are masked in the deltas, the done event and the final item."""
    call: dict[str, Any] = {"name": "get_weather", "arguments": '{"city": "secret town"}'}
    call["chunks"] = ['{"city": "se', "cr", 'et town"}']
    async with oai.responses.stream(
        model="gpt-x",
        input="hi",
        tools=[TOOL],
        extra_body={"sim": {"tool_calls": [call], "sse_split": "bytes"}},
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    streamed = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    done = [e.arguments for e in events if e.type == "response.function_call_arguments.done"]
    item = final.output[0]
    assert "function_call" == item.type
    assert [streamed] == done == [item.arguments]
    assert {"city": "[MASKED] town"} == json.loads(item.arguments)


async def test_sdk_non_streaming_response_is_masked(oai: openai.AsyncOpenAI) -> None:
    """A response body runs message text and function arguments through the stages."""
    call = {"name": "get_weather", "arguments": '{"city": "secret"}'}
    response = await oai.responses.create(
        model="gpt-x",
        input="hi",
        tools=[TOOL],
        extra_body={"sim": {"text": "my secret", "tool_calls": [call]}},
    )
    assert "my [MASKED]" == response.output_text
    assert ['{"city": "[MASKED]"}'] == [
        item.arguments for item in response.output if item.type == "function_call"
    ]


async def test_no_byte_of_the_stream_repeats_the_original_word(masking: Stack) -> None:
    """Neither deltas nor any aggregate event lets the masked word through."""
    body = {"model": "m", "input": "hi", "stream": True, **sim(["secret ", "sec", "ret"])}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{masking.proxy_url}/v1/responses", json=body) as reply,
    ):
        raw = await reply.read()
    assert b"response.completed" in raw
    assert b"secret" not in raw


async def test_sdk_block_ends_with_response_incomplete(oai_blocking: openai.AsyncOpenAI) -> None:
    """A block gives the text before it, closes the open part and item with that text, and
    ends with response.incomplete (content_filter): no exception, no hang."""
    async with asyncio.timeout(10):
        stream = await oai_blocking.responses.create(
            model="gpt-x",
            input="hi",
            stream=True,
            extra_body=sim(["Safe text, ", "then a sec", "ret", " and more."]),
        )
        events = [event async for event in stream]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "Safe text, then a " == text
    assert [text] * 4 == sdk_aggregates(events)
    last = events[-1]
    assert "response.incomplete" == last.type
    assert ("incomplete", "content_filter") == (
        last.response.status,
        last.response.incomplete_details.reason if last.response.incomplete_details else None,
    )
    assert "incomplete" == last.response.output[0].model_dump()["status"]
    assert list(range(len(events))) == [e.sequence_number for e in events]


async def test_sdk_stream_helper_on_a_block_raises_only_at_the_final_response(
    oai_blocking: openai.AsyncOpenAI,
) -> None:
    """responses.stream() iterates a blocked stream cleanly; get_final_response() raises
    RuntimeError, as the SDK does for any stream ending without response.completed."""
    async with (
        asyncio.timeout(10),
        oai_blocking.responses.stream(
            model="gpt-x", input="hi", extra_body=sim(["ok ", "secret"])
        ) as stream,
    ):
        kinds = [event.type async for event in stream]
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            await stream.get_final_response()
    assert "response.incomplete" == kinds[-1]


async def test_sdk_block_in_non_streaming_response(oai_blocking: openai.AsyncOpenAI) -> None:
    """A blocked body keeps the text before the block and is incomplete for content_filter."""
    response = await oai_blocking.responses.create(
        model="gpt-x", input="hi", extra_body=sim(["ok then secret stuff"])
    )
    assert "incomplete" == response.status
    assert response.incomplete_details is not None
    assert "content_filter" == response.incomplete_details.reason
    assert "ok then " == response.output_text


async def test_sdk_raises_on_upstream_drop(oai: openai.AsyncOpenAI) -> None:
    """An upstream that drops mid-stream becomes an ``error`` event on which the SDK raises."""
    seen: list[str] = []

    async def consume() -> None:
        async with asyncio.timeout(10):
            stream = await oai.responses.create(
                model="gpt-x",
                input="hi",
                stream=True,
                extra_body={"sim": {"chunks": ["hello ", "sec", "ret"], "fail_after": 2}},
            )
            seen.extend([e.delta async for e in stream if e.type == "response.output_text.delta"])

    with pytest.raises(openai.APIError, match="before the stream completed"):
        await consume()
    assert "sec" not in "".join(seen)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), text=st.text(alphabet="secrt a\u00e9\U0001f600", min_size=1, max_size=30))
async def test_sdk_text_is_the_same_for_any_split(
    oai: openai.AsyncOpenAI, data: st.DataObject, text: str
) -> None:
    """Random deltas and byte-sized SSE writes give the same deltas and final text."""
    cuts = data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=10))
    async with oai.responses.stream(
        model="gpt-x", input="hi", extra_body=sim(split_at(text, cuts))
    ) as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    expected = text.replace("secret", "[MASKED]")
    assert expected == "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert expected == final.output_text
    assert [expected] * 4 == sdk_aggregates(events)
