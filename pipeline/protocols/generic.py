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

Bodies: a generic route knows no text fields inside arbitrary JSON, so
:class:`GenericBody` returns JSON bodies unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from pipeline.engine import Chain
from pipeline.protocols.base import BodyAdapter, StreamAdapter, feed, finish
from pipeline.sse import Event, encode, encode_data
from pipeline.stage import Channel, ChannelEnd, Release

PROTOCOL = "generic-sse"
DONE = "[DONE]"
BLOCKED_MESSAGE = "The response was stopped by a content filter."


class GenericStream(StreamAdapter):
    """Filters the ``data`` of every event of an arbitrary event stream."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._chains: dict[str, Chain] = {}
        """Event name → its channel's chain, in order of first text."""

    async def on_event(self, event: Event) -> bytes:
        if event.data == DONE:
            flushed = await self._finish_all()
            if self.done:
                return flushed
            self.completed = self.done = True
            return flushed + encode(event)
        if not event.data:
            return encode(event)
        self.text_chunks += 1
        release = await feed(self._chain(event.event), event.data)
        self.released_chars += len(release.text)
        out = b""
        if release.text == event.data:
            out = encode(event)
        elif release.text:
            out = encode(dataclasses.replace(event, data=release.text))
        return out + self._end_blocked(release) if release.block else out

    async def end(self) -> bytes:
        """The end of the body is the end of every channel, not a failure."""
        if self.done:
            return b""
        flushed = await self._finish_all()
        if self.done:
            return flushed
        self.completed = self.done = True
        return flushed

    def _chain(self, name: str) -> Chain:
        chain = self._chains.get(name)
        if chain is None:
            key = f"stream.{name}.data" if name else "stream.data"
            channel = Channel(key=key, protocol=PROTOCOL, route=self.response.plan.route.name)
            chain = self._chains[name] = self.response.chain(channel)
        return chain

    async def _finish_all(self) -> bytes:
        out = []
        for name, chain in self._chains.items():
            release = await finish(chain, ChannelEnd.COMPLETE)
            self.released_chars += len(release.text)
            if release.text:
                out.append(encode_data(release.text, name))
            if release.block:
                return b"".join(out) + self._end_blocked(release)
        return b"".join(out)

    def _end_blocked(self, release: Release) -> bytes:
        self.blocked = release.block
        self.done = True
        return self._error_event(BLOCKED_MESSAGE, "content_filter", "content_filter")

    def error(self, message: str, code: str) -> bytes:
        return self._error_event(message, "proxy_error", code)

    def _error_event(self, message: str, kind: str, code: str) -> bytes:
        body = {"error": {"message": message, "type": kind, "code": code}}
        return encode_data(json.dumps(body), "error")


class GenericBody(BodyAdapter):
    """JSON bodies of a generic route pass through: arbitrary JSON has no known text fields."""

    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        return body
