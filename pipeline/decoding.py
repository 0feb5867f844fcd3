"""What a filtered route's reply body is, and its bytes with any Content-Encoding undone.

The proxy asks a filtered route's upstream for ``identity``, but an upstream (or a CDN in
front of it) may compress anyway. A compressed SSE stream was once handed to the SSE
decoder as is and the client saw only ``upstream_incomplete``; now gzip, deflate (zlib or
raw) and br are decoded incrementally for streams and bodies alike, and the client gets the
filtered text uncompressed (``Content-Encoding`` and ``Content-Length`` are not sent on).
Any other encoding cannot be filtered and is refused like any unreadable body.

Decoding is bounded: each upstream read yields at most :data:`CHUNK` decoded bytes at a
time, so a small compressed bomb never becomes one huge buffer (the SSE decoder's event
limit and the body limit then refuse it).
"""

from __future__ import annotations

import enum
import zlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import brotli  # type: ignore[import-untyped]

CHUNK = 64 * 1024
"""Most decoded bytes produced per step."""


class UnsupportedEncodingError(Exception):
    """A Content-Encoding the proxy cannot undo, so cannot filter."""


class BodyKind(enum.Enum):
    """How a reply body can be filtered, from its media type."""

    EVENTS = "events"
    JSON = "json"
    TEXT = "text"
    OTHER = "other"
    """Audio, images, archives...: no stage can read it (the route's ``unfilterable``)."""


_TEXT_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/x-jsonl", "application/xml"}
)


def body_kind(content_type: str) -> BodyKind:
    """The kind of a body of this media type (aiohttp's ``content_type``, no parameters)."""
    media = content_type.strip().lower()
    if media == "text/event-stream":
        return BodyKind.EVENTS
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return BodyKind.JSON
    if media.startswith("text/") or media in _TEXT_TYPES:
        return BodyKind.TEXT
    return BodyKind.OTHER


class _Zlib:
    """gzip or deflate; deflate as sent in the wild is zlib-wrapped or raw.

    Which one is known from the first two bytes (a zlib header names method 8 and is a
    multiple of 31), so input is held until two bytes are in: a one-byte first read must
    not decide it.
    """

    def __init__(self, wbits: int | None) -> None:
        self._inner = zlib.decompressobj(wbits) if wbits is not None else None
        self._head = b""

    def step(self, data: bytes) -> bytes:
        if self._inner is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            cmf, flg = self._head[0], self._head[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._inner = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        return self._inner.decompress(self._inner.unconsumed_tail + data, CHUNK)

    def pending(self) -> bool:
        return self._inner is not None and bool(self._inner.unconsumed_tail)


class _Brotli:
    def __init__(self) -> None:
        self._inner = brotli.Decompressor()

    def step(self, data: bytes) -> bytes:
        out: bytes = self._inner.process(data, output_buffer_limit=CHUNK)
        return out

    def pending(self) -> bool:
        return not bool(self._inner.can_accept_more_data())


class Decoder:
    """Undoes one Content-Encoding incrementally, in pieces of at most :data:`CHUNK` bytes."""

    def __init__(self, encoding: str) -> None:
        name = encoding.strip().lower()
        if name in ("gzip", "x-gzip"):
            self._inner: _Zlib | _Brotli = _Zlib(16 + zlib.MAX_WBITS)
        elif name == "deflate":
            self._inner = _Zlib(None)  # zlib-wrapped or raw: seen in the first bytes
        elif name == "br":
            self._inner = _Brotli()
        else:
            raise UnsupportedEncodingError(
                f"Content-Encoding {encoding!r} cannot be decoded to filter"
            )

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes ``data`` completes (:class:`DecodeError` for broken data)."""
        try:
            out = self._inner.step(data)
            while out:
                yield out
                out = self._inner.step(b"") if self._inner.pending() else b""
        except (zlib.error, brotli.error) as exc:
            raise DecodeError(f"the upstream sent broken compressed data: {exc}") from None


class DecodeError(Exception):
    """Compressed data that does not decode."""


def decoder(encoding: str | None) -> Decoder | None:
    """The decoder of a Content-Encoding; None for identity; unknown ones refused."""
    if (encoding or "").strip().lower() in ("", "identity"):
        return None
    return Decoder(encoding or "")


def check_encoding(encoding: str | None) -> None:
    """Raise :class:`UnsupportedEncodingError` now, before a reply is started."""
    decoder(encoding)


async def decoded(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The upstream body's bytes as sent, with its Content-Encoding undone.

    Broken compressed data surfaces as :class:`aiohttp.ClientPayloadError`, the error the
    proxy already answers as an upstream failure.
    """
    unpack = decoder(upstream.headers.get("Content-Encoding"))
    try:
        async for data in upstream.content.iter_any():
            if unpack is None:
                yield data
            else:
                for piece in unpack.feed(data):
                    yield piece
    except DecodeError as exc:
        raise aiohttp.ClientPayloadError(str(exc)) from None
