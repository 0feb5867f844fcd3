"""The moderation stage's Prometheus metrics, registered on the proxy's own registry.

``pipeline.metrics.Metrics.instrument`` hands each stage factory that reports metrics the
registry and its labels (:meth:`ModerationFactory.report_to`); one set of collectors is
made per registry, however many routes, stages and reloads use it. With ``--workers N``
prometheus-client's multiprocess mode sums counters and histograms across workers like the
proxy's own, since every value here is a counter or a histogram.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0)
_AHEAD_BUCKETS = (0.0, 1.0, 16.0, 64.0, 128.0, 256.0, 512.0, 1024.0)

_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, ModerationMetrics] = (
    weakref.WeakKeyDictionary()
)


class ModerationMetrics:
    """Classifier latency, verdicts, and characters released ahead of their verdict."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.latency = Histogram(
            "streamsieve_moderation_classifier_seconds",
            "Time one classifier call took, from its window closing to its answer "
            "(waiting for a call slot included), by outcome (ok, flagged, error).",
            ["route", "stage", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.verdicts = Counter(
            "streamsieve_moderation_verdicts",
            "Windows decided, by verdict: ok, flagged, error (the call failed or timed "
            "out), breaker_open (no call made), cached (an identical window's verdict).",
            ["route", "stage", "verdict"],
            registry=registry,
        )
        self.ahead = Histogram(
            "streamsieve_moderation_released_ahead_chars",
            "Characters of one window already released to the client when its verdict "
            "arrived (0 in hold mode; at most max_unverified_chars in bounded mode).",
            ["route", "stage", "mode"],
            buckets=_AHEAD_BUCKETS,
            registry=registry,
        )

    @classmethod
    def on(cls, registry: CollectorRegistry) -> ModerationMetrics:
        """The collectors registered on ``registry``, made the first time it is asked for."""
        metrics = _BY_REGISTRY.get(registry)
        if metrics is None:
            metrics = _BY_REGISTRY[registry] = cls(registry)
        return metrics
