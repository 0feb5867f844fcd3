"""Any ``text/event-stream``: each event's ``data`` is text to filter.

Channels: one per event name, ``stream.data`` for events without an ``event:`` field and
``stream.{name}.data`` for named ones. The data of consecutive events of one name is one
continuous text, so a match split across two events is still caught; keeping names apart
means text held back from one kind of event only ever comes out in an event of the same
kind (a ``token`` stream never leaks into a ``metadata`` event). Each event goes out with
its own ``event:``, ``id:`` and ``retry:`` fields and the data the chain released; an event
whose data is wholly held is not written.

End: ``data: [DONE]`` (the common sentinel) or the end of the body finishes every channel;
flushed text comes out as one more event of its name, before the sentinel. Either end is a
complete stream: a generic stream has no other way to say it ended.

Blocking and errors: there is no protocol-defined way, so the stream ends with
``event: error`` and ``{"error": {"message", "type", "code"}}`` data (type ``content_filter``
for a block, ``proxy_error`` otherwise); held text is dropped.

Bodies: a generic route knows no text fields inside arbitrary JSON, so :class:`GenericBody`
filters the whole body as one JSON document on the ``body`` channel (JSON) and fails closed,
answering with the error object above, when a stage blocks or breaks the JSON.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pipeline.protocols.base import BodyCodec, StreamCodec, reencode
from pipeline.sse import Event, encode_data
from pipeline.stage import Channel, ChannelEnd, ChannelKind, Release

PROTOCOL = "generic-sse"
DONE = "[DONE]"
BLOCKED_MESSAGE = "The response was stopped by a content filter."


def _error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    """The one error shape of a generic route, streamed or not."""
    return {"error": {"message": message, "type": kind, "code": code}}


class GenericStream(StreamCodec):
    """Filters the ``data`` of every event of an arbitrary event stream."""

    protocol: ClassVar[str] = PROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._channels: dict[str, Channel] = {}
        """Event name → its channel, in order of first text."""

    async def on_event(self, event: Event) -> bytes:
        if event.data == DONE:
            flushed = await self._finish_all()
            if self.driver.done:
                return flushed
            self.driver.completed = self.driver.done = True
            return flushed + reencode(event, event.data)
        if not event.data:
            return reencode(event, event.data)
        release = await self.driver.filter(self._channel(event.event), event.data)
        out = b""
        if release.text == event.data:
            out = reencode(event, event.data)
        elif release.text:
            out = reencode(event, release.text)
        return out + self._end_blocked(release) if release.block else out

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
                return b"".join(out) + self._end_blocked(release)
        return b"".join(out)

    def _end_blocked(self, release: Release) -> bytes:
        self.driver.block(release.block or "")
        self.driver.done = True
        return self._error_event(BLOCKED_MESSAGE, "content_filter", "content_filter")

    def error(self, message: str, code: str) -> bytes:
        return self._error_event(message, "proxy_error", code)

    def _error_event(self, message: str, kind: str, code: str) -> bytes:
        return encode_data(json.dumps(_error_body(message, kind, code)), "error")


class GenericBody(BodyCodec):
    """Filters a JSON body as one document: arbitrary JSON has no known text fields.

    The body is serialised, run whole through the ``body`` channel and parsed back, so a
    route's stages see every string in it, keys included. A block, or a result that is no
    longer a JSON object, fails closed: the client gets the generic error object instead.
    """

    protocol: ClassVar[str] = PROTOCOL

    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        channel = self.driver.channel("body", ChannelKind.JSON)
        if self.driver.response.chain(channel).empty:
            return body  # nothing would look at it: skip serialising it
        # ensure_ascii=False: stages must see the characters, not \u escapes of them.
        text = json.dumps(body, ensure_ascii=False)
        release = await self.driver.whole(channel, text, ChannelEnd.COMPLETE)
        if release.block:
            return self._blocked(release.block)
        if release.text == text:
            return body
        try:
            filtered = json.loads(release.text)
        except json.JSONDecodeError:
            filtered = None
        if not isinstance(filtered, dict):
            return self._blocked("filtered body is not a JSON object")
        return filtered

    def _blocked(self, reason: str) -> dict[str, Any]:
        self.driver.block(reason)
        return _error_body(BLOCKED_MESSAGE, "content_filter", "content_filter")
