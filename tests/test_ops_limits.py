"""Each limit answers the client with a clear error in its protocol's own shape."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from pipeline.app import make_app
from pipeline.config import ConfigError, parse_config
from tests.ops_support import LOOPBACK, chat_body, ops_stack, sse_data, text_of

LIMITED = """
limits:
  max_body_bytes: 1000
  max_concurrent_streams: 1
  retry_after_s: 3
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}", idle_timeout_s: 0.3}}
"""

SMALL_EVENTS = """
limits: {{max_event_bytes: 2048}}
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
"""

KEYED = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    auth: {{keys_env: OPS_TEST_KEYS}}
"""


async def test_body_over_limit_gets_413_in_openai_shape(tmp_path: Path) -> None:
    """A body over ``max_body_bytes`` gets 413 with an OpenAI error and never goes upstream."""
    async with ops_stack(tmp_path, LIMITED) as s, aiohttp.ClientSession() as http:
        body = chat_body({"text": "x" * 2000})
        async with http.post(f"{s.proxy_url}/v1/chat/completions", json=body) as response:
            assert 413 == response.status
            error = (await response.json())["error"]
    assert "request_too_large" == error["code"]
    assert "request_too_large" == error["type"]
    assert "1000 bytes" in error["message"]
    assert 0 == s.sim_stats.requests


async def test_chunked_body_over_limit_is_refused(tmp_path: Path) -> None:
    """A body without Content-Length is counted as it arrives and refused past the limit."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 100

    async with ops_stack(tmp_path, LIMITED) as s, aiohttp.ClientSession() as http:
        url = f"{s.proxy_url}/v1/chat/completions"
        async with http.post(url, data=chunks()) as response:
            assert 413 == response.status
            assert "request_too_large" == (await response.json())["error"]["type"]
    assert 0 == s.sim_stats.requests


async def test_body_over_limit_on_messages_uses_anthropic_shape(tmp_path: Path) -> None:
    """On an Anthropic path the 413 is an Anthropic error object."""
    async with ops_stack(tmp_path, LIMITED) as s, aiohttp.ClientSession() as http:
        body = {"model": "claude", "max_tokens": 5, "messages": [], "pad": "x" * 2000}
        async with http.post(f"{s.proxy_url}/v1/messages", json=body) as response:
            assert 413 == response.status
            payload = await response.json()
    assert "error" == payload["type"]
    assert "request_too_large" == payload["error"]["type"]


async def test_excess_concurrent_request_gets_503_with_retry_after(tmp_path: Path) -> None:
    """Past ``max_concurrent_streams`` a request is refused at once with Retry-After."""
    async with ops_stack(tmp_path, LIMITED) as s, aiohttp.ClientSession() as http:
        url = f"{s.proxy_url}/v1/chat/completions"
        slow = chat_body({"chunks": ["a ", "b ", "c"], "inter_token_delay_ms": 150})
        async with http.post(url, json=slow) as first:
            await first.content.readline()  # the first stream is now being served
            async with http.post(url, json=chat_body()) as second:
                assert 503 == second.status
                assert "3" == second.headers["Retry-After"]
                error = (await second.json())["error"]
            assert "a b c" == text_of(await sse_data(first))
        async with http.post(url, json=chat_body({"text": "after"})) as third:
            assert 200 == third.status
            assert "after" == text_of(await sse_data(third))
    assert "overloaded_error" == error["type"]
    assert "limit of 1" in error["message"]


async def test_silent_upstream_ends_stream_with_error_event(tmp_path: Path) -> None:
    """An upstream quiet for longer than ``idle_timeout_s`` ends the stream with an error event."""
    async with ops_stack(tmp_path, LIMITED) as s, aiohttp.ClientSession() as http:
        body = chat_body({"chunks": ["one ", "two"], "inter_token_delay_ms": 800})
        async with http.post(f"{s.proxy_url}/v1/chat/completions", json=body) as response:
            assert 200 == response.status
            payloads = await sse_data(response)
    assert "one " == text_of(payloads[:-1])
    error = json.loads(payloads[-1])["error"]
    assert "upstream_error" == error["code"]
    assert "upstream went silent" in error["message"]
    assert "[DONE]" not in payloads


async def test_oversized_upstream_event_ends_stream_with_error_event(tmp_path: Path) -> None:
    """An upstream event over ``max_event_bytes`` ends the stream with an error event."""
    async with ops_stack(tmp_path, SMALL_EVENTS) as s, aiohttp.ClientSession() as http:
        body = chat_body({"chunks": ["fine ", "x" * 4000]})
        async with http.post(f"{s.proxy_url}/v1/chat/completions", json=body) as response:
            payloads = await sse_data(response)
    error = json.loads(payloads[-1])["error"]
    assert "upstream_event_too_large" == error["code"]
    assert "max_event_bytes=2048" in error["message"]
    assert "x" * 100 not in "".join(payloads)


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A loopback port whose accept queue is full, so a new connect hangs unanswered."""
    server = socket.socket()
    server.bind((LOOPBACK, 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # the handshake completes on its own
            filler.connect((LOOPBACK, port))
        fillers.append(filler)
    yield port
    for sock in (*fillers, server):
        sock.close()


async def test_upstream_connect_timeout_answers_502(tmp_path: Path, unanswering_port: int) -> None:
    """An upstream that never accepts the connection gets a 502 after ``connect_timeout_s``."""
    routes = f"""
routes:
  - name: chat
    match: {{{{path: "/v1/*"}}}}
    upstream: {{{{url: "http://{LOOPBACK}:{unanswering_port}", connect_timeout_s: 0.3}}}}
"""
    async with ops_stack(tmp_path, routes) as s, aiohttp.ClientSession() as http:
        started = time.monotonic()
        url = f"{s.proxy_url}/v1/chat/completions"
        async with http.post(url, json=chat_body()) as response:
            assert 502 == response.status
            error = (await response.json())["error"]
        elapsed = time.monotonic() - started
    assert "upstream_error" == error["type"]
    assert "unreachable" in error["message"]
    assert 0.25 < elapsed < 5.0


async def test_route_key_is_required_and_never_forwarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyed route answers 401 without a listed key; with one, the key stays at the proxy."""
    monkeypatch.setenv("OPS_TEST_KEYS", "key-one, key-two")
    async with ops_stack(tmp_path, KEYED) as s, aiohttp.ClientSession() as http:
        url = f"{s.proxy_url}/v1/chat/completions"
        statuses = []
        for headers in ({}, {"x-streamsieve-key": "key-three"}):
            async with http.post(url, json=chat_body(), headers=headers) as refused:
                statuses.append(refused.status)
                error = (await refused.json())["error"]
        headers = {"x-streamsieve-key": "key-two", "Authorization": "Bearer sk-upstream"}
        async with http.post(url, json=chat_body({"text": "ok"}), headers=headers) as accepted:
            assert 200 == accepted.status
            assert "ok" == text_of(await sse_data(accepted))
    assert [401, 401] == statuses
    assert "authentication_error" == error["type"]
    assert s.sim_stats.last_request is not None
    seen = s.sim_stats.last_request["headers"]
    assert "x-streamsieve-key" not in seen
    assert "Bearer sk-upstream" == seen["Authorization"]
    assert 1 == s.sim_stats.requests


def test_route_keys_from_an_unset_variable_refuse_the_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``auth.keys_env`` naming an unset variable stops the start-up with that name."""
    monkeypatch.delenv("OPS_TEST_KEYS", raising=False)
    config = parse_config(KEYED.format(upstream="http://127.0.0.1:9"), "keyed.yaml")
    with pytest.raises(ConfigError, match="OPS_TEST_KEYS") as caught:
        make_app(config)
    assert "routes[0].auth.keys_env" == caught.value.problems[0].path
    assert 6 == caught.value.problems[0].line


async def test_idle_timeout_sdk_raises(tmp_path: Path) -> None:
    """The OpenAI SDK raises on the idle-timeout error event rather than ending quietly."""
    async with ops_stack(tmp_path, LIMITED) as s:
        sdk = openai.AsyncOpenAI(base_url=f"{s.proxy_url}/v1", api_key="sk-test", max_retries=0)
        try:
            stream = await sdk.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                extra_body={"sim": {"chunks": ["a", "b"], "inter_token_delay_ms": 800}},
            )
            with pytest.raises(openai.APIError, match="upstream went silent"):
                await _consume(stream)
        finally:
            await sdk.close()


async def _consume(stream: openai.AsyncStream[Any]) -> None:
    async for _ in stream:
        pass
