"""The simulator's aiohttp application: routes, request statistics, and serving a plan.

Every text endpoint follows the same path: read the JSON body, decide a :class:`Plan`, render
it with the protocol module as frames (streaming) or one object, then send it. Only the
renderers differ per API, so faults and pacing behave alike everywhere.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from pipeline.simulator import _anthropic, _catalog, _openai_chat, _openai_completions, _responses
from pipeline.simulator._control import Plan, SimRequestError, SimulatorSettings, build_plan
from pipeline.simulator._errors import anthropic_error, openai_error
from pipeline.simulator._moderation import (
    MODERATION,
    MODERATION_STATS,
    ModerationStats,
    guard_chat,
    is_guard_request,
    moderations,
)
from pipeline.simulator._wire import Outcome, Stream, dumps, write_frames


@dataclass(slots=True)
class SimStats:
    """What the simulator has seen, for tests that must prove what reached the upstream."""

    requests: int = 0
    completed_streams: int = 0
    cancelled_streams: int = 0
    """Streams the client abandoned (disconnect noticed while writing, or handler cancelled)."""
    last_request: dict[str, Any] | None = None
    """``method``, ``path``, ``headers`` (case-insensitive) and parsed ``json`` of the latest."""
    _stream_ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait_cancelled(self, count: int = 1) -> None:
        """Return once ``count`` streams have been cancelled (wrap in a timeout).

        A disconnect is only noticed at the stream's next write, so this waits rather than
        making tests poll.
        """
        while self.cancelled_streams < count:
            self._stream_ended.clear()
            await self._stream_ended.wait()

    def _record(self, outcome: Outcome) -> None:
        if outcome is Outcome.COMPLETED:
            self.completed_streams += 1
        elif outcome is Outcome.CANCELLED:
            self.cancelled_streams += 1
        self._stream_ended.set()


SIM_STATS = web.AppKey("SIM_STATS", SimStats)
_SETTINGS = web.AppKey("sim_settings", SimulatorSettings)
_BODY = web.RequestKey("sim_body", object)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """How one text API renders plans and errors, and which request fields it honours."""

    stream: Callable[[Mapping[str, Any], Plan], Stream]
    complete: Callable[[Mapping[str, Any], Plan], dict[str, Any]]
    error: Callable[[int, str], dict[str, Any]]
    prompt_keys: tuple[str, ...]
    default_model: str
    allow_n: bool = False
    allow_tools: bool = True


_CHAT = _Endpoint(
    stream=_openai_chat.chat_stream,
    complete=_openai_chat.chat_completion,
    error=openai_error,
    prompt_keys=("messages",),
    default_model="gpt-4o-mini",
    allow_n=True,
)
_COMPLETIONS = _Endpoint(
    stream=_openai_completions.completions_stream,
    complete=_openai_completions.completion,
    error=openai_error,
    prompt_keys=("prompt",),
    default_model="gpt-3.5-turbo-instruct",
    allow_n=True,
    allow_tools=False,
)
_MESSAGES = _Endpoint(
    stream=_anthropic.messages_stream,
    complete=_anthropic.message,
    error=anthropic_error,
    prompt_keys=("system", "messages"),
    default_model="claude-sonnet-4-20250514",
)
_RESPONSES = _Endpoint(
    stream=_responses.responses_stream,
    complete=_responses.response,
    error=openai_error,
    prompt_keys=("instructions", "input"),
    default_model="gpt-4o-mini",
)


def make_simulator_app(settings: SimulatorSettings | None = None) -> web.Application:
    """A fresh simulator app with its own settings and statistics."""
    # Real APIs take large prompts; the proxy in front enforces its own (configurable) limit.
    app = web.Application(middlewares=[_record_request], client_max_size=64 * 1024 * 1024)
    app[_SETTINGS] = settings or SimulatorSettings()
    app[SIM_STATS] = SimStats()
    app[MODERATION] = app[_SETTINGS].moderation
    app[MODERATION_STATS] = ModerationStats()
    app.router.add_post("/v1/chat/completions", _text_handler(_CHAT))
    app.router.add_post("/v1/completions", _text_handler(_COMPLETIONS))
    app.router.add_post("/v1/messages", _text_handler(_MESSAGES))
    app.router.add_post("/v1/responses", _text_handler(_RESPONSES))
    app.router.add_get("/v1/models", _models)
    app.router.add_post("/v1/embeddings", _embeddings)
    app.router.add_post("/v1/moderations", _moderations)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    return app


async def start_simulator(
    host: str, port: int, settings: SimulatorSettings | None = None
) -> web.AppRunner:
    """Serve a simulator on ``host:port`` (port 0 picks a free one; see :func:`bound_port`).

    The caller owns the returned runner and stops it with ``await runner.cleanup()``.
    """
    # Access logs cost time per request and only add noise to test and benchmark output.
    runner = web.AppRunner(make_simulator_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port a started runner listens on."""
    for address in runner.addresses:
        return int(address[1])
    raise RuntimeError("the simulator runner is not listening")


@web.middleware
async def _record_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Parse the body once here, so statistics and the endpoint see the same value.
    body = _parse_json(await request.read())
    request[_BODY] = body
    stats = request.app[SIM_STATS]
    stats.requests += 1
    stats.last_request = {
        "method": request.method,
        "path": request.path,
        # A case-insensitive copy: clients differ in how they spell header names.
        "headers": request.headers.copy(),
        "json": body,
    }
    return await handler(request)


def _parse_json(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _text_handler(endpoint: _Endpoint) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _serve(request, endpoint)

    return handle


async def _serve(request: web.Request, endpoint: _Endpoint) -> web.StreamResponse:
    body = request[_BODY]
    if not isinstance(body, dict):
        return _error(endpoint.error, 400, "We could not parse the JSON body of your request.")
    if endpoint is _CHAT and is_guard_request(body):
        return await guard_chat(request, body)
    try:
        plan = build_plan(
            body,
            request.app[_SETTINGS],
            prompt=[body.get(key) for key in endpoint.prompt_keys],
            default_model=endpoint.default_model,
            allow_n=endpoint.allow_n,
            allow_tools=endpoint.allow_tools,
        )
        reply = None if body.get("stream") is True else endpoint.complete(body, plan)
    except SimRequestError as exc:
        return _error(endpoint.error, exc.status, exc.message)
    if reply is None:
        # Streamed renderers are lazy and never raise: every refusal happened above.
        return await _stream(request, endpoint.stream(body, plan), plan)
    await _generation_time(plan)
    return web.json_response(reply, dumps=dumps)


async def _stream(request: web.Request, stream: Stream, plan: Plan) -> web.StreamResponse:
    stats = request.app[SIM_STATS]
    try:
        response, outcome = await write_frames(request, stream, plan)
    except asyncio.CancelledError:
        # Only when the server runs with handler_cancellation=True; the default is to let
        # the next write notice the disconnect instead.
        stats._record(Outcome.CANCELLED)
        raise
    stats._record(outcome)
    return response


async def _generation_time(plan: Plan) -> None:
    """A non-streaming reply arrives when a streamed one would have finished."""
    seconds = plan.first_token_delay + plan.inter_token_delay * (plan.completion_tokens - 1)
    if seconds > 0:
        await asyncio.sleep(seconds)


async def _models(request: web.Request) -> web.StreamResponse:
    anthropic = "anthropic-version" in request.headers
    body = _catalog.anthropic_models() if anthropic else _catalog.openai_models()
    return web.json_response(body, dumps=dumps)


async def _embeddings(request: web.Request) -> web.StreamResponse:
    body = request[_BODY]
    if not isinstance(body, dict):
        return _error(openai_error, 400, "We could not parse the JSON body of your request.")
    try:
        return web.json_response(_catalog.embeddings(body), dumps=dumps)
    except SimRequestError as exc:
        return _error(openai_error, exc.status, exc.message)


async def _moderations(request: web.Request) -> web.StreamResponse:
    return await moderations(request, request[_BODY])


async def _not_found(request: web.Request) -> web.StreamResponse:
    return _error(openai_error, 404, f"Invalid URL ({request.method} {request.path})")


def _error(
    shape: Callable[[int, str], dict[str, Any]], status: int, message: str
) -> web.StreamResponse:
    return web.json_response(shape(status, message), status=status, dumps=dumps)
