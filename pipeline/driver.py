"""The one driver: feeds a response's text through its stage chains, for every protocol.

A protocol codec (:mod:`pipeline.protocols`) knows only its protocol: which slots of an
event carry text and for which :class:`~pipeline.stage.Channel`, how released text is
written back, how a blocked or failed stream ends. Everything else lives here, once:

- feeding and finishing the chains (sync chains never await; async ones at the edge only),
- the accounting the proxy logs and meters: text chunks (upstream events that carried text,
  the proxy's count of generated tokens) and released characters,
- the block: the first reason any chain gave, after which nothing more is fed,
- findings, read from the response's chains,
- for streams, the item loop the proxy and ``replay`` run: comments passed, a codec's
  :class:`UpstreamEventError` turned into the protocol's error, the stream's end,
- runs: consecutive events that each carry one piece of text on the same channel and
  nothing else (see :class:`Lone`) and arrived in one upstream read are fed to the chain
  as one text, and what it releases is spread back over their events (:func:`spread`).
  Under load a read holds several events; each stage then runs once per read instead of
  once per token, and the client still gets the same events in the same write.

A :class:`Tap` sees the text going in and coming out per channel; ``replay`` uses one to
show what the upstream sent and what the client received, without parsing anything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from pipeline.engine import ResponseFilter, merge_releases
from pipeline.sse import Comment, Event, encode
from pipeline.stage import NOTHING, Channel, ChannelEnd, ChannelKind, Finding, Release

if TYPE_CHECKING:
    from pipeline.protocols.base import StreamCodec
    from pipeline.protocols.request import RequestInfo


class UpstreamEventError(Exception):
    """An upstream event a codec cannot read; the driver turns it into the protocol's error
    event, so a codec never has to thread error bytes back itself."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Lone(NamedTuple):
    """An event whose only text is one piece on one channel, and whose only other content
    is structure the codec writes back unchanged (a chat chunk with one ``content``, an
    Anthropic ``text_delta``): the kind of event a run is made of.

    A codec's :meth:`~pipeline.protocols.base.StreamCodec.lone` finds it; ``payload`` is the
    codec's own parsed form, handed back to its ``lone_out`` so nothing is parsed twice.
    """

    channel: Channel
    text: str
    event: Event
    payload: Any


def spread(pieces: Sequence[str], released: str) -> list[str]:
    """``released`` (what a chain gave for the pieces joined) as one text per piece.

    Where the release agrees with the input, from the start and from the end, each piece
    keeps its own text; the part in between (a replacement, or a held tail, which has no
    end in common) goes to the piece where it begins, and the pieces it covers get only
    what follows it. So an unchanged release puts every piece back in its own event, a
    replacement comes out in the event where the replaced text began, and the pieces of
    a held tail are empty, as if the stage had held them one by one.
    """
    joined = "".join(pieces)
    if released == joined:
        return list(pieces)
    total, size = len(joined), len(released)
    if joined.startswith(released):
        agreed = size
    else:
        agreed = 0
        for ours, theirs in zip(joined, released, strict=False):
            if ours != theirs:
                break
            agreed += 1
    same_end, room = 0, min(total, size) - agreed
    while same_end < room and joined[total - 1 - same_end] == released[size - 1 - same_end]:
        same_end += 1
    cut = total - same_end  # joined[agreed:cut] became released[agreed:size - same_end]
    middle = released[agreed : size - same_end]
    out: list[str] = []
    start, placed, last = 0, False, len(pieces) - 1
    for k, piece in enumerate(pieces):
        end = start + len(piece)
        if not placed and (end > agreed or k == last):
            out.append(joined[start:agreed] + middle + joined[cut:end])
            placed = True
        elif placed and start < cut:
            out.append(joined[cut:end])
        else:
            out.append(piece)
        start = end
    return out


class Tap(Protocol):
    """Told about every piece of text fed to a channel and every piece released from it."""

    def fed(self, channel: str, text: str) -> None: ...

    def released(self, channel: str, text: str) -> None: ...


class Driver:
    """Feeds one response's channels (streamed or whole) and keeps its accounts."""

    __slots__ = (
        "blocked",
        "protocol",
        "released_chars",
        "request",
        "response",
        "tap",
        "text_chunks",
        "unknown_fields",
    )

    def __init__(
        self,
        response: ResponseFilter,
        request: RequestInfo,
        protocol: str = "",
        tap: Tap | None = None,
    ) -> None:
        self.response = response
        self.request = request
        self.protocol = protocol
        self.tap = tap
        self.blocked: str | None = None
        """The first block reason any chain gave; nothing is fed after it."""
        self.text_chunks = 0
        """Pieces of upstream text fed: the proxy's count of generated tokens."""
        self.released_chars = 0
        self.unknown_fields: dict[str, int] = {}
        """Strings no codec slot claimed, by field, filtered by the walker (a metric)."""

    def channel(
        self,
        key: str,
        kind: ChannelKind = ChannelKind.TEXT,
        json_schema: Mapping[str, Any] | None = None,
    ) -> Channel:
        """A channel of this response; a codec builds each once and keeps it."""
        route = self.response.plan.route.name
        return Channel(key, kind, self.protocol, json_schema, route)

    async def filter(self, channel: Channel, piece: str) -> Release:
        """One piece of upstream text on ``channel``: what the chain releases now."""
        self.text_chunks += 1
        if self.tap is not None:
            self.tap.fed(channel.key, piece)
        chain = self.response.chain(channel)
        if chain.empty:
            return self._account(channel, Release(piece))
        step = chain.start(piece, None)
        if not isinstance(step, Release):
            step = await chain.complete(step)
        return self._account(channel, step)

    async def finish(self, channel: Channel, end: ChannelEnd) -> Release:
        """End ``channel``: every stage decides what it still holds."""
        chain = self.response.chain(channel)
        if chain.empty:
            return NOTHING
        step = chain.start("", end)
        if not isinstance(step, Release):
            step = await chain.complete(step)
        return self._account(channel, step)

    async def whole(self, channel: Channel, text: str, end: ChannelEnd) -> Release:
        """One complete text (a non-streamed reply's field) through its chain, finished."""
        first = await self.filter(channel, text)
        if first.block:
            return first
        return merge_releases(first, await self.finish(channel, end))

    def note_unknown(self, field: str) -> None:
        """Count a string the codec did not know (the walker filters it)."""
        self.unknown_fields[field] = self.unknown_fields.get(field, 0) + 1

    def block(self, reason: str) -> None:
        """Block the response for a reason found outside the stages (a codec's check)."""
        if self.blocked is None:
            self.blocked = reason

    def held(self, channel: Channel) -> int:
        """Characters ``channel``'s chain holds now (0 for a channel never fed)."""
        chain = self.response.chains.get(channel.key)
        return chain.held if chain is not None else 0

    @property
    def findings(self) -> list[Finding]:
        return self.response.findings

    def _account(self, channel: Channel, release: Release) -> Release:
        if release.text:
            self.released_chars += len(release.text)
            if self.tap is not None:
                self.tap.released(channel.key, release.text)
        if release.block and self.blocked is None:
            self.blocked = release.block
        return release


class StreamDriver(Driver):
    """A :class:`Driver` for one streamed response, running its protocol's codec.

    The proxy hands it every decoded SSE item and writes whatever bytes come back. Once
    ``done`` is true the response is complete on the client side (ended normally or
    blocked) and the proxy stops reading the upstream, which cancels it.
    """

    __slots__ = ("codec", "completed", "done")

    def __init__(
        self,
        codec: Callable[[StreamDriver], StreamCodec],
        response: ResponseFilter,
        request: RequestInfo,
        tap: Tap | None = None,
    ) -> None:
        super().__init__(response, request, tap=tap)
        self.done = False
        self.completed = False
        """The upstream ended its stream the protocol's way (``[DONE]``, ``message_stop``...)."""
        self.codec = codec(self)
        self.protocol = self.codec.protocol

    async def feed(self, items: Sequence[Event | Comment]) -> bytes:
        """Client bytes for a batch of upstream items (empty when everything is held).

        The items are one upstream read: consecutive :class:`Lone` events of one channel
        among them go through the chain as one run (see the module docstring).
        """
        out: list[bytes] = []
        codec = self.codec
        at, count = 0, len(items)
        while at < count and not self.done:
            item = items[at]
            at += 1
            if isinstance(item, Comment):
                out.append(encode(item))
                continue
            try:
                lone = codec.lone(item)
                if lone is None:
                    out.append(await codec.on_event(item))
                    continue
                run = [lone]
                while at < count:
                    following = items[at]
                    more = None if isinstance(following, Comment) else codec.lone(following)
                    if more is None or more.channel is not lone.channel:
                        break
                    run.append(more)
                    at += 1
                out.append(await self._run(run))
            except UpstreamEventError as exc:
                out.append(self.fail(str(exc), exc.code))
        return b"".join(out)

    async def _run(self, run: list[Lone]) -> bytes:
        """Feed a run's pieces as one text and write each event with its share."""
        codec = self.codec
        if len(run) == 1:
            texts = [(await self.filter(run[0].channel, run[0].text)).text]
        else:
            pieces = [lone.text for lone in run]
            release = await self.filter(run[0].channel, "".join(pieces))
            self.text_chunks += len(run) - 1  # one per upstream event, as if fed one by one
            texts = spread(pieces, release.text)
        out = [codec.lone_out(lone, text) for lone, text in zip(run, texts, strict=True)]
        if self.blocked is not None:
            out.append(codec.end_blocked())
        return b"".join(out)

    async def end(self) -> bytes:
        """The upstream closed the stream; an error if it did not end it properly."""
        if self.done:
            return b""
        tail = await self.codec.closed()
        if self.done:
            return tail
        self.done = True
        if self.completed:
            return tail
        return tail + self.codec.error(
            "upstream closed the stream before it was complete", "upstream_incomplete"
        )

    def fail(self, message: str, code: str) -> bytes:
        """End the stream with an error (upstream broken, limit hit); held text is dropped."""
        if self.done:
            return b""
        self.done = True
        return self.codec.error(message, code)
