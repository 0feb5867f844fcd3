"""OpenAI chat adapter edge cases: blocks inside a delta or at a finish, moved finishes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipeline.config import parse_config
from pipeline.driver import StreamDriver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols.openai_chat import OpenAIChatStream
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Event, SSEDecoder, encode_data

ENVELOPE = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def routes(stages: str, buffer: str = "") -> str:
    return (
        'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'
        f"    stages:\n{stages}{buffer}"
    )


BLOCK_WORD = routes(
    '      - {type: "tests.stages_for_tests:MaskWordFactory", word: secret, block: true}\n'
)
PROFANITY_BLOCK = routes("      - {type: profanity, action: block}\n")
HOLD_ALL = routes('      - {type: "tests.stages_for_tests:HoldAllFactory", declared: 1000}\n')


def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return encode_data(json.dumps({**ENVELOPE, "choices": [choice]}))


def run(config: str, *chunks: bytes, info: RequestInfo | None = None) -> list[dict[str, Any]]:
    """Feed the chunks (then ``[DONE]``) through the adapter; the client's chunks, parsed."""
    plan = build_plans(parse_config(config))["r"]
    adapter = StreamDriver(OpenAIChatStream, ResponseFilter(plan), info or RequestInfo())
    raw = b"".join(chunks) + encode_data("[DONE]")

    async def go() -> bytes:
        out = await adapter.feed(SSEDecoder().feed(raw))
        return out + await adapter.end()

    events = [e for e in SSEDecoder().feed(asyncio.run(go())) if isinstance(e, Event)]
    assert "[DONE]" == events[-1].data
    return [json.loads(e.data) for e in events[:-1]]


def texts(chunks: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in chunks:
        for choice in c["choices"]:
            delta = choice["delta"]
            for field in ("content", "refusal"):
                if delta.get(field):
                    out[field] = out.get(field, "") + delta[field]
            for call in delta.get("tool_calls") or []:
                out["args"] = out.get("args", "") + call["function"].get("arguments", "")
    return out


def finishes(chunks: list[dict[str, Any]]) -> list[str]:
    return [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]


def test_block_in_content_withholds_the_rest_of_the_delta() -> None:
    """Refusal and tool calls riding in the blocking delta never reach the client."""
    delta = {
        "content": "the secret",
        "refusal": "the secret is hunter2",
        "tool_calls": [{"index": 0, "function": {"arguments": '{"k":"hunter2"}'}}],
    }
    out = run(BLOCK_WORD, chunk(delta))
    assert {"content": "the "} == texts(out)
    assert ["content_filter"] == finishes(out)
    assert "hunter2" not in json.dumps(out)


def test_block_decided_at_finish_reports_content_filter() -> None:
    """A stage that decides at the end of a choice ends it with ``content_filter``."""
    out = run(
        PROFANITY_BLOCK,
        chunk({"content": "hello you "}),
        chunk({"content": "shit"}),
        chunk({}, "stop"),
    )
    assert {"content": "hello you "} == texts(out)
    assert ["content_filter"] == finishes(out)


def test_block_in_the_finishing_chunk_reports_content_filter() -> None:
    """The upstream's ``stop`` in the chunk that blocked is never forwarded."""
    out = run(BLOCK_WORD, chunk({"content": "a secret"}, "stop"))
    assert ["content_filter"] == finishes(out)


def test_flushed_arguments_follow_the_tool_call_they_belong_to() -> None:
    """A whole tool call in the finishing chunk: id and name first, then arguments, then finish."""
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a":"x sec'},
    }
    out = run(
        routes('      - {type: "tests.stages_for_tests:MaskWordFactory", word: secret}\n'),
        chunk({"role": "assistant", "tool_calls": [call]}, "tool_calls"),
    )
    assert {"args": '{"a":"x sec'} == texts(out)
    assert "call_1" == out[0]["choices"][0]["delta"]["tool_calls"][0]["id"]
    assert ["tool_calls"] == finishes(out)
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_whole_response_block_reports_content_filter() -> None:
    """In ``whole_response`` mode every decision is at the end, and a block still says so."""
    config = routes(
        '      - {type: "tests.stages_for_tests:MaskWordFactory", word: secret, block: true}\n',
        "    buffer: {mode: whole_response}\n",
    )
    out = run(config, chunk({"content": "a sec"}), chunk({"content": "ret b"}), chunk({}, "stop"))
    assert {"content": "a "} == texts(out)
    assert ["content_filter"] == finishes(out)


def test_whole_response_releases_text_before_the_finish() -> None:
    """Held text comes out in order, before the chunk that ends its choice."""
    out = run(
        HOLD_ALL,
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "ab"}),
        chunk({}, "stop"),
    )
    assert {"content": "ab"} == texts(out)
    kinds = ["finish" if c["choices"][0]["finish_reason"] else "text" for c in out[1:]]
    assert ["text", "finish"] == kinds


def test_upstream_event_ids_are_kept_on_rewritten_chunks() -> None:
    """An upstream ``id:`` survives the rewrite, so Last-Event-ID resumption still works."""
    plan = build_plans(parse_config(BLOCK_WORD.replace("block: true", "block: false")))["r"]
    adapter = StreamDriver(OpenAIChatStream, ResponseFilter(plan), RequestInfo())
    raw = b"id: 7\n" + chunk({"content": "a secret b "})

    async def go() -> bytes:
        return await adapter.feed(SSEDecoder().feed(raw))

    [event] = [e for e in SSEDecoder().feed(asyncio.run(go())) if isinstance(e, Event)]
    assert ("7", "a [MASKED] b ") == (
        event.id,
        json.loads(event.data)["choices"][0]["delta"]["content"],
    )
