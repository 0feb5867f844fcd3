"""OpenAI Chat Completions (``POST /v1/chat/completions``), streamed and not.

Field sets and order follow the recorded streams in ``fixtures/recorded/openai-chat``: a role
chunk opening each choice, one chunk per delta, choices interleaved round by round, an empty
``delta`` carrying ``finish_reason``, an optional usage chunk with ``choices: []``, ``[DONE]``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeline.simulator._control import Plan, ToolCallPlan
from pipeline.simulator._wire import (
    DONE,
    Frame,
    Stream,
    alnum_id,
    dumps,
    hex_id,
    interleave_choices,
    sse_data,
)

_ChunkFn = Callable[[dict[str, Any], bool], Frame]


def chat_stream(body: Mapping[str, Any], plan: Plan) -> Stream:
    """The reply to a ``stream: true`` request, one frame per chunk."""
    header = dumps(_header(plan, "chat.completion.chunk"))
    # Every chunk repeats the same header; only the choice differs, so serialise that alone.
    prefix = header[:-1] + ',"choices":['

    def chunk(choice: dict[str, Any], delta: bool) -> Frame:
        return Frame(sse_data(prefix + dumps(choice) + "]}"), delta=delta)

    with_logprobs = bool(body.get("logprobs"))
    steps = [
        _choice_steps(index, pieces, plan, chunk, with_logprobs=with_logprobs)
        for index, pieces in enumerate(plan.texts)
    ]
    reason = _finish_reason(plan)
    finishes = [
        chunk({"index": i, "delta": {}, "logprobs": None, "finish_reason": reason}, False)
        for i in range(len(plan.texts))
    ]
    yield from interleave_choices(steps, finishes)
    if include_usage(body):
        yield Frame(sse_data(f'{prefix}],"usage":{dumps(openai_usage(plan))}}}'))
    yield Frame(DONE)


def chat_completion(body: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """The ``chat.completion`` object for a request without ``stream``."""
    with_logprobs = bool(body.get("logprobs"))
    reason = _finish_reason(plan)
    head = _header(plan, "chat.completion")
    fingerprint = head.pop("system_fingerprint")
    choices = [
        {
            "index": index,
            "message": _message(pieces, plan),
            "logprobs": _logprobs(pieces, plan) if with_logprobs else None,
            "finish_reason": reason,
        }
        for index, pieces in enumerate(plan.texts)
    ]
    return {
        **head,
        "choices": choices,
        "usage": openai_usage(plan),
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    }


def _header(plan: Plan, obj: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-" + alnum_id(plan.rng, 29),
        "object": obj,
        "created": int(time.time()),
        "model": plan.model,
        "system_fingerprint": "fp_" + hex_id(plan.rng, 10),
    }


def _choice_steps(
    index: int, pieces: tuple[str, ...], plan: Plan, chunk: _ChunkFn, *, with_logprobs: bool
) -> Iterator[list[Frame]]:
    """One choice's chunks grouped by generation step; the role chunk rides with the first."""
    tools_only = bool(plan.tool_calls) and not pieces
    role_delta: dict[str, Any] = (
        {"role": "assistant", "content": None}
        if tools_only
        else {"role": "assistant", "content": "", "refusal": None}
    )
    empty_logprobs: dict[str, Any] | None = (
        {"content": [], "refusal": None} if with_logprobs else None
    )
    steps = itertools.chain(
        (
            [chunk(_choice(index, {"content": p}, _piece_logprobs(p, plan, with_logprobs)), True)]
            for p in pieces
        ),
        *(_tool_call_steps(index, j, call, plan, chunk) for j, call in enumerate(plan.tool_calls)),
    )
    yield [chunk(_choice(index, role_delta, empty_logprobs), False), *next(steps, [])]
    yield from steps


def _tool_call_steps(
    index: int, position: int, call: ToolCallPlan, plan: Plan, chunk: _ChunkFn
) -> Iterator[list[Frame]]:
    opening = {
        "index": position,
        "id": "call_" + alnum_id(plan.rng, 24),
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    yield [chunk(_choice(index, {"tool_calls": [opening]}, None), False)]
    for piece in call.pieces:
        yield [chunk(_choice(index, _arguments_delta(position, piece), None), True)]


def _arguments_delta(position: int, piece: str) -> dict[str, Any]:
    return {"tool_calls": [{"index": position, "function": {"arguments": piece}}]}


def _choice(index: int, delta: dict[str, Any], logprobs: object) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}


def _piece_logprobs(piece: str, plan: Plan, with_logprobs: bool) -> dict[str, Any] | None:
    if not with_logprobs:
        return None
    return {"content": [_token_logprob(piece, plan)], "refusal": None}


def _logprobs(pieces: tuple[str, ...], plan: Plan) -> dict[str, Any]:
    return {"content": [_token_logprob(p, plan) for p in pieces], "refusal": None}


def _token_logprob(piece: str, plan: Plan) -> dict[str, Any]:
    return {
        "token": piece,
        "logprob": -round(plan.rng.expovariate(4.0), 8),
        "bytes": list(piece.encode()),
        "top_logprobs": [],
    }


def _message(pieces: tuple[str, ...], plan: Plan) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(pieces) if pieces or not plan.tool_calls else None,
    }
    if plan.tool_calls:
        message["tool_calls"] = [
            {
                "id": "call_" + alnum_id(plan.rng, 24),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in plan.tool_calls
        ]
    message["refusal"] = None
    message["annotations"] = []
    return message


def _finish_reason(plan: Plan) -> str:
    if plan.finish_reason is not None:
        return plan.finish_reason
    return "tool_calls" if plan.tool_calls else "stop"


def include_usage(body: Mapping[str, Any]) -> bool:
    """Whether the request asked for the trailing usage chunk (``stream_options``)."""
    options = body.get("stream_options")
    return isinstance(options, Mapping) and bool(options.get("include_usage"))


def openai_usage(plan: Plan) -> dict[str, Any]:
    """The ``usage`` object of chat and legacy completions, shaped like the recordings."""
    completion = plan.completion_tokens
    return {
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": plan.prompt_tokens + completion,
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
