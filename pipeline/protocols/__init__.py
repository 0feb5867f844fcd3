"""Protocol codecs by protocol, and how a request's path selects one."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Protocol
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
    """The protocol a request is filtered as; ``PASSTHROUGH`` for anything else."""
    if configured is not Protocol.AUTO:
        return configured if configured in ADAPTERS else Protocol.PASSTHROUGH
    if method != "POST":
        return Protocol.PASSTHROUGH
    trimmed = path.rstrip("/")
    for suffix, protocol in _SUFFIXES:
        if trimmed.endswith(suffix):
            return protocol if protocol in ADAPTERS else Protocol.PASSTHROUGH
    return Protocol.PASSTHROUGH
