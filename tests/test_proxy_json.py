"""The ``json`` stage through the real proxy with the ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

from pipeline.testing import split_at
from tests.conftest import StackFactory
from tests.conftest import openai_client as client

ROUTES = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: json
"""
SCHEMA: Any = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {"name": "person", "schema": SCHEMA, "strict": True},
}
MESSAGES: Any = [{"role": "user", "content": "who?"}]


async def stream(url: str, **kwargs: Any) -> tuple[str, str | None]:
    text, finish = "", None
    response = await client(url).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, **kwargs
    )
    async for chunk in response:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, finish


async def test_valid_schema_output_passes_byte_identical(stack: StackFactory) -> None:
    """A valid ``json_schema`` reply reaches the client exactly as the model wrote it."""
    s = await stack(ROUTES)
    doc = '{"name": "Ada", "age": 36}'
    sim = {"chunks": split_at(doc, [1, 3, 9, 15, 20])}
    assert (doc, "stop") == await stream(
        s.proxy_url, response_format=FORMAT, extra_body={"sim": sim}
    )


async def test_schema_violation_is_blocked_before_the_document_completes(
    stack: StackFactory,
) -> None:
    """A missing required property stops the stream with ``content_filter`` before ``}``."""
    s = await stack(ROUTES)
    doc = '{"name": "Ada"}'
    text, finish = await stream(
        s.proxy_url, response_format=FORMAT, extra_body={"sim": {"text": doc}}
    )
    assert "content_filter" == finish
    assert doc.startswith(text)
    assert not text.endswith("}")


async def test_syntax_error_in_json_mode_is_blocked(stack: StackFactory) -> None:
    """A trailing comma in ``json_object`` mode is stopped at the ``}`` that proves it."""
    s = await stack(ROUTES)
    text, finish = await stream(
        s.proxy_url,
        response_format={"type": "json_object"},
        extra_body={"sim": {"text": '{"a": 1, "b": 2,}'}},
    )
    assert "content_filter" == finish
    assert '{"a": 1, "b": 2,' == text


async def test_prose_is_not_validated_without_json_mode(stack: StackFactory) -> None:
    """Without ``response_format`` the content is prose and passes untouched."""
    s = await stack(ROUTES)
    assert ("not { json", "stop") == await stream(
        s.proxy_url, extra_body={"sim": {"text": "not { json"}}
    )


async def test_tool_call_arguments_are_validated_against_parameters(stack: StackFactory) -> None:
    """Tool-call arguments that break the tool's schema are blocked; valid ones pass."""
    s = await stack(ROUTES)
    tools: Any = [{"type": "function", "function": {"name": "save", "parameters": SCHEMA}}]
    good = json.dumps({"name": "Ada", "age": 36})
    async with client(s.proxy_url).chat.completions.stream(
        model="gpt-4o",
        messages=MESSAGES,
        tools=tools,
        extra_body={"sim": {"tool_calls": [{"name": "save", "arguments": good}]}},
    ) as response:
        final = await response.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert {"name": "Ada", "age": 36} == json.loads(call.function.arguments)

    bad = json.dumps({"name": "Ada", "age": "old"})
    response2 = await client(s.proxy_url).chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=tools,
        stream=True,
        extra_body={"sim": {"tool_calls": [{"name": "save", "arguments": bad}]}},
    )
    finishes = [
        c.finish_reason async for chunk in response2 for c in chunk.choices if c.finish_reason
    ]
    assert ["content_filter"] == finishes


async def test_non_streaming_json_is_validated(stack: StackFactory) -> None:
    """A whole ``chat.completion`` body goes through the same JSON check."""
    s = await stack(ROUTES)
    reply = await client(s.proxy_url).chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        response_format=FORMAT,
        extra_body={"sim": {"text": '{"name": "Ada", "age": 1, "x": 2}'}},
    )
    assert "content_filter" == reply.choices[0].finish_reason


async def test_trailing_whitespace_reaches_the_client_intact(stack: StackFactory) -> None:
    """``{"a": 1}`` and a hundred spaces is valid RFC 8259: all of it arrives, ``stop``."""
    s = await stack(ROUTES)
    doc = '{"a": 1}' + " " * 100
    sim = {"chunks": ['{"a": 1}', *[" "] * 100]}
    assert (doc, "stop") == await stream(
        s.proxy_url, response_format={"type": "json_object"}, extra_body={"sim": sim}
    )


async def test_pattern_is_judged_at_the_end_with_the_close_withheld(stack: StackFactory) -> None:
    """A ``pattern`` the streaming checker cannot decide is judged at the end; the client
    gets ``content_filter`` and never the document's close."""
    schema = {**SCHEMA, "properties": {**SCHEMA["properties"], "name": {"pattern": "^[A-Z]"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}
    s = await stack(ROUTES)
    doc = '{"name": "ada", "age": 36}'
    text, finish = await stream(s.proxy_url, response_format=fmt, extra_body={"sim": {"text": doc}})
    assert ("content_filter", doc[:-1]) == (finish, text)
