"""An upstream that leaks an e-mail address in every reply, and a redacting proxy before it.

The attacker's view of issue 12: whatever method, path, media type or encoding the reply
has, the address must never reach the client raw through a route with a ``redact`` stage.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import parse_config

LEAK = "alice@example.com"

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


def chat_completion() -> dict[str, object]:
    """A stored chat completion as ``GET /v1/chat/completions/{id}`` returns it."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": f"write to {LEAK} today"},
            }
        ],
    }


def chat_sse() -> bytes:
    """A chat stream whose one delta carries the address."""
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": f"write to {LEAK}"}, "finish_reason": None}],
    }
    done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    return f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode()


async def json_reply(request: web.Request) -> web.StreamResponse:
    return web.json_response(chat_completion())


@dataclass(slots=True)
class Upstream:
    """What the upstream saw, and how it answers next (tests swap ``reply``)."""

    reply: Reply = json_reply
    seen: list[tuple[str, str]] = field(default_factory=list)
    """``(method, raw path)`` of every request, exactly as it arrived."""


@dataclass(slots=True)
class Proxied:
    url: str
    upstream: Upstream
    upstream_url: str


ROUTES = """
routes:
  - name: api
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: redact
{extra}
"""


@asynccontextmanager
async def redacting_proxy(routes: str = ROUTES, extra: str = "") -> AsyncIterator[Proxied]:
    """An upstream on loopback and a proxy in front of it, both stopped on exit."""
    upstream = Upstream()

    async def handle(request: web.Request) -> web.StreamResponse:
        upstream.seen.append((request.method, request.rel_url.raw_path))
        await request.read()
        return await upstream.reply(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    up_runner = web.AppRunner(app, access_log=None)
    await up_runner.setup()
    await web.TCPSite(up_runner, "127.0.0.1", 0).start()
    up_url = f"http://127.0.0.1:{bound_port(up_runner)}"
    config = parse_config(routes.format(upstream=up_url, extra=extra), "edge.yaml")
    proxy = await start_proxy(make_app(config), "127.0.0.1", 0)
    try:
        yield Proxied(f"http://127.0.0.1:{bound_port(proxy)}", upstream, up_url)
    finally:
        await proxy.cleanup()
        await up_runner.cleanup()


async def raw_request(url: str, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """One hand-written request (no client library normalises the target); status and body."""
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    async with asyncio.timeout(10):
        reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = reply.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload
