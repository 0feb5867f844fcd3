"""``streamsieve`` command line: serve, check-config, simulate, replay, record."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import structlog

from pipeline import logs, loop
from pipeline.config import ConfigError, LoadedConfig, load_config
from pipeline.replay import add_commands
from pipeline.resources import default_config

log = structlog.get_logger("streamsieve")

DEFAULT_SIMULATOR_PORT = 9000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamsieve", description=__doc__)
    parser.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    parser.add_argument("--log-level", default="info")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the proxy",
        description="Run the proxy. Without --config it runs the embedded default: the "
        "built-in upstream simulator on 127.0.0.1:9000 behind config/default.yaml.",
    )
    serve.add_argument("--config", type=Path, help="YAML config (default: embedded demo)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--simulator-port", type=int, default=DEFAULT_SIMULATOR_PORT)
    serve.add_argument(
        "--admin-host", default="127.0.0.1", help="admin endpoints' address (never public)"
    )
    serve.add_argument(
        "--admin-port", type=int, default=9090, help="/metrics, /healthz, /readyz, /admin/reload"
    )
    serve.add_argument(
        "--grace-s",
        type=float,
        default=20.0,
        help="on SIGTERM, how long streams in flight may finish before they get an error event",
    )
    serve.add_argument(
        "--workers", type=_positive, default=1, help="processes sharing the port (SO_REUSEPORT)"
    )

    check = commands.add_parser("check-config", help="validate a config and list every problem")
    check.add_argument("file", type=Path)

    simulate = commands.add_parser("simulate", help="run the built-in upstream simulator alone")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=DEFAULT_SIMULATOR_PORT)
    simulate.add_argument("--text", help="the reply text (default: a demo reply with PII)")
    simulate.add_argument("--first-token-delay-ms", type=float, default=0.0)
    simulate.add_argument("--inter-token-delay-ms", type=float, default=0.0)
    simulate.set_defaults(handler=_run_simulate)
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of a config, for YAML editors",
        description="The JSON Schema of a whole config (every installed stage's keys, with "
        "their docs). Save it and add '# yaml-language-server: $schema=./streamsieve.schema"
        ".json' as the first line of a config to get validation and completion as you type.",
    )
    schema.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    schema.add_argument(
        "--config", type=Path, help="also include the dotted-path stages this config uses"
    )
    schema.set_defaults(handler=_schema)
    add_commands(commands)  # replay, record: each sets its own ``handler``
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _checked(config: LoadedConfig) -> None:
    """Build every stage as ``serve`` would and check their limits (:mod:`pipeline.bounds`).

    Raises ConfigError for a limit that would let a cut-off match stream on; prints a loud
    warning for one that only fails open because the config asked for ``pass``.
    """
    from pipeline.bounds import check_limits
    from pipeline.engine import build_plans

    report = check_limits(config, build_plans(config))
    for warning in report.warnings:
        print(f"WARNING: {warning.render(config.source)}", file=sys.stderr)
    if report.problems:
        raise ConfigError(config.source, report.problems)


def _check_config(path: Path) -> int:
    """Validate ``path`` and build every stage, as ``serve`` would, without serving."""
    try:
        config = load_config(path)
        _checked(config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem.render(exc.source), file=sys.stderr)
        print(f"{len(exc.problems)} problem(s); the config was not accepted", file=sys.stderr)
        return 1
    routes = ", ".join(
        f"{r.name} ({len(config.stages[r.name])} stages)" for r in config.proxy.routes
    )
    print(f"{path}: OK: {routes}")
    return 0


async def _serve(
    config: LoadedConfig, args: argparse.Namespace, simulator_port: int | None
) -> None:
    from pipeline.simulator import start_simulator
    from pipeline.workers import ServeOptions, serve

    options = ServeOptions(
        config_path=Path(config.source),
        host=args.host,
        port=args.port,
        admin_host=args.admin_host,
        admin_port=args.admin_port,
        grace_s=args.grace_s,
        workers=args.workers,
        log_format=args.log_format,
        log_level=args.log_level,
    )
    simulator = None
    if simulator_port is not None:
        simulator = await start_simulator("127.0.0.1", simulator_port)
        log.info("simulator_started", url=f"http://127.0.0.1:{simulator_port}")
    try:
        await serve(options, config)
    finally:
        if simulator is not None:
            await simulator.cleanup()


async def _simulate(args: argparse.Namespace) -> None:
    from pipeline.app import serve_forever
    from pipeline.simulator import SimulatorSettings, start_simulator

    settings = SimulatorSettings(
        first_token_delay_ms=args.first_token_delay_ms,
        inter_token_delay_ms=args.inter_token_delay_ms,
    )
    if args.text:
        settings = SimulatorSettings(
            text=args.text,
            first_token_delay_ms=args.first_token_delay_ms,
            inter_token_delay_ms=args.inter_token_delay_ms,
        )
    runner = await start_simulator(args.host, args.port, settings)
    log.info("simulator_started", url=f"http://{args.host}:{args.port}")
    await serve_forever(runner)


def _schema(args: argparse.Namespace) -> int:
    from pipeline.schema import write_schema

    return write_schema(args.out, args.config)


def _run_simulate(args: argparse.Namespace) -> int:
    """``simulate``: serve the simulator until interrupted."""
    try:
        asyncio.run(_simulate(args))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"streamsieve: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0


def _demo_config(simulator_port: int) -> Path:
    """The embedded default config, pointed at the simulator's port.

    With another ``--simulator-port`` a copy is written to a temporary folder, so reloads
    and worker processes read the same file the proxy started with.
    """
    path = default_config()
    if simulator_port == DEFAULT_SIMULATOR_PORT:
        return path
    folder = Path(tempfile.mkdtemp(prefix="streamsieve-demo-"))
    atexit.register(shutil.rmtree, folder, True)
    text = path.read_text(encoding="utf-8")
    local = f"http://127.0.0.1:{DEFAULT_SIMULATOR_PORT}"
    copy = folder / path.name
    copy.write_text(text.replace(local, f"http://127.0.0.1:{simulator_port}"), encoding="utf-8")
    return copy


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_format, args.log_level)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    if args.command == "check-config":
        return _check_config(args.file)
    try:
        embedded = args.config is None
        config = load_config(_demo_config(args.simulator_port) if embedded else args.config)
        _checked(config)
        if args.workers > 1 and args.port == 0:
            print("streamsieve: --workers needs a fixed --port (each binds it)", file=sys.stderr)
            return 2
        loop.run(_serve(config, args, args.simulator_port if embedded else None))
    except ConfigError as exc:
        print(f"streamsieve: refusing to start, the config has problems:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"streamsieve: cannot listen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
