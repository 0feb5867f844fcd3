"""Replay a recorded upstream stream through a route's stages, offline; and record one.

``streamsieve replay`` shows a moderation team, before they deploy a config, what its stages
do to a real stream: the text a client would see per channel, the findings, and per stage
how many characters it held and how long it took. The recording goes through the same
:class:`~pipeline.sse.SSEDecoder`, protocol codec, driver and stage engine as live traffic; only
the network is missing. ``--rechunk SEED`` cuts the bytes at random (seeded) points, as a
real network would, so one recording can show that the output does not depend on them.

The clock of a replay is the upstream event index ("step"): a recording made with
``curl -N`` keeps the bytes but not when they arrived. Bounds in characters apply as live;
``max_holdback_ms`` bounds never fire, since a replay does not wait between events.

To see per stage what went in and out, the replay subscribes to the engine's observer hook
(:class:`_Recorder`); the stages themselves run unwrapped, as live. ``streamsieve record``
saves the raw bytes of a streamed reply, exactly like::

    curl -N -sS https://api.openai.com/v1/chat/completions \\
      -H "Authorization: Bearer $OPENAI_API_KEY" -H "Content-Type: application/json" \\
      -d @request.json -o recording.sse
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import re
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from pipeline.config import ConfigError, LoadedConfig, Protocol, load_config
from pipeline.driver import StreamDriver
from pipeline.engine import ResponseFilter, RoutePlan, build_plans
from pipeline.plan import Method
from pipeline.protocols import ADAPTERS
from pipeline.protocols.request import BadRequestError, RequestInfo
from pipeline.sse import Comment, Event, SSEDecoder
from pipeline.stage import (
    Channel,
    Finding,
    Release,
)

__all__ = [
    "ReplayError",
    "ReplayResult",
    "StageCall",
    "StageStats",
    "add_commands",
    "detect_protocol",
    "rechunk",
    "record",
    "replay",
]


class ReplayError(Exception):
    """A replay that cannot run; the message says what to pass or fix."""


@dataclass(frozen=True, slots=True)
class StageCall:
    """One call of one opened stage, as the recording proxy saw it."""

    stage: str
    channel: str
    step: int
    """Index of the upstream event being processed when the call happened."""
    method: str
    """``feed`` or ``finish``."""
    fed: str
    released: str
    held: int
    """``held`` right after the call (0 when the call raised: the engine's policy decided)."""
    seconds: float
    block: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StageStats:
    """A stage's figures over the whole replay."""

    stage: str
    calls: int
    held_max: int
    held_p50: float
    seconds: float

    @property
    def micros_per_call(self) -> float:
        return self.seconds * 1e6 / self.calls if self.calls else 0.0


Pieces = dict[str, list[tuple[int, str]]]
"""Per channel key, the text pieces in order with the step each appeared at."""


@dataclass(slots=True)
class ReplayResult:
    """Everything one replay observed."""

    route: str
    protocol: Protocol
    reads: int
    size: int
    events: int = 0
    upstream: Pieces = field(default_factory=dict)
    """What the upstream sent per channel, and when (step)."""
    client: Pieces = field(default_factory=dict)
    """What the client received per channel, and when (step)."""
    calls: list[StageCall] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    blocked: str | None = None
    client_bytes: bytes = b""
    stage_ids: tuple[str, ...] = ()

    def texts(self) -> dict[str, str]:
        """The client-side text per channel."""
        return {key: "".join(text for _, text in pieces) for key, pieces in self.client.items()}

    def stats(self) -> list[StageStats]:
        """Per stage: calls, held characters (max, median over calls), time spent."""
        out = []
        for stage in self.stage_ids:
            calls = [c for c in self.calls if c.stage == stage]
            helds = [c.held for c in calls] or [0]
            out.append(
                StageStats(
                    stage,
                    len(calls),
                    max(helds),
                    statistics.median(helds),
                    sum(c.seconds for c in calls),
                )
            )
        return out


class _Log:
    """Where every recorder writes, with the step the replay is at."""

    __slots__ = ("calls", "step")

    def __init__(self) -> None:
        self.step = 0
        self.calls: list[StageCall] = []


class _Recorder:
    """The engine's observer during a replay: every stage call becomes a :class:`StageCall`."""

    __slots__ = ("_log",)

    def __init__(self, log: _Log) -> None:
        self._log = log

    def watch(self, stage: str, channel: Channel) -> _Watch:
        return _Watch(stage, channel.key, self._log)


class _Watch:
    """Logs the calls of one opened stage, with the step the replay is at."""

    __slots__ = ("_channel", "_log", "_stage_id")

    def __init__(self, stage_id: str, channel: str, log: _Log) -> None:
        self._stage_id = stage_id
        self._channel = channel
        self._log = log

    def called(
        self,
        method: Method,
        fed: str,
        release: Release | None,
        held: int,
        seconds: float,
        error: BaseException | None,
    ) -> None:
        self._log.calls.append(
            StageCall(
                self._stage_id,
                self._channel,
                self._log.step,
                method,
                fed,
                release.text if release is not None else "",
                held,
                seconds,
                release.block if release is not None else None,
                None if error is None else f"{type(error).__name__}: {error}",
            )
        )


class _Texts:
    """The driver's tap during a replay: text in and out per channel, with the step."""

    __slots__ = ("_log", "_result")

    def __init__(self, result: ReplayResult, log: _Log) -> None:
        self._result = result
        self._log = log

    def fed(self, channel: str, text: str) -> None:
        self._result.upstream.setdefault(channel, []).append((self._log.step, text))

    def released(self, channel: str, text: str) -> None:
        self._result.client.setdefault(channel, []).append((self._log.step, text))


def _recording_plan(plan: RoutePlan, log: _Log) -> RoutePlan:
    """``plan`` observed so that every stage call is logged."""
    return dataclasses.replace(plan, observer=_Recorder(log))


_PROTOCOL_HINTS: tuple[tuple[str, Protocol], ...] = (
    ("chat.completion.chunk", Protocol.OPENAI_CHAT),
    ("text_completion", Protocol.OPENAI_COMPLETIONS),
)


def detect_protocol(data: bytes) -> Protocol:
    """The protocol of a recorded stream, from its first event that tells."""
    decoder = SSEDecoder(max_event_bytes=max(1, len(data)))
    for item in decoder.feed(data):
        if not isinstance(item, Event):
            continue
        if item.event == "message_start":
            return Protocol.ANTHROPIC_MESSAGES
        try:
            payload = json.loads(item.data)
        except json.JSONDecodeError:
            continue
        if not isinstance(payload, dict):
            continue
        kind = payload.get("type")
        if kind == "message_start":
            return Protocol.ANTHROPIC_MESSAGES
        if isinstance(kind, str) and kind.startswith("response."):
            return Protocol.OPENAI_RESPONSES
        for name, protocol in _PROTOCOL_HINTS:
            if payload.get("object") == name:
                return protocol
    raise ReplayError(
        "cannot tell the recording's protocol from its events; pass --protocol "
        f"({', '.join(p.value for p in ADAPTERS)})"
    )


_EVENT_END = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)|(?<=\r\r)")


def rechunk(data: bytes, seed: int | None) -> list[bytes]:
    """The reads a replay feeds: one per event, or random cuts when ``seed`` is given.

    Random reads are mostly tiny (1-8 bytes, splitting UTF-8 sequences and line ends) and
    sometimes large (up to 512 bytes, several events at once), as real networks deliver.
    """
    if seed is None:
        return [piece for piece in _EVENT_END.split(data) if piece]
    rng = random.Random(seed)  # noqa: S311 - simulated network reads, not cryptography
    reads = []
    at = 0
    while at < len(data):
        size = rng.randint(1, 8) if rng.random() < 0.8 else rng.randint(9, 512)
        reads.append(data[at : at + size])
        at += size
    return reads


def _choose_protocol(requested: str | None, plan: RoutePlan, data: bytes) -> Protocol:
    if requested:
        protocol = Protocol(requested)
    elif plan.route.protocol not in (Protocol.AUTO, Protocol.PASSTHROUGH):
        protocol = plan.route.protocol
    else:
        protocol = detect_protocol(data)
    if protocol not in ADAPTERS:
        raise ReplayError(
            f"protocol {protocol.value!r} has no codec to filter it; "
            f"known: {', '.join(p.value for p in ADAPTERS)}"
        )
    return protocol


async def replay(
    config: LoadedConfig,
    route: str,
    data: bytes,
    *,
    seed: int | None = None,
    protocol: str | None = None,
    request: RequestInfo | None = None,
) -> ReplayResult:
    """Run the recorded upstream bytes ``data`` through ``route``'s stages, offline."""
    plans = build_plans(config)
    if route not in plans:
        raise ReplayError(f"no route named {route!r}; routes: {', '.join(plans)}")
    chosen = _choose_protocol(protocol, plans[route], data)
    info = request or RequestInfo(stream=True)
    log = _Log()
    reads = rechunk(data, seed)
    result = ReplayResult(route, chosen, len(reads), len(data))
    plan = _recording_plan(plans[route], log)
    result.stage_ids = tuple(bound.id for bound in plan.stages)
    driver = StreamDriver(
        ADAPTERS[chosen].stream, ResponseFilter(plan), info, tap=_Texts(result, log)
    )
    decoder = SSEDecoder(config.proxy.limits.max_event_bytes)
    out: list[bytes] = []

    async def deliver(items: Sequence[Event | Comment]) -> None:
        for item in items:
            if driver.done:
                return
            log.step = result.events
            result.events += 1
            out.append(await driver.feed([item]))

    for piece in reads:
        await deliver(decoder.feed(piece))
        if driver.done:
            break
    await deliver(decoder.close())
    out.append(await driver.end())
    result.calls = log.calls
    result.findings = driver.findings
    result.blocked = driver.blocked
    result.client_bytes = b"".join(out)
    return result


def format_report(result: ReplayResult, seed: int | None) -> str:
    """The plain-text summary ``streamsieve replay`` prints."""
    how = f"random reads, seed {seed}" if seed is not None else "one read per event"
    lines = [
        f"route {result.route!r} ({result.protocol.value}): {result.events} events, "
        f"{result.size} bytes in {result.reads} reads ({how})",
        "",
    ]
    for key, text in result.texts().items():
        lines.append(f"{key}:")
        lines.extend(f"  {line}" for line in text.splitlines() or [""])
    if result.blocked:
        lines += ["", f"blocked: {result.blocked}"]
    lines += ["", f"findings: {len(result.findings)}"]
    lines.extend(
        f"  {f.stage:<16} {f.channel:<24} {f.rule:<20} {f.action:<9} [{f.start}, {f.end})"
        for f in result.findings
    )
    head = f"{'stage':<16} {'calls':>6} {'held max':>9} {'held p50':>9} {'ms':>9} {'µs/call':>8}"
    lines += ["", f"  {head}"]
    lines.extend(
        f"  {s.stage:<16} {s.calls:>6} {s.held_max:>9} {s.held_p50:>9.1f} "
        f"{s.seconds * 1e3:>9.3f} {s.micros_per_call:>8.1f}"
        for s in result.stats()
    )
    return "\n".join(lines)


def _request_info(path: Path | None) -> RequestInfo:
    if path is None:
        return RequestInfo(stream=True)
    try:
        return RequestInfo.parse(path.read_bytes())
    except (OSError, BadRequestError) as exc:
        raise ReplayError(f"cannot use --request {path}: {exc}") from None


def _replay_command(args: argparse.Namespace) -> int:
    """``streamsieve replay``: exit 0 after printing the report, 2 when it cannot run."""
    try:
        config = load_config(args.config)
        data = Path(args.recording).read_bytes()
        result = asyncio.run(
            replay(
                config,
                args.route,
                data,
                seed=args.rechunk,
                protocol=args.protocol,
                request=_request_info(args.request),
            )
        )
    except ConfigError as exc:
        print(f"streamsieve replay: the config has problems:\n{exc}", file=sys.stderr)
        return 2
    except (OSError, ReplayError) as exc:
        print(f"streamsieve replay: {exc}", file=sys.stderr)
        return 2
    print(format_report(result, args.rechunk))
    if args.html:
        from pipeline.replay_html import render_html

        Path(args.html).write_text(render_html(result), encoding="utf-8")
        print(f"\nwrote {args.html}")
    return 0


@dataclass(frozen=True, slots=True)
class Recording:
    """What ``record`` saved."""

    status: int
    content_type: str
    size: int


async def record(
    url: str, out: Path, data: bytes, headers: Mapping[str, str] | None = None
) -> Recording:
    """POST ``data`` to ``url`` and write the reply's raw bytes to ``out`` as they arrive."""
    sent = {"Content-Type": "application/json", "Accept-Encoding": "identity", **(headers or {})}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    size = 0
    async with (
        aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session,
        session.post(url, data=data, headers=sent) as reply,
    ):
        with out.open("wb") as file:
            async for piece in reply.content.iter_any():
                file.write(piece)
                size += len(piece)
        return Recording(reply.status, reply.content_type, size)


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def _record_command(args: argparse.Namespace) -> int:
    """``streamsieve record``: exit 0 when a 2xx reply was saved, 1 otherwise."""
    body: str = args.data
    try:
        data = Path(body[1:]).read_bytes() if body.startswith("@") else body.encode()
        saved = asyncio.run(record(args.url, Path(args.out), data, dict(args.header)))
    except (OSError, aiohttp.ClientError) as exc:
        print(f"streamsieve record: {exc}", file=sys.stderr)
        return 1
    print(f"saved {saved.size} bytes (HTTP {saved.status}, {saved.content_type}) to {args.out}")
    if saved.status >= 300:
        print("streamsieve record: the upstream answered with an error", file=sys.stderr)
        return 1
    return 0


_CURL = """equivalent with curl (-N: no buffering, -o: the raw bytes):
  curl -N -sS URL -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY" \\
    -d @request.json -o recording.sse"""


def add_commands(commands: Any) -> None:
    """Add ``replay`` and ``record`` to the CLI's sub-parsers; each sets ``handler``."""
    run = commands.add_parser(
        "replay",
        help="run a recorded upstream stream through a route's stages, offline",
        description="Run a recorded upstream SSE stream through a route's stages offline, "
        "with the real decoder and protocol codec; print the client-side text per channel, "
        "the findings, and per stage the characters held and the time spent.",
    )
    run.add_argument("recording", type=Path, help="raw SSE bytes (streamsieve record, curl -N)")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--route", required=True, help="the route whose stages to run")
    run.add_argument("--rechunk", type=int, metavar="SEED", help="random reads, seeded")
    run.add_argument("--protocol", choices=[p.value for p in ADAPTERS])
    run.add_argument("--request", type=Path, help="the request body JSON (JSON mode, tools)")
    run.add_argument("--html", type=Path, metavar="REPORT.html", help="write a visual report")
    run.set_defaults(handler=_replay_command)

    rec = commands.add_parser(
        "record",
        help="POST a request and save the streamed reply's raw bytes",
        epilog=_CURL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rec.add_argument("--url", required=True)
    rec.add_argument("--out", type=Path, required=True)
    rec.add_argument("--header", type=_header, action="append", default=[], metavar="'K: V'")
    rec.add_argument("--data", required=True, help="the JSON body, or @file")
    rec.set_defaults(handler=_record_command)
