"""The request handler: client request → upstream → filtered reply → client.

Read top to bottom it follows the data: match a route, forward the request, then either
stream the reply through ``SSEDecoder → codec + driver (→ stage chains) → client``, filter a
whole JSON or text body, refuse one no stage can read, or pass the bytes through untouched
(unmatched requests, routes without stages, paths and media passed by the route's choice).
The upstream comes from config only; nothing in a request can redirect it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from pipeline import auth
from pipeline.bodies import (
    BadReplyError,
    blocked_status,
    bodiless,
    body_headers,
    parse_reply,
    read_reply,
)
from pipeline.config import Protocol, RouteConfig, UpstreamConfig
from pipeline.decoding import BodyKind, UnsupportedEncodingError, body_kind, check_encoding, decoded
from pipeline.driver import Driver, StreamDriver
from pipeline.engine import ResponseFilter
from pipeline.forwarding import (
    ForbiddenTargetError,
    forward_headers,
    reply_headers,
    request_path,
    upstream_url,
)
from pipeline.limits import BodyTimeoutError, BodyTooLargeError, read_body
from pipeline.paths import PathError, glob_matches
from pipeline.protocols import ADAPTERS, error_protocol, error_shape, select
from pipeline.protocols.generic import BLOCKED_MESSAGE, GenericBody
from pipeline.protocols.request import BadRequestError, RequestInfo
from pipeline.shutdown import SHUTDOWN_CODE
from pipeline.sse import SSEDecoder, SSEError
from pipeline.stage import ChannelEnd
from pipeline.state import STATE, ProxyState, Snapshot
from pipeline.stats import REQUEST_STATS, RequestStats, finding_record

log = structlog.get_logger("streamsieve.proxy")


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


def _protocol_by_path(snapshot: Snapshot, method: str, path: str) -> Protocol:
    """The error protocol of the first route whose path glob matches, for errors answered
    before the body (and so the model a route may match on) is read."""
    for route in snapshot.config.proxy.routes:
        if glob_matches(path, route.match.path):
            return error_protocol(route.protocol, method, path)
    return error_protocol(Protocol.AUTO, method, path)


@dataclass(slots=True)
class Exchange:
    """One client request on its way through the proxy, and where it is going."""

    request: web.Request
    path: str
    """The canonical path: what routes matched and what goes upstream."""
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
        """Whether the reply goes through the route's stages.

        Known endpoints always do (their codecs also check the stream ends properly); any
        other reply when the route has stages, unless its path is listed as passed through.
        """
        route = self.route
        if route is None or self.protocol not in ADAPTERS or self.path in route.passthrough_paths:
            return False
        return bool(route.stages) or self.protocol is not Protocol.GENERIC_SSE

    @property
    def errors(self) -> Protocol:
        """The protocol whose error shape the proxy's own errors take (see
        :func:`~pipeline.protocols.error_protocol`): Anthropic's on an Anthropic route's
        generic paths, so the ``anthropic`` SDK reads them."""
        if self.route is None:
            return self.protocol
        return error_protocol(self.route.protocol, self.request.method, self.path)

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
            path = request_path(request)
        except PathError as exc:
            stats.status, stats.error_code = 400, "bad_path"
            return _error(Protocol.AUTO, 400, str(exc), "invalid_request_error")
        stats.path = path
        try:
            return await self._handle(request, path, snapshot, stats)
        except Exception as exc:  # a proxy bug answers in the protocol's shape, never a hang
            log.exception("proxy_error", path=path)
            stats.status, stats.error, stats.error_code = 500, repr(exc)[:200], "proxy_error"
            protocol = _protocol_by_path(snapshot, request.method, path)
            return _error(protocol, 500, "the proxy failed to handle the request", "proxy_error")
        finally:
            stats.finished = time.perf_counter()
            self.state.observe(stats)

    async def _handle(
        self, request: web.Request, path: str, snapshot: Snapshot, stats: RequestStats
    ) -> web.StreamResponse:
        limits = snapshot.config.proxy.limits
        try:
            body = await read_body(request, limits.max_body_bytes, limits.client_body_timeout_s)
        except BodyTooLargeError as exc:
            stats.status = 413
            protocol = _protocol_by_path(snapshot, request.method, path)
            return _error(protocol, 413, str(exc), "request_too_large")
        except BodyTimeoutError as exc:
            stats.status, stats.error_code = 408, "client_timeout"
            refusal = _error(Protocol.AUTO, 408, str(exc), "request_timeout")
            refusal.force_close()
            await refusal.prepare(request)
            await refusal.write_eof()
            if request.transport is not None:
                request.transport.close()  # sent; aiohttp would otherwise read on for 10 s
            return refusal
        bad: str | None = None
        try:
            info = RequestInfo.parse(body) if request.method == "POST" else RequestInfo()
        except BadRequestError as exc:
            info, bad = RequestInfo(), str(exc)
        stats.model, stats.stream = info.model, info.stream
        route = snapshot.config.proxy.route_for(path, info.model, request.headers)
        if route is None:
            unmatched = snapshot.config.proxy.unmatched
            if unmatched.action == "reject" or unmatched.upstream is None:
                stats.status = 404
                protocol = error_protocol(Protocol.AUTO, request.method, path)
                return _error(protocol, 404, f"no route for {path}", "not_found")
            exchange = Exchange(
                request,
                path,
                body,
                info,
                snapshot,
                stats,
                unmatched.upstream,
                Protocol.PASSTHROUGH,
                None,
            )
            return await self._admitted(exchange)
        stats.route = route.name
        protocol = select(route.protocol, request.method, path)
        errors = error_protocol(route.protocol, request.method, path)
        if protocol is Protocol.GENERIC_SSE:
            bad = None  # only a known endpoint's body must be a request of its protocol
        if bad is not None and protocol is not Protocol.PASSTHROUGH:
            stats.status = 400
            return _error(errors, 400, bad, "invalid_request_error")
        keys = snapshot.auth.get(route.name)
        if keys is not None and not keys.allows(request.headers.get(auth.HEADER)):
            stats.status = 401
            message = f"missing or unknown {auth.HEADER} header"
            return _error(errors, 401, message, "authentication_error")
        shape = error_shape(errors)
        if shape is not None:  # the generic codecs write blocks and errors in this shape
            info = dataclasses.replace(info, error_shape=shape)
        exchange = Exchange(
            request, path, body, info, snapshot, stats, route.upstream, protocol, route
        )
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
            refusal = _error(exchange.errors, 503, f"{reason}; retry shortly", "overloaded_error")
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
            url = upstream_url(upstream, exchange.path, exchange.request.rel_url.raw_query_string)
        except ForbiddenTargetError as exc:
            stats.status = 400
            return _error(exchange.errors, 400, str(exc), "invalid_request_error")
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
                headers=forward_headers(exchange.request.headers, upstream, protocol),
                timeout=timeout,
                allow_redirects=False,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            name = type(exc).__name__
            if isinstance(exc, TimeoutError) and not isinstance(
                exc, aiohttp.ConnectionTimeoutError
            ):
                # Connected, but no response headers within the timeout: the gateway's 504.
                stats.status, stats.error = 504, f"upstream sent no headers in time: {name}"
                stats.error_code = "upstream_timeout"
                message = f"upstream sent no reply in time ({name})"
                return _error(exchange.errors, 504, message, "upstream_error")
            stats.status, stats.error = 502, f"upstream unreachable: {name}"
            stats.error_code = "upstream_unreachable"
            return _error(exchange.errors, 502, f"upstream unreachable ({name})", "upstream_error")
        stats.upstream_ready = time.perf_counter()
        async with upstream_response:
            stats.status = upstream_response.status
            if not exchange.filters or bodiless(exchange.request, upstream_response):
                return await self._passthrough(exchange, upstream_response)
            kind = body_kind(upstream_response.content_type)
            if upstream_response.status >= 300 and kind is not BodyKind.OTHER:
                protocol = Protocol.GENERIC_SSE  # an error's body is not the protocol's reply
            try:
                check_encoding(upstream_response.headers.get("Content-Encoding"))
            except UnsupportedEncodingError as exc:
                if kind is not BodyKind.OTHER:  # text in a wrapping the proxy cannot undo
                    return self._unfilterable(exchange, f"{exc}; the reply is refused")
            if kind is BodyKind.EVENTS:
                driver = StreamDriver(ADAPTERS[protocol].stream, exchange.filter(), exchange.info)
                return await self._stream(exchange, upstream_response, driver)
            if kind is BodyKind.JSON:
                return await self._body(exchange, upstream_response, protocol)
            if kind is BodyKind.TEXT:
                return await self._text(exchange, upstream_response)
            assert exchange.route is not None
            if exchange.route.unfilterable == "pass":  # media no stage reads, passed by choice
                return await self._passthrough(exchange, upstream_response)
            media = upstream_response.content_type
            why = f"upstream replied with {media!r}, which cannot be filtered"
            return self._unfilterable(exchange, f"{why} (route policy unfilterable: reject)")

    def _unfilterable(self, exchange: Exchange, why: str) -> web.Response:
        """Fail closed: a reply the route should filter but cannot read never passes."""
        stats = exchange.stats
        stats.status, stats.error_code, stats.error = 502, "upstream_bad_body", why
        return _error(exchange.errors, 502, why, "upstream_error")

    async def _stream(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse, driver: StreamDriver
    ) -> web.StreamResponse:
        """bytes → SSE items → driver (codec, stage chains) → bytes, one upstream read at a time."""
        stats = exchange.stats
        response = web.StreamResponse(
            status=upstream.status, headers=reply_headers(upstream.headers, filtered=True)
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
            async for data in decoded(upstream):
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
        self, exchange: Exchange, upstream: aiohttp.ClientResponse, protocol: Protocol
    ) -> web.StreamResponse:
        stats = exchange.stats
        raw = await self._read(exchange, upstream)
        if isinstance(raw, web.StreamResponse):
            return raw
        if not raw:
            return web.Response(status=upstream.status, headers=body_headers(upstream))
        try:
            body = parse_reply(raw, any_value=protocol is Protocol.GENERIC_SSE)
        except BadReplyError as exc:
            stats.status, stats.error, stats.error_code = 502, str(exc), "upstream_bad_body"
            return _error(exchange.errors, 502, f"upstream reply unusable: {exc}", "upstream_error")
        driver = Driver(exchange.filter(), exchange.info)
        filtered = await ADAPTERS[protocol].body(driver).filter(body)
        stats.blocked = driver.blocked
        stats.findings = [finding_record(f) for f in driver.findings]
        stats.unknown_fields = driver.unknown_fields
        headers = body_headers(upstream)
        status = upstream.status
        if protocol is Protocol.GENERIC_SSE and driver.blocked is not None:
            status = blocked_status(status)
        if protocol is Protocol.GENERIC_SSE and filtered is body:
            # The generic codec returns the very body it was given only when no stage changed
            # it (a changed body is a new top-level container, though its walk edits in
            # place): the upstream's bytes go out as they came.
            headers["Content-Type"] = upstream.headers.get("Content-Type", "application/json")
            return web.Response(body=raw, status=upstream.status, headers=headers)
        return web.json_response(filtered, status=status, headers=headers)

    async def _text(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        """A ``text/*`` reply: its whole text is one channel (``body.text``)."""
        stats = exchange.stats
        raw = await self._read(exchange, upstream)
        if isinstance(raw, web.StreamResponse):
            return raw
        try:
            text = raw.decode(upstream.charset or "utf-8")
        except (LookupError, UnicodeDecodeError) as exc:
            stats.status, stats.error, stats.error_code = 502, repr(exc)[:200], "upstream_bad_body"
            return _error(exchange.errors, 502, "upstream text reply unreadable", "upstream_error")
        driver = Driver(exchange.filter(), exchange.info, GenericBody.protocol)
        release = await driver.whole(driver.channel("body.text"), text, ChannelEnd.COMPLETE)
        stats.blocked = driver.blocked
        stats.findings = [finding_record(f) for f in driver.findings]
        if release.block:
            status = blocked_status(upstream.status)
            return _error(exchange.errors, status, BLOCKED_MESSAGE, "content_filter")
        headers = body_headers(upstream)
        headers["Content-Type"] = f"{upstream.content_type}; charset=utf-8"
        return web.Response(body=release.text.encode(), status=upstream.status, headers=headers)

    async def _read(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> bytes | web.StreamResponse:
        """The whole decoded reply, or the 502 that answers a reply cut short or too large."""
        stats = exchange.stats
        limit = exchange.snapshot.config.proxy.limits.max_response_bytes
        try:
            raw = await read_reply(upstream, limit)
        except (BadReplyError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            # An upstream failing is not a proxy bug: a warning without a traceback.
            what = str(exc) if isinstance(exc, BadReplyError) else "cut short or broken"
            stats.status, stats.error, stats.error_code = 502, what, "upstream_bad_body"
            log.warning("upstream_reply_unusable", path=exchange.path, reason=what)
            return _error(
                exchange.errors, 502, f"upstream reply unusable: {what}", "upstream_error"
            )
        except TimeoutError:
            stats.status, stats.error, stats.error_code = (
                504,
                "upstream went silent",
                "upstream_timeout",
            )
            return _error(exchange.errors, 504, "upstream went silent mid-reply", "upstream_error")
        stats.upstream_ready = time.perf_counter()
        return raw

    async def _passthrough(
        self, exchange: Exchange, upstream: aiohttp.ClientResponse
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status, headers=reply_headers(upstream.headers, filtered=False)
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
