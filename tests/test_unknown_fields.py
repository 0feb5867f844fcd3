"""Deny by default inside known protocols: fields no codec slot knows are filtered too.

Each field the issue names carries ``secret`` split across two events where it streams;
a route that masks ``secret`` must never let it out, and the walker counts the field.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pipeline.config import parse_config
from pipeline.driver import Driver, StreamDriver
from pipeline.engine import ResponseFilter, build_plans
from pipeline.protocols.anthropic import AnthropicBody, AnthropicStream
from pipeline.protocols.base import BodyCodec, StreamCodec
from pipeline.protocols.openai_chat import OpenAIChatStream
from pipeline.protocols.openai_chat_body import OpenAIChatBody
from pipeline.protocols.request import RequestInfo
from pipeline.protocols.responses import ResponsesStream
from pipeline.protocols.responses_body import ResponsesBody
from pipeline.sse import Event, SSEDecoder
from pipeline.testing import drive_stream

MASK = """
routes:
  - name: r
    match: {path: "/v1/*"}
    upstream: {url: "http://127.0.0.1:9"}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
"""


def _driver(codec: type[StreamCodec]) -> StreamDriver:
    plan = build_plans(parse_config(MASK))["r"]
    return StreamDriver(codec, ResponseFilter(plan), RequestInfo(stream=True))


def stream(codec: type[StreamCodec], *events: tuple[str, dict[str, Any]]) -> tuple[str, Driver]:
    """What the client receives for these ``(event name, payload)`` events, and the driver."""
    raw = b"".join(
        (f"event: {name}\n" if name else "").encode() + f"data: {json.dumps(p)}\n\n".encode()
        for name, p in events
    )
    driver = _driver(codec)
    out = drive_stream(driver, raw)
    return "".join(e.data for e in SSEDecoder().feed(out) if isinstance(e, Event)), driver


def body(codec: type[BodyCodec], payload: dict[str, Any]) -> tuple[str, Driver]:
    """The filtered non-streamed body as JSON text, and the driver."""
    plan = build_plans(parse_config(MASK))["r"]
    driver = Driver(ResponseFilter(plan), RequestInfo())
    return json.dumps(asyncio.run(codec(driver).filter(payload))), driver


def responses_delta(kind: str, delta: str, seq: int, **where: int) -> tuple[str, dict[str, Any]]:
    payload = {"type": kind, "sequence_number": seq, "item_id": "rs_1", **where, "delta": delta}
    return kind, payload


COMPLETED = (
    "response.completed",
    {"type": "response.completed", "sequence_number": 9, "response": {"id": "r", "output": []}},
)


def test_responses_reasoning_summary_split_across_deltas_is_masked() -> None:
    """``response.reasoning_summary_text.delta`` pieces join into one channel."""
    kind = "response.reasoning_summary_text.delta"
    text, driver = stream(
        ResponsesStream,
        responses_delta(kind, "a sec", 1, output_index=0, summary_index=0),
        responses_delta(kind, "ret here", 2, output_index=0, summary_index=0),
        COMPLETED,
    )
    assert "secret" not in text
    assert "[MASKED]" in text
    assert 2 == sum(n for f, n in driver.unknown_fields.items() if "reasoning_summary" in f)


def test_responses_reasoning_text_and_audio_transcript_are_masked() -> None:
    """``response.reasoning_text.delta`` and ``response.audio.transcript.delta`` too."""
    reasoning = "response.reasoning_text.delta"
    audio = "response.audio.transcript.delta"
    text, _ = stream(
        ResponsesStream,
        responses_delta(reasoning, "the sec", 1, output_index=0, content_index=0),
        responses_delta(reasoning, "ret", 2, output_index=0, content_index=0),
        (audio, {"type": audio, "sequence_number": 3, "delta": "my secr"}),
        (audio, {"type": audio, "sequence_number": 4, "delta": "et word"}),
        COMPLETED,
    )
    assert "secret" not in text
    assert "secr" not in text.replace("[MASKED]", "")


def test_responses_annotation_and_done_aggregates_are_masked() -> None:
    """``response.output_text.annotation.added`` and a summary's ``.done`` are filtered."""
    added = "response.output_text.annotation.added"
    done = "response.reasoning_summary_text.done"
    annotation = {"type": "url_citation", "title": "the secret page", "url": "https://x/secret"}
    text, _ = stream(
        ResponsesStream,
        (added, {"type": added, "sequence_number": 1, "annotation": annotation}),
        (done, {"type": done, "sequence_number": 2, "output_index": 0, "text": "a secret"}),
        COMPLETED,
    )
    assert "secret" not in text


def test_responses_reasoning_summary_in_a_body_is_masked() -> None:
    """A non-streamed reply's reasoning item: its summary and reasoning text are filtered."""
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "the secret plan"}],
        "content": [{"type": "reasoning_text", "text": "secret steps"}],
    }
    text, driver = body(ResponsesBody, {"id": "r", "object": "response", "output": [reasoning]})
    assert "secret" not in text
    assert driver.unknown_fields


def chat_chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[str, dict[str, Any]]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return "", {"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [choice]}


def test_chat_audio_transcript_split_across_chunks_is_masked() -> None:
    """``delta.audio.transcript`` is a stream of its own per choice; ``data`` stays as is."""
    text, driver = stream(
        OpenAIChatStream,
        chat_chunk({"audio": {"id": "a1", "transcript": "tell the sec", "data": "c2VjcmV0"}}),
        chat_chunk({"audio": {"transcript": "ret now"}}),
        chat_chunk({}, "stop"),
        ("", {"done": True}),
    )
    assert "secret" not in text
    assert "c2VjcmV0" in text
    assert {"choice.delta.audio.transcript": 2} == driver.unknown_fields


def test_chat_message_audio_transcript_in_a_body_is_masked() -> None:
    """``message.audio.transcript`` of a non-streamed chat completion."""
    message = {"role": "assistant", "content": None, "audio": {"id": "a", "transcript": "secret"}}
    payload = {
        "id": "c",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message}],
    }
    text, _ = body(OpenAIChatBody, payload)
    assert "secret" not in text
    assert "[MASKED]" in text


def test_anthropic_citations_delta_cited_text_is_masked() -> None:
    """``citations_delta`` carries ``cited_text``: filtered, one whole text per citation."""
    citation = {"type": "char_location", "cited_text": "the secret clause", "document_index": 0}
    text, driver = stream(
        AnthropicStream,
        ("message_start", {"type": "message_start", "message": {"id": "m", "content": []}}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "citations_delta", "citation": citation},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_stop", {"type": "message_stop"}),
    )
    assert "secret" not in text
    assert "the [MASKED] clause" in text
    assert {"block.citation.cited_text": 1} == driver.unknown_fields


def test_anthropic_unknown_block_field_in_a_body_is_masked() -> None:
    """A body's block field no codec slot knows is filtered; thinking stays as signed."""
    content = [
        {"type": "thinking", "thinking": "secret thought", "signature": "sig"},
        {"type": "text", "text": "ok", "citations": [{"cited_text": "a secret"}]},
    ]
    text, _ = body(AnthropicBody, {"id": "m", "type": "message", "content": content})
    assert "secret thought" in text
    assert "a secret" not in text


def test_anthropic_fields_beside_a_content_events_delta_are_masked() -> None:
    """A content event's own part (delta, opening block) is the codec's; a string the
    provider puts beside it, with or without an index, is filtered too."""
    start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    text, driver = stream(
        AnthropicStream,
        ("message_start", {"type": "message_start", "message": {"id": "m", "content": []}}),
        ("content_block_start", start | {"note": "a secret start"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "hi"},
                "hint": "a secret hint",
            },
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "delta": {"type": "x"}, "more": "secret"},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_stop", {"type": "message_stop"}),
    )
    assert "secret" not in text
    assert {"block.note", "block.hint", "content_block_delta.more"} <= set(driver.unknown_fields)
