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
from collections.abc import AsyncIterator, Callable

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


_TEXT_TYPES = frozenset({"application/x-ndjson", "application/jsonl", "application/xml"})


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


Step = Callable[[bytes], bytes]
"""Decode some input (``b""`` asks for more output from what is buffered)."""


class _Zlib:
    """gzip or deflate; deflate as sent in the wild is zlib-wrapped or raw."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._inner = zlib.decompressobj(wbits)
        self._started = False

    def step(self, data: bytes) -> bytes:
        source = self._inner.unconsumed_tail + data
        try:
            out = self._inner.decompress(source, CHUNK)
        except zlib.error:
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
            out = self._inner.decompress(source, CHUNK)
        self._started = True
        return out

    def pending(self) -> bool:
        return bool(self._inner.unconsumed_tail)


class _Brotli:
    def __init__(self) -> None:
        self._inner = brotli.Decompressor()

    def step(self, data: bytes) -> bytes:
        out: bytes = self._inner.process(data, output_buffer_limit=CHUNK)
        return out

    def pending(self) -> bool:
        return not bool(self._inner.can_accept_more_data())


def _decoder(encoding: str) -> _Zlib | _Brotli | None:
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if name == "br":
        return _Brotli()
    raise UnsupportedEncodingError(f"Content-Encoding {encoding!r} cannot be decoded to filter")


def check_encoding(encoding: str | None) -> None:
    """Raise :class:`UnsupportedEncodingError` now, before a reply is started."""
    _decoder(encoding or "")


async def decoded(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The upstream body's bytes as sent, with its Content-Encoding undone.

    Broken compressed data surfaces as :class:`aiohttp.ClientPayloadError`, the error the
    proxy already answers as an upstream failure.
    """
    decoder = _decoder(upstream.headers.get("Content-Encoding", ""))
    if decoder is None:
        async for data in upstream.content.iter_any():
            yield data
        return
    try:
        async for data in upstream.content.iter_any():
            out = decoder.step(data)
            while out:
                yield out
                out = decoder.step(b"") if decoder.pending() else b""
    except (zlib.error, brotli.error) as exc:
        raise aiohttp.ClientPayloadError(
            f"the upstream sent broken compressed data: {exc}"
        ) from None
