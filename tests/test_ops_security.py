"""The upstream comes from config only: request lines and Host headers cannot redirect it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.ops_support import LOOPBACK, free_port, ops_stack

# A loopback address the proxy must never contact; nothing listens there.
ELSEWHERE = f"127.0.0.2:{free_port()}"


async def raw_get(proxy_url: str, request_target: str, host: str) -> bytes:
    """Send one hand-written GET (no client library normalises it) and read the reply."""
    port = int(proxy_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(
        f"GET {request_target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    )
    await writer.drain()
    async with asyncio.timeout(5):
        reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    return reply


@pytest.mark.parametrize(
    ("target", "host"),
    [
        (f"http://{ELSEWHERE}/v1/models", ELSEWHERE),
        ("/v1/models", ELSEWHERE),
        (f"http://{ELSEWHERE}/v1/models", "localhost"),
    ],
)
async def test_request_cannot_choose_the_upstream(tmp_path: Path, target: str, host: str) -> None:
    """An absolute-form request line or a foreign Host reaches the configured upstream only."""
    async with ops_stack(tmp_path) as s:
        reply = await raw_get(s.proxy_url, target, host)
    assert reply.startswith(b"HTTP/1.1 200 ")
    assert b'"object":"list"' in reply  # the simulator's model list
    assert 1 == s.sim_stats.requests
    assert s.sim_stats.last_request is not None
    assert "/v1/models" == s.sim_stats.last_request["path"]
    assert s.upstream_url.removeprefix("http://") == s.sim_stats.last_request["headers"]["Host"]
