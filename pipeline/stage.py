"""The stage contract: what every filter, built-in or custom, implements.

A stage is declared once per route (a :class:`StageFactory` built from its validated
:class:`StageConfig`) and opened once per *channel* of each response (a :class:`Stage`),
so per-stream state never lives on a shared object.

The engine feeds a stage the channel's text piece by piece. A stage returns, in a
:class:`Release`, the text it is sure of now; whatever it does not return yet is "held".
It reports how many input characters it holds through ``held`` so the engine can enforce
the bound. At the end of the channel the engine calls ``finish`` and the stage must decide
everything it still holds. Text released is final: the engine never asks for it back.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, NamedTuple, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field


class ChannelKind(enum.StrEnum):
    """What a channel carries, so a stage can choose how to treat it."""

    TEXT = "text"
    """Prose for a person: chat content, refusals, Anthropic text blocks, Responses text."""
    JSON = "json"
    """A JSON document: tool-call arguments, or content the request asked to be JSON."""


class ChannelEnd(enum.StrEnum):
    """Why a channel ended, passed to :meth:`Stage.finish`."""

    COMPLETE = "complete"
    """The model finished the channel normally (``stop``, ``tool_calls``, ``end_turn``...)."""
    TRUNCATED = "truncated"
    """The model was cut off by a token limit (``length``, ``max_tokens``)."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One independent text stream inside one response.

    ``key`` is stable and readable (``choice0.content``, ``choice1.tool0.arguments``,
    ``block2.text``) and appears in findings and logs.
    """

    key: str
    kind: ChannelKind = ChannelKind.TEXT
    protocol: str = "openai-chat"
    json_schema: Mapping[str, Any] | None = None
    """The JSON Schema the request declared for this channel, when it declared one."""
    route: str = ""
    scope: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)
    """Scratch space shared by every channel of one response (the engine gives each response
    its own). For the rare state stages must agree on across channels — the same address
    numbered ``[EMAIL_1]`` in the content and in a tool call. Key it by something unique to
    the factory (the factory object itself), never store text that was redacted."""


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a stage detected. Never carries the matched value itself."""

    rule: str
    """Detector or rule name, e.g. ``email`` or ``profanity``."""
    action: str
    """What was done: ``redacted``, ``masked``, ``blocked``, ``flagged``."""
    start: int
    """Offset of the match in this stage's input for the channel (characters)."""
    end: int
    stage: str = ""
    """Filled in by the engine with the stage's id."""
    channel: str = ""
    """Filled in by the engine with the channel key."""


class Release(NamedTuple):
    """What a stage returns from one ``feed`` or ``finish`` call.

    ``text`` is released to the next stage (or the client) now. A non-empty ``block`` ends
    the response: the engine discards everything still held anywhere in the response and
    ends the stream the protocol's way, after emitting ``text``.

    A named tuple rather than a dataclass: one is built per stage per token, and a tuple
    is the cheapest immutable record Python has.
    """

    text: str = ""
    block: str | None = None
    findings: tuple[Finding, ...] = ()


NOTHING = Release()


@runtime_checkable
class Stage(Protocol):
    """A synchronous per-channel stage: the default, since it runs on every token."""

    @property
    def held(self) -> int:
        """Characters of input received and not yet released or decided."""
        ...

    def feed(self, text: str) -> Release:
        """Take the next piece of the channel's text; return what is safe to release now."""
        ...

    def finish(self, end: ChannelEnd) -> Release:
        """The channel ended: release or decide everything held (``held`` is 0 afterwards)."""
        ...


@runtime_checkable
class AsyncStage(Protocol):
    """A per-channel stage that awaits something (a moderation service, say).

    The engine bounds every call with the stage's ``timeout_ms`` and applies its
    ``on_error`` policy when the call times out or raises.
    """

    @property
    def held(self) -> int: ...

    async def feed(self, text: str) -> Release: ...

    async def finish(self, end: ChannelEnd) -> Release: ...


class OverflowPolicy(enum.StrEnum):
    """What the engine does when a stage holds more than its bound (chars or ms).

    Each value says what the client sees next.
    """

    MASK = "mask"
    """Fail closed and keep streaming: the held text is treated as a match and replaced
    by the stage's mask; the stage starts afresh on the text that follows."""
    BLOCK = "block"
    """Fail closed and stop: the stream ends the protocol's way (``content_filter``)."""
    PASS = "pass"
    """Fail open: the stage is finished early, so its held text is released as decided on
    what it has seen so far; the stage starts afresh. Only for routes that prefer latency
    to the guarantee across that boundary."""


class ErrorPolicy(enum.StrEnum):
    """What the engine does when a stage raises or an async stage times out."""

    BLOCK = "block"
    """Fail closed (default): the stream ends the protocol's way with the error as reason."""
    MASK = "mask"
    """Fail closed, keep streaming: the text fed in that call is replaced by the mask."""
    PASS = "pass"
    """Fail open: the text fed in that call goes on to the next stage unfiltered."""


class StageConfig(BaseModel):
    """Keys every stage accepts in YAML; a stage's own model extends this one."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    type: str
    """The stage's registered name (``redact``, ``profanity``, ``json``, a plug-in's name,
    or a dotted path ``package.module:Factory``)."""
    id: str | None = None
    """Name used in logs, findings and metrics; defaults to ``type`` (with an index when a
    route uses the same type twice)."""
    channels: Literal["all", "text", "json"] = "all"
    """Which channels the stage sees: every channel, prose only, or JSON only."""
    max_holdback_chars: int | None = Field(default=None, ge=0)
    """Tighter hold-back bound for this stage than the route's ``buffer`` (characters)."""
    max_holdback_ms: float | None = Field(default=None, ge=0)
    """Tighter age bound for held text than the route's ``buffer`` (milliseconds)."""
    on_overflow: OverflowPolicy | None = None
    """Overflow policy for this stage; defaults to the route's ``buffer.on_overflow``."""
    on_error: ErrorPolicy = ErrorPolicy.BLOCK
    """What happens when the stage raises or (async) times out."""
    timeout_ms: float = Field(default=2000.0, gt=0)
    """Per-call time limit for async stages."""
    mask: str = "[FILTERED]"
    """Text that replaces held text under the ``mask`` overflow and error policies."""


ConfigT = TypeVar("ConfigT", bound=StageConfig)


class StageFactory(ABC, Generic[ConfigT]):
    """Built once per route from validated config; opens one stage per channel.

    Subclasses set ``config_model`` to their pydantic model, do expensive setup
    (compiling patterns, loading word lists) in ``__init__``, and keep ``open`` cheap.
    """

    config_model: ClassVar[type[StageConfig]] = StageConfig
    is_async: ClassVar[bool] = False
    safe_overflow: ClassVar[OverflowPolicy | None] = None
    """The overflow policy this stage needs when its entry names none (``block`` for a
    safety stage, whose half-seen match must not stream on); None: the route's."""

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @property
    def max_holdback(self) -> int:
        """The most input characters one opened stage may hold (its natural bound).

        The engine enforces ``min(max_holdback, stage and route limits)``.
        """
        return 0

    def applies_to(self, channel: Channel) -> bool:
        """Whether this stage filters ``channel`` (by default: the ``channels`` key)."""
        return self.config.channels == "all" or self.config.channels == channel.kind.value

    @abstractmethod
    def open(self, channel: Channel) -> Stage | AsyncStage:
        """A fresh stage for one channel of one response."""

    async def aclose(self) -> None:
        """The config that built this factory is retired (replaced by a reload, or the
        proxy is stopping): release what it shares across streams, such as a pooled HTTP
        session. Streams that started on it may still be running and calling it."""
