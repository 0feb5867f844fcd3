"""Bytes on the wire: SSE frames, ids, and the writer that paces and breaks streams on request.

Protocol modules render a reply as a lazy :data:`Stream` of :class:`Frame` (one SSE event
each) and :data:`STEP` marks (a new token is being generated); the writer here owns
everything about *how* they are sent (token delays, byte-level splitting, dropping the
connection), so those faults behave the same on every endpoint.
"""

from __future__ import annotations

import asyncio
import enum
import json
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any, TypeAlias

from aiohttp import web

from pipeline.simulator._control import Plan

DONE = b"data: [DONE]\n\n"
_ALNUM = string.ascii_letters + string.digits
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
# One shared encoder: json.dumps with custom separators would build a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Frame:
    """One SSE event, already encoded."""

    data: bytes
    delta: bool = False
    """Carries generated text or tool arguments; ``fail_after`` counts these."""


class Tick(enum.Enum):
    """A marker between frames: a new generation step starts, so the token delay passes here."""

    STEP = "step"


STEP = Tick.STEP
Stream: TypeAlias = Iterator[Frame | Tick]
"""What a protocol module renders a streamed reply as, lazily, so the first byte leaves
before the last frame is built."""


class Outcome(enum.Enum):
    """How a stream ended, for the app's statistics."""

    COMPLETED = "completed"
    CANCELLED = "cancelled"
    """The client went away while the stream was being written."""
    DROPPED = "dropped"
    """``fail_after`` cut the connection on purpose."""


def dumps(obj: Any) -> str:
    """Compact JSON as the providers send it (no spaces, UTF-8 text kept as is)."""
    return _ENCODER.encode(obj)


def sse_data(payload: str) -> bytes:
    """A ``data:``-only event (OpenAI chat and legacy completions)."""
    return f"data: {payload}\n\n".encode()


def sse_event(name: str, payload: str) -> bytes:
    """A named event (Anthropic Messages, OpenAI Responses)."""
    return f"event: {name}\ndata: {payload}\n\n".encode()


def alnum_id(rng: Random, length: int) -> str:
    """Random letters and digits, the alphabet of OpenAI chat and Anthropic ids."""
    return "".join(rng.choices(_ALNUM, k=length))


def hex_id(rng: Random, length: int) -> str:
    """Random lowercase hex, the alphabet of Responses ids and fingerprints."""
    return f"{rng.getrandbits(4 * length):0{length}x}"


def interleave_choices(steps: Sequence[Iterator[list[Frame]]], finishes: Sequence[Frame]) -> Stream:
    """Merge per-choice generation steps round by round, as OpenAI streams ``n`` > 1.

    ``steps[i]`` yields choice ``i``'s steps (each one or more frames, at least one step);
    ``finishes[i]`` ends it. Choices advance together, one step per round, so a round is one
    token delay. A choice's finish follows the round of its last step, after the other
    choices' frames of that round (the order in the recorded streams).
    """
    upcoming = [next(choice, None) for choice in steps]
    while any(step is not None for step in upcoming):
        yield STEP
        ended: list[int] = []
        for index, choice in enumerate(steps):
            step = upcoming[index]
            if step is None:
                continue
            yield from step
            upcoming[index] = next(choice, None)
            if upcoming[index] is None:
                ended.append(index)
        yield from (finishes[index] for index in ended)


async def write_frames(
    request: web.Request, stream: Stream, plan: Plan
) -> tuple[web.StreamResponse, Outcome]:
    """Send ``stream`` as a streaming response, paced and broken as ``plan`` says."""
    response = web.StreamResponse(headers=_SSE_HEADERS)
    await response.prepare(request)
    return response, await _write_all(request, response, stream, plan)


async def _write_all(
    request: web.Request, response: web.StreamResponse, stream: Stream, plan: Plan
) -> Outcome:
    items: Iterable[Frame | Tick] = stream
    drop_at = None
    if plan.fail_after is not None:
        # Only a broken stream pays for rendering everything up front (to find its last delta).
        items = list(stream)
        drop_at = _drop_index(items, plan.fail_after)
    split_rng = Random(plan.rng.random()) if plan.byte_split else None  # noqa: S311 - sizes only
    delay = plan.first_token_delay
    try:
        for position, item in enumerate(items):
            if position == drop_at:
                _drop_connection(request)
                return Outcome.DROPPED
            if isinstance(item, Tick):
                if delay > 0:
                    await asyncio.sleep(delay)
                delay = plan.inter_token_delay
            elif split_rng is None:
                await response.write(item.data)
            else:
                for piece in _byte_pieces(item.data, split_rng):
                    await response.write(piece)
        await response.write_eof()
    except ConnectionResetError:
        return Outcome.CANCELLED
    return Outcome.COMPLETED


def _drop_index(items: Sequence[Frame | Tick], fail_after: int) -> int:
    """Where ``fail_after`` cuts: before the next delta, or right after the last one.

    A reply with fewer deltas than ``fail_after`` still fails (after its last delta), so a
    test that asks for a broken stream always gets one.
    """
    deltas = [i for i, item in enumerate(items) if isinstance(item, Frame) and item.delta]
    if fail_after < len(deltas):
        return deltas[fail_after]
    return deltas[-1] + 1 if deltas else 1


def _drop_connection(request: web.Request) -> None:
    # close() flushes what was written, then sends FIN without the chunked terminator: the
    # client sees a body that stops mid-stream, like a provider connection reset.
    transport = request.transport
    if transport is not None:
        transport.close()


def _byte_pieces(data: bytes, rng: Random) -> Iterator[bytes]:
    """``data`` in writes of 1 to 7 bytes, cutting SSE lines and UTF-8 sequences anywhere."""
    start = 0
    while start < len(data):
        end = start + rng.randint(1, 7)
        yield data[start:end]
        start = end
