"""The Responses API's shapes: event tables, where items keep their text, channel records.

Shared by the stream codec (:mod:`pipeline.protocols.responses`) and the body codec
(:mod:`pipeline.protocols.responses_body`); see the former for how each is used.
"""

from __future__ import annotations

from typing import Any

from pipeline import jsonfast
from pipeline.driver import Driver
from pipeline.stage import Channel, ChannelEnd, ChannelKind

PROTOCOL = "openai-responses"
ARGUMENTS = -1
"""The content index under which a function call's arguments are kept."""

# Channel kinds double as the key under which every aggregate carries the channel's text.
DELTA_KINDS = {
    "response.output_text.delta": "text",
    "response.refusal.delta": "refusal",
    "response.function_call_arguments.delta": "arguments",
}
DONE_KINDS = {
    "response.output_text.done": "text",
    "response.refusal.done": "refusal",
    "response.function_call_arguments.done": "arguments",
}
DELTA_TYPES = {kind: name for name, kind in DELTA_KINDS.items()}
DONE_TYPES = {kind: name for name, kind in DONE_KINDS.items()}
PART_KINDS = {"output_text": "text", "refusal": "refusal"}
"""Content part type → channel kind."""
PLAIN_DELTA = frozenset(
    {
        "type",
        "sequence_number",
        "item_id",
        "output_index",
        "content_index",
        "delta",
        "logprobs",
        "obfuscation",
    }
)
LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued"})
FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


def dumps(payload: dict[str, Any]) -> str:
    return jsonfast.dumps(payload)


def channel_for(driver: Driver, key: tuple[int, int], kind: str, tool: str) -> Channel:
    output, content = key
    request = driver.request
    if kind == "arguments":
        schema = request.tool_schemas.get(tool)
        return driver.channel(f"output{output}.arguments", ChannelKind.JSON, schema)
    is_json = kind == "text" and request.json_content
    return driver.channel(
        f"output{output}.content{content}",
        ChannelKind.JSON if is_json else ChannelKind.TEXT,
        request.content_schema if is_json else None,
    )


def kind_of(part: object) -> str | None:
    """The channel kind of a content part; None for a part that carries no text."""
    kind = part.get("type") if isinstance(part, dict) else None
    return PART_KINDS.get(kind) if isinstance(kind, str) else None


def holders(item: dict[str, Any]) -> list[tuple[int, str, dict[str, Any]]]:
    """Where an item keeps its channels' text: (content index, channel kind, holder)."""
    if item.get("type") == "function_call":
        return [(ARGUMENTS, "arguments", item)]
    content = item.get("content")
    if item.get("type") != "message" or not isinstance(content, list):
        return []
    holders = []
    for index, holder in enumerate(content):
        kind = kind_of(holder)
        if kind is not None:
            holders.append((index, kind, holder))
    return holders


def end_for(item: dict[str, Any]) -> ChannelEnd:
    # An item the token limit cut short says so in its status.
    return ChannelEnd.TRUNCATED if item.get("status") == "incomplete" else ChannelEnd.COMPLETE


class Part:
    """One text channel of a streamed response and what it released so far."""

    __slots__ = (
        "altered",
        "channel",
        "fed",
        "finished",
        "item_id",
        "key",
        "kind",
        "part_done",
        "released",
        "text_done",
    )

    def __init__(self, key: tuple[int, int], kind: str, item_id: object) -> None:
        self.key = key
        self.kind = kind
        self.item_id = item_id
        self.channel: Channel | None = None
        self.released: list[str] = []
        self.fed = 0
        """Characters fed: an aggregate longer than this carries text no delta streamed."""
        self.altered = False
        """A stage changed or held some of it: its logprobs would leak."""
        self.finished = False
        self.text_done = False
        """The client has seen the kind's ``.done`` event."""
        self.part_done = False
        """The client has seen ``response.content_part.done``."""

    @property
    def text(self) -> str:
        return "".join(self.released)

    def delta_event(self, text: str) -> dict[str, Any]:
        """A ``.delta`` event carrying ``text`` on this channel (without its number)."""
        output, content = self.key
        event: dict[str, Any] = {"type": DELTA_TYPES[self.kind], "item_id": self.item_id}
        event["output_index"] = output
        if self.kind != "arguments":
            event["content_index"] = content
        event["delta"] = text
        if self.kind == "text":
            event["logprobs"] = []
        return event


class Item:
    """One output item the client was told about (``response.output_item.added``)."""

    __slots__ = ("closed", "data", "parts")

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        """The item as added; the rewritten final item once closed."""
        self.parts: dict[int, Part] = {}
        self.closed = False
        """The client has seen ``response.output_item.done``."""


def claimed_in(item: object) -> list[tuple[int, str]]:
    """The text slots of an output item that the codec filters itself."""
    if not isinstance(item, dict):
        return []
    pairs: list[tuple[int, str]] = []
    for _, kind, holder in holders(item):
        pairs.extend(((id(holder), kind), (id(holder), "logprobs")))
    return pairs


def claimed(kind: str, payload: dict[str, Any]) -> frozenset[tuple[int, str]]:
    """The slots of one event the codec filters itself; the walker takes the rest."""
    where = id(payload)
    if kind in DELTA_KINDS:
        return frozenset({(where, "delta"), (where, "logprobs")})
    if kind in DONE_KINDS:
        return frozenset({(where, DONE_KINDS[kind]), (where, "logprobs")})
    part = payload.get("part")
    if kind.startswith("response.content_part.") and isinstance(part, dict):
        part_kind = kind_of(part)
        return frozenset({(id(part), part_kind), (id(part), "logprobs")} if part_kind else ())
    if kind.startswith("response.output_item."):
        return frozenset(claimed_in(payload.get("item")))
    response = payload.get("response")
    if kind in FINAL and isinstance(response, dict) and isinstance(response.get("output"), list):
        return frozenset(pair for item in response["output"] for pair in claimed_in(item))
    return frozenset()


def part_object(part: Part) -> dict[str, Any]:
    """A content part as ``content_part.done`` and a closed item carry it."""
    if part.kind == "refusal":
        return {"type": "refusal", "refusal": part.text}
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": part.text}
