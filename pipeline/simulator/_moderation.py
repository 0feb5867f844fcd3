"""Classifiers to moderate against: OpenAI's ``POST /v1/moderations`` and a Llama Guard.

Verdicts are scripted, not learned: an input is flagged when it contains one of the
configured words (case-insensitive), with that word's category. OpenAI's shape carries
every category with a boolean and a score; the Llama-Guard-like chat model (any ``model``
whose name contains ``guard``, on ``/v1/chat/completions``) replies ``safe`` or
``unsafe`` and a line of its own category codes, as Llama Guard 3 does. Latency and an
HTTP failure are scriptable too, and :class:`ModerationSettings` may be changed while the
simulator runs (a test turns a failing classifier healthy again, say).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from pipeline.simulator._errors import openai_error

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
"""OpenAI's ``omni-moderation`` categories, in the order its replies list them."""

LLAMA_GUARD_CODES = {
    "violence": "S1",
    "violence/graphic": "S1",
    "illicit": "S2",
    "illicit/violent": "S2",
    "sexual/minors": "S4",
    "hate": "S10",
    "hate/threatening": "S10",
    "harassment": "S10",
    "harassment/threatening": "S10",
    "self-harm": "S11",
    "self-harm/instructions": "S11",
    "self-harm/intent": "S11",
    "sexual": "S12",
}
"""Llama Guard 3's hazard codes for the OpenAI categories above."""


@dataclass(slots=True)
class ModerationSettings:
    """How the simulated classifiers answer; mutable, read at every request."""

    flag_words: Mapping[str, str] = field(default_factory=lambda: {"forbidden": "violence"})
    """Word (or phrase) → the OpenAI category an input containing it is flagged with."""
    latency_ms: float = 150.0
    """Time before each answer, like a real classifier's round trip."""
    status: int | None = None
    """Answer every classification with this HTTP error status instead (a failing service)."""


@dataclass(slots=True)
class ModerationStats:
    """What the classifiers were asked, for tests that count calls or check inputs."""

    calls: int = 0
    inputs: list[str] = field(default_factory=list)
    answered: int = 0
    """Calls answered so far (0 at a moment proves nothing had been judged yet)."""
    in_flight: int = 0
    peak_in_flight: int = 0
    """Most classifications answered at once: what a concurrency limit must cap."""


MODERATION = web.AppKey("sim_moderation", ModerationSettings)
MODERATION_STATS = web.AppKey("sim_moderation_stats", ModerationStats)


def is_guard_request(body: object) -> bool:
    """A chat request addressed to the Llama-Guard-like model."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("model"), str)
        and "guard" in body["model"].lower()
    )


def flagged_categories(text: str, settings: ModerationSettings) -> list[str]:
    """The OpenAI categories ``text`` is flagged with (empty: safe)."""
    lowered = text.lower()
    return sorted(
        {category for word, category in settings.flag_words.items() if word.lower() in lowered}
    )


async def moderations(request: web.Request, body: object) -> web.StreamResponse:
    """``POST /v1/moderations``: one result per input, in OpenAI's shape."""
    inputs = _inputs(body)
    if inputs is None:
        return _refuse(400, "input must be a string or a list of strings.")
    settings = request.app[MODERATION]
    failure = await _answer_after_latency(request, settings, inputs)
    if failure is not None:
        return failure
    results = [_result(flagged_categories(text, settings)) for text in inputs]
    model = body.get("model") if isinstance(body, dict) else None
    reply = {
        "id": f"modr-{secrets.token_hex(12)}",
        "model": model if isinstance(model, str) else "omni-moderation-latest",
        "results": results,
    }
    return web.json_response(reply)


async def guard_chat(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    """A Llama Guard verdict on the conversation, as a ``chat.completion``."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _refuse(400, "messages must be a non-empty list.")
    text = "\n".join(
        str(m.get("content", "")) for m in messages if isinstance(m, dict) and m.get("content")
    )
    settings = request.app[MODERATION]
    failure = await _answer_after_latency(request, settings, [text])
    if failure is not None:
        return failure
    categories = flagged_categories(text, settings)
    codes = sorted({LLAMA_GUARD_CODES.get(c, "S1") for c in categories}, key=lambda c: int(c[1:]))
    verdict = "unsafe\n" + ",".join(codes) if codes else "safe"
    reply = {
        "id": f"chatcmpl-{secrets.token_hex(12)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": verdict},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": max(1, len(text) // 4),
            "completion_tokens": 1 + len(codes),
            "total_tokens": max(1, len(text) // 4) + 1 + len(codes),
        },
    }
    return web.json_response(reply)


async def _answer_after_latency(
    request: web.Request, settings: ModerationSettings, inputs: list[str]
) -> web.StreamResponse | None:
    """Count the call, wait the scripted latency; the scripted failure, if there is one."""
    stats = request.app[MODERATION_STATS]
    stats.calls += 1
    stats.inputs.extend(inputs)
    stats.in_flight += 1
    stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
    try:
        if settings.latency_ms > 0:
            await asyncio.sleep(settings.latency_ms / 1000.0)
    finally:
        stats.in_flight -= 1
        stats.answered += 1
    if settings.status is not None:
        return _refuse(settings.status, f"Simulated classifier error {settings.status}.")
    return None


def _inputs(body: object) -> list[str] | None:
    raw = body.get("input") if isinstance(body, dict) else None
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        return list(raw)
    return None


def _result(categories: list[str]) -> dict[str, Any]:
    hits = set(categories)
    return {
        "flagged": bool(hits),
        "categories": {name: name in hits for name in CATEGORIES},
        "category_scores": {name: 0.97 if name in hits else 0.0001 for name in CATEGORIES},
        "category_applied_input_types": {
            name: ["text"] if name in hits else [] for name in CATEGORIES
        },
    }


def _refuse(status: int, message: str) -> web.StreamResponse:
    return web.json_response(openai_error(status, message), status=status)
