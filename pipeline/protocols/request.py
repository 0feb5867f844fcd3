"""What the proxy needs to know about a client's request, read once from its JSON body."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ErrorShape = Callable[[str, str, str], dict[str, Any]]
"""``(message, kind, code)`` → the error object a client's SDK parses (``kind`` is
``content_filter`` for a block, ``proxy_error`` otherwise)."""


class BadRequestError(Exception):
    """The client's body is not what the endpoint takes; answered with HTTP 400."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The parts of a request body that decide how its reply is filtered."""

    model: str | None = None
    stream: bool = False
    include_usage: bool = False
    json_content: bool = False
    """The request asked for JSON content (``response_format`` / ``text.format``)."""
    content_schema: Mapping[str, Any] | None = None
    tool_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Tool name → JSON Schema of its arguments / input."""
    error_shape: ErrorShape | None = None
    """How the generic codecs write a block or an error when the client speaks a known
    protocol's API on one of its other paths (``GET /v1/messages/batches/x`` on an
    Anthropic route): set by the proxy from the route, so the generic codec never has to
    know another protocol. ``None``: the generic shape."""

    @classmethod
    def parse(cls, body: bytes) -> RequestInfo:
        """Read a request body; an empty body (GET) gives the defaults."""
        if not body.strip():
            return cls()
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequestError(f"request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise BadRequestError("request body is nested too deeply") from None
        if not isinstance(data, dict):
            raise BadRequestError("request body must be a JSON object")
        return cls.from_json(data)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestInfo:
        model = data.get("model")
        options = data.get("stream_options")
        json_content, schema = _content_format(data)
        return cls(
            model=model if isinstance(model, str) else None,
            stream=data.get("stream") is True,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            json_content=json_content,
            content_schema=schema,
            tool_schemas=_tool_schemas(data.get("tools")),
        )


def _content_format(data: Mapping[str, Any]) -> tuple[bool, Mapping[str, Any] | None]:
    """Chat's ``response_format`` or the Responses API's ``text.format``."""
    fmt = data.get("response_format")
    text = data.get("text")
    if fmt is None and isinstance(text, dict):
        fmt = text.get("format")
    if not isinstance(fmt, dict):
        return False, None
    kind = fmt.get("type")
    if kind == "json_object":
        return True, None
    if kind != "json_schema":
        return False, None
    # Chat nests the schema under json_schema.schema; Responses puts it on the format itself.
    holder = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else fmt
    schema = holder.get("schema") if isinstance(holder, dict) else None
    return True, schema if isinstance(schema, dict) else None


def _tool_schemas(tools: object) -> dict[str, Mapping[str, Any]]:
    """Name → schema for OpenAI chat, Responses and Anthropic tool declarations."""
    schemas: dict[str, Mapping[str, Any]] = {}
    if not isinstance(tools, list):
        return schemas
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        function = tool.get("function")
        spec: dict[str, Any] = function if isinstance(function, dict) else tool
        name = spec.get("name")
        schema = spec.get("parameters", spec.get("input_schema"))
        if isinstance(name, str) and isinstance(schema, dict):
            schemas[name] = schema
    return schemas
