"""Issue 12 item 2: every reply of a filtered route is filtered, whatever method and path.

Against main a client could stream a redacted reply and then fetch the stored copy raw
(``GET /v1/chat/completions/{id}``, ``/messages``, ``GET /v1/responses/{id}``), or use
any other method on the chat path. Here each goes through the real proxy, with the real
``openai`` SDK where it has a call for it.
"""

from __future__ import annotations

import json

import aiohttp
import openai
import pytest
from aiohttp import web

from pipeline.config import ConfigError, parse_config
from tests.edge_support import (
    LEAK,
    ROUTES,
    chat_completion,
    chat_sse,
    raw_request,
    redacting_proxy,
)


def _client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-test", max_retries=0)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "POST"])
async def test_every_method_on_the_chat_path_is_filtered(method: str) -> None:
    async with redacting_proxy() as p:
        status, body = await raw_request(p.url, method, "/v1/chat/completions", b"{}")
    assert 200 == status
    assert LEAK not in body.decode()
    assert "[EMAIL]" in body.decode()


async def test_stored_chat_completion_and_its_messages_are_filtered() -> None:
    """The SDK's own retrieve and messages.list calls get the redacted copy."""

    async def stored(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/messages"):
            message = {"id": "m1", "role": "assistant", "content": f"mail {LEAK}"}
            return web.json_response({"object": "list", "data": [message], "has_more": False})
        return web.json_response(chat_completion())

    async with redacting_proxy() as p:
        p.upstream.reply = stored
        sdk = _client(p.url)
        try:
            completion = await sdk.chat.completions.retrieve("chatcmpl-1")
            messages = await sdk.chat.completions.messages.list("chatcmpl-1")
        finally:
            await sdk.close()
    assert "write to [EMAIL] today" == completion.choices[0].message.content
    assert ["mail [EMAIL]"] == [m.content for m in messages.data]
    assert [("GET", "/v1/chat/completions/chatcmpl-1")] == p.upstream.seen[:1]


async def test_stored_response_is_filtered() -> None:
    async def stored(request: web.Request) -> web.StreamResponse:
        text = {"type": "output_text", "text": f"reach {LEAK}", "annotations": []}
        item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed"}
        response = {
            "id": "resp_AbC",
            "object": "response",
            "created_at": 1,
            "model": "gpt-4o-mini",
            "status": "completed",
            "output": [{**item, "content": [text]}],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        return web.json_response(response)

    async with redacting_proxy() as p:
        p.upstream.reply = stored
        sdk = _client(p.url)
        try:
            response = await sdk.responses.retrieve("resp_AbC")
        finally:
            await sdk.close()
    assert "reach [EMAIL]" == response.output_text
    assert [("GET", "/v1/responses/resp_AbC")] == p.upstream.seen  # the id's case is kept


async def test_get_of_an_event_stream_goes_through_the_generic_codec() -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        return web.Response(body=chat_sse(), content_type="text/event-stream")

    async with redacting_proxy() as p:
        p.upstream.reply = events
        status, body = await raw_request(p.url, "GET", "/v1/chat/completions/c1/stream")
    assert 200 == status
    assert LEAK not in body.decode()


async def test_text_reply_is_one_filtered_channel() -> None:
    async def text(request: web.Request) -> web.StreamResponse:
        return web.Response(text=f"contact {LEAK}", content_type="text/plain")

    async with redacting_proxy() as p:
        p.upstream.reply = text
        async with aiohttp.ClientSession() as http, http.get(f"{p.url}/v1/notes") as reply:
            body = await reply.text()
            assert 200 == reply.status
    assert "contact [EMAIL]" == body


async def _audio(request: web.Request) -> web.StreamResponse:
    return web.Response(body=f"ID3 {LEAK}".encode(), content_type="audio/mpeg")


async def test_unfilterable_body_is_refused_by_default() -> None:
    async with redacting_proxy() as p:
        p.upstream.reply = _audio
        status, body = await raw_request(p.url, "POST", "/v1/audio/speech", b"{}")
    assert 502 == status
    error = json.loads(body)["error"]
    assert "upstream_error" == error["code"]
    assert "unfilterable: reject" in error["message"]
    assert LEAK not in body.decode()


async def test_unfilterable_pass_is_an_explicit_choice() -> None:
    async with redacting_proxy(extra="    unfilterable: pass") as p:
        p.upstream.reply = _audio
        status, body = await raw_request(p.url, "POST", "/v1/audio/speech", b"{}")
    assert 200 == status
    assert f"ID3 {LEAK}".encode() in body  # passed as is (chunked: the length is recomputed)


async def test_listed_paths_pass_exactly_and_only_exactly() -> None:
    """``passthrough_paths`` is exact and case-sensitive: a variant is still filtered."""
    extra = "    passthrough_paths: [/v1/files/file-1/content]"
    async with redacting_proxy(extra=extra) as p:
        listed, listed_body = await raw_request(p.url, "GET", "/v1/files/file-1/content")
        variant, variant_body = await raw_request(p.url, "GET", "/v1/Files/file-1/content")
        dotted, dotted_body = await raw_request(p.url, "GET", "/v1/files/./file-1/content")
    assert (200, 200, 200) == (listed, variant, dotted)
    assert LEAK in listed_body.decode()
    assert LEAK not in variant_body.decode()
    assert LEAK in dotted_body.decode()  # the same canonical path as the listed one


async def test_upstream_error_bodies_are_filtered_too() -> None:
    async def error(request: web.Request) -> web.StreamResponse:
        body = {"error": {"message": f"no account {LEAK}", "type": "invalid_request_error"}}
        return web.json_response(body, status=400)

    async with redacting_proxy() as p:
        p.upstream.reply = error
        sdk = _client(p.url)
        try:
            with pytest.raises(openai.BadRequestError) as raised:
                await sdk.chat.completions.create(model="m", messages=[])
        finally:
            await sdk.close()
    assert LEAK not in str(raised.value)
    assert "no account [EMAIL]" in str(raised.value)


def test_unfilterable_policy_is_validated_with_a_line() -> None:
    text = ROUTES.format(upstream="http://127.0.0.1:1", extra="    unfilterable: allow")
    with pytest.raises(ConfigError, match=r"edge.yaml:8: routes\[0\].unfilterable: .*'reject'"):
        parse_config(text, "edge.yaml")


async def test_byte_ranges_cannot_split_a_stored_reply() -> None:
    """Two ranges would each hold half the address, which no detector would match."""

    async def ranged(request: web.Request) -> web.StreamResponse:
        text = f"contact {LEAK} now".encode()
        wanted = request.headers.get("Range", "")
        if wanted.startswith("bytes="):
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            part = text[int(first) : int(last) + 1]
            return web.Response(body=part, status=206, content_type="text/plain")
        return web.Response(body=text, content_type="text/plain")

    async with redacting_proxy() as p:
        p.upstream.reply = ranged
        bodies = []
        async with aiohttp.ClientSession() as http:
            for span in ("bytes=0-13", "bytes=14-40"):
                url = f"{p.url}/v1/notes/n1"
                async with http.get(url, headers={"Range": span}) as reply:
                    bodies.append((reply.status, await reply.text()))
    assert [(200, "contact [EMAIL] now")] * 2 == bodies


GPT_ROUTE = """
routes:
  - name: gpt
    match: {{path: "/v1/*", model: "gpt-*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: redact
"""
REST_ROUTE = """
  - name: rest
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
"""
UNMATCHED = """
unmatched: {{action: passthrough, upstream: {{url: "{upstream}"}}}}
{extra}
"""


@pytest.mark.parametrize(
    "routes", [GPT_ROUTE + REST_ROUTE + UNMATCHED, GPT_ROUTE + UNMATCHED], ids=["rest", "unmatched"]
)
async def test_a_request_without_a_model_cannot_skip_a_filtering_model_route(routes: str) -> None:
    """``GET`` of a stored completion names no model; it is filtered by the model route."""
    async with redacting_proxy(routes) as p:
        sdk = openai.AsyncOpenAI(base_url=f"{p.url}/v1", api_key="sk-test", max_retries=0)
        try:
            completion = await sdk.chat.completions.retrieve("chatcmpl-1")
            created = await sdk.chat.completions.create(model="other", messages=[])
        finally:
            await sdk.close()
    assert "write to [EMAIL] today" == completion.choices[0].message.content
    assert LEAK in str(created.choices[0].message.content)  # a named other model: its route


async def test_pass_policy_never_passes_text_it_cannot_decode() -> None:
    """``unfilterable: pass`` is for media; JSON in an unknown encoding is still refused."""

    async def zstd_json(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json", "Content-Encoding": "zstd"}
        return web.Response(body=LEAK.encode(), headers=headers)

    async with redacting_proxy(extra="    unfilterable: pass") as p:
        p.upstream.reply = zstd_json
        status, body = await raw_request(p.url, "GET", "/v1/chat/completions/c1")
    assert 502 == status
    assert "'zstd' cannot be decoded" in json.loads(body)["error"]["message"]
    assert LEAK not in body.decode()
