"""OpenAI legacy completions (``POST /v1/completions``): ``text_completion`` objects.

Kept because older clients and pass-through routes still use it; the stream differs from chat
in small ways a proxy must respect (``choices[i].text``, ``model`` after ``choices``, no role
chunk, the finishing chunk carries ``text: ""``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pipeline.simulator._control import Plan
from pipeline.simulator._openai_chat import include_usage, openai_usage
from pipeline.simulator._wire import (
    DONE,
    Frame,
    Stream,
    alnum_id,
    dumps,
    interleave_choices,
    sse_data,
)


def completions_stream(body: Mapping[str, Any], plan: Plan) -> Stream:
    """The reply to a ``stream: true`` request, one frame per chunk."""
    head = dumps(_header(plan))
    prefix = head[:-1] + ',"choices":['
    suffix = f'],"model":{dumps(plan.model)}}}'

    def chunk(choice: dict[str, Any], delta: bool) -> Frame:
        return Frame(sse_data(prefix + dumps(choice) + suffix), delta=delta)

    reason = _finish_reason(plan)
    steps = [
        # An empty reply still needs one step, or its choice would never finish.
        ([chunk(_choice(index, piece, None), bool(piece))] for piece in pieces or ("",))
        for index, pieces in enumerate(plan.texts)
    ]
    finishes = [chunk(_choice(i, "", reason), False) for i in range(len(plan.texts))]
    yield from interleave_choices(steps, finishes)
    if include_usage(body):
        usage = dumps(openai_usage(plan))
        yield Frame(sse_data(f'{prefix}],"model":{dumps(plan.model)},"usage":{usage}}}'))
    yield Frame(DONE)


def completion(body: Mapping[str, Any], plan: Plan) -> dict[str, Any]:
    """The ``text_completion`` object for a request without ``stream``."""
    del body  # the reply depends on the plan alone; the signature is shared with streaming
    reason = _finish_reason(plan)
    return {
        **_header(plan),
        "model": plan.model,
        "choices": [_choice(i, "".join(pieces), reason) for i, pieces in enumerate(plan.texts)],
        "usage": openai_usage(plan),
    }


def _header(plan: Plan) -> dict[str, Any]:
    return {
        "id": "cmpl-" + alnum_id(plan.rng, 29),
        "object": "text_completion",
        "created": int(time.time()),
    }


def _choice(index: int, text: str, finish_reason: str | None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}


def _finish_reason(plan: Plan) -> str:
    return plan.finish_reason or "stop"
