"""Building and running the proxy's aiohttp application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from pipeline.config import LoadedConfig
from pipeline.proxy import ProxyHandler
from pipeline.state import STATE, ProxyState, Snapshot


def make_app(config: LoadedConfig) -> web.Application:
    """The proxy as an aiohttp app: one catch-all route, one pooled upstream session.

    Stage factories are built here, before the app serves anything, so a stage that
    refuses its config stops the start-up rather than the first request.
    """
    snapshot = Snapshot.build(config)
    app = web.Application(client_max_size=config.proxy.max_body_bytes)

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        app[STATE] = ProxyState(snapshot, session)
        yield
        await session.close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_route("*", "/{tail:.*}", ProxyHandler.handle)
    return app


async def start_proxy(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start ``app`` on ``host:port``; the client leaving cancels its handler (and upstream)."""
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
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
