"""The OpenAI chat adapter on real recorded upstream streams, re-chunked at random."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import parse_config
from pipeline.driver import StreamDriver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols.openai_chat import OpenAIChatStream
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Event, SSEDecoder
from pipeline.testing import drive_stream
from tests.conftest import RECORDED, recorded_dir

if not RECORDED.is_dir():
    pytest.skip(f"recorded upstream streams not found at {RECORDED}", allow_module_level=True)

NO_STAGES = 'routes:\n  - name: r\n    upstream: {url: "http://127.0.0.1:1"}\n'
MASK_E = NO_STAGES + (
    '    stages:\n      - {type: "tests.stages_for_tests:MaskWordFactory", word: "e", '
    'replacement: "3"}\n'
)


def fixtures() -> list[Path]:
    return sorted((recorded_dir() / "openai-chat").glob("*.sse"))


def replay(
    raw: bytes, cuts: list[int], routes: str, info: RequestInfo | None = None
) -> list[Event]:
    """Feed ``raw`` to decoder + adapter in pieces cut at ``cuts``; the client's events."""
    plan = build_plans(parse_config(routes))["r"]
    adapter = StreamDriver(
        OpenAIChatStream, ResponseFilter(plan), info or RequestInfo(include_usage=True)
    )
    out = drive_stream(adapter, raw, cuts)
    client = SSEDecoder()
    return [e for e in client.feed(out) + client.close() if isinstance(e, Event)]


def assemble(events: list[Event]) -> dict[str, Any]:
    """What a client reconstructs: text per channel, finish reasons, ids, usage."""
    text: dict[str, str] = {}
    finish: dict[int, str] = {}
    ids, usage, done = set(), None, False
    for event in events:
        if event.data == "[DONE]":
            done = True
            continue
        chunk = json.loads(event.data)
        ids.add(chunk["id"])
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            i, delta = choice["index"], choice.get("delta") or {}
            for field in ("content", "refusal"):
                if delta.get(field):
                    text[f"{i}.{field}"] = text.get(f"{i}.{field}", "") + delta[field]
            for call in delta.get("tool_calls") or []:
                args = (call.get("function") or {}).get("arguments") or ""
                key = f"{i}.tool{call['index']}"
                text[key] = text.get(key, "") + args
            if choice.get("finish_reason"):
                finish[i] = choice["finish_reason"]
    return {"text": text, "finish": finish, "ids": ids, "usage": usage, "done": done}


@pytest.mark.parametrize("path", fixtures(), ids=lambda p: p.name)
def test_recorded_stream_passes_unchanged_without_stages(path: Path) -> None:
    """With no stages, every recorded stream reaches the client byte-for-byte in meaning."""
    raw = path.read_bytes()
    expected = [e for e in SSEDecoder().feed(raw) if isinstance(e, Event)]
    assert [e.data for e in expected] == [e.data for e in replay(raw, [], NO_STAGES)]


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_recorded_streams_rechunked_give_the_same_filtered_result(data: st.DataObject) -> None:
    """Any byte split of a recorded stream gives the same text, finishes, ids and usage."""
    path = data.draw(st.sampled_from(fixtures()))
    raw = path.read_bytes()
    whole = assemble(replay(raw, [], MASK_E))
    cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=60))
    assert whole == assemble(replay(raw, cuts, MASK_E))
    original = assemble(replay(raw, [], NO_STAGES))
    assert {k: v.replace("e", "3") for k, v in original["text"].items()} == whole["text"]
    assert original["finish"] == whole["finish"]
    assert original["usage"] == whole["usage"]
    assert whole["done"]


def test_flushed_text_comes_before_the_finish_chunk() -> None:
    """Held text flushed at the end is emitted before the chunk carrying finish_reason."""
    raw = (recorded_dir() / "openai-chat" / "plain-text-with-usage.sse").read_bytes()
    routes = NO_STAGES + (
        '    stages:\n      - {type: "tests.stages_for_tests:HoldAllFactory", declared: 100000}\n'
    )
    events = replay(raw, [], routes)
    kinds = []
    for event in events:
        if event.data == "[DONE]":
            kinds.append("done")
            continue
        chunk = json.loads(event.data)
        for choice in chunk["choices"]:
            if (choice.get("delta") or {}).get("content"):
                kinds.append("text")
            if choice.get("finish_reason"):
                kinds.append("finish")
        if chunk.get("usage"):
            kinds.append("usage")
    assert ["text", "finish", "usage", "done"] == kinds


def test_tool_call_arguments_get_their_declared_schema() -> None:
    """Tool-call channels are JSON channels carrying the tool's parameters schema."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    info = RequestInfo.from_json(
        {
            "tools": [
                {"type": "function", "function": {"name": "GetWeatherArgs", "parameters": schema}}
            ]
        }
    )
    plan = build_plans(parse_config(NO_STAGES))["r"]
    adapter = StreamDriver(OpenAIChatStream, ResponseFilter(plan), info)
    raw = (recorded_dir() / "openai-chat" / "tool-call-args-split.sse").read_bytes()

    async def run() -> None:
        decoder = SSEDecoder()
        await adapter.feed(decoder.feed(raw))

    asyncio.run(run())
    channels = {c.channel.key: c.channel for c in adapter.response.chains.values()}
    assert "json" == channels["choice0.tool0.arguments"].kind.value
    assert schema == channels["choice0.tool0.arguments"].json_schema
