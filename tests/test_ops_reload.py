"""Hot reload through ``POST /admin/reload``: valid configs apply, invalid ones are refused
with the reason while the old config keeps serving, and streams in flight are unaffected."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.ops_support import MASK_ROUTE, OpsStack, chat_body, ops_stack, sse_data, text_of

SLOW_TEXT = ["one ", "secret ", "two ", "other ", "three ", "secret"]


async def reload(http: aiohttp.ClientSession, s: OpsStack) -> tuple[int, dict[str, object]]:
    async with http.post(f"{s.admin_url}/admin/reload") as response:
        return response.status, await response.json()


async def say(http: aiohttp.ClientSession, s: OpsStack, text: str) -> str:
    """What the client sees when the upstream says ``text``."""
    url = f"{s.proxy_url}/v1/chat/completions"
    async with http.post(url, json=chat_body({"text": text})) as response:
        return text_of(await sse_data(response))


async def test_valid_config_is_applied(tmp_path: Path) -> None:
    """After a reload, new requests are filtered by the new config."""
    async with ops_stack(tmp_path) as s, aiohttp.ClientSession() as http:
        s.write_config(MASK_ROUTE, word="other")
        status, body = await reload(http, s)
        assert "secret and [MASKED]" == await say(http, s, "secret and other")
    assert 200 == status
    assert "reloaded" == body["status"]
    assert ["chat"] == body["routes"]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("routes: []\n", "routes"),
        (MASK_ROUTE.replace("word: {word}", "wrod: {word}"), "did you mean 'word'"),
        (MASK_ROUTE + "    auth: {{keys_env: OPS_UNSET_VARIABLE}}\n", "OPS_UNSET_VARIABLE"),
    ],
)
async def test_invalid_config_is_refused_and_old_one_serves(
    tmp_path: Path, broken: str, reason: str
) -> None:
    """A config failing validation or set-up is refused with the reason; the old one serves."""
    async with ops_stack(tmp_path) as s, aiohttp.ClientSession() as http:
        before = s.state.snapshot
        s.write_config(broken, word="other")
        status, body = await reload(http, s)
        assert "[MASKED] and other" == await say(http, s, "secret and other")
    assert 422 == status
    assert "refused" == body["status"]
    assert reason in str(body["message"])
    assert before is s.state.snapshot


async def test_stream_in_flight_finishes_on_its_config(tmp_path: Path) -> None:
    """A stream that started before a reload is filtered by the config it started with."""
    async with ops_stack(tmp_path) as s, aiohttp.ClientSession() as http:
        url = f"{s.proxy_url}/v1/chat/completions"
        slow = chat_body({"chunks": SLOW_TEXT, "inter_token_delay_ms": 100})
        async with http.post(url, json=slow) as old_stream:
            first = [(await old_stream.content.readline()).decode()]
            s.write_config(MASK_ROUTE, word="other")
            status, _ = await reload(http, s)
            new_text = await say(http, s, "".join(SLOW_TEXT))
            still_open = len(s.state.streams)
            rest = await sse_data(old_stream)
    assert 200 == status
    assert 1 == still_open  # the old stream was mid-flight across the reload
    old_payloads = [line.removeprefix("data: ").strip() for line in first if line.strip()]
    assert "one [MASKED] two other three [MASKED]" == text_of(old_payloads + rest)
    assert "one secret two [MASKED] three secret" == new_text
