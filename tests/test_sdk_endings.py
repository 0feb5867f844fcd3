"""Never stricter than the SDK: recorded streams through the proxy end as they do direct.

Seven of the ten recorded Anthropic streams end after ``message_delta`` (with its stop
reason) without a terminated ``message_stop``; the SDK returns their final message. Each
recording is served verbatim by a loopback upstream and read by the real ``anthropic``
SDK directly and through the proxy, with no stages and with stages that find nothing:
what the SDK returns (or raises) must be the same. The OpenAI side: a chat stream that
ends once every choice finished, without ``[DONE]``, is complete too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest
from aiohttp import web

from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import parse_config
from tests.conftest import RECORDED, openai_client, recorded_dir

FIXTURE_HEADER = "x-test-fixture"
ANTHROPIC_RECORDINGS = sorted(p.name for p in (RECORDED / "anthropic-messages").glob("*.sse"))

ROUTES = """
routes:
  - name: r
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages: {stages}
"""
NO_STAGES = "[]"
QUIET_STAGES = """
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: zqxjkv
      - type: "tests.stages_for_tests:MaskWordFactory"
        word: vkjxqz"""


async def _recorded(request: web.Request) -> web.StreamResponse:
    """The named recording's bytes exactly as stored, as an event stream."""
    name = request.headers[FIXTURE_HEADER]
    folder = "anthropic-messages" if request.path.endswith("/messages") else "openai-chat"
    raw = (recorded_dir() / folder / Path(name).name).read_bytes()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(raw)
    await response.write_eof()
    return response


Start = Callable[[str], Awaitable[str]]


@pytest.fixture
async def servers() -> AsyncIterator[tuple[str, Start]]:
    """The recording upstream's URL, and a function starting a proxy (given its stages)."""
    upstream_app = web.Application()
    upstream_app.router.add_post("/v1/{tail:.*}", _recorded)
    runners = [await start_proxy(upstream_app, "127.0.0.1", 0)]
    upstream = f"http://127.0.0.1:{bound_port(runners[0])}"

    async def start(stages: str) -> str:
        config = parse_config(ROUTES.format(upstream=upstream, stages=stages), "test.yaml")
        runner = await start_proxy(make_app(config), "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{bound_port(runner)}"

    yield upstream, start
    for runner in reversed(runners):
        await runner.cleanup()


async def _final_message(base_url: str, name: str) -> tuple[str, Any, list[str]]:
    """What the SDK's stream helper gives for one recording: the final message (or the
    exception's type) and the text it streamed."""
    async with anthropic.AsyncAnthropic(
        base_url=base_url,
        api_key="x",
        max_retries=0,
        default_headers={FIXTURE_HEADER: name},
    ) as client:
        texts: list[str] = []
        try:
            async with client.messages.stream(
                model="claude-test",
                max_tokens=256,
                messages=[{"role": "user", "content": "hi"}],
            ) as stream:
                texts.extend([text async for text in stream.text_stream])
                final = await stream.get_final_message()
        except anthropic.AnthropicError as exc:
            return "raised", type(exc).__name__, texts
        return "ok", final.model_dump(mode="json", warnings=False), texts


@pytest.mark.parametrize("stages", [NO_STAGES, QUIET_STAGES], ids=["no-stages", "stages"])
@pytest.mark.parametrize("name", ANTHROPIC_RECORDINGS)
async def test_recorded_anthropic_stream_ends_as_direct(
    servers: tuple[str, Start], name: str, stages: str
) -> None:
    """Through the proxy the SDK returns what it returns direct, for every recording."""
    upstream, start = servers
    direct = await _final_message(upstream, name)
    proxied = await _final_message(await start(stages), name)
    assert "ok" == direct[0]
    assert direct == proxied


def test_all_ten_anthropic_recordings_are_replayed() -> None:
    """The recordings this module replays are the ten the issue names."""
    assert 10 == len(ANTHROPIC_RECORDINGS)


CHAT_WITHOUT_DONE = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},'
    b'"logprobs":null,"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":" there"},"logprobs":null,'
    b'"finish_reason":"stop"}]}\n\n'
)


async def test_chat_stream_finished_without_done_is_complete() -> None:
    """Every choice finished, then the body ends without ``[DONE]``: no error is added."""

    async def reply(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(CHAT_WITHOUT_DONE)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", reply)
    runner = await start_proxy(app, "127.0.0.1", 0)
    try:
        upstream = f"http://127.0.0.1:{bound_port(runner)}"
        config = parse_config(ROUTES.format(upstream=upstream, stages=QUIET_STAGES), "t.yaml")
        proxy = await start_proxy(make_app(config), "127.0.0.1", 0)
        try:
            client = openai_client(f"http://127.0.0.1:{bound_port(proxy)}")
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            chunks = [chunk async for chunk in stream]
        finally:
            await proxy.cleanup()
    finally:
        await runner.cleanup()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Hello there" == text
    assert "stop" == chunks[-1].choices[0].finish_reason
