"""OpenAI Responses API: ``response`` bodies and their named-event streams.

Channels, one chain each, per output item ``o``: ``output{o}.content{c}`` for the content
part ``c`` of a message (``output_text`` or ``refusal``; JSON with the request's schema when
``text.format`` asked for JSON) and ``output{o}.arguments`` for a function call (JSON, with
the tool's ``parameters`` schema).

Aggregates: a Responses stream repeats the full text in ``response.output_text.done``,
``response.refusal.done``, ``response.function_call_arguments.done``,
``response.content_part.done``, ``response.output_item.done`` and the final
``response.completed`` / ``response.incomplete`` / ``response.failed``. Each is rewritten to
carry exactly what the deltas released (a per-channel accumulator), or the original text
would leak through them. Text a chain still holds is flushed as one more ``.delta`` event
before the first aggregate of its channel. Text an aggregate carries beyond what the deltas
streamed goes through the channel's chain too, so no path bypasses the stages. A
``logprobs`` list repeats raw tokens: it is emptied on any delta whose text was altered or
partly held, and in every aggregate of such a channel.

Opening text: the API adds items and content parts empty. Text that an
``response.output_item.added`` (message content, function-call ``arguments``) or a
``response.content_part.added`` carries anyway is fed to its channel there, and the event
carries what was released; the held rest follows in the channel's next delta, so the
opening text plus the deltas always spell what the aggregates carry. A block there sends
the event with the text before the block (an item without its later parts), then ends the
stream as below.

``sequence_number``: the proxy adds and drops events, so it numbers every event it writes
itself, starting from the upstream's first number (a resumed stream keeps its offset) and
increasing by one, with no gaps. Upstream events keep their ``id:`` and ``retry:`` fields.

Blocking: nothing more is released (text a stage released together with its block, even
while a channel finishes, still goes out as a delta); every open content part and item is
closed with its ``.done`` events carrying what was released (items with status
``incomplete``), then ``response.incomplete`` with ``incomplete_details: {"reason":
"content_filter"}``, the status the API itself uses when its own filter stops a response,
and ``usage`` counting the text deltas the proxy saw. The SDKs accept it; note that the
OpenAI Python SDK's ``responses.stream(...).get_final_response()`` raises ``RuntimeError``
for *any* stream that ends without ``response.completed``, so a client should iterate
events or check ``response.incomplete`` rather than rely on it.

Errors: :meth:`ResponsesStream.error` writes an ``error`` event with ``code``, ``message``
and ``param`` at the top level (the documented shape) and the same fields nested under
``error`` (the shape the live API sends, and the one on which the OpenAI Python SDK raises
``APIError``). An upstream ``error`` event passes through and ends the stream.

Everything else that carries strings — reasoning summaries and reasoning text (streamed
and in items), audio transcripts, annotations, the echoed request fields, event types added
later — is filtered by the :class:`~pipeline.protocols.walker.Walker`, a ``.delta`` event
type as one stream per place. Annotations keep the offsets the upstream gave.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline.protocols.base import Lone, StreamCodec, reencode
from pipeline.protocols.responses_shapes import (
    ARGUMENTS,
    DELTA_KINDS,
    DONE_KINDS,
    DONE_TYPES,
    FINAL,
    LIFECYCLE,
    PLAIN_DELTA,
    PROTOCOL,
    Item,
    Part,
    channel_for,
    claimed,
    dumps,
    end_for,
    holders,
    kind_of,
    part_object,
)
from pipeline.protocols.walker import Walker
from pipeline.sse import Event, encode_data
from pipeline.stage import Channel, ChannelEnd, Release


class ResponsesStream(StreamCodec):
    """Filters a ``stream: true`` response."""

    protocol: ClassVar[str] = PROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parts: dict[tuple[int, int], Part] = {}
        self._items: dict[int, Item] = {}
        self._ids: dict[str, int] = {}
        """Item id → output index, to find items in the final response's ``output``."""
        self._response: dict[str, Any] = {}
        """The latest lifecycle snapshot, the base of a ``response.incomplete`` we write."""
        self._next: int | None = None
        self._walker = Walker(self.driver)
        self._walked = False
        """The walker changed a field of the current event: it must be re-serialised."""

    def lone(self, event: Event) -> Lone | None:
        """A text, refusal or arguments delta of a part already fed, nothing else in it."""
        payload = self._peek(event)
        if payload is None:
            return None
        name = payload.get("type")
        kind = DELTA_KINDS.get(name) if type(name) is str else None
        if kind is not None and payload.keys() <= PLAIN_DELTA and not payload.get("logprobs"):
            piece = payload.get("delta")
            output = payload.get("output_index")
            content = ARGUMENTS if kind == "arguments" else payload.get("content_index", 0)
            part = (
                self._parts.get((output, content))
                if type(output) is int and type(content) is int
                else None
            )
            if (
                type(piece) is str
                and piece
                and part is not None
                and part.kind == kind
                and part.channel is not None
                and not part.finished
            ):
                return Lone(part.channel, piece, event, (payload, part))
        return None

    def lone_out(self, lone: Lone, text: str) -> bytes:
        """What :meth:`_on_delta` writes for a lone delta whose text released ``text``."""
        payload, part = lone.payload
        part.fed += len(lone.text)
        part.released.append(text)
        changed = text != lone.text
        if changed or self.driver.held(lone.channel):
            part.altered = True
        if not text:
            return b""  # a delta wholly held is dropped
        payload["delta"] = text
        self._walked = False  # a lone delta has nothing for the walker
        return self._emit(lone.event, payload, changed)

    async def on_event(self, event: Event) -> bytes:
        payload = self._parsed(event)
        kind = payload.get("type")
        if kind == "error":
            self.driver.done = True  # the upstream's own error ends the stream; held text dropped
            return self._emit(event, payload, False)
        if kind in FINAL:
            await self._walker.close()
        self._walked = await self._walk(str(kind), payload)
        if self.blocked is not None:
            return self.end_blocked()  # an unknown field blocked: nothing of it goes out
        if not isinstance(kind, str):
            return self._emit(event, payload, False)
        if kind in DELTA_KINDS:
            return await self._on_delta(event, payload, DELTA_KINDS[kind])
        if kind in DONE_KINDS or kind == "response.content_part.done":
            return await self._on_part_done(event, payload, kind)
        if kind == "response.content_part.added":
            return await self._on_part_added(event, payload)
        if kind == "response.output_item.added":
            return await self._on_item_added(event, payload)
        if kind == "response.output_item.done":
            return await self._on_item_done(event, payload)
        if kind in FINAL:
            return await self._on_final(event, payload)
        if kind in LIFECYCLE and isinstance(payload.get("response"), dict):
            self._response = payload["response"]
        return self._emit(event, payload, False)

    async def _walk(self, kind: str, payload: dict[str, Any]) -> bool:
        """Filter every string of the event no text slot claims (deny by default).

        Reasoning summaries and reasoning text, audio transcripts, annotations and any
        event type added later go through here: a ``.delta`` event type as a stream per
        place (its pieces joined, so a match split across them is caught), others whole.
        """
        if kind in DELTA_KINDS and payload.keys() <= PLAIN_DELTA:
            return False  # the usual text delta: nothing but its slot and structure
        places = [kind]
        for field, tag in (("output_index", "o"), ("content_index", "c"), ("summary_index", "s")):
            if isinstance(payload.get(field), int):
                places.append(f"{tag}{payload[field]}")
        streaming = kind.endswith(".delta") and kind not in DELTA_KINDS
        return await self._walker.walk(
            ".".join(places), payload, claimed(kind, payload), streaming=streaming
        )

    # --- numbering and writing ------------------------------------------------------------

    def _number(self, upstream: object) -> int:
        if self._next is None:
            self._next = upstream if isinstance(upstream, int) else 0
        number = self._next
        self._next += 1
        return number

    def _emit(self, event: Event, payload: dict[str, Any], changed: bool) -> bytes:
        number = self._number(payload.get("sequence_number"))
        if not changed and not self._walked and payload.get("sequence_number") == number:
            return reencode(event, event.data)  # fast path: the upstream's own event
        payload["sequence_number"] = number
        return reencode(event, dumps(payload))

    def _new(self, payload: dict[str, Any]) -> bytes:
        """An event the proxy writes itself, numbered in turn."""
        kind = payload.pop("type")
        numbered = {"type": kind, "sequence_number": self._number(None), **payload}
        return encode_data(dumps(numbered), kind)

    # --- channels ----------------------------------------------------------------------------

    def _part(self, key: tuple[int, int], kind: str, item_id: object) -> Part:
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = Part(key, kind, item_id)
            item = self._items.get(key[0])
            if item is not None:
                item.parts[key[1]] = part
        return part

    def _channel(self, part: Part) -> Channel:
        if part.channel is None:
            item = self._items.get(part.key[0])
            name = item.data.get("name") if item is not None else None
            tool = name if isinstance(name, str) else ""
            part.channel = channel_for(self.driver, part.key, part.kind, tool)
        return part.channel

    async def _feed(self, part: Part, piece: str) -> Release:
        part.fed += len(piece)
        release = await self.driver.filter(self._channel(part), piece)
        part.released.append(release.text)
        return release

    async def _finish(self, part: Part, end: ChannelEnd, full: object) -> bytes:
        """End a channel at its first aggregate: its last text as one more delta event.

        ``full`` is the aggregate's text; any of it no delta streamed is filtered now. The
        tail is written as a delta only for an item the client knows about; otherwise it
        reaches the client inside the aggregate itself.
        """
        if part.finished:
            return b""
        part.finished = True
        start = len(part.released)
        unstreamed = full[part.fed :] if isinstance(full, str) else ""
        if unstreamed:
            await self._feed(part, unstreamed)
        if self.blocked is None:
            part.released.append((await self.driver.finish(self._channel(part), end)).text)
        tail = "".join(part.released[start:])
        if unstreamed and tail != unstreamed:
            part.altered = True  # the aggregate's own logprobs would repeat what was changed
        # Text released together with a block is final too: it goes out as a delta so the
        # aggregates the block writes carry exactly what the deltas delivered.
        if not tail or part.key[0] not in self._items:
            return b""
        return self._new(part.delta_event(tail))

    async def _open(self, part: Part, holder: dict[str, Any]) -> bool:
        """Filter the text an ``.added`` event opens a channel with; whether it changed.

        The API opens channels empty, so text here would otherwise skip every stage. The
        event then carries what the channel released so far, as an aggregate does; the
        held rest follows in the channel's next delta.
        """
        text = holder.get(part.kind)
        if not isinstance(text, str) or not text:
            return False
        if not part.finished and len(text) > part.fed:
            piece = text[part.fed :]
            release = await self._feed(part, piece)
            if release.text != piece or self.driver.held(self._channel(part)):
                part.altered = True
        return self._rewrite(holder, part)

    def _rewrite(self, holder: dict[str, Any], part: Part) -> bool:
        """Put the released text into an aggregate; whether it differed."""
        text = part.text
        changed = holder.get(part.kind) != text
        holder[part.kind] = text
        if part.altered and holder.get("logprobs"):
            holder["logprobs"] = []
            changed = True
        return changed

    # --- events ---------------------------------------------------------------------------

    async def _on_delta(self, event: Event, payload: dict[str, Any], kind: str) -> bytes:
        output = payload.get("output_index")
        piece = payload.get("delta")
        if not isinstance(output, int) or not isinstance(piece, str) or not piece:
            return self._emit(event, payload, False)
        content = ARGUMENTS if kind == "arguments" else payload.get("content_index", 0)
        if not isinstance(content, int):
            return self._emit(event, payload, False)
        part = self._part((output, content), kind, payload.get("item_id"))
        release = await self._feed(part, piece)
        changed = release.text != piece
        if changed or (part.channel is not None and self.driver.held(part.channel)):
            part.altered = True
            if payload.get("logprobs"):
                payload["logprobs"] = []
                changed = True
        out = b""
        if release.text or not changed:  # a delta wholly held is dropped
            payload["delta"] = release.text
            out = self._emit(event, payload, changed)
        return out + self.end_blocked() if self.blocked else out

    async def _on_part_added(self, event: Event, payload: dict[str, Any]) -> bytes:
        output = payload.get("output_index")
        content = payload.get("content_index")
        holder = payload.get("part")
        kind = kind_of(holder)
        if (
            not isinstance(output, int)
            or not isinstance(content, int)
            or not isinstance(holder, dict)
            or kind is None
        ):
            return self._emit(event, payload, False)
        part = self._part((output, content), kind, payload.get("item_id"))
        out = self._emit(event, payload, await self._open(part, holder))
        return out + self.end_blocked() if self.blocked else out

    async def _on_part_done(self, event: Event, payload: dict[str, Any], kind: str) -> bytes:
        """A text ``.done`` event or ``response.content_part.done``: finish, then rewrite."""
        output = payload.get("output_index")
        holder = payload.get("part") if kind == "response.content_part.done" else payload
        if not isinstance(output, int) or not isinstance(holder, dict):
            return self._emit(event, payload, False)
        channel_kind = DONE_KINDS[kind] if holder is payload else kind_of(holder) or ""
        content = ARGUMENTS if channel_kind == "arguments" else payload.get("content_index", 0)
        if not channel_kind or not isinstance(content, int):
            return self._emit(event, payload, False)
        part = self._part((output, content), channel_kind, payload.get("item_id"))
        out = await self._finish(part, ChannelEnd.COMPLETE, holder.get(channel_kind))
        if self.blocked:
            return out + self.end_blocked()
        part.text_done = True
        part.part_done = part.part_done or holder is not payload
        return out + self._emit(event, payload, self._rewrite(holder, part))

    async def _on_item_added(self, event: Event, payload: dict[str, Any]) -> bytes:
        output = payload.get("output_index")
        item = payload.get("item")
        if not isinstance(output, int) or not isinstance(item, dict):
            return self._emit(event, payload, False)
        self._items[output] = Item(item)
        if isinstance(item.get("id"), str):
            self._ids[item["id"]] = output
        changed = False
        for content, kind, holder in holders(item):
            if not holder.get(kind):
                continue  # the API adds items empty: no channel until text arrives
            part = self._part((output, content), kind, item.get("id"))
            changed = await self._open(part, holder) or changed
            if self.blocked:
                if content != ARGUMENTS:
                    del item["content"][content + 1 :]  # later parts were never filtered
                changed = True
                break
        out = self._emit(event, payload, changed)
        return out + self.end_blocked() if self.blocked else out

    async def _on_item_done(self, event: Event, payload: dict[str, Any]) -> bytes:
        output = payload.get("output_index")
        item = payload.get("item")
        if not isinstance(output, int) or not isinstance(item, dict):
            return self._emit(event, payload, False)
        out, changed = await self._close_item(output, item)
        if self.blocked:
            return out + self.end_blocked()
        record = self._items.setdefault(output, Item(item))
        record.data, record.closed = item, True
        return out + self._emit(event, payload, changed)

    async def _close_item(self, output: int, item: dict[str, Any]) -> tuple[bytes, bool]:
        """Finish every channel of one item and rewrite its text: (flushed deltas, changed)."""
        end = end_for(item)
        out: list[bytes] = []
        changed = False
        for content, kind, holder in holders(item):
            part = self._part((output, content), kind, item.get("id"))
            out.append(await self._finish(part, end, holder.get(kind)))
            if self.blocked:
                break
            changed = self._rewrite(holder, part) or changed
        return b"".join(out), changed

    async def _on_final(self, event: Event, payload: dict[str, Any]) -> bytes:
        response = payload.get("response")
        output = response.get("output") if isinstance(response, dict) else None
        out: list[bytes] = []
        changed = False
        for position, item in enumerate(output if isinstance(output, list) else []):
            if not isinstance(item, dict):
                continue
            item_id = item.get("id")
            index = self._ids.get(item_id, position) if isinstance(item_id, str) else position
            flushed, item_changed = await self._close_item(index, item)
            out.append(flushed)
            changed = changed or item_changed
            if self.blocked:
                return b"".join(out) + self.end_blocked()
        self.driver.completed = self.driver.done = True
        return b"".join(out) + self._emit(event, payload, changed)

    # --- blocking and errors ----------------------------------------------------------------

    def end_blocked(self) -> bytes:
        self.driver.done = True
        out = [self._close_events(output, item) for output, item in sorted(self._items.items())]
        response = {
            **self._response,
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "output": [item.data for _, item in sorted(self._items.items())],
            "usage": {
                "input_tokens": 0,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.driver.text_chunks,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.driver.text_chunks,
            },
        }
        out.append(self._new({"type": "response.incomplete", "response": response}))
        return b"".join(out)

    def _close_events(self, output: int, item: Item) -> bytes:
        """The ``.done`` events an item still open at a block needs, as released."""
        if item.closed:
            return b""
        out = []
        for content, part in sorted(item.parts.items()):
            where = {"item_id": part.item_id, "output_index": output}
            if content != ARGUMENTS:
                where["content_index"] = content
            if not part.text_done:
                done = {"type": DONE_TYPES[part.kind], **where, part.kind: part.text}
                if part.kind == "text":
                    done["logprobs"] = []
                out.append(self._new(done))
            if content != ARGUMENTS and not part.part_done:
                out.append(
                    self._new(
                        {"type": "response.content_part.done", **where, "part": part_object(part)}
                    )
                )
        data = {**item.data}
        if "status" in data:
            data["status"] = "incomplete"
        if data.get("type") == "message":
            data["content"] = [part_object(p) for c, p in sorted(item.parts.items()) if c >= 0]
        elif data.get("type") == "function_call" and ARGUMENTS in item.parts:
            data["arguments"] = item.parts[ARGUMENTS].text
        item.data, item.closed = data, True
        done_item = {"type": "response.output_item.done", "output_index": output, "item": data}
        out.append(self._new(done_item))
        return b"".join(out)

    def error(self, message: str, code: str) -> bytes:
        detail = {"code": code, "message": message, "param": None}
        return self._new({"type": "error", **detail, "error": {"type": "proxy_error", **detail}})
