"""The proxy never leaves its configured upstream and never passes what it cannot filter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import UpstreamConfig, parse_config
from pipeline.forwarding import ForbiddenTargetError, request_path, upstream_url


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/openai/v1/chat/completions?x=1", "http://127.0.0.1:4/v1/chat/completions?x=1"),
        ("/openai", "http://127.0.0.1:4/"),
        ("/openai5123/v1/models", "http://127.0.0.1:4/openai5123/v1/models"),
        ("/openai.evil.example/v1", "http://127.0.0.1:4/openai.evil.example/v1"),
        ("/openai@evil.example/v1", "http://127.0.0.1:4/openai@evil.example/v1"),
    ],
)
def test_strip_prefix_only_at_a_segment_boundary(path: str, expected: str) -> None:
    """A prefix glued to more characters is not stripped, so the host and port never change."""
    upstream = UpstreamConfig(url="http://127.0.0.1:4", strip_prefix="/openai")
    request = make_mocked_request("POST", path)
    target = upstream_url(upstream, request_path(request), request.rel_url.raw_query_string)
    assert expected == str(target)


def test_a_path_that_would_change_the_origin_is_refused() -> None:
    """Defence in depth: any target whose origin differs from the upstream's is refused."""
    upstream = UpstreamConfig(url="http://127.0.0.1:4")
    with pytest.raises(ForbiddenTargetError):
        upstream_url(upstream, "@evil.example/v1", "")


@pytest.fixture
async def plain_upstream() -> AsyncIterator[str]:
    """An upstream that answers chat completions with a body no stage can read.

    (It was text/plain; ``text/*`` is now filtered as one text channel.)
    """

    async def reply(request: web.Request) -> web.Response:
        return web.Response(body=b"the secret is hunter2", content_type="audio/mpeg")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", reply)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{bound_port(runner)}"
    await runner.cleanup()


async def test_unfilterable_reply_on_a_filtered_route_fails_closed(plain_upstream: str) -> None:
    """A 2xx reply of a type no adapter reads is a 502, never passed through unfiltered."""
    config = parse_config(
        f'routes:\n  - name: r\n    upstream: {{url: "{plain_upstream}"}}\n'
        "    stages:\n      - type: redact\n"
    )
    runner = await start_proxy(make_app(config), "127.0.0.1", 0)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{bound_port(runner)}/v1/chat/completions",
                json={"model": "m", "messages": []},
            ) as response,
        ):
            body = await response.text()
    finally:
        await runner.cleanup()
    assert 502 == response.status
    assert "hunter2" not in body
    assert "cannot be filtered" in body
