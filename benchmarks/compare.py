"""Side by side in one run: what streamsieve costs per token against a parsing floor.

One command, one set of server processes, the same rounds for every target::

    .venv/bin/python benchmarks/compare.py            # 3 rounds, about 5 minutes on 2 cores
    .venv/bin/python benchmarks/compare.py --quick    # smoke run, a few seconds

Targets (each a process of its own, on uvloop where installed): ``direct`` (the simulator,
no proxy), ``baseline`` (``baseline_proxy.py``: decode each SSE event, ``json.loads`` and
``json.dumps`` its data, encode it), and streamsieve with no stages, with ``profanity``, and
with ``redact`` + ``profanity``. Loads: *saturated* (32 streams, no delays: CPU per token
dominates; targets one at a time so each has the cores to itself), *paced* (8 streams,
10 ms per token, all targets at once so they share the same ambient noise) and *isolated*
(one stream at a time, 30 requests of 20 tokens at 10 ms, one target at a time: the
latency the proxy itself adds, with nothing competing for the cores).

Reported per load and target: proxy CPU µs per upstream token and its ratio to the
baseline's (CPU summed over the rounds), TTFT p50 (median of the rounds' p50s) and what the
target adds to the baseline's TTFT p50. Every load is bounded: a request that does not
finish within its timeout is an error, and the run stops with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.bench import (
    BenchError,
    BenchSettings,
    Scenario,
    Server,
    TargetResult,
    Variant,
    build_scenarios,
    client_session,
    measure_scenario,
    running_servers,
    split_variants,
)
from pipeline import logs

VARIANTS = (
    Variant("sieve", ()),
    Variant("sieve+profanity", ("profanity",)),
    Variant("sieve+redact+profanity", ("redact", "profanity")),
)
LOADS = {
    "saturated": BenchSettings(
        concurrency=32,
        requests=1,
        tokens=1000,
        first_token_ms=0.0,
        inter_token_ms=0.0,
        sequential=True,
        variants=VARIANTS,
        slack_s=120.0,  # the warm-up loads every target at once: 160 unpaced streams
    ),
    "paced": BenchSettings(
        concurrency=8, requests=1, tokens=200, first_token_ms=0.0, inter_token_ms=10.0
    ),
    # One stream at a time, one target at a time: what the proxy adds to TTFT with no
    # other stream or target competing for the two cores.
    "isolated": BenchSettings(
        concurrency=1,
        requests=30,
        tokens=20,
        first_token_ms=0.0,
        inter_token_ms=10.0,
        sequential=True,
        variants=VARIANTS,
    ),
}
QUICK_LOADS = {
    name: dataclasses.replace(
        settings,
        concurrency=min(4, settings.concurrency),
        tokens=min(60, settings.tokens),
        requests=min(5, settings.requests),
    )
    for name, settings in LOADS.items()
}


@dataclass(slots=True)
class Tally:
    """One target under one load, over every round."""

    cpu_s: float = 0.0
    tokens: int = 0
    errors: int = 0
    first_error: str | None = None
    ttft_p50_ms: list[float] = dataclasses.field(default_factory=list)

    def add(self, result: TargetResult) -> None:
        self.cpu_s += result.cpu_s or 0.0
        self.tokens += result.tokens
        self.errors += result.errors
        self.first_error = self.first_error or result.first_error
        if result.ttft_ms.p50 is not None:
            self.ttft_p50_ms.append(result.ttft_ms.p50)

    @property
    def us_per_token(self) -> float | None:
        return self.cpu_s / self.tokens * 1e6 if self.tokens and self.cpu_s else None

    @property
    def ttft_ms(self) -> float | None:
        return statistics.median(self.ttft_p50_ms) if self.ttft_p50_ms else None


def scenario_for(text: str, settings: BenchSettings) -> Scenario:
    """The reply every stream of one load gets: ``text`` sentences, ``settings.tokens`` long."""
    return next(s for s in build_scenarios(settings.tokens) if s.name == text)


async def run_rounds(
    servers: Mapping[str, Server],
    loads: Mapping[str, BenchSettings],
    text: str,
    rounds: int,
) -> dict[str, dict[str, Tally]]:
    """Every load against every target, ``rounds`` times, interleaved round by round."""
    tallies: dict[str, dict[str, Tally]] = {name: {} for name in loads}
    scenarios = {name: scenario_for(text, settings) for name, settings in loads.items()}
    for _ in range(rounds):
        for name, settings in loads.items():
            async with client_session() as session:
                results = await measure_scenario(
                    session, scenarios[name], settings, servers, VARIANTS
                )
            for result in results:
                tallies[name].setdefault(result.target, Tally()).add(result)
    return tallies


def render(tallies: Mapping[str, Mapping[str, Tally]], text: str, rounds: int) -> str:
    lines = [f"text {text!r}, {rounds} round(s); noisy unless the machine is quiet", ""]
    header = (
        f"{'load':<10} {'target':<24} {'CPU us/token':>12} {'x baseline':>10} "
        f"{'TTFT p50 ms':>11} {'added vs baseline ms':>20} {'errors':>6}"
    )
    lines.append(header)
    for load, by_target in tallies.items():
        baseline = by_target.get("baseline")
        base_cpu = baseline.us_per_token if baseline else None
        base_ttft = baseline.ttft_ms if baseline else None
        for target, tally in by_target.items():
            cpu, ttft = tally.us_per_token, tally.ttft_ms
            ratio = cpu / base_cpu if cpu is not None and base_cpu else None
            added = ttft - base_ttft if ttft is not None and base_ttft is not None else None
            lines.append(
                f"{load:<10} {target:<24} {_fmt(cpu, 12, 1)} {_fmt(ratio, 10, 2)} "
                f"{_fmt(ttft, 11, 2)} {_fmt(added, 20, 2)} {tally.errors:>6}"
            )
            if tally.first_error:
                lines.append(f"{'':<10} first error: {tally.first_error}")
    return "\n".join(lines)


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every load (default 3)")
    parser.add_argument("--text", choices=("prose", "pii"), default="prose")
    parser.add_argument("--quick", action="store_true", help="1 round of small loads (smoke)")
    args = parser.parse_args(argv)
    loads = QUICK_LOADS if args.quick else LOADS
    rounds = 1 if args.quick else max(1, args.rounds)
    variants, skipped = split_variants(VARIANTS)
    if skipped:
        print("skipped: " + "; ".join(skipped), file=sys.stderr)
        return 2
    logs.configure("console", "error")
    try:
        with running_servers(variants) as servers:
            tallies = asyncio.run(run_rounds(servers, loads, args.text, rounds))
    except BenchError as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 1
    print(render(tallies, args.text, rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
