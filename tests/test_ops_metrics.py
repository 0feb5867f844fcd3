"""``/metrics`` after a known sequence of requests, and the ``Server-Timing`` header."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from pipeline.metrics import add_recorded
from pipeline.stats import GAP_BOUNDS, GapRecorder
from tests.ops_support import chat_body, get_metrics, metric, ops_stack, sse_data, text_of

ROUTES = """
routes:
  - name: strict
    match: {{path: "/v1/*", headers: {{x-route: strict}}}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        id: guard
        block: true
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stage_metrics: {stage_metrics}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        id: mask
"""

PACED = {"inter_token_delay_ms": 40}
"""Far enough apart that each token is its own upstream read, so its own client write."""


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, object]) -> list[str]:
    async with http.post(url, json=body) as response:
        return await sse_data(response) if body.get("stream") else [await response.text()]


async def test_metrics_after_a_known_sequence(tmp_path: Path) -> None:
    """Counters and histograms match exactly what a fixed set of requests did."""
    async with (
        ops_stack(tmp_path, ROUTES, stage_metrics="true") as s,
        aiohttp.ClientSession() as http,
    ):
        url = f"{s.proxy_url}/v1/chat/completions"
        clean = await post(http, url, chat_body({"chunks": ["a ", "b ", "c ", "d"], **PACED}))
        masked = await post(http, url, chat_body({"chunks": ["x ", "sec", "ret", " y"], **PACED}))
        await post(http, url, chat_body({"text": "a secret"}, stream=False))
        await post(http, url, chat_body({"text": "one two three", "fail_after": 2, **PACED}))
        async with http.post(
            url, json=chat_body({"text": "a secret"}), headers={"x-route": "strict"}
        ) as blocked:
            await blocked.read()
        async with http.get(f"{s.proxy_url}/elsewhere") as unrouted:
            assert 404 == unrouted.status
        text = await get_metrics(http, s.admin_url)
    assert "a b c d" == text_of(clean)
    assert "x [MASKED] y" == text_of(masked)
    assert 4.0 == metric(text, "streamsieve_requests_total", route="chat", status="200")
    assert 1.0 == metric(text, "streamsieve_requests_total", route="strict", status="200")
    assert 1.0 == metric(text, "streamsieve_requests_total", route="", status="404")
    assert 3.0 == metric(text, "streamsieve_upstream_ttft_seconds_count", route="chat")
    assert 3.0 == metric(text, "streamsieve_proxy_added_ttft_seconds_count", route="chat")
    # clean: 4 text writes, 3 gaps; masked: "x ", "[MASKED]", " y", 2 gaps; broken: 2 writes, 1.
    assert 6.0 == metric(text, "streamsieve_inter_token_gap_seconds_count", route="chat")
    assert 0.2 < metric(text, "streamsieve_inter_token_gap_seconds_sum", route="chat") < 2.0
    findings = {"route": "chat", "stage": "mask", "rule": "word", "action": "redacted"}
    assert 2.0 == metric(text, "streamsieve_findings_total", **findings)
    assert 1.0 == metric(text, "streamsieve_blocks_total", route="strict")
    reason = {"route": "chat", "reason": "upstream_broken"}
    assert 1.0 == metric(text, "streamsieve_errors_total", **reason)
    # Channels that finished: clean, masked, the body; the broken stream never finished.
    stage = {"route": "chat", "stage": "mask"}
    assert 3.0 == metric(text, "streamsieve_stage_seconds_count", **stage)
    assert 2.0 == metric(text, "streamsieve_stage_held_chars_bucket", le="0.0", **stage)
    assert 3.0 == metric(text, "streamsieve_stage_held_chars_bucket", le="8.0", **stage)
    assert 1.0 == metric(text, "streamsieve_stage_held_chars_count", route="strict", stage="guard")
    assert 0.0 == metric(text, "streamsieve_open_streams")
    assert 0.0 == metric(text, "streamsieve_in_flight_requests")


async def test_open_streams_and_disconnects(tmp_path: Path) -> None:
    """A stream being served shows in the gauge; a client leaving it is counted."""
    async with (
        ops_stack(tmp_path, ROUTES, stage_metrics="true") as s,
        aiohttp.ClientSession() as http,
    ):
        finished = asyncio.Event()
        s.state.observers.append(lambda _: finished.set())  # runs after the metrics observer
        body = chat_body({"chunks": ["a "] * 50, "inter_token_delay_ms": 50})
        response = await http.post(f"{s.proxy_url}/v1/chat/completions", json=body)
        await response.content.readline()
        during = await get_metrics(http, s.admin_url)
        response.close()
        async with asyncio.timeout(5):
            await finished.wait()
        after = await get_metrics(http, s.admin_url)
    assert 1.0 == metric(during, "streamsieve_open_streams")
    assert 1.0 == metric(during, "streamsieve_in_flight_requests")
    assert 1.0 == metric(after, "streamsieve_client_disconnects_total", route="chat")
    assert 0.0 == metric(after, "streamsieve_open_streams")


async def test_stage_metrics_off_leaves_stages_unwrapped(tmp_path: Path) -> None:
    """``stage_metrics: false`` exports no stage series and leaves the route's factories bare."""
    async with (
        ops_stack(tmp_path, ROUTES, stage_metrics="false") as s,
        aiohttp.ClientSession() as http,
    ):
        await post(http, f"{s.proxy_url}/v1/chat/completions", chat_body({"text": "a secret"}))
        text = await get_metrics(http, s.admin_url)
        factory = s.state.snapshot.plans["chat"].stages[0].factory
    assert "MaskWordFactory" == type(factory).__name__
    assert 0.0 == metric(text, "streamsieve_stage_seconds_count", route="chat", stage="mask")
    findings = {"route": "chat", "stage": "mask", "rule": "word", "action": "redacted"}
    assert 1.0 == metric(text, "streamsieve_findings_total", **findings)


def test_recorded_gaps_equal_one_observe_per_gap() -> None:
    """Adding a stream's bucketed gaps gives exactly what one ``observe`` per gap gives."""
    rng = random.Random(7)
    gaps = [rng.choice([*GAP_BOUNDS, 0.0, 9.0]) * rng.choice([1.0, 0.5]) for _ in range(500)]
    recorded, observed = CollectorRegistry(), CollectorRegistry()
    by_stream = Histogram("gap", "gap", ["route"], buckets=GAP_BOUNDS, registry=recorded)
    by_gap = Histogram("gap", "gap", ["route"], buckets=GAP_BOUNDS, registry=observed)
    recorder = GapRecorder()
    for gap in gaps:
        recorder.add(gap)
        by_gap.labels("r").observe(gap)
    add_recorded(by_stream.labels("r"), recorder)
    assert _without_created(generate_latest(observed)) == _without_created(
        generate_latest(recorded)
    )


def _without_created(text: bytes) -> list[str]:
    return [line for line in text.decode().splitlines() if "_created" not in line]


async def test_server_timing_on_streams_bodies_and_errors(tmp_path: Path) -> None:
    """Every proxied reply carries the proxy's own time and the upstream's in Server-Timing."""
    async with (
        ops_stack(tmp_path, ROUTES, stage_metrics="true") as s,
        aiohttp.ClientSession() as http,
    ):
        url = f"{s.proxy_url}/v1/chat/completions"
        headers = []
        for body in (chat_body(), chat_body(stream=False)):
            async with http.post(url, json=body) as response:
                await response.read()
                headers.append(response.headers["Server-Timing"])
        async with http.get(f"{s.proxy_url}/elsewhere") as refused:
            headers.append(refused.headers["Server-Timing"])
    timings = [dict(_metric(part) for part in header.split(", ")) for header in headers]
    assert [{"proxy", "upstream"}] * 3 == [set(t) for t in timings]
    assert all(0.0 <= t["proxy"] < 1000.0 for t in timings)
    assert 0.0 == timings[2]["upstream"]  # answered without asking any upstream


def _metric(part: str) -> tuple[str, float]:
    name, _, duration = part.partition(";dur=")
    return name, float(duration)
