"""Bounded load test: many concurrent paced streams through one proxy process.

Run it as ``.venv/bin/python benchmarks/load_test.py [--streams 500 --duration-s 30]``.
Not part of the test suite. The simulator and the proxy (``streamsieve serve``) each run in
a process of their own on loopback; this process holds ``--streams`` chat streams open at
once, starting a new one as each ends, for ``--duration-s`` seconds, then lets the last
ones finish. It stops by itself (hard limit: duration + 120 s).

It reports errors (any non-200, missing ``[DONE]`` or exception: zero expected), client
TTFT and inter-token gaps, the proxy's CPU time per token, and the proxy's memory per open
stream: (RSS with the streams open - RSS idle after a warm-up) / streams open, with the
open count read from the proxy's own ``streamsieve_open_streams`` gauge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from pipeline.plugins import known_types

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[1]
_HARD_LIMIT_EXTRA_S = 120.0
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Totals:
    """What the clients saw."""

    streams: int = 0
    errors: list[str] = field(default_factory=list)
    tokens: int = 0
    ttft_s: list[float] = field(default_factory=list)
    gaps_s: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port}")


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        child = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def rss_bytes(pid: int) -> int:
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * _PAGE


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def config_text(upstream: str, stages: list[str], stage_metrics: bool) -> str:
    """One route through ``stages`` (those installed) to the simulator."""
    known = [name for name in stages if name in known_types()]
    return json.dumps(  # JSON is YAML, and needs no quoting rules here
        {
            "routes": [
                {
                    "name": "load",
                    "match": {"path": "/v1/*"},
                    "upstream": {"url": upstream},
                    "stages": [{"type": name} for name in known],
                    "stage_metrics": stage_metrics,
                }
            ]
        }
    )


async def one_stream(http: aiohttp.ClientSession, url: str, totals: Totals) -> None:
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    started = time.perf_counter()
    last: float | None = None
    done = False
    try:
        async with http.post(url, json=body) as response:
            if response.status != 200:
                totals.errors.append(f"status {response.status}")
                return
            # Per network read, not per line: parsing every line here would make this
            # process the bottleneck long before the proxy is.
            async for chunk in response.content.iter_any():
                tokens = chunk.count(b'"content":"') + chunk.count(b'"content": "')
                done = done or b"data: [DONE]" in chunk
                if not tokens:
                    continue
                now = time.perf_counter()
                if last is None:
                    totals.ttft_s.append(now - started)
                else:
                    totals.gaps_s.append(now - last)
                last = now
                totals.tokens += tokens
    except (aiohttp.ClientError, TimeoutError) as exc:
        totals.errors.append(type(exc).__name__)
        return
    if not done:
        totals.errors.append("stream ended without [DONE]")
    totals.streams += 1


async def client(
    http: aiohttp.ClientSession, url: str, until: float, delay_s: float, totals: Totals
) -> None:
    await asyncio.sleep(delay_s)  # spread the starts so tokens do not arrive in lockstep
    while time.monotonic() < until:
        await one_stream(http, url, totals)


async def open_streams(http: aiohttp.ClientSession, admin_url: str) -> float:
    async with http.get(f"{admin_url}/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streamsieve_open_streams":
                return float(sample.value)
    return 0.0


async def run(
    args: argparse.Namespace, pids: dict[str, int], proxy_url: str, admin_url: str
) -> None:
    url = f"{proxy_url}/v1/chat/completions"
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        warm = Totals()
        await asyncio.gather(*(one_stream(http, url, warm) for _ in range(10)))
        await asyncio.sleep(1.0)
        proxy_pid = pids["proxy"]
        idle_rss = rss_bytes(proxy_pid)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        totals = Totals()
        started = time.monotonic()
        until = started + args.duration_s
        spread = min(2.0, args.duration_s / 4)
        tasks = [
            asyncio.create_task(client(http, url, until, spread * i / args.streams, totals))
            for i in range(args.streams)
        ]
        samples: list[tuple[float, int]] = []
        while time.monotonic() < until:
            await asyncio.sleep(1.0)
            samples.append((await open_streams(http, admin_url), rss_bytes(proxy_pid)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    report(args, totals, warm, idle_rss, samples, cpu, elapsed)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(
    args: argparse.Namespace,
    totals: Totals,
    warm: Totals,
    idle_rss: int,
    samples: list[tuple[float, int]],
    cpu: dict[str, float],
    elapsed: float,
) -> None:
    loaded = [(n, rss) for n, rss in samples if n >= 0.9 * args.streams]
    per_stream = [(rss - idle_rss) / n for n, rss in loaded]
    figures = {
        "stages": [name for name in args.stages.split(",") if name in known_types()],
        "stage_metrics": not args.no_stage_metrics,
        "streams_concurrent": args.streams,
        "inter_token_delay_ms": args.inter_token_delay_ms,
        "elapsed_s": round(elapsed, 1),
        "streams_completed": totals.streams,
        "errors": len(totals.errors) + len(warm.errors),
        "error_kinds": sorted(set(totals.errors + warm.errors)),
        "tokens": totals.tokens,
        "tokens_per_s": round(totals.tokens / elapsed),
        "client_ttft_ms_p50": round(_pct(totals.ttft_s, 0.5) * 1000, 1),
        "client_ttft_ms_p99": round(_pct(totals.ttft_s, 0.99) * 1000, 1),
        "gap_ms_p50": round(_pct(totals.gaps_s, 0.5) * 1000, 1),
        "gap_ms_p99": round(_pct(totals.gaps_s, 0.99) * 1000, 1),
        "cpu_s": {name: round(seconds, 1) for name, seconds in cpu.items()},
        "proxy_cpu_us_per_token": round(cpu["proxy"] / max(1, totals.tokens) * 1e6, 1),
        "proxy_rss_idle_mib": round(idle_rss / 2**20, 1),
        "proxy_rss_loaded_mib": round(max(r for _, r in samples) / 2**20, 1) if samples else None,
        "open_streams_max": max((n for n, _ in samples), default=0),
        "kib_per_open_stream": round(statistics.median(per_stream) / 1024, 1)
        if per_stream
        else None,
    }
    print(json.dumps(figures, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--inter-token-delay-ms", type=float, default=50.0)
    parser.add_argument(
        "--stages", default="redact,profanity", help="comma-separated built-in stage types"
    )
    parser.add_argument("--no-stage-metrics", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * args.streams + 256  # each stream: client, proxy in and out, simulator
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, needed)), hard))
    sim_port, proxy_port, admin_port = free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="streamsieve-load-"))
    config = workdir / "load.yaml"
    stages = [name for name in args.stages.split(",") if name]
    upstream = f"http://{HOST}:{sim_port}"
    config.write_text(config_text(upstream, stages, not args.no_stage_metrics))
    python = [sys.executable, "-m", "pipeline.cli"]
    simulate = [*python, "simulate", "--port", str(sim_port)]
    simulate += ["--inter-token-delay-ms", str(args.inter_token_delay_ms)]
    serve = [*python, "--log-format", "json", "serve", "--config", str(config)]
    serve += ["--port", str(proxy_port), "--admin-port", str(admin_port)]
    with (
        process(simulate, workdir / "simulator.log") as simulator,
        process(serve, workdir / "proxy.log") as proxy,
    ):
        pids = {"proxy": proxy.pid, "simulator": simulator.pid, "load": os.getpid()}
        wait_listening(sim_port)
        wait_listening(admin_port)
        limit = args.duration_s + _HARD_LIMIT_EXTRA_S

        async def bounded() -> None:
            async with asyncio.timeout(limit):
                await run(args, pids, f"http://{HOST}:{proxy_port}", f"http://{HOST}:{admin_port}")

        asyncio.run(bounded())
    print(f"logs in {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
