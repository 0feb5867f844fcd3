"""Instructions per SSE event, counted by cachegrind: a figure a busy machine cannot move.

Wall and CPU time on a shared machine move by tens of percent between runs; the number of
instructions the interpreter executes does not. This feeds the same 641 one-choice chat
chunks (prose, one word each, read in 300-byte pieces) through the parsing baseline's work
(decode, ``json.loads``, ``json.dumps``, encode) and through streamsieve's decoder, codec,
driver and stage chains, offline, and reports instructions per event and the ratio to the
baseline. Sockets and HTTP are left out: they cost both the same.

    .venv/bin/python benchmarks/event_cost.py            # needs valgrind; about 3 minutes

Each target runs twice under ``valgrind --tool=cachegrind`` (once and three times over the
chunks), so start-up and imports cancel out in the difference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence

from pipeline.config import parse_config
from pipeline.driver import StreamDriver
from pipeline.engine import ResponseFilter, RoutePlan, build_plans
from pipeline.protocols.openai_chat import OpenAIChatStream
from pipeline.protocols.request import RequestInfo
from pipeline.sse import Event, SSEDecoder, encode

TARGETS = {
    "baseline": None,
    "sieve": "[]",
    "sieve+profanity": "[{type: profanity}]",
    "sieve+redact+profanity": "[{type: redact}, {type: profanity}]",
}
_SENTENCE = "The garden behind the old library has become a quiet place to read in the afternoon."
_READ = 300


def chunks() -> list[str]:
    words = " ".join([_SENTENCE] * 40).split(" ")
    envelope = {"id": "chatcmpl-abc123", "object": "chat.completion.chunk", "created": 1}
    envelope |= {"model": "gpt-4o-mini", "system_fingerprint": "fp_0ba0d124f1"}
    return [
        json.dumps(
            envelope
            | {
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": " " + word},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            },
            separators=(",", ":"),
        )
        for word in words
    ]


def reads() -> list[bytes]:
    raw = b"".join(f"data: {chunk}\n\n".encode() for chunk in chunks())
    return [raw[at : at + _READ] for at in range(0, len(raw), _READ)]


def baseline(pieces: Sequence[bytes]) -> None:
    decoder = SSEDecoder()
    for piece in pieces:
        for item in decoder.feed(piece):
            if isinstance(item, Event):
                encode(Event(json.dumps(json.loads(item.data)), item.event))


def plan_for(stages: str) -> RoutePlan:
    """A one-route plan, built once: building it (word lists, patterns) is not per event."""
    config = f"""
routes:
  - name: bench
    match: {{path: "/v1/*"}}
    upstream: {{url: "http://127.0.0.1:9"}}
    stages: {stages}
"""
    return build_plans(parse_config(config))["bench"]


def sieve(plan: RoutePlan, pieces: Sequence[bytes]) -> None:
    async def run() -> None:
        driver = StreamDriver(OpenAIChatStream, ResponseFilter(plan), RequestInfo(stream=True))
        decoder = SSEDecoder()
        for piece in pieces:
            await driver.feed(decoder.feed(piece))

    asyncio.run(run())


def run_once(target: str, repeat: int) -> None:
    """The work itself, ``repeat`` times (what cachegrind counts)."""
    pieces = reads()
    stages = TARGETS[target]
    plan = plan_for(stages) if stages is not None else None
    for _ in range(repeat):
        if plan is None:
            baseline(pieces)
        else:
            sieve(plan, pieces)


def count(target: str, repeat: int) -> int:
    """Instructions of one run of this script under cachegrind."""
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--run",
        target,
        "--repeat",
        str(repeat),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)  # noqa: S603
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in cachegrind's output: {done.stderr[-300:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_once(args.run, args.repeat)
        return 0
    if shutil.which("valgrind") is None:
        print("event_cost: needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    events = len(chunks())
    per_event = {t: (count(t, 3) - count(t, 1)) / 2 / events for t in TARGETS}
    base = per_event["baseline"]
    print(f"{'target':<24} {'instructions/event':>18} {'x baseline':>10}")
    for target, value in per_event.items():
        print(f"{target:<24} {value:>18,.0f} {value / base:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
