"""Issue 12 through the real ``anthropic`` SDK: stored results and compressed streams."""

from __future__ import annotations

import gzip
import json

import anthropic
from aiohttp import web

from tests.edge_support import LEAK, redacting_proxy


def _client(url: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=url, api_key="sk-ant-test", max_retries=0)


def _events() -> bytes:
    message: dict[str, object] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 0},
    }
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": f"mail {LEAK}"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 3},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


async def test_gzip_anthropic_stream_is_decoded_and_filtered() -> None:
    async def reply(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(_events()),
            headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"},
        )

    async with redacting_proxy() as p:
        p.upstream.reply = reply
        sdk = _client(p.url)
        try:
            async with sdk.messages.stream(
                model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                final = await stream.get_final_message()
        finally:
            await sdk.close()
    assert ["mail [EMAIL]"] == [block.text for block in final.content if block.type == "text"]


async def test_stored_batch_results_are_filtered() -> None:
    """``GET /v1/messages/batches/{id}/results`` (JSONL) used to pass raw."""
    urls: dict[str, str] = {}

    async def batches(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/results"):
            message = json.loads(_events().split(b"data: ", 2)[1].split(b"\n")[0])["message"]
            message["content"] = [{"type": "text", "text": f"mail {LEAK}"}]
            line = {"custom_id": "a", "result": {"type": "succeeded", "message": message}}
            return web.Response(text=json.dumps(line) + "\n", content_type="application/x-jsonl")
        batch = {
            "id": "msgbatch_1",
            "type": "message_batch",
            "processing_status": "ended",
            "request_counts": {
                "processing": 0,
                "succeeded": 1,
                "errored": 0,
                "canceled": 0,
                "expired": 0,
            },
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-02T00:00:00Z",
            "ended_at": "2026-01-01T00:01:00Z",
            "archived_at": None,
            "cancel_initiated_at": None,
            # localhost, not 127.0.0.1: URL fields are text (walker.py: a URL can carry PII
            # in its path or query), and redact takes the IP address in the host for PII.
            "results_url": f"{urls['proxy']}/v1/messages/batches/msgbatch_1/results",
        }
        return web.json_response(batch)

    async with redacting_proxy() as p:
        urls["proxy"] = p.url.replace("127.0.0.1", "localhost")
        p.upstream.reply = batches
        sdk = _client(p.url)
        try:
            results = [r async for r in await sdk.messages.batches.results("msgbatch_1")]
        finally:
            await sdk.close()
    [result] = results
    assert result.result.type == "succeeded"
    assert ["mail [EMAIL]"] == [b.text for b in result.result.message.content if b.type == "text"]
    assert ("GET", "/v1/messages/batches/msgbatch_1/results") in p.upstream.seen
