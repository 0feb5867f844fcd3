"""A simulator (chat upstream and classifier in one) with a moderated proxy in front.

Shared by the moderation tests: each starts the pair with the stage keys it is about,
streams through the real proxy with the real ``openai`` SDK, and reads what the classifier
was asked from the simulator's own statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import parse_config
from pipeline.metrics import Metrics
from pipeline.simulator import (
    MODERATION_STATS,
    ModerationSettings,
    ModerationStats,
    SimulatorSettings,
    start_simulator,
)
from pipeline.simulator import bound_port as sim_port
from pipeline.state import STATE
from pipeline.stats import RequestStats
from tests.conftest import openai_client

FLAGGED = "Now the forbidden part comes. "
"""The sentence the simulated classifier flags (it contains ``forbidden``)."""
REPLY = (
    "Hello there, this is fine. Another harmless sentence here. "
    + FLAGGED
    + "And more text after it. The end."
)


@dataclass(slots=True)
class Moderated:
    """A running simulator and moderated proxy."""

    proxy_url: str
    upstream_url: str
    classifier: ModerationSettings
    """Change it to script the classifier between requests."""
    calls: ModerationStats
    metrics: Metrics
    requests: list[RequestStats] = field(default_factory=list)
    """Every request the proxy finished, with its findings."""


@dataclass(frozen=True, slots=True)
class Streamed:
    """What the SDK client saw of one streamed completion."""

    text: str
    finish_reasons: list[str]
    ttft_s: float | None
    total_s: float
    at_first: object = None
    """What ``at_first()`` returned when the first text arrived."""
    by_choice: dict[int, str] = field(default_factory=dict)
    """The text of each choice (``n`` > 1), in index order."""


@contextlib.asynccontextmanager
async def moderated(
    stage: Mapping[str, Any] | None = None,
    *,
    latency_ms: float = 20.0,
    flag_words: Mapping[str, str] | None = None,
    inter_token_ms: float = 0.0,
    classifier_path: str = "/v1/moderations",
    classifier_url: str | None = None,
) -> AsyncIterator[Moderated]:
    """A simulator and a proxy whose route runs one ``moderation`` stage with ``stage``
    keys; ``url`` is the simulator's ``classifier_path`` unless ``classifier_url`` is given.
    Both are stopped afterwards."""
    classifier = ModerationSettings(latency_ms=latency_ms)
    if flag_words is not None:
        classifier.flag_words = dict(flag_words)
    settings = SimulatorSettings(inter_token_delay_ms=inter_token_ms, moderation=classifier)
    sim = await start_simulator("127.0.0.1", 0, settings)
    try:
        upstream = f"http://127.0.0.1:{sim_port(sim)}"
        keys = {"type": "moderation", "url": classifier_url or upstream + classifier_path}
        keys |= dict(stage or {})
        route = {
            "name": "chat",
            "match": {"path": "/v1/*"},
            "upstream": {"url": upstream},
            "stages": [keys],
            "buffer": {"max_holdback_chars": 8192},
        }
        metrics = Metrics()
        app = make_app(parse_config(json.dumps({"routes": [route]}), "test.yaml"), metrics)
        proxy = await start_proxy(app, "127.0.0.1", 0)
        try:
            running = Moderated(
                f"http://127.0.0.1:{bound_port(proxy)}",
                upstream,
                classifier,
                sim.app[MODERATION_STATS],
                metrics,
            )
            app[STATE].observers.append(running.requests.append)
            yield running
        finally:
            await proxy.cleanup()
    finally:
        await sim.cleanup()


async def stream(
    url: str, text: str = REPLY, at_first: Callable[[], object] | None = None, **kwargs: Any
) -> Streamed:
    """Stream a chat completion whose reply is ``text`` through the proxy at ``url``;
    ``at_first`` is called when the first text arrives (say, to count verdicts by then)."""
    started = time.perf_counter()
    first: float | None = None
    seen: object = None
    received, finishes = "", []
    by_choice: dict[int, str] = {}
    sim = {"text": text} | kwargs.pop("sim", {})
    response = await openai_client(url).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"sim": sim},
        **kwargs,
    )
    async for chunk in response:
        for choice in chunk.choices:
            if choice.delta.content:
                if first is None:
                    first = time.perf_counter() - started
                    seen = at_first() if at_first is not None else None
                received += choice.delta.content
                by_choice[choice.index] = by_choice.get(choice.index, "") + choice.delta.content
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return Streamed(received, finishes, first, time.perf_counter() - started, seen, by_choice)


@dataclass(frozen=True, slots=True)
class RunningClassifier:
    """The simulator as a bare classifier: its URL, its script, what it was asked."""

    url: str
    settings: ModerationSettings
    calls: ModerationStats


@contextlib.asynccontextmanager
async def classifier(
    latency_ms: float = 0.0, flag_words: Mapping[str, str] | None = None
) -> AsyncIterator[RunningClassifier]:
    """A simulator serving ``/v1/moderations`` on loopback, stopped afterwards."""
    settings = ModerationSettings(latency_ms=latency_ms)
    if flag_words is not None:
        settings.flag_words = dict(flag_words)
    sim = await start_simulator("127.0.0.1", 0, SimulatorSettings(moderation=settings))
    try:
        url = f"http://127.0.0.1:{sim_port(sim)}/v1/moderations"
        yield RunningClassifier(url, settings, sim.app[MODERATION_STATS])
    finally:
        await sim.cleanup()


async def findings(running: Moderated, requests: int = 1) -> list[dict[str, Any]]:
    """The findings of the first ``requests`` requests, once the proxy has logged them.

    The proxy records a request after its last byte is written, so a client that has read
    the whole stream may be a moment early; this waits (at most a second) for the record.
    """
    for _ in range(200):
        if len(running.requests) >= requests:
            break
        await asyncio.sleep(0.005)
    return [f for request in running.requests[:requests] for f in request.findings]
