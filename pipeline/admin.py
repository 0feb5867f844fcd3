"""The admin app, on its own port: ``/metrics``, ``/healthz``, ``/readyz``, ``POST /admin/reload``.

It never shares the public port: the catch-all proxy route would otherwise forward these
paths upstream, and an operator's endpoints should not be one Host header away from
clients. It binds 127.0.0.1 unless told otherwise (a container or pod needs ``0.0.0.0``
for its probes; keep that port out of the public Service).

What the endpoints report comes from an :class:`Operations` object: one proxy process
(:class:`ProcessOperations`), or the supervisor of several worker processes
(:mod:`pipeline.workers`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from pipeline.config import LoadedConfig
from pipeline.reload import Reloader, ReloadResult
from pipeline.state import ProxyState

CONNECT_TIMEOUT_S = 1.0
"""Per upstream, for ``/readyz``. Probes allow a few seconds (see deploy/kubernetes.yaml)."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether to send this instance traffic, and each check's outcome."""

    checks: dict[str, str] = field(default_factory=dict)
    """Check name → ``ok`` or what is wrong."""

    @property
    def ready(self) -> bool:
        return all(outcome == "ok" for outcome in self.checks.values())


class Operations(Protocol):
    """What the admin endpoints ask of whatever serves the proxy."""

    def render_metrics(self) -> bytes:
        """Metrics in Prometheus' text format."""
        ...

    async def readiness(self) -> Readiness: ...

    async def reload(self) -> ReloadResult: ...


OPERATIONS = web.AppKey("streamsieve_operations", Operations)


def make_admin_app(operations: Operations) -> web.Application:
    app = web.Application()
    app[OPERATIONS] = operations
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_post("/admin/reload", _reload)
    return app


async def start_admin(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[OPERATIONS].render_metrics()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    """Alive: the event loop answers. Says nothing about upstreams, so a liveness probe
    never restarts a healthy proxy because a provider is down."""
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    readiness = await request.app[OPERATIONS].readiness()
    body = {"status": "ready" if readiness.ready else "not ready", "checks": readiness.checks}
    return web.json_response(body, status=200 if readiness.ready else 503)


async def _reload(request: web.Request) -> web.Response:
    result = await request.app[OPERATIONS].reload()
    return web.json_response(result.as_json(), status=200 if result.ok else 422)


async def check_upstreams(config: LoadedConfig) -> dict[str, str]:
    """``upstream:<route>`` → ``ok`` or the failure, for each route that asks for the check.

    A TCP connect proves the address resolves and something listens; it costs the
    upstream nothing, unlike a request that an API would bill or rate-limit.
    """
    targets = {
        route.name: _address(route.upstream.url)
        for route in config.proxy.routes
        if route.upstream.ready_check
    }
    addresses = sorted(set(targets.values()))
    outcomes = await asyncio.gather(*(_connect(*address) for address in addresses))
    by_address = dict(zip(addresses, outcomes, strict=True))
    return {f"upstream:{name}": by_address[addr] for name, addr in targets.items()}


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


async def _connect(host: str, port: int) -> str:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return f"no answer from {host}:{port} within {CONNECT_TIMEOUT_S} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or type(exc).__name__}"
    writer.close()
    await writer.wait_closed()
    return "ok"


def shutdown_check(draining: bool) -> str:
    """The ``shutdown`` check: failing while draining, so the load balancer moves on."""
    return "draining: the proxy is shutting down" if draining else "ok"


class ProcessOperations:
    """The admin view of a proxy served by this very process."""

    def __init__(self, state: ProxyState, reloader: Reloader) -> None:
        self._state = state
        self._reloader = reloader

    def render_metrics(self) -> bytes:
        return self._state.metrics.render()

    async def readiness(self) -> Readiness:
        checks = {
            "shutdown": shutdown_check(self._state.admission.draining),
            "config": "ok",  # a snapshot is always in force once the app has started
        }
        checks.update(await check_upstreams(self._state.snapshot.config))
        return Readiness(checks)

    async def reload(self) -> ReloadResult:
        return await self._reloader.reload()
