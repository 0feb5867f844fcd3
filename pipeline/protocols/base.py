"""What every protocol codec offers the driver, and the pieces codecs share.

A codec knows one protocol and nothing else: which slots of an upstream event carry text
and for which channel, how released text is written back into the event, how its
protocol ends a blocked or failed stream and what its errors look like. Feeding the
chains, counting, the block and the stream's end belong to the
:class:`~pipeline.driver.Driver`, which every codec is handed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pipeline import jsonfast
from pipeline.driver import Driver, Lone, StreamDriver, UpstreamEventError
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Event, encode, encode_data

__all__ = ["BodyCodec", "Lone", "StreamCodec", "UpstreamEventError", "parse_object", "reencode"]


def reencode(event: Event, data: str) -> bytes:
    """``event`` written with ``data``, keeping its ``event``, ``id`` and ``retry`` fields.

    Dropping ``id`` would break a client's Last-Event-ID resumption and dropping ``retry``
    its reconnection delay; most events carry neither and take the cheaper path.
    """
    if event.id is None and event.retry is None:
        return encode_data(data, event.event)
    return encode(Event(data, event.event, event.id, event.retry))


def parse_object(event: Event) -> dict[str, Any]:
    """``event``'s data as a JSON object, for protocols whose every event is one.

    Anything else raises :class:`UpstreamEventError` (code ``upstream_bad_event``), which
    the driver turns into the protocol's error: a stream whose framing cannot be trusted
    is ended, never passed on half-understood.
    """
    try:
        payload = jsonfast.loads(event.data)
    except ValueError:  # json.JSONDecodeError is one
        raise UpstreamEventError(
            "upstream sent an event that is not JSON", "upstream_bad_event"
        ) from None
    if not isinstance(payload, dict):
        raise UpstreamEventError(
            "upstream sent an event that is not a JSON object", "upstream_bad_event"
        )
    return payload


class StreamCodec(ABC):
    """One protocol's streamed events: text slots in, rewritten events out."""

    protocol: ClassVar[str]

    def __init__(self, driver: StreamDriver) -> None:
        self.driver = driver
        self.request: RequestInfo = driver.request
        self._peeked: tuple[Event, dict[str, Any]] | None = None
        """The last event :meth:`_peek` parsed, so it is parsed once, lone or not."""

    @property
    def blocked(self) -> str | None:
        """The response's block reason once any channel blocked (kept by the driver)."""
        return self.driver.blocked

    @abstractmethod
    async def on_event(self, event: Event) -> bytes:
        """Client bytes for one upstream event; may raise :class:`UpstreamEventError`."""

    @abstractmethod
    def error(self, message: str, code: str) -> bytes:
        """A protocol-shaped error event that ends the stream; held text is discarded."""

    def lone(self, event: Event) -> Lone | None:
        """``event`` as a :class:`Lone` when its only text is one piece on one channel and
        the stream is not blocked; None sends it through :meth:`on_event`.

        A codec that answers must make :meth:`lone_out` write exactly what ``on_event``
        would for the event given the released text. Finding a lone event must not change
        the codec's state (the driver looks ahead while building a run).
        """
        return None

    def _peek(self, event: Event) -> dict[str, Any] | None:
        """``event``'s JSON object for :meth:`lone`, or None: the stream is blocked, or the
        data is no JSON object (``on_event`` raises that, in its turn)."""
        if self.driver.blocked is not None:
            return None
        peeked = self._peeked
        if peeked is not None and peeked[0] is event:
            return peeked[1]
        try:
            payload = parse_object(event)
        except UpstreamEventError:
            return None
        self._peeked = (event, payload)
        return payload

    def _parsed(self, event: Event) -> dict[str, Any]:
        """``event``'s JSON object for ``on_event``: the one :meth:`_peek` parsed, if any."""
        peeked, self._peeked = self._peeked, None
        return peeked[1] if peeked is not None and peeked[0] is event else parse_object(event)

    def lone_out(self, lone: Lone, text: str) -> bytes:
        """Client bytes for a lone event whose piece released ``text`` (block not written)."""
        raise NotImplementedError(f"{type(self).__name__} finds no lone events")

    def end_blocked(self) -> bytes:
        """The protocol's end of a blocked stream, after a run whose chain blocked."""
        raise NotImplementedError(f"{type(self).__name__} finds no lone events")

    async def closed(self) -> bytes:
        """The upstream closed the body before the stream was done: the protocol's last
        bytes. A protocol whose end of body is a proper end marks the driver completed."""
        return b""


class BodyCodec(ABC):
    """One protocol's non-streamed JSON reply, filtered through the same channels."""

    protocol: ClassVar[str]

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.request: RequestInfo = driver.request
        driver.protocol = self.protocol

    @property
    def blocked(self) -> str | None:
        """The response's block reason once any channel blocked (kept by the driver)."""
        return self.driver.blocked

    @abstractmethod
    async def filter(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body with every text field filtered (in place or anew)."""
