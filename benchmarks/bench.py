"""What streamsieve adds to a stream: time to first token, inter-token gaps, CPU per token.

Run it as ``.venv/bin/python benchmarks/bench.py [options]`` (``--help`` lists them). The
upstream simulator, a baseline proxy (:mod:`benchmarks.baseline_proxy`) and one streamsieve
per configuration under test each run in a process of their own on loopback, so each
one's CPU time is its own. C concurrent clients per target stream chat completions and
timestamp every text event; latencies are compared with the same streams taken directly
from the simulator, CPU per token with the baseline's.

Hold-back is measured offline: the same chunks the simulator sends are fed to the same
stage chains (:func:`pipeline.engine.build_plans`) and ``Chain.held`` is recorded after
every feed, which is exact where a client-side estimate would be blurred by the network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import aiohttp
import structlog
import yaml
from aiohttp import web

from benchmarks.baseline_proxy import make_baseline_app
from pipeline import logs, loop
from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import parse_config
from pipeline.engine import Chain, ResponseFilter, build_plans
from pipeline.plugins import StageLoadError, known_types, resolve_stage
from pipeline.simulator import bound_port as simulator_port
from pipeline.simulator import start_simulator
from pipeline.sse import Event, SSEDecoder, SSEError
from pipeline.stage import Channel, ChannelEnd, ChannelKind, Release

HOST = "127.0.0.1"
ROUTE = "bench"
CHAT_PATH = "/v1/chat/completions"
_START_TIMEOUT_S = 60.0
_CONTROL_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0


class BenchError(Exception):
    """The benchmark cannot produce trustworthy figures; the message says why."""


# --- settings -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Variant:
    """One streamsieve configuration under test, served by a process of its own."""

    name: str
    stages: tuple[str, ...]
    """Stage ``type:`` names, in chain order (built-in names or dotted paths)."""
    json_content: bool = False
    """Requests ask for ``response_format: json_object`` and the reply text is JSON."""


DEFAULT_VARIANTS = (
    Variant("sieve", ()),
    Variant("sieve+filters", ("redact", "profanity")),
    Variant("sieve+json", ("redact", "profanity", "json"), json_content=True),
)


@dataclass(frozen=True, slots=True)
class BenchSettings:
    """Everything that shapes one benchmark run."""

    concurrency: int = 8
    requests: int = 3
    """Requests per client, one after the other."""
    tokens: int = 200
    """Text deltas per reply, roughly: replies are whole sentences, at least this many."""
    first_token_ms: float = 50.0
    inter_token_ms: float = 20.0
    sequential: bool = False
    """One target at a time (isolated CPU) instead of all targets at once (shared noise)."""
    offline_budget_s: float = 0.3
    """CPU time spent timing each offline chain, per scenario."""
    variants: tuple[Variant, ...] = DEFAULT_VARIANTS
    slack_s: float = 10.0
    """Added to every request's time limit (start-up, a loaded machine)."""

    @property
    def paced(self) -> bool:
        return self.first_token_ms > 0 or self.inter_token_ms > 0

    def request_timeout_s(self) -> float:
        """Generous per-request bound: three times the paced duration plus start-up slack."""
        paced = (self.first_token_ms + self.tokens * 2 * self.inter_token_ms) / 1000.0
        return 3 * paced + self.slack_s


QUICK = BenchSettings(
    concurrency=2,
    requests=1,
    tokens=30,
    first_token_ms=20.0,
    inter_token_ms=5.0,
    offline_budget_s=0.05,
)


# --- scenario texts -------------------------------------------------------------------

PROSE = (
    "The garden behind the old library has become a quiet place to read in the afternoon.",
    "Most visitors bring a book, find a bench under the maple trees and stay until dusk.",
    "In spring the volunteers plant tulips along the stone path; by summer the roses win.",
    "A small team of students keeps the paths clean and repairs the benches when they crack.",
    "They also run a classic workshop on composting, which is popular with young families.",
    "The librarians say the garden has brought new readers in, especially at the weekend.",
    "Some come for the flowers and leave with a stack of novels they never meant to borrow.",
    "There is talk of a covered reading corner so that people can stay outside when it rains.",
    "The plan would need approval from the council and a modest grant from the arts fund.",
    "For now the garden remains a simple, well loved space that asks nothing of its guests.",
)
_NAMES = (("jane", "doe"), ("omar", "haddad"), ("li", "wei"), ("maria", "garcia"), ("tom", "b"))
_PHONES = ("+1 (555) 010-4477", "555-010-2233", "+44 20 7946 0958", "(555) 010 9876")
# Test numbers that pass the Luhn check, written the ways people write them.
_CARDS = ("4111 1111 1111 1111", "5555-5555-5555-4444", "4012888888881881", "3782 822463 10005")
_PII_TEMPLATES = (
    "Please email {email} about the renewal or call {phone}; the card on file is {card}.",
    "Her new address is {email}, her desk phone is {phone} and she paid with card {card}.",
    "Update the record: reach {email} or {phone}, and bill card number {card} next month.",
)
# Where BPE tokenizers roughly cut: a word with its leading whitespace, or one mark.
_WORD_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
_CHARS_PER_TOKEN = 4


def pii_sentence(index: int) -> str:
    """A sentence with one email, one phone number and one card number."""
    first, last = _NAMES[index % len(_NAMES)]
    return _PII_TEMPLATES[index % len(_PII_TEMPLATES)].format(
        email=f"{first}.{last}{index}@example.com",
        phone=_PHONES[index % len(_PHONES)],
        card=_CARDS[index % len(_CARDS)],
    )


def chunk_text(text: str) -> tuple[str, ...]:
    """``text`` as the deltas a model would stream: word pieces of at most four characters.

    The benchmark sends these chunks explicitly (``sim.chunks``) so the live streams and
    the offline hold-back analysis see exactly the same pieces.
    """
    pieces: list[str] = []
    for match in _WORD_PIECE.finditer(text):
        word = match.group()
        pieces.extend(word[i : i + _CHARS_PER_TOKEN] for i in range(0, len(word), _CHARS_PER_TOKEN))
    return tuple(pieces)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One reply text, as prose and as a JSON document (for ``json_object`` requests)."""

    name: str
    chunks: tuple[str, ...]
    json_chunks: tuple[str, ...]

    @classmethod
    def build(cls, name: str, sentences: Iterator[str], tokens: int) -> Scenario:
        """Whole sentences until the prose has at least ``tokens`` chunks.

        The JSON document carries the same sentences, so it is never cut mid-value.
        """
        taken: list[str] = []
        count = 0
        while count < tokens:
            taken.append(next(sentences))
            count += len(chunk_text(" " + taken[-1]))
        prose = " ".join(taken)
        document = json.dumps({"notes": taken}, ensure_ascii=False)
        return cls(name, chunk_text(prose), chunk_text(document))

    def pieces(self, json_content: bool) -> tuple[str, ...]:
        return self.json_chunks if json_content else self.chunks


def build_scenarios(tokens: int) -> tuple[Scenario, ...]:
    """Ordinary prose (nothing to filter) and PII-dense prose (three matches a sentence)."""
    return (
        Scenario.build("prose", itertools.cycle(PROSE), tokens),
        Scenario.build("pii", map(pii_sentence, itertools.count()), tokens),
    )


# --- stage availability and configs ---------------------------------------------------


def unavailable_stage(variant: Variant) -> str | None:
    """Why ``variant`` cannot run now (a stage type not registered or not importable)."""
    for stage_type in variant.stages:
        try:
            resolve_stage(stage_type)
        except StageLoadError as exc:
            return f"stage type {stage_type!r} not available ({str(exc)[:120]})"
    return None


def sieve_yaml(upstream: str, stages: Sequence[str]) -> str:
    """A one-route streamsieve config in front of ``upstream`` with default stage params."""
    route: dict[str, Any] = {
        "name": ROUTE,
        "match": {"path": "/v1/*"},
        "upstream": {"url": upstream},
        "stages": [{"type": stage_type} for stage_type in stages],
    }
    return yaml.safe_dump({"routes": [route]}, sort_keys=False)


# --- server processes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What a server process runs; pickled to the child, so plain data only."""

    kind: Literal["simulator", "baseline", "streamsieve"]
    stages: tuple[str, ...] = ()


def _child_main(spec: ServerSpec, conn: Connection) -> None:
    """Entry point of a server process: serve until told to stop or the parent is gone.

    A proxy learns its upstream's URL over the pipe, so every process can start (and pay
    for its imports) at once instead of after the simulator has picked its port.
    """
    upstream = ""
    if spec.kind != "simulator":
        try:
            if not conn.poll(_START_TIMEOUT_S):
                return
            upstream = str(conn.recv())
        except EOFError:
            return
    # uvloop where installed, for every server alike: the baseline is a fair floor only
    # on the loop streamsieve itself runs on.
    loop.run(_child_serve(spec, upstream, conn))


async def _child_serve(spec: ServerSpec, upstream: str, conn: Connection) -> None:
    try:
        runner, port = await _start_server(spec, upstream)
    except Exception as exc:  # reported to the parent, which names the server that failed
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The pipe is read by the loop itself, so answering "cpu" never competes with a thread.
    loop.add_reader(conn.fileno(), _on_command, conn, stop)
    conn.send(("ready", port))
    try:
        await stop.wait()
    finally:
        loop.remove_reader(conn.fileno())
        await runner.cleanup()


def _on_command(conn: Connection, stop: asyncio.Event) -> None:
    """Answer ``"cpu"`` with the process's CPU seconds; anything else, or EOF, stops it."""
    try:
        command = conn.recv()
    except EOFError:
        stop.set()
        return
    if command == "cpu":
        conn.send(time.process_time())
    else:
        stop.set()


async def _start_server(spec: ServerSpec, upstream: str) -> tuple[web.AppRunner, int]:
    if spec.kind == "simulator":
        runner = await start_simulator(HOST, 0)
        return runner, simulator_port(runner)
    if spec.kind == "baseline":
        runner = await start_proxy(make_baseline_app(upstream), HOST, 0)
        return runner, bound_port(runner)
    _discard_logs()
    runner = await start_proxy(make_app(parse_config(sieve_yaml(upstream, spec.stages))), HOST, 0)
    return runner, bound_port(runner)


def _discard_logs() -> None:
    """Render the per-request log line as in production, but write it nowhere.

    Its cost belongs in the CPU figure; its text would only bury the results table.
    """
    logs.configure("json", "info")
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sink))


class Server:
    """A server in a process of its own, and the pipe to ask its CPU time or stop it."""

    def __init__(self, name: str, spec: ServerSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.port = 0
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_child_main, args=(spec, child), name=f"bench-{name}", daemon=True
        )
        self._process.start()
        child.close()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def serve_upstream(self, url: str) -> None:
        """Tell a proxy where its upstream listens; it starts serving once it knows."""
        self._conn.send(url)

    def wait_ready(self) -> None:
        """Block until the server listens; its start-up error as a BenchError otherwise."""
        reply = self._receive(_START_TIMEOUT_S, "start")
        if not (isinstance(reply, tuple) and reply[0] == "ready"):
            raise BenchError(f"{self.name} failed to start: {reply[1]}")
        self.port = int(reply[1])

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        self._conn.send("cpu")
        return float(self._receive(_CONTROL_TIMEOUT_S, "report its CPU time"))

    def stop(self) -> None:
        """Ask the server to stop; terminate, then kill, only this process if it does not."""
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        self._process.join(_STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(_STOP_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(_STOP_TIMEOUT_S)
        self._conn.close()

    def _receive(self, timeout: float, what: str) -> Any:
        if not self._conn.poll(timeout):
            raise BenchError(f"{self.name} did not {what} within {timeout:.0f} s")
        try:
            return self._conn.recv()
        except EOFError:
            code = self._process.exitcode
            raise BenchError(f"{self.name} exited (code {code}) before it could {what}") from None


@contextlib.contextmanager
def running_servers(variants: Sequence[Variant]) -> Iterator[dict[str, Server]]:
    """The simulator, the baseline and one streamsieve per variant, stopped on exit."""
    servers: dict[str, Server] = {}
    try:
        simulator = servers["direct"] = Server("simulator", ServerSpec("simulator"))
        servers["baseline"] = Server("baseline", ServerSpec("baseline"))
        for variant in variants:
            servers[variant.name] = Server(variant.name, ServerSpec("streamsieve", variant.stages))
        simulator.wait_ready()
        proxies = [server for server in servers.values() if server is not simulator]
        for server in proxies:
            server.serve_upstream(simulator.url)
        for server in proxies:
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


# --- load generator -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One target's share of a phase: C clients, each making R requests in turn."""

    target: str
    url: str
    body: bytes
    expected: str
    tokens: int
    requests: int
    timeout: aiohttp.ClientTimeout
    starts: tuple[float, ...] = (0.0,)
    """Seconds each client waits before its first request (one entry per client)."""


@dataclass(slots=True)
class Samples:
    """What the clients of one job observed."""

    ttfts: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    completed: int = 0
    changed: int = 0
    """Replies whose text differs from what the simulator sent (redactions, masks)."""
    errors: int = 0
    first_error: str | None = None
    wall_s: float = 0.0


def request_body(
    chunks: Sequence[str], settings: BenchSettings, *, json_content: bool, paced: bool = True
) -> bytes:
    """A streaming chat request whose ``sim`` object fixes the reply's chunks and pacing."""
    body: dict[str, Any] = {
        "model": "bench-model",
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me about the garden."}],
        "sim": {
            "chunks": list(chunks),
            "first_token_delay_ms": settings.first_token_ms if paced else 0.0,
            "inter_token_delay_ms": settings.inter_token_ms if paced else 0.0,
        },
    }
    if json_content:
        body["response_format"] = {"type": "json_object"}
    return json.dumps(body).encode()


def _content(data: str) -> str:
    chunk = json.loads(data)
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not choices:
        return ""
    delta = choices[0].get("delta") or {}
    text = delta.get("content")
    return text if isinstance(text, str) else ""


async def _stream_once(session: aiohttp.ClientSession, job: Job, samples: Samples) -> None:
    """One request; every text event is stamped when the read that carried it returned."""
    started = time.perf_counter()
    stamps: list[float] = []
    parts: list[str] = []
    done = False
    async with session.post(
        job.url, data=job.body, headers={"Content-Type": "application/json"}, timeout=job.timeout
    ) as response:
        if response.status != 200:
            raise BenchError(f"HTTP {response.status}: {(await response.text())[:200]}")
        decoder = SSEDecoder()
        async for data in response.content.iter_any():
            now = time.perf_counter()
            for item in decoder.feed(data):
                if not isinstance(item, Event):
                    continue
                if item.data == "[DONE]":
                    done = True
                elif text := _content(item.data):
                    stamps.append(now)
                    parts.append(text)
    if not done or not stamps:
        raise BenchError("stream ended without text or without [DONE]")
    samples.ttfts.append(stamps[0] - started)
    samples.gaps.extend(b - a for a, b in itertools.pairwise(stamps))
    samples.completed += 1
    samples.changed += "".join(parts) != job.expected


async def _client(
    session: aiohttp.ClientSession, job: Job, samples: Samples, start_s: float
) -> None:
    await asyncio.sleep(start_s)
    for _ in range(job.requests):
        try:
            await _stream_once(session, job, samples)
        except (aiohttp.ClientError, TimeoutError, BenchError, SSEError, ValueError) as exc:
            samples.errors += 1
            samples.first_error = samples.first_error or f"{type(exc).__name__}: {exc}"[:200]


async def _run_job(session: aiohttp.ClientSession, job: Job) -> Samples:
    samples = Samples()
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for start_s in job.starts:
            group.create_task(_client(session, job, samples, start_s))
    samples.wall_s = time.perf_counter() - started
    return samples


def client_session() -> aiohttp.ClientSession:
    """One pooled session per scenario, so measured requests reuse warmed connections.

    Connection set-up is the same for every target and real SDK clients keep connections
    alive, so it belongs neither in TTFT nor in what a proxy adds to it.
    """
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=300))


async def run_phase(session: aiohttp.ClientSession, jobs: Sequence[Job]) -> list[Samples]:
    """Run ``jobs`` at the same time; the whole phase is bounded by its slowest request."""
    budget = max(job.requests * job.timeout.total for job in jobs if job.timeout.total) + 10.0
    try:
        async with asyncio.timeout(budget):
            return list(await asyncio.gather(*(_run_job(session, job) for job in jobs)))
    except TimeoutError:
        raise BenchError(f"a phase ran past its {budget:.0f} s bound") from None


# --- statistics -----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile, interpolating between ranks (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Dist:
    """p50 and p99 of a sample, in the unit its field name says."""

    p50: float | None
    p99: float | None

    @classmethod
    def of(cls, values: Sequence[float], scale: float = 1.0) -> Dist:
        scaled = [v * scale for v in values]
        return cls(percentile(scaled, 50), percentile(scaled, 99))

    def minus(self, other: Dist) -> Dist:
        """Element-wise difference (what a proxy adds to ``other``)."""
        return Dist(_sub(self.p50, other.p50), _sub(self.p99, other.p99))


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


@dataclass(frozen=True, slots=True)
class TargetResult:
    """One target in one scenario."""

    target: str
    completed: int
    errors: int
    first_error: str | None
    changed: int
    tokens: int
    """Upstream text deltas of the completed replies."""
    wall_s: float
    tokens_per_s: float
    ttft_ms: Dist
    gap_ms: Dist
    added_ttft_ms: Dist | None
    added_gap_ms: Dist | None
    cpu_s: float | None
    cpu_s_per_1k_tokens: float | None
    cpu_vs_baseline: float | None


@dataclass(frozen=True, slots=True)
class HoldbackResult:
    """A stage chain run offline over one scenario's chunks."""

    chain: str
    text: Literal["prose", "json"]
    feeds: int
    held_p50: float | None
    held_p99: float | None
    held_max: int
    cpu_ms_per_1k_chars: float


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """The live targets and the offline chains of one scenario."""

    name: str
    tokens_per_reply: int
    chars_per_reply: int
    targets: list[TargetResult]
    holdback: list[HoldbackResult]


@dataclass(frozen=True, slots=True)
class Check:
    """One of the spec's targets against what was measured (reported, never asserted)."""

    goal: str
    scenario: str
    target: str
    measured: float | None
    limit: float
    ok: bool

    @classmethod
    def of(
        cls, goal: str, scenario: ScenarioResult, target: str, measured: float | None, limit: float
    ) -> Check:
        """``measured`` against an upper ``limit``; a missing figure never passes."""
        ok = measured is not None and measured <= limit
        return cls(goal, scenario.name, target, measured, limit, ok)


@dataclass(frozen=True, slots=True)
class BenchResult:
    """Everything one run measured, with the settings and stage types it ran with."""

    settings: dict[str, Any]
    stage_types: list[str]
    skipped: list[str]
    scenarios: list[ScenarioResult]
    checks: list[Check]
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        """Plain dicts and lists, ready for ``json.dumps``."""
        return dataclasses.asdict(self)


def summarise(
    job: Job, samples: Samples, cpu_s: float | None, reference: Mapping[str, TargetResult]
) -> TargetResult:
    """Figures for one target; ``reference`` holds the direct and baseline results so far."""
    tokens = samples.completed * job.tokens
    ttft, gap = Dist.of(samples.ttfts, 1000.0), Dist.of(samples.gaps, 1000.0)
    direct = reference.get("direct")
    per_1k = cpu_s / tokens * 1000.0 if cpu_s is not None and tokens else None
    baseline = reference.get("baseline")
    base_per_1k = baseline.cpu_s_per_1k_tokens if baseline else None
    if job.target == "baseline":
        base_per_1k = per_1k
    return TargetResult(
        target=job.target,
        completed=samples.completed,
        errors=samples.errors,
        first_error=samples.first_error,
        changed=samples.changed,
        tokens=tokens,
        wall_s=samples.wall_s,
        tokens_per_s=tokens / samples.wall_s if samples.wall_s else 0.0,
        ttft_ms=ttft,
        gap_ms=gap,
        added_ttft_ms=ttft.minus(direct.ttft_ms) if direct else None,
        added_gap_ms=gap.minus(direct.gap_ms) if direct else None,
        cpu_s=cpu_s,
        cpu_s_per_1k_tokens=per_1k,
        cpu_vs_baseline=_ratio(per_1k, base_per_1k),
    )


# --- one scenario against every target ------------------------------------------------


def make_jobs(
    scenario: Scenario,
    settings: BenchSettings,
    servers: Mapping[str, Server],
    variants: Sequence[Variant],
    *,
    warm_up: bool = False,
) -> list[Job]:
    """Direct, baseline, then each variant.

    A warm-up job makes one unpaced request per client at once, which opens every pooled
    connection (client to proxy, proxy to simulator) the measured requests will use.
    """
    json_of = {"direct": False, "baseline": False} | {v.name: v.json_content for v in variants}
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s())
    clients = settings.concurrency
    # Clients of all targets start spread over one token interval: in lock-step, every
    # stream's token would land in the same millisecond and measure a thundering herd.
    step = settings.inter_token_ms / 1000.0 / (clients * len(json_of))
    jobs = []
    for index, (name, json_content) in enumerate(json_of.items()):
        chunks = scenario.pieces(json_content)
        jobs.append(
            Job(
                target=name,
                url=servers[name].url + CHAT_PATH,
                body=request_body(chunks, settings, json_content=json_content, paced=not warm_up),
                expected="".join(chunks),
                tokens=len(chunks),
                requests=1 if warm_up else settings.requests,
                timeout=timeout,
                starts=tuple(
                    0.0 if warm_up else (k * len(json_of) + index) * step for k in range(clients)
                ),
            )
        )
    return jobs


async def measure_scenario(
    session: aiohttp.ClientSession,
    scenario: Scenario,
    settings: BenchSettings,
    servers: Mapping[str, Server],
    variants: Sequence[Variant],
) -> list[TargetResult]:
    """Warm every target up, then load it; all targets at once unless ``sequential``."""
    warm = make_jobs(scenario, settings, servers, variants, warm_up=True)
    for job, samples in zip(warm, await run_phase(session, warm), strict=True):
        if samples.errors:
            raise BenchError(f"warm-up of {job.target} failed: {samples.first_error}")
    jobs = make_jobs(scenario, settings, servers, variants)
    phases = [[job] for job in jobs] if settings.sequential else [jobs]
    measured: list[tuple[Job, Samples, float | None]] = []
    for phase in phases:
        cpu_before = {job.target: servers[job.target].cpu_seconds() for job in phase}
        outcomes = await run_phase(session, phase)
        for job, samples in zip(phase, outcomes, strict=True):
            used = servers[job.target].cpu_seconds() - cpu_before[job.target]
            measured.append((job, samples, None if job.target == "direct" else used))
    results: dict[str, TargetResult] = {}
    for job, samples, cpu in measured:  # direct and baseline come first: the references
        results[job.target] = summarise(job, samples, cpu, results)
    return list(results.values())


# --- offline hold-back ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OfflineChain:
    """A stage chain to run offline, and whether it reads the JSON rendition."""

    label: str
    stages: tuple[str, ...]
    json_content: bool


def offline_chains(variants: Sequence[Variant]) -> list[OfflineChain]:
    """Each stage alone, then each variant's whole chain.

    A stage is timed on JSON text only when every variant using it asks for JSON, since
    that is the only text it will see in this benchmark.
    """
    chains: dict[str, OfflineChain] = {}
    for stage_type in dict.fromkeys(t for v in variants for t in v.stages):
        users = [v for v in variants if stage_type in v.stages]
        json_only = all(v.json_content for v in users)
        chains[stage_type] = OfflineChain(stage_type, (stage_type,), json_only)
    for variant in variants:
        label = "+".join(variant.stages)
        if len(variant.stages) > 1 and label not in chains:
            chains[label] = OfflineChain(label, variant.stages, variant.json_content)
    return list(chains.values())


async def _drive(chain: Chain, chunks: Sequence[str], held: list[int] | None) -> None:
    for chunk in chunks:
        step = chain.start(chunk, None)
        if not isinstance(step, Release):
            await chain.complete(step)  # only async stages ever make the loop wait
        if held is not None:
            held.append(chain.held)
    step = chain.start("", ChannelEnd.COMPLETE)
    if not isinstance(step, Release):
        await chain.complete(step)


async def measure_holdback(
    spec: OfflineChain, scenario: Scenario, budget_s: float
) -> HoldbackResult:
    """Held characters after every feed, and CPU per 1,000 characters, of one chain."""
    plan = build_plans(parse_config(sieve_yaml("http://127.0.0.1:9", spec.stages)))[ROUTE]
    kind = ChannelKind.JSON if spec.json_content else ChannelKind.TEXT
    channel = Channel("choice0.content", kind, route=ROUTE)
    chunks = scenario.pieces(spec.json_content)
    held: list[int] = []
    await _drive(ResponseFilter(plan).chain(channel), chunks, held)
    runs, started = 0, time.process_time()
    # Bounded in count and in CPU time: a slow stage gets fewer runs, never a longer wait.
    while runs < 10_000 and (runs == 0 or time.process_time() - started < budget_s):
        await _drive(ResponseFilter(plan).chain(channel), chunks, None)
        runs += 1
    cpu = time.process_time() - started
    chars = sum(map(len, chunks)) * runs
    return HoldbackResult(
        chain=spec.label,
        text="json" if spec.json_content else "prose",
        feeds=len(held),
        held_p50=percentile(held, 50),
        held_p99=percentile(held, 99),
        held_max=max(held, default=0),
        cpu_ms_per_1k_chars=cpu / chars * 1e6,
    )


# --- the whole run --------------------------------------------------------------------


def split_variants(variants: Sequence[Variant]) -> tuple[list[Variant], list[str]]:
    """The variants whose stages resolve now, and a line for each one skipped."""
    usable, skipped = [], []
    for variant in variants:
        reason = unavailable_stage(variant)
        if reason is None:
            usable.append(variant)
        else:
            skipped.append(f"{variant.name}: {reason}")
    return usable, skipped


def spec_checks(
    scenarios: Sequence[ScenarioResult], variants: Sequence[Variant], *, paced: bool
) -> list[Check]:
    """The spec's latency, CPU and hold-back targets, for every target they apply to."""
    sieves = {v.name for v in variants}
    with_stages = {v.name for v in variants if v.stages}
    checks = []
    for scenario in scenarios:
        for row in scenario.targets:
            if paced and row.target in sieves:
                added = row.added_ttft_ms.p50 if row.added_ttft_ms else None
                checks.append(Check.of("added TTFT p50 <= 1 ms", scenario, row.target, added, 1.0))
            if row.target in with_stages:
                ratio = row.cpu_vs_baseline
                checks.append(
                    Check.of("CPU/token <= 1.5x baseline", scenario, row.target, ratio, 1.5)
                )
        if scenario.name == "prose":
            checks.extend(
                Check.of("nothing held on clean prose", scenario, h.chain, h.held_max, 0)
                for h in scenario.holdback
                if h.text == "prose"
            )
    return checks


async def _run_all(
    settings: BenchSettings, servers: Mapping[str, Server], variants: Sequence[Variant]
) -> list[ScenarioResult]:
    results = []
    chains = offline_chains(variants)
    for scenario in build_scenarios(settings.tokens):
        async with client_session() as session:
            targets = await measure_scenario(session, scenario, settings, servers, variants)
        holdback = [await measure_holdback(c, scenario, settings.offline_budget_s) for c in chains]
        results.append(
            ScenarioResult(
                name=scenario.name,
                tokens_per_reply=len(scenario.chunks),
                chars_per_reply=sum(map(len, scenario.chunks)),
                targets=targets,
                holdback=holdback,
            )
        )
    return results


def run_benchmark(settings: BenchSettings) -> BenchResult:
    """Start the servers, measure every scenario against every available target, stop them."""
    started = time.perf_counter()
    variants, skipped = split_variants(settings.variants)
    with running_servers(variants) as servers:
        scenarios = asyncio.run(_run_all(settings, servers, variants))
    return BenchResult(
        settings=dataclasses.asdict(settings),
        stage_types=known_types(),
        skipped=skipped,
        scenarios=scenarios,
        checks=spec_checks(scenarios, variants, paced=settings.paced),
        duration_s=time.perf_counter() - started,
    )


# --- report ---------------------------------------------------------------------------


def _num(value: float | None, width: int, digits: int = 2) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _target_row(row: TargetResult) -> str:
    added_ttft = row.added_ttft_ms or Dist(None, None)
    added_gap = row.added_gap_ms or Dist(None, None)
    return (
        f"{row.target:<15}{_num(row.ttft_ms.p50, 9)}{_num(row.ttft_ms.p99, 8)}"
        f"{_num(row.gap_ms.p50, 9)}{_num(row.gap_ms.p99, 8)}"
        f"{_num(added_ttft.p50, 10)}{_num(added_gap.p50, 9)}{_num(added_gap.p99, 9)}"
        f"{_num(row.cpu_s_per_1k_tokens, 11, 3)}{_num(row.cpu_vs_baseline, 8)}"
        f"{row.tokens_per_s:>9.0f}{row.changed:>5}/{row.completed:<4}{row.errors:>4}"
    )


def render(result: BenchResult) -> str:
    """The human-readable report: settings, one table per scenario, then the spec checks."""
    s = result.settings
    pacing = (
        f"paced: first token {s['first_token_ms']:g} ms, then every {s['inter_token_ms']:g} ms"
        if s["first_token_ms"] or s["inter_token_ms"]
        else "unpaced (zero delays)"
    )
    mode = "one target at a time" if s["sequential"] else "all targets at once"
    lines = [
        f"streamsieve benchmark: {s['concurrency']} clients x {s['requests']} requests per "
        f"target, {pacing}, {mode}",
        f"stage types registered: {', '.join(result.stage_types) or 'none'}",
        *(f"skipped {line}" for line in result.skipped),
    ]
    for scenario in result.scenarios:
        lines += [
            "",
            f"scenario {scenario.name}: {scenario.tokens_per_reply} tokens, "
            f"{scenario.chars_per_reply} chars per reply (ms; CPU in proxy-process seconds)",
            f"{'target':<15}{'TTFT p50':>9}{'p99':>8}{'gap p50':>9}{'p99':>8}"
            f"{'+TTFT p50':>10}{'+gap p50':>9}{'+gap p99':>9}{'CPU/1k tok':>11}"
            f"{'x base':>8}{'tok/s':>9}{'changed':>10}{'err':>4}",
            *(_target_row(row) for row in scenario.targets),
        ]
        if scenario.holdback:
            lines += [
                f"  offline {'chain':<28}{'text':>6}{'held p50':>9}{'p99':>6}{'max':>6}"
                f"{'CPU ms/1k chars':>17}",
                *(
                    f"  offline {h.chain:<28}{h.text:>6}{_num(h.held_p50, 9, 1)}"
                    f"{_num(h.held_p99, 6, 1)}{h.held_max:>6}{h.cpu_ms_per_1k_chars:>17.3f}"
                    for h in scenario.holdback
                ),
            ]
        errors = [f"  {t.target}: {t.first_error}" for t in scenario.targets if t.first_error]
        lines += [f"errors in {scenario.name}:", *errors] if errors else []
    lines += ["", "spec targets:"] + [
        f"  {'ok  ' if c.ok else 'MISS'} {c.goal:<30} {c.scenario:<6} {c.target:<28}"
        f" measured {_num(c.measured, 0)} (limit {c.limit:g})"
        for c in result.checks
    ]
    lines.append(f"\nfinished in {result.duration_s:.1f} s")
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> tuple[BenchSettings, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, help="clients per target (default 8)")
    parser.add_argument("--requests", type=int, help="requests per client (default 3)")
    parser.add_argument("--tokens", type=int, help="text deltas per reply, about (default 200)")
    parser.add_argument("--first-token-ms", type=float, help="upstream TTFT (default 50)")
    parser.add_argument("--inter-token-ms", type=float, help="upstream gap (default 20)")
    parser.add_argument(
        "--unpaced", action="store_true", help="zero delays, one target at a time: CPU-bound"
    )
    parser.add_argument(
        "--sequential", action="store_true", help="load one target at a time (paced runs too)"
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run, for a smoke test")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else BenchSettings()
    if args.unpaced:
        base = dataclasses.replace(base, first_token_ms=0.0, inter_token_ms=0.0, sequential=True)
    given = {
        "concurrency": args.concurrency,
        "requests": args.requests,
        "tokens": args.tokens,
        "first_token_ms": args.first_token_ms,
        "inter_token_ms": args.inter_token_ms,
    }
    settings = dataclasses.replace(
        base,
        sequential=base.sequential or args.sequential,
        **{k: v for k, v in given.items() if v is not None},
    )
    if settings.concurrency < 1 or settings.requests < 1 or settings.tokens < 1:
        parser.error("--concurrency, --requests and --tokens must be at least 1")
    return settings, args.json


def main(argv: Sequence[str] | None = None) -> int:
    settings, json_path = parse_args(argv)
    # Stage overflow warnings from the offline runs would interleave with the table.
    logs.configure("console", "error")
    try:
        result = run_benchmark(settings)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    print(render(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
