"""Protocol codecs by protocol, and how a request's path selects one."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Protocol
from pipeline.paths import fold
from pipeline.protocols.anthropic import AnthropicBody, AnthropicStream
from pipeline.protocols.base import BodyCodec, StreamCodec
from pipeline.protocols.completions import CompletionsBody, CompletionsStream
from pipeline.protocols.generic import GenericBody, GenericStream
from pipeline.protocols.openai_chat import OpenAIChatStream
from pipeline.protocols.openai_chat_body import OpenAIChatBody
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
