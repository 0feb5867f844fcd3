"""What one simulated reply will be: server settings plus the request's optional ``sim`` object.

A request is turned into a :class:`Plan` before any byte is written, so every protocol module
renders the same decisions (texts, tool calls, delays, faults) in its own wire format and a bad
``sim`` object is refused with a 400 instead of half a stream.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.simulator._moderation import ModerationSettings

DEFAULT_TEXT = (
    "Sure, I have updated the contact record as you asked. The new account owner is Jane Doe; "
    "you can reach her at jane.doe@example.com or by phone on +1 (555) 010-4477 during office "
    "hours. I also noted that invoices should go to the same address from next month. Let me "
    "know if anything else needs to change and I will take care of it right away."
)

# A word with its leading whitespace, or one punctuation mark: roughly where BPE tokenizers cut,
# so an address like jane.doe@example.com arrives in several deltas, as it does from real APIs.
_WORD_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """Server-wide defaults; each request may override them with its ``sim`` object."""

    text: str = DEFAULT_TEXT
    first_token_delay_ms: float = 0.0
    inter_token_delay_ms: float = 0.0
    chars_per_token: int = 4
    """Longest delta cut from a word when splitting ``text`` (words are never merged)."""
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    """How ``/v1/moderations`` and the Llama-Guard-like chat model answer."""

    def __post_init__(self) -> None:
        if self.chars_per_token < 1:
            raise ValueError("chars_per_token must be at least 1")
        if self.first_token_delay_ms < 0 or self.inter_token_delay_ms < 0:
            raise ValueError("delays must not be negative")


class SimRequestError(Exception):
    """The request gets an HTTP error reply in its API's own error shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _ToolCallControl(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    arguments: str
    chunks: list[str] | None = None

    @model_validator(mode="after")
    def _chunks_spell_arguments(self) -> _ToolCallControl:
        if self.chunks is not None and "".join(self.chunks) != self.arguments:
            raise ValueError("tool_calls[].chunks must join to tool_calls[].arguments")
        return self


class _SimControl(BaseModel):
    """The ``sim`` object a request may carry; unknown keys are refused so typos surface."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str | None = None
    chunks: list[str] | None = None
    choices: list[str] | None = None
    tool_calls: list[_ToolCallControl] | None = None
    first_token_delay_ms: float | None = Field(default=None, ge=0)
    inter_token_delay_ms: float | None = Field(default=None, ge=0)
    finish_reason: str | None = None
    status: int | None = Field(default=None, ge=400, le=599)
    error: str | None = None
    fail_after: int | None = Field(default=None, ge=0)
    sse_split: Literal["event", "bytes"] = "event"
    seed: int | None = None

    @model_validator(mode="after")
    def _chunks_spell_text(self) -> _SimControl:
        if self.chunks is not None and self.text is not None and "".join(self.chunks) != self.text:
            raise ValueError("chunks must join to text when both are given")
        return self


@dataclass(frozen=True, slots=True)
class ToolCallPlan:
    """One tool call the reply makes; protocols give it their own ids."""

    name: str
    arguments: str
    pieces: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a protocol module needs to render one reply, decided up front."""

    model: str
    texts: tuple[tuple[str, ...], ...]
    """The text deltas of each choice (one entry unless the request asked for ``n`` > 1)."""
    tool_calls: tuple[ToolCallPlan, ...]
    finish_reason: str | None
    """The ``sim`` override in OpenAI terms; ``None`` means "however the reply naturally ends"."""
    first_token_delay: float
    inter_token_delay: float
    """Seconds."""
    fail_after: int | None
    byte_split: bool
    rng: random.Random
    """Drives ids, logprobs and byte splits, so a request with ``seed`` replays exactly."""
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        """Deltas across all choices, standing in for the tokens a real model would bill."""
        per_choice = sum(len(call.pieces) for call in self.tool_calls)
        return max(1, sum(len(pieces) + per_choice for pieces in self.texts))


@functools.lru_cache(maxsize=64)
def split_text(text: str, chars_per_token: int) -> tuple[str, ...]:
    """Cut ``text`` into deltas at word pieces, none longer than ``chars_per_token``."""
    pieces: list[str] = []
    for match in _WORD_PIECE.finditer(text):
        word = match.group()
        pieces.extend(word[i : i + chars_per_token] for i in range(0, len(word), chars_per_token))
    return tuple(pieces)


def estimate_tokens(value: object) -> int:
    """A rough token count of a prompt, so usage figures grow with the request."""
    return max(1, len(str(value)) // 4)


def build_plan(
    body: Mapping[str, Any],
    settings: SimulatorSettings,
    *,
    prompt: object,
    default_model: str,
    allow_n: bool = False,
    allow_tools: bool = True,
) -> Plan:
    """Decide the reply to ``body``, or raise :class:`SimRequestError` for an error reply."""
    sim = _parse_sim(body.get("sim"))
    if sim.status is not None:
        raise SimRequestError(sim.status, sim.error or f"Simulated error {sim.status}.")
    model = body.get("model", default_model)
    if not isinstance(model, str):
        raise SimRequestError(400, "model must be a string.")
    n = _choice_count(body, sim, allow_n=allow_n)
    tool_calls = _tool_calls(body, sim, settings, allow_tools=allow_tools)
    first = settings.first_token_delay_ms
    inter = settings.inter_token_delay_ms
    return Plan(
        model=model,
        texts=_texts(sim, settings, n, with_tools=bool(tool_calls)),
        tool_calls=tool_calls,
        finish_reason=sim.finish_reason,
        first_token_delay=(first if sim.first_token_delay_ms is None else sim.first_token_delay_ms)
        / 1000,
        inter_token_delay=(inter if sim.inter_token_delay_ms is None else sim.inter_token_delay_ms)
        / 1000,
        fail_after=sim.fail_after,
        byte_split=sim.sse_split == "bytes",
        # Not cryptography: ids and logprobs only need to look plausible and replay by seed.
        rng=random.Random(sim.seed),  # noqa: S311
        prompt_tokens=estimate_tokens(prompt),
    )


def _parse_sim(raw: object) -> _SimControl:
    if raw is None:
        return _SimControl()
    try:
        return _SimControl.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'sim'}: {err['msg']}" for err in exc.errors()
        )
        raise SimRequestError(400, f"Invalid sim object: {problems}") from None


def _choice_count(body: Mapping[str, Any], sim: _SimControl, *, allow_n: bool) -> int:
    n = body.get("n", 1) if allow_n else 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise SimRequestError(400, "n must be an integer between 1 and 128.")
    if sim.choices is not None and len(sim.choices) != n:
        raise SimRequestError(400, f"sim.choices has {len(sim.choices)} entries but n is {n}.")
    return n


def _texts(
    sim: _SimControl, settings: SimulatorSettings, n: int, *, with_tools: bool
) -> tuple[tuple[str, ...], ...]:
    cpt = settings.chars_per_token
    if sim.choices is not None:
        return tuple(split_text(text, cpt) for text in sim.choices)
    if sim.chunks is not None:
        pieces = tuple(sim.chunks)
    elif sim.text is not None:
        pieces = split_text(sim.text, cpt)
    elif with_tools:
        # A tool-call reply carries text only when the test asked for it explicitly.
        pieces = ()
    else:
        pieces = split_text(settings.text, cpt)
    return (pieces,) * n


def _tool_calls(
    body: Mapping[str, Any],
    sim: _SimControl,
    settings: SimulatorSettings,
    *,
    allow_tools: bool,
) -> tuple[ToolCallPlan, ...]:
    if not sim.tool_calls:
        return ()
    if not allow_tools:
        raise SimRequestError(400, "This endpoint cannot reply with tool calls.")
    if not body.get("tools"):
        # A real model never calls a tool it was not offered; refusing loudly beats silently
        # answering with text when a test forgot to declare ``tools``.
        raise SimRequestError(400, "sim.tool_calls needs `tools` in the request.")
    cpt = settings.chars_per_token
    return tuple(
        ToolCallPlan(
            name=call.name,
            arguments=call.arguments,
            pieces=tuple(call.chunks) if call.chunks is not None else _cut(call.arguments, cpt),
        )
        for call in sim.tool_calls
    )


def _cut(arguments: str, size: int) -> tuple[str, ...]:
    """Arguments split mid-word at a fixed size, as real argument streams are."""
    return tuple(arguments[i : i + size] for i in range(0, len(arguments), size))
