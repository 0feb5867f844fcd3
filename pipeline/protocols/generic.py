"""Any ``text/event-stream``, and any JSON body: every string filtered, structure kept.

Streams. An event whose ``data`` is a JSON object or array is walked like a known
protocol's unknown fields (:class:`~pipeline.protocols.walker.Walker`): every string except
structural keys (ids, ``type``, ``model``, signatures, base64 ``data``... see
:func:`~pipeline.protocols.walker.is_structural`) is filtered, each string whole, on a
channel named after its place (``stream.{name}.choices.0.delta.content``, ``stream.…`` for
unnamed events), and counted as an unknown field. The event is re-encoded only when a
string changed; otherwise its bytes go out as they came. Whole mode (each string fed and
finished at once) because nothing is then held between events: nothing can come out in a
later event of another shape, nothing is lost when the stream ends. A match split across
two JSON events is not caught; it never was, since the JSON punctuation between the two
strings always separated them in the old text channel too.

Any other ``data`` (plain text, a bare JSON scalar) is text on a channel per event name:
``stream.data`` for events without an ``event:`` field, ``stream.{name}.data`` for named
ones. The data of consecutive such events of one name is one continuous text, so a match
split across two events is still caught; keeping names apart means text held back from one
kind of event only ever comes out in an event of the same kind. Each event goes out with
its own ``event:``, ``id:`` and ``retry:`` fields and the data the chain released; an event
whose data is wholly held is not written.

End: ``data: [DONE]`` (the common sentinel) or the end of the body finishes every channel;
flushed text comes out as one more event of its name, before the sentinel. Either end is a
complete stream: a generic stream has no other way to say it ended.

Blocking and errors: there is no protocol-defined way, so the stream ends with
``event: error`` and ``{"error": {"message", "type", "code"}}`` data (type ``content_filter``
for a block, ``proxy_error`` otherwise); held text is dropped. When the client speaks a
known protocol's API (another path of an Anthropic route), the proxy hands the codec that
protocol's error object in :attr:`RequestInfo.error_shape` and it is written instead.

Bodies: :class:`GenericBody` walks a JSON body the same way, each string whole; a body that
is only a string is filtered as one string, and numbers, booleans and ``null`` carry none.
Keys are never filtered: they are the JSON's structure. A block answers with the error
object above instead of the body.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pipeline import jsonfast
from pipeline.protocols.base import BodyCodec, StreamCodec, reencode
from pipeline.protocols.request import RequestInfo
from pipeline.protocols.walker import Walker
from pipeline.sse import Event, encode_data
from pipeline.stage import Channel, ChannelEnd

PROTOCOL = "generic-sse"
DONE = "[DONE]"
BLOCKED_MESSAGE = "The response was stopped by a content filter."


def generic_error(message: str, kind: str, code: str) -> dict[str, Any]:
    """The error shape of a generic route, streamed or not."""
    return {"error": {"message": message, "type": kind, "code": code}}


def _error_body(request: RequestInfo, message: str, kind: str, code: str) -> dict[str, Any]:
    """The error object the client's SDK parses: the request's shape, else the generic one."""
    shape = request.error_shape or generic_error
    return shape(message, kind, code)


def _json_container(data: str) -> dict[str, Any] | list[Any] | None:
    """``data`` parsed when it is a JSON object or array; None for anything else."""
    start = data.lstrip()[:1]
    if start != "{" and start != "[":
        return None
    try:
        value = jsonfast.loads(data)
    except (ValueError, RecursionError):  # json.JSONDecodeError is a ValueError
        return None
    return value if isinstance(value, (dict, list)) else None


class GenericStream(StreamCodec):
    """Filters the ``data`` of every event of an arbitrary event stream."""

    protocol: ClassVar[str] = PROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._channels: dict[str, Channel] = {}
        """Event name → its text channel, in order of first text."""
        self._walker = Walker(self.driver)

    async def on_event(self, event: Event) -> bytes:
        if event.data == DONE:
            flushed = await self._finish_all()
            if self.driver.done:
                return flushed
            self.driver.completed = self.driver.done = True
            return flushed + reencode(event, event.data)
        if not event.data:
            return reencode(event, event.data)
        payload = _json_container(event.data)
        if payload is not None:
            return await self._on_json(event, payload)
        release = await self.driver.filter(self._channel(event.event), event.data)
        out = b""
        if release.text == event.data:
            out = reencode(event, event.data)
        elif release.text:
            out = reencode(event, release.text)
        return out + self._end_blocked(release.block) if release.block else out

    async def _on_json(self, event: Event, payload: dict[str, Any] | list[Any]) -> bytes:
        """A JSON event: its strings walked whole; the event as it came when none changed."""
        where = f"stream.{event.event}" if event.event else "stream"
        changed = await self._walker.walk(where, payload)
        if self.driver.blocked is not None:
            return self._end_blocked(self.driver.blocked)  # a half-blanked event is not sent
        return reencode(event, jsonfast.dumps(payload) if changed else event.data)

    async def closed(self) -> bytes:
        """The end of the body is the end of every channel, not a failure."""
        flushed = await self._finish_all()
        if not self.driver.done:
            self.driver.completed = True
        return flushed

    def _channel(self, name: str) -> Channel:
        channel = self._channels.get(name)
        if channel is None:
            key = f"stream.{name}.data" if name else "stream.data"
            channel = self._channels[name] = self.driver.channel(key)
        return channel

    async def _finish_all(self) -> bytes:
        out = []
        for name, channel in self._channels.items():
            release = await self.driver.finish(channel, ChannelEnd.COMPLETE)
            if release.text:
                out.append(encode_data(release.text, name))
            if release.block:
                return b"".join(out) + self._end_blocked(release.block)
        return b"".join(out)

    def _end_blocked(self, reason: str) -> bytes:
        self.driver.block(reason)
        self.driver.done = True
        return self._error_event(BLOCKED_MESSAGE, "content_filter", "content_filter")

    def error(self, message: str, code: str) -> bytes:
        return self._error_event(message, "proxy_error", code)

    def _error_event(self, message: str, kind: str, code: str) -> bytes:
        return encode_data(jsonfast.dumps(_error_body(self.request, message, kind, code)), "error")


class GenericBody(BodyCodec):
    """Filters any JSON body: every string but structural ones, each whole, in place.

    Arbitrary JSON has no known text fields, so the :class:`Walker` filters every string
    value (``body.results_url``, ``body.data.0.summary``...) and leaves keys and structural
    fields byte-exact; a top-level array is walked too, a top-level string is one text. A
    body no stage changed is returned as the very object given, and the proxy then sends
    the upstream's own bytes. Since the walk edits in place, a changed body is returned as
    a new top-level container, so ``filtered is body`` means "unchanged" and nothing else.
    A block answers with the error object instead (the request's error shape, if any).
    """

    protocol: ClassVar[str] = PROTOCOL

    async def filter(self, body: Any) -> Any:
        walker = Walker(self.driver)  # strings after a block are blanked: the body is dropped
        if isinstance(body, str):
            filtered: Any = await walker.string("body", body)
            changed = filtered != body
        elif isinstance(body, dict | list):
            changed = await walker.walk("body", body)
            filtered = body.copy() if changed else body
        else:
            return body  # a number, a boolean or null carries no text
        if self.driver.blocked is not None:
            return _error_body(self.request, BLOCKED_MESSAGE, "content_filter", "content_filter")
        return filtered if changed else body
