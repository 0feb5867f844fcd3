"""Helpers for the operations tests: a proxy with its admin app, SSE and metrics readers,
and a ``streamsieve serve`` subprocess. Everything binds loopback addresses only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from pipeline.admin import ProcessOperations, make_admin_app, start_admin
from pipeline.app import bound_port, make_app, start_proxy
from pipeline.config import load_config
from pipeline.reload import Reloader
from pipeline.simulator import SIM_STATS, SimStats, SimulatorSettings, start_simulator
from pipeline.simulator import bound_port as sim_port
from pipeline.state import STATE, ProxyState

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"

MASK_ROUTE = """
routes:
  - name: chat
    match: {{path: "/v1/*"}}
    upstream: {{url: "{upstream}"}}
    stages:
      - type: "tests.stages_for_tests:MaskWordFactory"
        id: mask
        word: {word}
"""


@dataclass(slots=True)
class OpsStack:
    """A simulator, a proxy in front of it and the proxy's admin app, all in this process."""

    proxy_url: str
    admin_url: str
    upstream_url: str
    state: ProxyState
    sim_stats: SimStats
    config_path: Path

    def write_config(self, routes_yaml: str, **extra: str) -> None:
        """Replace the config file (``{upstream}`` is the simulator); reload to apply it."""
        self.config_path.write_text(routes_yaml.format(upstream=self.upstream_url, **extra))


@contextlib.asynccontextmanager
async def ops_stack(
    tmp_path: Path,
    routes_yaml: str = MASK_ROUTE,
    settings: SimulatorSettings | None = None,
    **extra: str,
) -> AsyncIterator[OpsStack]:
    """Start simulator, proxy and admin app from a config file written in ``tmp_path``."""
    sim = await start_simulator(LOOPBACK, 0, settings)
    upstream = f"http://{LOOPBACK}:{sim_port(sim)}"
    path = tmp_path / "config.yaml"
    extra.setdefault("word", "secret")
    path.write_text(routes_yaml.format(upstream=upstream, **extra))
    app = make_app(load_config(path))
    proxy = await start_proxy(app, LOOPBACK, 0)
    state = app[STATE]
    admin_app = make_admin_app(ProcessOperations(state, Reloader(state, path)))
    admin = await start_admin(admin_app, LOOPBACK, 0)
    try:
        yield OpsStack(
            proxy_url=f"http://{LOOPBACK}:{bound_port(proxy)}",
            admin_url=f"http://{LOOPBACK}:{bound_port(admin)}",
            upstream_url=upstream,
            state=state,
            sim_stats=sim.app[SIM_STATS],
            config_path=path,
        )
    finally:
        for runner in (admin, proxy, sim):
            await runner.cleanup()


def chat_body(sim: dict[str, Any] | None = None, *, stream: bool = True) -> dict[str, Any]:
    """A chat completion request; ``sim`` steers the simulator's reply."""
    body: dict[str, Any] = {"model": "gpt-4o", "stream": stream, "messages": []}
    if sim is not None:
        body["sim"] = sim
    return body


async def sse_data(response: aiohttp.ClientResponse) -> list[str]:
    """The ``data:`` payload of every event in a streamed reply, in order."""
    return [
        line.decode().removeprefix("data: ").rstrip("\r\n")
        async for line in response.content
        if line.startswith(b"data: ")
    ]


def text_of(payloads: list[str]) -> str:
    """The chat content the client saw, from :func:`sse_data` payloads."""
    out: list[str] = []
    for payload in payloads:
        if payload == "[DONE]":
            continue
        choices = json.loads(payload).get("choices", [])
        out.extend(choice.get("delta", {}).get("content") or "" for choice in choices)
    return "".join(out)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text; 0 when the series does not exist yet."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


async def get_metrics(session: aiohttp.ClientSession, admin_url: str) -> str:
    async with session.get(f"{admin_url}/metrics") as response:
        assert 200 == response.status
        return await response.text()


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_until_listening(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout_s} s")


@dataclass(slots=True)
class Served:
    """A ``streamsieve serve`` subprocess and where it listens."""

    process: subprocess.Popen[bytes]
    proxy_url: str
    admin_url: str
    log_path: Path
    config_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far."""
        lines = self.log().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    async def wait_for_event(self, name: str, count: int = 1, timeout_s: float = 10.0) -> None:
        """Return once the log holds ``count`` events called ``name``."""
        for _ in range(int(timeout_s / 0.02)):
            if sum(e.get("event") == name for e in self.events()) >= count:
                return
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no {count}x {name!r} in the log after {timeout_s} s:\n{self.log()}")

    async def wait_exit(self, timeout_s: float) -> int:
        """The process's exit code, once it has exited (within ``timeout_s``)."""
        return await asyncio.to_thread(self.process.wait, timeout_s)


def cli(*args: str) -> list[str]:
    """``python -m pipeline.cli`` from the repo root, so ``tests.*`` stages import."""
    return [sys.executable, "-m", "pipeline.cli", *args]


@contextlib.contextmanager
def serve_process(
    tmp_path: Path,
    config_text: str,
    *serve_args: str,
    log_level: str = "info",
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """Run ``streamsieve serve`` on free loopback ports until its admin app listens."""
    config = tmp_path / "serve.yaml"
    config.write_text(config_text)
    port, admin_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    command = cli(
        "--log-format",
        "json",
        "--log-level",
        log_level,
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
        *serve_args,
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=_env(env)
        )
    try:
        wait_until_listening(admin_port)
        yield Served(
            process,
            f"http://{LOOPBACK}:{port}",
            f"http://{LOOPBACK}:{admin_port}",
            log_path,
            config,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def simulator_process(*args: str) -> Iterator[str]:
    """The simulator in a process of its own (subprocess tests outlive one event loop)."""
    port = free_port()
    process = subprocess.Popen(
        cli("simulate", "--port", str(port), *args),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        wait_until_listening(port)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra or {})
    return env
