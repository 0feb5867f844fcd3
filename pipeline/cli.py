"""``streamsieve`` command line: serve, check-config, simulate."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from pipeline import logs
from pipeline.config import ConfigError, LoadedConfig, load_config
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

    check = commands.add_parser("check-config", help="validate a config and list every problem")
    check.add_argument("file", type=Path)

    simulate = commands.add_parser("simulate", help="run the built-in upstream simulator alone")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=DEFAULT_SIMULATOR_PORT)
    simulate.add_argument("--text", help="the reply text (default: a demo reply with PII)")
    simulate.add_argument("--first-token-delay-ms", type=float, default=0.0)
    simulate.add_argument("--inter-token-delay-ms", type=float, default=0.0)
    return parser


def _check_config(path: Path) -> int:
    try:
        config = load_config(path)
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


async def _serve(config: LoadedConfig, host: str, port: int, simulator_port: int | None) -> None:
    from pipeline.app import make_app, serve_forever, start_proxy
    from pipeline.simulator import start_simulator

    runners = []
    if simulator_port is not None:
        runners.append(await start_simulator("127.0.0.1", simulator_port))
        log.info("simulator_started", url=f"http://127.0.0.1:{simulator_port}")
    runners.append(await start_proxy(make_app(config), host, port))
    log.info("proxy_started", url=f"http://{host}:{port}", config=config.source)
    await serve_forever(*runners)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_format, args.log_level)
    if args.command == "check-config":
        return _check_config(args.file)
    try:
        if args.command == "simulate":
            asyncio.run(_simulate(args))
            return 0
        embedded = args.config is None
        config = load_config(default_config() if embedded else args.config)
        asyncio.run(_serve(config, args.host, args.port, args.simulator_port if embedded else None))
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
