"""The moderation trade-off, measured: added TTFT, added total time, exposure, per mode.

Run it as ``.venv/bin/python benchmarks/moderation_bench.py [--svg PATH]``. For each
classifier latency (50, 150 and 500 ms by default) the built-in simulator serves both the
chat upstream and ``/v1/moderations``; one proxy carries four routes: ``baseline`` (no
stage) and the ``moderation`` stage in ``hold``, ``bounded`` and ``monitor`` mode. Clients
stream the same paced reply through each route, several at once; a mode's *added* time is
its median minus the baseline's median, so the proxy's own cost cancels out.

Exposure is measured on a second reply whose fourth sentence the classifier flags: the
characters of it (and of anything after it) that reached the client before the stream was
ended. ``hold`` must show 0, ``bounded`` at most ``max_unverified_chars``, ``monitor``
whatever streamed before the verdict came back.

Figures are dominated by the classifier's latency, not by CPU, so client, proxy and
simulator share one process and loop; on a loaded machine expect a few ms of noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from benchmarks.moderation_chart import render_svg
from pipeline import logs
from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import parse_config
from pipeline.simulator import ModerationSettings, SimulatorSettings, start_simulator
from pipeline.simulator import bound_port as sim_port
from pipeline.sse import Event, SSEDecoder

MODES = ("hold", "bounded", "monitor")
HOST = "127.0.0.1"
_STREAM_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """What one run measures; the defaults take about two minutes."""

    latencies_ms: tuple[float, ...] = (50.0, 150.0, 500.0)
    streams: int = 4
    """Concurrent streams per route and round."""
    rounds: int = 3
    sentences: int = 8
    first_token_ms: float = 150.0
    inter_token_ms: float = 20.0
    """The upstream's pace: 50 tokens a second, as providers stream."""
    max_unverified_chars: int = 100
    """Small enough to bind at 500 ms (about 25 tokens stream meanwhile)."""
    window_chars: int = 400


QUICK = BenchSettings(latencies_ms=(10.0,), streams=1, rounds=1, sentences=4, inter_token_ms=2)


@dataclass(frozen=True, slots=True)
class Row:
    """One mode at one classifier latency."""

    latency_ms: float
    mode: str
    ttft_ms: float
    total_ms: float
    added_ttft_ms: float
    added_total_ms: float
    exposure_chars: int | None
    """Most characters from the flagged sentence on that reached a client (None: baseline)."""


@dataclass(frozen=True, slots=True)
class Seen:
    """One stream as the client saw it."""

    text: str
    ttft_s: float
    total_s: float


def reply(sentences: int, *, flagged: bool) -> tuple[str, int]:
    """The upstream's reply, and where the flagged sentence starts (when there is one)."""
    parts = [
        f"Sentence {i} of this reply says something entirely harmless. " for i in range(sentences)
    ]
    at = 0
    if flagged:
        at = len("".join(parts[:3]))
        parts[3] = "This sentence carries the forbidden phrase and must be stopped. "
    return "".join(parts).rstrip(), at


def routes(upstream: str, settings: BenchSettings) -> str:
    """The proxy config: a baseline route and one per mode, told apart by path prefix."""
    defined = [_route("baseline", upstream, [])]
    for mode in MODES:
        stage = {
            "type": "moderation",
            "url": f"{upstream}/v1/moderations",
            "mode": mode,
            "max_unverified_chars": settings.max_unverified_chars,
            "window_chars": settings.window_chars,
            "timeout_ms": 5000,
        }
        defined.append(_route(mode, upstream, [stage]))
    return json.dumps({"routes": defined})


def _route(name: str, upstream: str, stages: list[dict[str, object]]) -> dict[str, object]:
    return {
        "name": name,
        "match": {"path": f"/{name}/v1/*"},
        "upstream": {"url": upstream, "strip_prefix": f"/{name}"},
        "stages": stages,
        "buffer": {"max_holdback_chars": 8192},
        "stage_metrics": False,
    }


async def one_stream(http: aiohttp.ClientSession, url: str, text: str) -> Seen:
    """Stream a chat completion replying ``text``; when its text came, and all of it."""
    body = {
        "model": "gpt-4o",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "sim": {"text": text},
    }
    decoder = SSEDecoder()
    received: list[str] = []
    started = time.perf_counter()
    first: float | None = None
    async with http.post(f"{url}/v1/chat/completions", json=body) as response:
        async for data in response.content.iter_any():
            for event in decoder.feed(data):
                if not isinstance(event, Event) or event.data == "[DONE]":
                    continue
                for choice in json.loads(event.data).get("choices", []):
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        first = first if first is not None else time.perf_counter()
                        received.append(content)
    ended = time.perf_counter()
    return Seen("".join(received), (first or ended) - started, ended - started)


async def measure_latency(latency_ms: float, settings: BenchSettings) -> list[Row]:
    """Every mode's rows at one classifier latency."""
    sim_settings = SimulatorSettings(
        first_token_delay_ms=settings.first_token_ms,
        inter_token_delay_ms=settings.inter_token_ms,
        moderation=ModerationSettings(latency_ms=latency_ms),
    )
    sim = await start_simulator(HOST, 0, sim_settings)
    upstream = f"http://{HOST}:{sim_port(sim)}"
    proxy = await start_proxy(
        make_app(parse_config(routes(upstream, settings), "bench.yaml")), HOST, 0
    )
    base = f"http://{HOST}:{bound_port(proxy)}"
    clean, _ = reply(settings.sentences, flagged=False)
    flagged, flag_at = reply(settings.sentences, flagged=True)
    timeout = aiohttp.ClientTimeout(total=_STREAM_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await one_stream(http, f"{base}/baseline", clean)  # warm the connections up
            timings: dict[str, list[Seen]] = {name: [] for name in ("baseline", *MODES)}
            for _ in range(settings.rounds):
                for name, seen in timings.items():
                    batch = [
                        one_stream(http, f"{base}/{name}", clean) for _ in range(settings.streams)
                    ]
                    seen.extend(await asyncio.gather(*batch))
            exposure: dict[str, int] = {}
            for mode in MODES:
                runs = [
                    one_stream(http, f"{base}/{mode}", flagged) for _ in range(settings.streams)
                ]
                seen_flagged = await asyncio.gather(*runs)
                exposure[mode] = max(max(0, len(s.text) - flag_at) for s in seen_flagged)
    finally:
        await proxy.cleanup()
        await sim.cleanup()
    return _rows(latency_ms, timings, exposure)


def _rows(latency_ms: float, timings: dict[str, list[Seen]], exposure: dict[str, int]) -> list[Row]:
    def median_ms(seen: Sequence[Seen], total: bool) -> float:
        return statistics.median((s.total_s if total else s.ttft_s) for s in seen) * 1000.0

    base_ttft = median_ms(timings["baseline"], False)
    base_total = median_ms(timings["baseline"], True)
    rows = [Row(latency_ms, "baseline", base_ttft, base_total, 0.0, 0.0, None)]
    for mode in MODES:
        ttft, total = median_ms(timings[mode], False), median_ms(timings[mode], True)
        rows.append(
            Row(latency_ms, mode, ttft, total, ttft - base_ttft, total - base_total, exposure[mode])
        )
    return rows


async def run_benchmark(settings: BenchSettings) -> list[Row]:
    """All rows, latency by latency (one simulator and proxy each)."""
    rows: list[Row] = []
    for latency in settings.latencies_ms:
        rows.extend(await measure_latency(latency, settings))
    return rows


def table(rows: Sequence[Row], settings: BenchSettings) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| classifier | mode | TTFT p50 | added TTFT | total p50 | added total | exposure |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        exposure = "—" if row.exposure_chars is None else f"{row.exposure_chars} chars"
        lines.append(
            f"| {row.latency_ms:.0f} ms | {row.mode} | {row.ttft_ms:.0f} ms | "
            f"{row.added_ttft_ms:+.0f} ms | {row.total_ms:.0f} ms | {row.added_total_ms:+.0f} ms | "
            f"{exposure} |"
        )
    lines.append(
        f"\n{settings.streams} concurrent streams x {settings.rounds} rounds per route; "
        f"{settings.sentences} sentences at {1000 / settings.inter_token_ms:.0f} tokens/s; "
        f"bounded: max_unverified_chars {settings.max_unverified_chars}; "
        f"window_chars {settings.window_chars}."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latencies", type=float, nargs="+", help="classifier latencies (ms)")
    parser.add_argument("--streams", type=int, help="concurrent streams per route")
    parser.add_argument("--rounds", type=int, help="rounds of streams per route")
    parser.add_argument("--svg", type=Path, help="write the chart here")
    parser.add_argument("--quick", action="store_true", help="a few seconds' smoke run")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else BenchSettings()
    if args.latencies:
        settings = replace(settings, latencies_ms=tuple(args.latencies))
    if args.streams:
        settings = replace(settings, streams=args.streams)
    if args.rounds:
        settings = replace(settings, rounds=args.rounds)
    logs.configure("console", "warning")
    rows = asyncio.run(run_benchmark(settings))
    print(table(rows, settings))
    if args.svg:
        args.svg.write_text(render_svg(rows, settings.max_unverified_chars), encoding="utf-8")
        print(f"chart written to {args.svg}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
