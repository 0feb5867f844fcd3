"""Anthropic Messages: ``message`` bodies and their named-event streams.

Channels, one chain each, per content block ``i``: ``block{i}.text`` (``text_delta``) and
``block{i}.input`` (``input_json_delta``, a JSON channel carrying the tool's
``input_schema`` when the request declared the tool). Structure passes through as sent,
``event:`` line included (the SDK routes on it): ``message_start``, ``ping``,
``content_block_start``, ``message_delta`` usage and stop reason, ``message_stop``. Any
other string — a ``citations_delta``'s ``cited_text`` (one whole text per citation), a
refusal's explanation, a delta type added later — is filtered by the
:class:`~pipeline.protocols.walker.Walker`. Every upstream event keeps its ``id:`` and
``retry:`` fields, rewritten or not.

Declared non-text, left untouched on purpose, because the client sends them back to the
provider verbatim next turn:

* ``thinking_delta`` and ``signature_delta``: the provider signs the thinking text and
  verifies it against that signature; altering it would make the next request fail. A
  route that must hide reasoning should not request it.
* ``compaction`` blocks (their summary travels with its encrypted form) and server tool
  results (``*_tool_result``: what the tool fetched, with encrypted content).

End: ``message_stop``, or the end of the body after a ``message_delta`` with a stop reason
(the SDK builds its final message from that; no error is added).

Ordering: text a chain still holds when its block ends comes out as one more
``content_block_delta`` *before* that block's ``content_block_stop``. A block the upstream
never stops (a ``max_tokens`` cut) is finished at ``message_delta`` with
``ChannelEnd.TRUNCATED``, and its flushed text precedes the ``message_delta``.

Blocking: nothing more is released; every open block gets its ``content_block_stop``, then
a ``message_delta`` with ``stop_reason: "refusal"``, ``stop_details`` of type refusal and
``usage.output_tokens`` counting the content deltas the proxy saw, then ``message_stop``:
the stop the API itself uses for a refusal, so ``get_final_message()`` returns a message
that says it was refused instead of raising. The stage's reason stays in the proxy's logs;
it may describe what matched, so the client gets a fixed explanation.

Errors: an upstream ``event: error`` passes through and ends the stream (held text is
dropped). :meth:`AnthropicStream.error` writes the same shape, ``event: error`` with
``{"type": "error", "error": {"type": "api_error", "message": ...}}``, on which the SDK
raises ``APIStatusError``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pipeline import jsonfast
from pipeline.protocols.base import BodyCodec, Lone, StreamCodec, reencode
from pipeline.protocols.walker import Walker
from pipeline.sse import Event, encode_data
from pipeline.stage import Channel, ChannelEnd, ChannelKind, Release

PROTOCOL = "anthropic-messages"
BLOCKED_EXPLANATION = "The response was stopped by a content filter."
# Delta types that carry generated text → the field holding it.
_TEXT_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json"}
_NESTED = {
    kind: (key, frozenset({"type", "index", key}))
    for kind, key in (("content_block_delta", "delta"), ("content_block_start", "content_block"))
}
"""Content events: the key holding their block's part, and every key they usually have."""
_ROUND_TRIPPED = {"thinking": "thinking", "compaction": "content"}
"""Block type → its text field the client sends back to the provider verbatim next turn
(thinking is verified against its signature, compaction travels with its encrypted form):
declared non-text, never altered. Their deltas are ``thinking_delta``, ``compaction_delta``."""
_TOOL_RESULT = "_tool_result"
"""Block types ending so (``web_search_tool_result``...) carry what a server tool fetched,
with its encrypted form, and go back to the provider next turn: declared non-text."""


def _dumps(payload: dict[str, Any]) -> str:
    # Compact like the API itself, and UTF-8 kept as is.
    return jsonfast.dumps(payload)


def _event(payload: dict[str, Any]) -> bytes:
    """A synthesised event, named by its type as every Anthropic event is."""
    return encode_data(_dumps(payload), payload["type"])


def error_object(message: str, kind: str, code: str) -> dict[str, Any]:
    """Anthropic's error object, for errors the generic codecs write on an Anthropic route.

    Its ``error.type`` is the code (``content_filter`` for a block), as in the proxy's own
    Anthropic-shaped errors; ``kind`` is the generic codec's and has no place here.
    """
    del kind
    return {"type": "error", "error": {"type": code, "message": message}}


def _end_for(stop_reason: object) -> ChannelEnd:
    return ChannelEnd.TRUNCATED if stop_reason == "max_tokens" else ChannelEnd.COMPLETE


def _refusal_details() -> dict[str, Any]:
    return {"type": "refusal", "category": None, "explanation": BLOCKED_EXPLANATION}


def _stop_delta(output_tokens: int) -> dict[str, Any]:
    stop = {"stop_reason": "refusal", "stop_sequence": None, "stop_details": _refusal_details()}
    return {"type": "message_delta", "delta": stop, "usage": {"output_tokens": output_tokens}}


class _Block:
    """One content block of a streamed message, and its chain once it carries text."""

    __slots__ = ("channel", "closed", "delta_type", "finished", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        """The tool's name for tool-use blocks (picks the input schema)."""
        self.channel: Channel | None = None
        self.delta_type = ""
        """``text_delta`` or ``input_json_delta``: how flushed text is written back."""
        self.finished = False
        """The chain was finished: nothing is held any more."""
        self.closed = False
        """The client has seen this block's ``content_block_stop``."""


class AnthropicStream(StreamCodec):
    """Filters a ``stream: true`` message."""

    protocol: ClassVar[str] = PROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._blocks: dict[int, _Block] = {}
        self._deltas = 0
        """Content deltas seen (text, input, thinking): output tokens of a blocked stream."""
        self._stopped = False
        """A ``message_delta`` gave the stop reason: the message is complete for the SDK."""
        self._walker = Walker(self.driver)
        self._payload: dict[str, Any] = {}
        self._walked = False
        """The walker changed a field of the current event: it must be re-serialised."""

    def lone(self, event: Event) -> Lone | None:
        """A ``text_delta`` of a started block, with nothing else in the event."""
        payload = None if event.event == "error" else self._peek(event)
        if payload is None:
            return None
        delta = payload.get("delta")
        if payload.get("type") == "content_block_delta" and len(payload) == 3:
            index = payload.get("index")
            block = self._blocks.get(index) if isinstance(index, int) else None
            if (
                isinstance(index, int)
                and block is not None
                and type(delta) is dict
                and len(delta) == 2
                and delta.get("type") == "text_delta"
                and block.delta_type in ("", "text_delta")
            ):
                piece = delta.get("text")
                if type(piece) is str and piece:
                    channel = self._channel(index, block, "text_delta")
                    return Lone(channel, piece, event, (payload, delta))
        return None

    def lone_out(self, lone: Lone, text: str) -> bytes:
        """What :meth:`_on_delta` writes for a lone delta whose text released ``text``."""
        payload, delta = lone.payload
        self._deltas += 1
        self._walked = False  # a lone delta has nothing for the walker
        return self._delta_out(lone.event, payload, delta, "text", lone.text, text)

    async def on_event(self, event: Event) -> bytes:
        payload = self._parsed(event)
        self._payload = payload
        kind = payload.get("type")
        if kind == "error" or event.event == "error":
            self.driver.done = True  # the upstream's own error ends the stream; held text dropped
            return reencode(event, event.data)
        self._walked = await self._walk(kind, payload)
        if self.blocked is not None:
            return self.end_blocked()  # an unknown field blocked: nothing of it goes out
        if kind == "content_block_delta":
            return await self._on_delta(event, payload)
        if kind == "content_block_start":
            return await self._on_start(event, payload)
        if kind == "content_block_stop":
            return await self._on_stop(event, payload)
        if kind == "message_delta":
            delta = payload.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            await self._walker.close()
            flushed = await self._finish_open(_end_for(reason))
            if self.driver.done:
                return flushed
            self._stopped = self._stopped or (isinstance(reason, str) and bool(reason))
            return flushed + self._pass(event)
        if kind == "message_stop":
            await self._walker.close()
            flushed = await self._finish_open(ChannelEnd.COMPLETE)
            if self.driver.done:
                return flushed
            self.driver.completed = self.driver.done = True
            return flushed + self._pass(event)
        return self._pass(event)

    async def _walk(self, kind: object, payload: dict[str, Any]) -> bool:
        """Filter every string of the event no text slot claims (deny by default).

        Text and tool-input deltas are the codec's own; thinking and compaction content
        are declared non-text (:data:`_ROUND_TRIPPED`, see the module docstring); a citation
        (``cited_text``, titles) is filtered as one whole text per citation; any other
        delta type as a stream of its own per block.
        """
        index = payload.get("index")
        where = f"block{index}" if isinstance(index, int) else str(kind)
        around = False
        nested = _NESTED.get(str(kind))
        if nested is not None and not payload.keys() <= nested[1]:
            # Fields beside the delta or opening block (none today) are filtered too.
            skip = frozenset({(id(payload), nested[0])})
            around = await self._walker.walk(where, payload, skip)
        return await self._walk_block(kind, payload, where) or around

    async def _walk_block(self, kind: object, payload: dict[str, Any], where: str) -> bool:
        """The delta or opening block of a content event; anything else whole."""
        if kind == "content_block_delta":
            delta = payload.get("delta")
            if not isinstance(delta, dict):
                return False
            delta_type = str(delta.get("type"))
            claimed = _TEXT_DELTAS.get(delta_type) or _ROUND_TRIPPED.get(
                delta_type.removesuffix("_delta")
            )
            skip = frozenset({(id(delta), claimed or "")})
            streaming = delta_type != "citations_delta"
            return await self._walker.walk(where, delta, skip, streaming=streaming)
        if kind == "content_block_start":
            opening = payload.get("content_block")
            if not isinstance(opening, dict):
                return False
            block_type = str(opening.get("type"))
            if block_type.endswith(_TOOL_RESULT):
                return False  # a server tool's result, round-tripped as fetched
            kept = _ROUND_TRIPPED.get(block_type, "")
            skip = frozenset({(id(opening), "text"), (id(opening), kept)})
            return await self._walker.walk(f"{where}.start", opening, skip)
        return await self._walker.walk(where, payload)

    async def closed(self) -> bytes:
        """A body that ends after the ``message_delta`` with a stop reason is complete.

        The SDK builds its final message from the events up to there, so a stream cut
        before ``message_stop`` (or whose last event lacks its blank line) gets no error.
        """
        if self._stopped:
            await self._walker.close()
            if self.blocked is not None:
                return self.end_blocked()
            self.driver.completed = True
        return b""

    def _pass(self, event: Event) -> bytes:
        if self._walked:
            return reencode(event, _dumps(self._payload))
        return reencode(event, event.data)

    def _block(self, index: int) -> _Block:
        block = self._blocks.get(index)
        if block is None:
            block = self._blocks[index] = _Block("")
        return block

    def _channel(self, index: int, block: _Block, delta_type: str) -> Channel:
        if block.channel is None:
            block.delta_type = delta_type
            if delta_type == "input_json_delta":
                schema = self.request.tool_schemas.get(block.name)
                block.channel = self.driver.channel(f"block{index}.input", ChannelKind.JSON, schema)
            else:
                block.channel = self.driver.channel(f"block{index}.text")
        return block.channel

    async def _on_start(self, event: Event, payload: dict[str, Any]) -> bytes:
        index = payload.get("index")
        opening = payload.get("content_block")
        if not isinstance(index, int) or not isinstance(opening, dict):
            return self._pass(event)
        name = opening.get("name")
        block = self._blocks[index] = _Block(name if isinstance(name, str) else "")
        text = opening.get("text")
        if opening.get("type") != "text" or not isinstance(text, str) or not text:
            return self._pass(event)
        # The API opens text blocks empty; text here would otherwise skip every stage.
        release = await self.driver.filter(self._channel(index, block, "text_delta"), text)
        opening["text"] = release.text
        out = reencode(event, _dumps(payload))
        return out + self.end_blocked() if self.blocked else out

    async def _on_delta(self, event: Event, payload: dict[str, Any]) -> bytes:
        index = payload.get("index")
        delta = payload.get("delta")
        if not isinstance(index, int) or not isinstance(delta, dict):
            return self._pass(event)
        self._deltas += 1
        delta_type = delta.get("type")
        if not isinstance(delta_type, str) or delta_type not in _TEXT_DELTAS:
            return self._pass(event)  # thinking, signature, citations
        field = _TEXT_DELTAS[delta_type]
        piece = delta.get(field)
        if not isinstance(piece, str) or not piece:
            return self._pass(event)  # the empty opener of a tool input
        block = self._block(index)
        release = await self.driver.filter(self._channel(index, block, delta_type), piece)
        out = self._delta_out(event, payload, delta, field, piece, release.text)
        return out + self.end_blocked() if self.blocked else out

    def _delta_out(
        self,
        event: Event,
        payload: dict[str, Any],
        delta: dict[str, Any],
        field: str,
        piece: str,
        text: str,
    ) -> bytes:
        """A text delta whose ``piece`` released ``text``: the upstream's own event when
        unchanged, nothing while all of it is held, else the event rewritten."""
        if text == piece:
            return self._pass(event)  # fast path: the upstream's own event
        if not text:
            return b""
        delta[field] = text
        return reencode(event, _dumps(payload))

    async def _on_stop(self, event: Event, payload: dict[str, Any]) -> bytes:
        index = payload.get("index")
        if not isinstance(index, int) or index not in self._blocks:
            return self._pass(event)
        block = self._blocks[index]
        out = await self._flush(index, block, ChannelEnd.COMPLETE)
        if self.blocked:
            return out + self.end_blocked()
        block.closed = True
        return out + self._pass(event)

    async def _flush(self, index: int, block: _Block, end: ChannelEnd) -> bytes:
        """Finish the block's chain; its last text as one more delta (nothing if blocked)."""
        if block.finished or block.channel is None:
            block.finished = True
            return b""
        block.finished = True
        release = await self.driver.finish(block.channel, end)
        if not release.text:
            return b""
        delta = {"type": block.delta_type, _TEXT_DELTAS[block.delta_type]: release.text}
        return _event({"type": "content_block_delta", "index": index, "delta": delta})

    async def _finish_open(self, end: ChannelEnd) -> bytes:
        """Finish blocks the upstream never stopped; their text precedes the message's end."""
        out = []
        for index, block in self._blocks.items():
            out.append(await self._flush(index, block, end))
            if self.blocked:
                return b"".join(out) + self.end_blocked()
        return b"".join(out)

    def end_blocked(self) -> bytes:
        self.driver.done = True
        out = [
            _event({"type": "content_block_stop", "index": index})
            for index, block in sorted(self._blocks.items())
            if not block.closed
        ]
        out.append(_event(_stop_delta(self._deltas)))
        out.append(_event({"type": "message_stop"}))
        return b"".join(out)

    def error(self, message: str, code: str) -> bytes:
        del code  # Anthropic's error object has a type and a message only; code is logged
        return _event({"type": "error", "error": {"type": "api_error", "message": message}})


class AnthropicBody(BodyCodec):
    """Filters a ``message`` body: text blocks and tool inputs, the stream's channels.

    A tool's ``input`` is an object here, so it is filtered as its JSON text and parsed
    back; input a stage turned into invalid JSON blocks the response (fail closed). A block
    keeps the blocks before it, the blocking block with the text released before the
    block, drops every later block, and sets ``stop_reason: "refusal"``.
    """

    protocol: ClassVar[str] = PROTOCOL

    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        content = body.get("content")
        if not isinstance(content, list):
            return body
        last_end = _end_for(body.get("stop_reason"))  # a max_tokens cut ends the last block only
        walker = Walker(self.driver, blank_after_block=False)
        for index, block in enumerate(content):
            end = last_end if index == len(content) - 1 else ChannelEnd.COMPLETE
            if isinstance(block, dict) and not await self._filter_block(index, block, end):
                del content[index + 1 :]
                body["stop_reason"] = "refusal"
                body["stop_sequence"] = None
                body["stop_details"] = _refusal_details()
                break
            if isinstance(block, dict) and not str(block.get("type")).endswith(_TOOL_RESULT):
                kept = _ROUND_TRIPPED.get(str(block.get("type")), "")
                claimed = {(id(block), "text"), (id(block), kept)}
                if "input" in block and isinstance(block.get("name"), str):
                    claimed.add((id(block), "input"))
                await walker.walk(f"block{index}", block, frozenset(claimed))
        await walker.walk("message", body, frozenset({(id(body), "content")}))
        return body

    async def _filter_block(self, index: int, block: dict[str, Any], end: ChannelEnd) -> bool:
        """Filter one block in place; False when it blocked the response."""
        text = block.get("text")
        if block.get("type") == "text" and isinstance(text, str) and text:
            channel = self.driver.channel(f"block{index}.text")
            release = await self.driver.whole(channel, text, end)
            block["text"] = release.text
            return not release.block
        if "input" not in block or not isinstance(block.get("name"), str):
            return True
        schema = self.request.tool_schemas.get(block["name"])
        channel = self.driver.channel(f"block{index}.input", ChannelKind.JSON, schema)
        original = json.dumps(block["input"], ensure_ascii=False)
        release = await self.driver.whole(channel, original, end)
        if release.text != original and not release.block:
            try:
                block["input"] = json.loads(release.text)
            except json.JSONDecodeError:
                release = Release(block="filtered tool input is not valid JSON")
                self.driver.block(release.block or "")
        if release.block:
            block["input"] = {}
        return not release.block
