"""Prometheus metrics: what each request did, and what each stage cost.

Three feeds, each chosen to keep per-token work near zero:

- the request observer (:meth:`Metrics.observe`) runs once per request, from the
  :class:`~pipeline.stats.RequestStats` the log line also reads;
- inter-token gaps are bucketed per stream in a :class:`GapRecorder` (one ``bisect`` per
  client text write) and added to the histogram once, when the stream ends;
- stages of a route with ``stage_metrics`` (the default) are watched through the engine's
  observer hook: each opened stage adds up its own time and the most it held, reported
  once when its channel finishes.

Every :class:`Metrics` owns its registry, so several proxies in one process (tests) never
share counters. With ``--workers N`` prometheus-client's multiprocess mode sums the workers
(see :mod:`pipeline.workers`); nothing here changes for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pipeline.plan import Method, RoutePlan
from pipeline.stage import Channel, Release
from pipeline.stats import GAP_BOUNDS, GapRecorder, RequestStats

_TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_ADDED_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_HELD_BUCKETS = (0.0, 1.0, 8.0, 32.0, 128.0, 512.0, 1024.0, 4096.0)
_STAGE_BUCKETS = (1e-5, 5e-5, 1e-4, 5e-4, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def add_recorded(child: Histogram, gaps: GapRecorder) -> None:
    """Add a stream's bucketed gaps to a histogram child (built with :data:`GAP_BOUNDS`).

    prometheus-client has no public bulk observe, and one ``observe`` per gap costs about
    1.7 µs on the per-token path; this writes the very values those calls would have
    written (``tests/test_ops_metrics.py`` checks they agree) in one step per stream.
    """
    child._sum.inc(gaps.total)
    for value, count in zip(child._buckets, gaps.counts, strict=True):
        if count:
            value.inc(count)


def _seconds(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


class Metrics:
    """The proxy's metrics on one registry, plus the hooks that feed them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "streamsieve_requests",
            "Requests answered, by route (empty: none matched) and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.upstream_ttft = Histogram(
            "streamsieve_upstream_ttft_seconds",
            "From sending the request upstream to the upstream's first text (streams).",
            ["route"],
            buckets=_TTFT_BUCKETS,
            registry=r,
        )
        self.added_ttft = Histogram(
            "streamsieve_proxy_added_ttft_seconds",
            "Client time to first text minus the upstream's: what the proxy added (streams).",
            ["route"],
            buckets=_ADDED_BUCKETS,
            registry=r,
        )
        self.gaps = Histogram(
            "streamsieve_inter_token_gap_seconds",
            "Time between two consecutive writes of new text to a streaming client.",
            ["route"],
            buckets=GAP_BOUNDS,
            registry=r,
        )
        self.stage_seconds = Histogram(
            "streamsieve_stage_seconds",
            "Time one stage spent on one channel (sum: total stage time; count: channels).",
            ["route", "stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.stage_held = Histogram(
            "streamsieve_stage_held_chars",
            "Most characters one stage held at once on one channel.",
            ["route", "stage"],
            buckets=_HELD_BUCKETS,
            registry=r,
        )
        self.findings = Counter(
            "streamsieve_findings",
            "Findings reported by stages, by stage id, rule and action taken.",
            ["route", "stage", "rule", "action"],
            registry=r,
        )
        self.unknown_fields = Counter(
            "streamsieve_unknown_fields",
            "Strings no codec slot knew (a field a provider added; every string of a "
            "generic reply), filtered as channels of their own, by protocol and field.",
            ["route", "protocol", "field"],
            registry=r,
        )
        self.blocks = Counter(
            "streamsieve_blocks", "Responses a stage blocked.", ["route"], registry=r
        )
        self.errors = Counter(
            "streamsieve_errors",
            "Requests that ended in an error the proxy reported, by reason "
            "(upstream_unreachable, upstream_timeout, upstream_broken, "
            "upstream_event_too_large, upstream_bad_body, shutdown).",
            ["route", "reason"],
            registry=r,
        )
        self.disconnects = Counter(
            "streamsieve_client_disconnects",
            "Streams the client abandoned before they ended.",
            ["route"],
            registry=r,
        )
        self.open_streams = Gauge(
            "streamsieve_open_streams",
            "Filtered streams being served now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.in_flight = Gauge(
            "streamsieve_in_flight_requests",
            "Requests being proxied now (what limits.max_concurrent_streams bounds).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.reloads = Counter(
            "streamsieve_config_reloads",
            "Config reloads by result (ok, refused), counted by each process.",
            ["result"],
            registry=r,
        )

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)

    def observe(self, stats: RequestStats) -> None:
        """A :class:`~pipeline.state.ProxyState` observer: one call per finished request."""
        route = stats.route or ""
        self.requests.labels(route, str(stats.status)).inc()
        upstream_ttft = _seconds(stats.upstream_sent, stats.upstream_first_text)
        client_ttft = _seconds(stats.started, stats.client_first_text)
        if upstream_ttft is not None:
            self.upstream_ttft.labels(route).observe(upstream_ttft)
            if client_ttft is not None:
                self.added_ttft.labels(route).observe(max(0.0, client_ttft - upstream_ttft))
        if stats.gaps is not None:
            add_recorded(self.gaps.labels(route), stats.gaps)
        for finding in stats.findings:
            self.findings.labels(route, finding["stage"], finding["rule"], finding["action"]).inc()
        for name, count in stats.unknown_fields.items():
            self.unknown_fields.labels(route, stats.protocol, name).inc(count)
        if stats.blocked:
            self.blocks.labels(route).inc()
        if stats.error_code:
            self.errors.labels(route, stats.error_code).inc()
        if stats.disconnected:
            self.disconnects.labels(route).inc()

    def stream_opened(self, stats: RequestStats) -> None:
        self.open_streams.inc()

    def stream_closed(self, stats: RequestStats) -> None:
        self.open_streams.dec()

    def instrument(self, plans: Mapping[str, RoutePlan]) -> dict[str, RoutePlan]:
        """``plans`` with every ``stage_metrics`` route observed: each stage times itself.

        Factories with metrics of their own (:class:`ReportsMetrics`) get this registry.
        """
        for plan in plans.values():
            for bound in plan.stages:
                if isinstance(bound.factory, ReportsMetrics):
                    bound.factory.report_to(self.registry, plan.route.name, bound.id)
        return {
            name: dataclasses.replace(plan, observer=_StageTimer(self, plan))
            if plan.route.stage_metrics
            else plan
            for name, plan in plans.items()
        }


class _StageTimer:
    """The engine's observer for one route: a :class:`_Timing` per opened stage."""

    __slots__ = ("_children",)

    def __init__(self, metrics: Metrics, plan: RoutePlan) -> None:
        route = plan.route.name
        # Label children resolved once per config, not per stream.
        self._children = {
            bound.id: (
                metrics.stage_seconds.labels(route, bound.id),
                metrics.stage_held.labels(route, bound.id),
            )
            for bound in plan.stages
        }

    def watch(self, stage: str, channel: Channel) -> _Timing:
        seconds, held = self._children[stage]
        return _Timing(seconds, held)


@runtime_checkable
class ReportsMetrics(Protocol):
    """A stage factory that records metrics of its own (``moderation``: classifier calls)."""

    def report_to(self, registry: CollectorRegistry, route: str, stage: str) -> None:
        """Register (once per registry) and record on ``registry`` with these labels."""
        ...


class _Timing:
    """Per opened stage: time spent and the most it held, reported once per channel.

    A channel cut short by a block is reported at the block; one abandoned (client gone,
    stage error) is not reported.
    """

    __slots__ = ("_held_hist", "_max_held", "_reported", "_seconds_hist", "_spent")

    def __init__(self, seconds: Histogram, held: Histogram) -> None:
        self._seconds_hist = seconds
        self._held_hist = held
        self._spent = 0.0
        self._max_held = 0
        self._reported = False

    def called(
        self,
        method: Method,
        fed: str,
        release: Release | None,
        held: int,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        self._spent += seconds
        if held > self._max_held:
            self._max_held = held
        if error is None and (method == "finish" or (release is not None and release.block)):
            self._report()

    def _report(self) -> None:
        if not self._reported:
            self._reported = True
            self._seconds_hist.observe(self._spent)
            self._held_hist.observe(self._max_held)
