"""Building and running the proxy's aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from pipeline.config import LimitsConfig, LoadedConfig
from pipeline.metrics import Metrics
from pipeline.proxy import ProxyHandler
from pipeline.state import STATE, ProxyState, Snapshot
from pipeline.stats import REQUEST_STATS

HEADER_TIMEOUT = web.AppKey("streamsieve_header_timeout_s", float)
"""``limits.client_header_timeout_s`` of the config the app started with."""

_HANDLER_STOP_S = 2.0
"""At cleanup, how long a handler still running gets before aiohttp cancels it. Graceful
draining happens before cleanup (:func:`pipeline.shutdown.drain`), so this stays short."""


def make_app(config: LoadedConfig, metrics: Metrics | None = None) -> web.Application:
    """The proxy as an aiohttp app: one catch-all route, one pooled upstream session.

    Stage factories are built here, before the app serves anything, so a stage that
    refuses its config stops the start-up rather than the first request. Without
    ``metrics`` the app gets a registry of its own.
    """
    metrics = metrics if metrics is not None else Metrics()
    snapshot = Snapshot.build(config, metrics)
    app = web.Application()
    app[HEADER_TIMEOUT] = config.proxy.limits.client_header_timeout_s

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        app[STATE] = ProxyState(snapshot, session, metrics)
        yield
        await app[STATE].snapshot.aclose()
        await session.close()

    app.cleanup_ctx.append(session_ctx)
    app.on_response_prepare.append(_on_prepare)
    app.router.add_route("*", "/{tail:.*}", ProxyHandler.handle)
    return app


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """``Server-Timing`` on every proxied reply; connections are not kept while draining."""
    stats = request.get(REQUEST_STATS)
    if stats is not None:
        response.headers["Server-Timing"] = stats.server_timing(time.perf_counter())
    if request.app[STATE].admission.draining:
        response.force_close()
        response.headers["Connection"] = "close"  # headers are built before this hook runs


async def start_proxy(
    app: web.Application, host: str, port: int, *, reuse_port: bool = False
) -> web.AppRunner:
    """Start ``app`` on ``host:port``; the client leaving cancels its handler (and upstream).

    ``reuse_port`` lets several worker processes listen on the same port (SO_REUSEPORT).

    aiohttp closes a connection whose keep-alive timer fires while it still waits for a
    complete request line and headers, so ``keepalive_timeout`` is the client header
    timeout: a client sending half a request (or nothing) is dropped after it, counted from
    connecting or from its previous reply. It also bounds an idle keep-alive connection.
    An app not built by :func:`make_app` (the benchmark's baseline) gets the default.
    """
    runner = web.AppRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=_HANDLER_STOP_S,
        keepalive_timeout=app.get(HEADER_TIMEOUT, LimitsConfig().client_header_timeout_s),
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a started runner listens on (useful with port 0)."""
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("runner has no listening site")


async def serve_forever(*runners: web.AppRunner) -> None:
    """Wait until cancelled (Ctrl-C), then shut every runner down."""
    try:
        await asyncio.Event().wait()
    finally:
        for runner in runners:
            with contextlib.suppress(Exception):
                await runner.cleanup()
