"""Incremental Server-Sent Events decoding and encoding, per the WHATWG HTML standard.

Upstream response bodies arrive in whatever pieces the network delivers: a read may end in
the middle of a UTF-8 sequence, between the CR and LF of a line end, or anywhere in a
field. :class:`SSEDecoder` turns such reads into whole events following the standard's
"Parsing an event stream" and "Interpreting an event stream" rules, so everything
downstream sees the same events however the upstream happened to split its bytes.

The decoder works on decoded text and lets C-level ``str`` methods find line ends; Python
code runs once per line, never once per character, and nothing already seen is scanned
again. Comments are surfaced (the spec ignores them) because the proxy forwards keep-alive
comments to its client.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final, NoReturn

__all__ = ["Comment", "Event", "SSEDecoder", "SSEError", "encode", "encode_data"]

# The standard's only line ends. str.splitlines() would also split on U+2028, U+0085,
# form feed and others, which are ordinary data characters in an event stream.
_LINE_END: Final = re.compile(r"\r\n?|\n")
_BOM: Final = "\ufeff"


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event."""

    data: str
    """The event's data lines joined with ``"\\n"`` (no trailing ``"\\n"``)."""
    event: str = ""
    """The ``event:`` field; ``""`` when absent, which means ``message``."""
    id: str | None = None
    """The ``id:`` field set in this event; ``None`` if it had none, ``""`` for a reset."""
    retry: int | None = None
    """The valid ``retry:`` field of this event (milliseconds), else ``None``."""


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment line, such as a keep-alive, which the proxy passes on to its client."""

    text: str
    """Everything after the leading ``":"``, including any leading space."""


class SSEError(Exception):
    """The stream broke a bound the decoder enforces; nothing more can be decoded from it."""


class SSEDecoder:
    """Turns an event stream's bytes, in any chunking, into events and comments.

    One decoder per response body. Items come out as soon as the line completing them
    arrives; a read that ends with CR already counts that CR as a line end and only
    remembers to skip an LF at the start of the next read, so an event ended by CR
    never waits for more bytes.

    ``max_event_bytes`` bounds memory: the size of the current event (the UTF-8 bytes of
    its lines plus one per line end, counting everything after the previous blank line,
    including an unfinished line) may not exceed it. Exceeding it raises
    :class:`SSEError`; after that every :meth:`feed` raises again, since the rest of the
    stream can no longer be framed reliably.
    """

    __slots__ = (
        "_after_cr",
        "_at_start",
        "_data",
        "_event",
        "_failure",
        "_id",
        "_last_id",
        "_limit",
        "_partial",
        "_partial_size",
        "_retry",
        "_size",
        "_utf8",
    )

    def __init__(self, max_event_bytes: int = 1_048_576) -> None:
        if max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be at least 1, got {max_event_bytes}")
        self._limit = max_event_bytes
        # "replace" substitutes U+FFFD per maximal invalid subpart, as the UTF-8 decode the
        # standard requires does; the incremental decoder keeps a split sequence between reads.
        self._utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        self._at_start = True
        self._after_cr = False
        self._partial: list[str] = []
        self._partial_size = 0
        self._size = 0
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._last_id = ""
        self._failure: str | None = None

    @property
    def last_event_id(self) -> str:
        """The standard's "last event ID buffer": the latest valid ``id:`` value seen.

        Set as soon as the ``id:`` line is parsed, kept across events, and reset only by
        an ``id:`` with an empty value.
        """
        return self._last_id

    def feed(self, data: bytes) -> list[Event | Comment]:
        """Decode the next read of the body; return the items it completed, in order."""
        if self._failure is not None:
            raise SSEError(self._failure)
        text = self._utf8.decode(data)
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text[0] == _BOM:
                text = text[1:]
        elif self._after_cr:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        if "\r" in text:
            lines = _LINE_END.split(text)
            self._after_cr = text[-1] == "\r"
        else:
            lines = text.split("\n")
        # The last piece is the start of a line whose end has not arrived yet.
        tail = lines.pop()
        items: list[Event | Comment] = []
        if lines:
            if self._partial:
                lines[0] = "".join(self._partial) + lines[0]
                self._partial.clear()
                self._partial_size = 0
            self._parse(lines, items)
        if tail:
            self._partial.append(tail)
            self._partial_size += _utf8_size(tail)
            if self._size + self._partial_size > self._limit:
                self._fail()
        return items

    def close(self) -> list[Event | Comment]:
        """End of stream: discard the unfinished event and line, as the standard requires.

        Every complete item has already come out of :meth:`feed` (a final CR was treated
        as a line end when it arrived), so under the standard this returns ``[]``; calling
        it keeps end-of-stream explicit for callers and frees what the decoder held. It
        never raises, so it is safe in a ``finally`` after :class:`SSEError`.
        """
        self._utf8.decode(b"", final=True)
        self._partial.clear()
        self._partial_size = 0
        self._reset_event()
        return []

    def _parse(self, lines: list[str], items: list[Event | Comment]) -> None:
        """Interpret complete lines, appending dispatched events and comments to ``items``."""
        size = self._size
        limit = self._limit
        data = self._data
        for line in lines:
            if not line:
                if data:
                    items.append(Event("\n".join(data), self._event, self._id, self._retry))
                self._reset_event()
                size = 0
                continue
            # _utf8_size inlined: this runs once per line of every event.
            size += (len(line) if line.isascii() else len(line.encode())) + 1
            if size > limit:
                self._fail()
            if line[0] == ":":
                items.append(Comment(line[1:]))
                continue
            # Without a colon the whole line is the name and the value is "" (partition's
            # result exactly); with one, exactly one following space is dropped.
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._id = value
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
        self._size = size

    def _reset_event(self) -> None:
        self._data.clear()
        self._event = ""
        self._id = None
        self._retry = None
        self._size = 0

    def _fail(self) -> NoReturn:
        self._failure = (
            f"SSE event exceeds max_event_bytes={self._limit} "
            "(bytes of its lines since the previous blank line)"
        )
        self._partial.clear()
        self._reset_event()
        raise SSEError(self._failure)


def _utf8_size(text: str) -> int:
    # isascii() is O(1) on CPython, so the common case never re-encodes.
    return len(text) if text.isascii() else len(text.encode())


def _data_lines(data: str) -> str:
    """``data`` as ``data:`` lines: each SSE line end in it starts a new line."""
    if "\r" in data:
        # A CR can only be written as a line break; writing it raw would end the field and
        # let the rest be read as a field of its own.
        data = _LINE_END.sub("\n", data)
    return "data: " + data.replace("\n", "\ndata: ") + "\n"


def _single_line(field: str, value: str) -> str:
    """``value`` unchanged, or ValueError if it would break out of its field's line."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"SSE {field} cannot contain CR or LF: {value!r}")
    return value


def encode(item: Event | Comment) -> bytes:
    """``item`` as wire bytes with LF line ends; an event ends with its blank line.

    Decoding the result gives ``item`` back, except that a CR or CRLF in ``data`` comes
    back as LF (an event stream cannot carry a CR). Values that cannot be written without
    changing their meaning raise ValueError instead of producing a corrupt stream: CR or
    LF in ``event``, ``id`` or a comment, NUL in ``id``, or a negative ``retry``; a lone
    surrogate, which UTF-8 cannot carry, raises UnicodeEncodeError (also a ValueError).
    """
    if isinstance(item, Comment):
        return (":" + _single_line("comment", item.text) + "\n").encode()
    head = ""
    if item.event:
        head = "event: " + _single_line("event", item.event) + "\n"
    if item.id is not None:
        if "\0" in item.id:
            raise ValueError(f"SSE id cannot contain NUL (decoders ignore it): {item.id!r}")
        head += "id: " + _single_line("id", item.id) + "\n"
    if item.retry is not None:
        if item.retry < 0:
            raise ValueError(f"SSE retry must be a non-negative integer, got {item.retry}")
        head += f"retry: {item.retry}\n"
    return (head + _data_lines(item.data) + "\n").encode()


def encode_data(data: str, event: str = "") -> bytes:
    """The common event (``data``, optionally ``event``) as wire bytes, without an Event."""
    body = _data_lines(data) + "\n"
    if event:
        body = "event: " + _single_line("event", event) + "\n" + body
    return body.encode()
