"""Shared fixtures: a real simulator and a real proxy on loopback, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
import structlog
from aiohttp import web

from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import parse_config
from pipeline.simulator import SIM_STATS, SimStats, SimulatorSettings, start_simulator
from pipeline.simulator import bound_port as sim_port

RECORDED = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "recorded"


def recorded_dir() -> Path:
    """The providers' recorded streams beside the repo, or a skip saying why not."""
    if not RECORDED.is_dir():
        pytest.skip(f"recorded upstream streams not found at {RECORDED} (../shared is absent)")
    return RECORDED


_SDK_CLIENTS: list[openai.AsyncOpenAI] = []


def openai_client(url: str) -> openai.AsyncOpenAI:
    """An ``openai`` SDK client for a proxy at ``url``, no retries, closed after the test."""
    sdk = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)
    _SDK_CLIENTS.append(sdk)
    return sdk


def sim_chunks(chunks: list[str], **extra: Any) -> dict[str, Any]:
    """``extra_body`` for the simulator: these exact deltas, written in byte-sized pieces."""
    return {"sim": {"chunks": chunks, "sse_split": "bytes", **extra}}


@pytest.fixture(autouse=True)
async def _close_sdk_clients() -> AsyncIterator[None]:
    yield
    while _SDK_CLIENTS:
        await _SDK_CLIENTS.pop().close()


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Undo any ``logs.configure`` a test ran: it binds loggers to that test's stderr."""
    yield
    structlog.reset_defaults()


@dataclass(slots=True)
class Stack:
    """A running simulator and a proxy in front of it."""

    proxy_url: str
    upstream_url: str
    sim_stats: SimStats


StackFactory = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def stack() -> AsyncIterator[StackFactory]:
    """Start simulator + proxy with a route config; ``{upstream}`` in it is the simulator."""
    runners: list[web.AppRunner] = []

    async def start(
        routes_yaml: str = "", settings: SimulatorSettings | None = None, **extra: str
    ) -> Stack:
        sim = await start_simulator("127.0.0.1", 0, settings)
        runners.append(sim)
        upstream = f"http://127.0.0.1:{sim_port(sim)}"
        text = routes_yaml or DEFAULT_ROUTES
        config = parse_config(text.format(upstream=upstream, **extra), "test.yaml")
        proxy = await start_proxy(make_app(config), "127.0.0.1", 0)
        runners.append(proxy)
        return Stack(f"http://127.0.0.1:{bound_port(proxy)}", upstream, sim.app[SIM_STATS])

    yield start
    for runner in reversed(runners):
        await runner.cleanup()


DEFAULT_ROUTES = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: secret
"""
