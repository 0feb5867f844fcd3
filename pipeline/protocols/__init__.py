"""Protocol codecs by protocol, and how a request's path selects one."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Protocol
from pipeline.paths import fold
from pipeline.protocols.anthropic import AnthropicBody, AnthropicStream, error_object
from pipeline.protocols.base import BodyCodec, StreamCodec
from pipeline.protocols.completions import CompletionsBody, CompletionsStream
from pipeline.protocols.generic import GenericBody, GenericStream
from pipeline.protocols.openai_chat import OpenAIChatStream
from pipeline.protocols.openai_chat_body import OpenAIChatBody
from pipeline.protocols.request import ErrorShape
from pipeline.protocols.responses import ResponsesStream
from pipeline.protocols.responses_body import ResponsesBody


@dataclass(frozen=True, slots=True)
class Adapters:
    """The two codecs of one protocol: streamed replies and whole bodies."""

    stream: type[StreamCodec]
    body: type[BodyCodec]


ADAPTERS: dict[Protocol, Adapters] = {
    Protocol.OPENAI_CHAT: Adapters(OpenAIChatStream, OpenAIChatBody),
    Protocol.OPENAI_COMPLETIONS: Adapters(CompletionsStream, CompletionsBody),
    Protocol.OPENAI_RESPONSES: Adapters(ResponsesStream, ResponsesBody),
    Protocol.ANTHROPIC_MESSAGES: Adapters(AnthropicStream, AnthropicBody),
    Protocol.GENERIC_SSE: Adapters(GenericStream, GenericBody),
}

# Path suffixes as the official SDKs call them; the route's base path may differ.
_SUFFIXES: tuple[tuple[str, Protocol], ...] = (
    ("/chat/completions", Protocol.OPENAI_CHAT),
    ("/completions", Protocol.OPENAI_COMPLETIONS),
    ("/messages", Protocol.ANTHROPIC_MESSAGES),
    ("/responses", Protocol.OPENAI_RESPONSES),
)


def select(configured: Protocol, method: str, path: str) -> Protocol:
    """The protocol a reply on a route is filtered as, from the canonical request path.

    A known endpoint (``POST`` to one of the SDKs' paths, matched ignoring case) gets its
    codec; every other method and path of the route (``GET /v1/responses/{id}``, ``DELETE``,
    ``/messages/count_tokens``...) gets the generic codecs, which filter every string, so a
    stored copy of a reply can never be fetched unfiltered. ``PASSTHROUGH`` only when the
    route says so.
    """
    if configured is Protocol.PASSTHROUGH:
        return Protocol.PASSTHROUGH
    if method.upper() != "POST":
        return Protocol.GENERIC_SSE
    if configured is not Protocol.AUTO:
        return configured
    trimmed = fold(path).rstrip("/")
    for suffix, protocol in _SUFFIXES:
        if trimmed.endswith(suffix):
            return protocol
    return Protocol.GENERIC_SSE


def _anthropic_path(path: str) -> bool:
    """A path of Anthropic's API: ``…/v1/messages`` or under it (batches, count_tokens).

    Matched as ``/v1/messages`` segments, not a bare ``messages`` one: OpenAI has
    ``/v1/threads/{id}/messages`` and ``/v1/chat/completions/{id}/messages``.
    """
    trimmed = fold(path).rstrip("/")
    return trimmed.endswith("/v1/messages") or "/v1/messages/" in trimmed


def error_protocol(configured: Protocol, method: str, path: str) -> Protocol:
    """The protocol whose error shape the client's SDK parses for this request.

    The selected protocol, except that a generic reply of an Anthropic route (the route is
    configured ``anthropic-messages``, or ``auto`` and the path is under ``/v1/messages``)
    answers errors as Anthropic does: the client there is the ``anthropic`` SDK, which
    reads ``{"type": "error", "error": {...}}``. A route configured with any other protocol
    keeps its choice.
    """
    selected = select(configured, method, path)
    if selected is not Protocol.GENERIC_SSE:
        return selected
    if configured is Protocol.ANTHROPIC_MESSAGES or (
        configured is Protocol.AUTO and _anthropic_path(path)
    ):
        return Protocol.ANTHROPIC_MESSAGES
    return selected


def error_shape(protocol: Protocol) -> ErrorShape | None:
    """What the generic codecs write errors as for a client of ``protocol`` (None: theirs)."""
    return error_object if protocol is Protocol.ANTHROPIC_MESSAGES else None
