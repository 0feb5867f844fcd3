"""What one request did, as the log line and the metrics read it.

Its own module, below the server layer: the proxy fills a :class:`RequestStats` in, and
the request log, the metrics and the shutdown watcher read it without importing the
proxy (which imports them), so no import circle remains.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pipeline.stage import Finding

GAP_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
"""Seconds. Dense around the 20-50 ms providers deliver, since that is where bunching shows."""


class GapRecorder:
    """The gaps between client text writes of one stream, bucketed as :data:`GAP_BOUNDS`."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(GAP_BOUNDS) + 1)
        self.total = 0.0

    def add(self, gap: float) -> None:
        # bisect_left puts a gap equal to a bound in that bound's bucket, as Prometheus' le does.
        self.counts[bisect.bisect_left(GAP_BOUNDS, gap)] += 1
        self.total += gap


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
    unknown_fields: dict[str, int] = field(default_factory=dict)
    """Strings no codec slot knew, by field, that the walker filtered (deny by default)."""

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


def finding_record(finding: Finding) -> dict[str, Any]:
    return {
        "stage": finding.stage,
        "rule": finding.rule,
        "action": finding.action,
        "channel": finding.channel,
        "start": finding.start,
        "end": finding.end,
    }
