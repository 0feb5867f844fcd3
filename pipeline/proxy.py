"""The request handler: client request → upstream → filtered reply → client.

Read top to bottom it follows the data: match a route, forward the request, then either
stream the reply through ``SSEDecoder → codec + driver (→ stage chains) → client``, filter a
whole JSON body, or pass the bytes through untouched (paths no protocol claims, upstream
errors). The upstream comes from config only; nothing in a request can redirect it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pipeline import auth
from pipeline.config import Protocol, RouteConfig, UpstreamConfig
from pipeline.driver import Driver, StreamDriver
from pipeline.engine import ResponseFilter
from pipeline.limits import BodyTooLargeError, read_body
from pipeline.protocols import ADAPTERS, select
from pipeline.protocols.request import BadRequestError, RequestInfo
from pipeline.shutdown import SHUTDOWN_CODE
from pipeline.sse import SSEDecoder, SSEError
from pipeline.state import STATE, ProxyState, Snapshot
from pipeline.stats import REQUEST_STATS, RequestStats, finding_record

log = structlog.get_logger("streamsieve.proxy")

# RFC 9110 §7.6.1 hop-by-hop fields, plus those the proxy recomputes itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# The proxy's own credential header: checked here, never shown to an upstream.
_PROXY_ONLY = frozenset({auth.HEADER})


def _forward_headers(
    headers: Mapping[str, str], upstream: UpstreamConfig, protocol: Protocol
) -> CIMultiDict[str]:
    """Client headers minus hop-by-hop ones; credentials pass through unchanged."""
    connection = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    connection |= _PROXY_ONLY
    out: CIMultiDict[str] = CIMultiDict(
        (k, v)
        for k, v in headers.items()
        if k.lower() not in _HOP_BY_HOP and k.lower() not in connection
    )
    if protocol is not Protocol.PASSTHROUGH:
        out["Accept-Encoding"] = "identity"  # the proxy must read what it filters
    if upstream.api_key_env and "authorization" not in out and "x-api-key" not in out:
        key = os.environ.get(upstream.api_key_env)
        if key:
            if protocol is Protocol.ANTHROPIC_MESSAGES:
                out["x-api-key"] = key
            else:
                out["Authorization"] = f"Bearer {key}"
    return out


def _reply_headers(headers: CIMultiDictProxy[str], *, filtered: bool) -> CIMultiDict[str]:
    drop = _HOP_BY_HOP | ({"content-encoding"} if filtered else set())
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


class ForbiddenTargetError(Exception):
    """A request path that would leave the configured upstream's origin."""


def upstream_url(upstream: UpstreamConfig, request: web.Request) -> URL:
    """The configured upstream plus the request's path and query — never another origin.

    The path is taken from the request's relative URL (an absolute-form request line's
    host is ignored), ``strip_prefix`` is removed only at a path-segment boundary, and the
    result must keep the upstream's scheme, host and port: a path such as
    ``/openai.evil.example/v1`` can never turn into another host.
    """
    path = request.rel_url.raw_path or "/"
    prefix = upstream.strip_prefix.rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    query = request.rel_url.raw_query_string
    target = URL(upstream.url + path + (f"?{query}" if query else ""), encoded=True)
    base = URL(upstream.url)
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        raise ForbiddenTargetError(f"path {request.rel_url.raw_path!r} leaves the upstream")
    return target


def error_body(protocol: Protocol, message: str, code: str) -> dict[str, Any]:
    """An error in the shape the client's SDK parses for this protocol.

    ``code`` is a string, as the providers send it and as the proxy's in-stream error
    events carry it, so a client handles both the same way; the HTTP status says the rest.
    """
    if protocol is Protocol.ANTHROPIC_MESSAGES:
        return {"type": "error", "error": {"type": code, "message": message}}
    return {"error": {"message": message, "type": code, "code": code, "param": None}}


def _error(protocol: Protocol, status: int, message: str, code: str) -> web.Response:
    return web.json_response(error_body(protocol, message, code), status=status)


def _protocol_by_path(snapshot: Snapshot, request: web.Request) -> Protocol:
    """The protocol of the first route whose path glob matches, for errors answered before
    the body (and so the model a route may match on) is read."""
    for route in snapshot.config.proxy.routes:
        if fnmatch.fnmatchcase(request.path, route.match.path):
            return select(route.protocol, request.method, request.path)
    return select(Protocol.AUTO, request.method, request.path)


@dataclass(slots=True)
class Exchange:
    """One client request on its way through the proxy, and where it is going."""

    request: web.Request
    body: bytes
    info: RequestInfo
    snapshot: Snapshot
    stats: RequestStats
    upstream: UpstreamConfig
    protocol: Protocol
    route: RouteConfig | None
    """None for an unmatched request passed through (never filtered)."""

    @property
    def filters(self) -> bool:
        """Whether the reply goes through the route's stages (a protocol claims it)."""
        return self.route is not None and self.protocol in ADAPTERS

    def filter(self) -> ResponseFilter:
        assert self.route is not None
        return ResponseFilter(self.snapshot.plans[self.route.name])


class ProxyHandler:
    """The catch-all aiohttp handler for one app. Holds nothing per request."""

    def __init__(self, state: ProxyState) -> None:
        self.state = state

    @classmethod
    async def handle(cls, request: web.Request) -> web.StreamResponse:
        """aiohttp entry point: the handler of the app's own state."""
        return await cls(request.app[STATE]).serve(request)

    async def serve(self, request: web.Request) -> web.StreamResponse:
        snapshot = self.state.snapshot  # one config per request, even across a reload
        stats = RequestStats(request.method, request.path)
        request[REQUEST_STATS] = stats
        try:
            return await self._handle(request, snapshot, stats)
        except Exception as exc:  # a proxy bug answers in the protocol's shape, never a hang
            log.exception("proxy_error", path=request.path)
            stats.status, stats.error, stats.error_code = 500, repr(exc)[:200], "proxy_error"
            protocol = _protocol_by_path(snapshot, request)
            return _error(protocol, 500, "the proxy failed to handle the request", "proxy_error")
        finally:
            stats.finished = time.perf_counter()
            self.state.observe(stats)

    async def _handle(
        self, request: web.Request, snapshot: Snapshot, stats: RequestStats
    ) -> web.StreamResponse:
        try:
            body = await read_body(request, snapshot.config.proxy.limits.max_body_bytes)
        except BodyTooLargeError as exc:
            stats.status = 413
            return _error(_protocol_by_path(snapshot, request), 413, str(exc), "request_too_large")
        bad: str | None = None
        try:
            info = RequestInfo.parse(body) if request.method == "POST" else RequestInfo()
        except BadRequestError as exc:
            info, bad = RequestInfo(), str(exc)
        stats.model, stats.stream = info.model, info.stream
        route = snapshot.config.proxy.route_for(request.path, info.model, request.headers)
        if route is None:
            unmatched = snapshot.config.proxy.unmatched
            if unmatched.action == "reject" or unmatched.upstream is None:
                stats.status = 404
                return _error(Protocol.AUTO, 404, f"no route for {request.path}", "not_found")
            exchange = Exchange(
                request, body, info, snapshot, stats, unmatched.upstream, Protocol.PASSTHROUGH, None
            )
            return await self._admitted(exchange)
        stats.route = route.name
        protocol = select(route.protocol, request.method, request.path)
        if bad is not None and protocol is not Protocol.PASSTHROUGH:
            stats.status = 400
            return _error(protocol, 400, bad, "invalid_request_error")
        keys = snapshot.auth.get(route.name)
        if keys is not None and not keys.allows(request.headers.get(auth.HEADER)):
            stats.status = 401
            message = f"missing or unknown {auth.HEADER} header"
            return _error(protocol, 401, message, "authentication_error")
        exchange = Exchange(request, body, info, snapshot, stats, route.upstream, protocol, route)
        return await self._admitted(exchange)

    async def _admitted(self, exchange: Exchange) -> web.StreamResponse:
        """:meth:`_forward` within the concurrency limit; refused at once (503) beyond it."""
        limits = exchange.snapshot.config.proxy.limits
        admission = self.state.admission
        if not admission.enter(limits.max_concurrent_streams):
            exchange.stats.status = 503
            reason = (
                "the proxy is shutting down"
                if admission.draining
                else f"the proxy is at its limit of {limits.max_concurrent_streams} requests"
            )
            refusal = _error(exchange.protocol, 503, f"{reason}; retry shortly", "overloaded_error")
            refusal.headers["Retry-After"] = str(limits.retry_after_s)
            return refusal
        try:
            return await self._forward(exchange)
        finally:
            admission.leave()

    async def _forward(self, exchange: Exchange) -> web.StreamResponse:
        stats, upstream, protocol = exchange.stats, exchange.upstream, exchange.protocol
        stats.protocol = protocol.value
        try:
            url = upstream_url(upstream, exchange.request)
        except ForbiddenTargetError as exc:
            stats.status = 400
            return _error(protocol, 400, str(exc), "invalid_request_error")
        timeout = aiohttp.ClientTimeout(
            total=upstream.total_timeout_s,
            sock_connect=upstream.connect_timeout_s,
            sock_read=upstream.idle_timeout_s,
        )
        stats.upstream_sent = time.perf_counter()
        try:
            upstream_response = await self.state.session.request(
                exchange.request.method,
                url,
                data=exchange.body or None,
                headers=_forward_headers(exchange.request.headers, upstream, protocol),
                timeout=timeout,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            stats.status, stats.error = 502, f"upstream unreachable: {type(exc).__name__}"
            stats.error_code = "upstream_unreachable"
            return _error(
                protocol, 502, f"upstream unreachable ({type(exc).__name__})", "upstream_error"
            )
        stats.upstream_ready = time.perf_counter()
        async with upstream_response:
            stats.status = upstream_response.status
            if not exchange.filters or upstream_response.status >= 300:
                return await self._passthrough(exchange, upstream_response)
            content_type = upstream_response.content_type
            if content_type == "text/event-stream":
                driver = StreamDriver(ADAPTERS[protocol].stream, exchange.filter(), exchange.info)
                return await self._stream(exchange, upstream_response, driver)
            if content_type == "application/json":
                return await self._body(exchange, upstream_response)
            # Fail closed: a reply the route should filter but cannot read never passes.
            stats.status, stats.error_code = 502, "upstream_bad_body"
            stats.error = f"upstream replied with {content_type!r}, which cannot be filtered"
            return _error(protocol, 502, stats.error, "upstream_error")

    async def _stream(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse, driver: StreamDriver
    ) -> web.StreamResponse:
        """bytes → SSE items → driver (codec, stage chains) → bytes, one upstream read at a time."""
        stats = exchange.stats
        response = web.StreamResponse(
            status=upstream.status, headers=_reply_headers(upstream.headers, filtered=True)
        )
        await response.prepare(exchange.request)
        limits = exchange.snapshot.config.proxy.limits
        decoder = SSEDecoder(max_event_bytes=limits.max_event_bytes)
        live = self.state.streams.open(stats)
        try:
            tail = await self._pump(upstream, decoder, driver, response, stats)
            if tail:
                await response.write(tail)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError) as exc:
            stopped = live.stopped_by_shutdown(exc)
            if stopped is None:
                stats.disconnected = True  # the client left; closing below cancels the upstream
                raise
            stats.error, stats.error_code = stopped, "shutdown"
            await response.write(driver.fail(stopped, SHUTDOWN_CODE))
            await response.write_eof()
        except Exception as exc:  # a bug past prepare(): end with an error event, never hang
            log.exception("stream_failed", path=stats.path)
            stats.error, stats.error_code = repr(exc)[:200], "proxy_error"
            await response.write(driver.fail("the proxy failed while filtering", "proxy_error"))
            await response.write_eof()
        finally:
            self.state.streams.close(live)
            stats.text_chunks = driver.text_chunks
            stats.blocked = driver.blocked
            stats.findings = [finding_record(f) for f in driver.findings]
            stats.unknown_fields = driver.unknown_fields
            if not driver.completed:
                upstream.close()  # stop paying for tokens nobody will read
        return response

    async def _pump(
        self,
        upstream: aiohttp.ClientResponse,
        decoder: SSEDecoder,
        driver: StreamDriver,
        response: web.StreamResponse,
        stats: RequestStats,
    ) -> bytes:
        """Copy filtered events to the client until the stream ends; the closing bytes."""
        released = 0
        try:
            async for data in upstream.content.iter_any():
                out = await driver.feed(decoder.feed(data))
                if stats.upstream_first_text is None and driver.text_chunks:
                    stats.upstream_first_text = time.perf_counter()
                if out:
                    await response.write(out)
                    if driver.released_chars != released:
                        released = driver.released_chars
                        stats.text_written(time.perf_counter())
                if driver.done:
                    return b""
            return await driver.feed(decoder.close()) + await driver.end()
        except SSEError as exc:
            stats.error, stats.error_code = str(exc), "upstream_event_too_large"
            return driver.fail(str(exc), "upstream_event_too_large")
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            if isinstance(exc, ConnectionResetError):
                raise  # writing to our own client failed: it left
            silent = isinstance(exc, TimeoutError)
            what = "upstream went silent" if silent else "upstream connection broke"
            stats.error = f"{what}: {type(exc).__name__}"
            stats.error_code = "upstream_timeout" if silent else "upstream_broken"
            return driver.fail(f"{what} before the stream completed", "upstream_error")

    async def _body(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        stats, protocol = exchange.stats, exchange.protocol
        limit = exchange.snapshot.config.proxy.limits.max_response_bytes
        try:
            body = _parse_reply(await _read_reply(upstream, limit), upstream.headers)
        except BadReplyError as exc:
            stats.status, stats.error, stats.error_code = 502, str(exc), "upstream_bad_body"
            return _error(protocol, 502, f"upstream reply unusable: {exc}", "upstream_error")
        stats.upstream_ready = time.perf_counter()
        driver = Driver(exchange.filter(), exchange.info)
        filtered = await ADAPTERS[protocol].body(driver).filter(body)
        stats.blocked = driver.blocked
        stats.findings = [finding_record(f) for f in driver.findings]
        stats.unknown_fields = driver.unknown_fields
        headers = _reply_headers(upstream.headers, filtered=True)
        headers.popall("Content-Type", None)  # json_response sets its own
        return web.json_response(filtered, status=upstream.status, headers=headers)

    async def _passthrough(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status, headers=_reply_headers(upstream.headers, filtered=False)
        )
        await response.prepare(exchange.request)
        try:
            async for data in upstream.content.iter_any():
                await response.write(data)
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            exchange.stats.error = f"upstream broke during pass-through: {type(exc).__name__}"
            exchange.stats.error_code = "upstream_broken"
            upstream.close()
        await response.write_eof()
        return response


class BadReplyError(Exception):
    """An upstream JSON reply the proxy cannot read; answered with 502."""


async def _read_reply(upstream: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole reply body, refused past ``limit`` bytes (before it is all in memory)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in upstream.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BadReplyError(f"larger than the proxy's limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _parse_reply(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """A reply body as a JSON object (gzip/deflate undone: the proxy asked for identity)."""
    try:
        if headers.get("Content-Encoding", "identity") in ("gzip", "deflate"):
            raw = zlib.decompress(raw, wbits=47)  # 47: gzip or zlib header
        body = json.loads(raw)
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadReplyError(f"not valid JSON ({type(exc).__name__})") from None
    if not isinstance(body, dict):
        raise BadReplyError("a JSON value that is not an object")
    return body
