"""Anthropic Messages (``POST /v1/messages``), streamed and not.

Mirrors ``fixtures/recorded/anthropic-messages``: ``message_start``, then per content block
``content_block_start`` / deltas / ``content_block_stop`` (a ``ping`` after the first start),
``message_delta`` with the stop reason and usage, ``message_stop``. As in the recording of a
``max_tokens`` cut, the block being written when the limit hits gets no ``content_block_stop``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pipeline.simulator._control import Plan, SimRequestError, ToolCallPlan
from pipeline.simulator._wire import STEP, Frame, Stream, alnum_id, dumps, sse_event

# OpenAI-style sim.finish_reason values mapped to Anthropic stop reasons; others pass through.
_STOP_REASONS = {
    "length": "max_tokens",
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
# The recording writes ping with spaces, unlike every other event.
_PING = sse_event("ping", '{"type": "ping"}')


def messages_stream(body: Mapping[str, Any], plan: Plan) -> Stream:
    """The reply to a ``stream: true`` request, one frame per event."""
    del body  # the reply depends on the plan alone; the signature is shared with non-streaming
    yield _event({"type": "message_start", "message": _message(plan, [], None)})
    blocks = _blocks(plan)
    stop_reason = _stop_reason(plan)
    for index, (opening, deltas) in enumerate(blocks):
        yield _event({"type": "content_block_start", "index": index, "content_block": opening})
        if index == 0:
            yield Frame(_PING)
        if opening["type"] == "tool_use":
            yield _delta(index, {"type": "input_json_delta", "partial_json": ""}, generated=False)
        for delta in deltas:
            yield STEP
            yield _delta(index, delta, generated=True)
        if stop_reason != "max_tokens" or index < len(blocks) - 1:
            yield _event({"type": "content_block_stop", "index": index})
    yield _event(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": plan.completion_tokens},
        }
    )
    yield _event({"type": "message_stop"})


def message(body: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """The ``message`` object for a request without ``stream``."""
    del body
    content: list[dict[str, Any]] = []
    for opening, deltas in _blocks(plan):
        if opening["type"] == "text":
            content.append({"type": "text", "text": "".join(d["text"] for d in deltas)})
        else:
            arguments = "".join(d["partial_json"] for d in deltas)
            content.append({**opening, "input": _parse_input(opening["name"], arguments)})
    return _message(plan, content, _stop_reason(plan))


def _message(plan: Plan, content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
    return {
        "id": "msg_01" + alnum_id(plan.rng, 22),
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": plan.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1 if stop_reason is None else plan.completion_tokens,
            "service_tier": "standard",
        },
    }


def _blocks(plan: Plan) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each content block's opening object and its deltas (text first, then tool uses)."""
    pieces = plan.texts[0]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if pieces or not plan.tool_calls:
        text_deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
        blocks.append(({"type": "text", "text": ""}, text_deltas))
    blocks.extend(_tool_block(call, plan) for call in plan.tool_calls)
    return blocks


def _tool_block(call: ToolCallPlan, plan: Plan) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    opening = {
        "type": "tool_use",
        "id": "toolu_01" + alnum_id(plan.rng, 22),
        "name": call.name,
        "caller": {"type": "direct"},
        "input": {},
    }
    return opening, [{"type": "input_json_delta", "partial_json": p} for p in call.pieces]


def _parse_input(name: str, arguments: str) -> object:
    try:
        return json.loads(arguments) if arguments else {}
    except ValueError:
        raise SimRequestError(
            400, f"sim.tool_calls arguments for {name!r} must be JSON in a non-streaming reply."
        ) from None


def _stop_reason(plan: Plan) -> str:
    if plan.finish_reason is not None:
        return _STOP_REASONS.get(plan.finish_reason, plan.finish_reason)
    return "tool_use" if plan.tool_calls else "end_turn"


def _event(payload: dict[str, Any]) -> Frame:
    return Frame(sse_event(payload["type"], dumps(payload)))


def _delta(index: int, delta: dict[str, Any], *, generated: bool) -> Frame:
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return Frame(sse_event("content_block_delta", dumps(payload)), delta=generated)
