"""What every protocol adapter offers the proxy, and the pieces they share.

An adapter sits between the SSE codec and the stage chains for one response: it lifts the
text out of each upstream event (per channel), feeds the chains, and writes back events in
the upstream's own shape. It also knows how its protocol ends a stream on a block and how
it reports an error, so the proxy itself stays protocol-agnostic.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from pipeline.engine import Chain, ResponseFilter, merge_releases
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Comment, Event, encode, encode_data
from pipeline.stage import NOTHING, ChannelEnd, Release


class UpstreamEventError(Exception):
    """An upstream event an adapter cannot read; :meth:`StreamAdapter.feed` turns it into
    the protocol's error event, so a parser never has to thread error bytes back itself."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def reencode(event: Event, data: str) -> bytes:
    """``event`` written with ``data``, keeping its ``event``, ``id`` and ``retry`` fields.

    Dropping ``id`` would break a client's Last-Event-ID resumption and dropping ``retry``
    its reconnection delay; most events carry neither and take the cheaper path.
    """
    if event.id is None and event.retry is None:
        return encode_data(data, event.event)
    return encode(Event(data, event.event, event.id, event.retry))


async def feed(chain: Chain, text: str) -> Release:
    """Feed ``chain`` whether or not it contains an async stage."""
    if chain.empty:
        return Release(text)
    return await chain.afeed(text) if chain.is_async else chain.feed(text)


async def finish(chain: Chain, end: ChannelEnd) -> Release:
    """Finish ``chain`` whether or not it contains an async stage."""
    if chain.empty:
        return NOTHING
    return await chain.afinish(end) if chain.is_async else chain.finish(end)


class StreamAdapter(ABC):
    """Filters one streamed response of one protocol.

    The proxy hands it every decoded SSE item and writes whatever bytes come back. Once
    ``done`` is true the response is complete on the client side (ended normally or
    blocked) and the proxy stops reading the upstream, which cancels it.
    """

    def __init__(self, response: ResponseFilter, request: RequestInfo) -> None:
        self.response = response
        self.request = request
        self.done = False
        self.blocked: str | None = None
        self.completed = False
        """The upstream ended its stream the protocol's way (``[DONE]``, ``message_stop``...)."""
        self.text_chunks = 0
        """Upstream events that carried text: the proxy's count of generated tokens."""
        self.released_chars = 0

    async def feed(self, items: Sequence[Event | Comment]) -> bytes:
        """Client bytes for a batch of upstream items (empty when everything is held)."""
        out: list[bytes] = []
        for item in items:
            if self.done:
                break
            if isinstance(item, Comment):
                out.append(encode(item))
                continue
            try:
                out.append(await self.on_event(item))
            except UpstreamEventError as exc:
                out.append(self.fail(str(exc), exc.code))
        return b"".join(out)

    @abstractmethod
    async def on_event(self, event: Event) -> bytes:
        """Client bytes for one upstream event; may raise :class:`UpstreamEventError`."""

    @abstractmethod
    def error(self, message: str, code: str) -> bytes:
        """A protocol-shaped error event that ends the stream; held text is discarded."""

    async def end(self) -> bytes:
        """The upstream closed the stream. If it did not end it properly, an error."""
        if self.done:
            return b""
        self.done = True
        if self.completed:
            return b""
        return self.error(
            "upstream closed the stream before it was complete", "upstream_incomplete"
        )

    def parse_object(self, event: Event) -> dict[str, Any]:
        """``event``'s data as a JSON object, for protocols whose every event is one.

        Anything else raises :class:`UpstreamEventError` (code ``upstream_bad_event``), which
        :meth:`feed` turns into the protocol's error: a stream whose framing cannot be
        trusted is ended, never passed on half-understood.
        """
        try:
            payload = json.loads(event.data)
        except json.JSONDecodeError:
            raise UpstreamEventError(
                "upstream sent an event that is not JSON", "upstream_bad_event"
            ) from None
        if not isinstance(payload, dict):
            raise UpstreamEventError(
                "upstream sent an event that is not a JSON object", "upstream_bad_event"
            )
        return payload

    def fail(self, message: str, code: str) -> bytes:
        """End the stream with an error (upstream broken, limit hit)."""
        if self.done:
            return b""
        self.done = True
        return self.error(message, code)


class BodyAdapter(ABC):
    """Filters one non-streamed JSON response of one protocol, through the same stages."""

    def __init__(self, response: ResponseFilter, request: RequestInfo) -> None:
        self.response = response
        self.request = request
        self.blocked: str | None = None

    @abstractmethod
    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body with every text field filtered (in place or anew)."""

    async def whole(self, chain: Chain, text: str, end: ChannelEnd) -> Release:
        """Run one complete text through a channel's chain and finish it."""
        first = await feed(chain, text)
        if first.block:
            return first
        return merge_releases(first, await finish(chain, end))
