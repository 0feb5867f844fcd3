"""The request handler: client request → upstream → filtered reply → client.

Read top to bottom it follows the data: match a route, forward the request, then either
stream the reply through ``SSEDecoder → adapter (→ stage chains) → client``, filter a
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
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from pipeline import auth
from pipeline.config import Protocol, RouteConfig, UpstreamConfig
from pipeline.engine import ResponseFilter
from pipeline.limits import BodyTooLargeError, read_body
from pipeline.metrics import GapRecorder
from pipeline.protocols import ADAPTERS, select
from pipeline.protocols.base import StreamAdapter
from pipeline.protocols.request import BadRequestError, RequestInfo
from pipeline.shutdown import SHUTDOWN_CODE
from pipeline.sse import SSEDecoder, SSEError
from pipeline.state import STATE, ProxyState, Snapshot

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


@dataclass(slots=True)
class RequestStats:
    """What the per-request log line and the metrics report."""

    method: str
    path: str
    route: str | None = None
    model: str | None = None
    protocol: str = ""
    status: int = 0
    stream: bool = False
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    upstream_sent: float | None = None
    upstream_ready: float | None = None
    """The upstream's reply was in hand: headers of a stream, the whole of a body."""
    upstream_first_text: float | None = None
    client_first_text: float | None = None
    last_text: float | None = None
    gaps: GapRecorder | None = None
    """Gaps between the client's text writes, recorded from the second write on."""
    text_chunks: int = 0
    blocked: str | None = None
    error: str | None = None
    error_code: str | None = None
    """A metrics label for ``error``: ``upstream_timeout``, ``shutdown``..."""
    disconnected: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)

    def ms(self, start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else round((end - start) * 1000.0, 3)

    def text_written(self, now: float) -> None:
        """New text reached the client: the first write is the TTFT, later ones are gaps."""
        if self.last_text is None:
            self.client_first_text = now
        else:
            if self.gaps is None:
                self.gaps = GapRecorder()
            self.gaps.add(now - self.last_text)
        self.last_text = now

    def server_timing(self, now: float) -> str:
        """A ``Server-Timing`` value: the proxy's own time until ``now`` and the upstream's.

        Sent with the headers, so for a stream it covers the time to headers only.
        """
        waited = 0.0
        if self.upstream_sent is not None:
            waited = (self.upstream_ready or now) - self.upstream_sent
        own = now - self.started - waited
        return f"proxy;dur={own * 1000.0:.3f}, upstream;dur={waited * 1000.0:.3f}"


REQUEST_STATS = web.RequestKey("streamsieve_request_stats", RequestStats)


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


def _upstream_url(route: RouteConfig | None, upstream: UpstreamConfig, request: web.Request) -> str:
    path = request.raw_path
    if not path.startswith("/"):  # an absolute-form request line: its host is ignored
        path = request.rel_url.raw_path_qs
    prefix = upstream.strip_prefix
    if prefix and path.startswith(prefix):
        path = path[len(prefix) :] or "/"
    return upstream.url + path


def error_body(protocol: Protocol, status: int, message: str, code: str) -> dict[str, Any]:
    """An error in the shape the client's SDK parses for this protocol."""
    if protocol is Protocol.ANTHROPIC_MESSAGES:
        return {"type": "error", "error": {"type": code, "message": message}}
    return {"error": {"message": message, "type": code, "code": status, "param": None}}


def _error(protocol: Protocol, status: int, message: str, code: str) -> web.Response:
    return web.json_response(error_body(protocol, status, message, code), status=status)


def _protocol_by_path(snapshot: Snapshot, request: web.Request) -> Protocol:
    """The protocol of the first route whose path glob matches, for errors answered before
    the body (and so the model a route may match on) is read."""
    for route in snapshot.config.proxy.routes:
        if fnmatch.fnmatchcase(request.path, route.match.path):
            return select(route.protocol, request.method, request.path)
    return select(Protocol.AUTO, request.method, request.path)


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
            return await self._admitted(
                request, body, None, unmatched.upstream, Protocol.PASSTHROUGH, info, snapshot, stats
            )
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
        return await self._admitted(
            request, body, route, route.upstream, protocol, info, snapshot, stats
        )

    async def _admitted(
        self,
        request: web.Request,
        body: bytes,
        route: RouteConfig | None,
        upstream: UpstreamConfig,
        protocol: Protocol,
        info: RequestInfo,
        snapshot: Snapshot,
        stats: RequestStats,
    ) -> web.StreamResponse:
        """:meth:`_forward` within the concurrency limit; refused at once (503) beyond it."""
        limits = snapshot.config.proxy.limits
        admission = self.state.admission
        if not admission.enter(limits.max_concurrent_streams):
            stats.status = 503
            reason = (
                "the proxy is shutting down"
                if admission.draining
                else f"the proxy is at its limit of {limits.max_concurrent_streams} requests"
            )
            refusal = _error(protocol, 503, f"{reason}; retry shortly", "overloaded_error")
            refusal.headers["Retry-After"] = str(limits.retry_after_s)
            return refusal
        try:
            return await self._forward(
                request, body, route, upstream, protocol, info, snapshot, stats
            )
        finally:
            admission.leave()

    async def _forward(
        self,
        request: web.Request,
        body: bytes,
        route: RouteConfig | None,
        upstream: UpstreamConfig,
        protocol: Protocol,
        info: RequestInfo,
        snapshot: Snapshot,
        stats: RequestStats,
    ) -> web.StreamResponse:
        stats.protocol = protocol.value
        timeout = aiohttp.ClientTimeout(
            total=upstream.total_timeout_s,
            sock_connect=upstream.connect_timeout_s,
            sock_read=upstream.idle_timeout_s,
        )
        stats.upstream_sent = time.perf_counter()
        try:
            upstream_response = await self.state.session.request(
                request.method,
                _upstream_url(route, upstream, request),
                data=body or None,
                headers=_forward_headers(request.headers, upstream, protocol),
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
            content_type = upstream_response.content_type
            filtered = protocol in ADAPTERS and route is not None and upstream_response.status < 400
            if filtered and route is not None and content_type == "text/event-stream":
                plan = snapshot.plans[route.name]
                adapter = ADAPTERS[protocol].stream(ResponseFilter(plan), info)
                return await self._stream(request, upstream_response, adapter, snapshot, stats)
            if filtered and route is not None and content_type == "application/json":
                return await self._body(upstream_response, protocol, route, info, snapshot, stats)
            return await self._passthrough(request, upstream_response, stats)

    async def _stream(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        adapter: StreamAdapter,
        snapshot: Snapshot,
        stats: RequestStats,
    ) -> web.StreamResponse:
        """bytes → SSE items → adapter (stage chains) → bytes, one upstream read at a time."""
        response = web.StreamResponse(
            status=upstream.status, headers=_reply_headers(upstream.headers, filtered=True)
        )
        await response.prepare(request)
        decoder = SSEDecoder(max_event_bytes=snapshot.config.proxy.limits.max_event_bytes)
        live = self.state.streams.open(stats)
        try:
            tail = await self._pump(upstream, decoder, adapter, response, stats)
            if tail:
                await response.write(tail)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError) as exc:
            stopped = live.stopped_by_shutdown(exc)
            if stopped is None:
                stats.disconnected = True  # the client left; closing below cancels the upstream
                raise
            stats.error, stats.error_code = stopped, "shutdown"
            await response.write(adapter.fail(stopped, SHUTDOWN_CODE))
            await response.write_eof()
        finally:
            self.state.streams.close(live)
            stats.text_chunks = adapter.text_chunks
            stats.blocked = adapter.blocked
            stats.findings = [_finding_record(f) for f in adapter.response.findings]
            if not adapter.completed:
                upstream.close()  # stop paying for tokens nobody will read
        return response

    async def _pump(
        self,
        upstream: aiohttp.ClientResponse,
        decoder: SSEDecoder,
        adapter: StreamAdapter,
        response: web.StreamResponse,
        stats: RequestStats,
    ) -> bytes:
        """Copy filtered events to the client until the stream ends; the closing bytes."""
        released = 0
        try:
            async for data in upstream.content.iter_any():
                out = await adapter.feed(decoder.feed(data))
                if stats.upstream_first_text is None and adapter.text_chunks:
                    stats.upstream_first_text = time.perf_counter()
                if out:
                    await response.write(out)
                    if adapter.released_chars != released:
                        released = adapter.released_chars
                        stats.text_written(time.perf_counter())
                if adapter.done:
                    return b""
            return await adapter.feed(decoder.close()) + await adapter.end()
        except SSEError as exc:
            stats.error, stats.error_code = str(exc), "upstream_event_too_large"
            return adapter.fail(str(exc), "upstream_event_too_large")
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            if isinstance(exc, ConnectionResetError):
                raise  # writing to our own client failed: it left
            silent = isinstance(exc, TimeoutError)
            what = "upstream went silent" if silent else "upstream connection broke"
            stats.error = f"{what}: {type(exc).__name__}"
            stats.error_code = "upstream_timeout" if silent else "upstream_broken"
            return adapter.fail(f"{what} before the stream completed", "upstream_error")

    async def _body(
        self,
        upstream: aiohttp.ClientResponse,
        protocol: Protocol,
        route: RouteConfig,
        info: RequestInfo,
        snapshot: Snapshot,
        stats: RequestStats,
    ) -> web.StreamResponse:
        raw = await upstream.read()
        stats.upstream_ready = time.perf_counter()
        if upstream.headers.get("Content-Encoding", "identity") in ("gzip", "deflate"):
            raw = zlib.decompress(raw, wbits=47)  # 47: accept gzip or zlib headers
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            stats.status, stats.error = 502, "upstream sent invalid JSON"
            stats.error_code = "upstream_bad_body"
            return _error(protocol, 502, "upstream sent a body that is not JSON", "upstream_error")
        if not isinstance(body, dict):
            stats.status, stats.error = 502, "upstream sent a non-object JSON body"
            stats.error_code = "upstream_bad_body"
            return _error(
                protocol, 502, "upstream sent a JSON body that is not an object", "upstream_error"
            )
        adapter = ADAPTERS[protocol].body(ResponseFilter(snapshot.plans[route.name]), info)
        filtered = await adapter.filter(body)
        stats.blocked = adapter.blocked
        stats.findings = [_finding_record(f) for f in adapter.response.findings]
        headers = _reply_headers(upstream.headers, filtered=True)
        headers.popall("Content-Type", None)  # json_response sets its own
        return web.json_response(filtered, status=upstream.status, headers=headers)

    async def _passthrough(
        self, request: web.Request, upstream: aiohttp.ClientResponse, stats: RequestStats
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=upstream.status, headers=_reply_headers(upstream.headers, filtered=False)
        )
        await response.prepare(request)
        try:
            async for data in upstream.content.iter_any():
                await response.write(data)
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            stats.error = f"upstream broke during pass-through: {type(exc).__name__}"
            stats.error_code = "upstream_broken"
            upstream.close()
        await response.write_eof()
        return response


def _finding_record(finding: Any) -> dict[str, Any]:
    return {
        "stage": finding.stage,
        "rule": finding.rule,
        "action": finding.action,
        "channel": finding.channel,
        "start": finding.start,
        "end": finding.end,
    }
