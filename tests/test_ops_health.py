"""``/healthz`` and ``/readyz`` on the admin port, and what the public port does not serve."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.ops_support import LOOPBACK, chat_body, free_port, ops_stack

DOWN_UPSTREAM = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
  - name: gone
    match: {{path: "/gone/*"}}
    upstream: {{url: "http://{loopback}:{port}", ready_check: {check}}}
"""


async def readyz(http: aiohttp.ClientSession, admin_url: str) -> tuple[int, dict[str, object]]:
    async with http.get(f"{admin_url}/readyz") as response:
        return response.status, await response.json()


async def test_healthz_and_readyz_when_all_is_well(tmp_path: Path) -> None:
    """Alive and ready: config loaded and the upstream accepts connections."""
    async with ops_stack(tmp_path) as s, aiohttp.ClientSession() as http:
        async with http.get(f"{s.admin_url}/healthz") as health:
            assert 200 == health.status
        status, body = await readyz(http, s.admin_url)
    assert 200 == status
    assert {"shutdown": "ok", "config": "ok", "upstream:chat": "ok"} == body["checks"]


async def test_readyz_fails_while_an_upstream_is_down(tmp_path: Path) -> None:
    """An upstream nobody listens on makes the instance not ready, naming the route."""
    port = str(free_port())
    async with (
        ops_stack(tmp_path, DOWN_UPSTREAM, loopback=LOOPBACK, port=port, check="true") as s,
        aiohttp.ClientSession() as http,
    ):
        status, body = await readyz(http, s.admin_url)
    assert 503 == status
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert "ok" == checks["upstream:chat"]
    assert f"cannot connect to {LOOPBACK}:{port}" in checks["upstream:gone"]


async def test_readyz_skips_upstreams_with_ready_check_off(tmp_path: Path) -> None:
    """``ready_check: false`` leaves a down upstream out of readiness."""
    port = str(free_port())
    async with (
        ops_stack(tmp_path, DOWN_UPSTREAM, loopback=LOOPBACK, port=port, check="false") as s,
        aiohttp.ClientSession() as http,
    ):
        status, body = await readyz(http, s.admin_url)
    assert 200 == status
    assert "upstream:gone" not in body["checks"]  # type: ignore[operator]


async def test_draining_instance_is_not_ready_and_refuses_requests(tmp_path: Path) -> None:
    """While draining, readiness fails and new requests get 503 with Retry-After."""
    async with ops_stack(tmp_path) as s, aiohttp.ClientSession() as http:
        s.state.admission.draining = True
        status, body = await readyz(http, s.admin_url)
        url = f"{s.proxy_url}/v1/chat/completions"
        async with http.post(url, json=chat_body()) as refused:
            assert 503 == refused.status
            assert "1" == refused.headers["Retry-After"]
            assert "close" == refused.headers["Connection"]
            message = (await refused.json())["error"]["message"]
    assert 503 == status
    assert "draining: the proxy is shutting down" == body["checks"]["shutdown"]  # type: ignore[index]
    assert "shutting down" in message
    assert 0 == s.sim_stats.requests


async def test_admin_paths_are_not_served_on_the_public_port(tmp_path: Path) -> None:
    """On the proxy's port, /metrics and /admin/reload are ordinary proxied paths."""
    async with ops_stack(tmp_path) as s, aiohttp.ClientSession() as http:
        snapshot = s.state.snapshot
        async with http.get(f"{s.proxy_url}/metrics") as metrics:
            metrics_status = metrics.status
            metrics_text = await metrics.text()
        async with http.post(f"{s.proxy_url}/v1/admin/reload") as reload:
            reload_status = reload.status
    assert 404 == metrics_status
    assert "streamsieve_requests_total" not in metrics_text
    assert 404 == reload_status  # the simulator's own 404: it went upstream, not to an admin
    assert snapshot is s.state.snapshot
