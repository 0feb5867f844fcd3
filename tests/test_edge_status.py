"""Issue 12 item 5: right status codes, and compressed replies decoded for filtering.

Against main a cut non-streaming reply was ``500 proxy_error`` with a traceback (SDKs
retry 500s), an upstream that never sent headers gave 502, and a gzip or deflate SSE
reply reached the client as ``upstream_incomplete``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Callable

import brotli  # type: ignore[import-untyped]
import openai
import pytest
import structlog
from aiohttp import web

from tests.edge_support import LEAK, Reply, chat_completion, chat_sse, redacting_proxy


def _client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


async def _cut(request: web.Request) -> web.StreamResponse:
    """Declares 1000 bytes, sends 30, then closes the connection."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = 1000
    await response.prepare(request)
    await response.write(b'{"id": "x", "choices": [{"ind')
    assert request.transport is not None
    request.transport.close()
    return response


async def test_cut_non_streaming_reply_is_502_without_a_traceback() -> None:
    async with redacting_proxy() as p:
        p.upstream.reply = _cut
        sdk = _client(p.url)
        with structlog.testing.capture_logs() as logs:
            try:
                with pytest.raises(openai.APIStatusError) as raised:
                    await sdk.chat.completions.create(model="m", messages=[])
            finally:
                await sdk.close()
    assert 502 == raised.value.status_code
    assert isinstance(raised.value.body, dict)
    assert "upstream_error" == raised.value.body["code"]
    assert not any(entry.get("exc_info") for entry in logs)
    assert "upstream_reply_unusable" in [entry["event"] for entry in logs]


TIMED = """
routes:
  - name: api
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}", idle_timeout_s: 0.3}}
    stages:
      - type: redact
{extra}
"""


async def test_no_response_headers_within_the_timeout_is_504() -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.json_response(chat_completion())

    async with redacting_proxy(TIMED) as p:
        p.upstream.reply = silent
        sdk = _client(p.url)
        try:
            with pytest.raises(openai.APIStatusError) as raised:
                await sdk.chat.completions.create(model="m", messages=[])
        finally:
            await sdk.close()
    assert 504 == raised.value.status_code


Encoder = Callable[[bytes], bytes]

ENCODINGS: dict[str, Encoder] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def _encoded_reply(body: bytes, content_type: str, encoding: str, encode: Encoder) -> Reply:
    async def reply(request: web.Request) -> web.StreamResponse:
        packed = encode(body)
        response = web.StreamResponse(
            headers={"Content-Type": content_type, "Content-Encoding": encoding}
        )
        await response.prepare(request)
        for start in range(0, len(packed), 7):  # small writes: decoding is incremental
            await response.write(packed[start : start + 7])
        await response.write_eof()
        return response

    return reply


@pytest.fixture(params=[*ENCODINGS, "deflate-raw"])
def encoding(request: pytest.FixtureRequest) -> tuple[str, Encoder]:
    name = str(request.param)
    if name == "deflate-raw":
        return "deflate", _raw_deflate
    return name, ENCODINGS[name]


async def test_compressed_event_stream_is_decoded_and_filtered(
    encoding: tuple[str, Encoder],
) -> None:
    name, encode = encoding
    async with redacting_proxy() as p:
        p.upstream.reply = _encoded_reply(chat_sse(), "text/event-stream", name, encode)
        sdk = _client(p.url)
        try:
            stream = await sdk.chat.completions.create(model="m", messages=[], stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        finally:
            await sdk.close()
    assert "write to [EMAIL]" == text


async def test_compressed_json_is_decoded_and_sent_plain(encoding: tuple[str, Encoder]) -> None:
    name, encode = encoding
    body = json.dumps(chat_completion()).encode()
    async with redacting_proxy() as p:
        p.upstream.reply = _encoded_reply(body, "application/json", name, encode)
        sdk = _client(p.url)
        try:
            raw = await sdk.chat.completions.with_raw_response.create(model="m", messages=[])
        finally:
            await sdk.close()
    assert "Content-Encoding" not in raw.headers
    assert str(len(raw.content)) == raw.headers["Content-Length"]
    assert "write to [EMAIL] today" == raw.parse().choices[0].message.content


async def test_unknown_encoding_and_broken_data_are_refused() -> None:
    async def zstd(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=LEAK.encode(),
            headers={"Content-Type": "application/json", "Content-Encoding": "zstd"},
        )

    async with redacting_proxy() as p:
        statuses = []
        for reply in (zstd, _encoded_reply(b"x" * 50, "application/json", "gzip", bytes)):
            p.upstream.reply = reply
            sdk = _client(p.url)
            try:
                with pytest.raises(openai.APIStatusError) as raised:
                    await sdk.chat.completions.create(model="m", messages=[])
            finally:
                await sdk.close()
            statuses.append(raised.value.status_code)
            assert LEAK not in str(raised.value.body)
    assert [502, 502] == statuses


async def test_a_decompression_bomb_stays_within_the_body_limit() -> None:
    """A small gzip of many megabytes is refused at the limit, decoded a piece at a time."""
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    limits = "limits: {{max_response_bytes: 1048576}}\n"
    async with redacting_proxy(TIMED + limits) as p:
        p.upstream.reply = _encoded_reply(bomb, "application/json", "gzip", bytes)
        sdk = _client(p.url)
        try:
            with pytest.raises(openai.APIStatusError) as raised:
                await sdk.chat.completions.create(model="m", messages=[])
        finally:
            await sdk.close()
    assert 502 == raised.value.status_code
    assert "limit" in str(raised.value.body)
