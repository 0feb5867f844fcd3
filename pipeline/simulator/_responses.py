"""OpenAI Responses API (``POST /v1/responses``), streamed and not.

The stream is a sequence of named events, each with an increasing ``sequence_number``:
``response.created`` and ``response.in_progress``; per output item ``output_item.added``,
its parts and deltas, their ``.done`` events repeating the full text, ``output_item.done``;
and finally ``response.completed`` (or ``response.incomplete`` for a truncated reply)
carrying the whole response object. There is no ``[DONE]``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.simulator._control import Plan, ToolCallPlan
from pipeline.simulator._wire import STEP, Frame, Stream, alnum_id, dumps, hex_id, sse_event

# sim.finish_reason values that end a Responses reply early, with the API's own reason.
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}

_Item = tuple[dict[str, Any], list[str]]
"""An output item as it is when complete, and the deltas that build its text or arguments."""


def responses_stream(body: Mapping[str, Any], plan: Plan) -> Stream:
    """The reply to a ``stream: true`` request, one frame per event."""
    sequence = itertools.count()
    items = _items(plan)
    response = _response(body, plan, items)

    def event(payload: dict[str, Any], generated: bool = False) -> Frame:
        payload = {"type": payload["type"], "sequence_number": next(sequence), **payload}
        return Frame(sse_event(payload["type"], dumps(payload)), delta=generated)

    starting = {**response, "status": "in_progress", "incomplete_details": None, "usage": None}
    starting["output"] = []
    yield event({"type": "response.created", "response": starting})
    yield event({"type": "response.in_progress", "response": starting})
    for output_index, (item, deltas) in enumerate(items):
        for payload, generated in _item_events(output_index, item, deltas):
            if generated:
                yield STEP
            yield event(payload, generated)
    final_type = (
        "response.completed" if response["status"] == "completed" else "response.incomplete"
    )
    yield event({"type": final_type, "response": response})


def response(body: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """The ``response`` object for a request without ``stream``."""
    return _response(body, plan, _items(plan))


def _response(body: Mapping[str, Any], plan: Plan, items: list[_Item]) -> dict[str, Any]:
    incomplete = _INCOMPLETE_REASONS.get(plan.finish_reason or "")
    output = [item for item, _ in items]
    completion = plan.completion_tokens
    return {
        "id": "resp_" + hex_id(plan.rng, 48),
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if incomplete else "completed",
        "background": False,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": plan.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text", {"format": {"type": "text"}}),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": {
            "input_tokens": plan.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": plan.prompt_tokens + completion,
        },
        "user": body.get("user"),
        "metadata": body.get("metadata", {}),
    }


def _items(plan: Plan) -> list[_Item]:
    """Output items as complete, text first, then function calls (ids drawn from the rng)."""
    status = "incomplete" if plan.finish_reason in _INCOMPLETE_REASONS else "completed"
    items: list[_Item] = []
    pieces = plan.texts[0]
    if pieces or not plan.tool_calls:
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": "".join(pieces)}
        message = {
            "id": "msg_" + hex_id(plan.rng, 48),
            "type": "message",
            "status": status,
            "content": [part],
            "role": "assistant",
        }
        items.append((message, list(pieces)))
    items.extend(_function_call(call, plan) for call in plan.tool_calls)
    return items


def _function_call(call: ToolCallPlan, plan: Plan) -> _Item:
    item = {
        "id": "fc_" + hex_id(plan.rng, 48),
        "type": "function_call",
        "status": "completed",
        "arguments": call.arguments,
        "call_id": "call_" + alnum_id(plan.rng, 24),
        "name": call.name,
    }
    return item, list(call.pieces)


def _item_events(
    index: int, item: dict[str, Any], deltas: list[str]
) -> Iterator[tuple[dict[str, Any], bool]]:
    """One output item's events, each paired with whether it carries generated text."""
    if item["type"] == "message":
        opening = {**item, "status": "in_progress", "content": []}
    else:
        opening = {**item, "status": "in_progress", "arguments": ""}
    yield {"type": "response.output_item.added", "output_index": index, "item": opening}, False
    where = {"item_id": item["id"], "output_index": index}
    if item["type"] == "message":
        yield from _text_events(where, item["content"][0], deltas)
    else:
        for delta in deltas:
            yield {"type": "response.function_call_arguments.delta", **where, "delta": delta}, True
        yield (
            {
                "type": "response.function_call_arguments.done",
                **where,
                "arguments": item["arguments"],
            },
            False,
        )
    yield {"type": "response.output_item.done", "output_index": index, "item": item}, False


def _text_events(
    where: dict[str, Any], part: dict[str, Any], deltas: list[str]
) -> Iterator[tuple[dict[str, Any], bool]]:
    at = {**where, "content_index": 0}
    yield {"type": "response.content_part.added", **at, "part": {**part, "text": ""}}, False
    for delta in deltas:
        yield {"type": "response.output_text.delta", **at, "delta": delta, "logprobs": []}, True
    yield {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []}, False
    yield {"type": "response.content_part.done", **at, "part": part}, False
