"""``streamsieve serve`` as operators run it: a subprocess taking signals.

SIGTERM drains, SIGHUP reloads, credentials never reach the log, and ``--workers 2``
serves from both workers with metrics summed over them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.ops_support import (
    MASK_ROUTE,
    REPO,
    chat_body,
    cli,
    free_port,
    get_metrics,
    metric,
    serve_process,
    simulator_process,
    sse_data,
    text_of,
    wait_until_listening,
)


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    """One simulator process for the module's proxies."""
    with simulator_process() as url:
        yield url


async def say(http: aiohttp.ClientSession, proxy_url: str, text: str) -> str:
    url = f"{proxy_url}/v1/chat/completions"
    async with http.post(url, json=chat_body({"text": text})) as response:
        return text_of(await sse_data(response))


async def test_sigterm_lets_streams_finish_and_ends_overdue_ones(
    tmp_path: Path, upstream: str
) -> None:
    """After SIGTERM a short stream completes, one past the grace period gets an error event."""
    config = MASK_ROUTE.format(upstream=upstream, word="secret")
    with serve_process(tmp_path, config, "--grace-s", "1.5") as served:
        async with aiohttp.ClientSession() as http:
            url = f"{served.proxy_url}/v1/chat/completions"
            short = chat_body({"chunks": ["a "] * 6, "inter_token_delay_ms": 100})
            long = chat_body({"chunks": ["b "] * 100, "inter_token_delay_ms": 100})
            async with http.post(url, json=short) as first, http.post(url, json=long) as second:
                await first.content.readline()
                await second.content.readline()
                served.send(signal.SIGTERM)
                not_ready = await _wait_not_ready(http, served.admin_url)
                with pytest.raises(aiohttp.ClientConnectionError):
                    await http.get(f"{served.proxy_url}/v1/models")
                finished, cut = await asyncio.gather(sse_data(first), sse_data(second))
        exit_code = await served.wait_exit(10.0)
    assert 503 == not_ready
    assert "[DONE]" == finished[-1]
    assert "a " * 6 == text_of(finished)
    error = json.loads(cut[-1])["error"]
    assert "server_shutdown" == error["code"]
    assert "[DONE]" not in cut
    assert 0 == exit_code
    overdue = [e for e in served.events() if e["event"] == "grace_period_over"]
    assert [1] == [e["streams_stopped"] for e in overdue]


async def _wait_not_ready(http: aiohttp.ClientSession, admin_url: str) -> int:
    """``/readyz``'s status once it stops saying 200 (the signal arrives asynchronously)."""
    status = 200
    for _ in range(100):
        async with http.get(f"{admin_url}/readyz") as response:
            status = response.status
        if status != 200:
            break
        await asyncio.sleep(0.02)
    return status


async def test_sighup_reloads_or_keeps_the_old_config(tmp_path: Path, upstream: str) -> None:
    """SIGHUP applies a valid file; an invalid one is refused in the log and the old serves."""
    config = MASK_ROUTE.format(upstream=upstream, word="secret")
    with serve_process(tmp_path, config) as served:
        async with aiohttp.ClientSession() as http:
            served.config_path.write_text(config.replace("word: secret", "wrod: other"))
            served.send(signal.SIGHUP)
            await served.wait_for_event("config_reload_refused")
            after_refusal = await say(http, served.proxy_url, "secret other")
            served.config_path.write_text(config.replace("word: secret", "word: other"))
            served.send(signal.SIGHUP)
            await served.wait_for_event("config_reloaded")
            after_reload = await say(http, served.proxy_url, "secret other")
    refused = next(e for e in served.events() if e["event"] == "config_reload_refused")
    assert "did you mean 'word'" in refused["reason"]
    assert "[MASKED] other" == after_refusal
    assert "secret [MASKED]" == after_reload


CREDENTIALS = ("sk-live-CLIENT-1111", "ak-CLIENT-2222", "xk-PROXY-3333", "sk-ENV-4444")


async def test_credentials_never_reach_the_log(tmp_path: Path, upstream: str) -> None:
    """Neither client, proxy nor upstream keys appear in the log, whatever the outcome."""
    client_key, anthropic_key, wrong_proxy_key, env_key = CREDENTIALS
    config = f"""
routes:
  - name: keyed
    match: {{path: "/v1/*", headers: {{x-tenant: keyed}}}}
    upstream: {{url: "{upstream}"}}
    auth: {{keys_env: OPS_PROXY_KEYS}}
  - name: down
    match: {{path: "/v1/*", headers: {{x-tenant: down}}}}
    upstream: {{url: "http://127.0.0.1:9", api_key_env: OPS_UPSTREAM_KEY}}
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}", api_key_env: OPS_UPSTREAM_KEY}}
"""
    env = {"OPS_PROXY_KEYS": "the-right-key", "OPS_UPSTREAM_KEY": env_key}
    credentials = {"Authorization": f"Bearer {client_key}", "x-api-key": anthropic_key}
    with serve_process(tmp_path, config, log_level="debug", env=env) as served:
        url = f"{served.proxy_url}/v1/chat/completions"
        async with aiohttp.ClientSession() as http:
            statuses = []
            for extra in (
                {},
                {"x-tenant": "keyed", "x-streamsieve-key": wrong_proxy_key},
                {"x-tenant": "down"},
            ):
                async with http.post(url, json=chat_body(), headers=credentials | extra) as reply:
                    await reply.read()
                    statuses.append(reply.status)
            async with http.post(f"{served.proxy_url}/v1/messages", json={}) as env_keyed:
                await env_keyed.read()
        await served.wait_for_event("request", count=4)
    assert [200, 401, 502] == statuses
    log = served.log()
    assert [] == [key for key in CREDENTIALS if key in log]


async def test_two_workers_share_the_port_and_the_metrics(tmp_path: Path, upstream: str) -> None:
    """With ``--workers 2`` new connections reach both workers; /metrics counts all requests."""
    config = MASK_ROUTE.format(upstream=upstream, word="secret")
    with serve_process(tmp_path, config, "--workers", "2") as served:
        pids: set[str] = set()
        sent = 0
        connector = aiohttp.TCPConnector(force_close=True)  # a new connection every time
        async with aiohttp.ClientSession(connector=connector) as http:
            while len(pids) < 2 and sent < 200:
                url = f"{served.proxy_url}/v1/chat/completions"
                async with http.post(url, json=chat_body({"text": "hi"})) as response:
                    await response.read()
                    pids.add(response.headers["x-streamsieve-worker"])
                sent += 1
            counted = await _wait_for_count(http, served.admin_url, sent)
            async with http.get(f"{served.admin_url}/readyz") as ready:
                checks = (await ready.json())["checks"]
    assert 2 == len(pids)
    assert str(served.process.pid) not in pids
    assert float(sent) == counted
    assert "ok" == checks["workers"]


async def _wait_for_count(http: aiohttp.ClientSession, admin_url: str, expected: int) -> float:
    """``requests_total`` once it reaches ``expected`` (a worker counts just after replying)."""
    value = 0.0
    for _ in range(100):
        text = await get_metrics(http, admin_url)
        value = metric(text, "streamsieve_requests_total", route="chat", status="200")
        if value >= expected:
            break
        await asyncio.sleep(0.02)
    return value


async def test_embedded_default_follows_the_simulator_port(tmp_path: Path) -> None:
    """``serve`` with no config runs the demo on whatever ports it is given."""
    port, simulator, admin = free_port(), free_port(), free_port()
    argv = cli("serve", "--port", str(port), "--simulator-port", str(simulator))
    process = _start([*argv, "--admin-port", str(admin)], tmp_path / "demo.log")
    try:
        wait_until_listening(admin)
        async with aiohttp.ClientSession() as http:
            text = await say(http, f"http://127.0.0.1:{port}", "write to jane@example.com")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert "write to [EMAIL]" == text


def _start(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
