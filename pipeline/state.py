"""Process-wide state of a running proxy: the current config and the shared HTTP session.

A :class:`Snapshot` (config plus the route plans built from it) is immutable. A reload
builds a new one and swaps the reference, so a request in flight keeps the snapshot it
started with and never sees half of a config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web

from pipeline.auth import RouteKeys, route_keys
from pipeline.config import LoadedConfig
from pipeline.engine import RoutePlan, build_plans
from pipeline.limits import Admission
from pipeline.metrics import Metrics
from pipeline.shutdown import ActiveStreams
from pipeline.stats import RequestStats

log = structlog.get_logger("streamsieve.proxy")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A config and everything built from it, in force together."""

    config: LoadedConfig
    plans: dict[str, RoutePlan]
    auth: Mapping[str, RouteKeys]
    """Client keys of the routes that ask for them (read from the environment at build)."""

    @classmethod
    def build(cls, config: LoadedConfig, metrics: Metrics | None = None) -> Snapshot:
        """Build plans (stages instrumented when ``metrics`` is given) and read route keys."""
        plans = build_plans(config)
        if metrics is not None:
            plans = metrics.instrument(plans)
        return cls(config=config, plans=plans, auth=route_keys(config))

    async def aclose(self) -> None:
        """This snapshot is no longer in force: every stage factory releases what it pools."""
        for plan in self.plans.values():
            for bound in plan.stages:
                await bound.factory.aclose()


Observer = Callable[[RequestStats], None]


class ProxyState:
    """The current snapshot, the pooled upstream session, request observers, metrics, and
    the bookkeeping that limits and graceful shutdown need."""

    def __init__(
        self, snapshot: Snapshot, session: aiohttp.ClientSession, metrics: Metrics
    ) -> None:
        self.snapshot = snapshot
        self.session = session
        self.metrics = metrics
        self.observers: list[Observer] = [log_request, metrics.observe]
        self.admission = Admission(metrics.in_flight)
        self.streams = ActiveStreams()
        self.streams.watchers.append(metrics)

    def observe(self, stats: RequestStats) -> None:
        for observer in self.observers:
            observer(stats)


def log_request(stats: RequestStats) -> None:
    """One line per request: timings, counts and findings, never credentials or text."""
    upstream_ttft = stats.ms(stats.upstream_sent, stats.upstream_first_text)
    client_ttft = stats.ms(stats.started, stats.client_first_text)
    added = (
        round(client_ttft - upstream_ttft, 3)
        if upstream_ttft is not None and client_ttft is not None
        else None
    )
    log.info(
        "request",
        method=stats.method,
        path=stats.path,
        route=stats.route,
        model=stats.model,
        protocol=stats.protocol,
        status=stats.status,
        stream=stats.stream,
        upstream_ttft_ms=upstream_ttft,
        client_ttft_ms=client_ttft,
        proxy_added_ttft_ms=added,
        duration_ms=stats.ms(stats.started, stats.finished),
        tokens=stats.text_chunks,
        blocked=stats.blocked,
        error=stats.error,
        client_disconnected=stats.disconnected,
        findings=stats.findings,
    )


STATE = web.AppKey("streamsieve_state", ProxyState)
