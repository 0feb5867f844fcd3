"""The legacy Completions adapter: ``choices[i].text`` streams and bodies, and the real SDK."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.driver import StreamDriver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols.completions import CompletionsStream
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Event, SSEDecoder, encode_data
from pipeline.testing import split_at
from tests.conftest import StackFactory, openai_client
from tests.conftest import sim_chunks as sim

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
  - name: legacy
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
        block: {block}
"""


def chunk(index: int, text: str, finish: str | None = None, logprobs: object = None) -> str:
    """One ``text_completion`` chunk as the API writes it (``model`` after ``choices``)."""
    choice = {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}
    body = {"id": "cmpl-1", "object": "text_completion", "created": 1, "choices": [choice]}
    return json.dumps({**body, "model": "m"})


def replay(datas: list[str], routes: str, info: RequestInfo | None = None) -> list[Any]:
    """The chunks (``[DONE]`` as a string) a client gets for these upstream events."""
    plan = build_plans(parse_config(routes))["r"]
    adapter = StreamDriver(CompletionsStream, ResponseFilter(plan), info or RequestInfo())
    raw = b"".join(encode_data(d) for d in datas)

    async def run() -> bytes:
        decoder = SSEDecoder()
        out = await adapter.feed(decoder.feed(raw))
        return out + await adapter.end()

    events = [e for e in SSEDecoder().feed(asyncio.run(run())) if isinstance(e, Event)]
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in events]


def steps(chunks: list[Any]) -> list[tuple[int, str, str | None]]:
    """(choice, text, finish_reason) per choice of each chunk, usage and [DONE] left out."""
    return [
        (c["index"], c["text"], c["finish_reason"])
        for body in chunks
        if body != "[DONE]"
        for c in body["choices"]
    ]


def test_held_text_is_flushed_before_the_finish_chunk() -> None:
    """Text held when a choice finishes comes out in a chunk of its own before the finish."""
    out = replay([chunk(0, "a sec"), chunk(0, "", "stop"), "[DONE]"], MASK)
    assert [(0, "a ", None), (0, "sec", None), (0, "", "stop")] == steps(out)
    assert "[DONE]" == out[-1]
    assert "text_completion" == out[1]["object"]


def test_wholly_held_chunk_is_not_written() -> None:
    """A chunk whose text is all held back is dropped instead of sent empty."""
    out = replay([chunk(0, "x "), chunk(0, "se"), chunk(0, "cret!", "stop"), "[DONE]"], MASK)
    assert [(0, "x ", None), (0, "[MASKED]!", "stop")] == steps(out)


def test_logprobs_are_nulled_where_text_changed() -> None:
    """Legacy logprobs list raw tokens: kept on untouched chunks, nulled on altered ones."""
    logprobs = {"tokens": ["t"], "token_logprobs": [-0.1], "top_logprobs": None, "text_offset": [0]}
    datas = [chunk(0, "fine ", None, logprobs), chunk(0, "secret", "stop", logprobs), "[DONE]"]
    out = replay(datas, MASK)
    assert [logprobs, None] == [body["choices"][0]["logprobs"] for body in out[:2]]


def test_block_ends_open_choices_with_content_filter_usage_and_done() -> None:
    """A block ends every unfinished choice with content_filter, then usage, then [DONE]."""
    datas = [chunk(0, "one "), chunk(1, "uno "), chunk(0, "a secret"), chunk(1, "more")]
    out = replay(datas, BLOCK, RequestInfo(include_usage=True))
    assert [
        (0, "one ", None),
        (1, "uno ", None),
        (0, "a ", None),
        (0, "", "content_filter"),
        (1, "", "content_filter"),
    ] == steps(out)
    assert {"prompt_tokens": 0, "completion_tokens": 3, "total_tokens": 3} == out[-2]["usage"]
    assert "[DONE]" == out[-1]


def test_channels_are_named_per_choice_text() -> None:
    """Each choice's text is its own channel, ``choice{i}.text``, of this protocol."""
    plan = build_plans(parse_config(NO_STAGES))["r"]
    adapter = StreamDriver(CompletionsStream, ResponseFilter(plan), RequestInfo())
    raw = encode_data(chunk(0, "a")) + encode_data(chunk(1, "b"))
    asyncio.run(adapter.feed(SSEDecoder().feed(raw)))
    channels = [chain.channel for chain in adapter.response.chains.values()]
    assert [("choice0.text", "openai-completions"), ("choice1.text", "openai-completions")] == [
        (c.key, c.protocol) for c in channels
    ]


# --- the real SDK through the proxy ---------------------------------------------------------


@pytest.fixture
async def oai(stack: StackFactory) -> openai.AsyncOpenAI:
    """An SDK client for a proxy that masks ``secret`` in front of the simulator."""
    s = await stack(PROXY_ROUTES, block="false")
    return openai_client(s.proxy_url)


@pytest.fixture
async def oai_blocking(stack: StackFactory) -> openai.AsyncOpenAI:
    """An SDK client for a proxy that blocks on ``secret``."""
    s = await stack(PROXY_ROUTES, block="true")
    return openai_client(s.proxy_url)


async def test_sdk_stream_masks_a_word_split_across_chunks(oai: openai.AsyncOpenAI) -> None:
    """A streamed completion spells the masked text and keeps its finish and usage chunk."""
    stream = await oai.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="hi",
        stream=True,
        stream_options={"include_usage": True},
        extra_body=sim(["The sec", "ret is ", "out"]),
    )
    chunks = [c async for c in stream]
    assert "The [MASKED] is out" == "".join(c.choices[0].text for c in chunks if c.choices)
    assert {"text_completion"} == {c.object for c in chunks}
    assert "stop" == chunks[-2].choices[0].finish_reason
    assert chunks[-1].usage is not None
    assert 3 == chunks[-1].usage.completion_tokens


async def test_sdk_non_streaming_choices_are_masked(oai: openai.AsyncOpenAI) -> None:
    """Each choice of a completion body is filtered on its own channel."""
    completion = await oai.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="hi",
        n=2,
        extra_body={"sim": {"choices": ["a secret", "no problem"]}},
    )
    assert ["a [MASKED]", "no problem"] == [c.text for c in completion.choices]
    assert ["stop", "stop"] == [c.finish_reason for c in completion.choices]


async def test_sdk_block_mid_stream_ends_with_content_filter(
    oai_blocking: openai.AsyncOpenAI,
) -> None:
    """A block gives the text before it, content_filter, the usage chunk and a clean end."""
    async with asyncio.timeout(10):
        stream = await oai_blocking.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="hi",
            stream=True,
            stream_options={"include_usage": True},
            extra_body=sim(["Safe text, ", "then a sec", "ret", " and more."]),
        )
        chunks = [c async for c in stream]
    assert "Safe text, then a " == "".join(c.choices[0].text for c in chunks if c.choices)
    assert "content_filter" == chunks[-2].choices[0].finish_reason
    assert chunks[-1].usage is not None


async def test_sdk_block_in_body_refuses_every_choice(oai_blocking: openai.AsyncOpenAI) -> None:
    """A blocked body ends the blocking choice and every later one with content_filter."""
    completion = await oai_blocking.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="hi",
        n=2,
        extra_body={"sim": {"choices": ["ok then secret", "also secret"]}},
    )
    assert [("ok then ", "content_filter"), ("", "content_filter")] == [
        (c.text, c.finish_reason) for c in completion.choices
    ]


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), text=st.text(alphabet="secrt a\u00e9\U0001f600", min_size=1, max_size=30))
async def test_sdk_text_is_the_same_for_any_split(
    oai: openai.AsyncOpenAI, data: st.DataObject, text: str
) -> None:
    """Random deltas and byte-sized SSE writes give the same client text as one delta."""
    cuts = data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=10))
    stream = await oai.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt="hi",
        stream=True,
        extra_body=sim(split_at(text, cuts)),
    )
    chunks = [c async for c in stream]
    assert text.replace("secret", "[MASKED]") == "".join(c.choices[0].text for c in chunks)
    assert "stop" == chunks[-1].choices[0].finish_reason
