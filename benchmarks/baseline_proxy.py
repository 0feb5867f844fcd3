"""The floor any SSE-aware proxy pays, to which streamsieve's cost is compared.

It forwards a request to one upstream and, for an event stream, decodes every event
(:class:`pipeline.sse.SSEDecoder`), parses and re-serialises its JSON data and encodes it
again (:func:`pipeline.sse.encode`). Nothing is filtered, routed or logged: whatever
streamsieve spends beyond this is the price of its routing, codecs and stages, which is
the figure the benchmark's "vs baseline" ratio isolates.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from pipeline.sse import Comment, Event, SSEDecoder, encode

__all__ = ["make_baseline_app"]

_UPSTREAM = web.AppKey("baseline_upstream", str)
_SESSION = web.AppKey("baseline_session", aiohttp.ClientSession)
# Only what the upstream needs to parse the body; a real proxy forwards more, but copying
# headers is not what this floor is meant to price.
_FORWARDED = ("Content-Type", "Authorization", "x-api-key")


def make_baseline_app(upstream_url: str) -> web.Application:
    """A catch-all app forwarding every request to ``upstream_url`` (+ the request path).

    The upstream session is pooled like streamsieve's (no connection limit, no
    decompression), so the two differ only in what they do with each event.
    """
    app = web.Application()
    app[_UPSTREAM] = upstream_url.rstrip("/")
    app.cleanup_ctx.append(_session_ctx)
    app.router.add_route("*", "/{tail:.*}", _forward)
    return app


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        app[_SESSION] = session
        yield


async def _forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {name: request.headers[name] for name in _FORWARDED if name in request.headers}
    url = request.app[_UPSTREAM] + request.raw_path
    async with request.app[_SESSION].request(
        request.method, url, data=body or None, headers=headers
    ) as upstream:
        response = web.StreamResponse(
            status=upstream.status,
            headers={"Content-Type": upstream.headers.get("Content-Type", "application/json")},
        )
        await response.prepare(request)
        if upstream.content_type == "text/event-stream":
            decoder = SSEDecoder()
            async for data in upstream.content.iter_any():
                out = b"".join(map(_reserialise, decoder.feed(data)))
                if out:
                    await response.write(out)
        else:
            async for data in upstream.content.iter_any():
                await response.write(data)
        await response.write_eof()
        return response


def _reserialise(item: Event | Comment) -> bytes:
    """The item as bytes again, its JSON data parsed and written back compactly."""
    if isinstance(item, Comment) or item.data == "[DONE]":
        return encode(item)
    data = json.dumps(json.loads(item.data), separators=(",", ":"), ensure_ascii=False)
    return encode(Event(data, item.event, item.id, item.retry))
