"""Running ``streamsieve serve``: one process, or N worker processes on one port.

One process (``--workers 1``, the default) serves the proxy and the admin app itself.

With ``--workers N`` a supervisor process starts N workers. Each worker binds the public
port with SO_REUSEPORT, so the kernel spreads new connections across them with no
hand-off in user space, and answers with an ``x-streamsieve-worker: <pid>`` header. The
supervisor serves the admin app and nothing else:

- metrics: prometheus-client's multiprocess mode. Workers write their values to files in
  a private temporary directory; ``/metrics`` on the supervisor adds them up, so every
  counter and histogram is the total over workers and ``open_streams`` the live sum.
  Chosen over a per-worker label because a scrape then needs no knowledge of the
  workers and a restarted worker's counts are not lost.
- ``/readyz`` also fails while any worker is down; ``/admin/reload`` and SIGHUP validate
  the file once, then signal each worker to reload it.
- SIGTERM (or Ctrl-C) is passed to every worker, which drains on its own; a worker still
  running ``grace_s`` plus a margin later is killed. A worker that dies otherwise is
  restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

from pipeline import logs, loop
from pipeline.admin import (
    ProcessOperations,
    Readiness,
    check_upstreams,
    make_admin_app,
    shutdown_check,
    start_admin,
)
from pipeline.app import make_app, start_proxy
from pipeline.config import ConfigError, LoadedConfig, load_config
from pipeline.reload import Reloader, ReloadResult, build_snapshot
from pipeline.shutdown import drain
from pipeline.state import STATE

log = structlog.get_logger("streamsieve")

WORKER_HEADER = "x-streamsieve-worker"
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_START_TIMEOUT_S = 30.0
_EXIT_MARGIN_S = 5.0
"""Beyond the grace period, how long a worker gets to close before it is killed."""
_WATCH_INTERVAL_S = 0.5
_RESTART_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Everything ``streamsieve serve`` was asked for (picklable: workers receive it)."""

    config_path: Path
    host: str = "127.0.0.1"
    port: int = 8080
    admin_host: str = "127.0.0.1"
    admin_port: int = 9090
    grace_s: float = 20.0
    workers: int = 1
    log_format: logs.LogFormat = "auto"
    log_level: str = "info"


async def serve(options: ServeOptions, config: LoadedConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    if options.workers <= 1:
        await _serve_process(options, config)
    else:
        await Supervisor(options, config).run()


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


def _on_sighup(reload: Callable[[], Awaitable[ReloadResult]]) -> None:
    """Run ``reload`` on every SIGHUP, holding each task until it is done."""
    running: set[asyncio.Task[ReloadResult]] = set()

    def start() -> None:
        task = asyncio.ensure_future(reload())
        running.add(task)
        task.add_done_callback(running.discard)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, start)


async def _serve_process(
    options: ServeOptions, config: LoadedConfig, link: Connection | None = None
) -> None:
    """Serve the proxy from this process: alone, with the admin app, or, given the
    ``link`` to a supervisor, as one of its workers."""
    worker = link is not None
    app = make_app(config)
    if worker:
        app.on_response_prepare.append(_worker_header)
    runner = await start_proxy(app, options.host, options.port, reuse_port=worker)
    state = app[STATE]
    reloader = Reloader(state, options.config_path)
    admin_runner: web.AppRunner | None = None
    if not worker:
        admin_app = make_admin_app(ProcessOperations(state, reloader))
        admin_runner = await start_admin(admin_app, options.admin_host, options.admin_port)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    _on_sighup(reloader.reload)
    log.info(
        "proxy_started",
        url=f"http://{options.host}:{options.port}",
        admin=None if worker else f"http://{options.admin_host}:{options.admin_port}",
        config=config.source,
    )
    if link is not None:
        link.send("ready")
        # The supervisor holds the other end for as long as it lives: end of file on it
        # means it died without stopping us (killed outright), so stop serving.
        asyncio.get_running_loop().add_reader(link.fileno(), _supervisor_gone, stop)
    try:
        await stop.wait()
    finally:
        await drain(runner, state, options.grace_s)
        if admin_runner is not None:
            await admin_runner.cleanup()


async def _worker_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[WORKER_HEADER] = str(os.getpid())


def _supervisor_gone(stop: asyncio.Event) -> None:
    if not stop.is_set():
        log.warning("supervisor_gone")
        stop.set()


def _worker_main(options: ServeOptions, link: Connection) -> None:
    """A worker process: load the config again (it may not share memory) and serve."""
    logs.configure(options.log_format, options.log_level)
    structlog.contextvars.bind_contextvars(worker=os.getpid())
    try:
        config = load_config(options.config_path)
        loop.run(_serve_process(options, config, link))
    except (ConfigError, OSError) as exc:
        with contextlib.suppress(OSError):  # the supervisor may have stopped listening
            link.send(f"worker {os.getpid()} cannot start: {exc}")
        raise SystemExit(2) from None


class WorkerStartError(OSError):
    """A worker could not start. An OSError, as its usual cause is a port it cannot bind."""


class Supervisor:
    """Starts, watches, reloads and stops the worker processes; serves the admin app."""

    def __init__(self, options: ServeOptions, config: LoadedConfig) -> None:
        self._options = options
        self._config = config
        self._context = multiprocessing.get_context("spawn")  # no fork of a running loop
        self._workers: list[BaseProcess] = []
        self._links: dict[int, Connection] = {}
        """Per worker pid, the supervisor's end of its pipe (closed when it dies)."""
        self._stopping = False
        self._metrics_dir = ""

    async def run(self) -> None:
        self._metrics_dir = tempfile.mkdtemp(prefix="streamsieve-metrics-")
        # Read by prometheus-client when a worker imports it: set before any worker starts.
        os.environ[_MULTIPROC_ENV] = self._metrics_dir
        admin_runner: web.AppRunner | None = None
        try:
            self._workers = [await self._start() for _ in range(self._options.workers)]
            admin_runner = await start_admin(
                make_admin_app(self), self._options.admin_host, self._options.admin_port
            )
            log.info(
                "workers_started",
                workers=[w.pid for w in self._workers],
                url=f"http://{self._options.host}:{self._options.port}",
            )
            await self._supervise()
        finally:
            self._stopping = True
            await self._stop_workers()
            if admin_runner is not None:
                await admin_runner.cleanup()
            os.environ.pop(_MULTIPROC_ENV, None)
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    async def _start(self) -> BaseProcess:
        link, worker_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main, args=(self._options, worker_end), name="streamsieve-worker"
        )
        process.start()
        worker_end.close()
        message = await asyncio.to_thread(_receive, link, _START_TIMEOUT_S)
        if message != "ready" or process.pid is None:
            link.close()
            process.kill()
            process.join()
            raise WorkerStartError(message)
        self._links[process.pid] = link
        return process

    async def _supervise(self) -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        _on_sighup(self.reload)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_WATCH_INTERVAL_S):
                    await stop.wait()
            await self._replace_dead()

    async def _replace_dead(self) -> None:
        for index, process in enumerate(self._workers):
            if process.is_alive() or self._stopping:
                continue
            log.error("worker_died", pid=process.pid, exitcode=process.exitcode)
            self._forget(process)
            await asyncio.sleep(_RESTART_DELAY_S)  # a worker dying at once must not spin
            try:
                self._workers[index] = await self._start()
            except WorkerStartError as exc:
                failure = str(exc)
            else:
                continue
            log.error("worker_restart_failed", reason=failure)  # tried again next round

    def _forget(self, process: BaseProcess) -> None:
        """Drop a dead worker's live gauges; its counters stay in the totals."""
        if process.pid is not None:
            multiprocess.mark_process_dead(process.pid, self._metrics_dir)  # type: ignore[no-untyped-call]
            link = self._links.pop(process.pid, None)
            if link is not None:
                link.close()

    async def _stop_workers(self) -> None:
        live = [p for p in self._workers if p.is_alive()]
        for process in live:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._options.grace_s + _EXIT_MARGIN_S
        for process in live:
            await asyncio.to_thread(process.join, max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker_killed", pid=process.pid)
                process.kill()
                await asyncio.to_thread(process.join)
            self._forget(process)
        log.info("workers_stopped")

    def render_metrics(self) -> bytes:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self._metrics_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    async def readiness(self) -> Readiness:
        alive = sum(p.is_alive() for p in self._workers)
        wanted = self._options.workers
        checks = {
            "shutdown": shutdown_check(self._stopping),
            "config": "ok",
            "workers": "ok" if alive == wanted else f"{alive} of {wanted} workers running",
        }
        checks.update(await check_upstreams(self._config))
        return Readiness(checks)

    async def reload(self) -> ReloadResult:
        """Validate the file here, so the caller hears why it is refused; then have every
        worker load it (each swaps its own snapshot, streams in flight unaffected)."""
        path = self._options.config_path
        try:
            snapshot = await asyncio.to_thread(build_snapshot, path)
        except ConfigError as exc:
            return _refused(path, str(exc))
        self._config = snapshot.config
        live = [p.pid for p in self._workers if p.is_alive() and p.pid is not None]
        for pid in live:
            os.kill(pid, signal.SIGHUP)
        routes = tuple(route.name for route in self._config.proxy.routes)
        log.info("config_reload_signalled", config=str(path), workers=live)
        return ReloadResult(True, f"{path}: config valid; {len(live)} workers reloading", routes)


def _refused(path: Path, reason: str) -> ReloadResult:
    log.error("config_reload_refused", config=str(path), reason=reason)
    return ReloadResult(False, reason)


def _receive(connection: Connection, timeout_s: float) -> str:
    """A worker's start-up message, or why none came."""
    try:
        if connection.poll(timeout_s):
            return str(connection.recv())
    except EOFError:
        pass
    return f"a worker exited or stayed silent for {timeout_s} s while starting"
