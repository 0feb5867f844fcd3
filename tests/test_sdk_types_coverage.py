"""Every string field of the SDKs' own event and message types is filtered or declared non-text.

Instances of the installed ``openai`` and ``anthropic`` SDKs' streaming event types and
message types are built from their pydantic annotations, with every ``str`` field set to
the word a masking route removes. Each goes through its codec and the driver; afterwards
the word may remain only under a key the walker or a codec declares non-text (ids, types,
names, signatures, base64 payloads, Anthropic thinking...), never anywhere else. A field a
new SDK release adds is covered the same way, with no change here.
"""

from __future__ import annotations

import asyncio
import enum
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

import anthropic.types as anthropic_types
import openai.types.chat as chat_types
import openai.types.responses as responses_types
import pydantic
import pytest

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
from pipeline.protocols.walker import is_structural
from pipeline.sse import Event, SSEDecoder, encode_data
from pipeline.testing import drive_stream

WORD = "secret"
MASK = """
routes:
  - name: r
    match: {path: "/v1/*"}
    upstream: {url: "http://127.0.0.1:9"}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
"""
DECLARED_NON_TEXT = {
    "thinking": "Anthropic thinking, verified against its signature when sent back",
}
"""Keys a codec declares non-text beyond the walker's structural ones, with the reason."""
PASSED_EVENTS = {"error"}
"""Event types passed as the upstream sent them: its own error ends the stream."""
ROUND_TRIPPED_BLOCKS = ("_tool_result", "compaction")
"""Anthropic block types sent back to the provider verbatim (see the codec's docstring)."""


def _members(annotation: Any) -> list[Any]:
    """The alternatives of a union (``Annotated`` unwrapped), or the type itself."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def sample(annotation: Any, variant: int, depth: int = 0) -> Any:
    """A JSON value of type ``annotation``; ``variant`` picks among union alternatives."""
    members = _members(annotation)
    tp = members[variant % len(members)] if members else annotation
    origin = typing.get_origin(tp)
    if depth > 8:
        return None
    if origin is typing.Literal:
        return typing.get_args(tp)[0]
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
        out = {}
        for name, field in tp.model_fields.items():
            out[field.alias or name] = sample(field.annotation, variant, depth + 1)
        return out
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp)).value
    if tp is str:
        return WORD
    if tp is bool:
        return False
    if tp in (int, float):
        return 0
    if origin in (list, typing.List, typing.Sequence):  # noqa: UP006 - matching typing's own
        (item,) = typing.get_args(tp) or (str,)
        return [sample(item, variant, depth + 1)]
    if origin in (dict, typing.Dict):  # noqa: UP006
        args = typing.get_args(tp)
        return {"k": sample(args[1] if args else str, variant, depth + 1)}
    return None


def variants(annotation: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Instances covering every union alternative at least once (nested ones by index)."""
    for member in _members(annotation):
        for variant in range(12):
            value = sample(member, variant)
            if isinstance(value, dict):
                yield member.__name__, value


def leaks(value: Any, key: str = "", where: str = "") -> list[str]:
    """Paths where the word survived under a key that is not declared non-text."""
    if isinstance(value, dict):
        kind = str(value.get("type", ""))
        if kind in PASSED_EVENTS or kind.endswith(ROUND_TRIPPED_BLOCKS):
            return []
        return [p for k, v in value.items() for p in leaks(v, k, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in leaks(v, key, f"{where}.{i}")]
    if isinstance(value, str) and WORD in value:
        declared = is_structural(key) or key in DECLARED_NON_TEXT
        return [] if declared else [where]
    return []


def _plan_driver() -> tuple[ResponseFilter, RequestInfo]:
    return ResponseFilter(build_plans(parse_config(MASK))["r"]), RequestInfo(stream=True)


def through_stream(codec: type[StreamCodec], payload: dict[str, Any], named: bool) -> list[Any]:
    name = str(payload.get("type", "")) if named else ""
    driver = StreamDriver(codec, *_plan_driver())
    out = drive_stream(driver, encode_data(json.dumps(payload), name))
    return [json.loads(e.data) for e in SSEDecoder().feed(out) if isinstance(e, Event)]


def through_body(codec: type[BodyCodec], payload: dict[str, Any]) -> Any:
    response, request = _plan_driver()
    return asyncio.run(codec(Driver(response, request)).filter(payload))


STREAMS = [
    (OpenAIChatStream, chat_types.ChatCompletionChunk, False),
    (ResponsesStream, responses_types.ResponseStreamEvent, True),
    (AnthropicStream, anthropic_types.RawMessageStreamEvent, True),
]
BODIES = [
    (OpenAIChatBody, chat_types.ChatCompletion),
    (ResponsesBody, responses_types.Response),
    (AnthropicBody, anthropic_types.Message),
]


@pytest.mark.parametrize(
    ("codec", "annotation", "named"), STREAMS, ids=["chat", "responses", "anthropic"]
)
def test_every_string_of_every_sdk_stream_event_is_filtered(
    codec: type[StreamCodec], annotation: Any, named: bool
) -> None:
    """No SDK event type carries the word out except under a declared non-text key."""
    found = {}
    checked = 0
    for name, payload in variants(annotation):
        checked += 1
        if problems := leaks(through_stream(codec, payload, named)):
            found[name] = problems
    assert {} == found
    assert checked >= len(_members(annotation))


@pytest.mark.parametrize(("codec", "annotation"), BODIES, ids=["chat", "responses", "anthropic"])
def test_every_string_of_every_sdk_message_type_is_filtered(
    codec: type[BodyCodec], annotation: Any
) -> None:
    """No SDK message type carries the word out except under a declared non-text key."""
    found = {}
    for name, payload in variants(annotation):
        if problems := leaks(through_body(codec, payload)):
            found[name] = problems
    assert {} == found
