"""Whole upstream reply bodies: read within a limit, decoded, parsed, and their headers.

A body the proxy filters is read whole (after its Content-Encoding is undone, see
:mod:`pipeline.decoding`); one too large, cut short or not JSON is a :class:`BadReplyError`
or an aiohttp payload error, which the proxy answers with 502.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from pipeline.decoding import decoded
from pipeline.forwarding import reply_headers


class BadReplyError(Exception):
    """An upstream JSON reply the proxy cannot read; answered with 502."""


async def read_reply(upstream: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole decoded reply body, refused past ``limit`` bytes (before it is all in memory)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in decoded(upstream):
        size += len(chunk)
        if size > limit:
            raise BadReplyError(f"larger than the proxy's limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def parse_reply(raw: bytes, *, any_value: bool = False) -> Any:
    """A decoded reply body as a JSON object, or as any JSON value when ``any_value``.

    A known protocol's reply is an object (its codec reads its fields); the generic codec
    walks whatever JSON it gets, so a top-level array or string is filtered, not refused.
    """
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadReplyError(f"not valid JSON ({type(exc).__name__})") from None
    if not any_value and not isinstance(body, dict):
        raise BadReplyError("a JSON value that is not an object")
    return body


BLOCKED_STATUS = 400
"""The status of a generic reply a stage blocked when the upstream's was not an error.

A generic body has no refusal slot (a known codec answers 200 with its protocol's refusal
instead), so the error object replaces it; under a 200 an SDK would read that object as the
resource it asked for (a ``MessageBatch`` with every field missing) and raise nothing. 400
with code ``content_filter`` is how Azure OpenAI reports its own content filter, and no SDK
retries it (a block would only come back). An upstream error status is kept."""


def blocked_status(upstream: int) -> int:
    """The status a blocked generic reply goes out with (see :data:`BLOCKED_STATUS`)."""
    return upstream if upstream >= 400 else BLOCKED_STATUS


def bodiless(request: web.Request, upstream: aiohttp.ClientResponse) -> bool:
    """A reply that has no body to filter (HEAD, 204, 304, ``Content-Length: 0``)."""
    return (
        request.method == "HEAD"
        or upstream.status in (204, 304)
        or upstream.headers.get("Content-Length") == "0"
    )


def body_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
    """Headers for a filtered whole body: the encoding is undone, the length recomputed."""
    headers = reply_headers(upstream.headers, filtered=True)
    headers.popall("Content-Type", None)  # the response sets its own
    return headers
