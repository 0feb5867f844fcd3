"""End to end: the real ``openai`` SDK → proxy → built-in simulator, all on loopback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.testing import split_at
from tests.conftest import StackFactory
from tests.conftest import openai_client as client

MESSAGES: Any = [{"role": "user", "content": "hi"}]
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "save_note",
            "parameters": {"type": "object", "properties": {"note": {"type": "string"}}},
        },
    }
]

BLOCKING = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
        block: true
"""

EXPLODING = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:ExplodeFactory"
        after_chars: 10
"""


async def stream_text(url: str, **kwargs: Any) -> tuple[dict[int, str], list[Any]]:
    """Per-choice text and every chunk the SDK yielded."""
    texts: dict[int, str] = {}
    chunks = []
    stream = await client(url).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, **kwargs
    )
    async for chunk in stream:
        chunks.append(chunk)
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    return texts, chunks


async def test_secret_split_across_deltas_is_masked(stack: StackFactory) -> None:
    """A word split over three deltas reaches the client masked, never in part."""
    s = await stack()
    sim = {"chunks": ["the sec", "r", "et is out"]}
    texts, chunks = await stream_text(s.proxy_url, extra_body={"sim": sim})
    assert {0: "the [MASKED] is out"} == texts
    assert "stop" == chunks[-1].choices[0].finish_reason
    assert all("sec" not in (c.delta.content or "") for ch in chunks for c in ch.choices)


async def test_ids_model_and_usage_are_preserved(stack: StackFactory) -> None:
    """Envelope fields pass unchanged and the usage chunk arrives last."""
    s = await stack()
    _, chunks = await stream_text(
        s.proxy_url,
        stream_options={"include_usage": True},
        extra_body={"sim": {"text": "a secret here"}},
    )
    assert 1 == len({c.id for c in chunks})
    assert {"gpt-4o"} == {c.model for c in chunks}
    assert chunks[-1].usage is not None
    assert [] == chunks[-1].choices
    assert chunks[0].choices[0].delta.role == "assistant"


async def test_stream_helper_final_completion(stack: StackFactory) -> None:
    """``chat.completions.stream(...).get_final_completion()`` sees the filtered text."""
    s = await stack()
    async with client(s.proxy_url).chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, extra_body={"sim": {"text": "my secret, your secret"}}
    ) as stream:
        final = await stream.get_final_completion()
    assert "my [MASKED], your [MASKED]" == final.choices[0].message.content


async def test_non_streaming_goes_through_the_same_stages(stack: StackFactory) -> None:
    """A ``chat.completion`` body is filtered as one chunk."""
    s = await stack()
    reply = await client(s.proxy_url).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_body={"sim": {"text": "top secret"}}
    )
    assert "top [MASKED]" == reply.choices[0].message.content
    assert "stop" == reply.choices[0].finish_reason


async def test_n2_choices_are_filtered_independently(stack: StackFactory) -> None:
    """Each choice is its own channel: a prefix held in one never delays the other."""
    s = await stack()
    sim = {"choices": ["one secret", "two secrets"]}
    texts, _ = await stream_text(s.proxy_url, n=2, extra_body={"sim": sim})
    assert {0: "one [MASKED]", 1: "two [MASKED]s"} == texts


async def test_tool_call_arguments_are_filtered_and_stay_json(stack: StackFactory) -> None:
    """A secret split inside streamed tool-call arguments is masked; the JSON still parses."""
    s = await stack()
    args = json.dumps({"note": "the secret code"})
    sim = {
        "tool_calls": [
            {"name": "save_note", "arguments": args, "chunks": split_at(args, [5, 14, 17, 20])}
        ]
    }
    async with client(s.proxy_url).chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, tools=TOOLS, extra_body={"sim": sim}
    ) as stream:
        final = await stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert "save_note" == call.function.name
    assert {"note": "the [MASKED] code"} == json.loads(call.function.arguments)
    assert "tool_calls" == final.choices[0].finish_reason


async def test_logprobs_are_dropped_where_text_changed(stack: StackFactory) -> None:
    """Logprobs repeat raw tokens, so a chunk whose text changed carries none."""
    s = await stack()
    _, chunks = await stream_text(
        s.proxy_url, logprobs=True, extra_body={"sim": {"chunks": ["plain ", "sec", "ret"]}}
    )
    tokens = [
        t.token
        for ch in chunks
        for c in ch.choices
        if c.logprobs and c.logprobs.content
        for t in c.logprobs.content
    ]
    assert "plain " in tokens
    assert not any("sec" in t or "ret" in t for t in tokens)


async def test_block_ends_with_content_filter_usage_and_done(stack: StackFactory) -> None:
    """A block ends the stream the OpenAI way and cancels the upstream."""
    s = await stack(BLOCKING)
    sim = {"chunks": ["fine ", "text ", "then sec", "ret ", "and more"], "inter_token_delay_ms": 20}
    texts, chunks = await stream_text(
        s.proxy_url, stream_options={"include_usage": True}, extra_body={"sim": sim}
    )
    assert {0: "fine text then "} == texts
    assert "content_filter" == chunks[-2].choices[0].finish_reason
    assert chunks[-1].usage is not None
    for _ in range(100):
        if s.sim_stats.cancelled_streams:
            break
        await asyncio.sleep(0.01)
    assert 1 == s.sim_stats.cancelled_streams


async def test_block_in_non_streaming_reply(stack: StackFactory) -> None:
    """A blocked body keeps the text before the block and says ``content_filter``."""
    s = await stack(BLOCKING)
    reply = await client(s.proxy_url).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, extra_body={"sim": {"text": "ok then secret stuff"}}
    )
    assert "content_filter" == reply.choices[0].finish_reason
    assert "ok then " == reply.choices[0].message.content


async def test_stage_exception_fails_closed(stack: StackFactory) -> None:
    """A stage that raises ends the stream with ``content_filter``, not with raw text.

    The chunks are 50 ms apart so they arrive in reads of their own: text released by an
    earlier read is the client's. (Chunks of one read are fed as one run, and a stage that
    raises on the run loses all of it: see the next test.)
    """
    s = await stack(EXPLODING)
    sim = {"chunks": ["short ", "and then much longer text"], "inter_token_delay_ms": 50}
    texts, chunks = await stream_text(s.proxy_url, extra_body={"sim": sim})
    assert {0: "short "} == texts
    assert "content_filter" == chunks[-1].choices[0].finish_reason


async def test_stage_exception_on_a_run_fails_closed(stack: StackFactory) -> None:
    """Chunks that arrive in one read are one run: a stage raising on it loses the whole
    run, the chunks before the failing text included: fail closed, nothing unfiltered."""
    s = await stack(EXPLODING)
    sim = {"chunks": ["short ", "and then much longer text"]}
    texts, chunks = await stream_text(s.proxy_url, extra_body={"sim": sim})
    assert set(texts.values()) <= {"", "short "}  # the read boundary decides which
    assert "much" not in "".join(texts.values())
    assert "content_filter" == chunks[-1].choices[0].finish_reason


@pytest.mark.parametrize("status", [400, 429, 500])
async def test_upstream_http_errors_pass_through(stack: StackFactory, status: int) -> None:
    """An upstream error status and body reach the client as they are."""
    s = await stack()
    with pytest.raises(openai.APIStatusError) as caught:
        await client(s.proxy_url).chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            extra_body={"sim": {"status": status, "error": "nope"}},
        )
    assert status == caught.value.status_code
    assert "nope" in caught.value.message


async def test_upstream_drop_gives_error_and_never_held_text(stack: StackFactory) -> None:
    """The upstream dying mid-stream gives a well-formed error; held text is not released."""
    s = await stack()
    sim = {"chunks": ["visible ", "sec", "re", "t"], "fail_after": 3}
    seen: list[str] = []

    async def consume() -> None:
        stream = await client(s.proxy_url).chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, extra_body={"sim": sim}
        )
        async for chunk in stream:
            seen.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError, match="upstream"):
        await consume()
    assert "visible " == "".join(seen)


async def test_unreachable_upstream_is_a_502(stack: StackFactory) -> None:
    """No upstream listening gives a 502 in the OpenAI error shape, quickly."""
    s = await stack('routes:\n  - name: dead\n    upstream: {{url: "http://127.0.0.1:9"}}\n')
    with pytest.raises(openai.APIStatusError) as caught:
        await client(s.proxy_url).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert 502 == caught.value.status_code


async def test_client_disconnect_cancels_upstream(stack: StackFactory) -> None:
    """A client that leaves mid-stream makes the proxy drop the upstream request."""
    s = await stack()
    body = {
        "model": "m",
        "messages": MESSAGES,
        "stream": True,
        "sim": {"text": "word " * 200, "inter_token_delay_ms": 10},
    }
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"{s.proxy_url}/v1/chat/completions", json=body)
        await response.content.readline()
        response.close()
    for _ in range(200):
        if s.sim_stats.cancelled_streams:
            break
        await asyncio.sleep(0.01)
    assert 1 == s.sim_stats.cancelled_streams


async def test_unfiltered_paths_pass_through(stack: StackFactory) -> None:
    """``/v1/models`` and ``/v1/embeddings`` are proxied unchanged."""
    s = await stack()
    models = await client(s.proxy_url).models.list()
    assert models.data
    emb = await client(s.proxy_url).embeddings.create(model="e", input="hello")
    assert emb.data[0].embedding


async def test_no_route_is_404_and_bad_json_is_400(stack: StackFactory) -> None:
    """Unrouted paths are refused and a malformed body gets a 400, never a crash."""
    s = await stack()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{s.proxy_url}/admin/secret") as response:
            assert 404 == response.status
        async with session.post(f"{s.proxy_url}/v1/chat/completions", data=b"{nope") as response:
            assert 400 == response.status
            assert "not valid JSON" in (await response.json())["error"]["message"]


async def test_authorization_header_passes_through(stack: StackFactory) -> None:
    """The client's own credential reaches the upstream unchanged."""
    s = await stack()
    await client(s.proxy_url).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert s.sim_stats.last_request is not None
    headers = {k.lower(): v for k, v in s.sim_stats.last_request["headers"].items()}
    assert "Bearer sk-test" == headers["authorization"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), text=st.text(alphabet="secrt ab\u00e9\U0001f600", min_size=1, max_size=30))
async def test_any_split_gives_the_same_client_text(
    stack: StackFactory, data: st.DataObject, text: str
) -> None:
    """For random text and random deltas, the client text equals the one-delta result."""
    s = await stack()
    cuts = data.draw(st.lists(st.integers(1, max(1, len(text) - 1)), max_size=8))
    whole, _ = await stream_text(s.proxy_url, extra_body={"sim": {"chunks": [text]}})
    split, _ = await stream_text(s.proxy_url, extra_body={"sim": {"chunks": split_at(text, cuts)}})
    assert whole == split


async def test_block_in_one_choice_withholds_later_choices(stack: StackFactory) -> None:
    """A block ends the whole body: no later choice is returned unfiltered."""
    s = await stack(BLOCKING)
    reply = await client(s.proxy_url).chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        n=2,
        extra_body={"sim": {"choices": ["a secret", "b secret"]}},
    )
    assert ["a ", ""] == [c.message.content for c in reply.choices]
    assert ["content_filter", "content_filter"] == [c.finish_reason for c in reply.choices]
